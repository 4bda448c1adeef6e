"""A reply written for one customer never reaches another as it stands: the local engine greets this customer
and sends the reply of the same answer that names no other case; what is left of another case (an order number,
an email, the past customer's name) caps the route at a draft (bot.text `details` / `addressed_to`,
bot.engine.local `_reply`, bot.policy.decide OTHER_CUSTOMER), and the OpenAI engine neither reads nor writes it."""

from __future__ import annotations

import json

import openai
import pytest

from bot.engine.knowledge import Article
from bot.engine.local import LocalEngine
from bot.engine.openai import OpenAIEngine
from bot.models import Route, Ticket
from bot.policy.decide import OTHER_CUSTOMER, Policy, decide
from bot.slack import blocks
from bot.text import addressed_to, details, masked
from tests.support.fakes import FakeOpenAI

SUPPORT_LINE = "Call 555-0142 if it has not arrived in a week."


def past(i: int, name: str, order: str, *, reply: str | None = None) -> Ticket:
    first = name.split()[0]
    return Ticket.from_dict({
        "id": f"h{i}", "messages": [{"author": "customer", "body": f"Where is my order {order}? It has not arrived"}],
        "requester": {"name": name, "email": f"{first.lower()}@example.com"},
        "resolution": {"answer_id": "where-is-my-order", "answer": reply if reply is not None else
                       f"Hi {first},\nThanks for waiting, {first}: your order {order} ships tomorrow. {SUPPORT_LINE}"
                       f"\nThanks {first}!"}})


def asking(body: str, *, name: str | None = "Dora Quinn", email: str | None = "dora@example.net") -> Ticket:
    return Ticket.from_dict({"id": "n1", "messages": [{"author": "customer", "body": body}],
                             "requester": {"name": name, "email": email}})


PERSONAL = [past(0, "Ana Lopez", "77812"), past(1, "Ben Okafor", "55501"), past(2, "Cy Park", "12345")]


# -- the text helpers ------------------------------------------------------------------------------------------

def test_details_are_emails_and_long_numbers_but_not_years():
    found = details("Order #77812 (ORD-12345) placed 2026-11-20; call +1 (555) 014-2370 or mail Ana.B@Example.co.uk. "
                    "Since 1999.")
    assert found == {"77812", "12345", "2370", "ana.b@example.co.uk"}
    assert details("Refunds take 5 to 10 days.") == frozenset()


@pytest.mark.parametrize("reply, name, expected", [
    ("Hi Ana,\nYour order ships.", "Dora Quinn", "Hi Dora,\nYour order ships."),
    ("Hi Ana,\nYour order ships.", None, "Hi there,\nYour order ships."),
    ("Dear Mr Smith, thank you.", None, "Dear customer, thank you."),
    ("Hello Ana Maria Lopez! Sorry.", "dora@example.net", "Hello there! Sorry."),
    ("Hi Dora, it ships.", "Dora Quinn", "Hi Dora, it ships."),
    ("Hi there, it ships.", "Dora Quinn", "Hi there, it ships."),
    ("Dear Customer, it ships.", "Dora Quinn", "Dear Customer, it ships."),
    ("Thanks Ana, it ships.", "Dora Quinn", "Thanks Ana, it ships."),  # not a greeting: `details` is not about it
])
def test_a_greeting_addresses_this_customer_or_nobody(reply, name, expected):
    assert addressed_to(reply, name) == expected


def test_masked_writes_each_detail_out():
    text = "Hi, order 77812 and 177812 for ana@example.com. Thanks Ana, Anastasia."
    expected = "Hi, order […] and 177812 for […]. Thanks […], Anastasia."
    assert masked(text, ("77812", "ana@example.com", "Ana")) == expected


# -- the local engine and the policy ---------------------------------------------------------------------------

