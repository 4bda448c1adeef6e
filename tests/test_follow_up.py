"""A customer who writes again while their escalation waits on a person (bot.flows.pipeline `_follow_up`): the
message joins that escalation — quoted in its thread, its owner mentioned, card numbers masked, mrkdwn escaped,
the card updated in place to say so — and no second card is posted (the contract: one post per escalation, later
changes by chat.update or in its thread). Every message the thread has not shown is quoted (two quick ones
handled as one event both), none twice. Once per event however often it is retried; the reply an agent then
sends is learnt against the customer's latest words. Once the escalation is finished, the next message is a new
escalation with its own card.

The core runs in-process against the loopback fakes (tests.support.services), with the real Bolt listeners.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.payloads import block_action
from tests.support.posts import posts_for
from tests.support.services import (
    AGENT,
    ZENDESK_AGENT,
    drain,
    escalated,
    staffed,
    ticket_event,
    web_client,
)
from tests.support.signing import signed_form
from tests.support.waiting import wait_until

_ids = itertools.count(93_000)


@pytest.fixture
def services(fake_slack, fake_zendesk, tmp_path):
    return staffed(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path)


def customer_writes(fake_zendesk, case: dict, text: str) -> None:
    httpx.put(f"{fake_zendesk.url}/api/v2/tickets/{case['ticket']}.json", auth=fake_zendesk.auth, json={
        "ticket": {"comment": {"author_id": CUSTOMER_ID, "body": text, "public": True}}}).raise_for_status()


def seams_thread(fake_slack, case: dict) -> list[str]:
    return [r["text"] for r in fake_slack.replies(CHANNEL, case["ts"]) if "wrote again" in r["text"]]


def test_a_message_while_the_escalation_waits_joins_its_thread_and_card_and_posts_nothing_new(
        services, fake_slack, fake_zendesk):
    case = escalated(services, fake_slack, fake_zendesk, ticket_id=next(_ids), requester=CUSTOMER_ID,
                     subject="Parcel", text="My parcel never came. I want to talk to a person.")
    body, headers = signed_form(block_action(user=AGENT, action_id="seam_claim", value=str(case["escalation"]),
                                             message_ts=case["ts"]))
    assert web_client(services).post("/slack/events", data=body, headers=headers).status_code == 200
    wait_until(lambda: services.store.escalation(case["escalation"]).owner == AGENT, what="the claim")
    customer_writes(fake_zendesk, case, "Hello? It is order 55123, paid with 4111 1111 1111 1111. <!channel>")
    updates = len(fake_slack.calls_to("chat.update"))

    outcome = ticket_event(services, case["ticket"], "again")

    assert outcome == f"added to escalation {case['escalation']}: the customer wrote again"
    assert len(posts_for(fake_slack, case["ticket"])) == 1, "no second card"
    [note] = seams_thread(fake_slack, case)
    assert f"<@{AGENT}>" in note and "order 55123" in note, "the owner hears of it, with the customer's words"
    assert "4111 1111 1111 1111" not in note and "1111" in note, "card numbers masked, the last four kept"
    assert "<!channel>" not in note and "&lt;!channel&gt;" in note, "the customer's words never ping anyone"
    card = wait_until(lambda: [c for c in fake_slack.calls_to("chat.update")[updates:]
                               if c.params["ts"] == case["ts"]], what="the card updated in place")[-1]
    assert "The customer wrote again (once)" in json.dumps(card.params["blocks"])
    escalation = services.store.escalation(case["escalation"])
    assert escalation.owner == AGENT and "order 55123" in escalation.customer_text
    # The same event again (a retry after a crash): nothing new anywhere.
    event = next(e for e in services.store.db["events"].rows_where("dedupe_key = ?", [f"t{case['ticket']}:again"]))
    assert services.pipeline.process(services.store.event(event["id"])) == outcome
    drain(services)
    assert len(seams_thread(fake_slack, case)) == 1
    assert services.store.escalation(case["escalation"]).card["follow_ups"] == [event["id"]]


def test_once_the_escalation_is_finished_the_next_message_gets_a_card_of_its_own(services, fake_slack, fake_zendesk):
    case = escalated(services, fake_slack, fake_zendesk, ticket_id=next(_ids), requester=CUSTOMER_ID,
                     subject="Parcel", text="My parcel never came. I want to talk to a person.")
    httpx.put(f"{fake_zendesk.url}/api/v2/tickets/{case['ticket']}.json", auth=fake_zendesk.auth, json={
        "ticket": {"comment": {"author_id": ZENDESK_AGENT, "body": "It ships tomorrow.", "public": True}}})
    assert "answered" in ticket_event(services, case["ticket"], "agent")
    customer_writes(fake_zendesk, case, "It did not ship. I want a person again.")

    assert "escalated" in ticket_event(services, case["ticket"], "again")

    assert len(posts_for(fake_slack, case["ticket"])) == 2
    assert seams_thread(fake_slack, case) == []


def test_two_quick_messages_handled_as_one_event_are_both_quoted_and_none_twice(services, fake_slack, fake_zendesk):
    ticket_id = next(_ids)
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    fake_zendesk.add_ticket(id=ticket_id, subject="Parcel", requester_id=CUSTOMER_ID, comments=[
        {"author_id": CUSTOMER_ID, "body": "My parcel never came. I want to talk to a person.",
         "created_at": an_hour_ago}])
    assert "escalated" in ticket_event(services, ticket_id, "new")
    [post] = posts_for(fake_slack, ticket_id)
    case = {"ticket": ticket_id, "ts": post["ts"]}
    customer_writes(fake_zendesk, case, "First: it was order 55123.")
    customer_writes(fake_zendesk, case, "Second: please hurry.")

    assert "the customer wrote again" in ticket_event(services, ticket_id, "both")
    customer_writes(fake_zendesk, case, "Third: still nothing.")
    assert "the customer wrote again" in ticket_event(services, ticket_id, "third")

    drain(services)
    first, second = seams_thread(fake_slack, case)
    assert "First: it was order 55123." in first and "Second: please hurry." in first
    assert "never came" not in first, "what the transcript already shows is not quoted again"
    assert "Third: still nothing." in second and "First" not in second and "Second" not in second


def test_two_events_racing_on_one_ticket_quote_each_message_once(services, fake_slack, fake_zendesk):
    # Two workers on one ticket: while one has found the escalation and read the ticket, the other quotes the same
    # message first. The slower one must choose again, and quote nothing twice.
    case = escalated(services, fake_slack, fake_zendesk, ticket_id=next(_ids), requester=CUSTOMER_ID,
                     subject="Parcel", text="My parcel never came. I want to talk to a person.")
    customer_writes(fake_zendesk, case, "Second: order 55123.")
    store, found = services.store, services.store.live_escalation
    quoted = fake_zendesk.comments(case["ticket"])[-1]["created_at"]

    def found_then_quoted_by_another_worker(ticket_key):
        live = found(ticket_key)
        if live is not None:
            assert store.add_follow_up(live.id, event_id=10_000, customer_text="Second: order 55123.",
                                       quoted_until=quoted, shown_until=live.card.get("follow_up_until")) == "added"
        return live

    store.live_escalation = found_then_quoted_by_another_worker
    outcome = ticket_event(services, case["ticket"], "again")
    store.live_escalation = found

    assert "already in its thread" in outcome, outcome
    drain(services)
    assert seams_thread(fake_slack, case) == [], "the other worker's note is the one that quotes it"
    customer_writes(fake_zendesk, case, "Third: please hurry.")
    assert "the customer wrote again" in ticket_event(services, case["ticket"], "third")
    drain(services)
    [note] = seams_thread(fake_slack, case)
    assert "Third: please hurry." in note and "Second" not in note


def test_a_helpdesk_clock_ahead_of_seams_does_not_quote_the_escalated_message_again(services, fake_slack,
                                                                                     fake_zendesk):
    fake_zendesk.run_clock_ahead(600)  # the helpdesk's times are ten minutes ahead of Seam's
    ticket_id = next(_ids)
    fake_zendesk.add_ticket(id=ticket_id, subject="Parcel", requester_id=CUSTOMER_ID, comments=[
        {"author_id": CUSTOMER_ID, "body": "My parcel never came. I want to talk to a person."}])
    assert "escalated" in ticket_event(services, ticket_id, "new")
    [post] = posts_for(fake_slack, ticket_id)
    case = {"ticket": ticket_id, "ts": post["ts"]}
    customer_writes(fake_zendesk, case, "It was order 55123.")

    assert "the customer wrote again" in ticket_event(services, ticket_id, "again")
    drain(services)
    [note] = seams_thread(fake_slack, case)
    assert "It was order 55123." in note
    assert "never came" not in note, "the message the card answers is not a follow-up, whatever the clocks say"


def test_a_message_whose_escalation_is_finished_while_it_is_handled_gets_a_card_of_its_own(
        services, fake_slack, fake_zendesk):
    # The agent's reply lands between the pipeline finding the escalation waiting and adding the message to it
    # (another worker, a click): the message must not join a finished escalation nobody looks at again.
    case = escalated(services, fake_slack, fake_zendesk, ticket_id=next(_ids), requester=CUSTOMER_ID,
                     subject="Parcel", text="My parcel never came. I want to talk to a person.")
    customer_writes(fake_zendesk, case, "It is order 55123 and I still want a person.")
    store, found = services.store, services.store.live_escalation

    def found_then_answered(ticket_key):
        live = found(ticket_key)
        if live is not None:
            store.answer_escalation(live.id, text="It ships tomorrow.", detail={"escalation_id": live.id})
        return live

    store.live_escalation = found_then_answered

    outcome = ticket_event(services, case["ticket"], "again")

    assert "escalated" in outcome, outcome
    assert len(posts_for(fake_slack, case["ticket"])) == 2, "the message has a card of its own"
    assert seams_thread(fake_slack, case) == []
    assert "order 55123" not in (store.escalation(case["escalation"]).customer_text or "")
