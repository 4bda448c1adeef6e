"""Escalations answered in the helpdesk, outside Seam. Agents often reply to the customer in the helpdesk itself
rather than from the card, or solve the ticket there; the ticket event that shows it closes the escalation, so
the card stops offering a second answer, the reminders and keep-warm updates stop, and the queues stop counting it.

The pipeline asks `HelpdeskAnswers.settle` about a ticket event whose latest comment is not the customer's, about
a solved or closed ticket, and about a customer's plain thank-you after a reply (it may come before the agent's
reply reaches Seam), before it skips the event:

- the rule is `bot.flows.lifecycle.waiting_on_person`'s: a public reply by an agent (author "agent", never "bot":
  that is Seam's own API user, its customer notice and keep-warm updates) after the customer's latest message
  that asks something (a thank-you after it does not), or the ticket solved or closed; an internal note closes nothing;
- it closes the ticket's escalations that are open or claimed (sending and failed ones are Seam's own reply in
  flight, a posting one is not in Slack yet) and were recorded before the ticket was read (a newer message
  escalated meanwhile keeps its card): each moves to ANSWERED by a compare-and-set in the store, with its audit
  entry, so it happens once whatever the redeliveries and never after a click finished it first; the agent's
  reply is kept (`sent_text`) and the card updated in place (chat.update, no buttons), never posted again.

The engine learns the agent's reply only when it is the resolution: the ticket is solved or closed and an agent
replied publicly after the customer's latest message — the last such reply is the answer, the rule of the
history importers (`bot.helpdesk.zendesk.importer`); a plain thank-you from the customer after that reply asks
nothing, so the reply it thanks for is still the answer. A reply on a ticket left open ("Looking into it, I'll get
back to you") is never learnt, or the engine would send it to the next customer. It is learnt for the escalation
made for the customer's latest message — answered in the helpdesk, or rejected in Slack before an agent wrote the
real answer there — once per escalation: a feedback row with action `helpdesk_reply` (whose presence a
redelivery finds), the engine's `learn` as for a reply sent from Slack (`bot.flows.actions`), and the same row
read back by the refit after a restart (`bot.services.learned_tickets`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.flows.feedback import HELPDESK_REPLY, Learn, edit_distance, learned_label
from bot.flows.lifecycle import waiting_on_person
from bot.flows.quality import asking_index
from bot.models import Escalation, EscalationState, Message, Ticket
from bot.slack.poster import Poster
from bot.store import Store, ticket_key, turn_key

log = logging.getLogger(__name__)

# Who the feedback row of a reply written in the helpdesk names: the helpdesk does not say which Slack user it was.
HELPDESK_USER = "helpdesk"
# The escalations whose question a resolving reply in the helpdesk answers: closed by that reply (or an earlier
# one), or rejected in Slack and then answered in the helpdesk. A sent one was answered through Seam.
LEARNS_FOR = (EscalationState.ANSWERED, EscalationState.REJECTED)


def last_agent_reply(ticket: Ticket) -> Message | None:
    """The last public reply by an agent after the customer's latest message that asks something (the answer,
    when the ticket is solved), or None."""
    latest = asking_index(ticket)
    after = ticket.messages[latest + 1:] if latest is not None else ticket.messages
    return next((m for m in reversed(after) if m.author == "agent" and m.public), None)


def resolved(ticket: Ticket) -> bool:
    """Solved or closed (the platform's word for it), not deleted or marked as spam."""
    # A deleted or spam ticket is finished too, but its replies teach nothing.
    return ticket.finished and not ticket.discarded


@dataclass
class HelpdeskAnswers:
    store: Store
    poster: Poster
    helpdesk: str  # the helpdesk's name (HELPDESK), as the store keys its tickets
    learn: Learn | None = None

    def settle(self, ticket: Ticket, *, read_at: str) -> str | None:
        """Close the escalations the ticket shows were answered in the helpdesk, and learn the reply that resolved
        it; the event's outcome, or None when there was nothing to do (a redelivery, a note, Seam's own reply).
        `read_at`: when the ticket was read (ISO), so only escalations recorded before it are closed."""
        why = waiting_on_person(ticket)
        if why is None:
            return None
        reply = last_agent_reply(ticket)
        closed = [escalation.id for escalation in self.store.answerable_escalations(
            ticket_key(self.helpdesk, ticket.id), created_before=read_at) if self._close(escalation, reply, why)]
        learnt = self._learn(ticket, reply) if reply is not None and resolved(ticket) else None
        if not closed and learnt is None:
            return None
        outcome = "answered in the helpdesk" if reply is not None else "solved in the helpdesk"
        parts = []
        if closed:
            ids = ", ".join(str(i) for i in closed)
            parts.append(f"escalation{'s' if len(closed) > 1 else ''} {ids} closed")
        if learnt is not None:
            parts.append(f"the agent's reply learnt for escalation {learnt.id}")
        return f"{outcome}: {', '.join(parts)}"

    def _close(self, escalation: Escalation, reply: Message | None, why: str) -> bool:
        if not self.store.answer_escalation(escalation.id, text=reply.body if reply is not None else None, detail={
                "escalation_id": escalation.id, "ticket_id": escalation.ticket_id, "why": why,
                "owner": escalation.owner, "was": str(escalation.state), "route": escalation.route}):
            return False
        log.info("escalation %s: %s in %s, closed", escalation.id, why, self.helpdesk)
        self.poster.refresh(escalation.id)
        return True

    def _learn(self, ticket: Ticket, reply: Message) -> Escalation | None:
        """Learn the reply that resolved the ticket for the escalation made for the customer's latest message,
        once; that escalation when this call learnt it."""
        latest = asking_index(ticket)
        if latest is None:
            return None
        # The turn the pipeline claimed for that message: its id, or its position when the helpdesk gives none.
        comment = ticket.messages[latest].id or latest + 1
        escalation = self.store.escalation_for_turn(turn_key(self.helpdesk, ticket.id, comment))
        if escalation is None or escalation.state not in LEARNS_FOR or not escalation.customer_text:
            return None
        if not self.store.add_feedback_once(
                escalation_id=escalation.id, action=HELPDESK_REPLY, ticket_key=escalation.ticket_key,
                user_id=HELPDESK_USER, confidence=escalation.confidence, draft=escalation.draft,
                final_text=reply.body, edit_distance=edit_distance(escalation.draft, reply.body), reason=None,
                answer_source=escalation.answer_source, customer_text=escalation.customer_text):
            return None
        if self.learn is not None:
            label = learned_label(action=HELPDESK_REPLY, answer_source=escalation.answer_source,
                                  escalation_id=escalation.id, draft=escalation.draft, final_text=reply.body,
                                  requester_name=escalation.requester_name)
            self.learn(escalation.customer_text, label, reply.body, requester_name=escalation.requester_name)
            # The engine answers the next similar ticket from this reply from now on: say when that began.
            self.store.audit(actor="seam", action="learned_reply",
                             detail={"escalation_id": escalation.id, "answer_source": label, "from": "helpdesk"})
        return escalation
