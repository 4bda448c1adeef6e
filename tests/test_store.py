"""The SQLite store (bot.store) on a temporary file: migrations, events and their leases, turns, effects, settings."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from bot.store import MAX_ATTEMPTS, MIGRATIONS, Store
from bot.text import iso

TABLES = {"tickets", "events", "decisions", "escalations", "effects", "feedback", "settings", "audit_log"}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "seam.db"


@pytest.fixture
def store(path: Path):
    store = Store(path)
    yield store
    store.close()


def add_event(store: Store, key: str, *, ticket_id: str = "1") -> int:
    event_id, created = store.record_event(helpdesk="zendesk", dedupe_key=key, ticket_id=ticket_id, body="{}")
    assert created
    return event_id


def migrations_applied(store: Store) -> list[dict]:
    return list(store.db["_sqlite_migrations"].rows)


def test_opening_a_new_file_creates_every_table(store: Store, path: Path) -> None:
    assert path.is_file()
    assert set(store.db.table_names()) >= TABLES
    assert store.ping()


def test_reopening_applies_no_migration_twice_and_keeps_the_data(store: Store, path: Path) -> None:
    event_id = add_event(store, "k1")
    before = migrations_applied(store)
    assert before and "m001_initial" in [m["name"] for m in before]
    store.close()
    again = Store(path)
    try:
        assert migrations_applied(again) == before
        assert again.event(event_id).dedupe_key == "k1"
    finally:
        again.close()


def test_the_database_file_is_readable_by_its_owner_only(store: Store, path: Path) -> None:
    add_event(store, "k1")
    for file in path.parent.iterdir():
        assert os.stat(file).st_mode & 0o777 == 0o600, file.name


def test_recording_the_same_delivery_twice_returns_the_first_event(store: Store) -> None:
    first = store.record_event(helpdesk="zendesk", dedupe_key="same", ticket_id="5", body="{}")
    second = store.record_event(helpdesk="zendesk", dedupe_key="same", ticket_id="5", body="{}")
    other = store.record_event(helpdesk="zendesk", dedupe_key="other", ticket_id="5", body="{}")
    assert first[1] is True
    assert second == (first[0], False)
    assert other[1] is True and other[0] != first[0]
    assert store.db["events"].count == 2


def test_events_are_claimed_oldest_first_with_an_attempt_counted(store: Store) -> None:
    first, second = add_event(store, "a"), add_event(store, "b", ticket_id="2")
    claimed = store.claim_event()
    assert claimed.id == first
    assert claimed.state == "processing" and claimed.attempts == 1
    assert store.claim_event().id == second
    assert store.claim_event() is None


def test_concurrent_workers_claim_each_event_exactly_once(store: Store, path: Path) -> None:
    ids = {add_event(store, f"k{i}", ticket_id=str(i)) for i in range(50)}
    claims: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        own = Store(path)
        try:
            start.wait()
            while (event := own.claim_event()) is not None:
                with lock:
                    claims.append(event.id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert Counter(claims) == Counter(ids)


def test_a_tickets_events_are_taken_one_at_a_time_and_other_tickets_pass(store: Store) -> None:
    first, second, other = add_event(store, "a"), add_event(store, "b"), add_event(store, "c", ticket_id="2")
    job, _ = store.record_event(helpdesk="zendesk", dedupe_key="job", ticket_id="1", body="{}", kind="transcript")
    assert store.claim_event().id == first
    assert store.claim_event().id == other, "the ticket's second event waits; another ticket's does not"
    assert store.claim_event().id == job, "only ticket events wait for each other"
    assert store.claim_event() is None
    store.finish_event(first, outcome="escalated")
    assert store.claim_event().id == second


def test_a_tickets_event_stops_waiting_when_the_one_before_hangs_past_its_lease(store: Store) -> None:
    first, second = add_event(store, "a"), add_event(store, "b")
    assert store.claim_event(lease_seconds=0.05).id == first
    assert store.claim_event() is None
    time.sleep(0.1)
    assert store.claim_event(retries=False).id == second


def test_an_event_whose_lease_ran_out_is_claimed_again(store: Store) -> None:
    event_id = add_event(store, "k")
    assert store.claim_event(lease_seconds=0.05).id == event_id
    assert store.claim_event() is None  # still leased
    time.sleep(0.1)
    again = store.claim_event()
    assert again.id == event_id and again.attempts == 2


def test_a_failed_event_waits_for_its_backoff_before_another_try(store: Store) -> None:
    event_id = add_event(store, "k")
    store.claim_event()
    assert store.fail_event(event_id, error="Zendesk answered 503", retry_in=60) == "pending"
    assert store.claim_event() is None
    event = store.event(event_id)
    assert event.last_error == "Zendesk answered 503"
    assert event.next_attempt_at > event.received_at


def test_a_failed_event_with_no_backoff_is_retried_and_parked_dead_after_max_attempts(store: Store) -> None:
    event_id = add_event(store, "k")
    states = []
    for _ in range(MAX_ATTEMPTS):
        claimed = store.claim_event()
        assert claimed is not None and claimed.id == event_id
        states.append(store.fail_event(event_id, error="boom", retry_in=0))
    assert states == ["pending"] * (MAX_ATTEMPTS - 1) + ["dead"]
    assert store.claim_event() is None
    assert store.event(event_id).state == "dead"


def test_a_finished_event_is_not_claimed_again(store: Store) -> None:
    event_id = add_event(store, "k")
    store.claim_event()
    store.finish_event(event_id, outcome="resolved")
    assert store.claim_event() is None
    event = store.event(event_id)
    assert (event.state, event.outcome) == ("done", "resolved")


def test_a_released_event_is_retried_at_once_without_counting_the_attempt(store: Store) -> None:
    event_id = add_event(store, "k")
    store.claim_event()
    store.release_event(event_id)
    again = store.claim_event()
    assert again.id == event_id and again.attempts == 1


def test_a_turn_belongs_to_the_first_event_that_claims_it(store: Store) -> None:
    first, second = add_event(store, "a"), add_event(store, "b")
    assert store.claim_turn(event_id=first, turn_key="zendesk:7:comment:99") is True
    assert store.claim_turn(event_id=first, turn_key="zendesk:7:comment:99") is True
    assert store.claim_turn(event_id=second, turn_key="zendesk:7:comment:99") is False
    assert store.claim_turn(event_id=second, turn_key="zendesk:7:comment:100") is True


def test_an_effect_is_recorded_before_and_after_and_never_restarted(store: Store) -> None:
    started = store.begin_effect("reply:7:1", kind="zendesk.reply")
    assert started["state"] == "started" and started["kind"] == "zendesk.reply"
    assert store.begin_effect("reply:7:1", kind="zendesk.reply")["started_at"] == started["started_at"]
    store.finish_effect("reply:7:1", result={"comment_id": 12})
    done = store.begin_effect("reply:7:1", kind="zendesk.reply")
    assert done["state"] == "done"
    assert done["finished_at"]
    assert store.effect("reply:7:1")["result"] == '{"comment_id": 12}'
    assert store.effect("never") is None


def test_settings_round_trip_as_json_and_leave_an_audit_row(store: Store, path: Path) -> None:
    assert store.get_setting("thresholds", {"auto": 0.85}) == {"auto": 0.85}
    store.set_setting("thresholds", {"auto": 0.9, "draft": 0.4}, actor="U123")
    store.set_setting("paused", True, actor="U456")
    assert store.get_setting("thresholds") == {"auto": 0.9, "draft": 0.4}
    assert store.get_setting("paused") is True
    audit = list(store.db["audit_log"].rows_where(order_by="id"))
    assert [(a["actor"], a["action"]) for a in audit] == [("U123", "set thresholds"), ("U456", "set paused")]
    store.close()
    reopened = Store(path)
    try:
        assert reopened.get_setting("paused") is True
    finally:
        reopened.close()


def test_queue_stats_counts_events_by_state(store: Store) -> None:
    assert store.queue_stats() == {"pending": 0, "retrying": 0, "dead": 0, "done": 0, "oldest_pending_seconds": None}
    done, dead, _processing, _pending = (add_event(store, k) for k in "abcd")
    store.claim_event()
    store.finish_event(done, outcome="resolved")
    for _ in range(MAX_ATTEMPTS):
        assert store.claim_event().id == dead
        store.fail_event(dead, error="boom", retry_in=0)
    store.claim_event()  # c is now processing
    stats = store.queue_stats()
    assert (stats["pending"], stats["dead"], stats["done"]) == (2, 1, 1)
    assert stats["oldest_pending_seconds"] is not None and stats["oldest_pending_seconds"] >= 0


def test_the_queues_age_counts_a_scheduled_job_from_its_time_not_from_when_it_was_scheduled(store: Store) -> None:
    now = datetime.now(UTC)
    # Scheduled an hour ago (a reminder, an SLA warning, a keep-warm update), due in an hour: nothing waits yet,
    # so the documented SeamQueueBackedUp alert (seam_queue_oldest_pending_seconds > 300) must not fire.
    reminder, _ = store.record_event(kind="reminder", helpdesk="zendesk", dedupe_key="reminder:1:unclaimed",
                                     ticket_id="1", body="{}", run_at=now + timedelta(hours=1))
    store.db.execute("update events set received_at = ? where id = ?", [iso(now - timedelta(hours=1)), reminder])
    assert store.queue_stats()["oldest_pending_seconds"] is None
    # Due ten minutes ago (scheduled two hours ago): it has waited ten minutes, also after a failed attempt.
    warned, _ = store.record_event(kind="sla_watch", helpdesk="zendesk", dedupe_key="sla_watch:1:warn",
                                   ticket_id="1", body="{}", run_at=now - timedelta(minutes=10))
    store.db.execute("update events set received_at = ? where id = ?", [iso(now - timedelta(hours=2)), warned])
    assert store.queue_stats()["oldest_pending_seconds"] == pytest.approx(600, abs=5)
    assert store.claim_event().id == warned
    store.fail_event(warned, error="Slack down", retry_in=0)
    assert store.queue_stats()["oldest_pending_seconds"] == pytest.approx(600, abs=5)
    # A ticket's job counts from its reception, as before: one recorded 30 minutes ago.
    ticket = add_event(store, "webhook")
    store.db.execute("update events set received_at = ?, next_attempt_at = ?, due_at = ? where id = ?",
                     [*[iso(now - timedelta(minutes=30))] * 3, ticket])
    assert store.queue_stats()["oldest_pending_seconds"] == pytest.approx(1800, abs=5)


def test_jobs_queued_before_the_upgrade_are_aged_from_when_they_came_due(tmp_path: Path) -> None:
    path = tmp_path / "seam.db"
    now = datetime.now(UTC)
    db = Database(sqlite3.connect(path))
    MIGRATIONS.apply(db, stop_before="m020_job_due_at")
    for key, received, next_attempt, attempts in (
            ("reminder:1:unclaimed", now - timedelta(hours=1), now + timedelta(hours=1), 0),  # not due yet
            ("sla_watch:1:warn", now - timedelta(hours=3), now - timedelta(minutes=5), 0),  # due 5 minutes ago
            ("failing", now - timedelta(minutes=20), now + timedelta(minutes=1), 2)):  # in its backoff
        db["events"].insert({"kind": key.split(":")[0], "helpdesk": "zendesk", "dedupe_key": key, "ticket_id": "1",
                             "received_at": iso(received), "state": "pending", "attempts": attempts,
                             "next_attempt_at": iso(next_attempt)})
    db.conn.close()

    store = Store(path)
    try:
        assert store.queue_stats()["oldest_pending_seconds"] == pytest.approx(1200, abs=5)
    finally:
        store.close()


def test_a_job_that_was_running_at_every_crash_is_dead_after_max_attempts(store: Store) -> None:
    # A job that takes the process down with it (out of memory on one huge ticket, say): every start takes it
    # back and runs it first. After MAX_ATTEMPTS crashes it is dead, listed and retried by hand, not a crash loop.
    poison = add_event(store, "poison")
    for crash in range(MAX_ATTEMPTS):
        assert store.claim_event().id == poison
        assert store.recover_interrupted() == 1
        assert store.event(poison).state == ("dead" if crash == MAX_ATTEMPTS - 1 else "pending")
    assert store.claim_event() is None
    assert [e.id for e in store.dead_events()] == [poison] and "interrupted" in store.event(poison).last_error
