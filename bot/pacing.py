"""Pacing of Slack posts per channel: Slack allows about one chat.postMessage per second per channel, with short
bursts. A burst of escalations is spread out here instead of being refused with 429s.

The generic cell rate algorithm: each channel has a theoretical arrival time; a post may go when it is no more
than `burst - 1` intervals ahead of now. Slots are handed out under one lock, so posts leave in the order they
asked, and the waiting happens outside the lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


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

    def reserve(self, channel: str) -> float:
        """Take the next slot for `channel`; return how long to wait before using it."""
        with self._lock:
            now = self._clock()
            arrival = max(self._arrival.get(channel, now), now)
            wait = max(0.0, arrival - now - (self._burst - 1) * self._interval)
            self._arrival[channel] = arrival + self._interval
            return wait

    def wait(self, channel: str) -> float:
        """Block until a post to `channel` is within Slack's pace; return the seconds waited."""
        delay = self.reserve(channel)
        if delay > 0:
            self._sleep(delay)
        return delay
