"""Waiting for asynchronous work: `wait_until` polls a predicate until it returns something truthy (and returns
that), or fails the test with what it was waiting for once the timeout has passed. The default is generous: the
suite runs on three workers on two cores beside real `serve` processes, and a passing wait costs nothing extra.
"""

from __future__ import annotations

import time


def wait_until(predicate, *, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
