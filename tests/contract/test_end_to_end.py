"""The whole loop through `python -m bot serve`, once per helpdesk: the platform's own webhook → one Slack post →
Claim (assigned on the platform) → Approve (a public reply written through its API); and Reject → an internal
note, nothing public. The Slack side is the same for every helpdesk; only the harness knows the platform."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.constants import CHANNEL
from tests.support.fakes import FakeSlack
from tests.support.helpdesks import HARNESSES, HelpdeskHarness
from tests.support.payloads import block_action, reject_values, view_submission
from tests.support.posts import posts_for
from tests.support.server import SeamServer, seam_env, unpaced_config
from tests.support.signing import signed_form
from tests.support.waiting import wait_until

AGENT = "UAGENTE2E"
AGENT_EMAIL = "e2e.agent@acme.example"


@pytest.fixture(params=sorted(HARNESSES))
def loop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[HelpdeskHarness, FakeSlack, SeamServer]]:
    harness = HARNESSES[request.param]()
    with FakeSlack() as slack:
        slack.add_user(AGENT, email=AGENT_EMAIL, name="e2e agent")
        env = seam_env(slack=slack, tmp=tmp_path, helpdesk_env=harness.serve_env(),
                       SEAM_CONFIG=unpaced_config(tmp_path))
        server = SeamServer(env, tmp_path / "serve.log").start()
        try:
            yield harness, slack, server
        finally:
            assert server.stop() == 0, server.log()
            harness.close()


def deliver(server: SeamServer, harness: HelpdeskHarness, ticket_id: str) -> int:
    headers, body = harness.webhook(ticket_id)
    return server.http.post(f"/webhooks/{harness.name}", content=body, headers=headers).status_code


def escalation_of(slack: FakeSlack, ticket_id: str) -> tuple[str, str]:
    [post] = wait_until(lambda: posts_for(slack, ticket_id), what="the escalation post")
    return str(post["metadata"]["event_payload"]["escalation_id"]), post["ts"]


def click(server: SeamServer, action: str, escalation: str, ts: str) -> None:
    body, headers = signed_form(block_action(user=AGENT, action_id=f"seam_{action}", value=escalation,
                                             message_ts=ts))
    assert server.http.post("/slack/events", content=body, headers=headers).status_code == 200


def test_webhook_to_slack_to_claim_and_approve_writes_back_through_the_platform(loop):
    harness, slack, server = loop
    agent_id = harness.add_agent(AGENT_EMAIL, "E2E Agent")
    # Asks for a person (so it is escalated) about something the knowledge answers (so there is a draft).
    ticket_id = harness.add_customer_ticket(
        "Password", [("customer", "I forgot my password and need to reset it. Can I talk to a person?", True)])
    assert deliver(server, harness, ticket_id) == 202
    escalation, ts = escalation_of(slack, ticket_id)
    wait_until(lambda: slack.replies(CHANNEL, ts), what="the conversation in the thread")

    click(server, "claim", escalation, ts)
    wait_until(lambda: harness.assignee(ticket_id) == agent_id, what="the ticket assigned to the agent")
    click(server, "approve", escalation, ts)
    [reply] = wait_until(lambda: harness.public_replies(ticket_id), what="the approved reply")
    assert "reset" in reply.lower()
    assert harness.internal_notes(ticket_id) == []
    # A redelivery of an event already handled is acknowledged and posts nothing new.
    assert deliver(server, harness, ticket_id) in (200, 202)
    assert len(posts_for(slack, ticket_id)) == 1


def test_reject_writes_an_internal_note_and_nothing_public(loop):
    harness, slack, server = loop
    harness.add_agent(AGENT_EMAIL, "E2E Agent")
    ticket_id = harness.add_customer_ticket(
        "Gift card", [("customer", "How do gift cards work? I would like to talk to someone please.", True)])
    assert deliver(server, harness, ticket_id) == 202
    escalation, ts = escalation_of(slack, ticket_id)
    # The form carries the card it was opened from, as Seam's Reject form does.
    metadata = {"escalation_id": int(escalation), "channel": CHANNEL, "ts": ts}
    body, headers = signed_form(view_submission(
        user=AGENT, callback_id="seam_reject_submit", private_metadata=json.dumps(metadata),
        values=reject_values("wrong_information", "The customer has a corporate card; see the account notes.")))
    assert server.http.post("/slack/events", content=body, headers=headers).status_code == 200
    [note] = wait_until(lambda: harness.internal_notes(ticket_id), what="the internal note")
    assert "corporate card" in note and "Wrong information" in note
    assert harness.public_replies(ticket_id) == []
