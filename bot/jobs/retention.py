"""The retention sweep: with `[retention] erase_after` set, what Seam kept of a ticket's conversation is erased
once nothing happened on the ticket for that long — as `python -m bot forget` erases it (bot.flows.erasure), a
bounded number of tickets per round, every ROUND_SECONDS. Off (interval 0) when `erase_after` is 0, the default.
"""

from __future__ import annotations

from collections.abc import Callable

# Erasure is a policy measured in days: an hourly round is soon enough, and the first one waits a minute so a
# start-up's catching up (interrupted jobs, stale cards) goes first.
ROUND_SECONDS = 3600.0
FIRST_ROUND_AFTER = 60.0
# Tickets per round: one transaction each round, short enough not to hold the writers up.
ROUND_LIMIT = 500


class RetentionSweep:
    """A periodic job (bot.jobs.runner): every ROUND_SECONDS, `sweep(limit=…)` erases one round of tickets."""

    name = "retention"
    first_round_after = FIRST_ROUND_AFTER

    def __init__(self, *, sweep: Callable[..., int], enabled: bool, limit: int = ROUND_LIMIT) -> None:
        self._sweep = sweep
        self.interval = ROUND_SECONDS if enabled else 0.0
        self.limit = limit

    def run_once(self) -> int:
        """One round; how many tickets were erased."""
        return self._sweep(limit=self.limit)
