"""Two events for one ticket in the queue at once (a customer who writes twice in quick succession, a webhook and
reconciliation naming the same ticket): the queue hands a ticket's events to one worker at a time, so the second
is decided knowing what the first did — a follow-up of its escalation, not a second card or an automatic answer
beside a person's.

The core runs in-process against the loopback fakes (tests.support.services); the engine is held mid-decision by
a gate, so the race is the same on every run.
"""

from __future__ import annotations

import threading

import httpx
import pytest

from bot.engine.base import Assessment, Engine
from bot.models import Ticket
from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.posts import posts_for
from tests.support.services import build_services, drain
from tests.support.waiting import wait_until

TICKET = 94_001


class HeldEngine:
    """An engine whose first assessment waits until the test lets it go: a worker held in the middle of a ticket."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.entered = threading.Event()
        self.release = threading.Event()
        self._first = True
        self._lock = threading.Lock()

    def assess(self, ticket: Ticket) -> Assessment:
        with self._lock:
            first, self._first = self._first, False
        if first:
            self.entered.set()
            assert self.release.wait(10), "the test never let the first assessment go"
        return self._engine.assess(ticket)


@pytest.fixture
def services(fake_slack, fake_zendesk, tmp_path):
    return build_services(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path)


def record(services, key: str) -> int:
    event_id, new = services.store.record_event(helpdesk="zendesk", dedupe_key=f"t{TICKET}:{key}",
                                                ticket_id=str(TICKET), body="{}")
    assert new
    return event_id


def test_a_second_message_while_the_first_is_being_decided_joins_its_escalation(services, fake_slack, fake_zendesk):
    fake_zendesk.add_ticket(id=TICKET, subject="Parcel", requester_id=CUSTOMER_ID, comments=[
        {"author_id": CUSTOMER_ID, "body": "My parcel never came. I want to talk to a person."}])
    held = HeldEngine(services.pipeline.engine)
    services.pipeline.engine = held
    first = record(services, "first")
    worker = threading.Thread(target=services.runner.worker.run_once)
    worker.start()
    assert held.entered.wait(10), "the first event reached the engine"

    # The customer writes again while the first message is being decided; a second worker is free.
    httpx.put(f"{fake_zendesk.url}/api/v2/tickets/{TICKET}.json", auth=fake_zendesk.auth, json={
        "ticket": {"comment": {"author_id": CUSTOMER_ID, "body": "It was order 55123. Please hurry.",
                               "public": True}}}).raise_for_status()
    second = record(services, "second")
    services.runner.worker.run_once()
    held.release.set()
    worker.join(10)
    drain(services)

    assert services.store.event(first).state == "done"
    assert services.store.event(second).state == "done", services.store.event(second).last_error
    assert len(posts_for(fake_slack, TICKET)) == 1, "one card for the ticket, not one per message"
    [post] = posts_for(fake_slack, TICKET)
    wait_until(lambda: any("55123" in r["text"] for r in fake_slack.replies(CHANNEL, post["ts"])),
               what="the second message quoted in the card's thread")
