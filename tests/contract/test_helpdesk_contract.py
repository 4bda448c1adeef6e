"""The helpdesk contract: what every adapter (`bot.helpdesk.base.Helpdesk`) must do, whichever helpdesk it talks
to. Each test runs against every harness in `tests.support.helpdesks.HARNESSES`, through the harness only, so
the same tests hold Zendesk today and each helpdesk added later to the behaviour the rest of Seam relies on:
webhooks verified and deduplicated, tickets read faithfully, writes landing once, and failures that end in a
`HelpdeskError` instead of a hang.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping

import pytest

from bot.helpdesk.base import Agent, HelpdeskError, WebhookAuthError, WebhookChallenge, WebhookPayloadError
from tests.support.helpdesks import HelpdeskHarness

QUESTION = "My parcel never arrived, where is it?"
ANSWER = "Your parcel left our warehouse yesterday; here is the tracking link."


def as_received(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers the way Seam's web layer hands them to an adapter: names lower-cased (handlers/webhooks.py)."""
    return {name.lower(): value for name, value in headers.items()}


def one_question(harness: HelpdeskHarness, **kwargs) -> str:
    return harness.add_customer_ticket("Where is my parcel", [("customer", QUESTION, True)], **kwargs)


def bot_replies(harness: HelpdeskHarness, ticket_id: str, body: str) -> list:
    """The messages `fetch_ticket` shows that Seam's "did it land?" check would take for this reply."""
    return [m for m in harness.adapter.fetch_ticket(ticket_id).messages
            if m.author != "customer" and m.public and m.body.strip() == body.strip()]


# -- webhooks ----------------------------------------------------------------------------------------------


def test_a_signed_webhook_verifies_and_names_its_ticket(harness: HelpdeskHarness) -> None:
    ticket_id = one_question(harness)
    headers, body = harness.webhook(ticket_id)
    harness.adapter.verify_webhook(headers=as_received(headers), body=body)
    assert harness.adapter.parse_webhook(headers=as_received(headers), body=body).ticket_id == ticket_id


@pytest.mark.parametrize("how", ["unsigned", "forged", "stale"])
def test_unsigned_forged_and_stale_webhooks_are_refused(harness: HelpdeskHarness, how: str) -> None:
    if how == "stale" and not getattr(harness, "dates_deliveries", True):
        # Freshdesk's webhooks carry no time, and it resends failed ones up to a day later: a replay window is
        # impossible there; de-duplication and the ticket's own latest comment keep a replay from acting twice.
        pytest.skip(f"{harness.name} webhooks carry no time to judge staleness by")
    ticket_id = one_question(harness)
    headers, body = harness.webhook(ticket_id, how=how)
    with pytest.raises(WebhookAuthError):
        harness.adapter.verify_webhook(headers=as_received(headers), body=body)


def test_a_signature_does_not_vouch_for_another_body(harness: HelpdeskHarness) -> None:
    if not getattr(harness, "signs_bodies", True):
        # Freshdesk and Gorgias send a shared secret, not a signature: it vouches for the sender, never the body.
        pytest.skip(f"{harness.name} webhooks carry a shared secret, not a signature of the body")
    first, second = one_question(harness), one_question(harness)
    headers, _ = harness.webhook(first)
    _, other_body = harness.webhook(second)
    with pytest.raises(WebhookAuthError):
        harness.adapter.verify_webhook(headers=as_received(headers), body=other_body)


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe\x00", b'{"hello": "world"}'],
                         ids=["not-json", "not-utf8", "no-ticket-id"])
def test_a_signed_but_unusable_body_is_a_payload_error(harness: HelpdeskHarness, body: bytes) -> None:
    headers = as_received(harness.sign(body))
    harness.adapter.verify_webhook(headers=headers, body=body)  # genuinely signed: only the payload is wrong
    with pytest.raises(WebhookPayloadError):
        harness.adapter.parse_webhook(headers=headers, body=body)


