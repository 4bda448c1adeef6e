"""An outage of Slack or the helpdesk costs no escalation: a job failing because the service is down
(bot.errors `transient`) waits it out in the queue, retried every few minutes for up to a day (bot.store
`fail_event`, `MAX_BACKOFF`, `MAX_OUTAGE`), and posts once when the service is back; a job failing for a reason
of its own still dies after MAX_ATTEMPTS, visibly.

The errors are the real ones: slack_sdk's client against the fake Slack Web API, the Zendesk adapter against the
fake Zendesk, connections to a port nobody listens on. Minutes of backoff are skipped by making the job due in
the database, not by sleeping.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from sqlite_utils import Database

from bot.errors import transient
from bot.helpdesk.base import HelpdeskError
from bot.helpdesk.zendesk.adapter import ZendeskAdapter
from bot.jobs.worker import Worker
from bot.models import Event, EventState
from bot.slack.client import SeamWebClient
from bot.slack.poster import NOTE_KIND, TRANSCRIPT_KIND, _slack_down
from bot.store import MAX_ATTEMPTS, MAX_BACKOFF, MAX_OUTAGE, MIGRATIONS, Store
from bot.text import iso, parse_time
from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.posts import posts_for


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bare_slack(url: str, token: str = "xoxb-test") -> SeamWebClient:
    """Seam's Slack client without slack_sdk's own retries: each call meets the failure once, as a job attempt
    does once those retries have run out (they would sleep seconds per attempt here)."""
    return SeamWebClient(token=token, base_url=url, retry_handlers=[])


def slack_error(fake_slack, **failure) -> SlackApiError:
    fake_slack.fail("chat.postMessage", **failure)
    with pytest.raises(SlackApiError) as caught:
        bare_slack(fake_slack.url + "/", fake_slack.token).chat_postMessage(channel=CHANNEL, text="hello")
    return caught.value


def zendesk(url: str, fake_zendesk) -> ZendeskAdapter:
    return ZendeskAdapter(httpx.Client(base_url=url, auth=fake_zendesk.auth), webhook_secret="s",
                          agent_url="https://acme.zendesk.com", retry_deadline=0.2)


def helpdesk_error(adapter: ZendeskAdapter) -> HelpdeskError:
    with pytest.raises(HelpdeskError) as caught:
        adapter.fetch_ticket("4242")
    return caught.value


def add_job(store: Store, key: str = "k", *, kind: str = "ticket") -> int:
    event_id, created = store.record_event(helpdesk="zendesk", dedupe_key=key, ticket_id="1", body="{}", kind=kind)
    assert created
    return event_id


def make_due(store: Store, event_id: int) -> None:
    store.db.execute("update events set next_attempt_at = ? where id = ?", [iso(datetime.now(UTC)), event_id])


def due_since(store: Store, event_id: int, ago: timedelta) -> None:
    store.db.execute("update events set due_at = ? where id = ?", [iso(datetime.now(UTC) - ago), event_id])


def wait_seconds(event: Event) -> float:
    """How long after now the job's next try is."""
    return (parse_time(event.next_attempt_at) - datetime.now(UTC)).total_seconds()


# -- which failures are an outage ------------------------------------------------------------------------------

def test_slack_down_throttling_or_unreachable_is_transient_and_a_refusal_of_the_call_is_not(fake_slack):
    assert transient(slack_error(fake_slack, status=503))
    assert transient(slack_error(fake_slack, status=500))
    assert transient(slack_error(fake_slack, status=429, headers={"Retry-After": "1"}))
    # Slack says it is down in the body of a 200 as well.
    assert transient(slack_error(fake_slack, status=200, body={"ok": False, "error": "service_unavailable"}))
    refused = slack_error(fake_slack, status=200, body={"ok": False, "error": "channel_not_found"})
    assert not transient(refused)
    assert not transient(slack_error(fake_slack, status=400, body={"ok": False, "error": "invalid_blocks"}))
    # Nobody listening: urllib's URLError, after the connection failed.
    with pytest.raises(OSError) as unreachable:
        bare_slack(f"http://127.0.0.1:{unused_port()}/").chat_postMessage(channel=CHANNEL, text="hello")
    assert transient(unreachable.value)
    # The card sweep's own rule is the same rule (and any failure without Slack's answer stops its round).
    assert _slack_down(slack_error(fake_slack, status=503)) and not _slack_down(refused)
    assert _slack_down(ValueError("no answer at all"))


def test_a_helpdesk_down_or_unreachable_is_transient_and_its_refusals_are_not(fake_zendesk):
    adapter = zendesk(fake_zendesk.url, fake_zendesk)
    fake_zendesk.fail("get_ticket", status=503, times=50)
    down = helpdesk_error(adapter)
    assert down.status == 503 and transient(down)
    fake_zendesk.clear_failures()
    fake_zendesk.fail("get_ticket", status=429, times=50, headers={"Retry-After": "0"})
    assert transient(helpdesk_error(adapter))
    fake_zendesk.clear_failures()
    missing = helpdesk_error(adapter)  # no such ticket: 404
    assert missing.status == 404 and not transient(missing)
    # The connection never opened: no status, the transport error behind it says why.
    unreachable = helpdesk_error(zendesk(f"http://127.0.0.1:{unused_port()}", fake_zendesk))
    assert unreachable.status is None and transient(unreachable)
    assert not transient(HelpdeskError("Zendesk ticket 1 came back without a ticket object"))


