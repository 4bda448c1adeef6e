"""Background workers: threads in the `serve` process that take recorded events from the store and process them.

The webhook answers as soon as the event is stored and calls `notify()`; a worker wakes, claims the event with
a lease and runs the pipeline. A failure is retried with growing delays until it is parked as `dead`. Events
left `processing` by a crash are taken again once their lease runs out, and on start-up `pending` ones are
simply next in line, so a restart loses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bot.store import Store

log = logging.getLogger(__name__)

LEASE_SECONDS = 300.0
# Seconds before attempt n+1: 5, 20, 80, 320 — then the event is dead (store.MAX_ATTEMPTS).
BACKOFF_BASE = 5.0


class Worker:
    def __init__(self, *, store: Store, process: Callable[[dict], str], threads: int = 2,
                 poll_interval: float = 1.0) -> None:
        self._store = store
        self._process = process
        self._count = threads
        self._poll = poll_interval
        self._wake = threading.Condition()
        self._pending_wakeups = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: dict[int, int] = {}  # thread id -> event id being processed
        self._running_lock = threading.Lock()

    def start(self) -> Worker:
        recovered = self._store.recover_interrupted()
        if recovered:
            log.warning("%d events were interrupted by the last shutdown or crash: processing them again", recovered)
        for number in range(self._count):
            thread = threading.Thread(target=self._run, name=f"seam-worker-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def notify(self) -> None:
        with self._wake:
            self._pending_wakeups += 1
            self._wake.notify()

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop taking work; let running events finish for up to `timeout` seconds, then give back the ones
        still running so the next start takes them again at once."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._running_lock:
            unfinished = list(self._running.values())
        for event_id in unfinished:
            self._store.release_event(event_id)
        if unfinished:
            log.warning("released %d unfinished events for the next start", len(unfinished))

    def run_once(self) -> bool:
        """Process one due event if there is one; True if it did. Also what each worker thread loops on."""
        event = self._store.claim_event(lease_seconds=LEASE_SECONDS)
        if event is None:
            return False
        event_id = int(event["id"])
        with self._running_lock:
            self._running[threading.get_ident()] = event_id
        try:
            outcome = self._process(event)
        except Exception as exc:  # every failure is recorded and retried; nothing escapes the thread
            delay = BACKOFF_BASE * 4 ** (int(event["attempts"]) - 1)
            state = self._store.fail_event(event_id, error=f"{type(exc).__name__}: {exc}", retry_in=delay)
            log.warning("event %s failed (attempt %s, now %s): %s", event_id, event["attempts"], state, exc,
                        exc_info=not isinstance(exc, OSError))
        else:
            self._store.finish_event(event_id, outcome=outcome)
            log.info("event %s for ticket %s: %s", event_id, event["ticket_id"], outcome)
        finally:
            with self._running_lock:
                self._running.pop(threading.get_ident(), None)
        return True

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                worked = self.run_once()
            except Exception:  # the store itself failed (disk full, locked): back off, keep the thread alive
                log.exception("worker could not claim work")
                worked = False
            if worked:
                continue
            with self._wake:
                if self._pending_wakeups == 0 and not self._stopping.is_set():
                    self._wake.wait(self._poll)
                self._pending_wakeups = max(0, self._pending_wakeups - 1)
        self._store.close()
