"""The card sweep: an escalation's card in Slack is a view of its row, re-rendered after every change; one left
behind (a crash between the change and its chat.update, or an update Slack refused) is caught up here. Every
`[slack] card_sync_interval` seconds, and once at start, the poster's `refresh_stale` re-renders the stale cards,
the oldest change first, a bounded number per round (bot.slack.poster)."""

from __future__ import annotations

from collections.abc import Callable

# The first round runs at start: what the last process left behind (a crash mid-action) is caught up at once.
FIRST_ROUND_AFTER = 0.0


class CardSync:
    """A periodic job (bot.jobs.runner): every `interval` seconds, `sweep(limit=…)` one round of stale cards."""

    name = "card_sync"
    first_round_after = FIRST_ROUND_AFTER

    def __init__(self, *, sweep: Callable[..., int], interval: float, limit: int) -> None:
        self._sweep = sweep
        self.interval = interval
        self.limit = limit

    def run_once(self) -> int:
        """One round; how many cards were updated."""
        return self._sweep(limit=self.limit)