def test_a_bug_is_permanent_and_a_timeout_is_transient():
    assert not transient(ValueError("malformed body"))
    assert not transient(KeyError("escalation_id"))
    assert not transient(FileNotFoundError("knowledge/missing.md"))
    assert transient(TimeoutError("timed out"))
    assert transient(ConnectionResetError(104, "Connection reset by peer"))
    try:  # a failure wrapped by the code that met it: judged by what it was raised from
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as exc:
            raise RuntimeError("could not post the card") from exc
    except RuntimeError as wrapped:
        assert transient(wrapped)


# -- the queue waits an outage out -----------------------------------------------------------------------------

def test_transient_failures_keep_a_job_pending_with_capped_backoff_until_it_has_waited_a_day(tmp_path: Path):
    store = Store(tmp_path / "seam.db")
    job = add_job(store)
    waits = []
    for _ in range(MAX_ATTEMPTS + 5):
        assert store.claim_event().id == job
        assert store.fail_event(job, error="SlackApiError: 503", transient=True) == EventState.PENDING
        waits.append(wait_seconds(store.event(job)))
        make_due(store, job)
    assert waits == pytest.approx([5, 20, 80, 320] + [MAX_BACKOFF] * (MAX_ATTEMPTS + 1), abs=2)
    assert MAX_BACKOFF == 320
    event = store.event(job)
    assert (event.state, event.attempts, event.transient_failures) == ("pending", MAX_ATTEMPTS + 5, MAX_ATTEMPTS + 5)
    assert store.queue_stats()["retrying"] == 1

    # Still failing just under a day after it came due: retried. Past a day: dead, and says why.
    due_since(store, job, MAX_OUTAGE - timedelta(minutes=10))
    assert store.claim_event().id == job
    assert store.fail_event(job, error="SlackApiError: 503", transient=True) == EventState.PENDING
    due_since(store, job, MAX_OUTAGE + timedelta(minutes=1))
    make_due(store, job)
    assert store.claim_event().id == job
    assert store.fail_event(job, error="SlackApiError: 503", transient=True) == EventState.DEAD
    [dead] = store.dead_events()
    assert dead.id == job and "while a service was down" in dead.last_error and "503" in dead.last_error


def test_after_an_outage_a_failure_of_the_jobs_own_still_gets_its_five_tries(tmp_path: Path):
    store = Store(tmp_path / "seam.db")
    job = add_job(store)
    for _ in range(8):  # the outage
        store.claim_event()
        store.fail_event(job, error="HelpdeskError: 502", transient=True)
        make_due(store, job)
    states = []
    for _ in range(MAX_ATTEMPTS):  # then the job fails for its own reason
        assert store.claim_event().id == job
        states.append(store.fail_event(job, error="ValueError: malformed", retry_in=0))
    assert states == ["pending"] * (MAX_ATTEMPTS - 1) + ["dead"]
    # Put back by hand, it has a fresh count and a fresh day.
    assert store.retry_dead(job) == 1
    event = store.event(job)
    assert (event.state, event.attempts, event.transient_failures) == ("pending", 0, 0)
    assert store.queue_stats()["oldest_pending_seconds"] < 60


def test_a_job_that_waited_out_an_outage_is_not_taken_for_a_crash_loop(tmp_path: Path):
    store = Store(tmp_path / "seam.db")
    job = add_job(store)
    for _ in range(MAX_ATTEMPTS + 2):
        store.claim_event()
        store.fail_event(job, error="SlackApiError: 503", transient=True, retry_in=0)
    for crash in range(MAX_ATTEMPTS):  # a crash while it runs, at every start
        assert store.claim_event().id == job
        assert store.recover_interrupted() == 1
        assert store.event(job).state == ("dead" if crash == MAX_ATTEMPTS - 1 else "pending")
    assert "interrupted by a crash or kill on each of its last 5 attempts" in store.event(job).last_error


def test_jobs_queued_before_the_upgrade_count_no_transient_failure(tmp_path: Path):
    path = tmp_path / "seam.db"
    db = Database(sqlite3.connect(path))
    MIGRATIONS.apply(db, stop_before="m021_job_transient_failures")
    now = iso(datetime.now(UTC))
    db["events"].insert({"kind": "ticket", "helpdesk": "zendesk", "dedupe_key": "old", "ticket_id": "1",
                         "received_at": now, "due_at": now, "state": "pending", "attempts": MAX_ATTEMPTS - 1,
                         "next_attempt_at": now})
    db.conn.close()
    store = Store(path)
    applied = [m.name for m in MIGRATIONS.applied(store.db)]
    assert applied.index("m021_job_transient_failures") == applied.index("m020_job_due_at") + 1
    job = store.claim_event()
    assert job.transient_failures == 0
    assert store.fail_event(job.id, error="ValueError: bad", retry_in=0) == EventState.DEAD, "as before the upgrade"


