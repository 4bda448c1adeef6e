"""Front's part of the environment: the API token, the base-URL override for tests, the webhook secret and the
optional teammate Seam writes as. Also the limits and status words the adapter is built with."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

DEFAULT_API_URL = "https://api2.frontapp.com"
# Where a person opens a conversation (https://dev.frontapp.com/reference/conversations, "Opening a conversation
# in Front").
APP_URL = "https://app.frontapp.com/open"

# Seam's status words this adapter can set. "solved" archives the conversation; "pending" waits for the customer:
# the ticketing "waiting" status when the company has ticketing, else archived (Front's "send and archive": the
# conversation comes back to the inbox when the customer answers); "open" reopens it. Front has no equivalent of
# "hold" (waiting on a third party), so it is not offered.
STATUSES = ("open", "pending", "solved")


def resolved(conversation: Mapping) -> bool:
    """Archived, or a ticket status of the resolved category: what the importer gives a resolution (and
    --resolved-only keeps, in the dump and in what the export fetches)."""
    return conversation.get("status") == "archived" or conversation.get("status_category") == "resolved"

# https://dev.frontapp.com/docs/rate-limiting: 50 requests a minute on Starter, 100 on Growth, 200 on Scale,
# counted per company whatever the token. Pace to the lowest plan unless `[helpdesk] requests_per_minute` says
# otherwise; a 429 still waits for Retry-After.
REQUESTS_PER_MINUTE = 50.0


@dataclass(frozen=True)
class FrontSettings:
    api_token: str | None = None  # FRONT_API_TOKEN: sent as `Authorization: Bearer …`
    api_url: str | None = None  # FRONT_API_URL: where the API is, for tests and proxies
    webhook_secret: str | None = None  # FRONT_WEBHOOK_SECRET: the app's signing secret or the rules' API secret
    author_id: str | None = None  # FRONT_AUTHOR_ID: a teammate (tea_…) Seam replies and comments as

    @classmethod
    def from_env(cls, get: Callable[[str], str | None]) -> FrontSettings:
        """From the environment, through `get(NAME)` (blank values already None)."""
        return cls(api_token=get("FRONT_API_TOKEN"), api_url=get("FRONT_API_URL"),
                   webhook_secret=get("FRONT_WEBHOOK_SECRET"), author_id=get("FRONT_AUTHOR_ID"))

    def missing(self) -> list[str]:
        """The variables `serve` needs that are not set."""
        required: Mapping[str, str | None] = {"FRONT_API_TOKEN": self.api_token,
                                              "FRONT_WEBHOOK_SECRET": self.webhook_secret}
        return [name for name, value in required.items() if not value]

    @property
    def base_url(self) -> str:
        return (self.api_url or DEFAULT_API_URL).rstrip("/")
