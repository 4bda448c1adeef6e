"""Pacing of Slack posts per channel: Slack allows about one chat.postMessage per second per channel, with short
bursts. A burst of escalations is spread out here instead of being refused with 429s.

The generic cell rate algorithm: each channel has a theoretical arrival time; a post may go when it is no more
than `burst - 1` intervals ahead of now. `reserve` hands out slots in the order they are asked for. `wait` hands
each slot, when it comes, to the most urgent post waiting for that channel — the lowest `priority`, then the
first to ask — so in a burst a new escalation's card (priority 0) goes before an older escalation's transcript
(`bot.slack.poster` gives each kind of post its priority). Waiting happens outside the lock, in the injected
`sleep`, so a fake clock drives it in tests and benchmarks.

The helpdesk adapters pace their API calls with the same pacer, one "channel" per kind of call, built by
`per_minute` from `[helpdesk]`.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

# How soon a post that is not first in line looks again when a slot is free (the first one is about to take it).
NEXT_LOOK_SECONDS = 0.05
# A slot this close is taken now: after sleeping until it, float rounding may leave a few attoseconds to go.
SLACK_SECONDS = 1e-9


class ChannelPacer:
    def __init__(self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._interval = 1.0 / rate
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        self._arrival: dict[str, float] = {}
        self._lock = threading.Lock()
        self._waiting: dict[str, list[tuple[int, int]]] = {}  # channel -> heap of (priority, ticket number)
        self._tickets = itertools.count()

    def reserve(self, channel: str) -> float:
        """Take the next slot for `channel`; return how long to wait before using it."""
        with self._lock:
            now = self._clock()
            wait = self._free_in(channel, now)
            self._take(channel, now)
            return wait

    def wait(self, channel: str, *, priority: int = 0) -> float:
        """Block until a post to `channel` is within Slack's pace and no more urgent post (a lower `priority`, or
        the same one asked earlier) is waiting for it; return the seconds waited."""
        started = self._clock()
        with self._lock:
            ticket = (priority, next(self._tickets))
            heapq.heappush(self._waiting.setdefault(channel, []), ticket)
        slept_for: float | None = None  # the channel's arrival time the first in line slept its way to
        try:
            while True:
                with self._lock:
                    now = self._clock()
                    free_in = self._free_in(channel, now)
                    queue = self._waiting[channel]
                    first = queue[0] == ticket
                    arrival = self._arrival.get(channel)
                    # Free now, or slept for as long as this slot asked while first in line and nobody took a
                    # slot meanwhile (a clock that the sleep does not move — a test's — must not spin).
                    if first and (free_in <= SLACK_SECONDS or (slept_for is not None and slept_for == arrival)):
                        heapq.heappop(queue)
                        self._take(channel, now)
                        return self._clock() - started
                    # The first in line sleeps until its slot; the others look again then, or a moment after
                    # the first one has taken it.
                    slept_for = arrival if first else None
                    delay = free_in if first else max(free_in, min(self._interval, NEXT_LOOK_SECONDS))
                self._sleep(delay)
        except BaseException:
            with self._lock:
                queue = self._waiting[channel]
                if ticket in queue:
                    queue.remove(ticket)
                    heapq.heapify(queue)
            raise

    def _free_in(self, channel: str, now: float) -> float:
        arrival = max(self._arrival.get(channel, now), now)
        return max(0.0, arrival - now - (self._burst - 1) * self._interval)

    def _take(self, channel: str, now: float) -> None:
        self._arrival[channel] = max(self._arrival.get(channel, now), now) + self._interval


def per_minute(limit: float | None, *, burst: int, default: float | None = None) -> ChannelPacer | None:
    """The pacer for `limit` calls a minute as `[helpdesk]` gives it: unset keeps `default` (None: no pacing), 0
    paces nothing. Every helpdesk adapter paces by it, and so do the `--from-api` exports, alike."""
    limit = default if limit is None else limit
    return ChannelPacer(rate=limit / 60, burst=burst) if limit else None
