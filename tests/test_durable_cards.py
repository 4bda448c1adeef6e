"""A card in Slack that is behind its escalation's row is caught up (bot.slack.poster `refresh_stale`, run by
bot.jobs.cards): after a crash between a state change and its chat.update, after an update Slack refused (rate
limited, 500), oldest change first and a bounded number per round; a deleted message stops being retried. A
freshly posted or refreshed card is in sync, so the sweep costs nothing then; an upgraded database takes its
existing cards as in sync.

The core runs in-process against the loopback fakes (tests.support.services), with the real store (a SQLite
file), Slack client, poster and flows.
"""

from __future__ import annotations

import itertools
import json
import sqlite3

import httpx
import pytest
from sqlite_utils import Database

from bot.config import SlackTable, load_settings
from bot.errors import ConfigError
from bot.jobs.cards import CardSync
from bot.models import EscalationState
from bot.store import MIGRATIONS, Store
from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.posts import posts_for, text_objects
from tests.support.services import build_services, drain, web_client
from tests.support.signing import zendesk_headers
from tests.support.waiting import wait_until

AGENT, ZENDESK_AGENT = "UAGENT", 801
# Asks for a person (so it escalates) about what the knowledge answers (so there is a draft to approve).
PASSWORD = "I forgot my password and need to reset it. Can I talk to a person?"
REPLY = "Hi Ana, I sent you a new reset link by hand: it works for 24 hours."
_ids = itertools.count(91_000)
# Slack refusing for good, answered at once (an HTTP 200 with ok: false is not retried by the client).
GONE = {"status": 200, "body": {"ok": False, "error": "message_not_found"}}


@pytest.fixture
def services(fake_slack, fake_zendesk, tmp_path):
    return build_services(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path)


def escalate(services, fake_slack, fake_zendesk) -> dict:
    """A new ticket escalated and its card posted: {ticket, escalation, ts}."""
    ticket_id = next(_ids)
    fake_zendesk.add_ticket(id=ticket_id, subject="Question", requester_id=CUSTOMER_ID,
                            comments=[{"author_id": CUSTOMER_ID, "body": PASSWORD}])
    event_id, _ = services.store.record_event(helpdesk="zendesk", dedupe_key=f"t{ticket_id}:new",
                                              ticket_id=str(ticket_id), body="{}")
    drain(services)
    assert "escalated" in services.store.event(event_id).outcome
    [post] = posts_for(fake_slack, ticket_id)
    return {"ticket": ticket_id, "escalation": int(post["metadata"]["event_payload"]["escalation_id"]),
            "ts": post["ts"]}


def answered_behind_slacks_back(services, case: dict) -> None:
    """The state change the answered flow makes (bot.flows.answered `_close`), and then the crash: no refresh."""
    assert services.store.answer_escalation(case["escalation"], text=REPLY,
                                            detail={"escalation_id": case["escalation"], "why": "test"})


def updates(fake_slack, case: dict | None = None) -> list:
    """The chat.update calls Slack took (for one card's ts, when given)."""
    return [c for c in fake_slack.calls_to("chat.update")
            if c.ok and (case is None or c.params.get("ts") == case["ts"])]


def card(fake_slack, case: dict) -> dict:
    return next(m for m in fake_slack.messages(CHANNEL) if m["ts"] == case["ts"])


