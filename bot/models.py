"""The plain data that flows through Seam: tickets, their messages, assessments and routing decisions, and the
store's typed records — a queued job (`Event`) and an escalation (`Escalation`) with their state enums.

`Ticket.from_dict` reads the contract's ticket JSON (../shared/CONTRACT.md, *Formats*); helpdesk adapters build
the same `Ticket` from their own API shapes, so everything downstream sees one model. Text from outside is made
encodable as these records are built (`bot.text.encodable`): a lone surrogate in a subject or a comment becomes
U+FFFD here, once, rather than failing the database write, the Slack post or the helpdesk reply downstream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from bot.errors import InputError
from bot.text import encodable

AUTHORS = ("customer", "agent", "bot")


@cache
def _field_names(kind: type) -> tuple[str, ...]:
    return tuple(spec.name for spec in fields(kind))


def _make_encodable(record: Any) -> None:
    """Replace, in a frozen record being built, what UTF-8 cannot carry in its text fields (strings, and tuples
    of strings such as tags or attachment names)."""
    for name in _field_names(type(record)):
        value = getattr(record, name)
        if isinstance(value, str):
            cleaned = encodable(value)
        elif isinstance(value, tuple) and value and all(isinstance(v, str) for v in value):
            cleaned = tuple(encodable(v) for v in value)
        else:
            continue
        if cleaned != value:
            object.__setattr__(record, name, cleaned)


class Route(StrEnum):
    RESOLVE = "resolve"
    DRAFT = "draft"
    ESCALATE = "escalate"


@dataclass(frozen=True)
class Message:
    author: str
    body: str
    created_at: str | None = None
    id: str | None = None
    public: bool = True
    attachments: tuple[str, ...] = ()  # file names: shown to agents, never read by the engine
    # Seam's own word to the customer that answers nothing — the notice that a person will follow up, a
    # keep-warm update — as the flows mark it (bot.flows.lifecycle `mark_acknowledgements`): the customer still
    # waits, so the SLA clock and the count of AI answers pass over it (bot.policy.triggers).
    acknowledgement: bool = False
    # A reply a person approved, edited or wrote in Slack, which Seam's helpdesk user delivered (the flows mark it
    # from the escalations Seam sent: bot.flows.pipeline `mark_sent_for_people`): a person's answer, not the AI's.
    from_person: bool = False

    def __post_init__(self) -> None:
        _make_encodable(self)

    @property
    def is_reply(self) -> bool:
        """A public reply to the customer by an agent or the AI: not an internal note, which the customer never
        sees, nor Seam's acknowledgement that a person will follow up, after which the customer still waits."""
        return self.public and self.author != "customer" and not self.acknowledgement


@dataclass(frozen=True)
class Article:
    """A help article or macro the engine answers from; `id` is what simulation grades answers against."""

    id: str
    title: str
    body: str
    updated_at: str | None = None  # when the helpdesk last changed it, where the helpdesk says (knowledge sync)

    def __post_init__(self) -> None:
        _make_encodable(self)


@dataclass(frozen=True)
class Resolution:
    answer_id: str | None
    answer: str | None = None

    def __post_init__(self) -> None:
        _make_encodable(self)


# Ticket statuses — Seam's words and the platforms' own — that mean nobody waits on an answer any more: Zendesk
# solves and closes, Freshdesk resolves, Gorgias and Help Scout close, Front archives (or deletes, or marks spam).
FINISHED_STATUSES = frozenset({"solved", "closed", "resolved", "archived", "deleted", "spam"})
# The finished statuses that end a ticket without resolving it: nobody should be answered, and nothing learnt. An
# adapter whose platform marks spam or a trashed ticket by a flag rather than a status says so with these words.
DISCARDED_STATUSES = frozenset({"deleted", "spam"})


