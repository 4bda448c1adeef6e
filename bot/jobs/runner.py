"""The one runner of background work: the queue's worker threads and every periodic job start and stop together.

A periodic job is anything with a `name`, an `interval` in seconds (0: off) and `run_once()`; a failure is
logged and the job runs again at the next interval. Its first round comes one interval after start, or after
`first_round_after` seconds when the job has that attribute. Queued jobs are rows of the store's queue, run by
`bot.jobs.worker.Worker`; `notify()` wakes a worker at once when one is added. docs/architecture.md says how to
add either kind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from bot.jobs.worker import Worker
from bot.store import Store

log = logging.getLogger(__name__)


class PeriodicJob(Protocol):
    name: str
    interval: float

    def run_once(self) -> object: ...


class Runner:
    def __init__(self, *, store: Store, worker: Worker, threads: int = 2, periodic: Sequence[PeriodicJob] = (),
                 poll_interval: float = 1.0) -> None:
        self._store = store
        self.worker = worker
        self._count = threads
        self._periodic = list(periodic)
        self._poll = poll_interval
        self._wake = threading.Condition()
        self._pending_wakeups = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Runner:
        recovered = self._store.recover_interrupted()
        if recovered:
            log.warning("%d events were interrupted by the last shutdown or crash: processing them again", recovered)
        for number in range(self._count):
            self._spawn(f"seam-worker-{number}", self._work)
        for job in self._periodic:
            if job.interval > 0:
                self._spawn(f"seam-{job.name}", lambda job=job: self._every(job))
        return self

    def add_periodic(self, job: PeriodicJob) -> None:
        """Run `job` every `job.interval` seconds once started (a job that needs `notify` is built after us)."""
        self._periodic.append(job)

    def notify(self) -> None:
        """A job was queued: wake a worker now rather than at its next poll."""
        with self._wake:
            self._pending_wakeups += 1
            self._wake.notify()

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop taking work; let running jobs finish for up to `timeout` seconds, then give back the ones still
        running so the next start takes them again at once."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        released = self.worker.release_running()
        if released:
            log.warning("released %d unfinished events for the next start", released)

    def _spawn(self, name: str, target) -> None:
        thread = threading.Thread(target=self._closing(target), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _closing(self, target):
        def run() -> None:
            try:
                target()
            finally:
                self._store.close()  # this thread's own connection

        return run

    def _work(self) -> None:
        # Jobs that failed before may hold every thread but one: a new ticket always finds a worker, however many
        # retries hang on a slow helpdesk (bot.jobs.worker).
        max_retrying = max(1, self._count - 1)
        while not self._stopping.is_set():
            try:
                worked = self.worker.run_once(max_retrying=max_retrying)
            except Exception:  # the store itself failed (disk full, locked): back off, keep the thread alive
                log.exception("worker could not claim work")
                worked = False
            if worked:
                continue
            with self._wake:
                if self._pending_wakeups == 0 and not self._stopping.is_set():
                    self._wake.wait(self._poll)
                self._pending_wakeups = max(0, self._pending_wakeups - 1)

    def _every(self, job: PeriodicJob) -> None:
        wait = getattr(job, "first_round_after", job.interval)
        while not self._stopping.wait(wait):
            wait = job.interval
            try:
                job.run_once()
            except Exception as exc:  # the outside world is down: try again next round
                log.warning("%s failed: %s", job.name, exc)
