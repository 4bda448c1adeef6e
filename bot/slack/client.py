"""The Slack Web API client Seam uses everywhere, and the few look-ups about people it needs."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)


def slack_client(*, token: str | None, base_url: str) -> WebClient:
    """The Web API client: bounded timeout; retries on connection errors, 5xx and 429 (sleeping Retry-After)."""
    return WebClient(
        token=token, base_url=base_url, timeout=15,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=5),
                        ServerErrorRetryHandler(max_retry_count=3)],
    )


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
