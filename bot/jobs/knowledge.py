"""Knowledge synced from the helpdesk: its help-centre articles and macros (canned responses, saved replies,
message templates), read through `Helpdesk.knowledge()` as clean text, kept in the store, and handed to the engine
when they change. `python -m bot knowledge sync` runs one round; `serve` runs one at start and then every
`[knowledge] sync_interval` seconds.

A round reads the whole listing first. Only then does it store anything: new articles are added, changed ones
updated, and the ones the helpdesk no longer lists retired. A round that fails half way (the helpdesk down, a
page refused) raises before the store is touched, so it can never retire what it did not get to read.

Placeholders: a macro says "Hi {{ticket.requester.first_name}}," for the helpdesk to fill in. The placeholders
that only name the customer or the signing agent are taken out here ("Hi there,"; `bot.text.
without_name_placeholders`); an article whose text still holds one (`{{ticket.id}}`, a Liquid `{% if %}`) is
stored with `needs_person` and is evidence and a draft at most, never an answer Seam sends on its own
(`bot.policy.decide`, the placeholders reason).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.helpdesk.base import Helpdesk
from bot.models import Article
from bot.store import Store
from bot.text import has_placeholder, without_name_placeholders

log = logging.getLogger(__name__)

# The first round in `serve` runs at start, not a whole interval later: a new deployment answers from its help
# centre at once, and one restarted picks up what changed while it was down.
FIRST_ROUND_AFTER = 0.0


@dataclass(frozen=True)
class SyncResult:
    added: int
    updated: int
    unchanged: int
    retired: int
    needs_person: int  # of the articles listed, how many still hold a template placeholder

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.retired)

    def summary(self) -> str:
        return (f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, {self.retired} retired"
                + (f" ({self.needs_person} with placeholders: drafted at most)" if self.needs_person else ""))


def prepared(article: Article) -> Article:
    """An article as it is stored: the placeholders that only name someone taken out of its text."""
    body = without_name_placeholders(article.body)
    return article if body == article.body else replace(article, body=body)


def sync_knowledge(store: Store, helpdesk: Helpdesk) -> SyncResult:
    """One round: read everything the helpdesk lists, then store it and retire what it no longer lists.
    Raises (HelpdeskError, usually) before writing anything when the listing fails."""
    articles = [prepared(a) for a in helpdesk.knowledge() if a.id and a.body.strip()]
    counts = store.upsert_knowledge(helpdesk=helpdesk.name, articles=articles)
    retired = store.retire_knowledge(helpdesk=helpdesk.name, keep={a.id for a in articles})
    return SyncResult(**counts, retired=retired,
                      needs_person=len({a.id for a in articles if has_placeholder(a.body)}))


class KnowledgeSync:
    """A periodic job (bot.jobs.runner): every `interval` seconds (0: off), one sync round; then `refresh()`,
    which brings the engine up to date when the synced knowledge changed (this round or another process's)."""

    name = "knowledge"

    def __init__(self, *, store: Store, helpdesk: Helpdesk, interval: float,
                 refresh: Callable[[], object] | None = None, first_round_after: float = FIRST_ROUND_AFTER,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._helpdesk = helpdesk
        self.interval = interval
        self.first_round_after = min(first_round_after, interval) if interval > 0 else 0.0
        self._refresh = refresh
        self._clock = clock

    def run_once(self) -> SyncResult:
        started = self._clock()
        result = sync_knowledge(self._store, self._helpdesk)
        log.log(logging.INFO if result.changed else logging.DEBUG, "knowledge sync from %s in %.1f s: %s",
                self._helpdesk.name, self._clock() - started, result.summary())
        if self._refresh is not None:
            self._refresh()
        return result
