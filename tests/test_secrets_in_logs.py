"""No secret and no card number in `serve`'s log, even at DEBUG and on the error paths that log the most.

The real `python -m bot serve` runs with realistic-looking secrets, then gets: a forged webhook, a malformed one,
ticket escalations, a Zendesk 500 storm, a Slack 429, a ticket carrying a card number and an email address, and
signed Slack traffic (a click, a slash command). Its whole captured log is then searched.
"""

from __future__ import annotations

import itertools
import json
import time

from tests.support.constants import CUSTOMER_ID
from tests.support.fakes import FakeSlack, FakeZendesk
from tests.support.payloads import block_action
from tests.support.posts import posts_for
from tests.support.server import SeamServer, seam_env
from tests.support.signing import signed_form, slack_headers, zendesk_headers
from tests.support.waiting import wait_until

SLACK_BOT_TOKEN = "xoxb-7429103856214-7438120956328-Qm4TzR8vKp2WnX6aYc0LdE3f"
SLACK_SIGNING_SECRET = "8f3c1a9e5b7d4f2a6c0e9b1d3a5f7c2e"
ZENDESK_API_TOKEN = "Zq8RkT2mVx5NwB7pLc3HyD9fJs6GaE1uKo4Ii0Ft"
ZENDESK_WEBHOOK_SECRET = "dGhpc2lzYXNlY3JldHdlYmhvb2trZXkxMjM0NTY3OA=="
SECRETS = {"SLACK_BOT_TOKEN": SLACK_BOT_TOKEN, "SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
           "ZENDESK_API_TOKEN": ZENDESK_API_TOKEN, "ZENDESK_WEBHOOK_SECRET": ZENDESK_WEBHOOK_SECRET}
CARD = "4111 1111 1111 1111"
CARD_FORMS = (CARD, CARD.replace(" ", ""), "4111-1111-1111-1111")
EMAIL = "jane.doe.private@example.org"
AGENT = "UAGENT1"

_ids = itertools.count(9100)


def test_no_secret_or_card_number_reaches_the_log(tmp_path):
    assert len(SLACK_SIGNING_SECRET) == 32 and len(ZENDESK_API_TOKEN) == 40
    with FakeSlack(token=SLACK_BOT_TOKEN) as slack, FakeZendesk(token=ZENDESK_API_TOKEN) as zendesk:
        zendesk.add_user(id=CUSTOMER_ID, name="Ana Customer", email="ana@example.com")
        slack.add_user(AGENT, email="agent1@acme.example", name="agent1")
        zendesk.add_user(id=801, name="agent1", email="agent1@acme.example", role="agent")
        env = seam_env(slack=slack, zendesk=zendesk, tmp=tmp_path, LOG_LEVEL="DEBUG",
                       SLACK_SIGNING_SECRET=SLACK_SIGNING_SECRET, ZENDESK_WEBHOOK_SECRET=ZENDESK_WEBHOOK_SECRET)
        assert env["SLACK_BOT_TOKEN"] == SLACK_BOT_TOKEN and env["ZENDESK_API_TOKEN"] == ZENDESK_API_TOKEN
        server = SeamServer(env, tmp_path / "serve.log").start()
        try:
            def webhook(ticket_id: int, **kwargs):
                body = json.dumps({"ticket_id": ticket_id}).encode()
                return server.post_webhook(body, headers=zendesk_headers(body, secret=ZENDESK_WEBHOOK_SECRET,
                                                                         **kwargs))

            def ticket(*bodies: str, subject: str = "Help") -> int:
                ticket_id = next(_ids)
                zendesk.add_ticket(id=ticket_id, subject=subject, requester_id=CUSTOMER_ID,
                                   comments=[{"author_id": CUSTOMER_ID, "body": b} for b in bodies])
                return ticket_id

            # A forged webhook (wrong secret), a stale one, and malformed signed ones.
            forged_body = json.dumps({"ticket_id": 1}).encode()
            assert server.post_webhook(forged_body, headers=zendesk_headers(forged_body)).status_code == 401
            assert webhook(1, timestamp="2021-03-25T05:09:27Z").status_code == 401
            for bad in (b"{not json", b'{"ticket_id": "{{ticket.id}}"}', b"\xff\xfe"):
                response = server.post_webhook(bad, headers=zendesk_headers(bad, secret=ZENDESK_WEBHOOK_SECRET))
                assert response.status_code == 400

            # A plain escalation.
            plain = ticket("Where is my order? I want to talk to a person.", subject="Late order")
            assert webhook(plain).status_code == 202
            [post] = wait_until(lambda: posts_for(slack, plain), timeout=20, what="the escalation")

            # A card number and an email in the customer's words.
            card = ticket(f"My card {CARD} was charged twice, write to me at {EMAIL}. I want a human.",
                          subject=f"Charge on {CARD}")
            assert webhook(card).status_code == 202
            wait_until(lambda: posts_for(slack, card), timeout=20, what="the card ticket's escalation")

            # A Zendesk 500 storm (retried, logged) and a Slack 429 on the post.
            storm = ticket("Please get me a real person.")
            zendesk.fail("get_ticket", status=500, times=4, headers={"Retry-After": "0"})
            assert webhook(storm).status_code == 202
            limited = ticket("Operator please, a human.")
            slack.fail("chat.postMessage", status=429, times=1, headers={"Retry-After": "1"})
            assert webhook(limited).status_code == 202
            wait_until(lambda: posts_for(slack, storm), timeout=30, what="the post after the 500 storm")
            wait_until(lambda: posts_for(slack, limited), timeout=30, what="the post after the 429")

            # Signed Slack traffic: a Claim click, a slash command, and a forged command.
            escalation = str(post["metadata"]["event_payload"]["escalation_id"])
            body, headers = signed_form(block_action(user=AGENT, action_id="seam_claim", value=escalation,
                                                     message_ts=post["ts"]), secret=SLACK_SIGNING_SECRET)
            assert server.http.post("/slack/events", content=body, headers=headers).status_code == 200
            command = b"command=%2Fescalation&text=stats&user_id=UAGENT1&channel_id=C1&team_id=T1"
            assert server.http.post("/slack/events", content=command,
                                    headers=slack_headers(command, secret=SLACK_SIGNING_SECRET)).status_code == 200
            assert server.http.post("/slack/events", content=command,
                                    headers=slack_headers(command)).status_code == 401
            time.sleep(1.5)  # let the click's work and the retries log what they log
        finally:
            server.stop()
        log = server.log()

    assert "DEBUG" in log, "the server did not log at DEBUG: the test would prove nothing"
    assert "401" in log or "refused" in log
    leaked = [name for name, value in SECRETS.items() if value in log]
    # Parts of a secret are as bad: the token's last segment, the signing secret's halves.
    leaked += [f"part of {name}" for name, value in SECRETS.items()
               for part in (value[-24:], value[:16]) if part in log and name not in leaked]
    assert not leaked, f"secrets in the log: {leaked}\n" + "\n".join(
        line for line in log.splitlines() if any(v[-24:] in line or v[:16] in line for v in SECRETS.values()))[:3000]
    cards = [form for form in CARD_FORMS if form in log]
    assert not cards, "card number in the log:\n" + "\n".join(
        line for line in log.splitlines() if any(f in line for f in CARD_FORMS))[:3000]

