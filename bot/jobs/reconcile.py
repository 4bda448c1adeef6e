"""Reconciliation: a lost webhook must not lose a ticket. Every few minutes, ask the helpdesk which tickets
changed since the last check and record an event for each, exactly as a webhook would. Updates the webhooks
already delivered are harmless: the pipeline sees the same latest comment and calls it a duplicate; replies by
agents or by Seam are skipped there too. When an adapter's listing is cut short (`Updates.resume_from`), the next
check starts where the reading stopped rather than at the time of this one. A newest-first listing cut short
(`Updates.unread_before`: Front's events) read the newest part of the window: the older part becomes a backlog,
read one listing per check beside the regular one, going back in time until nothing of it is left. A listing
cut short within a single instant (more updates in one second than a check reads: a bulk update) would answer the
same updates at every check and hold reconciliation there for good: the rest of that instant is left to the
webhooks, logged as an error, and the reading goes on past it. What it records waits behind the webhooks' jobs due
(`RECONCILE_PRIORITY`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bot.helpdesk.base import Helpdesk, Updates
from bot.store import Store
from bot.text import iso

log = logging.getLogger(__name__)

SINCE_KEY = "reconcile_since"
# A window a newest-first listing has not read yet: {"helpdesk": name, "from": Unix time, "to": Unix time}. It
# names its helpdesk: another helpdesk's adapter (after a switch) never reads it.
BACKLOG_KEY = "reconcile_backlog"
# What reconciliation records runs after the jobs due that webhooks (0) and escalations' threads (1,
# bot.slack.poster THREAD_JOB_PRIORITY) queued: after an outage it finds thousands of updates, and a customer
# writing now must not wait behind all of them, nor a new card's transcript and reminders.
RECONCILE_PRIORITY = 2
# Zendesk's incremental export refuses a start time less than a minute old; overlap a little instead.
OVERLAP_SECONDS = 120
# The finest difference in time a newest-first listing tells apart (Front's event times have milliseconds).
INSTANT = 0.001


class Reconciler:
    """A periodic job (bot.jobs.runner): every `interval` seconds, record an event per ticket updated since."""

    name = "reconcile"

    def __init__(self, *, store: Store, helpdesk: Helpdesk, interval: float, notify: Callable[[], None],
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._helpdesk = helpdesk
        self.interval = interval
        self._notify = notify
        self._clock = clock

    def run_once(self) -> int:
        """Record events for tickets updated since the last check (and for a window a newest-first listing left
        behind, when there is one); return how many were new."""
        now = self._clock()
        since = self._store.get_setting(SINCE_KEY) or now - self.interval
        start = min(since, now - 60) - OVERLAP_SECONDS
        backlog = self._backlog()
        updated = self._helpdesk.updated_since(start)
        created = self._record(updated)
        if backlog:
            created += self._read_backlog(*backlog)
        resume_from = updated.resume_from
        if updated.unread_before is not None:
            # Everything from `unread_before` on was read: the regular window moves on, and the part before it
            # is read from the backlog, one listing per check (merged with a backlog already waiting).
            self._add_backlog(start, updated.unread_before)
            resume_from = None
        elif resume_from is not None and math.floor(resume_from) <= math.floor(start):
            # Cut short within the very second it started from: more updates at that instant (a bulk update) than
            # one call reads. Asked from there again it would read the same ones at every check and never reach a
            # later update: the rest of that second is left to the webhooks, and the next check starts after it.
            resume_from = math.floor(start) + 1
            log.error("reconciliation read %d ticket updates at %s but not all of them (more ticket updates at one "
                      "instant than one check reads): the rest of that second is not reconciled; going on from %s",
                      len(updated), _when(math.floor(start)), _when(resume_from))
        elif resume_from is not None:
            # A listing cut short (more updates than an adapter reads in one call, after an outage say) covers
            # the window only up to `resume_from`, a time on the helpdesk's own clock: the next check starts
            # there (the overlap is for our clock's view of "now", so it is added back).
            log.warning("reconciliation read %d ticket updates but not all of them since %s: going on from %s "
                        "next time", len(updated), _when(start), _when(resume_from))
        self._store.set_setting(SINCE_KEY, now if resume_from is None else max(since, resume_from + OVERLAP_SECONDS),
                                actor="seam", audit=False)
        if created:
            log.info("reconciliation found %d ticket updates to check (of %d since the last check)", created,
                     len(updated))
            self._notify()
        return created

    def _record(self, updated: Updates) -> int:
        created = 0
        for ticket_id, updated_at in updated:
            _, new = self._store.record_event(helpdesk=self._helpdesk.name, ticket_id=ticket_id, body="{}",
                                              dedupe_key=f"{self._helpdesk.name}:reconcile:{ticket_id}:{updated_at}",
                                              priority=RECONCILE_PRIORITY)
            created += new
        return created

    def _read_backlog(self, start: float, end: float) -> int:
        """One listing of the backlog window, newest first: what it does not reach stays in the backlog."""
        earlier = self._helpdesk.updated_since(start, before=end)
        created = self._record(earlier)
        reached = earlier.unread_before
        if reached is None:
            log.info("reconciliation read the backlog from %s to %s whole", _when(start), _when(end))
            self._set_backlog(None)
        elif reached < end:
            self._set_backlog((start, reached))
        else:
            # A listing's worth of updates at one instant: read again, it would answer the same ones at every
            # check. The rest of that second is left to the webhooks, and the backlog goes on before it.
            earlier_end = end - INSTANT
            self._set_backlog((start, earlier_end) if earlier_end > start else None)
            log.error("reconciliation cannot read back past %s: more ticket updates at that instant than one "
                      "listing holds; the rest of that second is not reconciled", _when(end))
        return created

    def _add_backlog(self, start: float, unread_before: float) -> None:
        waiting = self._backlog()
        window = (start, unread_before) if not waiting else (min(waiting[0], start), max(waiting[1], unread_before))
        log.warning("reconciliation read the newest ticket updates since %s but not the older ones: reading back "
                    "from %s in the next checks", _when(start), _when(unread_before))
        self._set_backlog(window)

    def _backlog(self) -> tuple[float, float] | None:
        """The window waiting to be read, if it was left by this helpdesk."""
        waiting = self._store.get_setting(BACKLOG_KEY)
        if not isinstance(waiting, dict) or waiting.get("helpdesk") != self._helpdesk.name:
            return None
        return float(waiting["from"]), float(waiting["to"])

    def _set_backlog(self, window: tuple[float, float] | None) -> None:
        value = None if window is None else {"helpdesk": self._helpdesk.name, "from": window[0], "to": window[1]}
        self._store.set_setting(BACKLOG_KEY, value, actor="seam", audit=False)


def _when(moment: float) -> str:
    return iso(datetime.fromtimestamp(moment, UTC))