def buttons(blocks: list) -> list[str]:
    return [e["text"]["text"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def shown(blocks: list) -> str:
    return "\n".join(t["text"] for t in text_objects(blocks))


def in_sync(services, case: dict) -> bool:
    escalation = services.store.escalation(case["escalation"])
    return escalation.card_synced_at == escalation.updated_at


def stale_ids(services) -> list[int]:
    return [e.id for e in services.store.stale_cards(limit=100)]


# -- caught up after a crash or a refusal ---------------------------------------------------------------------

def test_a_crash_between_the_state_change_and_the_refresh_is_caught_up_by_the_sweep(
        services, fake_slack, fake_zendesk):
    case = escalate(services, fake_slack, fake_zendesk)
    assert "Approve" in buttons(card(fake_slack, case)["blocks"])
    answered_behind_slacks_back(services, case)
    # The job redone after the restart: the helpdesk's webhook for the agent's reply. Its compare-and-set finds
    # the escalation already answered, so the flow itself refreshes nothing.
    fake_zendesk.add_user(id=ZENDESK_AGENT, name="Agent", email="agent@acme.example", role="agent")
    httpx.put(f"{fake_zendesk.url}/api/v2/tickets/{case['ticket']}.json", auth=fake_zendesk.auth,
              json={"ticket": {"comment": {"author_id": ZENDESK_AGENT, "body": REPLY, "public": True}}}
              ).raise_for_status()
    body = json.dumps({"ticket_id": case["ticket"]}).encode()
    assert web_client(services).post("/webhooks/zendesk", data=body, headers=zendesk_headers(body)).status_code \
        == 202
    drain(services)
    assert updates(fake_slack, case) == []
    assert "Approve" in buttons(card(fake_slack, case)["blocks"])
    assert stale_ids(services) == [case["escalation"]]

    assert services.poster.refresh_stale() == 1

    [update] = updates(fake_slack, case)
    assert buttons(update.params["blocks"]) == []
    assert "answered" in shown(update.params["blocks"]).lower()
    assert buttons(card(fake_slack, case)["blocks"]) == []
    assert in_sync(services, case) and stale_ids(services) == []
    # In sync now: the next round costs nothing.
    assert services.poster.refresh_stale() == 0
    assert len(updates(fake_slack, case)) == 1


def test_a_fresh_post_and_a_refreshed_card_are_in_sync_and_the_sweep_leaves_them_alone(
        services, fake_slack, fake_zendesk):
    case = escalate(services, fake_slack, fake_zendesk)
    assert in_sync(services, case)
    calls = len(fake_slack.calls_to("chat.update"))
    assert services.poster.refresh_stale() == 0
    assert len(fake_slack.calls_to("chat.update")) == calls

    # A claim through the flow: its own refresh records what the card shows.
    fake_slack.add_user(AGENT, email="agent@acme.example", name="agent")
    services.actions.claim(case["escalation"], AGENT)
    assert services.store.escalation(case["escalation"]).state == EscalationState.CLAIMED
    assert in_sync(services, case) and stale_ids(services) == []
    calls = len(fake_slack.calls_to("chat.update"))
    assert services.poster.refresh_stale() == 0
    assert len(fake_slack.calls_to("chat.update")) == calls


def test_a_change_that_lands_between_the_render_and_its_record_leaves_the_card_stale(
        services, fake_slack, fake_zendesk):
    case = escalate(services, fake_slack, fake_zendesk)
    rendered = services.store.escalation(case["escalation"]).updated_at
    answered_behind_slacks_back(services, case)  # lands after the render, before the record
    assert not services.store.mark_card_synced(case["escalation"], rendered=rendered)
    assert stale_ids(services) == [case["escalation"]]


def test_a_rate_limited_refresh_is_caught_up_on_the_next_round(services, fake_slack, fake_zendesk):
    case = escalate(services, fake_slack, fake_zendesk)
    services.store.claim_escalation(case["escalation"], user_id=AGENT)
    # Rate limited through the client's own retries (each honours Retry-After), in the flow's refresh and again
    # in the sweep's first round.
    fake_slack.fail("chat.update", status=429, times=12, headers={"Retry-After": "0"})
    assert services.poster.refresh(case["escalation"]) is False
    assert stale_ids(services) == [case["escalation"]]
    assert services.poster.refresh_stale() == 0
    assert stale_ids(services) == [case["escalation"]]

    assert services.poster.refresh_stale() == 1
    assert "Claimed by" in shown(card(fake_slack, case)["blocks"])
    assert in_sync(services, case)


def test_slack_failing_ends_the_round_and_the_next_round_catches_every_card_up(
        services, fake_slack, fake_zendesk):
    cases = [escalate(services, fake_slack, fake_zendesk) for _ in range(3)]
    for case in cases:
        answered_behind_slacks_back(services, case)
    fake_slack.clear_calls()
    fake_slack.fail("chat.update", status=500, times=4)  # the first call and the client's three retries
    assert services.poster.refresh_stale() == 0
    # One card tried (four times, by the client); the other two were not tried in a round Slack was failing.
    assert {c.params.get("ts") for c in fake_slack.calls_to("chat.update")} == {cases[0]["ts"]}
    assert sorted(stale_ids(services)) == sorted(c["escalation"] for c in cases)

    assert services.poster.refresh_stale() == 3
    assert all(buttons(card(fake_slack, case)["blocks"]) == [] for case in cases)
    assert stale_ids(services) == []


def test_a_deleted_message_is_recorded_as_shown_and_not_retried(services, fake_slack, fake_zendesk, caplog):
    case = escalate(services, fake_slack, fake_zendesk)
    answered_behind_slacks_back(services, case)
    fake_slack.clear_calls()
    fake_slack.fail("chat.update", **GONE)
    assert services.poster.refresh_stale() == 0
    assert len(fake_slack.calls_to("chat.update")) == 1
    assert in_sync(services, case) and stale_ids(services) == []
    assert sum("is gone from Slack" in r.getMessage() for r in caplog.records) == 1
    for _ in range(3):
        services.poster.refresh_stale()
    assert len(fake_slack.calls_to("chat.update")) == 1


def test_a_card_slack_refuses_on_its_own_backs_off_without_holding_up_the_others(
        services, fake_slack, fake_zendesk):
    first, second = (escalate(services, fake_slack, fake_zendesk) for _ in range(2))
    answered_behind_slacks_back(services, first)
    answered_behind_slacks_back(services, second)
    fake_slack.clear_calls()
    refused = {"status": 200, "body": {"ok": False, "error": "invalid_blocks"}}
    fake_slack.fail("chat.update", **refused)

    def tried(case: dict) -> int:
        return sum(c.params.get("ts") == case["ts"] for c in fake_slack.calls_to("chat.update"))

    # Round 1: the first card is refused, the second updated in the same round.
    assert services.poster.refresh_stale() == 1
    assert (tried(first), tried(second)) == (1, 1)
    # Round 2: tried again (refused again); round 3: waiting; round 4: tried, and updated.
    fake_slack.fail("chat.update", **refused)
    assert services.poster.refresh_stale() == 0
    assert services.poster.refresh_stale() == 0
    assert tried(first) == 2
    assert services.poster.refresh_stale() == 1
    assert tried(first) == 3
    assert stale_ids(services) == []


def test_a_round_updates_at_most_its_limit_oldest_change_first(services, fake_slack, fake_zendesk):
    cases = [escalate(services, fake_slack, fake_zendesk) for _ in range(5)]
    # Changed newest escalation first: the oldest change is the last escalation's.
    for case in reversed(cases):
        answered_behind_slacks_back(services, case)
    fake_slack.clear_calls()

    assert services.poster.refresh_stale(limit=2) == 2
    assert [c.params["ts"] for c in updates(fake_slack)] == [cases[4]["ts"], cases[3]["ts"]]
    assert services.poster.refresh_stale(limit=2) == 2
    assert services.poster.refresh_stale(limit=2) == 1
    assert [c.params["ts"] for c in updates(fake_slack)] == [c["ts"] for c in reversed(cases)]
    assert services.poster.refresh_stale(limit=2) == 0


def test_serve_sweeps_at_start(fake_slack, fake_zendesk, tmp_path):
    services = build_services(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path, reconcile_seconds=0,
                              knowledge_sync_seconds=0)
    case = escalate(services, fake_slack, fake_zendesk)
    answered_behind_slacks_back(services, case)  # and the process stops before the refresh
    [sweep] = [job for job in services.runner._periodic if isinstance(job, CardSync)]
    assert (sweep.interval, sweep.limit) == (60.0, 20)
    services.start()
    try:
        wait_until(lambda: updates(fake_slack, case), what="the stale card updated at start")
        assert buttons(card(fake_slack, case)["blocks"]) == []
    finally:
        services.stop()


# -- the setting and the migration ----------------------------------------------------------------------------

def test_the_sweep_interval_is_a_slack_setting_and_0_turns_it_off(fake_slack, fake_zendesk, tmp_path):
    (tmp_path / "seam.toml").write_text('[slack]\ncard_sync_interval = "2m"\n')
    assert load_settings(env={}, cwd=tmp_path).slack.card_sync_interval == 120.0
    (tmp_path / "seam.toml").write_text("[slack]\ncard_sync_interval = 5\n")
    with pytest.raises(ConfigError, match="card_sync_interval"):
        load_settings(env={}, cwd=tmp_path)
    services = build_services(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path,
                              slack_table=SlackTable(card_sync_interval=0))
    [sweep] = [job for job in services.runner._periodic if isinstance(job, CardSync)]
    assert sweep.interval == 0


def test_an_upgraded_database_takes_its_existing_cards_as_in_sync(tmp_path):
    path = tmp_path / "seam.db"
    db = Database(sqlite3.connect(path))
    MIGRATIONS.apply(db, stop_before="m013_card_sync")
    assert "card_synced_at" not in db["escalations"].columns_dict
    db["events"].insert({"id": 1, "helpdesk": "zendesk", "dedupe_key": "e1", "ticket_id": "1", "state": "done"})
    db["decisions"].insert({"id": 1, "event_id": 1, "ticket_key": "zendesk:1", "route": "escalate"})
    for row_id, state, ts in ((1, "sent", "1700000000.000100"), (2, "open", "1700000000.000200"),
                              (3, "posting", None)):
        db["escalations"].insert({"id": row_id, "event_id": row_id if row_id == 1 else None, "decision_id": 1,
                                  "ticket_key": "zendesk:1", "ticket_id": "1", "channel": CHANNEL, "ts": ts,
                                  "state": state, "confidence": 0.5, "card": "{}",
                                  "created_at": "2024-01-01T00:00:00.000000Z",
                                  "updated_at": f"2024-01-0{row_id}T00:00:00.000000Z"})
    db.conn.close()

    store = Store(path)
    for row_id in (1, 2, 3):
        escalation = store.escalation(row_id)
        assert escalation.card_synced_at == escalation.updated_at
    assert store.stale_cards(limit=10) == []
    # A change after the upgrade makes a card stale as usual.
    store.update_escalation(2, last_error="x")
    assert [e.id for e in store.stale_cards(limit=10)] == [2]