def test_the_worker_retries_a_job_past_five_slack_503s_logs_quietly_and_posts_when_slack_is_back(
        fake_slack, tmp_path: Path, caplog):
    store = Store(tmp_path / "seam.db")
    slack = bare_slack(fake_slack.url + "/", fake_slack.token)
    worker = Worker(store=store, handlers={"announce": lambda event: slack.chat_postMessage(
        channel=CHANNEL, text="Automatic replies are paused")["ts"]})
    job = add_job(store, kind="announce")
    failures = MAX_ATTEMPTS * 2
    fake_slack.fail("chat.postMessage", status=503, times=failures)
    with caplog.at_level(logging.DEBUG, logger="bot.jobs.worker"):
        for _ in range(failures):
            assert worker.run_once()
            event = store.event(job)
            assert event.state == "pending", event.last_error
            assert wait_seconds(event) <= MAX_BACKOFF + 1
            make_due(store, job)
        assert wait_seconds(event) == pytest.approx(MAX_BACKOFF, abs=2)
        assert worker.run_once()
    event = store.event(job)
    assert event.state == "done" and event.attempts == failures + 1
    assert len(fake_slack.messages(CHANNEL)) == 1
    about_job = [r for r in caplog.records if r.name == "bot.jobs.worker" and f"event {job} " in r.getMessage()]
    assert [r.levelname for r in about_job].count("WARNING") == 1, "one warning when the outage begins"
    assert [r.levelname for r in about_job].count("DEBUG") == failures - 1
    assert not any(r.exc_info for r in about_job), "no tracebacks for an outage"
    assert "after 10 tries while a service was down" in about_job[-1].getMessage()


def test_a_job_failing_for_its_own_reason_is_dead_after_five_attempts_with_a_traceback(tmp_path: Path, caplog):
    store = Store(tmp_path / "seam.db")

    def broken(event: Event) -> str:
        raise ValueError("malformed body")

    worker = Worker(store=store, handlers={"ticket": broken})
    job = add_job(store)
    with caplog.at_level(logging.WARNING, logger="bot.jobs.worker"):
        for attempt in range(1, MAX_ATTEMPTS + 1):
            assert worker.run_once()
            assert store.event(job).state == ("dead" if attempt == MAX_ATTEMPTS else "pending")
            make_due(store, job)
    assert not worker.run_once()
    [died] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert f"event {job} " in died.getMessage() and "failed too often" in died.getMessage() and died.exc_info


def test_a_slack_refusal_of_the_channel_still_dies_after_five_attempts(fake_slack, tmp_path: Path):
    store = Store(tmp_path / "seam.db")
    slack = bare_slack(fake_slack.url + "/", fake_slack.token)
    worker = Worker(store=store, handlers={"announce": lambda event: slack.chat_postMessage(
        channel="C_GONE", text="hello")["ts"]})
    job = add_job(store, kind="announce")
    fake_slack.fail("chat.postMessage", status=200, times=100, body={"ok": False, "error": "channel_not_found"})
    for _ in range(MAX_ATTEMPTS):
        assert worker.run_once()
        make_due(store, job)
    event = store.event(job)
    assert event.state == "dead" and event.transient_failures == 0 and "channel_not_found" in event.last_error


# -- end to end: a ticket during a Slack outage -----------------------------------------------------------------

def test_a_ticket_that_arrives_while_slack_answers_503_is_escalated_once_when_slack_is_back(
        pipeline, fake_slack, fake_zendesk):
    fake_zendesk.add_ticket(id=5501, subject="Where is my order?", requester_id=CUSTOMER_ID,
                            comments=[{"author_id": CUSTOMER_ID, "body": "Let me talk to a real person please"}])
    pipeline.poster.slack.retry_handlers = []  # see bare_slack: one 503 per attempt
    store = pipeline.store
    worker = Worker(store=store, handlers={"ticket": pipeline.process, TRANSCRIPT_KIND: pipeline.poster.transcript_job,
                                           NOTE_KIND: pipeline.poster.note_job})
    job, _ = store.record_event(helpdesk="zendesk", dedupe_key="outage", ticket_id="5501", body="{}")
    outage = MAX_ATTEMPTS + 3
    fake_slack.fail("chat.postMessage", status=503, times=outage)
    for _ in range(outage):
        assert worker.run_once()
        event = store.event(job)
        assert event.state == "pending" and event.last_error.startswith("SlackApiError")
        make_due(store, job)
    assert posts_for(fake_slack, 5501) == []
    assert store.queue_stats()["retrying"] == 1
    # Slack is back: the escalation is posted, once, and its transcript follows in its thread.
    while worker.run_once():
        pass
    event = store.event(job)
    assert event.state == "done" and event.outcome == "escalated" and event.attempts == outage + 1
    [post] = posts_for(fake_slack, 5501)
    assert len(fake_slack.messages(CHANNEL)) == 1
    assert len(post["replies"]) == 1, "the transcript, once"
    assert store.queue_stats()["retrying"] == 0 and store.queue_stats()["dead"] == 0
