"""A helpdesk that answers 429 with a Retry-After longer than a call may wait (Zendesk's rate limit: "Retry-After:
60") is asked again no sooner than it said: the call gives up at once instead of asking again inside the window
(which answers 429 again and overruns the call's deadline), and the job that made it is retried once the wait is
over, not at the queue's first backoff of a few seconds. Each test failed before the fix."""

from __future__ import annotations

import time

from bot.jobs.worker import Worker
from bot.text import parse_time, utcnow
from tests.support.constants import CUSTOMER_ID


def test_a_long_retry_after_ends_the_call_at_once_and_the_job_waits_it_out(pipeline, fake_zendesk):
    fake_zendesk.add_ticket(id=12, subject="Password", requester_id=CUSTOMER_ID,
                            comments=[{"author_id": CUSTOMER_ID, "body": "How do I reset my password?"}])
    fake_zendesk.fail("get_ticket", status=429, headers={"Retry-After": "90"}, times=5)
    event_id, _ = pipeline.store.record_event(helpdesk="zendesk", dedupe_key="k12", ticket_id="12", body="{}")
    started = time.monotonic()
    Worker(store=pipeline.store, handlers={"ticket": pipeline.process}).run_once()
    took = time.monotonic() - started

    assert len(fake_zendesk.calls_to("get_ticket")) == 1, "asked again inside the window it was told to wait"
    assert took < 10, f"the call waited {took:.0f} s inside a window it could not outlast"
    event = pipeline.store.event(event_id)
    assert event.state == "pending"
    wait = (parse_time(event.next_attempt_at) - utcnow()).total_seconds()
    assert 85 <= wait <= 95, f"retried in {wait:.0f} s, not when the helpdesk said"


def test_a_short_retry_after_is_still_waited_within_the_call(pipeline, fake_zendesk):
    fake_zendesk.add_ticket(id=13, subject="Password", requester_id=CUSTOMER_ID,
                            comments=[{"author_id": CUSTOMER_ID, "body": "How do I reset my password?"}])
    fake_zendesk.fail("get_ticket", status=429, headers={"Retry-After": "1"}, times=1)
    event_id, _ = pipeline.store.record_event(helpdesk="zendesk", dedupe_key="k13", ticket_id="13", body="{}")
    Worker(store=pipeline.store, handlers={"ticket": pipeline.process}).run_once()
    assert len(fake_zendesk.calls_to("get_ticket")) >= 2
    assert pipeline.store.event(event_id).state == "done"
