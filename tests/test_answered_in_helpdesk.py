"""A ticket answered in the helpdesk, outside Seam, has a finished escalation state of its own (ANSWERED): its card
offers no buttons and says where the ticket was answered, with the agent's reply, checked here as plain data.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from bot.models import Decision, EscalationState, Message, Reason, Route, Ticket
from bot.slack.blocks import EscalationView, Status, escalation_message, helpdesk_label

# -- the card, as plain data ---------------------------------------------------------------------------------------

def view() -> EscalationView:
    ticket = Ticket(id="7", subject="Cannot reset my password", messages=(Message("customer", "help"),),
                    requester_name="Ana", requester_email="ana@example.com", priority="high")
    decision = Decision(route=Route.DRAFT, confidence=0.8, reasons=(Reason(code="wants_human", label="A person"),),
                        answer="Open the sign-in page.", answer_source="reset-password", summary="Cannot reset.")
    return EscalationView(escalation_id=41, ticket=ticket, decision=decision, link=None)


def section_texts(message: dict) -> list[str]:
    return [b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and "text" in b]


def test_the_answered_card_has_no_buttons_and_shows_the_agents_reply_clipped():
    reply = "Hi Ana, <!channel> try this: " + "x" * 5000
    status = Status(state=EscalationState.ANSWERED, owner="U1", sent_text=reply, helpdesk="zendesk",
                    created_at="2026-11-20T10:02:00Z")
    blocks = escalation_message(view(), status)["blocks"]
    assert not [b for b in blocks if b["type"] == "actions"]
    at = next(i for i, b in enumerate(blocks) if b["type"] == "section" and b.get("text", {}).get("text") ==
              "✅ *Answered in Zendesk by an agent* — nothing left to do here.")
    words = blocks[at + 1]["text"]
    assert words["type"] == "plain_text", "the agent's words are shown literally, never as mrkdwn"
    assert len(words["text"]) <= 3000 and words["text"].startswith("Hi Ana, <!channel> try this: xxx")


def test_the_answered_card_without_a_reply_says_the_ticket_was_solved_there():
    for helpdesk, label in (("zendesk", "Zendesk"), ("helpscout", "Help Scout"), ("acme", "Acme"),
                            (None, "the helpdesk")):
        message = escalation_message(view(), Status(state=EscalationState.ANSWERED, helpdesk=helpdesk))
        assert (f"✅ *Solved in {label}* without a reply through Seam — nothing left to do here."
                in section_texts(message))
        assert not [b for b in message["blocks"] if b["type"] == "actions"]
    assert helpdesk_label("Front") == "Front"


def test_an_answered_card_shows_no_waiting_time_any_more():
    now = datetime(2026, 11, 20, 10, 14, tzinfo=UTC)
    waiting = Status(created_at="2026-11-20T10:02:00Z", helpdesk="zendesk")
    fields = [f["text"] for b in escalation_message(view(), waiting, now=now)["blocks"] for f in b.get("fields", [])]
    assert "*Waiting*\n12 min" in fields
    answered = replace(waiting, state=EscalationState.ANSWERED, sent_text="Done.")
    fields = [f["text"] for b in escalation_message(view(), answered, now=now)["blocks"] for f in b.get("fields", [])]
    assert not [f for f in fields if f.startswith("*Waiting")]
