"""What follows the post — reminders, the SLA watch, keep-warm — through `python -m bot serve` against the fakes,
with durations of seconds in seam.toml: each fires once at its time, survives a kill -9 between scheduling and
running, stops when claimed or answered, and is in the audit log. Then the scheduling decisions in-process."""

from __future__ import annotations

import itertools
import json
import signal
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from bot.config import (
    CustomerNoticeTable,
    KeepWarmTable,
    RemindersTable,
    RouteTable,
    SlaWatchTable,
    load_settings,
    read_routes,
)
from bot.errors import ConfigError
from bot.flows.lifecycle import Lifecycle, updates_on_ticket, waiting_on_person
from bot.helpdesk.zendesk.adapter import sla_breach_at
from bot.jobs.worker import Worker
from bot.models import Message, Ticket
from bot.slack.poster import NOTE_KIND, TRANSCRIPT_KIND
from bot.store import Store
from bot.text import iso, parse_time
from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.fakes import FakeSlack, FakeZendesk
from tests.support.payloads import block_action
from tests.support.posts import posts_for
from tests.support.server import UNPACED, SeamServer, seam_env
from tests.support.signing import signed_form, slack_headers
from tests.support.waiting import wait_until

AGENT, AGENT_EMAIL, ZENDESK_AGENT = "UAGENT1", "agent1@acme.example", 801
MANAGER = "UMANAGER"
TEAM = "<!subteam^S0TEAMVIP>"
ASK = "My order never arrived. Please put me through to a real person."
_ids = itertools.count(61_000)

# What every scenario leaves off unless it is the one under test (reminders and the SLA watch are on by default).
QUIET = "[reminders]\nenabled = false\n\n[sla_watch]\nenabled = false\n\n"


@pytest.fixture
def slack():
    with FakeSlack() as server:
        server.clock = time.time  # calls stamped with the wall clock, to compare with due times
        server.add_user(AGENT, email=AGENT_EMAIL, name="agent1")
        yield server


@pytest.fixture
def zendesk():
    with FakeZendesk() as server:
        server.add_user(id=CUSTOMER_ID, name="Ana Customer", email="ana@example.com")
        server.add_user(id=ZENDESK_AGENT, name="agent1", email=AGENT_EMAIL, role="agent")
        yield server


def serve(slack: FakeSlack, zendesk: FakeZendesk, tmp: Path, config: str) -> SeamServer:
    (tmp / "seam.toml").write_text(UNPACED + "\n" + config)
    return SeamServer(seam_env(slack=slack, zendesk=zendesk, tmp=tmp, SEAM_CONFIG=str(tmp / "seam.toml"),
                               MANAGER_USER_IDS=MANAGER), tmp / "serve.log").start()


def escalate(seam: SeamServer, slack: FakeSlack, zendesk: FakeZendesk, *, tags: tuple[str, ...] = ()) -> dict:
    ticket_id = next(_ids)
    zendesk.add_ticket(id=ticket_id, subject=f"Order {ticket_id}", requester_id=CUSTOMER_ID, tags=tags,
                       comments=[{"author_id": CUSTOMER_ID, "body": ASK}])
    assert seam.post_webhook({"ticket_id": ticket_id}).status_code == 202
    [post] = wait_until(lambda: posts_for(slack, ticket_id), what="the escalation")
    # The fake stores the message before it records the call's answer: wait for the record too.
    posted_at = wait_until(lambda: next((c.received_at for c in slack.calls_to("chat.postMessage")
                                         if c.ok and c.response["ts"] == post["ts"]), None),
                           what="the escalation's call record")
    return {"ticket": ticket_id, "escalation": int(post["metadata"]["event_payload"]["escalation_id"]),
            "ts": post["ts"], "posted_at": posted_at}


def notes(slack: FakeSlack, case: dict, key: str) -> list[dict]:
    """The thread notes of one escalation with this key (`reminder-unclaimed`, `sla-warn`, `keep-warm-1` …), each
    with the time the fake Slack received it."""
    found = []
    for call in slack.calls_to("chat.postMessage"):
        payload = ((call.params.get("metadata") or {}).get("event_payload") or {})
        if call.ok and call.params.get("thread_ts") == case["ts"] and payload.get("key") == key:
            found.append({"text": call.params["text"], "at": call.received_at - case["posted_at"],
                          "wall": call.received_at})
    return found


def wait_scheduled(seam: SeamServer, kind: str, count: int = 1) -> None:
    """Until `count` jobs of `kind` are in the queue (scheduled, not yet run)."""
    store = Store(seam.env["DATABASE_PATH"])
    wait_until(lambda: store.db.execute("select count(*) from events where kind = ? and state = 'pending'",
                                        [kind]).fetchone()[0] >= count, what=f"{kind} scheduled")


def audit(seam: SeamServer, action: str, case: dict) -> list[dict]:
    rows = Store(seam.env["DATABASE_PATH"]).audit_rows(limit=1000, actor="seam")
    return [r for r in rows if r["action"] == action and r["detail"].get("escalation_id") == case["escalation"]]


def escalation_row(seam: SeamServer, case: dict):
    return Store(seam.env["DATABASE_PATH"]).escalation(case["escalation"])


def claim(seam: SeamServer, case: dict) -> None:
    body, headers = signed_form(block_action(user=AGENT, action_id="seam_claim", value=str(case["escalation"]),
                                             message_ts=case["ts"]))
    assert seam.http.post("/slack/events", content=body, headers=headers).status_code == 200
    wait_until(lambda: escalation_row(seam, case).owner == AGENT, what="the claim")


def agent_replies(zendesk: FakeZendesk, case: dict, text: str = "Hi Ana, I am looking into it now.") -> None:
    httpx.put(f"{zendesk.url}/api/v2/tickets/{case['ticket']}.json", auth=zendesk.auth, json={"ticket": {
        "comment": {"author_id": ZENDESK_AGENT, "body": text, "public": True}}}).raise_for_status()


def stats(seam: SeamServer) -> str:
    body = urlencode({"token": "t", "team_id": "T1", "channel_id": CHANNEL, "user_id": AGENT, "user_name": "agent1",
                      "command": "/escalation", "text": "stats", "api_app_id": "A1", "trigger_id": "1.2.3",
                      "response_url": "https://hooks.slack.invalid/commands/1"}).encode()
    response = seam.http.post("/slack/events", content=body, headers=slack_headers(body))
    assert response.status_code == 200, response.text
    return response.json()["text"]


