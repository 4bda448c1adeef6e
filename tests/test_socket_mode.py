"""Socket Mode end to end, the firewall path (issue 14): `python -m bot serve` with SLACK_APP_TOKEN opens a
connection through `apps.connections.open` on the fake Web API, connects to a fake Socket Mode server on loopback
(a real WebSocket), and answers Slack's envelopes there — acknowledging each by its envelope id, and acting on
them as it does on signed HTTP requests: a Claim click claims the escalation. The HTTP door stays shut."""

from __future__ import annotations

import json

import pytest

from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.fakes import FakeSocketMode
from tests.support.payloads import block_action
from tests.support.posts import posts_for
from tests.support.server import SeamServer, seam_env
from tests.support.signing import signed_form
from tests.support.waiting import wait_until

APP_TOKEN = "xapp-1-A1-socket-mode-test"
AGENT = "UAGENT"


@pytest.fixture
def socket_mode(fake_slack):
    with FakeSocketMode() as server:
        fake_slack.attach_socket_mode(server.url, app_token=APP_TOKEN)
        yield server


def test_a_claim_over_socket_mode_is_acknowledged_by_envelope_id_and_claims_the_escalation(
        fake_slack, fake_zendesk, socket_mode, tmp_path):
    fake_slack.add_user(AGENT, email="agent@acme.example", name="agent")
    fake_zendesk.add_user(id=801, name="Agent", email="agent@acme.example", role="agent")
    fake_zendesk.add_ticket(id=4242, subject="Help", requester_id=CUSTOMER_ID,
                            comments=[{"author_id": CUSTOMER_ID, "body": "Please let me talk to a person."}])
    env = seam_env(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path, SLACK_APP_TOKEN=APP_TOKEN)
    del env["SLACK_SIGNING_SECRET"]  # not needed over the socket
    server = SeamServer(env, tmp_path / "serve.log").start()
    try:
        socket_mode.wait_connected()
        [opened] = fake_slack.wait_for("apps.connections.open")
        assert opened.headers.get("authorization") == f"Bearer {APP_TOKEN}", "the app-level token opens it"
        assert server.post_webhook({"ticket_id": 4242}).status_code == 202
        [post] = wait_until(lambda: posts_for(fake_slack, 4242), what="the escalation")
        escalation_id = str(post["metadata"]["event_payload"]["escalation_id"])

        # Over HTTP the same click is refused: in Socket Mode nothing unsigned may come in that way.
        body, headers = signed_form(block_action(user=AGENT, action_id="seam_claim", value=escalation_id,
                                                 message_ts=post["ts"]))
        assert server.http.post("/slack/events", content=body, headers=headers).status_code == 404

        envelope_id = socket_mode.send_interactive(block_action(user=AGENT, action_id="seam_claim",
                                                                value=escalation_id, message_ts=post["ts"]))
        ack = socket_mode.wait_for_ack(envelope_id)
        assert set(ack) <= {"envelope_id", "payload"}
        updated = wait_until(lambda: next((m for m in fake_slack.messages(CHANNEL) if m["ts"] == post["ts"]
                                           and f"<@{AGENT}>" in json.dumps(m["blocks"])), None),
                             what="the card showing its owner")
        assert "Claim" not in [e["text"]["text"] for b in updated["blocks"] if b["type"] == "actions"
                               for e in b["elements"]]
        wait_until(lambda: fake_zendesk.ticket(4242)["assignee_id"] == 801, what="the ticket assigned, as over HTTP")
        assert len(posts_for(fake_slack, 4242)) == 1
    finally:
        assert server.stop() == 0, server.log()
    assert "Slack traffic over Socket Mode" in server.log()
