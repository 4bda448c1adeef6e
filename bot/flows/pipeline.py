"""Orchestration of one accepted webhook: fetch the ticket, decide, then resolve or escalate — exactly once.

The event row is the unit of work (see `bot.jobs.worker`). Each external side effect is recorded before and after
it happens (`effects` table, the escalation's `posting` state), so a retry after a crash checks what already
reached the outside world instead of doing it again:
- a public reply whose record says "started" is looked for among the ticket's comments before resending;
- an escalation still `posting` is looked for in the channel by its message metadata before posting again
  (`bot.slack.poster`).
The decision is stored on the first attempt and reused by retries, so a retry never changes route.

Every automatic answer is recorded, and every event first asks the quality guard (`bot.flows.quality`) whether
the ticket shows the customer coming back after the latest one — before the event is skipped or routed, so a
reopen counts once whatever happens to the new message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.config import Settings
from bot.engine.base import Engine
from bot.flows.quality import QualityGuard, is_thanks
from bot.helpdesk.base import Helpdesk
from bot.models import Decision, EscalationState, Event, Reason, Route, Ticket
from bot.policy.decide import Policy, decide
from bot.slack.blocks import EscalationView
from bot.slack.poster import Poster
from bot.store import Store

log = logging.getLogger(__name__)


def _decision_from_row(row: dict) -> Decision:
    return Decision(route=Route(row["route"]), confidence=row["confidence"],
                    reasons=tuple(Reason(**r) for r in json.loads(row["reasons"])), answer=row["answer"],
                    answer_source=row["answer_source"], summary=row["summary"] or "",
                    evidence=tuple(json.loads(row["evidence"] or "[]")))


def reply_landed(ticket: Ticket, answer: str, *, since_latest_customer_message: bool = True) -> bool:
    """Is `answer` on the ticket already as a public reply (after the customer's latest message)? What a retry
    asks before repeating a reply whose earlier attempt may have landed (a write that timed out, a crash)."""
    after = ticket.messages
    latest = ticket.latest_customer_message
    if since_latest_customer_message and latest is not None:
        after = ticket.messages[ticket.messages.index(latest) + 1:]
    # Helpdesks that store replies as HTML give them back with other spacing: compare the words.
    wanted = " ".join(answer.split())
    return any(m.author != "customer" and m.public and " ".join(m.body.split()) == wanted for m in after)


def _thanked_after_a_reply(ticket: Ticket) -> bool:
    """The customer's latest message is a plain thank-you that follows a public reply."""
    messages = ticket.messages
    if len(messages) < 2 or messages[-1].author != "customer":
        return False
    previous = next((m for m in reversed(messages[:-1]) if m.public), None)
    return previous is not None and previous.author != "customer" and is_thanks(messages[-1].body)


@dataclass
class Pipeline:
    settings: Settings
    store: Store
    helpdesk: Helpdesk
    engine: Engine
    poster: Poster
    policy: Callable[[], Policy]  # the policy in force now (the file's, with managers' changes on top)
    guard: QualityGuard = field(init=False)

    def __post_init__(self) -> None:
        self.guard = QualityGuard(store=self.store, settings=self.settings, poster=self.poster)

    def process(self, event: Event) -> str:
        """Handle one ticket event; return a short outcome. Raises on failures worth retrying."""
        ticket = self.helpdesk.fetch_ticket(event.ticket_id)
        # Even an event skipped below may show a reopen (the ticket set back to open without a new comment).
        self.guard.check(event, ticket, helpdesk=self.helpdesk.name)
        if event.turn_key is None:
            latest = ticket.latest_message
            if latest is None:
                return "skipped: ticket has no comments"
            if latest.author != "customer":
                # Our own reply, an agent's reply or a note fired the trigger: nothing for the AI to answer.
                return f"skipped: latest comment is by the {latest.author}"
            if _thanked_after_a_reply(ticket):
                # "Thanks, that worked!" after a reply asks nothing: answering it again would only repeat the answer.
                return "skipped: the customer only said thanks"
            turn_key = f"{self.helpdesk.name}:{ticket.id}:{latest.id or len(ticket.messages)}"
            if not self.store.claim_turn(event_id=event.id, turn_key=turn_key):
                return "duplicate: this comment was already handled"
        ticket_key = self.store.upsert_ticket(helpdesk=self.helpdesk.name, ticket_id=ticket.id,
                                              subject=ticket.subject, requester=ticket.requester_email,
                                              priority=ticket.priority)
        row = self.store.decision_for_event(event.id)
        if row is None:
            decision = decide(ticket, self.engine.assess(ticket), policy=self.policy())
            decision_id = self.store.add_decision(event_id=event.id, ticket_key=ticket_key, decision=decision)
        else:
            decision, decision_id = _decision_from_row(row), row["id"]
        if decision.route == Route.RESOLVE:
            return self._resolve(event.id, ticket_key, ticket, decision)
        return self._escalate(event.id, decision_id, ticket_key, ticket, decision)

    def _resolve(self, event_id: int, ticket_key: str, ticket: Ticket, decision: Decision) -> str:
        key = f"reply:{event_id}"

        def record_answer() -> None:
            # Once per event (the store ignores a repeat), and before the effect is finished: a crash in between
            # leaves the effect "started", and the retry that finds the reply records the answer then.
            self.store.record_automatic_answer(event_id=event_id, ticket_key=ticket_key, ticket_id=ticket.id,
                                               answer_source=decision.answer_source, confidence=decision.confidence)

        effect = self.store.begin_effect(key, kind="public_reply")
        if effect["state"] == "done":
            record_answer()
            return "resolved (reply already sent)"
        answer = decision.answer or ""
        if not effect["fresh"] and reply_landed(ticket, answer):
            # A previous attempt's reply reached the helpdesk but we crashed before recording it. On helpdesks
            # where a reply and its status are two calls, the status may not have followed: set it now.
            if self.settings.resolve_status and ticket.status != self.settings.resolve_status:
                self.helpdesk.set_status(ticket.id, self.settings.resolve_status)
            record_answer()
            self.store.finish_effect(key, result={"recovered": True})
            return "resolved (reply found after restart)"
        self.helpdesk.reply(ticket.id, answer, status=self.settings.resolve_status)
        record_answer()
        self.store.finish_effect(key, result={"answer_source": decision.answer_source})
        self.store.audit(actor="seam", action="auto_resolved",
                         detail={"ticket_id": ticket.id, "event_id": event_id, "confidence": decision.confidence,
                                 "answer_source": decision.answer_source})
        return "resolved"

    def _escalate(self, event_id: int, decision_id: int, ticket_key: str, ticket: Ticket, decision: Decision) -> str:
        escalation = self.store.escalation_for_event(event_id)
        retrying = escalation is not None
        link = ticket.url or self.helpdesk.ticket_link(ticket.id)
        if escalation is None:
            card = EscalationView(escalation_id=0, ticket=ticket, decision=decision, link=link).to_card()
            escalation = self.store.create_escalation(
                event_id=event_id, decision_id=decision_id, ticket_key=ticket_key, ticket_id=ticket.id,
                channel=self.settings.escalation_channel or "", draft=decision.answer,
                confidence=decision.confidence, card=card, customer_text=ticket.customer_text())
        ts = escalation.ts
        if escalation.state == EscalationState.POSTING:
            ts = self.poster.post_escalation(escalation, retrying=retrying)
        self.poster.post_transcript(escalation, ts, ticket.messages, link=link)
        return "escalated" if decision.route == Route.ESCALATE else "drafted"
