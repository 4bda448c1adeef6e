"""Freshdesk's part of the environment (`FRESHDESK_*`: API access and the webhook secret), and the platform's
vocabulary Seam maps to its own words: status and priority codes, the documented rate limits, and the SLA due
time a ticket is judged by. The adapter and the dump importer both read them from here.

Codes as the Freshdesk API v2 documents them (https://developers.freshdesk.com/api/#tickets; the same values in
the official SDK reference https://developers.freshworks.com/freshdesk-sdk/docs/GetAllTicketResponse.html and in
public clients such as github.com/sjkingo/python-freshdesk): status 2 Open, 3 Pending, 4 Resolved, 5 Closed
(accounts may add custom statuses, 6 and up); priority 1 Low, 2 Medium, 3 High, 4 Urgent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# Seam's status words this platform can set, and the code each one sets. Freshdesk has no built-in "on hold":
# accounts model it with custom statuses whose codes differ per account, so "hold" is not offered.
STATUS_CODES: Mapping[str, int] = {"open": 2, "pending": 3, "solved": 4}
STATUSES = tuple(STATUS_CODES)
STATUS_WORDS: Mapping[int, str] = {2: "open", 3: "pending", 4: "solved", 5: "closed"}
RESOLVED_CODES = (4, 5)
PRIORITY_WORDS: Mapping[int, str] = {1: "low", 2: "normal", 3: "high", 4: "urgent"}
OUTBOUND_EMAIL = 10  # ticket source: an agent wrote the first message (outbound email)

# Freshdesk's per-minute API limits (support.freshdesk.com/support/solutions/articles/225439, "What are the rate
# limits for the API calls to Freshdesk?"): Growth 200 calls a minute, of which ticket create 80, ticket update 80,
# tickets list 20, contacts list 20; Pro 400 (160/160/100/100); Enterprise 700 (280/280/200/200); trial accounts
# 50. Webhooks — the Trigger Webhook action Seam relies on — start at Growth, so Growth is the default, and
# tickets list keeps its own, lower pace because reconciliation pages through it.
REQUESTS_PER_MINUTE = 200.0
UPDATES_PER_MINUTE = 80.0
LIST_PER_MINUTE = 20.0


def status_word(code: Any) -> str | None:
    """A Freshdesk status code as the word Seam uses; custom statuses keep their code (`status-6`)."""
    if isinstance(code, bool) or code is None:
        return None
    if isinstance(code, int) and code in STATUS_WORDS:
        return STATUS_WORDS[code]
    return f"status-{code}"


def priority_word(code: Any) -> str | None:
    if isinstance(code, bool) or not isinstance(code, int):
        return None
    return PRIORITY_WORDS.get(code)


def sla_due(ticket: Mapping[str, Any], *, answered: bool) -> str | None:
    """The deadline the ticket is judged by now: the first-response due time until someone has answered, then
    the next-response due time when the account has one, and the resolution due time (`due_by`) in every case —
    the earliest of those that apply. ISO strings in UTC compare in time order."""
    candidates = [ticket.get("due_by")]
    candidates.append(ticket.get("nr_due_by") if answered else ticket.get("fr_due_by"))
    due = [str(c) for c in candidates if isinstance(c, str) and c]
    return min(due) if due else None


@dataclass(frozen=True)
class FreshdeskSettings:
    domain: str | None = None  # FRESHDESK_DOMAIN: `acme` or `acme.freshdesk.com`
    api_key: str | None = None
    api_url: str | None = None  # FRESHDESK_API_URL: where the API is, for tests and proxies
    webhook_secret: str | None = None

    @classmethod
    def from_env(cls, get: Callable[[str], str | None]) -> FreshdeskSettings:
        """From the environment, through `get(NAME)` (blank values already None)."""
        return cls(domain=get("FRESHDESK_DOMAIN"), api_key=get("FRESHDESK_API_KEY"),
                   api_url=get("FRESHDESK_API_URL"), webhook_secret=get("FRESHDESK_WEBHOOK_SECRET"))

    def missing(self) -> list[str]:
        """The variables `serve` needs that are not set."""
        required: Mapping[str, str | None] = {
            "FRESHDESK_DOMAIN": self.domain, "FRESHDESK_API_KEY": self.api_key,
            "FRESHDESK_WEBHOOK_SECRET": self.webhook_secret}
        return [name for name, value in required.items() if not value]

    @property
    def host(self) -> str | None:
        """`acme` → `acme.freshdesk.com`; a full host (or a pasted URL) is kept as the host it names."""
        if not self.domain:
            return None
        raw = self.domain.strip()
        host = urlsplit(raw).netloc if "://" in raw else raw.split("/")[0]
        return host if "." in host else f"{host}.freshdesk.com"

    @property
    def base_url(self) -> str:
        if self.api_url:
            return self.api_url.rstrip("/")
        return f"https://{self.host}"

    @property
    def agent_url(self) -> str:
        """Where a person opens a ticket: the real helpdesk even when the API is pointed elsewhere."""
        return f"https://{self.host}" if self.host else self.base_url
