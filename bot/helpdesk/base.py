"""The helpdesk interface: one small protocol every adapter (Zendesk now; Freshdesk, Gorgias, Front, Help Scout
later) implements, and the errors it raises. Orchestration (`bot.flows.pipeline`) only ever talks to this protocol.
"""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bot.models import Article, Ticket
from bot.text import parse_time

if TYPE_CHECKING:
    import click

    from bot.config import Settings


class WebhookAuthError(Exception):
    """The webhook is unsigned, forged or outside the replay window: answer 401, store nothing."""


class WebhookPayloadError(Exception):
    """The webhook is signed but unusable (bad JSON, no ticket id): answer 400 with this message."""


class WebhookChallenge(Exception):
    """A verified request that is the platform's handshake rather than an event (Front's `X-Front-Challenge`):
    answer 200 with `body` and record nothing."""

    def __init__(self, body: str | dict, *, content_type: str = "text/plain") -> None:
        super().__init__("webhook handshake")
        self.body = body
        self.content_type = content_type


class HelpdeskError(Exception):
    """A helpdesk call failed for good (after retries, or a 4xx that retrying cannot fix).

    The message (`str()`) names the call, the status and the helpdesk's error code, and goes to the log.
    `detail` is the helpdesk's own words (its answer's body, masked and cut), which may quote the note, reply or
    ticket it refused: it is kept where Seam keeps the ticket's text and erases it with it (an escalation's
    `last_error`, a job's error; `explained`), and shown to the agent who acted, never logged."""

    def __init__(self, message: str, *, status: int | None = None, detail: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        # Seconds the helpdesk asked Seam to wait (Retry-After) when it gave up: the job is not retried sooner.
        self.retry_after = retry_after


def recorded_elsewhere(recorded: str, *, current: str) -> str | None:
    """Why work recorded for helpdesk `recorded` (a ticket event, a queued write, a scheduled job, an escalation's
    card) must not touch helpdesk `current`, or None when they are one. After HELPDESK changed on the same database,
    its ticket ids name other customers' tickets here."""
    return None if recorded == current else f"recorded for {recorded}, and this deployment uses {current}"


def explained(exc: BaseException) -> str:
    """The exception's message with the helpdesk's own words (`HelpdeskError.detail`, of it or of what caused
    it) after it: for what Seam stores beside the ticket and for the agent, not for the log."""
    text = str(exc)
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, HelpdeskError):
        cause = cause.__cause__
    if isinstance(cause, HelpdeskError) and cause.detail:
        return f"{text}: {cause.detail}"
    return text


def status_after_reply(set_status: Callable[[], object], *, ticket: str) -> None:
    """`set_status()`, the second call of a reply on helpdesks where a reply cannot carry its status. The reply
    went out already, so a failure here is no refusal of it: the HelpdeskError raised says so and carries no status
    of its own — a caller that forgets a write the helpdesk refused (a 4xx) and sends it again would send the reply
    twice. The status change's error is its cause (`bot.errors.transient` judges by it) and its words stay its
    `detail`."""
    try:
        set_status()
    except HelpdeskError as exc:
        raise StatusNotSet(f"{ticket}: the reply was sent, but setting its status failed: {exc}",
                           detail=exc.detail) from exc


class StatusNotSet(HelpdeskError):
    """The reply reached the customer; only the status change that follows it failed (`status_after_reply`). The
    reply is sent, never to be sent again: what is left is the ticket's status, for a person to set."""


# A `Ticket.problems` entry: the thread's listing went on past what an adapter reads of it (or linked elsewhere), so
# the messages read are only part of the conversation and a decision on them may answer an old message.
THREAD_CUT = "the conversation goes on past what Seam could read of it"


class ListingCut(HelpdeskError):
    """A listing went on past the pages an adapter reads in one call (or pointed elsewhere): what was read is
    only part of it."""


class Updates(list):
    """What `updated_since` found: (ticket id, version) pairs. `resume_from` is None when the listing was read
    to its end; when it was cut short, it is the Unix time up to which nothing was missed (the last update read
    from an oldest-first listing; the asked-for time itself from a newest-first one), and reconciliation asks
    again from there.

    A newest-first listing that can be asked for an earlier window (the adapter's `updated_since` takes
    `before=`, an inclusive upper bound) says instead where its reading stopped: `unread_before` is the time of
    the oldest update read, and the updates from the asked-for time up to it may not have been read.
    Reconciliation then reads that window on its own, a listing at a time, going back until it is read whole;
    asked again from the same time, a newest-first listing would read the same newest updates every check."""

    def __init__(self, items: Iterable[tuple[str, str]] = (), *, resume_from: float | None = None,
                 unread_before: float | None = None) -> None:
        super().__init__(items)
        self.resume_from = resume_from
        self.unread_before = unread_before


