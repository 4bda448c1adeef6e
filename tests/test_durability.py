"""Nothing lost, nothing twice: crashes, storms of 429s and 500s, lost webhooks, redeliveries and dead jobs,
against the real `serve` process and the loopback fakes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bot.helpdesk.base import Updates
from bot.helpdesk.zendesk.adapter import ZendeskAdapter
from bot.jobs.reconcile import Reconciler
from bot.store import Store
from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.posts import posts_for
from tests.support.server import UNPACED, SeamServer, seam_env
from tests.support.services import build_services, drain
from tests.support.signing import slack_headers, zendesk_headers
from tests.support.waiting import wait_until


def start(slack, zendesk, tmp: Path, **env) -> SeamServer:
    config = tmp / "seam.toml"
    config.write_text(UNPACED)
    return SeamServer(seam_env(slack=slack, zendesk=zendesk, tmp=tmp, SEAM_CONFIG=str(config), **env),
                      tmp / "serve.log").start()


def human_tickets(zendesk, first: int, count: int) -> list[int]:
    ids = list(range(first, first + count))
    for ticket_id in ids:
        zendesk.add_ticket(id=ticket_id, subject=f"Order {ticket_id}", requester_id=CUSTOMER_ID,
                           comments=[{"author_id": CUSTOMER_ID, "body": "Please put me through to a real person."}])
    return ids


def top_level_posts(slack, ticket_ids) -> dict[int, int]:
    wanted = {str(t) for t in ticket_ids}
    counts = dict.fromkeys(ticket_ids, 0)
    for message in slack.messages(CHANNEL):
        ticket = ((message.get("metadata") or {}).get("event_payload") or {}).get("ticket_id")
        if ticket in wanted:
            counts[int(ticket)] += 1
    return counts


def test_sigkill_in_the_middle_of_a_burst_loses_no_acknowledged_ticket_and_doubles_none(
        fake_slack, fake_zendesk, tmp_path):
    ids = human_tickets(fake_zendesk, 1000, 100)
    server = start(fake_slack, fake_zendesk, tmp_path)
    fake_zendesk.set_delay("get_ticket", 0.05)  # keep work in flight when the kill lands
    acknowledged: list[int] = []

    def send(ticket_id: int) -> None:
        body = json.dumps({"ticket_id": ticket_id}).encode()
        try:
            response = httpx.post(server.url + "/webhooks/zendesk", content=body, headers=zendesk_headers(body),
                                  timeout=5)
        except httpx.HTTPError:
            return
        if response.status_code in (200, 202):
            acknowledged.append(ticket_id)

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(send, t) for t in ids]
        wait_until(lambda: len(acknowledged) >= 40, what="40 acknowledged webhooks")
        server.process.send_signal(signal.SIGKILL)
        for future in futures:
            future.result()
    server.process.wait()
    assert 40 <= len(acknowledged) < 100, "the kill landed mid-burst"
    fake_zendesk.set_delay("get_ticket", 0)
    server.start()
    try:
        wait_until(lambda: all(n >= 1 for t, n in top_level_posts(fake_slack, acknowledged).items()), timeout=60,
                   what="every acknowledged ticket posted")
        time.sleep(1.0)
        counts = top_level_posts(fake_slack, ids)
        assert all(counts[t] == 1 for t in acknowledged), {t: n for t, n in counts.items() if n != 1}
        assert max(counts.values()) == 1, "nothing is ever posted twice"
    finally:
        assert server.stop() == 0, server.log()


def test_storms_of_slack_429s_and_zendesk_500s_lose_nothing_and_double_nothing(fake_slack, fake_zendesk, tmp_path):
    ids = human_tickets(fake_zendesk, 2000, 20)
    server = start(fake_slack, fake_zendesk, tmp_path)
    try:
        fake_slack.fail("chat.postMessage", status=429, times=6, headers={"Retry-After": "1"})
        fake_zendesk.fail("get_ticket", status=500, times=6)
        for ticket_id in ids:
            assert server.post_webhook({"ticket_id": ticket_id}).status_code == 202
        wait_until(lambda: all(n == 1 for n in top_level_posts(fake_slack, ids).values()), timeout=90,
                   what="all 20 posted")
        time.sleep(1.0)
        assert set(top_level_posts(fake_slack, ids).values()) == {1}
        replies = [m for m in fake_slack.messages(CHANNEL) if m["ts"] in
                   {p["ts"] for t in ids for p in posts_for(fake_slack, t)}]
        assert all(len(m["replies"]) == 1 for m in replies), "each transcript posted once"
    finally:
        assert server.stop() == 0, server.log()


def test_sigterm_releases_work_in_flight_and_the_next_start_finishes_it(fake_slack, fake_zendesk, tmp_path):
    [ticket_id] = human_tickets(fake_zendesk, 3000, 1)
    server = start(fake_slack, fake_zendesk, tmp_path)
    fake_zendesk.set_delay("get_ticket", 3.0)
    assert server.post_webhook({"ticket_id": ticket_id}).status_code == 202
    wait_until(lambda: fake_zendesk.calls_to("get_ticket"), what="processing to start")
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 25
    fake_zendesk.set_delay("get_ticket", 0)
    server.start()
    try:
        wait_until(lambda: posts_for(fake_slack, ticket_id), timeout=30, what="the post after restart")
        time.sleep(0.5)
        assert len(posts_for(fake_slack, ticket_id)) == 1
    finally:
        assert server.stop() == 0, server.log()


def test_a_webhook_that_never_arrived_is_picked_up_by_reconciliation(pipeline, fake_slack, fake_zendesk):
    [ticket_id] = human_tickets(fake_zendesk, 4000, 1)
    woken = []
    reconciler = Reconciler(store=pipeline.store, helpdesk=pipeline.helpdesk, interval=300,
                            notify=lambda: woken.append(1))
    assert reconciler.run_once() == 1 and woken
    from bot.jobs.worker import Worker

    worker = Worker(store=pipeline.store, handlers={"ticket": pipeline.process})
    while worker.run_once():
        pass
    assert len(posts_for(fake_slack, ticket_id)) == 1
    # The next round sees nothing new, and a late webhook for the same comment changes nothing.
    assert reconciler.run_once() == 0
    pipeline.store.record_event(helpdesk="zendesk", dedupe_key="late-webhook", ticket_id=str(ticket_id), body="{}")
    while worker.run_once():
        pass
    assert len(posts_for(fake_slack, ticket_id)) == 1
    assert fake_zendesk.calls_to("incremental_tickets")


def test_what_reconciliation_finds_after_an_outage_does_not_hold_back_new_webhooks(pipeline, fake_zendesk):
    human_tickets(fake_zendesk, 7000, 40)  # updated while the webhooks were lost
    reconciler = Reconciler(store=pipeline.store, helpdesk=pipeline.helpdesk, interval=300, notify=lambda: None)
    assert reconciler.run_once() == 40
    [fresh] = human_tickets(fake_zendesk, 7100, 1)
    webhook, _ = pipeline.store.record_event(helpdesk="zendesk", dedupe_key="a-webhook-now", ticket_id=str(fresh),
                                             body="{}")
    # The customer who just wrote is not queued behind every update of the outage: the webhook runs first, and
    # what reconciliation found follows.
    claimed = [pipeline.store.claim_event() for _ in range(3)]
    assert claimed[0].id == webhook
    assert [e.ticket_id for e in claimed[1:]] == ["7000", "7001"]

def test_a_reconciliation_cut_short_goes_on_where_it_stopped(pipeline, fake_zendesk, monkeypatch):
    from bot.helpdesk.zendesk import adapter as zendesk_adapter

    ids = human_tickets(fake_zendesk, 6000, 7)
    # Two tickets a page and one page a call: every check reads only part of what changed.
    fake_zendesk.incremental_page_size = 2
    monkeypatch.setattr(zendesk_adapter, "MAX_PAGES", 1)
    later = time.time() + 3600  # the tickets are an hour old: past Zendesk's "not in the last minute" margin
    reconciler = Reconciler(store=pipeline.store, helpdesk=pipeline.helpdesk, interval=7200, notify=lambda: None,
                            clock=lambda: later)
    assert reconciler.run_once() == 2
    assert pipeline.helpdesk.updated_since(0).resume_from is not None
    for _ in range(10):
        reconciler.run_once()
    recorded = {row["ticket_id"] for row in pipeline.store.db["events"].rows}
    assert recorded >= {str(t) for t in ids}, "nothing past the cut is lost"
    fake_zendesk.incremental_page_size = 1000
    assert reconciler.run_once() == 0 and pipeline.store.get_setting("reconcile_since") == later


class CrowdedSecond:
    """A helpdesk listing oldest first whose second CROWDED holds more ticket updates than one call reads (a bulk
    update): a listing from that second or before is cut there; one update comes later, at LATER."""

    name = "zendesk"
    CROWDED, LATER = 1_780_000_000, 1_780_000_600

    def __init__(self) -> None:
        self.asked: list[float] = []

    def updated_since(self, since: float) -> Updates:
        self.asked.append(since)
        stamp = lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
        if since < self.CROWDED + 1:
            return Updates([(str(n), stamp(self.CROWDED)) for n in range(100)], resume_from=self.CROWDED)
        return Updates([("later", stamp(self.LATER))] if since <= self.LATER else [])


def test_a_reconciliation_stuck_at_one_crowded_second_moves_past_it(tmp_path, caplog):
    helpdesk = CrowdedSecond()
    store = Store(str(tmp_path / "seam.db"))
    now = CrowdedSecond.LATER + 3600
    reconciler = Reconciler(store=store, helpdesk=helpdesk, interval=7200, notify=lambda: None, clock=lambda: now)

    for _ in range(3):
        reconciler.run_once()

    recorded = {row["ticket_id"] for row in store.db["events"].rows}
    assert "later" in recorded, "an update after the crowded second is still reconciled"
    assert any("more ticket updates at one instant" in r.getMessage() for r in caplog.records)
    assert helpdesk.asked[-1] > CrowdedSecond.CROWDED


class CrowdedInstant:
    """A newest-first listing (as Front's events) whose instant CROWDED holds more updates than one listing reads:
    a listing reaching back to it is cut there; one update comes earlier, at EARLIER."""

    name = "front"
    EARLIER, CROWDED, NOW = 1_780_000_000.25, 1_780_000_600.5, 1_780_003_600.0

    def __init__(self) -> None:
        self.asked: list[tuple[float, float | None]] = []

    def updated_since(self, since: float, *, before: float | None = None) -> Updates:
        self.asked.append((since, before))
        if before is None:  # the regular window, after the crowded instant: nothing new
            return Updates()
        if before >= self.CROWDED:
            return Updates([(str(n), "crowded") for n in range(100)], unread_before=self.CROWDED)
        return Updates([("earlier", "earlier")] if since <= self.EARLIER <= before else [])


def test_a_backlog_stuck_at_one_crowded_instant_reads_back_past_it(tmp_path, caplog):
    from bot.jobs.reconcile import BACKLOG_KEY

    helpdesk = CrowdedInstant()
    store = Store(str(tmp_path / "seam.db"))
    store.set_setting(BACKLOG_KEY, {"helpdesk": "front", "from": CrowdedInstant.EARLIER - 60,
                                    "to": CrowdedInstant.CROWDED}, actor="seam")
    reconciler = Reconciler(store=store, helpdesk=helpdesk, interval=300, notify=lambda: None,
                            clock=lambda: CrowdedInstant.NOW)

    for _ in range(3):
        reconciler.run_once()

    recorded = {row["ticket_id"] for row in store.db["events"].rows}
    assert "earlier" in recorded, "the backlog goes on before the crowded instant"
    assert any("cannot read back past" in r.getMessage() for r in caplog.records)


def test_reconciliation_runs_inside_serve_on_its_interval(fake_slack, fake_zendesk, tmp_path):
    [ticket_id] = human_tickets(fake_zendesk, 5000, 1)
    config = tmp_path / "seam.toml"
    config.write_text("[slack]\nposts_per_second = 100\n[reconcile]\ninterval_seconds = 10\n")
    server = SeamServer(seam_env(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path, SEAM_CONFIG=str(config)),
                        tmp_path / "serve.log").start()
    try:
        wait_until(lambda: posts_for(fake_slack, ticket_id), timeout=30, what="the missed ticket, reconciled")
    finally:
        assert server.stop() == 0, server.log()


def test_redelivered_slack_events_are_handled_once(fake_slack, fake_zendesk, tmp_path):
    server = start(fake_slack, fake_zendesk, tmp_path)
    try:
        body = json.dumps({"token": "t", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
                           "event_id": "Ev0123ABC", "event_time": int(time.time()),
                           "event": {"type": "app_home_opened", "user": "U1", "channel": "D1", "tab": "home"}}).encode()
        for retry in (None, "1", "2"):
            headers = slack_headers(body, content_type="application/json")
            if retry:
                headers |= {"X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_timeout"}
            assert server.http.post("/slack/events", content=body, headers=headers).status_code == 200
        time.sleep(1.0)
        assert len(fake_slack.calls_to("views.publish")) == 1
    finally:
        assert server.stop() == 0, server.log()


def test_dead_jobs_are_listed_and_retried_by_hand(fake_slack, fake_zendesk, tmp_path):
    [ticket_id] = human_tickets(fake_zendesk, 6000, 1)
    env = seam_env(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path)
    store = Store(env["DATABASE_PATH"])
    event_id, _ = store.record_event(helpdesk="zendesk", dedupe_key="d1", ticket_id=str(ticket_id), body="{}")
    store.db.execute("update events set state = 'dead', attempts = 5, last_error = 'HelpdeskError: 500' where id = ?",
                     [event_id])

    def jobs(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "bot", "jobs", *args], env=env, capture_output=True,
                              text=True, timeout=60, check=True).stdout

    listing = jobs()
    assert "dead 1" in listing and f"dead job {event_id}: ticket {ticket_id}, 5 attempts" in listing
    assert json.loads(jobs("--format", "json"))["dead"] == 1
    assert jobs("--retry", str(event_id)).startswith("put 1 dead job(s) back")
    config = tmp_path / "seam.toml"
    config.write_text(UNPACED)
    server = SeamServer({**env, "SEAM_CONFIG": str(config)}, tmp_path / "serve.log").start()
    try:
        wait_until(lambda: posts_for(fake_slack, ticket_id), what="the retried job's post")
        health = server.http.get("/healthz").json()
        assert health["queue"]["dead"] == 0
    finally:
        assert server.stop() == 0, server.log()


@pytest.mark.parametrize("text", ["[slack]\nposts_per_second = 0\n", "[slack]\npost_burst = 0\n",
                                  "[reconcile]\ninterval_seconds = 3\n"])
def test_pacing_and_reconciliation_settings_are_validated(tmp_path, text):
    from bot.config import ConfigError, load_settings

    (tmp_path / "seam.toml").write_text(text)
    with pytest.raises(ConfigError):
        load_settings(env={}, cwd=tmp_path)


def test_the_zendesk_adapter_reads_updates_since_a_time_across_pages(fake_zendesk):
    human_tickets(fake_zendesk, 7000, 5)
    adapter = ZendeskAdapter(httpx.Client(base_url=fake_zendesk.url, auth=fake_zendesk.auth), webhook_secret="s",
                             agent_url="https://acme.zendesk.com")
    found = adapter.updated_since(time.time() - 600)
    assert {t for t, _ in found} >= {str(n) for n in range(7000, 7005)}
    assert adapter.updated_since(time.time() + 3600) == []


def test_a_reply_interrupted_by_a_crash_is_offered_again_with_retry(fake_slack, fake_zendesk, tmp_path):
    [ticket_id] = human_tickets(fake_zendesk, 8000, 1)
    server = start(fake_slack, fake_zendesk, tmp_path)
    try:
        assert server.post_webhook({"ticket_id": ticket_id}).status_code == 202
        [post] = wait_until(lambda: posts_for(fake_slack, ticket_id), what="the escalation")
        # An agent can only click once the card's ts is recorded, which follows Slack's answer by a moment.
        store = Store(server.env["DATABASE_PATH"])
        wait_until(lambda: store.db.execute("select ts from escalations where ticket_id = ?",
                                            [str(ticket_id)]).fetchone() == (post["ts"],), what="the card's record")
    finally:
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
    # The crash landed between 'sending' and the helpdesk's answer.
    Store(server.env["DATABASE_PATH"]).db.execute("update escalations set state = 'sending', owner = 'U1', "
                                                  "sent_text = 'Hello' where ticket_id = ?", [str(ticket_id)])
    server.start()
    try:
        message = wait_until(lambda: next((m for m in fake_slack.messages(CHANNEL) if m["ts"] == post["ts"]
                                           and "interrupted by a restart" in json.dumps(m["blocks"])), None),
                             what="the message offering Retry")
        assert "Retry" in json.dumps(message["blocks"])
    finally:
        assert server.stop() == 0, server.log()


# -- a post that landed, then its answer was lost ---------------------------------------------------------------

@pytest.mark.parametrize("failure", [{"status": 500}, {"status": 503}, {"drop": True}], ids=["500", "503", "dropped"])
@pytest.mark.parametrize("post", ["card", "transcript"])
def test_a_post_slack_made_before_its_answer_was_lost_shows_once(fake_slack, fake_zendesk, tmp_path, post, failure):
    # Slack posted it, then a gateway gave up or the connection dropped. Sent again inside the call, it would
    # show twice; the job's own retry looks for it by its metadata first, and finds it.
    services = build_services(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path)
    [ticket_id] = human_tickets(fake_zendesk, 5000, 1)
    event_id, _ = services.store.record_event(helpdesk="zendesk", dedupe_key="t5000:new", ticket_id=str(ticket_id),
                                              body="{}")
    if post == "transcript":
        assert drain(services, limit=1) == 1  # the card; its transcript is a job of its own
    fake_slack.fail("chat.postMessage", applied=True, **failure)
    drain(services)
    [card] = posts_for(fake_slack, ticket_id)
    failed = list(services.store.db["events"].rows_where("last_error is not null"))
    assert len(failed) == 1 and failed[0]["state"] == "pending", "the job failed once and waits to retry"
    services.store.db.execute("update events set next_attempt_at = '2000-01-01T00:00:00.000000Z' where id = ?",
                              [failed[0]["id"]])
    drain(services)

    assert services.store.event(event_id).state == "done"
    assert [p["ts"] for p in posts_for(fake_slack, ticket_id)] == [card["ts"]]
    assert len(fake_slack.replies(CHANNEL, card["ts"])) == 1, "its transcript, once"
    assert len(fake_slack.calls_to("chat.postMessage")) == 2, "the card and the transcript, each sent once"


def test_other_calls_are_still_retried_inside_the_call(fake_slack):
    # Only a once-only post is left to the job's retry: a plain line, or a read, is simply tried again.
    from bot.slack.client import slack_client

    client = slack_client(token=fake_slack.token, base_url=fake_slack.url + "/")
    fake_slack.fail("chat.postMessage", status=503)
    assert client.chat_postMessage(channel=CHANNEL, text="Thresholds changed")["ok"]
    fake_slack.fail("conversations.history", drop=True)
    assert client.conversations_history(channel=CHANNEL)["ok"]
    assert [len(fake_slack.calls_to(m)) for m in ("chat.postMessage", "conversations.history")] == [2, 2]