@dataclass(frozen=True)
class Ticket:
    id: str
    subject: str = ""
    messages: tuple[Message, ...] = ()
    requester_name: str | None = None
    requester_email: str | None = None
    tags: tuple[str, ...] = ()
    priority: str | None = None
    status: str | None = None
    created_at: str | None = None
    sla_due_at: str | None = None
    url: str | None = None
    resolution: Resolution | None = None
    # What the adapter could not read (no requester, comments it could not parse): such a ticket is never
    # skipped or answered automatically; it escalates with these as the reason.
    problems: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _make_encodable(self)

    @property
    def finished(self) -> bool:
        """Solved, closed, archived: nobody is waiting on an answer (FINISHED_STATUSES)."""
        return (self.status or "").strip().lower() in FINISHED_STATUSES

    @property
    def discarded(self) -> bool:
        """Deleted or marked as spam in the helpdesk (DISCARDED_STATUSES)."""
        return (self.status or "").strip().lower() in DISCARDED_STATUSES

    @property
    def customer_messages(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.author == "customer")

    @property
    def latest_message(self) -> Message | None:
        return self.messages[-1] if self.messages else None

    @property
    def latest_customer_message(self) -> Message | None:
        customer = self.customer_messages
        return customer[-1] if customer else None

    def everything_customer_wrote(self) -> str:
        """The subject and every message of the customer's, for rules that look at the whole ticket."""
        return "\n".join(p for p in [self.subject, *(m.body for m in self.customer_messages)] if p)

    def since_last_reply(self) -> tuple[list[str], bool]:
        """The customer's messages since the last real reply (`Message.is_reply`: an internal note or Seam's
        notice between two of them ends nothing), oldest first — their latest alone when a reply followed it —
        and whether there was such a reply."""
        tail: list[str] = []
        replied = False
        for message in reversed(self.messages):
            if message.is_reply:
                replied = True
                break
            if message.author == "customer":
                tail.append(message.body)
        if not tail and self.customer_messages:
            tail.append(self.customer_messages[-1].body)
        return tail[::-1], replied

    def customer_text(self) -> str:
        """What the customer is asking now: the subject and the customer's messages since the last reply."""
        return "\n".join([self.subject, *self.since_last_reply()[0]]).strip()

    @classmethod
    def from_dict(cls, data: Any) -> Ticket:
        """Parse a contract ticket; raise ValueError with a readable message when it is unusable."""
        if not isinstance(data, dict):
            raise ValueError("ticket must be a JSON object")
        raw_id = data.get("id")
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or str(raw_id).strip() == "":
            raise ValueError("ticket needs an 'id' (string or number)")
        subject = data.get("subject") or ""
        if not isinstance(subject, str):
            raise ValueError("'subject' must be a string")
        raw_messages = data.get("messages") or []
        if not isinstance(raw_messages, list):
            raise ValueError("'messages' must be a list")
        messages = []
        for index, raw in enumerate(raw_messages):
            if not isinstance(raw, dict) or not isinstance(raw.get("body"), str):
                raise ValueError(f"messages[{index}] needs a string 'body'")
            author = raw.get("author", "customer")
            if author not in AUTHORS:
                raise ValueError(f"messages[{index}].author must be one of {', '.join(AUTHORS)}")
            messages.append(Message(author=author, body=raw["body"], created_at=_opt_str(raw.get("created_at")),
                                    id=_opt_str(raw.get("id")), public=bool(raw.get("public", True))))
        if not subject.strip() and not any(m.author == "customer" and m.body.strip() for m in messages):
            raise ValueError("ticket needs a 'subject' or a customer message")
        requester = data.get("requester") or {}
        if not isinstance(requester, dict):
            raise ValueError("'requester' must be an object")
        tags = data.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ValueError("'tags' must be a list of strings")
        resolution = None
        raw_resolution = data.get("resolution")
        if isinstance(raw_resolution, dict):
            resolution = Resolution(answer_id=_opt_str(raw_resolution.get("answer_id")),
                                    answer=_opt_str(raw_resolution.get("answer")))
        elif raw_resolution is not None:
            raise ValueError("'resolution' must be an object")
        return cls(
            id=str(raw_id), subject=subject, messages=tuple(messages),
            requester_name=_opt_str(requester.get("name")), requester_email=_opt_str(requester.get("email")),
            tags=tuple(tags), priority=_opt_str(data.get("priority")), status=_opt_str(data.get("status")),
            created_at=_opt_str(data.get("created_at")), sla_due_at=_opt_str(data.get("sla_due_at")),
            url=_opt_str(data.get("url")), resolution=resolution,
        )


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


