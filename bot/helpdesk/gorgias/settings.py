"""Gorgias's part of the environment (`GORGIAS_*`): API access, the webhook secret, and the documented limits and
status words the adapter is built around (docs/helpdesks/gorgias.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

# Seam's status words this adapter can set. Gorgias tickets are only "open" or "closed"; "pending" is the closest
# documented state, a snoozed open ticket (snooze_datetime), and Gorgias has nothing like "hold".
STATUSES = ("open", "pending", "solved")

# https://developers.gorgias.com/reference/limitations : a leaky bucket per account; API-key integrations may make
# 40 requests in a 20-second window (2 a second once the burst is spent), OAuth2 apps 80; Enterprise accounts
# have the same counts over a 10-second window. Pacing to the API-key figure keeps Seam under every plan.
REQUESTS_PER_MINUTE = 120.0
BUCKET = 40


@dataclass(frozen=True)
class GorgiasSettings:
    domain: str | None = None  # GORGIAS_DOMAIN: "acme" for acme.gorgias.com
    email: str | None = None  # the API key's user: Seam writes as this user
    api_key: str | None = None
    api_url: str | None = None  # GORGIAS_API_URL: where the API is, for tests and proxies
    webhook_secret: str | None = None

    @classmethod
    def from_env(cls, get: Callable[[str], str | None]) -> GorgiasSettings:
        """From the environment, through `get(NAME)` (blank values already None)."""
        return cls(domain=bare_domain(get("GORGIAS_DOMAIN")), email=get("GORGIAS_EMAIL"),
                   api_key=get("GORGIAS_API_KEY"), api_url=get("GORGIAS_API_URL"),
                   webhook_secret=get("GORGIAS_WEBHOOK_SECRET"))

    def missing(self) -> list[str]:
        """The variables `serve` needs that are not set."""
        required: Mapping[str, str | None] = {
            "GORGIAS_DOMAIN": self.domain, "GORGIAS_EMAIL": self.email, "GORGIAS_API_KEY": self.api_key,
            "GORGIAS_WEBHOOK_SECRET": self.webhook_secret}
        return [name for name, value in required.items() if not value]

    @property
    def base_url(self) -> str:
        if self.api_url:
            return self.api_url.rstrip("/")
        return f"https://{self.domain}.gorgias.com"

    @property
    def agent_url(self) -> str:
        """Where a person opens a ticket: the real account even when the API is pointed elsewhere."""
        if self.domain:
            return f"https://{self.domain}.gorgias.com"
        return self.base_url


def bare_domain(raw: str | None) -> str | None:
    """People paste "acme.gorgias.com" or the whole URL as often as "acme": keep the account name."""
    if raw is None:
        return None
    value = raw.strip().removeprefix("https://").removeprefix("http://").split("/")[0]
    return value.removesuffix(".gorgias.com") or None