def kill(seam: SeamServer) -> None:
    seam.process.send_signal(signal.SIGKILL)
    seam.process.wait()


# -- reminders ------------------------------------------------------------------------------------------------


REMINDERS = f"""[reminders]
unclaimed_after = "2s"
escalate_after = "4s"

[sla_watch]
enabled = false

[[routes]]
name = "vip"
when = "tagged vip"
channel = "{CHANNEL}"
mention = "{TEAM}"
"""


def test_an_unclaimed_escalation_pings_its_route_then_the_managers_once_and_a_claim_stops_both(
        slack, zendesk, tmp_path):
    seam = serve(slack, zendesk, tmp_path, REMINDERS)
    try:
        waiting = escalate(seam, slack, zendesk, tags=("vip",))
        claimed = escalate(seam, slack, zendesk)
        claim(seam, claimed)
        [first] = wait_until(lambda: notes(slack, waiting, "reminder-unclaimed"), timeout=10, what="the reminder")
        assert 1.9 <= first["at"] < 3.9, first
        assert TEAM in first["text"] and "Still unclaimed after" in first["text"]
        [page] = wait_until(lambda: notes(slack, waiting, "reminder-manager"), timeout=10, what="the manager page")
        assert 3.9 <= page["at"] < 6.0, page
        assert f"<@{MANAGER}>" in page["text"]
        time.sleep(2.5)
        assert [len(notes(slack, waiting, key)) for key in ("reminder-unclaimed", "reminder-manager")] == [1, 1]
        assert notes(slack, claimed, "reminder-unclaimed") == [] and notes(slack, claimed, "reminder-manager") == []
        row = escalation_row(seam, waiting)
        assert row.reminded_at and row.manager_paged_at and row.mention == TEAM
        assert escalation_row(seam, claimed).reminded_at is None
        [sent] = audit(seam, "reminder_sent", waiting)
        assert sent["detail"]["mentioned"] == TEAM and sent["detail"]["route"] == "vip"
        assert len(audit(seam, "manager_paged", waiting)) == 1
        assert audit(seam, "reminder_sent", claimed) == []
        # The card is refreshed so its age shows (chat.update of the same message).
        assert any(c.params.get("ts") == waiting["ts"] for c in slack.calls_to("chat.update"))
        assert "reminders 1, managers paged 1" in stats(seam)
    finally:
        assert seam.stop() == 0, seam.log()


def test_a_reminder_scheduled_before_a_kill_fires_once_after_the_restart(slack, zendesk, tmp_path):
    seam = serve(slack, zendesk, tmp_path, '[reminders]\nunclaimed_after = "3s"\nescalate_after = 0\n\n'
                                           '[sla_watch]\nenabled = false\n')
    case = escalate(seam, slack, zendesk)
    wait_scheduled(seam, "reminder")
    kill(seam)  # between scheduling (at the post) and running (3 s later)
    seam.start()
    try:
        [note] = wait_until(lambda: notes(slack, case, "reminder-unclaimed"), timeout=15, what="the reminder")
        assert note["at"] >= 2.9
        time.sleep(2.0)
        assert len(notes(slack, case, "reminder-unclaimed")) == 1
        assert notes(slack, case, "reminder-manager") == [], "escalate_after = 0 never pages the managers"
        assert len(audit(seam, "reminder_sent", case)) == 1
        jobs = Store(seam.env["DATABASE_PATH"]).db.execute(
            "select kind, state, outcome from events where kind = 'reminder'").fetchall()
        assert jobs == [("reminder", "done", "reminded")]
    finally:
        assert seam.stop() == 0, seam.log()


# -- the SLA watch ----------------------------------------------------------------------------------------------


SLA = """[reminders]
enabled = false

[sla_watch]
warn_before = "3s"
response_targets = { normal = "6s" }
"""


def test_the_sla_watch_warns_the_owner_before_the_due_time_then_records_the_breach_once(slack, zendesk, tmp_path):
    seam = serve(slack, zendesk, tmp_path, SLA)
    try:
        owned = escalate(seam, slack, zendesk)
        claim(seam, owned)
        answered = escalate(seam, slack, zendesk)
        agent_replies(zendesk, answered)
        [warning] = wait_until(lambda: notes(slack, owned, "sla-warn"), timeout=10, what="the SLA warning")
        assert f"<@{AGENT}>" in warning["text"] and "SLA is due" in warning["text"]
        row = wait_until(lambda: (r := escalation_row(seam, owned)).sla_warned_at and r, what="sla_warned_at")
        due = parse_time(row.sla_due_at)
        [asked] = zendesk.comments(owned["ticket"])
        assert due == parse_time(asked["created_at"]) + timedelta(seconds=6), \
            "the customer's message plus the normal response target"
        assert due.timestamp() - 3.05 <= warning["wall"] < due.timestamp() - 3 + 1.9, "warn_before the due time"
        [breach] = wait_until(lambda: notes(slack, owned, "sla-breach"), timeout=10, what="the breach")
        assert due.timestamp() - 0.05 <= breach["wall"] < due.timestamp() + 1.9, "at the due time"
        time.sleep(2.0)
        assert len(notes(slack, owned, "sla-warn")) == 1 and len(notes(slack, owned, "sla-breach")) == 1
        assert escalation_row(seam, owned).sla_breached_at
        [warned] = audit(seam, "sla_warned", owned)
        assert warned["detail"]["owner"] == AGENT and warned["detail"]["due_at"] == row.sla_due_at
        assert len(audit(seam, "sla_breached", owned)) == 1
        # The agent answered in Zendesk: that SLA is met, nothing is said or counted.
        assert notes(slack, answered, "sla-warn") == [] and notes(slack, answered, "sla-breach") == []
        assert escalation_row(seam, answered).sla_breached_at is None
        assert "SLA breaches 1 (warned 1)" in stats(seam)
    finally:
        assert seam.stop() == 0, seam.log()