@dataclass(frozen=True)
class Reason:
    """Why a ticket was routed the way it was, in words an agent reads in Slack."""

    code: str
    label: str
    detail: str = ""

    def text(self) -> str:
        return f"{self.label}: {self.detail}" if self.detail else self.label


@dataclass(frozen=True)
class Assessment:
    """What the AI engine makes of a ticket, before any policy is applied.

    `confidence` is the engine's probability that `answer` is right. `grounded` is False when no retrieved
    passage supports the answer (it may then be drafted, never sent automatically). `unavailable` holds why the
    engine could not assess the ticket at all (timeout, refusal, invalid output): the ticket then escalates.
    """

    confidence: float
    answer: str | None
    answer_source: str | None
    summary: str
    evidence: tuple[dict, ...] = ()
    topic: str | None = None
    tone: float | None = None  # -1 (furious) … 1 (delighted), when the engine reads tone
    wants_human: bool = False  # the engine's own reading that the customer asks for a person
    grounded: bool = True
    unavailable: str | None = None
    # The local engine found this question among those whose draft an agent rejected as wrong or not to automate
    # (bot.engine.local REJECTED): no answer, and a person takes it.
    rejected_before: bool = False
    # The local engine's calibrated parts of `confidence`: P(right | evidence, covered) and P(uncovered |
    # evidence) for half-uncovered traffic (bot.engine.local.Calibrator.parts); None from other engines.
    calibration: tuple[float, float] | None = None
    # What in `answer` belongs to another customer's case — an order number, an email, a name from the past ticket
    # the reply was written for (bot.engine.local `_reply`): the answer then goes to a person first.
    foreign_details: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    route: Route
    confidence: float
    reasons: tuple[Reason, ...]
    answer: str | None
    answer_source: str | None
    summary: str
    evidence: tuple[dict, ...] = field(default=())
    calibration: tuple[float, float] | None = None  # the assessment's, kept for the automatic answer's verdict

    def to_record(self) -> dict:
        return {
            "route": str(self.route), "confidence": round(self.confidence, 4),
            "reasons": [r.code for r in self.reasons], "answer": self.answer, "answer_source": self.answer_source,
        }


class EventState(StrEnum):
    """Where a queued job (an accepted webhook, a reconciliation find) stands."""

    PENDING = "pending"  # due at next_attempt_at
    PROCESSING = "processing"  # a worker holds its lease
    DONE = "done"
    DEAD = "dead"  # failed too often: waits for a person (`python -m bot jobs`, the App Home)


@dataclass(frozen=True)
class Event:
    """One job of the durable queue: today every job is a ticket event (`kind` "ticket")."""

    id: int
    kind: str
    helpdesk: str
    ticket_id: str
    state: EventState
    attempts: int
    dedupe_key: str
    received_at: str
    body: str | None = None
    turn_key: str | None = None
    next_attempt_at: str | None = None
    lease_until: str | None = None
    last_error: str | None = None
    outcome: str | None = None
    processed_at: str | None = None
    priority: int = 0  # of jobs due together, the lowest runs first (bot.store, m010)
    due_at: str | None = None  # when it first came due: its reception, or a scheduled job's time (m020)
    # Of `attempts`, those that failed because a service was down (bot.errors.transient; bot.store, m021): they do
    # not count toward MAX_ATTEMPTS.
    transient_failures: int = 0

    @classmethod
    def from_row(cls, row: dict) -> Event:
        return cls(**{**row, "state": EventState(row["state"])})


class EscalationState(StrEnum):
    """The life of an escalation: posted, owned, then finished one way or the other."""

    POSTING = "posting"  # recorded, the Slack post not yet confirmed (a crash here is found again by metadata)
    OPEN = "open"  # in the channel, nobody owns it
    CLAIMED = "claimed"
    SENDING = "sending"  # a reply is on its way to the helpdesk
    SENT = "sent"
    REJECTED = "rejected"
    FAILED = "failed"  # the reply did not land: Retry is offered
    # Answered (or solved) in the helpdesk, outside Seam: an agent replied there, or the ticket was solved or
    # closed, while the card was open or claimed (bot.flows.answered).
    ANSWERED = "answered"

    @property
    def finished(self) -> bool:
        return self in (EscalationState.SENT, EscalationState.REJECTED, EscalationState.ANSWERED)


