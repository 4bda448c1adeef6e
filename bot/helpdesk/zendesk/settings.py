"""Zendesk's part of the environment (../shared/CONTRACT.md, *Environment*): API access and the webhook secret."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

# Statuses `[resolve] status` and `[approve] status` may set on a Zendesk ticket.
STATUSES = ("open", "pending", "hold", "solved")
# Zendesk's documented limits: 400 requests a minute on Growth and Professional plans (200 on Team, 2,500 on
# Enterprise Plus), and 100 ticket updates a minute per account.
REQUESTS_PER_MINUTE = 400.0
UPDATES_PER_MINUTE = 100.0


@dataclass(frozen=True)
class ZendeskSettings:
    subdomain: str | None = None
    email: str | None = None
    api_token: str | None = None
    api_url: str | None = None  # ZENDESK_API_URL: where the API is, for tests and proxies
    webhook_secret: str | None = None

    @classmethod
    def from_env(cls, get: Callable[[str], str | None]) -> ZendeskSettings:
        """From the environment, through `get(NAME)` (blank values already None)."""
        return cls(subdomain=get("ZENDESK_SUBDOMAIN"), email=get("ZENDESK_EMAIL"), api_token=get("ZENDESK_API_TOKEN"),
                   api_url=get("ZENDESK_API_URL"), webhook_secret=get("ZENDESK_WEBHOOK_SECRET"))

    def missing(self) -> list[str]:
        """The variables `serve` needs that are not set, in the order the contract lists them."""
        required: Mapping[str, str | None] = {
            "ZENDESK_SUBDOMAIN": self.subdomain, "ZENDESK_EMAIL": self.email, "ZENDESK_API_TOKEN": self.api_token,
            "ZENDESK_WEBHOOK_SECRET": self.webhook_secret}
        return [name for name, value in required.items() if not value]

    @property
    def base_url(self) -> str:
        if self.api_url:
            # Zendesk's documentation gives the API's base with /api/v2; Seam appends that itself.
            base = self.api_url.rstrip("/")
            return base[:-len("/api/v2")] if base.lower().endswith("/api/v2") else base
        return f"https://{self.subdomain}.zendesk.com"

    @property
    def agent_url(self) -> str:
        """Where a person opens a ticket: the real subdomain even when the API is pointed elsewhere."""
        if self.subdomain:
            return f"https://{self.subdomain}.zendesk.com"
        return self.base_url
