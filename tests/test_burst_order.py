"""Slack throughput in a burst, through `python -m bot serve` at a real pace (two posts a second per channel, no
burst allowance): every new escalation's card is posted before older escalations' transcripts, the k-th card is
visible about k intervals in, a short conversation is one thread reply, and a kill -9 in the middle of the
transcripts neither loses nor doubles a reply."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from bot.store import Store
from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.fakes import FakeSlack, FakeZendesk
from tests.support.server import SeamServer, seam_env
from tests.support.waiting import wait_until

BURST = 10
INTERVAL = 0.5  # posts_per_second = 2
PACED = """[slack]
posts_per_second = 2.0
post_burst = 1

[helpdesk]
requests_per_minute = 0
updates_per_minute = 0

[reconcile]
interval_seconds = 0
"""
CONVERSATION = ["My parcel is late, it was due on Monday.", "Sorry about that, let me check with the courier.",
                "It has been three days now. Please put me through to a real person."]


def start(slack: FakeSlack, zendesk: FakeZendesk, tmp: Path) -> SeamServer:
    (tmp / "seam.toml").write_text(PACED)
    return SeamServer(seam_env(slack=slack, zendesk=zendesk, tmp=tmp, SEAM_CONFIG=str(tmp / "seam.toml")),
                      tmp / "serve.log").start()


def burst(seam: SeamServer, zendesk: FakeZendesk, first: int) -> list[int]:
    zendesk.add_user(id=801, name="Agent", email="agent@acme.example", role="agent")
    ids = list(range(first, first + BURST))
    for ticket_id in ids:
        zendesk.add_ticket(id=ticket_id, subject=f"Order {ticket_id}", requester_id=CUSTOMER_ID, comments=[
            {"author_id": CUSTOMER_ID, "body": CONVERSATION[0]}, {"author_id": 801, "body": CONVERSATION[1]},
            {"author_id": CUSTOMER_ID, "body": CONVERSATION[2]}])
    for ticket_id in ids:
        assert seam.post_webhook({"ticket_id": ticket_id}).status_code == 202
    return ids


def posts(slack: FakeSlack) -> list:
    """Seam's successful posts to the escalation channel, in the order Slack received them."""
    return sorted((c for c in slack.calls_to("chat.postMessage") if c.ok and c.params.get("channel") == CHANNEL),
                  key=lambda c: c.received_at)


def card_tickets(slack: FakeSlack) -> dict[str, str]:
    """Each card's ts → its ticket id."""
    return {m["ts"]: m["metadata"]["event_payload"]["ticket_id"] for m in slack.messages(CHANNEL)}


def transcripts_done(slack: FakeSlack) -> bool:
    messages = slack.messages(CHANNEL)
    return len(messages) == BURST and all(m["replies"] for m in messages)


def test_a_burst_posts_every_card_before_any_transcript_and_each_short_conversation_in_one_reply(
        fake_slack, fake_zendesk, tmp_path):
    seam = start(fake_slack, fake_zendesk, tmp_path)
    try:
        ids = burst(seam, fake_zendesk, 91_000)
        wait_until(lambda: transcripts_done(fake_slack), timeout=60, what="every card and transcript")
        order = posts(fake_slack)
        kinds = ["reply" if c.params.get("thread_ts") else "card" for c in order]
        assert kinds == ["card"] * BURST + ["reply"] * BURST, kinds
        cards = order[:BURST]
        assert sorted(card_tickets(fake_slack).values()) == sorted(str(t) for t in ids), "one card per ticket"
        for k, card in enumerate(cards):
            # The k-th card of the burst is visible about k intervals after the first (plus processing).
            assert card.received_at - cards[0].received_at <= k * INTERVAL + 0.6, (k, [c.received_at for c in cards])
        for message in fake_slack.messages(CHANNEL):
            [reply] = message["replies"]  # a short conversation is one thread reply
            shown = json.dumps(reply["blocks"])
            assert all(line in shown for line in CONVERSATION)
            assert reply["metadata"]["event_payload"]["part"] == 0
    finally:
        assert seam.stop() == 0, seam.log()


def test_a_kill_among_the_transcripts_loses_none_and_doubles_none(fake_slack, fake_zendesk, tmp_path):
    seam = start(fake_slack, fake_zendesk, tmp_path)
    burst(seam, fake_zendesk, 92_000)
    # Every card is up and the transcripts have begun: kill -9 while the rest wait in the queue (or the pacer).
    wait_until(lambda: any(c.params.get("thread_ts") for c in posts(fake_slack)), timeout=30,
               what="the first transcript reply")
    seam.process.send_signal(signal.SIGKILL)
    seam.process.wait()
    assert len(fake_slack.messages(CHANNEL)) == BURST
    assert not transcripts_done(fake_slack)
    seam.start()
    try:
        wait_until(lambda: transcripts_done(fake_slack), timeout=60, what="the rest of the transcripts")
        store = Store(seam.env["DATABASE_PATH"])
        wait_until(lambda: store.db.execute("select count(*) from events where kind = 'transcript' and state = "
                                            "'done'").fetchone()[0] == BURST, what="every transcript job done")
        assert len(fake_slack.messages(CHANNEL)) == BURST, "no card posted twice"
        assert all(len(m["replies"]) == 1 for m in fake_slack.messages(CHANNEL)), "no transcript lost or doubled"
    finally:
        assert seam.stop() == 0, seam.log()
