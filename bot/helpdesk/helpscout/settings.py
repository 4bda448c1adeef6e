"""Help Scout's part of the environment: the OAuth2 app (client credentials) Seam calls the Mailbox API 2.0 with,
the webhook secret, and the optional Docs API key for knowledge sync. The documented limits Seam paces to live
here too, beside the status words Seam may set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

# Seam's status words this adapter can set, and Help Scout's value for each. Help Scout's conversation statuses
# are active, pending, closed and spam (https://developer.helpscout.com/mailbox-api/endpoints/conversations/get/);
# there is nothing like Zendesk's "hold" (snoozing is a separate feature), so "hold" is not offered.
STATUS_MAP = {"open": "active", "pending": "pending", "solved": "closed"}
STATUSES = tuple(STATUS_MAP)
# Help Scout's own values are accepted too, so a deployment may write `status = "closed"`.
NATIVE_STATUSES = ("active", "pending", "closed")
# What the importer and the export count as resolved, and the conversation states they leave out (never sent, or
# deleted).
RESOLVED = "closed"
LEFT_OUT_STATES = ("draft", "deleted")

# "Your current rate limit depends on your plan" and "Write requests (POST, PUT, DELETE, PATCH) count as 2
# requests" (https://developer.helpscout.com/mailbox-api/overview/rate-limiting/). The plan figures are not on
# that page; 200 a minute is the lowest Help Scout has documented (the legacy API's account-wide limit,
# https://developer.helpscout.com/help-desk-api/), so it is the safe default: raise it in `[helpdesk]`.
REQUESTS_PER_MINUTE = 200.0
# The Docs API: 2,000 requests every 10 minutes for an account with one Docs site
# (https://developer.helpscout.com/docs-api/).
DOCS_REQUESTS_PER_MINUTE = 200.0

# Help Scout has no priority; a conversation custom field of this name (a dropdown such as low / normal / high /
# urgent) stands in for one when the account has it.
PRIORITY_FIELD = "Priority"

DEFAULT_API_URL = "https://api.helpscout.net"
DEFAULT_DOCS_API_URL = "https://docsapi.helpscout.net"
# Where agents open a conversation (https://developer.helpscout.com/webhooks/objects/conversation: "…/conversation/
# <id>/<number>/"); Seam knows only the id where it builds links, and the id alone is the form integrations use.
AGENT_URL = "https://secure.helpscout.net"


@dataclass(frozen=True)
class HelpScoutSettings:
    app_id: str | None = None
    app_secret: str | None = None
    api_url: str | None = None  # HELPSCOUT_API_URL: where the Mailbox API (and its token endpoint) is, for tests
    webhook_secret: str | None = None
    docs_api_key: str | None = None  # HELPSCOUT_DOCS_API_KEY: without it knowledge() has saved replies only
    docs_api_url: str | None = None

    @classmethod
    def from_env(cls, get: Callable[[str], str | None]) -> HelpScoutSettings:
        """From the environment, through `get(NAME)` (blank values already None)."""
        return cls(app_id=get("HELPSCOUT_APP_ID"), app_secret=get("HELPSCOUT_APP_SECRET"),
                   api_url=get("HELPSCOUT_API_URL"), webhook_secret=get("HELPSCOUT_WEBHOOK_SECRET"),
                   docs_api_key=get("HELPSCOUT_DOCS_API_KEY"), docs_api_url=get("HELPSCOUT_DOCS_API_URL"))

    def missing(self) -> list[str]:
        """The variables `serve` needs that are not set."""
        required: Mapping[str, str | None] = {
            "HELPSCOUT_APP_ID": self.app_id, "HELPSCOUT_APP_SECRET": self.app_secret,
            "HELPSCOUT_WEBHOOK_SECRET": self.webhook_secret}
        return [name for name, value in required.items() if not value]

    @property
    def base_url(self) -> str:
        return (self.api_url or DEFAULT_API_URL).rstrip("/")

    @property
    def docs_base_url(self) -> str:
        return (self.docs_api_url or DEFAULT_DOCS_API_URL).rstrip("/")