def test_a_reply_for_another_customer_is_greeted_anew_and_goes_to_a_person_first():
    engine = LocalEngine(history=PERSONAL)
    ticket = asking("Where is my order 99999? It has not arrived yet")
    assessment = engine.assess(ticket)
    assert assessment.answer_source == "where-is-my-order"
    assert assessment.answer.startswith("Hi Dora,\n")
    # The support line is in every reply of the answer: the answer's own. The order and the name are one case's.
    assert "0142" not in assessment.foreign_details
    order, name = assessment.foreign_details
    assert order in {"77812", "55501", "12345"} and name in {"Ana", "Ben", "Cy"}
    decision = decide(ticket, assessment, policy=Policy())
    assert decision.route == Route.DRAFT
    reason = next(r for r in decision.reasons if r.code == OTHER_CUSTOMER)
    assert reason.label == "The answer names another customer's details"
    assert order in reason.detail and name in reason.detail


def test_a_reply_of_the_same_answer_that_names_no_case_is_sent_instead():
    generic = past(3, "Eve Stone", "44444", reply=f"Hi Eve,\nYour order ships within two days. {SUPPORT_LINE}")
    engine = LocalEngine(history=[*PERSONAL, generic])
    ticket = asking("Where is my order 77812? It has not arrived", name="Fred Mole")
    assessment = engine.assess(ticket)
    assert assessment.answer_source == "where-is-my-order"
    assert assessment.answer == f"Hi Fred,\nYour order ships within two days. {SUPPORT_LINE}"
    assert assessment.foreign_details == ()
    assert not any(r.code == OTHER_CUSTOMER for r in decide(ticket, assessment, policy=Policy()).reasons)


def test_the_customers_own_details_and_the_articles_are_not_foreign():
    article = Article(id="where-is-my-order", title="Where is my order?",
                      body="Orders ship within two days. Write to orders@shop.example quoting order 10000.")
    engine = LocalEngine(articles=[article], history=PERSONAL)
    # Ana asks again: her own order number and name are hers to read; the article's text is sent.
    ticket = asking("Where is my order 77812? It has not arrived", name="Ana Lopez", email="ana@example.com")
    assessment = engine.assess(ticket)
    assert assessment.answer == article.body
    assert assessment.foreign_details == ()


def test_a_learnt_reply_naming_its_customer_is_drafted_for_the_next():
    engine = LocalEngine(history=PERSONAL)
    engine.learn("Can I change the delivery address of my parcel?", "seam-reply-7",
                 "Hi Gus, I changed the address of order 80808 to gus@mail.example for you.")
    ticket = asking("Can I change the delivery address of my parcel?")
    assessment = engine.assess(ticket)
    assert assessment.answer_source == "seam-reply-7"
    assert assessment.answer.startswith("Hi Dora, I changed")
    assert set(assessment.foreign_details) == {"80808", "gus@mail.example"}
    assert decide(ticket, assessment, policy=Policy()).route != Route.RESOLVE


def test_a_learnt_reply_naming_its_customer_in_the_text_is_drafted_for_anyone_else():
    # A greeting is rewritten (`addressed_to`); a name further in the text is not, so the engine keeps the name of
    # the customer a learnt reply was written for, as it does for past tickets' requesters.
    question = "Can I change the delivery address of my parcel?"
    engine = LocalEngine(history=PERSONAL)
    engine.learn(question, "seam-reply-8", "Done: the address is changed. Thanks for your patience, Gus!",
                 requester_name="Gus Li")
    ticket = asking(question)
    assessment = engine.assess(ticket)
    assert assessment.answer_source == "seam-reply-8"
    assert assessment.foreign_details == ("Gus",)
    assert decide(ticket, assessment, policy=Policy()).route != Route.RESOLVE
    # Gus asking again reads his own name.
    assert engine.assess(asking(question, name="Gus Li", email="gus@mail.example")).foreign_details == ()
    # A reply of the same answer that names nobody is sent instead.
    engine.learn("May I change where my parcel is delivered?", "seam-reply-8", "Done: the address is changed.",
                 requester_name="Hal Berg")
    assessment = engine.assess(ticket)
    assert (assessment.answer, assessment.foreign_details) == ("Done: the address is changed.", ())