# Signed bodies of the wrong shapes: nested nulls, a number or a string where an object goes, ids as floats or in
# other scripts' digits. The platform signed them, so only what is in them is wrong: a 400 at most, never a 500.
ODD_BODIES = [
    {"ticket": None}, {"ticket_id": 12.0}, {"ticket_id": [12]}, {"ticket_id": "\uff11\uff12"}, {"ticket": {"id": None}},
    {"conversation": {"id": 5, "_links": 5.5}}, {"payload": {"conversation": {"_links": "x"}}},
    {"conversation": {"_links": {"self": 7}}}, {"conversation": {"id": "cnv_caf\u00e9"}},
    {"id": 12, "_embedded": {"threads": 5}}, {"id": 12, "_embedded": None, "customerWaitingSince": 5},
    {"_links": {"self": {"href": "https://api.helpscout.net/v2/conversations/\u0661\u0662\u0663"}}},
    {"type": "zen:event-type:ticket.comment_added", "subject": None, "detail": []},
    {"freshdesk_webhook": {"ticket_id": None}},
]


@pytest.mark.parametrize("payload", ODD_BODIES, ids=[json.dumps(p, ensure_ascii=False)[:40] for p in ODD_BODIES])
def test_a_signed_body_of_odd_shapes_is_refused_or_names_an_ascii_id(harness: HelpdeskHarness, payload) -> None:
    body = json.dumps(payload).encode()
    headers = as_received(harness.sign(body))
    try:
        harness.adapter.verify_webhook(headers=headers, body=body)
        event = harness.adapter.parse_webhook(headers=headers, body=body)
    except (WebhookAuthError, WebhookPayloadError, WebhookChallenge):
        return
    assert event.ticket_id.isascii() and event.ticket_id.isprintable(), event.ticket_id


def test_the_same_delivery_twice_has_one_delivery_key_and_a_new_delivery_another(harness: HelpdeskHarness) -> None:
    ticket_id = one_question(harness)
    headers, body = harness.webhook(ticket_id)
    first = harness.adapter.parse_webhook(headers=as_received(headers), body=body)
    again = harness.adapter.parse_webhook(headers=as_received(dict(headers)), body=bytes(body))
    new_headers, new_body = harness.webhook(ticket_id)
    new = harness.adapter.parse_webhook(headers=as_received(new_headers), body=new_body)
    assert first.delivery_key == again.delivery_key
    assert new.ticket_id == first.ticket_id
    if getattr(harness, "identifies_deliveries", True):
        # Without a delivery id, two deliveries about an unchanged ticket are the same bytes: one key, and the
        # pipeline would treat them as one event anyway (it also dedupes on the ticket's latest comment).
        assert new.delivery_key != first.delivery_key


# -- reading -----------------------------------------------------------------------------------------------


def test_fetch_ticket_returns_the_conversation_in_order_with_authors_and_visibility(harness: HelpdeskHarness) -> None:
    conversation = [("customer", "I cannot log in to my account.", True),
                    ("bot", "Try resetting your password from the sign-in page.", True),
                    ("agent", "Customer is on the legacy plan, check SSO.", False),
                    ("customer", "Resetting did not help, it still fails.", True),
                    ("agent", "I am looking into it now.", True)]
    ticket_id = harness.add_customer_ticket("Cannot log in", conversation)
    ticket = harness.adapter.fetch_ticket(ticket_id)
    assert ticket.id == ticket_id
    assert ticket.subject == "Cannot log in"
    assert [(m.author, m.body, m.public) for m in ticket.messages] == conversation
    assert len({m.id for m in ticket.messages}) == len(conversation), "every message has its own id"


