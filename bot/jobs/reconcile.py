"""Reconciliation: a lost webhook must not lose a ticket. Every few minutes, ask the helpdesk which tickets
changed since the last check and record an event for each, exactly as a webhook would. Updates the webhooks
already delivered are harmless: the pipeline sees the same latest comment and calls it a duplicate; replies by
agents or by Seam are skipped there too. When an adapter's listing is cut short (`Updates.resume_from`), the next
check starts where the reading stopped rather than at the time of this one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bot.helpdesk.base import Helpdesk
from bot.store import Store
from bot.text import iso

log = logging.getLogger(__name__)

SINCE_KEY = "reconcile_since"
# Zendesk's incremental export refuses a start time less than a minute old; overlap a little instead.
OVERLAP_SECONDS = 120


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
        """Record events for tickets updated since the last check; return how many were new."""
        now = self._clock()
        since = self._store.get_setting(SINCE_KEY) or now - self.interval
        start = min(since, now - 60) - OVERLAP_SECONDS
        updated = self._helpdesk.updated_since(start)
        created = 0
        for ticket_id, updated_at in updated:
            _, new = self._store.record_event(helpdesk=self._helpdesk.name, ticket_id=ticket_id, body="{}",
                                              dedupe_key=f"{self._helpdesk.name}:reconcile:{ticket_id}:{updated_at}")
            created += new
        # A listing cut short (more updates than an adapter reads in one call, after an outage say) covers the
        # window only up to `resume_from`, a time on the helpdesk's own clock: the next check starts there (the
        # overlap is for our clock's view of "now", so it is added back).
        resume_from = updated.resume_from
        if resume_from is not None:
            log.warning("reconciliation read %d ticket updates but not all of them since %s: going on from %s "
                        "next time", len(updated), iso(datetime.fromtimestamp(start, UTC)),
                        iso(datetime.fromtimestamp(resume_from, UTC)))
        self._store.set_setting(SINCE_KEY, now if resume_from is None else max(since, resume_from + OVERLAP_SECONDS),
                                actor="seam", audit=False)
        if created:
            log.info("reconciliation found %d ticket updates to check (of %d since the last check)", created,
                     len(updated))
            self._notify()
        return created
