"""A ticket answered in the helpdesk, outside Seam, closes its escalation (bot.flows.answered): an agent's public
reply written in Zendesk, or the ticket solved there, moves the open or claimed escalation to ANSWERED once,
updates its card in place with no buttons, stops its reminders and keep-warm updates, and a click on the stale
card sends nothing. An internal note, or a reply by Seam's own API user, closes nothing. The engine learns the
agent's reply only when it resolved the ticket (solved, the last public agent reply after the customer's latest
message): once per escalation, and again after a restart from the feedback row.

The core runs in-process against the loopback fakes (tests.support.services), with the real webhook endpoint,
Bolt listeners, store and local engine; the card builders are checked as plain data at the end.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest

from bot.config import KeepWarmTable
from bot.flows.feedback import reply_label
from bot.models import Decision, Escalation, EscalationState, Message, Reason, Route, Ticket
from bot.slack.blocks import EscalationView, Status, escalation_message, helpdesk_label
from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.payloads import block_action
from tests.support.posts import posts_for, text_objects
from tests.support.services import (
    AGENT,
    AGENT_EMAIL,
    ZENDESK_AGENT,
    build_services,
    drain,
    escalated,
    staffed,
    ticket_event,
    web_client,
)
from tests.support.signing import signed_form, zendesk_headers
from tests.support.waiting import wait_until

# Asks for a person (so it escalates) about what the knowledge answers (so there is a draft).
PASSWORD = "I forgot my password and need to reset it. Can I talk to a person?"
# Nothing in the knowledge answers it: what an agent's reply teaches is new.
FAROE = "Do you ship parcels to the Faroe Islands, and how long would that take?"
TAUGHT = "Yes: we ship to the Faroe Islands with our island courier; delivery takes 9 to 12 days."
HOLDING = "Thanks Ana, I am looking into it and will get back to you shortly."
_ids = itertools.count(77_000)


@pytest.fixture
def services(fake_slack, fake_zendesk, tmp_path):
    return staffed(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path)


def escalate(services, fake_slack, fake_zendesk, text: str = PASSWORD) -> dict:
    """A new ticket escalated: {ticket, escalation, ts}."""
    return escalated(services, fake_slack, fake_zendesk, ticket_id=next(_ids), requester=CUSTOMER_ID,
                     subject="Question", text=text)


outcome = ticket_event


def write(fake_zendesk, case: dict, text: str | None = None, *, public: bool = True, author: int = ZENDESK_AGENT,
          status: str | None = None) -> None:
    """What an agent does in Zendesk's own UI (or Seam's API user, by `author`): a comment and/or a status."""
    change: dict = {}
    if text is not None:
        change["comment"] = {"author_id": author, "body": text, "public": public}
    if status is not None:
        change["status"] = status
    httpx.put(f"{fake_zendesk.url}/api/v2/tickets/{case['ticket']}.json", auth=fake_zendesk.auth,
              json={"ticket": change}).raise_for_status()


def customer_writes(fake_zendesk, case: dict, text: str) -> None:
    write(fake_zendesk, case, text, author=CUSTOMER_ID)


def card(fake_slack, case: dict) -> dict:
    return next(m for m in fake_slack.messages(CHANNEL) if m["ts"] == case["ts"])


def buttons(message: dict) -> list[str]:
    return [e["text"]["text"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def shown(message: dict) -> str:
    return "\n".join(t["text"] for t in text_objects(message["blocks"]))


def updates(fake_slack, case: dict) -> list:
    return [c for c in fake_slack.calls_to("chat.update") if c.ok and c.params.get("ts") == case["ts"]]


def audited(services, action: str, case: dict) -> list[dict]:
    return [r for r in services.store.audit_rows(limit=1000, actor="seam")
            if r["action"] == action and r["detail"].get("escalation_id") == case["escalation"]]


def helpdesk_replies(services, case: dict) -> list[dict]:
    return [r for r in services.store.feedback_rows()
            if r["escalation_id"] == case["escalation"] and r["action"] == "helpdesk_reply"]


def seams_replies(fake_zendesk, case: dict) -> list[dict]:
    return [c for c in fake_zendesk.comments(case["ticket"]) if c["author_id"] == fake_zendesk.API_USER_ID]


def asking(text: str) -> Ticket:
    return Ticket(id="q", subject="Question", messages=(Message("customer", text),))


# -- closing the escalation ---------------------------------------------------------------------------------------

def test_an_agents_reply_in_zendesk_closes_the_escalation_and_updates_its_card_in_place(
        services, fake_slack, fake_zendesk):
    case = escalate(services, fake_slack, fake_zendesk)
    assert "Approve" in buttons(card(fake_slack, case))
    posts = len(fake_slack.messages(CHANNEL))
    reply = "Hi Ana, I sent you a new reset link by hand: it works for 24 hours."
    write(fake_zendesk, case, reply)

    # The webhook Zendesk sends for the agent's reply, through the real endpoint.
    client = web_client(services)
    body = json.dumps({"ticket_id": case["ticket"]}).encode()
    headers = zendesk_headers(body)
    assert client.post("/webhooks/zendesk", data=body, headers=headers).status_code == 202
    drain(services)

    escalation = services.store.escalation(case["escalation"])
    assert escalation.state == EscalationState.ANSWERED and escalation.state.finished
    assert escalation.sent_text == reply and escalation.finished_at and escalation.sent_by is None
    [_, event] = services.store.db["events"].rows_where("kind = 'ticket' and ticket_id = ?", [str(case["ticket"])],
                                                        order_by="id")
    assert event["outcome"] == f"answered in the helpdesk: escalation {case['escalation']} closed"
    [update] = updates(fake_slack, case)
    assert update.params["channel"] == CHANNEL
    message = card(fake_slack, case)
    assert buttons(message) == [] and not [b for b in message["blocks"] if b["type"] == "actions"]
    assert "✅ *Answered in Zendesk by an agent* — nothing left to do here." in shown(message)
    assert reply in shown(message)
    assert len(fake_slack.messages(CHANNEL)) == posts, "the card is updated, never posted again"
    [entry] = audited(services, "escalation_answered_in_helpdesk", case)
    assert entry["detail"]["why"] == "an agent replied" and entry["detail"]["was"] == "open"
    assert helpdesk_replies(services, case) == [], "the ticket is still open: nothing is learnt"
    assert seams_replies(fake_zendesk, case) == [], "Seam wrote nothing to the customer"

    # Zendesk redelivering the same webhook is the same job; a later event for the ticket changes nothing.
    events = services.store.db["events"].count
    assert client.post("/webhooks/zendesk", data=body, headers=headers).status_code == 200  # "already have it"
    drain(services)
    assert services.store.db["events"].count == events
    assert outcome(services, case["ticket"], "later") == "skipped: latest comment is by the agent"
    assert len(updates(fake_slack, case)) == 1
    assert len(audited(services, "escalation_answered_in_helpdesk", case)) == 1
    assert services.store.escalation(case["escalation"]).sent_text == reply


@pytest.mark.parametrize(("public", "author", "who"), [(False, ZENDESK_AGENT, "agent"), (True, None, "bot")],
                         ids=["an-agents-internal-note", "seams-own-reply"])
def test_a_note_or_seams_own_reply_does_not_close_the_escalation(services, fake_slack, fake_zendesk, public,
                                                                  author, who):
    case = escalate(services, fake_slack, fake_zendesk)
    # Seam's own API user: its customer notice and keep-warm updates are public replies by "bot".
    write(fake_zendesk, case, "We have your message and a person is on it.", public=public,
          author=author or fake_zendesk.API_USER_ID)
    assert outcome(services, case["ticket"], "note") == f"skipped: latest comment is by the {who}"
    assert services.store.escalation(case["escalation"]).state == EscalationState.OPEN
    assert updates(fake_slack, case) == []
    assert "Approve" in buttons(card(fake_slack, case))


def test_a_claimed_escalation_solved_without_a_reply_closes_and_teaches_nothing(services, fake_slack, fake_zendesk):
    case = escalate(services, fake_slack, fake_zendesk)
    assert services.actions.claim(case["escalation"], AGENT).ok
    write(fake_zendesk, case, status="solved")
    assert outcome(services, case["ticket"], "solved") == (
        f"solved in the helpdesk: escalation {case['escalation']} closed")
    escalation = services.store.escalation(case["escalation"])
    assert (escalation.state, escalation.owner, escalation.sent_text) == (EscalationState.ANSWERED, AGENT, None)
    message = card(fake_slack, case)
    assert buttons(message) == []
    assert "✅ *Solved in Zendesk* without a reply through Seam" in shown(message)
    assert helpdesk_replies(services, case) == []


def test_an_escalation_whose_reply_seam_is_sending_is_left_alone(services, fake_slack, fake_zendesk):
    case = escalate(services, fake_slack, fake_zendesk)
    assert services.actions.claim(case["escalation"], AGENT).ok
    services.store.update_escalation(case["escalation"], state=EscalationState.SENDING)
    write(fake_zendesk, case, "Hi Ana, here is the link.")
    assert outcome(services, case["ticket"], "reply") == "skipped: latest comment is by the agent"
    assert services.store.escalation(case["escalation"]).state == EscalationState.SENDING


# -- what follows: reminders, keep-warm, clicks ---------------------------------------------------------------------

def due_now(services, kind: str) -> None:
    services.store.db.execute("update events set next_attempt_at = '2000-01-01T00:00:00.000000Z'"
                              " where state = 'pending' and kind = ?", [kind])


def job_outcomes(services, kind: str) -> list[str]:
    return [e["outcome"] for e in services.store.db["events"].rows_where("kind = ?", [kind], order_by="id")]


def test_the_unclaimed_reminder_after_an_answer_in_zendesk_does_nothing(services, fake_slack, fake_zendesk):
    case = escalate(services, fake_slack, fake_zendesk)
    write(fake_zendesk, case, "Hi Ana, done: check your inbox.")
    assert "closed" in outcome(services, case["ticket"], "reply")
    due_now(services, "reminder")
    drain(services)
    assert job_outcomes(services, "reminder") == ["stopped: the escalation is answered"]
    notes = [r["text"] for r in fake_slack.replies(CHANNEL, case["ts"])]
    assert not any("Still unclaimed" in text for text in notes)


def test_keep_warm_stops_for_an_answered_escalation_even_after_the_customers_thanks(
        fake_slack, fake_zendesk, tmp_path):
    fake_zendesk.add_user(id=ZENDESK_AGENT, name="Agent", email=AGENT_EMAIL, role="agent")
    services = build_services(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path,
                              keep_warm=KeepWarmTable(enabled=True, after=60, every=60))
    case = escalate(services, fake_slack, fake_zendesk)
    write(fake_zendesk, case, "Hi Ana, done: check your inbox.")
    assert "closed" in outcome(services, case["ticket"], "reply")
    # The thank-you leaves no agent reply after the customer's latest message: only the state says it is answered.
    customer_writes(fake_zendesk, case, "Thank you!")
    assert outcome(services, case["ticket"], "thanks") == "skipped: the customer only said thanks"
    due_now(services, "keep_warm")
    drain(services)
    assert job_outcomes(services, "keep_warm") == ["stopped: the ticket was answered in the helpdesk"]
    assert seams_replies(fake_zendesk, case) == []


@pytest.mark.parametrize("action", ["approve", "claim", "edit", "reject"])
def test_a_click_on_the_answered_card_sends_nothing_and_says_why(services, fake_slack, fake_zendesk, action):
    case = escalate(services, fake_slack, fake_zendesk)
    write(fake_zendesk, case, "Hi Ana, done: check your inbox.")
    assert "closed" in outcome(services, case["ticket"], "reply")
    comments = fake_zendesk.comments(case["ticket"])
    body, headers = signed_form(block_action(user=AGENT, action_id=f"seam_{action}", value=str(case["escalation"]),
                                             message_ts=case["ts"]))
    assert web_client(services).post("/slack/events", data=body, headers=headers).status_code == 200
    [notice] = wait_until(lambda: fake_slack.ephemerals(CHANNEL), what="the notice to the clicking user")
    assert notice["user"] == AGENT and notice["text"] == "This ticket was answered in Zendesk; nothing was sent."
    drain(services)
    assert fake_zendesk.comments(case["ticket"]) == comments
    escalation = services.store.escalation(case["escalation"])
    assert (escalation.state, escalation.owner) == (EscalationState.ANSWERED, None)
    assert fake_slack.views() == {}, "no form opens on an answered escalation"


def test_an_escalation_answered_while_an_approve_waits_refuses_the_send(services, fake_slack, fake_zendesk):
    case = escalate(services, fake_slack, fake_zendesk)
    assert services.actions.claim(case["escalation"], AGENT).ok
    write(fake_zendesk, case, status="solved")
    assert "closed" in outcome(services, case["ticket"], "solved")
    refused = services.actions.approve(case["escalation"], AGENT)
    assert (refused.ok, refused.notice) == (False, "This ticket was solved in Zendesk; nothing was sent.")
    assert services.actions.claim(case["escalation"], AGENT).notice == refused.notice
    assert seams_replies(fake_zendesk, case) == []


# -- learning ------------------------------------------------------------------------------------------------------

def test_the_reply_that_solved_the_ticket_is_learnt_once_and_kept_after_a_restart(
        services, fake_slack, fake_zendesk, tmp_path):
    assert services.engine.assess(asking(FAROE)).answer != TAUGHT
    case = escalate(services, fake_slack, fake_zendesk, f"{FAROE} I would like a person to answer.")
    write(fake_zendesk, case, TAUGHT, status="solved")
    assert outcome(services, case["ticket"], "solved") == (
        f"answered in the helpdesk: escalation {case['escalation']} closed, "
        f"the agent's reply learnt for escalation {case['escalation']}")
    escalation = services.store.escalation(case["escalation"])
    assert (escalation.state, escalation.sent_text) == (EscalationState.ANSWERED, TAUGHT)
    [row] = helpdesk_replies(services, case)
    assert (row["user_id"], row["final_text"], row["draft"], row["confidence"], row["answer_source"]) == (
        "helpdesk", TAUGHT, escalation.draft, escalation.confidence, escalation.answer_source)
    assert 0 < row["edit_distance"] <= 1
    [learnt] = audited(services, "learned_reply", case)
    assert learnt["detail"]["answer_source"] == reply_label(TAUGHT)
    assert outcome(services, case["ticket"], "again") == "skipped: latest comment is by the agent"
    assert len(helpdesk_replies(services, case)) == 1, "once per escalation"

    # A following similar ticket gets the agent's reply as its draft.
    second = escalate(services, fake_slack, fake_zendesk, f"{FAROE} Please, a human.")
    assert services.store.escalation(second["escalation"]).draft == TAUGHT
    assert TAUGHT in shown(card(fake_slack, second))

    # A restart on the same database fits an engine that knows it too.
    restarted = build_services(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path)
    assert restarted.store.learned_count() == 1
    assert restarted.engine.assess(asking(FAROE)).answer == TAUGHT


def test_a_reply_on_a_ticket_left_open_is_not_learnt_and_the_later_solving_reply_is(
        services, fake_slack, fake_zendesk):
    case = escalate(services, fake_slack, fake_zendesk, f"{FAROE} I would like a person to answer.")
    write(fake_zendesk, case, HOLDING)
    assert outcome(services, case["ticket"], "holding") == (
        f"answered in the helpdesk: escalation {case['escalation']} closed")
    assert helpdesk_replies(services, case) == [] and services.store.learned_count() == 0
    assert services.engine.assess(asking(FAROE)).answer != HOLDING

    # Answered first, solved later: the last public agent reply is the answer.
    write(fake_zendesk, case, TAUGHT)
    write(fake_zendesk, case, status="solved")
    assert outcome(services, case["ticket"], "solved") == (
        f"answered in the helpdesk: the agent's reply learnt for escalation {case['escalation']}")
    [row] = helpdesk_replies(services, case)
    assert row["final_text"] == TAUGHT
    assert services.store.escalation(case["escalation"]).sent_text == HOLDING, "the card shows what closed it"
    assert services.engine.assess(asking(FAROE)).answer == TAUGHT


def test_a_reply_after_a_rejected_draft_that_solves_the_ticket_is_learnt_and_the_rejection_stands(
        services, fake_slack, fake_zendesk):
    question = "My password reset email goes to an old address I cannot open any more. Can I talk to a person?"
    case = escalate(services, fake_slack, fake_zendesk, question)
    assert services.store.escalation(case["escalation"]).draft, "a draft to reject"
    assert services.actions.reject(case["escalation"], AGENT, reason="wrong_information").ok
    assert services.engine.assess(asking(question)).rejected_before
    answer = "I changed the email on your account to the new address; the reset link goes there now."
    write(fake_zendesk, case, answer, status="solved")
    assert outcome(services, case["ticket"], "solved") == (
        f"answered in the helpdesk: the agent's reply learnt for escalation {case['escalation']}")
    assert services.store.escalation(case["escalation"]).state == EscalationState.REJECTED
    assert [r["final_text"] for r in helpdesk_replies(services, case)] == [answer]
    # The latest word on the question stands: the reply is the draft for it now.
    assert services.engine.assess(asking(question)).answer == answer


def test_a_reply_word_for_word_the_draft_is_learnt_under_the_drafts_answer_source(services, fake_slack, fake_zendesk):
    case = escalate(services, fake_slack, fake_zendesk)
    escalation = services.store.escalation(case["escalation"])
    write(fake_zendesk, case, "  " + escalation.draft.replace(" ", "\n", 1), status="solved")
    assert "learnt" in outcome(services, case["ticket"], "solved")
    [learnt] = audited(services, "learned_reply", case)
    assert learnt["detail"]["answer_source"] == escalation.answer_source == "reset-password"


# -- stats ---------------------------------------------------------------------------------------------------------

def test_stats_count_the_escalations_answered_in_the_helpdesk(services, fake_slack, fake_zendesk):
    for _ in range(2):
        case = escalate(services, fake_slack, fake_zendesk)
        write(fake_zendesk, case, "Hi Ana, done.")
        assert "closed" in outcome(services, case["ticket"], "reply")
    escalate(services, fake_slack, fake_zendesk)
    assert services.controls.stats(days=7)["answered_in_helpdesk"] == 2
    line = next(line for line in services.controls.stats_text(days=7).splitlines() if line.startswith("Agents"))
    assert line == ("Agents reviewed 0 drafts: approved as is –, edited –, rejected –; escalations answered in the "
                    "helpdesk: 2.")


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


def test_a_learnt_reply_that_names_its_customer_greets_the_next_one_and_waits_for_a_person(
        services, fake_slack, fake_zendesk):
    # Replies written in the helpdesk are written for one customer (bot.engine.local `_reply`): the next customer
    # is greeted by name, and the first customer's order number keeps the draft from going out with one click.
    case = escalate(services, fake_slack, fake_zendesk, f"{FAROE} I would like a person to answer.")
    write(fake_zendesk, case, f"Hi Ana,\n{TAUGHT} Your order 55123 leaves on Monday.", status="solved")
    assert "learnt" in outcome(services, case["ticket"], "solved")
    fake_zendesk.add_user(id=CUSTOMER_ID + 1, name="Bo Other", email="bo@example.net")
    ticket_id = next(_ids)
    fake_zendesk.add_ticket(id=ticket_id, subject="Faroe", requester_id=CUSTOMER_ID + 1,
                            comments=[{"author_id": CUSTOMER_ID + 1, "body": FAROE}])
    assert "resolved" not in outcome(services, ticket_id, "new")
    [post] = posts_for(fake_slack, ticket_id)
    escalation = services.store.escalation(int(post["metadata"]["event_payload"]["escalation_id"]))
    assert escalation.draft == f"Hi Bo,\n{TAUGHT} Your order 55123 leaves on Monday."
    assert "The answer names another customer's details" in shown(post)
    assert "Approve" not in buttons(post) and "Approve (edit first)" in buttons(post) and "Edit" in buttons(post)
    # Approve cannot send it as it is: it opens the draft with what to take out, as Edit does.
    body, headers = signed_form(block_action(user=AGENT, action_id="seam_approve_after_edit",
                                             value=str(escalation.id), message_ts=post["ts"]))
    assert web_client(services).post("/slack/events", data=body, headers=headers).status_code == 200
    opened = wait_until(lambda: fake_slack.calls_to("views.open"), what="the Edit form")
    view = opened[-1].params["view"]
    form = json.dumps(json.loads(view) if isinstance(view, str) else view)
    assert "written for another customer and names their details (55123)" in form


def test_a_learnt_reply_that_names_its_customer_in_the_text_waits_for_a_person_even_after_a_restart(
        services, fake_slack, fake_zendesk, tmp_path):
    case = escalate(services, fake_slack, fake_zendesk, f"{FAROE} I would like a person to answer.")
    write(fake_zendesk, case, f"{TAUGHT} Safe travels to the islands, Ana!", status="solved")
    assert "learnt" in outcome(services, case["ticket"], "solved")
    fake_zendesk.add_user(id=CUSTOMER_ID + 2, name="Cy Third", email="cy@example.net")

    def next_customer(running) -> Escalation:
        ticket_id = next(_ids)
        fake_zendesk.add_ticket(id=ticket_id, subject="Faroe", requester_id=CUSTOMER_ID + 2,
                                comments=[{"author_id": CUSTOMER_ID + 2, "body": FAROE}])
        assert "resolved" not in outcome(running, ticket_id, "new")
        [post] = posts_for(fake_slack, ticket_id)
        assert "The answer names another customer's details" in shown(post)
        return running.store.escalation(int(post["metadata"]["event_payload"]["escalation_id"]))

    assert next_customer(services).draft == f"{TAUGHT} Safe travels to the islands, Ana!"
    # The name is read back with the reply when the engine is fitted again.
    restarted = build_services(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path)
    assert restarted.engine.assess(asking(FAROE)).foreign_details == ("Ana",)
    assert next_customer(restarted).draft == f"{TAUGHT} Safe travels to the islands, Ana!"


def test_the_reply_a_customer_thanked_for_before_the_ticket_was_solved_is_learnt(services, fake_slack, fake_zendesk):
    case = escalate(services, fake_slack, fake_zendesk, f"{FAROE} I would like a person to answer.")
    write(fake_zendesk, case, TAUGHT)
    customer_writes(fake_zendesk, case, "Thanks, that helps!")
    write(fake_zendesk, case, status="solved")
    assert outcome(services, case["ticket"], "solved") == (
        f"answered in the helpdesk: escalation {case['escalation']} closed, "
        f"the agent's reply learnt for escalation {case['escalation']}")
    assert services.store.escalation(case["escalation"]).sent_text == TAUGHT
    assert [r["final_text"] for r in helpdesk_replies(services, case)] == [TAUGHT]


def test_a_new_question_after_the_agents_reply_is_not_taken_for_thanks(services, fake_slack, fake_zendesk):
    case = escalate(services, fake_slack, fake_zendesk, f"{FAROE} I would like a person to answer.")
    write(fake_zendesk, case, TAUGHT)
    customer_writes(fake_zendesk, case, "Thanks. And can I pay on delivery there?")
    write(fake_zendesk, case, status="solved")
    assert "learnt" not in outcome(services, case["ticket"], "solved")
    assert helpdesk_replies(services, case) == []


@pytest.mark.parametrize("action", ["approve", "edit"])
@pytest.mark.parametrize("claimed", [False, True], ids=["open", "claimed"])
def test_a_reply_from_a_card_whose_ticket_an_agent_already_answered_in_zendesk_is_not_sent(
        services, fake_slack, fake_zendesk, action, claimed):
    # The README's trigger fires only on the customer's comments: an agent's reply written in Zendesk sends Seam no
    # event, and reconciliation finds it minutes later. Until then the card still offers Approve.
    case = escalate(services, fake_slack, fake_zendesk)
    if claimed:
        assert services.actions.claim(case["escalation"], AGENT).ok
    reply = "Hi Ana, I sent you a new reset link by hand: it works for 24 hours."
    write(fake_zendesk, case, reply)
    assert services.store.escalation(case["escalation"]).state in (EscalationState.OPEN, EscalationState.CLAIMED)
    before = seams_replies(fake_zendesk, case)
    if action == "approve":
        outcome_ = services.actions.approve(case["escalation"], AGENT)
    else:
        outcome_ = services.actions.send_edited(case["escalation"], AGENT, "Here is a second answer.")
    assert seams_replies(fake_zendesk, case) == before, "the customer got a second answer"
    assert (outcome_.ok, outcome_.notice) == (False, "This ticket was answered in Zendesk; nothing was sent.")
    escalation = services.store.escalation(case["escalation"])
    assert (escalation.state, escalation.sent_text) == (EscalationState.ANSWERED, reply)
    assert buttons(card(fake_slack, case)) == []
    [entry] = audited(services, "escalation_answered_in_helpdesk", case)
    assert entry["detail"]["why"] == "an agent replied"
