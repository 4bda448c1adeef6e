"""The queue's worker: take one due job from the store, run the handler for its kind, record the outcome.

The webhook answers as soon as the job is stored and calls `Runner.notify()`; a worker thread wakes, claims the
job with a lease and runs its handler (for a ticket event, `Pipeline.process`; a ticket's events one at a time,
bot.store `claim_event`). A failure is retried with
growing delays (bot.store `retry_delay`). One because Slack or the helpdesk is down (bot.errors `transient`: a
429, a 5xx, a lost connection) is retried every few minutes until the service is back — for up to a day
(bot.store `MAX_OUTAGE`), so an outage costs no escalation; any other failure parks the job as `dead` after five
(`MAX_ATTEMPTS`), for a person to see. The first failure of a job during an outage is logged as a warning, the
later ones at debug level, and the success that ends the wait at info: a long outage writes a few lines per
job, not one per try. Jobs left `processing` by a crash are taken again at the next start (or once their lease
runs out), so a restart loses nothing.

Jobs that failed before (a helpdesk that hangs on one ticket, say) may hold only `max_retrying` threads at once
(the runner leaves one thread for first attempts), so however many jobs hang, new tickets keep flowing. What each
thread is running, and for how long, is `running()`: `/healthz` shows it, and names the jobs running for too long.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from bot.errors import asked_to_wait, from_a_service, transient
from bot.helpdesk.base import HelpdeskError, explained
from bot.models import Event, EventState
from bot.store import Store

log = logging.getLogger(__name__)

LEASE_SECONDS = 300.0

Handler = Callable[[Event], str]  # runs one job; returns a short outcome; raises on a failure worth retrying


class Worker:
    def __init__(self, *, store: Store, handlers: Mapping[str, Handler],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._handlers = dict(handlers)
        self._clock = clock
        self._running: dict[int, tuple[Event, float]] = {}  # thread id -> (job being processed, since when)
        self._running_lock = threading.Lock()

    def run_once(self, *, max_retrying: int | None = None) -> bool:
        """Process one due job if there is one; True if it did. What each worker thread loops on. With
        `max_retrying`, a job that failed before is taken only while fewer than that many are running."""
        with self._running_lock:  # the count and the claim together: two threads cannot both take the last slot
            retrying = sum(1 for event, _ in self._running.values() if event.attempts > 1)
            event = self._store.claim_event(lease_seconds=LEASE_SECONDS,
                                            retries=max_retrying is None or retrying < max_retrying)
            if event is None:
                return False
            self._running[threading.get_ident()] = (event, self._clock())
        try:
            handler = self._handlers.get(event.kind)
            if handler is None:
                raise LookupError(f"no handler for jobs of kind {event.kind!r}")
            outcome = handler(event)
        except Exception as exc:  # every failure is recorded and retried; nothing escapes the thread
            down = transient(exc)
            # The job's error is kept with the ticket (and erased with it); the log gets the message alone.
            state = self._store.fail_event(event.id, error=f"{type(exc).__name__}: {explained(exc)}", transient=down,
                                           at_least=asked_to_wait(exc))
            _log_failure(event, exc, state=state, down=down)
        else:
            self._store.finish_event(event.id, outcome=outcome)
            if event.transient_failures:
                log.info("event %s for ticket %s: %s (after %d tries while a service was down)", event.id,
                         event.ticket_id, outcome, event.transient_failures)
            else:
                log.info("event %s for ticket %s: %s", event.id, event.ticket_id, outcome)
        finally:
            with self._running_lock:
                self._running.pop(threading.get_ident(), None)
        return True

    def running(self) -> list[dict]:
        """The jobs being processed now, longest-running first: id, kind, ticket_id, attempt and seconds."""
        now = self._clock()
        with self._running_lock:
            jobs = list(self._running.values())
        return sorted(({"id": event.id, "kind": event.kind, "ticket_id": event.ticket_id, "attempt": event.attempts,
                        "seconds": round(now - since, 1)} for event, since in jobs), key=lambda j: -j["seconds"])

    def release_running(self) -> int:
        """Give back the jobs still running (at shutdown) so the next start takes them again at once."""
        with self._running_lock:
            unfinished = [event.id for event, _ in self._running.values()]
        for event_id in unfinished:
            self._store.release_event(event_id)
        return len(unfinished)


def _log_failure(event: Event, exc: Exception, *, state: EventState, down: bool) -> None:
    """One failed attempt in the log, with a traceback only for what no outside service explains (a bug). While a
    service is down, a job's first failure is a warning and the next ones debug lines: a three-hour outage with
    500 jobs waiting is 500 warnings, not tens of thousands."""
    if down and state != EventState.DEAD:
        first = event.transient_failures == 0
        log.log(logging.WARNING if first else logging.DEBUG,
                "event %s (%s, ticket %s) failed because a service is down (attempt %s, %s while down): %s; "
                "retried until it is back", event.id, event.kind, event.ticket_id, event.attempts,
                event.transient_failures + 1, exc)
        return
    traceback = not (from_a_service(exc) or isinstance(exc, HelpdeskError))
    if state == EventState.DEAD:
        log.error("event %s (%s, ticket %s) is dead after attempt %s (%s): %s; `python -m bot jobs` lists it",
                  event.id, event.kind, event.ticket_id, event.attempts,
                  "a service stayed down too long" if down else "it failed too often", exc, exc_info=traceback)
    else:
        log.warning("event %s (%s, ticket %s) failed (attempt %s): %s", event.id, event.kind, event.ticket_id,
                    event.attempts, exc, exc_info=traceback)