def iso_seconds(version: str) -> float | None:
    """An ISO 8601 time as Unix seconds; None when it is not one."""
    moment = parse_time(version)
    return moment.timestamp() if moment else None


def resumed_after(found: Sequence[tuple[str, str]], since: float, *,
                  time_of: Callable[[str], float | None] = iso_seconds) -> float:
    """Where an oldest-first listing cut short leaves off: the latest time among the versions read (`time_of`
    reads one; by default an ISO 8601 time), never before `since`."""
    times = [t for t in (time_of(version) for _, version in found) if t is not None]
    return max([since, *times])


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

    def updated_since(self, since: float) -> Updates: ...

    def reply(self, ticket_id: str, body: str, *, status: str | None = None) -> None: ...

    def add_note(self, ticket_id: str, body: str) -> None: ...

    def assign(self, ticket_id: str, agent_id: str | None) -> None:
        """Make the agent `agent_id` (from `find_agent`) the ticket's assignee; None clears the assignee (nobody)."""
        ...

    def set_status(self, ticket_id: str, status: str) -> None: ...

    def add_tags(self, ticket_id: str, tags: Sequence[str]) -> None: ...

    def find_agent(self, email: str) -> Agent | None: ...

    def check(self) -> str:
        """Call the platform's cheapest authenticated endpoint (its "me", or one row of a listing) and say who Seam
        is there, for the start-up log; HelpdeskError when it fails — status 401 or 403 when the credentials are
        refused, 404 when the address is wrong (`serve` then refuses to start, bot.flows.health)."""
        ...

    def knowledge(self) -> list[Article]:
        """The help-centre articles and macros (canned replies, saved replies, templates) the engine may answer
        from, as clean text; ids are stable so simulation can grade against them."""
        ...


class HelpdeskSettings(Protocol):
    """An adapter's own settings, read from its environment variables."""

    def missing(self) -> list[str]:
        """The variables `serve` needs that are not set."""
        ...


@dataclass(frozen=True)
class HelpdeskPlugin:
    """One helpdesk as the rest of Seam sees it before any adapter exists."""

    name: str  # the HELPDESK value, and the webhook path /webhooks/<name>
    # Which of Seam's status words (open, pending, hold, solved) `[resolve] status` and `[approve] status` may
    # set on this platform; the adapter maps each to the platform's own value in `reply` and `set_status`.
    statuses: tuple[str, ...]
    read_settings: Callable[[Callable[[str], str | None]], HelpdeskSettings]  # from env: get(NAME) -> value
    build: Callable[[Settings], Helpdesk]  # the adapter, from the whole Settings
    import_command: Callable[[], click.Command] | None = None  # `python -m bot import <name>`, loaded lazily


def webhook_json(body: bytes) -> dict:
    """A webhook body as a JSON object; WebhookPayloadError (answered 400) with a readable reason otherwise."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise WebhookPayloadError("body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise WebhookPayloadError(f"body is not valid JSON: {exc.msg} at position {exc.pos}") from None
    except (ValueError, RecursionError):  # a number over 4,300 digits, or nesting deeper than the parser goes
        raise WebhookPayloadError("body is not JSON Seam can read (too deep or too large a number)") from None
    if not isinstance(payload, dict):
        raise WebhookPayloadError("body must be a JSON object")
    return payload


SECRET_HEADER = "x-seam-webhook-secret"


def check_shared_secret(headers: Mapping[str, str], secret: str) -> None:
    """For platforms that do not sign their webhooks (Freshdesk, Gorgias): the request must carry the secret the
    admin configured, in `X-Seam-Webhook-Secret` or as the password of HTTP Basic auth, compared in constant
    time. `headers` are lower-cased. WebhookAuthError (answered 401) otherwise."""
    if not secret:
        raise WebhookAuthError("webhook secret not configured")
    offered = headers.get(SECRET_HEADER)
    if offered is None:
        scheme, _, credentials = (headers.get("authorization") or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                offered = base64.b64decode(credentials.strip(), validate=True).decode("utf-8").partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                offered = None
    if not offered:
        raise WebhookAuthError("missing webhook secret")
    if not hmac.compare_digest(offered.strip().encode(), secret.encode()):
        raise WebhookAuthError("wrong webhook secret")
