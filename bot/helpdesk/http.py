"""What every helpdesk adapter does with one HTTP call: send it, sort its failure into "worth retrying" or
"tell the caller", read its JSON, and retry within a deadline. Each adapter keeps its own pacing, auth and URLs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from bot.helpdesk.base import HelpdeskError
from bot.pii import excerpt
from bot.retry import RETRYABLE_STATUS, RetryableError, parse_retry_after, retrying

T = TypeVar("T")
# A gateway's 502 or 504 may stand in front of a write that went through: like a timeout, an answer that says
# nothing of whether it landed.
MAYBE_LANDED = frozenset({502, 504})


def send(label: str, request: Callable[[], httpx.Response], *, idempotent: bool) -> httpx.Response:
    """`request()`, with a connection that never opened retried, and one that broke off retried only when the
    call is idempotent: a write that timed out may have landed, and its caller checks before repeating it."""
    try:
        return request()
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise RetryableError(f"{label}: unreachable ({exc})") from exc
    except httpx.TransportError as exc:
        if idempotent:
            raise RetryableError(f"{label} failed: {exc}") from exc
        raise HelpdeskError(f"{label} failed: {exc}") from exc


def checked(label: str, response: httpx.Response, *, retry_after: str | None = None, error_at: int = 400,
            show_body: bool = True, once: bool = False) -> Any:
    """The response's JSON ({} when empty); RetryableError for 408/429/5xx (waiting `retry_after`, else its
    Retry-After header), HelpdeskError for any other status from `error_at` up (the body masked and cut, unless
    `show_body` is False) or a body that is not JSON. A write that must happen `once` (a reply, a note) answered
    502/504 is a HelpdeskError, not retried: it may have landed, and its caller checks before repeating it."""
    status = response.status_code
    if once and status in MAYBE_LANDED:
        raise HelpdeskError(f"{label} answered {status}; it may have landed", status=status)
    if status in RETRYABLE_STATUS:
        raise RetryableError(f"{label} answered {status}", status=status,
                             retry_after=parse_retry_after(retry_after or response.headers.get("Retry-After")))
    if status >= error_at:
        detail = f": {excerpt(response.text, 300)}" if show_body else ""
        raise HelpdeskError(f"{label} answered {status}{detail}", status=status)
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        raise HelpdeskError(f"{label} answered non-JSON") from None


def with_retries(once: Callable[[], T], *, deadline: float) -> T:
    """`once()` retried with backoff (honouring Retry-After) while it raises RetryableError, within `deadline`;
    then HelpdeskError saying it gave up."""
    try:
        return retrying(deadline=deadline)(once)
    except RetryableError as exc:
        raise HelpdeskError(f"{exc} (gave up after retries)", status=exc.status) from exc
