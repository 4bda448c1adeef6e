"""A reply whose status goes in a second call (Freshdesk's reply endpoint takes none, Gorgias sets it on the
ticket, Front's "waiting" ticket status is a PATCH): when the reply went out and only the status change failed, the
error must not read as a refused reply. Seam forgets a write the helpdesk refused (a 4xx) so that Retry sends it at
once (bot.flows.actions `_refused`): a reply already with the customer would go out twice."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from bot.errors import transient
from bot.flows.actions import _refused
from bot.helpdesk.base import HelpdeskError, explained
from bot.helpdesk.freshdesk.adapter import FreshdeskAdapter
from bot.helpdesk.front.adapter import FrontAdapter
from bot.helpdesk.gorgias.adapter import GorgiasAdapter
from tests.support.fakes import FakeFreshdesk, FakeFront, FakeGorgias

ANSWER = "Your refund is on its way."
REFUSAL = {"description": "Validation failed",
           "errors": [{"field": "custom_field", "code": "missing_field",
                       "message": "It should not be blank as mandatory for resolving"}]}


@contextmanager
def freshdesk() -> Iterator[tuple]:
    with FakeFreshdesk() as fake, httpx.Client(base_url=fake.url, auth=fake.auth, timeout=2) as client:
        fake.add_contact(id=1001, name="Ana", email="ana@example.com")
        fake.add_ticket(id=20, subject="Refund", requester_id=1001, description="Where is my refund?")
        adapter = FreshdeskAdapter(client, webhook_secret="s", agent_url="https://acme.freshdesk.com",
                                   retry_deadline=2.0)
        yield (adapter, "20", "update_ticket", fake,
               lambda: [c["body_text"] for c in fake.conversations(20) if not c["private"] and not c["incoming"]])


@contextmanager
def gorgias() -> Iterator[tuple]:
    with FakeGorgias() as fake, httpx.Client(base_url=fake.url, auth=fake.auth, timeout=2) as client:
        fake.add_customer(id=7001, name="Ana", email="ana@example.com")
        fake.add_ticket(id=42, subject="Refund", customer_id=7001,
                        messages=[{"from_agent": False, "body_text": "Where is my refund?"}])
        adapter = GorgiasAdapter(client, email=fake.email, webhook_secret="s", agent_url="https://acme.gorgias.com",
                                 retry_deadline=2.0)
        yield (adapter, "42", "update_ticket", fake,
               lambda: [m["body_text"] for m in fake.messages(42) if m["public"] and m["from_agent"]])


@contextmanager
def front() -> Iterator[tuple]:
    with FakeFront(ticketing=True) as fake, httpx.Client(base_url=fake.url, headers=fake.headers, timeout=2) as client:
        cid = fake.add_conversation(subject="Refund", recipient_name="Ana", recipient_handle="ana@example.com",
                                    messages=[{"body": "Where is my refund?"}])
        adapter = FrontAdapter(client, webhook_secret="s", retry_deadline=2.0)
        yield (adapter, cid, "update_conversation", fake,
               lambda: [m["text"] for m in fake.messages(cid) if not m["is_inbound"] and not m["draft_mode"]])


# Front's "solved" archives in the reply's own request; its "pending" is the ticketing status, set after it.
CASES = [(freshdesk, "solved"), (gorgias, "solved"), (front, "pending")]


@pytest.mark.parametrize("desk, status", CASES, ids=["freshdesk", "gorgias", "front"])
def test_a_refused_status_change_after_the_reply_went_out_is_no_refusal_of_the_reply(desk, status) -> None:
    with desk() as (adapter, ticket_id, status_call, fake, replies):
        fake.fail(status_call, status=400, body=REFUSAL)
        with pytest.raises(HelpdeskError) as caught:
            adapter.reply(ticket_id, ANSWER, status=status)
        assert replies() == [ANSWER]
        assert not _refused(caught.value), "a refusal is forgotten and Retry would send the reply a second time"
        assert "reply was sent" in str(caught.value)
        assert not transient(caught.value), "the status change was refused for good"
        assert "mandatory for resolving" in explained(caught.value), "the helpdesk's words reach the agent"


@pytest.mark.parametrize("desk, status", CASES, ids=["freshdesk", "gorgias", "front"])
def test_a_status_change_that_failed_on_an_outage_stays_worth_retrying(desk, status) -> None:
    with desk() as (adapter, ticket_id, status_call, fake, replies):
        fake.fail(status_call, status=503, times=50)
        with pytest.raises(HelpdeskError) as caught:
            adapter.reply(ticket_id, ANSWER, status=status)
        assert replies() == [ANSWER]
        assert not _refused(caught.value) and transient(caught.value)