@dataclass(frozen=True)
class Escalation:
    """One Slack thread for one ticket event, and what agents did with it."""

    id: int
    event_id: int
    decision_id: int
    ticket_key: str
    ticket_id: str
    channel: str
    state: EscalationState
    confidence: float
    card: dict  # what the message shows (bot.slack.blocks.EscalationView.to_card), re-rendered on every update
    created_at: str
    updated_at: str
    ts: str | None = None
    owner: str | None = None
    draft: str | None = None
    customer_text: str | None = None
    sent_by: str | None = None
    sent_text: str | None = None
    send_action: str | None = None  # approve or edit: how the reply being sent was made
    reject_reason: str | None = None
    last_error: str | None = None
    claimed_at: str | None = None
    finished_at: str | None = None
    # After the post (migration m009): the route and whom it mentions, and what the lifecycle jobs did.
    route: str | None = None
    mention: str | None = None
    customer_notified_at: str | None = None
    reminded_at: str | None = None
    manager_paged_at: str | None = None
    sla_due_at: str | None = None
    sla_warned_at: str | None = None
    sla_breached_at: str | None = None
    last_keep_warm_at: str | None = None
    keep_warm_sent: int = 0
    # The `updated_at` of the row the card in Slack last showed (migration m013; bot.slack.poster).
    card_synced_at: str | None = None

    @classmethod
    def from_row(cls, row: dict) -> Escalation:
        return cls(**{**row, "state": EscalationState(row["state"]), "card": json.loads(row["card"] or "{}")})

    @property
    def answer_source(self) -> str | None:
        return (self.card.get("decision") or {}).get("answer_source")

    @property
    def subject(self) -> str:
        return (self.card.get("ticket") or {}).get("subject") or ""

    @property
    def requester_name(self) -> str | None:
        """The name of the customer the escalated ticket came from, as the card shows it."""
        return (self.card.get("ticket") or {}).get("requester_name") or None

    @property
    def link(self) -> str | None:
        return self.card.get("link")


def _jsonl_lines(data: bytes) -> list[bytes]:
    """The lines of a JSONL file as UTF-8 bytes. Split on the bytes CR and LF only: str.splitlines() would also
    split at U+2028 and U+0085, which JSON allows raw inside a string (`json.dumps(..., ensure_ascii=False)`)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        data = data.decode("utf-16").encode("utf-8")
    return data.removeprefix(b"\xef\xbb\xbf").splitlines()


def read_tickets(path: str | Path, *, limit: int | None = None) -> tuple[list[Ticket], list[str]]:
    """Tickets from a JSONL file, and the problems found in rows that were skipped (`line N: why`).

    UTF-8, with or without a BOM (UTF-16 with a BOM is read too: what Windows tools save); a line that is not
    UTF-8 is a bad row like any other."""
    path = Path(path)
    try:
        lines = _jsonl_lines(path.read_bytes())
    except FileNotFoundError:
        raise InputError(f"file not found: {path}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} starts with a UTF-16 byte order mark but is not UTF-16 text") from None
    except OSError as exc:
        raise InputError(f"{path} cannot be read ({exc.strerror or exc})") from None
    tickets: list[Ticket] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{path.name} line {number}: not UTF-8 text")
            continue
        if not line.strip():
            continue
        try:
            ticket = Ticket.from_dict(json.loads(line))
        except json.JSONDecodeError as exc:
            problems.append(f"{path.name} line {number}: not valid JSON ({exc.msg})")
            continue
        except ValueError as exc:
            problems.append(f"{path.name} line {number}: {exc}")
            continue
        if ticket.id in seen:
            problems.append(f"{path.name} line {number}: duplicate id {ticket.id!r}")
            continue
        seen.add(ticket.id)
        tickets.append(ticket)
        if limit is not None and len(tickets) >= limit:
            break
    if not tickets:
        raise InputError(f"{path} has no usable ticket" + (f" ({problems[0]})" if problems else ""))
    return tickets, problems
