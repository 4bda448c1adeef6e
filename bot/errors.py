"""The errors the core raises for people to read: each message is one line naming what to fix; and how to tell a
failure of an outside service that is down from a failure of the work itself (`transient`), and how long such a
service asked to be left alone (`asked_to_wait`).

`bot.cli` turns them into a one-line error on stderr and a non-zero exit; nothing else catches them broadly.
Integration errors (a helpdesk call that failed, a forged webhook) live with their integration in
`bot.helpdesk.base`.
"""

from __future__ import annotations

import sys


class ConfigError(Exception):
    """Configuration that cannot work: a missing variable, a bad value in seam.toml, an unreadable rule."""


class InputError(ConfigError):
    """An input file that cannot be used at all (a bad row in a usable file is reported and skipped instead)."""


# Slack's error codes that speak of Slack as a whole rather than of one call: it throttles or is down. Slack sends
# some of them with HTTP 200, so the status alone does not tell (bot.slack.poster's card sweep stops its round on
# them too).
SLACK_DOWN_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                               "request_timeout"})
# HTTP statuses of a service that is overloaded or down, not refusing this request: timed out, throttled, 5xx.
_DOWN_STATUSES = frozenset({408, 429})
# The longest wait a service's Retry-After may impose on a job (a date far off, or a typo, must not park it for days).
MAX_RETRY_AFTER = 3600.0
# Connection errors are OSErrors; these OSErrors are about local files, which no outage explains.
_LOCAL_OS_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


def _answer(exc: BaseException) -> tuple[int | None, str | None]:
    """The HTTP status and the Slack error code a refused call carries, each None when it has none: `status` on
    bot.helpdesk.base.HelpdeskError (and bot.retry.RetryableError, urllib's HTTPError), `response.status_code` and
    `response["error"]` on slack_sdk's SlackApiError (the status alone on httpx.HTTPStatusError). Duck-typed, so
    this module imports neither slack_sdk nor the helpdesk layer."""
    status = getattr(exc, "status", None)
    response = getattr(exc, "response", None)
    if not isinstance(status, int):
        status = getattr(response, "status_code", None)
    code = None
    get = getattr(response, "get", None)
    if callable(get):
        try:
            code = get("error")
        except (AttributeError, TypeError, ValueError):  # slack_sdk's response of a body that is not JSON
            code = None
    return (status if isinstance(status, int) else None), (code if isinstance(code, str) else None)


def _connection_failed(exc: BaseException) -> bool:
    """A connection that failed, timed out or broke off: an OSError (urllib's URLError, TimeoutError, socket
    errors) other than a local file's, or one of httpx's transport errors (an httpx error can only exist once
    httpx is loaded, so it is not imported here)."""
    if isinstance(exc, OSError):
        return not isinstance(exc, _LOCAL_OS_ERRORS)
    httpx = sys.modules.get("httpx")
    return httpx is not None and isinstance(exc, httpx.TransportError)


def from_a_service(exc: BaseException) -> bool:
    """True for a failure an outside service answered (an HTTP status, a Slack error code) or a connection that
    failed: worth one line in a log, not a traceback. False for anything else, such as a bug."""
    status, code = _answer(exc)
    return status is not None or code is not None or _connection_failed(exc)


def transient(exc: BaseException) -> bool:
    """Whether `exc` says an outside service is down or throttling — Slack or the helpdesk answered 408, 429 or
    5xx, Slack named itself down (SLACK_DOWN_ERRORS), or the connection failed — so the same work will succeed
    once the service is back. Anything else is permanent: a bug, a malformed body, a 4xx such as Slack's
    `channel_not_found`. An error raised `from` another (a helpdesk error wrapping the transport error that gave
    up, an agent action's failure wrapping the helpdesk's) is judged by the first in the chain that carries an
    answer or a lost connection."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        status, code = _answer(current)
        if status is not None or code is not None:
            return (code in SLACK_DOWN_ERRORS or status in _DOWN_STATUSES
                    or (status is not None and status >= 500))
        if _connection_failed(current):
            return True
        current = current.__cause__
    return False


def asked_to_wait(exc: BaseException) -> float | None:
    """Seconds the service that failed asked Seam to wait before asking again (a helpdesk's Retry-After, carried
    by the error or the one it came from), at most MAX_RETRY_AFTER; None when it said nothing."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after > 0:
            return min(float(retry_after), MAX_RETRY_AFTER)
        exc = exc.__cause__
    return None