def test_a_thread_read_only_in_part_is_a_problem_never_the_whole_conversation(
        harness: HelpdeskHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    # More messages than a page holds, and an adapter that may read a single page of a listing: what it read is
    # the oldest or the newest part, and a decision on it answers the wrong message. It must say so (a problem:
    # the ticket escalates) rather than pass for the whole thread.
    conversation = [("customer", f"Message {n} about my order.", True) for n in range(110)]
    ticket_id = harness.add_customer_ticket("A long thread", conversation)
    whole = harness.adapter.fetch_ticket(ticket_id)
    assert [m.body for m in whole.messages] == [body for _, body, _ in conversation] and whole.problems == ()
    monkeypatch.setattr(sys.modules[type(harness.adapter).__module__], "MAX_PAGES", 1)
    part = harness.adapter.fetch_ticket(ticket_id)
    assert len(part.messages) < len(conversation)
    assert part.problems, "a thread cut short must not pass for the whole conversation"


def test_fetch_ticket_returns_the_requester_tags_priority_status_and_link(harness: HelpdeskHarness) -> None:
    ticket_id = one_question(harness, tags=["vip", "billing"], priority="high")
    ticket = harness.adapter.fetch_ticket(ticket_id)
    assert (ticket.requester_name, ticket.requester_email) == (harness.customer_name, harness.customer_email)
    assert sorted(ticket.tags) == ["billing", "vip"]
    assert ticket.priority == "high"
    assert ticket.status == harness.status(ticket_id)
    assert ticket.url == harness.adapter.ticket_link(ticket_id)
    assert ticket.url.startswith("https://") and ticket_id in ticket.url


def test_updated_since_lists_the_tickets_updated_after_the_time(harness: HelpdeskHarness) -> None:
    untouched = one_question(harness)
    created_later = one_question(harness)
    updated = one_question(harness)
    harness.adapter.add_note(updated, "Looked at it.")
    since = harness.updated_at(untouched) + 1
    listed = dict(harness.adapter.updated_since(since))
    assert created_later in listed and updated in listed
    assert untouched not in listed
    assert untouched in dict(harness.adapter.updated_since(since - 3600))


def test_a_new_update_gives_the_ticket_a_new_updated_at(harness: HelpdeskHarness) -> None:
    # Reconciliation dedupes on (ticket, updated_at): the same version twice is one event, a new one is another.
    ticket_id = one_question(harness)
    since = harness.updated_at(ticket_id) - 60
    before = dict(harness.adapter.updated_since(since))[ticket_id]
    assert dict(harness.adapter.updated_since(since))[ticket_id] == before
    harness.adapter.add_tags(ticket_id, ["seam_seen"])
    assert dict(harness.adapter.updated_since(since))[ticket_id] != before


# -- writing -----------------------------------------------------------------------------------------------


def test_reply_writes_one_public_reply_the_adapter_reads_back_as_the_bot(harness: HelpdeskHarness) -> None:
    ticket_id = one_question(harness)
    status = harness.status(ticket_id)
    harness.adapter.reply(ticket_id, ANSWER)
    assert harness.public_replies(ticket_id) == [ANSWER]
    assert harness.internal_notes(ticket_id) == []
    assert harness.status(ticket_id) == status, "a reply without a status leaves the status alone"
    latest = harness.adapter.fetch_ticket(ticket_id).messages[-1]
    assert (latest.author, latest.body, latest.public) == ("bot", ANSWER, True)


@pytest.mark.parametrize("which", ["solved_status", "pending_status"])
def test_reply_sets_the_status_when_asked(harness: HelpdeskHarness, which: str) -> None:
    ticket_id = one_question(harness)
    harness.adapter.reply(ticket_id, ANSWER, status=getattr(harness, which))
    assert harness.public_replies(ticket_id) == [ANSWER]
    assert harness.status(ticket_id) == getattr(harness, which)


def test_add_note_writes_a_private_note_the_customer_cannot_see(harness: HelpdeskHarness) -> None:
    ticket_id = one_question(harness)
    harness.adapter.add_note(ticket_id, "Rejected in Slack: wrong article.")
    assert harness.internal_notes(ticket_id) == ["Rejected in Slack: wrong article."]
    assert harness.public_replies(ticket_id) == []
    latest = harness.adapter.fetch_ticket(ticket_id).messages[-1]
    assert (latest.author, latest.body, latest.public) == ("bot", "Rejected in Slack: wrong article.", False)


@pytest.mark.parametrize("spelling", [str, str.upper, str.title], ids=["as-stored", "upper", "title"])
def test_find_agent_finds_an_agent_by_email_in_any_case(harness: HelpdeskHarness, spelling) -> None:
    agent_id = harness.add_agent("bea.agent@example.com", "Bea Agent")
    assert harness.adapter.find_agent(spelling("bea.agent@example.com")) == Agent(
        id=agent_id, name="Bea Agent", email="bea.agent@example.com")


@pytest.mark.parametrize("who", ["unknown", "customer"])
def test_find_agent_returns_none_for_an_unknown_email_or_an_end_user(harness: HelpdeskHarness, who: str) -> None:
    email = harness.customer_email if who == "customer" else "nobody@example.com"
    assert harness.adapter.find_agent(email) is None


def test_assign_sets_the_assignee(harness: HelpdeskHarness) -> None:
    ticket_id = one_question(harness)
    agent_id = harness.add_agent("cy.agent@example.com", "Cy Agent")
    harness.adapter.assign(ticket_id, agent_id)
    assert harness.assignee(ticket_id) == agent_id


def test_assign_nobody_clears_the_assignee(harness: HelpdeskHarness) -> None:
    ticket_id = one_question(harness)
    agent_id = harness.add_agent("di.agent@example.com", "Di Agent")
    harness.adapter.assign(ticket_id, agent_id)
    harness.adapter.assign(ticket_id, None)  # Unclaim in Slack: nobody owns the ticket
    assert harness.assignee(ticket_id) is None


def test_set_status_changes_the_status_and_writes_nothing(harness: HelpdeskHarness) -> None:
    ticket_id = one_question(harness)
    harness.adapter.set_status(ticket_id, harness.pending_status)
    assert harness.status(ticket_id) == harness.pending_status
    harness.adapter.set_status(ticket_id, harness.solved_status)
    assert harness.status(ticket_id) == harness.solved_status
    assert harness.public_replies(ticket_id) == [] and harness.internal_notes(ticket_id) == []


def test_add_tags_adds_to_the_tags_already_there(harness: HelpdeskHarness) -> None:
    ticket_id = one_question(harness, tags=["vip"])
    harness.adapter.add_tags(ticket_id, ["seam_escalated", "seam_draft"])
    assert sorted(harness.tags(ticket_id)) == ["seam_draft", "seam_escalated", "vip"]


# -- failures ----------------------------------------------------------------------------------------------


def test_a_read_answered_429_with_retry_after_is_retried_after_that_wait(harness: HelpdeskHarness) -> None:
    ticket_id = one_question(harness)
    harness.fail_next("read", 429, retry_after=1)
    started = time.monotonic()
    ticket = harness.adapter.fetch_ticket(ticket_id)
    assert time.monotonic() - started >= 0.9
    assert ticket.messages[0].body == QUESTION
    assert harness.attempts("read") == 2


def test_a_write_answered_429_with_retry_after_is_retried_and_lands_once(harness: HelpdeskHarness) -> None:
    ticket_id = one_question(harness)
    harness.fail_next("write", 429, retry_after=1)
    started = time.monotonic()
    harness.adapter.reply(ticket_id, ANSWER)
    assert time.monotonic() - started >= 0.9
    assert harness.public_replies(ticket_id) == [ANSWER]


@pytest.mark.parametrize("operation, status, retry_after",
                         [("read", 503, None), ("read", 429, 0.1), ("write", 500, 0.1), ("write", 429, 0.1)])
def test_a_call_that_fails_on_every_attempt_ends_in_helpdesk_error(harness: HelpdeskHarness, operation: str,
                                                                  status: int, retry_after: float | None) -> None:
    ticket_id = one_question(harness)
    harness.fail_next(operation, status, retry_after=retry_after, times=1000)
    started = time.monotonic()
    with pytest.raises(HelpdeskError) as error:
        if operation == "read":
            harness.adapter.fetch_ticket(ticket_id)
        else:
            harness.adapter.reply(ticket_id, ANSWER)
    assert error.value.status == status
    assert time.monotonic() - started < harness.retry_deadline + 10, "gave up within its deadline, not hung"
    assert 2 <= harness.attempts(operation) < 1000, "retried, but not forever"
    assert harness.public_replies(ticket_id) == []


@pytest.mark.parametrize("status", [502, 504])
def test_a_reply_answered_by_a_gateway_error_is_not_sent_again_but_a_read_is_retried(
        harness: HelpdeskHarness, status: int) -> None:
    # A gateway that gave up may have let the reply through: sent again, the customer gets it twice. The flows
    # look for it on the ticket before repeating it, as after a timeout.
    ticket_id = one_question(harness)
    harness.fail_next("write", status)
    with pytest.raises(HelpdeskError) as error:
        harness.adapter.reply(ticket_id, ANSWER)
    assert error.value.status == status and harness.attempts("write") == 1
    before = harness.attempts("read")
    harness.fail_next("read", status)
    assert harness.adapter.fetch_ticket(ticket_id).messages[0].body == QUESTION
    assert harness.attempts("read") == before + 2


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_write_answered_by_a_redirect_is_an_error_not_a_reply_sent(harness: HelpdeskHarness, status: int) -> None:
    # A redirect (an API URL on http:// that the helpdesk sends to https://, a renamed account) applied nothing:
    # taken for success, the reply would be recorded as sent while the customer never gets it.
    ticket_id = one_question(harness)
    harness.fail_next("write", status)
    with pytest.raises(HelpdeskError) as error:
        harness.adapter.reply(ticket_id, ANSWER)
    assert error.value.status == status
    assert harness.public_replies(ticket_id) == []


def test_a_ticket_that_does_not_exist_is_a_helpdesk_error_404_without_retrying(harness: HelpdeskHarness) -> None:
    with pytest.raises(HelpdeskError) as error:
        harness.adapter.fetch_ticket(harness.unknown_ticket_id())
    assert error.value.status == 404
    assert harness.attempts("read") == 1


@pytest.mark.parametrize("operation", ["read", "write"])
def test_a_4xx_is_a_helpdesk_error_with_that_status_without_retrying(harness: HelpdeskHarness,
                                                                     operation: str) -> None:
    ticket_id = one_question(harness)
    harness.fail_next(operation, 404)
    with pytest.raises(HelpdeskError) as error:
        if operation == "read":
            harness.adapter.fetch_ticket(ticket_id)
        else:
            harness.adapter.reply(ticket_id, ANSWER)
    assert error.value.status == 404
    assert harness.attempts(operation) == 1


# -- crash recovery ----------------------------------------------------------------------------------------


def test_a_reply_whose_answer_never_came_back_is_on_the_ticket_exactly_once(harness: HelpdeskHarness) -> None:
    # Seam records a reply as started before sending it; when the answer is lost (a timeout, a crash) it reads
    # the ticket before sending again. That only works if the adapter does not repeat the write blindly and
    # fetch_ticket then shows the reply that landed, once, as the bot's.
    ticket_id = one_question(harness)
    with harness.write_answers_lost(), pytest.raises(HelpdeskError):
        harness.adapter.reply(ticket_id, ANSWER)
    assert [(m.author, m.public) for m in bot_replies(harness, ticket_id, ANSWER)] == [("bot", True)]
    assert harness.public_replies(ticket_id) == [ANSWER]
