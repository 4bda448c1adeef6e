"""What every helpdesk adapter does with one HTTP call: send it, sort its failure into "worth retrying" or
"tell the caller", read its JSON, and retry within a deadline. Each adapter keeps its own pacing, auth and URLs."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

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


def checked(label: str, response: httpx.Response, *, retry_after: str | None = None, error_at: int = 300,
            show_body: bool = True, once: bool = False) -> Any:
    """The response's JSON ({} when empty); RetryableError for 408/429/5xx (waiting `retry_after`, else its
    Retry-After header), HelpdeskError for any other status from `error_at` up (its error code in the message;
    the body, masked and cut, as its `detail`, unless `show_body` is False) or a body that is not JSON. A write
    that must happen `once` (a reply, a note) answered 502/504 is a HelpdeskError, not retried: it may have
    landed, and its caller checks before repeating it. A redirect is an error too (the clients follow none): it
    applied nothing, and taken for success a reply would pass for sent — an API URL on http:// that the helpdesk
    sends to https://, an account renamed."""
    status = response.status_code
    if once and status in MAYBE_LANDED:
        raise HelpdeskError(f"{label} answered {status}; it may have landed", status=status)
    if status in RETRYABLE_STATUS:
        raise RetryableError(f"{label} answered {status}", status=status,
                             retry_after=parse_retry_after(retry_after or response.headers.get("Retry-After")))
    if status >= error_at:
        code = error_code(response) if show_body else None
        if 300 <= status < 400:
            code = f"a redirect to {_host_of(response.headers.get('location', ''))}: check the API URL"
        raise HelpdeskError(f"{label} answered {status}" + (f" ({code})" if code else ""), status=status,
                            detail=excerpt(response.text, 300) if show_body and response.text.strip() else None)
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        raise HelpdeskError(f"{label} answered non-JSON") from None


def _host_of(location: str) -> str:
    """The scheme and host a redirect points to (its path and query may carry what was sent: left out of logs)."""
    target = urlsplit(location)
    return f"{target.scheme}://{target.netloc}" if target.netloc else "another path"


# An error code is a name ("RecordInvalid", "invalid_value", "Bad Request"), never a sentence: a value that is
# not one may quote what was refused, and stays out of the message that is logged.
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,39}(?: [A-Za-z][A-Za-z0-9_-]{0,19}){0,2}")
_CODE_KEYS = ("error", "code", "title", "type")


def error_code(response: httpx.Response) -> str | None:
    """The helpdesk's error code in its JSON answer, if it gives one that looks like a name: Zendesk's `error`,
    Freshdesk's `code` (top level or of its first `errors` entry), Front's `_error.title`, Help Scout's or
    Gorgias's `error`/`type`; None otherwise."""
    try:
        body = response.json()
    except ValueError:
        return None
    places = [body]
    if isinstance(body, dict):
        places += [body.get("_error"), body.get("error")]
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            places.append(errors[0])
    for place in places:
        if not isinstance(place, dict):
            continue
        for key in _CODE_KEYS:
            value = place.get(key)
            if isinstance(value, str) and _CODE.fullmatch(value.strip()):
                return value.strip()
    return None


def on_configured_host(link: str, *, base_url: str) -> str:
    """A next-page link a helpdesk gave, to follow with a client whose base is `base_url` (the host Seam was
    configured with). A link on that very scheme, host and port is taken whole (a server mounted under a path names
    the path in its links). Any other is taken as a path and query under `base_url`: behind a proxy (`*_API_URL`)
    the helpdesk's links still name its own host, and taken whole they would stop the reading of every listing at
    its first page; the credentials go only where Seam was told to send them, never to a host an answer names."""
    target, base = urlsplit(link), urlsplit(base_url)
    if (target.scheme, target.netloc) == (base.scheme, base.netloc):
        return link
    return target.path + (f"?{target.query}" if target.query else "")


def with_retries(once: Callable[[], T], *, deadline: float) -> T:
    """`once()` retried with backoff (honouring Retry-After) while it raises RetryableError, within `deadline`;
    then HelpdeskError saying it gave up."""
    try:
        return retrying(deadline=deadline)(once)
    except RetryableError as exc:
        raise HelpdeskError(f"{exc} (gave up after retries)", status=exc.status, retry_after=exc.retry_after) from exc
