"""The retention sweep: with `[retention] erase_after` set, what Seam kept of a ticket's conversation is erased
once nothing happened on the ticket for that long — as `python -m bot forget` erases it (bot.flows.erasure) —
every RUN_SECONDS, in rounds of ROUND_LIMIT tickets; each run first drops the cached sentence vectors older than
`erase_after`. Off (interval 0) when `erase_after` is 0, the default.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Erasure is a policy measured in days: an hourly run is soon enough, and the first one waits a minute so a
# start-up's catching up (interrupted jobs, stale cards) goes first.
RUN_SECONDS = 3600.0
FIRST_ROUND_AFTER = 60.0
# Tickets per round, one transaction each: 500 hold the store's writers up for about 0.2 s (bench/erasure.py).
# A run goes on while rounds come back full, at most MAX_ROUNDS (25,000 tickets an hour), pausing between them
# so webhooks and clicks write in between: a first run over years of tickets takes hours, not months.
ROUND_LIMIT = 500
MAX_ROUNDS = 50
ROUND_PAUSE_SECONDS = 0.2


class RetentionSweep:
    """A periodic job (bot.jobs.runner): every RUN_SECONDS, `expire()` (the old cached vectors), then rounds of
    `sweep(limit=…)`, each erasing up to `limit` tickets, while they come back full (at most MAX_ROUNDS)."""

    name = "retention"
    first_round_after = FIRST_ROUND_AFTER

    def __init__(self, *, sweep: Callable[..., int], enabled: bool, expire: Callable[[], int] | None = None,
                 limit: int = ROUND_LIMIT, pause: Callable[[float], None] = time.sleep) -> None:
        self._sweep = sweep
        self._expire = expire
        self._pause = pause
        self.interval = RUN_SECONDS if enabled else 0.0
        self.limit = limit

    def run_once(self) -> int:
        """One run; how many tickets were erased."""
        if self._expire is not None:
            self._expire()
        erased = 0
        for round_number in range(MAX_ROUNDS):
            if round_number:
                self._pause(ROUND_PAUSE_SECONDS)
            count = self._sweep(limit=self.limit)
            erased += count
            if count < self.limit:
                break
        return erased
