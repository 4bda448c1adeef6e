"""Retry policy for outbound HTTP calls: exponential backoff with jitter that honours `Retry-After`.

Used by the helpdesk adapters (and later the OpenAI engine); Slack calls go through slack_sdk's own retry
handlers, which already sleep for `Retry-After`.
"""

from __future__ import annotations

from collections.abc import Callable
from email.utils import parsedate_to_datetime
from time import time

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_base, wait_exponential_jitter

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Every call to a helpdesk is bounded well under the job queue's lease (bot.jobs.worker.LEASE_SECONDS): a server
# that accepts the connection and then says nothing costs READ_TIMEOUT per attempt, and the attempts of one call
# stop after CALL_DEADLINE — about 21 s for a hung GET (two attempts) instead of a minute. The job then fails and
# is retried later with backoff, while the other workers keep taking other tickets.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
CALL_DEADLINE = 20.0


class RetryableError(Exception):
    """A failure worth another try; `retry_after` (seconds) is the server's own word on when."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None


class wait_retry_after(wait_base):
    """Wait what the server asked for (capped), else fall back to exponential backoff with jitter."""

    def __init__(self, *, fallback: wait_base, cap: float) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(self.cap, retry_after)
        return min(self.cap, self.fallback(retry_state))


def _asked_to_wait_too_long(*, cap: float, deadline: float) -> Callable[[RetryCallState], bool]:
    """Stop when the server's own Retry-After is longer than `cap` (waiting only `cap` would ask again too soon), or
    would end after the call's `deadline`: the job is retried once it is over instead. Seam's own backoff, with no
    word from the server, may still end a little past the deadline."""
    def stop(retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        retry_after = getattr(error, "retry_after", None)
        return retry_after is not None and (
            retry_after > cap or (retry_state.seconds_since_start or 0.0) + retry_after >= deadline)
    return stop


def retrying(*, attempts: int = 5, deadline: float = 60.0, initial: float = 0.5, cap: float = 30.0,
             retry_on: Callable[[BaseException], bool] | None = None) -> Retrying:
    """A tenacity `Retrying` for one outbound call: bounded both in attempts and in total time. It gives up rather
    than ask again before a server's Retry-After is over when that wait is over `cap` or outlasts `deadline`:
    asked again inside its window, a rate-limited server answers 429 again. The caller's job is then retried once
    that wait is over (`RetryableError.retry_after`, bot.jobs.worker)."""
    return Retrying(
        retry=retry_if_exception(retry_on or (lambda exc: isinstance(exc, RetryableError))),
        wait=wait_retry_after(fallback=wait_exponential_jitter(multiplier=initial, max=cap, jitter=initial), cap=cap),
        stop=stop_after_attempt(attempts) | stop_after_delay(deadline) | _asked_to_wait_too_long(cap=cap,
                                                                                                deadline=deadline),
        reraise=True,
    )
