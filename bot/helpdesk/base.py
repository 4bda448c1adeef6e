"""The helpdesk interface: one small protocol every adapter (Zendesk now; Freshdesk, Gorgias, Front, Help Scout
later) implements, and the errors it raises. Orchestration (`bot.flows.pipeline`) only ever talks to this protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bot.models import Ticket

if TYPE_CHECKING:
    import click

    from bot.config import Settings


class WebhookAuthError(Exception):
    """The webhook is unsigned, forged or outside the replay window: answer 401, store nothing."""


class WebhookPayloadError(Exception):
    """The webhook is signed but unusable (bad JSON, no ticket id): answer 400 with this message."""


class HelpdeskError(Exception):
    """A helpdesk call failed for good (after retries, or a 4xx that retrying cannot fix)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class WebhookEvent:
    ticket_id: str
    # Identifies this delivery: equal for a redelivery of the same request, different for a new one.
    delivery_key: str


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    email: str


class Helpdesk(Protocol):
    name: str

    def verify_webhook(self, *, headers: Mapping[str, str], body: bytes) -> None: ...

    def parse_webhook(self, *, headers: Mapping[str, str], body: bytes) -> WebhookEvent: ...

    def fetch_ticket(self, ticket_id: str) -> Ticket: ...

    def ticket_link(self, ticket_id: str) -> str: ...

    def updated_since(self, since: float) -> list[tuple[str, str]]: ...

    def reply(self, ticket_id: str, body: str, *, status: str | None = None) -> None: ...

    def add_note(self, ticket_id: str, body: str) -> None: ...

    def assign(self, ticket_id: str, agent_id: str) -> None: ...

    def set_status(self, ticket_id: str, status: str) -> None: ...

    def add_tags(self, ticket_id: str, tags: Sequence[str]) -> None: ...

    def find_agent(self, email: str) -> Agent | None: ...


class HelpdeskSettings(Protocol):
    """An adapter's own settings, read from its environment variables."""

    def missing(self) -> list[str]:
        """The variables `serve` needs that are not set."""
        ...


@dataclass(frozen=True)
class HelpdeskPlugin:
    """One helpdesk as the rest of Seam sees it before any adapter exists."""

    name: str  # the HELPDESK value, and the webhook path /webhooks/<name>
    statuses: tuple[str, ...]  # what `[resolve] status` and `[approve] status` may set
    read_settings: Callable[[Callable[[str], str | None]], HelpdeskSettings]  # from env: get(NAME) -> value
    build: Callable[[Settings], Helpdesk]  # the adapter, from the whole Settings
    import_command: Callable[[], click.Command] | None = None  # `python -m bot import <name>`, loaded lazily