def test_a_past_reply_is_sent_without_the_sign_off_of_the_agent_who_wrote_it():
    engine = LocalEngine(history=PERSONAL)
    question = "Can I change the delivery address of my parcel?"
    engine.learn(question, "seam-reply-9", "Hi Gus,\nDone: the address is changed.\n\nBest,\nSam",
                 requester_name="Gus Li")
    assessment = engine.assess(asking(question))
    assert (assessment.answer, assessment.foreign_details) == ("Hi Dora,\nDone: the address is changed.", ())


def test_generic_history_is_answered_as_before():
    replies = [past(i, name, order, reply=f"Your order ships within two days. {SUPPORT_LINE}")
               for i, (name, order) in enumerate([("Ana Lopez", "77812"), ("Ben Okafor", "55501")])]
    ticket = asking("Where is my order 99999? It has not arrived")
    assessment = LocalEngine(history=replies).assess(ticket)
    assert assessment.answer == f"Your order ships within two days. {SUPPORT_LINE}"
    assert assessment.foreign_details == ()


# -- the OpenAI engine -----------------------------------------------------------------------------------------

@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


def openai_engine(fake: FakeOpenAI, retriever: LocalEngine) -> OpenAIEngine:
    client = openai.OpenAI(base_url=fake.url + "/v1", api_key=fake.api_key, timeout=2, max_retries=0)
    return OpenAIEngine(client, model="gpt-test-mini", retriever=retriever)


def model_says(fake: FakeOpenAI, answer: str) -> None:
    fake.reply_json({"summary": "Where is the order.", "topic": "Order status", "tone": 0.0, "wants_human": False,
                     "supported_by": ["where-is-my-order"], "answer": answer, "confidence": 0.95})


def test_the_model_reads_no_other_customers_details(fake):
    engine = openai_engine(fake, LocalEngine(history=PERSONAL))
    model_says(fake, "Your order ships tomorrow.")
    engine.assess(asking("Where is my order 99999? It has not arrived yet"))
    prompt = json.dumps(fake.requests[-1]["messages"])
    for case in ("77812", "55501", "12345", "Ana", "Ben", "Cy"):
        assert case not in prompt
    assert "555-0142" in prompt and "Dora" in prompt


def test_a_number_the_model_wrote_from_nowhere_goes_to_a_person_first(fake):
    engine = openai_engine(fake, LocalEngine(history=PERSONAL))
    ticket = asking("Where is my order 99999? It has not arrived yet")
    model_says(fake, "Your order 99999 ships tomorrow; its tracking number is 4417220.")
    assessment = engine.assess(ticket)
    assert assessment.foreign_details == ("4417220",)
    assert decide(ticket, assessment, policy=Policy()).route == Route.DRAFT
    model_says(fake, "Your order 99999 ships tomorrow. Call 555-0142 if it has not arrived in a week.")
    assert engine.assess(ticket).foreign_details == ()


# -- the card --------------------------------------------------------------------------------------------------

def test_a_draft_naming_another_customer_cannot_be_sent_with_one_click():
    ticket = asking("Where is my order 99999? It has not arrived yet")
    decision = decide(ticket, LocalEngine(history=PERSONAL).assess(ticket), policy=Policy())
    assert blocks.OTHER_CUSTOMER == OTHER_CUSTOMER
    assert not blocks.approvable(decision)
    message = blocks.escalation_message(blocks.EscalationView(ticket=ticket, decision=decision, escalation_id=7,
                                                                link=None))
    buttons = [e["text"]["text"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert "Edit" in buttons and "Approve" not in buttons and "Approve (edit first)" in buttons
    assert "The answer names another customer's details" in json.dumps(message)