def test_zendesks_sla_policy_sets_the_due_time_and_the_watch_survives_a_kill(slack, zendesk, tmp_path):
    seam = serve(slack, zendesk, tmp_path, SLA.replace('normal = "6s"', 'normal = "1h"'))
    ticket_id = next(_ids)
    zendesk.add_ticket(id=ticket_id, subject="Late parcel", requester_id=CUSTOMER_ID,
                       comments=[{"author_id": CUSTOMER_ID, "body": ASK}])
    breach = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    zendesk.set_slas(ticket_id, [
        {"breach_at": (breach - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"), "stage": "achieved",
         "metric": "first_reply_time", "hours": 1},
        {"breach_at": breach.strftime("%Y-%m-%dT%H:%M:%SZ"), "stage": "active", "metric": "next_reply_time",
         "minutes": 30}])
    assert seam.post_webhook({"ticket_id": ticket_id}).status_code == 202
    [post] = wait_until(lambda: posts_for(slack, ticket_id), what="the escalation")
    case = {"ticket": ticket_id, "escalation": int(post["metadata"]["event_payload"]["escalation_id"]),
            "ts": post["ts"], "posted_at": 0.0}
    wait_scheduled(seam, "sla_watch", 2)
    kill(seam)  # the warning (due − 2 s) and the breach check are scheduled, not yet run
    seam.start()
    try:
        [noted] = wait_until(lambda: notes(slack, case, "sla-breach"), timeout=15, what="the breach after restart")
        assert noted["wall"] >= breach.timestamp() - 0.05
        assert parse_time(escalation_row(seam, case).sla_due_at) == breach, "the active metric's breach_at"
        time.sleep(1.5)
        assert len(notes(slack, case, "sla-warn")) == 1 and len(notes(slack, case, "sla-breach")) == 1
        assert len(audit(seam, "sla_breached", case)) == 1
    finally:
        assert seam.stop() == 0, seam.log()


# -- keep-warm --------------------------------------------------------------------------------------------------


KEEP_WARM = QUIET + """[keep_warm]
enabled = true
after = "2s"
every = "2s"
max = 2
template = "Still on it: a person from our team will write to you soon."
"""
TEMPLATE = "Still on it: a person from our team will write to you soon."


def updates(zendesk: FakeZendesk, case: dict) -> list[dict]:
    return [c for c in zendesk.comments(case["ticket"]) if c["body"] == TEMPLATE and c["public"]]


def test_keep_warm_updates_a_waiting_customer_every_interval_up_to_max_and_stops_when_an_agent_replies(
        slack, zendesk, tmp_path):
    seam = serve(slack, zendesk, tmp_path, KEEP_WARM)
    try:
        waiting = escalate(seam, slack, zendesk)
        answered = escalate(seam, slack, zendesk)
        solved = escalate(seam, slack, zendesk)
        agent_replies(zendesk, answered)
        wait_until(lambda: len(updates(zendesk, solved)) == 1, what="the to-be-solved ticket's first update")
        httpx.put(f"{zendesk.url}/api/v2/tickets/{solved['ticket']}.json", auth=zendesk.auth,
                  json={"ticket": {"status": "solved"}}).raise_for_status()
        wait_until(lambda: len(updates(zendesk, waiting)) == 2, timeout=12, what="two keep-warm updates")
        wait_until(lambda: notes(slack, waiting, "keep-warm-2"), what="the second update shown in the thread")
        first, second = (notes(slack, waiting, f"keep-warm-{n}") for n in (1, 2))
        assert len(first) == 1 and len(second) == 1
        assert 1.9 <= first[0]["at"] < 3.9 and 3.9 <= second[0]["at"] < 6.5, (first, second)
        assert "(1 of 2)" in first[0]["text"] and TEMPLATE in first[0]["text"]
        time.sleep(3.5)
        assert len(updates(zendesk, waiting)) == 2, "at most max updates"
        assert updates(zendesk, answered) == [] and notes(slack, answered, "keep-warm-1") == []
        assert len(updates(zendesk, solved)) == 1, "solved: no more updates"
        row = escalation_row(seam, waiting)
        assert row.keep_warm_sent == 2 and row.last_keep_warm_at
        assert [r["detail"]["n"] for r in audit(seam, "keep_warm_sent", waiting)] == [2, 1]
        outcomes = dict(Store(seam.env["DATABASE_PATH"]).db.execute(
            "select dedupe_key, outcome from events where kind = 'keep_warm'").fetchall())
        assert outcomes[f"keep_warm:{answered['escalation']}:1"] == "stopped: an agent replied"
        assert outcomes[f"keep_warm:{solved['escalation']}:2"] == "stopped: the ticket is solved"
    finally:
        assert seam.stop() == 0, seam.log()


def test_keep_warm_scheduled_before_a_kill_sends_each_update_once_after_the_restart(slack, zendesk, tmp_path):
    seam = serve(slack, zendesk, tmp_path, KEEP_WARM.replace('after = "2s"', 'after = "3s"'))
    case = escalate(seam, slack, zendesk)
    wait_scheduled(seam, "keep_warm")
    kill(seam)
    seam.start()
    try:
        wait_until(lambda: len(updates(zendesk, case)) == 2, timeout=15, what="both updates after the restart")
        time.sleep(2.5)
        assert len(updates(zendesk, case)) == 2
        assert len(notes(slack, case, "keep-warm-1")) == 1 and len(notes(slack, case, "keep-warm-2")) == 1
        assert len(audit(seam, "keep_warm_sent", case)) == 2
    finally:
        assert seam.stop() == 0, seam.log()


# -- in-process: the scheduling decisions ----------------------------------------------------------------------


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def lifecycle_for(pipeline, **tables) -> Lifecycle:
    settings = replace(pipeline.settings, manager_user_ids=(MANAGER,), **tables)
    lifecycle = Lifecycle(settings=settings, store=pipeline.store, helpdesk=pipeline.helpdesk,
                          poster=pipeline.poster)
    pipeline.settings, pipeline.lifecycle = settings, lifecycle
    return lifecycle


def run_ticket(pipeline, lifecycle: Lifecycle, zendesk: FakeZendesk, **ticket) -> dict:
    ticket_id = next(_ids)
    zendesk.add_ticket(id=ticket_id, subject="Order", requester_id=CUSTOMER_ID,
                       comments=[{"author_id": CUSTOMER_ID, "body": ASK}], **ticket)
    pipeline.store.record_event(helpdesk="zendesk", dedupe_key=f"t{ticket_id}", ticket_id=str(ticket_id), body="{}")
    worker = Worker(store=pipeline.store, handlers={"ticket": pipeline.process,
                                                    TRANSCRIPT_KIND: pipeline.poster.transcript_job,
                                                    NOTE_KIND: pipeline.poster.note_job, **lifecycle.handlers()})
    while worker.run_once():  # the ticket and its transcript; the scheduled jobs are not due yet
        pass
    escalation_id = pipeline.store.db.execute("select id from escalations where ticket_id = ?",
                                              [str(ticket_id)]).fetchone()[0]
    return {"ticket": ticket_id, "escalation": escalation_id, "worker": worker}


def scheduled(store: Store, escalation_id: int) -> dict[str, datetime]:
    rows = store.db.execute("select dedupe_key, next_attempt_at from events where kind in "
                            "('reminder', 'sla_watch', 'keep_warm') and dedupe_key like ?",
                            [f"%:{escalation_id}:%"]).fetchall()
    return {key.split(":", 2)[0] + ":" + key.split(":", 2)[2]: parse_time(at) for key, at in rows}


def run_job(pipeline, dedupe_key: str, handler) -> str:
    row = pipeline.store.db.execute("select id from events where dedupe_key = ?", [dedupe_key]).fetchone()
    return handler(pipeline.store.event(row[0]))


def test_after_the_post_each_job_is_scheduled_once_at_its_time(pipeline, fake_zendesk):
    lifecycle = lifecycle_for(pipeline, keep_warm=KeepWarmTable(enabled=True, after=600, every=300, max=3))
    case = run_ticket(pipeline, lifecycle, fake_zendesk, priority="high")
    store = pipeline.store
    jobs = scheduled(store, case["escalation"])
    assert set(jobs) == {"reminder:unclaimed", "sla_watch:warn", "sla_watch:breach", "keep_warm:1"}
    posted = jobs["reminder:unclaimed"] - timedelta(seconds=1800)
    assert abs((jobs["keep_warm:1"] - posted).total_seconds() - 600) < 1
    escalation = store.escalation(case["escalation"])
    due = parse_time(escalation.sla_due_at)
    [asked] = fake_zendesk.comments(case["ticket"])
    assert due == parse_time(asked["created_at"]) + timedelta(hours=4), "high: four hours from the question"
    assert jobs["sla_watch:breach"] == due and jobs["sla_watch:warn"] == due - timedelta(minutes=30)
    # A retry of the post (or a redelivery) schedules nothing more.
    lifecycle.after_post(case["escalation"], pipeline.helpdesk.fetch_ticket(str(case["ticket"])))
    count = store.db.execute("select count(*) from events where kind in ('reminder', 'sla_watch', 'keep_warm')"
                             ).fetchone()[0]
    assert count == 4


def test_a_retry_after_the_customer_notice_keeps_the_due_time_of_the_question(pipeline, fake_zendesk):
    lifecycle = lifecycle_for(pipeline, customer_notice=CustomerNoticeTable(enabled=True))
    case = run_ticket(pipeline, lifecycle, fake_zendesk, priority="high")
    [asked, notice] = fake_zendesk.comments(case["ticket"])
    assert notice["author_id"] != CUSTOMER_ID and "will get back to you" in notice["body"]
    due = parse_time(asked["created_at"]) + timedelta(hours=4)
    assert parse_time(pipeline.store.escalation(case["escalation"]).sla_due_at) == due
    # A retry of the post (or a redelivery) reads the ticket again, Seam's notice last: the customer still waits.
    lifecycle.after_post(case["escalation"], pipeline.helpdesk.fetch_ticket(str(case["ticket"])))
    assert parse_time(pipeline.store.escalation(case["escalation"]).sla_due_at) == due


def test_switched_off_tables_schedule_nothing(pipeline, fake_zendesk):
    lifecycle = lifecycle_for(pipeline, reminders=RemindersTable(enabled=False),
                              sla_watch=SlaWatchTable(enabled=False), keep_warm=KeepWarmTable(enabled=False))
    case = run_ticket(pipeline, lifecycle, fake_zendesk)
    assert scheduled(pipeline.store, case["escalation"]) == {}


def test_a_route_with_keep_warm_off_gets_none(pipeline, fake_zendesk):
    lifecycle = lifecycle_for(pipeline, keep_warm=KeepWarmTable(enabled=True))
    [quiet_route] = read_routes((RouteTable(name="quiet", when="tagged quiet", channel="C0QUIET", keep_warm=False),))
    lifecycle.settings = replace(lifecycle.settings, routes=(quiet_route,))
    assert lifecycle.keeps_warm("quiet") is False
    assert lifecycle.keeps_warm("other") is True and lifecycle.keeps_warm(None) is True


def test_the_due_time_is_the_helpdesks_first_then_creation_plus_the_priority_target(pipeline):
    lifecycle = lifecycle_for(pipeline, sla_watch=SlaWatchTable(response_targets={"urgent": "15m"}))
    created = iso(NOW)
    due = lifecycle.due_at(Ticket(id="1", subject="s", created_at=created, sla_due_at="2026-12-01T13:00:00Z",
                                  priority="urgent"), posted=NOW)
    assert due == datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
    assert lifecycle.due_at(Ticket(id="1", subject="s", created_at=created, priority="urgent"),
                            posted=NOW) == NOW + timedelta(minutes=15)
    # Not listed, or no priority: normal's target (24 h by default, kept when only urgent is configured).
    assert lifecycle.due_at(Ticket(id="1", subject="s", created_at=created, priority="weird"),
                            posted=NOW) == NOW + timedelta(hours=24)
    assert lifecycle.due_at(Ticket(id="1", subject="s"), posted=NOW) == NOW + timedelta(hours=24)
    # Answered the day before, written to again five minutes ago: the target counts from the new message.
    followed_up = Ticket(id="1", subject="s", created_at=iso(NOW - timedelta(days=2)), priority="urgent", messages=(
        Message(author="customer", body="?", created_at=iso(NOW - timedelta(days=2))),
        Message(author="agent", body="!", created_at=iso(NOW - timedelta(days=1))),
        Message(author="customer", body="?", created_at=iso(NOW - timedelta(minutes=5)))))
    assert lifecycle.due_at(followed_up, posted=NOW) == NOW + timedelta(minutes=10)


def test_zendesks_active_sla_metric_wins_over_its_due_date():
    raw = {"due_at": "2026-12-09T00:00:00Z", "slas": {"policy_metrics": [
        {"breach_at": "2026-12-01T10:00:00Z", "stage": "achieved", "metric": "first_reply_time"},
        {"breach_at": "2026-12-01T14:00:00Z", "stage": "active", "metric": "requester_wait_time"},
        {"breach_at": "2026-12-01T13:00:00Z", "stage": "active", "metric": "next_reply_time"},
        {"breach_at": None, "stage": "paused", "metric": "agent_work_time"}]}}
    assert sla_breach_at(raw) == "2026-12-01T13:00:00Z"
    assert sla_breach_at({"slas": {"policy_metrics": []}}) is None and sla_breach_at({}) is None


def test_the_adapter_reads_the_sla_policy_into_the_tickets_due_time(pipeline, fake_zendesk):
    fake_zendesk.add_ticket(id=5, subject="s", requester_id=CUSTOMER_ID, comments=[{"body": "hi"}])
    fake_zendesk.set_slas(5, [{"breach_at": "2026-12-01T13:00:00Z", "stage": "active", "metric": "first_reply_time"}])
    assert pipeline.helpdesk.fetch_ticket("5").sla_due_at == "2026-12-01T13:00:00Z"
    assert fake_zendesk.calls_to("get_ticket")[-1].params["include"] == "users,slas"


def test_a_claimed_escalations_reminder_does_nothing_and_an_open_ones_is_recorded_once(pipeline, fake_slack,
                                                                                       fake_zendesk):
    lifecycle = lifecycle_for(pipeline)
    claimed = run_ticket(pipeline, lifecycle, fake_zendesk)
    pipeline.store.claim_escalation(claimed["escalation"], user_id=AGENT)
    assert run_job(pipeline, f"reminder:{claimed['escalation']}:unclaimed", lifecycle.reminder) == \
        "stopped: the escalation is claimed"
    waiting = run_ticket(pipeline, lifecycle, fake_zendesk)
    key = f"reminder:{waiting['escalation']}:unclaimed"
    assert run_job(pipeline, key, lifecycle.reminder) == "reminded"
    assert run_job(pipeline, key, lifecycle.reminder) == "done before"
    post = next(m for m in fake_slack.messages(CHANNEL)
                if m["metadata"]["event_payload"]["escalation_id"] == waiting["escalation"])
    reminders = [r for r in fake_slack.replies(CHANNEL, post["ts"]) if "Still unclaimed" in r["text"]]
    assert len(reminders) == 1
    # The manager step, scheduled by the first, at post + escalate_after (2 h by default).
    jobs = scheduled(pipeline.store, waiting["escalation"])
    assert (jobs["reminder:manager"] - jobs["reminder:unclaimed"]).total_seconds() == pytest.approx(5400, abs=1)
    assert run_job(pipeline, f"reminder:{waiting['escalation']}:manager", lifecycle.reminder) == "managers paged"
    assert f"<@{MANAGER}>" in fake_slack.replies(CHANNEL, post["ts"])[-1]["text"]


class ClaimedMeanwhile:
    """A channel pacer during whose wait an agent claims the escalation: a claim landing while the reminder
    waits for its turn to post (in a burst, seconds)."""

    def __init__(self, store: Store, escalation_id: int) -> None:
        self.store, self.escalation_id = store, escalation_id

    def wait(self, channel: str, *, priority: int = 0) -> float:
        self.store.claim_escalation(self.escalation_id, user_id=AGENT)
        return 0.0


def test_a_claim_made_while_the_reminder_waits_for_its_turn_stops_it(pipeline, fake_slack, fake_zendesk):
    lifecycle = lifecycle_for(pipeline)
    case = run_ticket(pipeline, lifecycle, fake_zendesk)
    lifecycle.poster = replace(pipeline.poster, pacer=ClaimedMeanwhile(pipeline.store, case["escalation"]))
    key = f"reminder:{case['escalation']}:unclaimed"
    assert run_job(pipeline, key, lifecycle.reminder) == \
        "stopped: taken or closed while the reminder waited for its turn to post"
    post = next(m for m in fake_slack.messages(CHANNEL)
                if m["metadata"]["event_payload"]["escalation_id"] == case["escalation"])
    assert not [r for r in fake_slack.replies(CHANNEL, post["ts"]) if "Still unclaimed" in r["text"]]
    assert pipeline.store.effect(key) is None and pipeline.store.effect(
        f"thread-note:{case['escalation']}:reminder-unclaimed") is None, "nothing recorded as sent"
    assert "reminder:manager" not in scheduled(pipeline.store, case["escalation"]), "no managers' page either"
    assert run_job(pipeline, key, lifecycle.reminder) == "stopped: the escalation is claimed"


def test_a_keep_warm_reply_that_landed_before_a_crash_is_not_sent_again(pipeline, fake_zendesk):
    lifecycle = lifecycle_for(pipeline, keep_warm=KeepWarmTable(enabled=True, max=1))
    case = run_ticket(pipeline, lifecycle, fake_zendesk)
    key = f"keep_warm:{case['escalation']}:1"
    assert run_job(pipeline, key, lifecycle.keep_warm) == "kept warm (1 of 1)"
    # The crash window: the reply reached Zendesk, the record still says "started", nothing bookkept.
    pipeline.store.db.execute("update effects set state = 'started', finished_at = null where key = ?", [key])
    pipeline.store.db.execute("delete from audit_log where action = 'keep_warm_sent'")
    assert run_job(pipeline, key, lifecycle.keep_warm) == "kept warm (1 of 1)"
    template = lifecycle.settings.keep_warm.template
    assert [c["body"] for c in fake_zendesk.comments(case["ticket"])].count(template) == 1
    assert json.loads(pipeline.store.effect(key)["result"]) == {"recovered": True}
    assert len([r for r in pipeline.store.audit_rows(limit=50) if r["action"] == "keep_warm_sent"]) == 1


def test_a_newer_message_joins_the_waiting_escalation_which_keeps_the_customer_warm(pipeline, fake_zendesk):
    lifecycle = lifecycle_for(pipeline, keep_warm=KeepWarmTable(enabled=True))
    case = run_ticket(pipeline, lifecycle, fake_zendesk)
    ticket = str(case["ticket"])
    httpx.put(f"{fake_zendesk.url}/api/v2/tickets/{ticket}.json", auth=fake_zendesk.auth, json={"ticket": {
        "comment": {"author_id": CUSTOMER_ID, "body": "Hello? Still waiting for a person.", "public": True}}})
    pipeline.store.record_event(helpdesk="zendesk", dedupe_key="second", ticket_id=ticket, body="{}")
    while case["worker"].run_once():
        pass
    assert pipeline.store.latest_escalation_id(f"zendesk:{ticket}") == case["escalation"], "no second escalation"
    assert run_job(pipeline, f"keep_warm:{case['escalation']}:1", lifecycle.keep_warm).startswith("kept warm (1 of")


def test_who_is_waiting_on_a_person():
    asked = Message(author="customer", body="Help?")
    assert waiting_on_person(Ticket(id="1", subject="s", messages=(asked,), status="open")) is None
    assert waiting_on_person(Ticket(id="1", subject="s", messages=(asked,), status="solved")) == "the ticket is solved"
    note = Message(author="agent", body="looking", public=False)
    bot = Message(author="bot", body="We're on it")
    assert waiting_on_person(Ticket(id="1", subject="s", messages=(asked, note, bot))) is None
    replied = Message(author="agent", body="Here is the answer")
    assert waiting_on_person(Ticket(id="1", subject="s", messages=(asked, replied))) == "an agent replied"
    assert waiting_on_person(Ticket(id="1", subject="s", messages=(replied, asked))) is None
    assert updates_on_ticket(Ticket(id="1", subject="s", messages=(asked, bot, bot)), " We're  on it ") == 2


@pytest.mark.parametrize("text", [
    '[reminders]\nunclaimed_after = "2h"\nescalate_after = "1h"\n',
    '[reminders]\nunclaimed_after = 0\n',
    '[sla_watch]\nresponse_targets = { urgent = "soon" }\n',
    '[sla_watch]\nwarn_before = "8d"\n',
    '[keep_warm]\nmax = 0\n',
    '[keep_warm]\ntemplate = " "\n',
    '[keep_warm]\nevery = "-4h"\n',
    '[keep_warm]\nenabled = 1\n',
    '[keep_warm]\nafter_hours = "4h"\n',
])
def test_nonsense_lifecycle_settings_are_one_line_errors(tmp_path, text):
    (tmp_path / "seam.toml").write_text(text)
    with pytest.raises(ConfigError) as error:
        load_settings(env={}, cwd=tmp_path)
    assert "\n" not in str(error.value)


def test_a_reminder_retried_after_it_was_recorded_still_schedules_the_managers_page(pipeline, fake_zendesk):
    lifecycle = lifecycle_for(pipeline)
    case = run_ticket(pipeline, lifecycle, fake_zendesk)
    key = f"reminder:{case['escalation']}:unclaimed"
    assert run_job(pipeline, key, lifecycle.reminder) == "reminded"
    # The crash window (a kill -9, or the store busy when the next step is queued): the reminder is recorded
    # whole, the managers' step not queued yet. The job is retried.
    pipeline.store.db.execute("delete from events where dedupe_key = ?", [f"reminder:{case['escalation']}:manager"])
    assert run_job(pipeline, key, lifecycle.reminder) == "done before"
    jobs = scheduled(pipeline.store, case["escalation"])
    assert (jobs["reminder:manager"] - jobs["reminder:unclaimed"]).total_seconds() == pytest.approx(5400, abs=1)



def test_reminders_and_updates_coming_due_together_wait_behind_new_tickets(pipeline, fake_zendesk):
    lifecycle = lifecycle_for(pipeline, keep_warm=KeepWarmTable(enabled=True))
    for _ in range(3):
        run_ticket(pipeline, lifecycle, fake_zendesk)
    store = pipeline.store
    # Time passes: every reminder, SLA step and keep-warm update is due at once (after a burst, or an outage).
    store.db.execute("update events set next_attempt_at = ? where kind in ('reminder', 'sla_watch', 'keep_warm')",
                     [iso(NOW - timedelta(days=1))])
    new, _ = store.record_event(helpdesk="zendesk", dedupe_key="a-new-ticket", ticket_id="1", body="{}")
    # Its card goes first (README: in a burst every new card before older escalations' threads).
    assert store.claim_event().id == new


def test_a_lower_keep_warm_max_stops_the_updates_already_queued(pipeline, fake_zendesk):
    lifecycle = lifecycle_for(pipeline, keep_warm=KeepWarmTable(enabled=True, max=3))
    case = run_ticket(pipeline, lifecycle, fake_zendesk)
    assert run_job(pipeline, f"keep_warm:{case['escalation']}:1", lifecycle.keep_warm) == "kept warm (1 of 3)"
    # A manager lowers `max` to 1 and restarts serve: update 2 is already queued.
    lifecycle.settings = replace(lifecycle.settings, keep_warm=KeepWarmTable(enabled=True, max=1))
    assert run_job(pipeline, f"keep_warm:{case['escalation']}:2", lifecycle.keep_warm).startswith("stopped")
    template = lifecycle.settings.keep_warm.template
    assert [c["body"] for c in fake_zendesk.comments(case["ticket"])].count(template) == 1


def test_turning_the_managers_page_off_stops_the_pages_already_queued(pipeline, fake_slack, fake_zendesk):
    lifecycle = lifecycle_for(pipeline)
    case = run_ticket(pipeline, lifecycle, fake_zendesk)
    assert run_job(pipeline, f"reminder:{case['escalation']}:unclaimed", lifecycle.reminder) == "reminded"
    # `escalate_after = 0` (never page the managers), and a restart, while the page is queued.
    lifecycle.settings = replace(lifecycle.settings, reminders=RemindersTable(escalate_after=0))
    assert run_job(pipeline, f"reminder:{case['escalation']}:manager", lifecycle.reminder).startswith("skipped")
    assert not any(f"<@{MANAGER}>" in m["text"] for m in fake_slack.messages(CHANNEL)
                   for m in fake_slack.replies(CHANNEL, m["ts"]))


def test_a_keep_warm_reply_that_landed_before_a_crash_is_found_after_the_customer_wrote_again(pipeline,
                                                                                             fake_zendesk):
    lifecycle = lifecycle_for(pipeline, keep_warm=KeepWarmTable(enabled=True, max=2))
    case = run_ticket(pipeline, lifecycle, fake_zendesk)
    ticket = str(case["ticket"])
    assert run_job(pipeline, f"keep_warm:{case['escalation']}:1", lifecycle.keep_warm) == "kept warm (1 of 2)"
    # The customer writes again after update 1 (the message joins the escalation, which still waits on a person).
    httpx.put(f"{fake_zendesk.url}/api/v2/tickets/{ticket}.json", auth=fake_zendesk.auth, json={"ticket": {
        "comment": {"author_id": CUSTOMER_ID, "body": "Any news? I am still waiting.", "public": True}}})
    pipeline.store.record_event(helpdesk="zendesk", dedupe_key="any-news", ticket_id=ticket, body="{}")
    while case["worker"].run_once():
        pass
    key = f"keep_warm:{case['escalation']}:2"
    assert run_job(pipeline, key, lifecycle.keep_warm) == "kept warm (2 of 2)"
    # The crash window: update 2 reached Zendesk, the record still says "started", nothing bookkept.
    pipeline.store.db.execute("update effects set state = 'started', finished_at = null where key = ?", [key])
    assert run_job(pipeline, key, lifecycle.keep_warm) == "kept warm (2 of 2)"
    template = lifecycle.settings.keep_warm.template
    assert [c["body"] for c in fake_zendesk.comments(case["ticket"])].count(template) == 2, "update 2 sent once"
    assert json.loads(pipeline.store.effect(key)["result"]) == {"recovered": True}


def test_a_ticket_past_its_due_time_on_arrival_is_not_said_to_be_due_now(pipeline, fake_slack, fake_zendesk):
    lifecycle = lifecycle_for(pipeline)
    ticket_id = next(_ids)
    fake_zendesk.add_ticket(id=ticket_id, subject="Order", requester_id=CUSTOMER_ID,
                            comments=[{"author_id": CUSTOMER_ID, "body": ASK}])
    overdue = datetime.now(UTC) - timedelta(hours=3)
    fake_zendesk.set_slas(ticket_id, [{"breach_at": iso(overdue), "stage": "active", "metric": "first_reply_time"}])
    pipeline.store.record_event(helpdesk="zendesk", dedupe_key=f"t{ticket_id}", ticket_id=str(ticket_id), body="{}")
    worker = Worker(store=pipeline.store, handlers={"ticket": pipeline.process,
                                                    TRANSCRIPT_KIND: pipeline.poster.transcript_job,
                                                    NOTE_KIND: pipeline.poster.note_job, **lifecycle.handlers()})
    while worker.run_once():  # the ticket, then its warning and breach, both due at once
        pass
    [post] = posts_for(fake_slack, ticket_id)
    replies = [r["text"] for r in fake_slack.replies(CHANNEL, post["ts"])]
    [warning] = [text for text in replies if text.startswith("⏳")]
    assert "due now" not in warning and "was due 3 hours ago" in warning, warning
    assert any(text.startswith("🔴 The SLA was breached") for text in replies)


def test_a_keep_warm_update_whose_first_try_failed_is_not_sent_once_an_agent_has_replied(pipeline, fake_zendesk):
    lifecycle = lifecycle_for(pipeline, keep_warm=KeepWarmTable(enabled=True, max=2))
    case = run_ticket(pipeline, lifecycle, fake_zendesk)
    key = f"keep_warm:{case['escalation']}:1"
    # The first try began and never reached Zendesk (a 500, a timeout); before the retry an agent answers there.
    pipeline.store.begin_effect(key, kind="public_reply")
    fake_zendesk.add_user(id=ZENDESK_AGENT, name="agent1", email=AGENT_EMAIL, role="agent")
    agent_replies(fake_zendesk, case)
    assert run_job(pipeline, key, lifecycle.keep_warm) == "stopped: an agent replied"
    template = lifecycle.settings.keep_warm.template
    assert template not in [c["body"] for c in fake_zendesk.comments(case["ticket"])]
    assert not scheduled(pipeline.store, case["escalation"]).get("keep_warm:2")


def test_no_keep_warm_update_or_sla_warning_after_the_customer_thanked_an_agents_reply(pipeline, fake_zendesk):
    lifecycle = lifecycle_for(pipeline, keep_warm=KeepWarmTable(enabled=True, max=2))
    case = run_ticket(pipeline, lifecycle, fake_zendesk)
    ticket = str(case["ticket"])
    # An agent answers in Zendesk (Zendesk's trigger sends no webhook for it) and the customer thanks them before
    # reconciliation reads the reply: the only event Seam gets shows the customer's thank-you last.
    fake_zendesk.add_user(id=ZENDESK_AGENT, name="agent1", email=AGENT_EMAIL, role="agent")
    agent_replies(fake_zendesk, case, "Hi Ana, your parcel is at the depot: it will be delivered tomorrow.")
    httpx.put(f"{fake_zendesk.url}/api/v2/tickets/{ticket}.json", auth=fake_zendesk.auth, json={"ticket": {
        "comment": {"author_id": CUSTOMER_ID, "body": "Thanks, that helps!", "public": True}}}).raise_for_status()
    pipeline.store.record_event(helpdesk="zendesk", dedupe_key="thanks", ticket_id=ticket, body="{}")
    while case["worker"].run_once():
        pass
    # The thank-you shows the ticket answered in the helpdesk: the card is closed, as for the agent's reply itself.
    assert pipeline.store.escalation(case["escalation"]).state == "answered"
    assert run_job(pipeline, f"reminder:{case['escalation']}:unclaimed", lifecycle.reminder).startswith("stopped")
    assert run_job(pipeline, f"keep_warm:{case['escalation']}:1", lifecycle.keep_warm).startswith("stopped")
    template = lifecycle.settings.keep_warm.template
    assert template not in [c["body"] for c in fake_zendesk.comments(case["ticket"])]
    assert run_job(pipeline, f"sla_watch:{case['escalation']}:warn", lifecycle.sla_watch).startswith("stopped")


def escalated_with_sla(pipeline, lifecycle: Lifecycle, zendesk: FakeZendesk, due: datetime) -> tuple[int, int]:
    """A ticket whose Zendesk SLA policy breaches at `due`, escalated: its id and the escalation's."""
    ticket_id = next(_ids)
    zendesk.add_ticket(id=ticket_id, subject="Order", requester_id=CUSTOMER_ID,
                       comments=[{"author_id": CUSTOMER_ID, "body": ASK}])
    zendesk.set_slas(ticket_id, [{"breach_at": iso(due), "stage": "active", "metric": "first_reply_time"}])
    pipeline.store.record_event(helpdesk="zendesk", dedupe_key=f"t{ticket_id}", ticket_id=str(ticket_id), body="{}")
    worker = Worker(store=pipeline.store, handlers={"ticket": pipeline.process,
                                                    TRANSCRIPT_KIND: pipeline.poster.transcript_job,
                                                    NOTE_KIND: pipeline.poster.note_job, **lifecycle.handlers()})
    while worker.run_once():
        pass
    return ticket_id, pipeline.store.db.execute("select id from escalations where ticket_id = ?",
                                                [str(ticket_id)]).fetchone()[0]


def test_a_due_time_the_helpdesk_moves_later_moves_the_warning_and_the_breach(pipeline, fake_slack, fake_zendesk):
    lifecycle = lifecycle_for(pipeline)
    first = datetime.now(UTC) + timedelta(hours=1)
    ticket_id, escalation_id = escalated_with_sla(pipeline, lifecycle, fake_zendesk, first)
    # The ticket's priority is lowered in Zendesk: its SLA policy now breaches four hours later.
    moved = first + timedelta(hours=4)
    fake_zendesk.set_slas(ticket_id, [{"breach_at": iso(moved), "stage": "active", "metric": "first_reply_time"}])
    # The steps come due at the old times: neither warns of, nor records, a breach four hours away.
    assert run_job(pipeline, f"sla_watch:{escalation_id}:warn", lifecycle.sla_watch).startswith("moved")
    assert run_job(pipeline, f"sla_watch:{escalation_id}:breach", lifecycle.sla_watch).startswith("moved")
    escalation = pipeline.store.escalation(escalation_id)
    assert escalation.sla_warned_at is None and escalation.sla_breached_at is None
    assert parse_time(escalation.sla_due_at) == parse_time(iso(moved)), "the card shows the new due time"
    [post] = posts_for(fake_slack, ticket_id)
    assert not [r for r in fake_slack.replies(CHANNEL, post["ts"]) if r["text"].startswith(("⏳", "🔴"))]
    # Both steps are queued again for the new time, and run then as before.
    stamp = assert_requeued_for(pipeline, escalation_id, moved)
    assert run_job(pipeline, f"sla_watch:{escalation_id}:warn:due{stamp}", lifecycle.sla_watch) == "SLA warned"
    [warning] = [r["text"] for r in fake_slack.replies(CHANNEL, post["ts"]) if r["text"].startswith("⏳")]
    assert "is due in 5 hours" in warning, warning


def assert_requeued_for(pipeline, escalation_id: int, due: datetime) -> int:
    """Both SLA steps are queued for the moved due time (the warning 30 minutes before it); the time's stamp, which
    their dedupe keys carry."""
    pending = dict(pipeline.store.db.execute("select dedupe_key, next_attempt_at from events where kind = 'sla_watch'"
                                             " and dedupe_key like '%:due%'").fetchall())
    stamp = int(parse_time(iso(due)).timestamp())
    assert {key: parse_time(at) for key, at in pending.items()} == {
        f"sla_watch:{escalation_id}:warn:due{stamp}": parse_time(iso(due - timedelta(minutes=30))),
        f"sla_watch:{escalation_id}:breach:due{stamp}": parse_time(iso(due))}
    return stamp


def test_a_due_time_the_helpdesk_moves_earlier_is_the_one_the_warning_gives(pipeline, fake_slack, fake_zendesk):
    lifecycle = lifecycle_for(pipeline)
    ticket_id, escalation_id = escalated_with_sla(pipeline, lifecycle, fake_zendesk,
                                                  datetime.now(UTC) + timedelta(hours=3))
    # Raised to urgent in Zendesk: due in ten minutes now. The warning says so, not "due in 3 hours".
    sooner = datetime.now(UTC) + timedelta(minutes=10)
    fake_zendesk.set_slas(ticket_id, [{"breach_at": iso(sooner), "stage": "active", "metric": "first_reply_time"}])
    assert run_job(pipeline, f"sla_watch:{escalation_id}:warn", lifecycle.sla_watch) == "SLA warned"
    [post] = posts_for(fake_slack, ticket_id)
    [warning] = [r["text"] for r in fake_slack.replies(CHANNEL, post["ts"]) if r["text"].startswith("⏳")]
    assert "is due in 10 minutes" in warning, warning
    assert parse_time(pipeline.store.escalation(escalation_id).sla_due_at) == parse_time(iso(sooner))


def test_a_due_time_moved_earlier_is_warned_of_in_time_once_an_event_shows_it(pipeline, fake_slack, fake_zendesk):
    lifecycle = lifecycle_for(pipeline)
    ticket_id, escalation_id = escalated_with_sla(pipeline, lifecycle, fake_zendesk,
                                                  datetime.now(UTC) + timedelta(hours=6))
    # Raised to urgent in Zendesk: due in two hours now. Reconciliation reads the update (no new comment).
    sooner = datetime.now(UTC) + timedelta(hours=2)
    fake_zendesk.set_slas(ticket_id, [{"breach_at": iso(sooner), "stage": "active", "metric": "first_reply_time"}])
    event_id, _ = pipeline.store.record_event(helpdesk="zendesk", dedupe_key=f"zendesk:reconcile:{ticket_id}:1",
                                              ticket_id=str(ticket_id), body="{}")
    Worker(store=pipeline.store, handlers={"ticket": pipeline.process}).run_once()
    assert pipeline.store.event(event_id).outcome.startswith("duplicate")
    assert parse_time(pipeline.store.escalation(escalation_id).sla_due_at) == parse_time(iso(sooner))
    stamp = assert_requeued_for(pipeline, escalation_id, sooner)
    assert run_job(pipeline, f"sla_watch:{escalation_id}:warn:due{stamp}", lifecycle.sla_watch) == "SLA warned"
    # The step queued for the old time finds it done.
    assert run_job(pipeline, f"sla_watch:{escalation_id}:warn", lifecycle.sla_watch) == "done before"
    [post] = posts_for(fake_slack, ticket_id)
    assert len([r for r in fake_slack.replies(CHANNEL, post["ts"]) if r["text"].startswith("⏳")]) == 1
