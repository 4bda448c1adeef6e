"""The background runner (bot.jobs): queued jobs dispatched by kind, periodic jobs, and one start and stop for all."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from bot.jobs.runner import Runner
from bot.jobs.worker import Worker
from bot.models import Event, EventState
from bot.store import Store
from tests.support.waiting import wait_until


class Ticker:
    name = "ticker"

    def __init__(self, interval: float, *, fail_first: bool = False) -> None:
        self.interval = interval
        self.runs = 0
        self._fail = fail_first

    def run_once(self) -> int:
        self.runs += 1
        if self._fail:
            self._fail = False
            raise RuntimeError("the outside world is down")
        return self.runs


def test_queued_jobs_run_by_kind_and_a_kind_without_handler_fails_visibly(tmp_path: Path):
    store = Store(tmp_path / "seam.db")
    seen: list[Event] = []
    worker = Worker(store=store, handlers={"ticket": lambda event: seen.append(event) or "ok"})
    ticket, _ = store.record_event(helpdesk="zendesk", dedupe_key="a", ticket_id="1", body="{}")
    other, _ = store.record_event(helpdesk="zendesk", dedupe_key="b", ticket_id="2", body="{}", kind="mystery")
    assert worker.run_once() and worker.run_once() and not worker.run_once()
    assert [e.id for e in seen] == [ticket] and seen[0].kind == "ticket"
    assert store.event(ticket).state == EventState.DONE and store.event(ticket).outcome == "ok"
    failed = store.event(other)
    assert failed.state == EventState.PENDING and "no handler for jobs of kind 'mystery'" in failed.last_error


def test_the_runner_starts_workers_and_periodic_jobs_together_and_stops_them_together(tmp_path: Path):
    store = Store(tmp_path / "seam.db")
    done = threading.Event()
    worker = Worker(store=store, handlers={"ticket": lambda event: done.set() or "ok"})
    ticker, off = Ticker(0.05, fail_first=True), Ticker(0)
    runner = Runner(store=store, worker=worker, threads=2, periodic=[ticker, off], poll_interval=5)
    runner.start()
    try:
        store.record_event(helpdesk="zendesk", dedupe_key="k", ticket_id="1", body="{}")
        runner.notify()  # wakes a worker long before its 5 s poll
        assert done.wait(2)
        wait_until(lambda: ticker.runs >= 3, timeout=5)  # a failing round does not stop the job
    finally:
        runner.stop(timeout=5)
    assert off.runs == 0, "an interval of 0 turns a periodic job off"
    runs = ticker.runs
    time.sleep(0.2)
    assert ticker.runs == runs, "stopped means stopped"
    assert not [t for t in threading.enumerate() if t.name.startswith(("seam-worker-", "seam-ticker"))]


def test_stopping_gives_back_a_job_still_running_for_the_next_start(tmp_path: Path):
    store = Store(tmp_path / "seam.db")
    started, release = threading.Event(), threading.Event()

    def slow(event: Event) -> str:
        started.set()
        release.wait(5)
        return "late"

    runner = Runner(store=store, worker=Worker(store=store, handlers={"ticket": slow}), threads=1)
    event_id, _ = store.record_event(helpdesk="zendesk", dedupe_key="k", ticket_id="1", body="{}")
    runner.start()
    assert started.wait(5)
    runner.stop(timeout=0.1)
    event = store.event(event_id)
    assert event.state == EventState.PENDING and event.attempts == 0
    release.set()
