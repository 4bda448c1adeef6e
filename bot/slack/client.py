"""The Slack Web API client Seam uses everywhere, and the few look-ups about people it needs.

Every call goes through `SeamWebClient.api_call`: what is sent is made encodable first (a lone surrogate from a
ticket or a Slack payload becomes U+FFFD instead of failing the request), card numbers and IBANs in it are masked
(`[slack] mask_payment`, on by default: the last line of defence behind the pipeline, which masks ticket text
before the builders cut it to Slack's limits), and an optional observer hears how each call ended
(`bot.flows.health` keeps the last authentication or channel error for /healthz).

The client retries a call that failed on the way (a lost connection, a 500 or 503, a 429 after its Retry-After)
— except a post Seam makes exactly once: a chat.postMessage carrying Seam's message metadata (`seam_…`: a card,
a transcript part, a thread note, a queued announcement). Slack may have posted it before the connection dropped
or the gateway gave up, and sent again blindly it would show twice. Such a failure is raised instead, and the
job's own retry looks for the post by its metadata before posting again (bot.slack.poster). A 429 is still
retried: Slack refused that request unread.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest

from bot.pii import mask_payment as _mask_payment
from bot.text import encodable_all

# Seconds per HTTP attempt: Slack answers in well under one; a connection that hangs is retried twice at most.
TIMEOUT = 10
# The metadata event types of Seam's posts start with this (bot.slack.blocks, bot.slack.poster).
SEAM_METADATA_PREFIX = "seam_"
# (method, channel or None, the Slack error code or None when the call succeeded)
Observer = Callable[[str, str | None, str | None], None]


class SeamWebClient(WebClient):
    """slack_sdk's client, with what it sends made encodable and each outcome told to `observer`."""

    observer: Observer | None = None
    mask_payment: bool = True

    def api_call(self, api_method: str, *, http_verb: str = "POST", files: dict | None = None,
                 data: dict | None = None, params: dict | None = None, json: dict | None = None,
                 headers: dict | None = None, auth: dict | None = None) -> Any:
        data, params, json = encodable_all(data), encodable_all(params), encodable_all(json)
        if self.mask_payment:
            data, params, json = _masked(data), _masked(params), _masked(json)
        channel = next((str(a["channel"]) for a in (json, data, params) if isinstance(a, dict) and a.get("channel")),
                       None)
        try:
            response = super().api_call(api_method, http_verb=http_verb, files=files, data=data, params=params,
                                        json=json, headers=headers, auth=auth)
        except SlackApiError as exc:
            self._tell(api_method, channel, str(exc.response.get("error") or f"HTTP {exc.response.status_code}"))
            raise
        self._tell(api_method, channel, None)
        return response

    def _tell(self, method: str, channel: str | None, error: str | None) -> None:
        if self.observer is not None:
            try:
                self.observer(method, channel, error)
            except Exception:  # watching must never break a call
                pass


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return _mask_payment(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_masked(v) for v in value)
    return value


def posted_once(request: HttpRequest) -> bool:
    """The request is a chat.postMessage of one of Seam's once-only posts (its metadata's event type is Seam's)."""
    if not request.url.rstrip("/").endswith("/chat.postMessage") or not request.data:
        return False
    try:
        text = request.data.decode("utf-8") if isinstance(request.data, bytes) else str(request.data)
        body = json.loads(text) if text.lstrip().startswith("{") else {
            key: values[-1] for key, values in parse_qs(text).items()}
        metadata = body.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        return str((metadata or {}).get("event_type", "")).startswith(SEAM_METADATA_PREFIX)
    except (ValueError, AttributeError, TypeError):
        return False


class _NotOncePosts:
    """A retry handler that leaves Seam's once-only posts alone (see the module docstring)."""

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        return not posted_once(request) and super()._can_retry(  # type: ignore[misc]
            state=state, request=request, response=response, error=error)


class _ConnectionRetries(_NotOncePosts, ConnectionErrorRetryHandler):
    pass


class _ServerErrorRetries(_NotOncePosts, ServerErrorRetryHandler):
    pass


def slack_client(*, token: str | None, base_url: str, observer: Observer | None = None,
                 mask_payment: bool = True) -> SeamWebClient:
    """The Web API client: bounded timeout; retries on connection errors, 5xx and 429 (sleeping Retry-After),
    but not a once-only post that may have landed (`posted_once`)."""
    client = SeamWebClient(
        token=token, base_url=base_url, timeout=TIMEOUT,
        retry_handlers=[_ConnectionRetries(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=5),
                        _ServerErrorRetries(max_retry_count=3)],
    )
    client.observer = observer
    client.mask_payment = mask_payment
    return client


def profile_email(slack: WebClient, user_id: str) -> str | None:
    """The email on a Slack user's profile (needs users:read.email); SlackApiError when Slack refuses."""
    profile = slack.users_info(user=user_id)["user"].get("profile") or {}
    return profile.get("email") or None


def display_name(slack: WebClient, user_id: str) -> str:
    """How to name a person in text written outside Slack (a helpdesk note): their name, else their id."""
    try:
        user = slack.users_info(user=user_id)["user"]
        return user.get("real_name") or user.get("name") or user_id
    except SlackApiError:
        return user_id
