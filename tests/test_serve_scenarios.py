"""End to end through `python -m bot serve`: signed webhooks in, Zendesk read over HTTP, Slack posts out.

One server process per module (it takes a second to start); each test uses its own ticket ids.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.fakes import FakeSlack, FakeZendesk
from tests.support.posts import posts_for, text_objects
from tests.support.server import SeamServer, seam_env
from tests.support.signing import slack_headers, zendesk_headers
from tests.support.waiting import wait_until

_ids = itertools.count(5000)


@pytest.fixture(scope="module")
def slack():
    with FakeSlack() as server:
        yield server


@pytest.fixture(scope="module")
def zendesk():
    with FakeZendesk() as server:
        server.add_user(id=CUSTOMER_ID, name="Ana Customer", email="ana@example.com")
        yield server


@pytest.fixture(scope="module")
def seam(slack, zendesk, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    server = SeamServer(seam_env(slack=slack, zendesk=zendesk, tmp=tmp), tmp / "serve.log").start()
    yield server
    assert server.stop() == 0, server.log()


def new_ticket(zendesk: FakeZendesk, *bodies: str, subject: str = "Help please") -> int:
    ticket_id = next(_ids)
    zendesk.add_ticket(id=ticket_id, subject=subject, requester_id=CUSTOMER_ID,
                       comments=[{"author_id": CUSTOMER_ID, "body": body} for body in bodies])
    return ticket_id


def button_texts(message: dict) -> list[str]:
    return [element["text"]["text"] for block in message["blocks"] if block["type"] == "actions"
            for element in block["elements"]]


def test_customer_asking_for_a_person_gets_one_escalation_with_buttons_and_threaded_transcript(seam, slack, zendesk):
    ticket_id = new_ticket(zendesk, "My order never came.", "This bot is useless, I want to talk to a real person!",
                           subject="Where is my order")
    response = seam.post_webhook({"ticket_id": str(ticket_id)})
    assert response.status_code == 202, response.text

    [post] = wait_until(lambda: posts_for(slack, ticket_id), what="the escalation post")
    # The AI's guess is below the draft threshold: a starting point for Edit, never sent by one click.
    assert button_texts(post) == ["Claim", "Approve (edit first)", "Edit", "Reject", "Assign to…"]
    rendered = json.dumps(post["blocks"])
    assert "Customer asked for a human" in rendered
    assert f"#{ticket_id} Where is my order" in rendered
    assert f"https://{zendesk.subdomain}.zendesk.com/agent/tickets/{ticket_id}" in rendered
    # The transcript's parts arrive one reply at a time: wait for the last message to be there too.
    transcript = wait_until(lambda: (r := slack.replies(CHANNEL, post["ts"]))
                            and "I want to talk to a real person" in json.dumps(r) and r, what="the transcript")
    text = json.dumps(transcript)
    assert "My order never came." in text and "I want to talk to a real person" in text
    # Nothing was answered to the customer.
    assert len(zendesk.comments(ticket_id)) == 2


def test_redelivered_webhook_is_acknowledged_and_processed_once(seam, slack, zendesk):
    ticket_id = new_ticket(zendesk, "Can I speak to a human agent please")
    body = json.dumps({"ticket_id": ticket_id}).encode()
    headers = zendesk_headers(body)
    assert seam.post_webhook(body, headers=headers).status_code == 202
    wait_until(lambda: posts_for(slack, ticket_id), what="the first post")
    # The same bytes and signature again, then the same body re-signed later (a new delivery of the same turn).
    again = seam.post_webhook(body, headers=headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    resigned = zendesk_headers(body, timestamp=str(int(time.time()) - 5))
    assert seam.post_webhook(body, headers=resigned).status_code == 202
    time.sleep(1.0)
    assert len(posts_for(slack, ticket_id)) == 1


def test_a_webhook_subscribed_to_zendesk_ticket_events_escalates_once(seam, slack, zendesk):
    ticket_id = new_ticket(zendesk, "Can I talk to a human agent please, this is urgent")
    event = {"type": "zen:event-type:ticket.created", "account_id": 88888888, "id": f"01HNXEVENT{ticket_id}",
             "time": "2026-12-04T17:18:10Z", "zendesk_event_version": "2022-11-06",
             "subject": f"zen:ticket:{ticket_id}", "detail": {"id": str(ticket_id), "status": "NEW"}, "event": {}}
    body = json.dumps(event).encode()
    assert seam.post_webhook(body).status_code == 202
    [post] = wait_until(lambda: posts_for(slack, ticket_id), what="the escalation post")
    assert "Customer asked for a human" in json.dumps(post["blocks"])
    # Zendesk retrying the event signs it anew: the event's id makes it the same delivery.
    again = seam.post_webhook(body, headers=zendesk_headers(body, timestamp=str(int(time.time()) - 3)))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    # An event about something other than a ticket says what to change.
    user_event = json.dumps({**event, "type": "zen:event-type:user.active_changed", "subject": "zen:user:5"}).encode()
    refused = seam.post_webhook(user_event)
    assert refused.status_code == 400 and "not about a ticket" in refused.json()["error"]
    time.sleep(0.5)
    assert len(posts_for(slack, ticket_id)) == 1


def test_a_comment_added_event_for_seams_own_reply_changes_nothing(seam, slack, zendesk):
    ticket_id = new_ticket(zendesk, "I forgot my password. How do I reset my password?", subject="Reset password")

    def event(kind: str, number: int) -> dict:
        return {"type": f"zen:event-type:ticket.{kind}", "id": f"01HNX{kind}{ticket_id}-{number}",
                "subject": f"zen:ticket:{ticket_id}", "detail": {"id": str(ticket_id)}, "event": {}}

    def comment_reads() -> int:
        return sum(f"/tickets/{ticket_id}/comments" in call.path for call in zendesk.calls_to("list_comments"))

    assert seam.post_webhook(event("created", 1)).status_code == 202
    wait_until(lambda: len(zendesk.comments(ticket_id)) == 2, what="Seam's public reply")
    before = comment_reads()
    # An event subscription cannot leave out Seam's own comment: its event arrives like a customer's.
    assert seam.post_webhook(event("comment_added", 2)).status_code == 202
    wait_until(lambda: comment_reads() > before, what="the event's ticket read")
    time.sleep(0.5)
    assert len(zendesk.comments(ticket_id)) == 2
    assert posts_for(slack, ticket_id) == []


def test_forged_unsigned_and_stale_webhooks_get_401_and_change_nothing(seam, slack, zendesk):
    ticket_id = new_ticket(zendesk, "I want to talk to a person")
    body = json.dumps({"ticket_id": ticket_id}).encode()
    before = len(zendesk.calls)
    forged = zendesk_headers(body, secret="not-the-secret")
    unsigned = {"Content-Type": "application/json"}
    stale = zendesk_headers(body, timestamp="2021-03-25T05:09:27Z")
    tampered = zendesk_headers(body)
    for headers, payload in ((forged, body), (unsigned, body), (stale, body), (tampered, body + b" ")):
        response = seam.post_webhook(payload, headers=headers)
        assert response.status_code == 401
        assert "signature" in response.json()["error"]
    time.sleep(0.5)
    assert len(zendesk.calls) == before
    assert posts_for(slack, ticket_id) == []


@pytest.mark.parametrize("body, message", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe\x00", "UTF-8"),
    (b"[1, 2]", "JSON object"),
    (b'{"ticket_id": "{{ticket.id}}"}', "positive integer"),
    (b'{"subject": "no id"}', "no ticket id"),
    (b'{"ticket": {"id": true}}', "no ticket id"),
])
def test_signed_but_malformed_webhooks_get_400_with_a_json_error(seam, body, message):
    response = seam.post_webhook(body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_oversized_webhook_gets_413(seam):
    body = json.dumps({"ticket_id": 1, "padding": "x" * (1024 * 1024)}).encode()
    response = seam.post_webhook(body)
    assert response.status_code == 413


def test_confident_ticket_gets_a_public_reply_and_no_slack_post(seam, slack, zendesk):
    ticket_id = new_ticket(zendesk, "I forgot my password. How do I reset my password?", subject="Reset password")
    assert seam.post_webhook({"ticket": {"id": ticket_id}}).status_code == 202
    reply = wait_until(lambda: [c for c in zendesk.comments(ticket_id) if c["author_id"] != CUSTOMER_ID],
                       what="the public reply")[0]
    assert reply["public"] is True
    assert "Forgot password" in reply["body"]
    assert zendesk.ticket(ticket_id)["status"] == "solved"
    time.sleep(0.5)
    assert posts_for(slack, ticket_id) == []
    # Our own reply fires the Zendesk trigger again: Seam must not answer itself.
    assert seam.post_webhook({"ticket_id": ticket_id}).status_code == 202
    time.sleep(1.0)
    assert len([c for c in zendesk.comments(ticket_id) if c["author_id"] != CUSTOMER_ID]) == 1


def test_a_10000_character_message_still_posts_within_slack_limits(seam, slack, zendesk):
    long_body = ("Please read all of this. " * 400)[:10_000] + " I need a human to look at this."
    ticket_id = new_ticket(zendesk, long_body, subject="Long story")
    assert seam.post_webhook({"ticket_id": ticket_id}).status_code == 202
    [post] = wait_until(lambda: posts_for(slack, ticket_id), what="the escalation post")
    replies = wait_until(lambda: len(slack.replies(CHANNEL, post["ts"])) >= 4 and slack.replies(CHANNEL, post["ts"]),
                         what="the split transcript")
    assert all(len(json.dumps(r["blocks"])) < 12_000 for r in replies)
    shown = "".join(b["text"]["text"] for r in replies for b in r["blocks"] if b["type"] == "section")
    assert shown.replace(" ", "") == long_body.replace(" ", "")
    failed = [c for c in slack.calls_to("chat.postMessage") if not c.ok]
    assert failed == []


def test_ticket_text_cannot_inject_mentions_into_slack(seam, slack, zendesk):
    ticket_id = new_ticket(zendesk, "<!channel> *urgent* <https://evil.example|click> talk to a person now",
                           subject="<!here> pwned")
    assert seam.post_webhook({"ticket_id": ticket_id}).status_code == 202
    [post] = wait_until(lambda: posts_for(slack, ticket_id), what="the escalation post")
    messages = [post, *slack.replies(CHANNEL, post["ts"])]
    # Slack parses mentions and links in mrkdwn and in a message's `text`; plain_text is shown literally.
    parsed = [m["text"] for m in messages] + [t["text"] for m in messages for t in text_objects(m.get("blocks"))
                                              if t["type"] == "mrkdwn"]
    literal = [t["text"] for m in messages for t in text_objects(m.get("blocks")) if t["type"] == "plain_text"]
    for raw in ("<!channel>", "<!here>", "<https://evil.example"):
        assert not any(raw in text for text in parsed)
    assert any("<!channel>" in text for text in literal), "the customer's words are still shown, literally"


def test_healthz_reports_the_queue(seam):
    response = httpx.get(seam.url + "/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and "pending" in body["queue"]


def test_slack_requests_need_a_valid_signature(seam):
    body = b"token=x&command=%2Fescalation&text=help&user_id=U1&channel_id=C1&response_url=http%3A%2F%2Fx"
    unsigned = httpx.post(seam.url + "/slack/events", content=body,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert unsigned.status_code == 401
    challenge = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "t"}).encode()
    signed = httpx.post(seam.url + "/slack/events", content=challenge,
                        headers=slack_headers(challenge, content_type="application/json"))
    assert signed.status_code == 200 and "abc123" in signed.text
    forged = httpx.post(seam.url + "/slack/events", content=challenge,
                        headers=slack_headers(challenge, secret="wrong", content_type="application/json"))
    assert forged.status_code == 401


def test_zendesk_outage_is_retried_and_the_ticket_still_escalates_once(seam, slack, zendesk):
    ticket_id = new_ticket(zendesk, "Operator please, I need a human")
    zendesk.fail("get_ticket", status=503, times=2, headers={"Retry-After": "0"})
    assert seam.post_webhook({"ticket_id": ticket_id}).status_code == 202
    wait_until(lambda: posts_for(slack, ticket_id), timeout=20, what="the post after the outage")
    time.sleep(0.5)
    assert len(posts_for(slack, ticket_id)) == 1


def test_serve_refuses_to_start_without_a_required_variable(slack, zendesk, tmp_path: Path):
    env = seam_env(slack=slack, zendesk=zendesk, tmp=tmp_path)
    del env["ZENDESK_WEBHOOK_SECRET"]
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "bot", "serve"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "ZENDESK_WEBHOOK_SECRET" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
