"""Erasure on request (`python -m bot forget`, bot.flows.erasure): what Seam kept of one customer's
conversations goes from every table, their rows stay (counts, the audit trail), another customer's stay whole,
the cards in Slack are re-rendered without the conversation by the card sweep, the engine's next refit no longer
holds the erased reply, and a ticket still being worked on is refused with nothing changed. `[retention]
erase_after` erases the tickets idle that long on its own, waiting for busy ones.

The core runs in-process against the loopback fakes (tests.support.services): a ticket escalated, answered by an
agent in Zendesk (a reply the engine learns), another escalated and rejected in Slack with a note, a dead job
holding the customer's words; then the real command line on the same SQLite file.
"""

from __future__ import annotations

import functools
import itertools
import json
import sqlite3
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlite_utils import Database

from bot.config import RetentionTable, load_settings
from bot.errors import ConfigError
from bot.flows import erasure
from bot.flows.erasure import erase_idle
from bot.jobs.retention import MAX_ROUNDS, ROUND_LIMIT, RetentionSweep
from bot.services import engine_revision
from bot.slack.blocks import REASSIGN_CALLBACK, REJECT_CALLBACK
from bot.store import MIGRATIONS, Store
from bot.text import iso
from tests.support.cli import run_in_process
from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.fakes import FakeEmbeddings
from tests.support.payloads import block_action, card_click, reassign_values, reject_values, view_submission
from tests.support.services import (
    AGENT,
    ZENDESK_AGENT,
    drain,
    escalated,
    staffed,
    ticket_event,
    web_client,
)
from tests.support.signing import signed_form
from tests.support.waiting import wait_until

OTHER = CUSTOMER_ID + 1
# Words only Ana's tickets hold, and only Bo's. (What an agent replied to Ana is the agent's words, which the
# engine may reuse for others with Ana's details masked: tests/test_other_customer.py.)
ANAS = ("quokka", "ana@example.com", "Ana Customer")
BOS = "wombat"
_ids = itertools.count(91_000)


def deployment(fake_slack, fake_zendesk, tmp_path, **overrides):
    fake_zendesk.add_user(id=OTHER, name="Bo Other", email="bo@example.com")
    return staffed(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path, **overrides)


@pytest.fixture
def services(fake_slack, fake_zendesk, tmp_path):
    return deployment(fake_slack, fake_zendesk, tmp_path)


def escalate(services, fake_slack, fake_zendesk, *, requester: int, subject: str, text: str) -> dict:
    return escalated(services, fake_slack, fake_zendesk, ticket_id=next(_ids), requester=requester,
                     subject=subject, text=text)


def anas_answered_ticket(services, fake_slack, fake_zendesk) -> dict:
    """Ana's ticket, escalated, then answered by an agent in Zendesk: a reply the engine learns."""
    case = escalate(services, fake_slack, fake_zendesk, requester=CUSTOMER_ID, subject="Quokka account locked",
                    text="My quokka account is locked and I need a person to reset my password.")
    answer_in_zendesk(services, fake_zendesk, case, "Hi Ana, I reset your password: the link is in your inbox.")
    return case


def answer_in_zendesk(services, fake_zendesk, case: dict, text: str, *, key: str = "solved") -> None:
    httpx.put(f"{fake_zendesk.url}/api/v2/tickets/{case['ticket']}.json", auth=fake_zendesk.auth,
              json={"ticket": {"comment": {"author_id": ZENDESK_AGENT, "body": text, "public": True},
                               "status": "solved"}}).raise_for_status()
    assert "learnt" in ticket_event(services, case["ticket"], key)


def reject_with_note(services, fake_slack, fake_zendesk, case: dict, note: str) -> None:
    client = web_client(services)
    body, headers = signed_form(block_action(user=AGENT, action_id="seam_reject", value=str(case["escalation"]),
                                             message_ts=case["ts"]))
    assert client.post("/slack/events", data=body, headers=headers).status_code == 200
    opened = wait_until(lambda: [c for c in fake_slack.calls_to("views.open")
                                 if c.params["view"]["callback_id"] == REJECT_CALLBACK], what="the Reject form")
    metadata = opened[-1].params["view"]["private_metadata"]
    body, headers = signed_form(view_submission(user=AGENT, callback_id=REJECT_CALLBACK, private_metadata=metadata,
                                                values=reject_values("wrong_information", note)))
    assert client.post("/slack/events", data=body, headers=headers).status_code == 200
    wait_until(lambda: services.store.escalation(case["escalation"]).state == "rejected", what="the rejection")
    # The form is answered before the rejection's work; its internal note is queued after, then written.
    def noted() -> bool:
        drain(services)
        return any(not c.get("public", True) for c in fake_zendesk.comments(case["ticket"]))

    wait_until(noted, what="the rejection's internal note")
    # The note may be written on the listener's thread, which records its job finished just after: until then
    # the ticket is busy.
    wait_until(lambda: not services.store.busy_tickets([f"zendesk:{case['ticket']}"], idle_kinds=erasure.IDLE_KINDS),
               what="the note's job recorded finished")


def click(services, user: str, action_id: str, case: dict) -> None:
    body, headers = signed_form(card_click(case, user=user, action_id=action_id))
    assert web_client(services).post("/slack/events", data=body, headers=headers).status_code == 200


def reassign(services, fake_slack, case: dict, *, by: str, to: str) -> None:
    click(services, by, "seam_reassign", case)
    opened = wait_until(lambda: [c for c in fake_slack.calls_to("views.open")
                                 if c.params["view"]["callback_id"] == REASSIGN_CALLBACK], what="the Reassign form")
    body, headers = signed_form(view_submission(user=by, callback_id=REASSIGN_CALLBACK, values=reassign_values(to),
                                                private_metadata=opened[-1].params["view"]["private_metadata"]))
    assert web_client(services).post("/slack/events", data=body, headers=headers).status_code == 200
    wait_until(lambda: services.store.escalation(case["escalation"]).owner == to, what="the reassignment")


def holding(database, *words: str) -> dict[str, list[str]]:
    """Every table.column of the SQLite file whose text holds one of `words` (any case)."""
    found: dict[str, list[str]] = {}
    with sqlite3.connect(database) as db:
        for (table,) in db.execute("select name from sqlite_master where type = 'table'"):
            for column in [row[1] for row in db.execute(f"pragma table_info({table})")]:
                for word in words:
                    hit = db.execute(f"select count(*) from {table} where lower(cast({column} as text)) like ?",
                                     [f"%{word.lower()}%"]).fetchone()[0]
                    if hit:
                        found.setdefault(word, []).append(f"{table}.{column}")
    return found


def rows(database) -> dict[str, int]:
    with sqlite3.connect(database) as db:
        return {table: db.execute(f"select count(*) from {table}").fetchone()[0]
                for (table,) in db.execute("select name from sqlite_master where type = 'table'")}


def forget(tmp_path, *args: str):
    return run_in_process("forget", *args, env={"DATABASE_PATH": str(tmp_path / "seam.db")}, cwd=tmp_path)


def test_forgetting_a_customer_erases_their_words_everywhere_and_keeps_everything_else(
        services, fake_slack, fake_zendesk, tmp_path):
    database = tmp_path / "seam.db"
    answered = anas_answered_ticket(services, fake_slack, fake_zendesk)
    rejected = escalate(services, fake_slack, fake_zendesk, requester=CUSTOMER_ID, subject="Refund",
                        text="I want a refund for my quokka plush, and a person to call me.")
    reject_with_note(services, fake_slack, fake_zendesk, rejected, "the quokka plush was a gift")
    # A job that failed five times still holds the customer's words (waiting for a person to retry it).
    dead, _ = services.store.record_event(helpdesk="zendesk", dedupe_key="dead-1", ticket_id=str(answered["ticket"]),
                                          kind="helpdesk_write", body=json.dumps({"text": "quokka reply"}))
    services.store.db.execute("update events set state = 'dead' where id = ?", [dead])
    other = escalate(services, fake_slack, fake_zendesk, requester=OTHER, subject="Wombat",
                     text="Where is my wombat order? I want a real person.")
    assert set(holding(database, *ANAS)) == set(ANAS) and holding(database, BOS)
    learnt = [row["customer_text"] for row in services.store.learned_answers()]
    assert any("quokka" in text for text in learnt)
    before, revision = rows(database), engine_revision(services.settings, services.store)

    dry = forget(tmp_path, "--email", "ANA@example.com", "--dry-run")
    assert dry.exit_code == 0 and f"would erase 2 zendesk ticket(s): {answered['ticket']}, {rejected['ticket']}" \
        in dry.output
    assert set(holding(database, *ANAS)) == set(ANAS), "a dry run erases nothing"
    result = forget(tmp_path, "--email", "ANA@example.com", "--yes")

    assert result.exit_code == 0, result.output
    assert f"erased 2 zendesk ticket(s): {answered['ticket']}, {rejected['ticket']}" in result.output
    assert holding(database, *ANAS) == {}, "nothing Ana wrote, or was written to her, is left"
    assert holding(database, BOS), "Bo's ticket is untouched"
    # Every row stays (counts, stats); one audit entry, and a job per card to empty its thread.
    assert rows(database) == {**before, "audit_log": before["audit_log"] + 1, "events": before["events"] + 2}
    assert services.store.escalation(other["escalation"]).card["ticket"]["subject"] == "Wombat"
    # The rejection keeps its reason (the engine must still not draft that way), not the agent's note.
    feedback = {row["escalation_id"]: row for row in services.store.db["feedback"].rows}
    assert feedback[rejected["escalation"]]["reason"] == "wrong_information"
    assert services.store.event(dead).state == "done"
    # What serve refits on no longer holds the reply, and the refit is due.
    assert not any("quokka" in (row["customer_text"] or "") for row in services.store.learned_answers())
    assert engine_revision(services.settings, services.store) != revision
    # What the team exports afterwards holds none of it either, and still counts every action.
    for fmt in ("csv", "jsonl"):
        exported = run_in_process("feedback", "export", "--format", fmt,
                                  env={"DATABASE_PATH": str(database)}, cwd=tmp_path)
        assert exported.exit_code == 0, exported.output
        assert "quokka" not in exported.output.lower() and "reject" in exported.output
    [entry] = [row for row in services.store.audit_rows(limit=10) if row["action"] == "erase"]
    assert entry["actor"] == "cli" and entry["detail"]["ticket_ids"] == [str(answered["ticket"]),
                                                                      str(rejected["ticket"])]
    # Serve deletes what it posted in both threads: the transcripts hold Ana's words. An agent's reply stays.
    fake_slack.post_as_user(CHANNEL, "UPERSON", "I'll take the plush one", thread_ts=rejected["ts"])
    assert any("quokka" in r["text"] for case in (answered, rejected) for r in fake_slack.replies(CHANNEL, case["ts"]))
    drain(services)
    assert [r["text"] for r in fake_slack.replies(CHANNEL, answered["ts"])] == []
    assert [r["text"] for r in fake_slack.replies(CHANNEL, rejected["ts"])] == ["I'll take the plush one"]
    assert fake_slack.replies(CHANNEL, other["ts"]), "Bo's thread is untouched"
    # Serve's card sweep re-renders both cards in place, without the conversation.
    updates_before = len(fake_slack.calls_to("chat.update"))
    assert services.poster.refresh_stale() == 2
    updated = fake_slack.calls_to("chat.update")[updates_before:]
    assert sorted(c.params["ts"] for c in updated) == sorted([answered["ts"], rejected["ts"]])
    for call in updated:
        shown = json.dumps(call.params).lower()
        assert "erased from seam on request" in shown and "quokka" not in shown and "ana" not in shown.split()


def test_a_ticket_still_being_worked_on_is_not_erased(services, fake_slack, fake_zendesk, tmp_path):
    case = escalate(services, fake_slack, fake_zendesk, requester=OTHER, subject="Wombat",
                    text="Where is my wombat order? I want a real person.")
    database = tmp_path / "seam.db"
    before = holding(database, BOS)

    result = forget(tmp_path, "--ticket", str(case["ticket"]), "--yes")

    assert result.exit_code == 1
    assert f"not erased: zendesk ticket(s) {case['ticket']} still being worked on" in result.output
    assert holding(database, BOS) == before
    assert not [row for row in services.store.audit_rows(limit=10) if row["action"] == "erase"]


def test_a_helpdesk_refusal_that_quoted_the_customer_is_erased_too(services, fake_slack, fake_zendesk, tmp_path):
    case = escalate(services, fake_slack, fake_zendesk, requester=CUSTOMER_ID, subject="Password",
                    text="I forgot my quokka password and need to reset it. Can I talk to a person?")
    click(services, AGENT, "seam_claim", case)
    drain(services)
    wait_until(lambda: fake_zendesk.calls_to("update_ticket"), what="the claim's assignment")
    # The helpdesk refuses the reply and quotes what it refused: the error is kept on the card and in the audit log.
    fake_zendesk.fail("update_ticket", status=422, times=1,
                      body={"error": "RecordInvalid", "description": "comment on the quokka password is invalid"})
    click(services, AGENT, "seam_approve", case)
    drain(services)
    wait_until(lambda: services.store.escalation(case["escalation"]).state == "failed", what="the failed send")
    database = tmp_path / "seam.db"
    assert "escalations.last_error" in holding(database, "quokka")["quokka"]
    reject_with_note(services, fake_slack, fake_zendesk, case, "")

    assert forget(tmp_path, "--ticket", str(case["ticket"]), "--yes").exit_code == 0
    assert holding(database, "quokka") == {}


def test_forget_needs_tickets_and_says_when_none_match(services, tmp_path):
    usage = forget(tmp_path, "--yes")
    assert usage.exit_code == 2 and "--ticket ID (repeatable) or --email ADDRESS" in usage.output
    none = forget(tmp_path, "--email", "nobody@example.com", "--yes")
    assert none.exit_code == 0 and "nothing to erase: no zendesk ticket in the database matches" in none.output
    asked = run_in_process("forget", "--ticket", "123", env={"DATABASE_PATH": str(tmp_path / "missing.db")},
                           cwd=tmp_path)
    assert asked.exit_code == 1 and "no database at" in asked.output


def age(database, ticket_id: int, days: float) -> None:
    """Make everything that happened on the ticket `days` old, as if time had passed."""
    when = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds").replace("+00:00", "Z")
    with sqlite3.connect(database) as db:
        db.execute("update tickets set last_seen_at = ? where ticket_id = ?", [when, str(ticket_id)])
        db.execute("update escalations set updated_at = ?, card_synced_at = ? where ticket_id = ?",
                   [when, when, str(ticket_id)])


def test_retention_erases_tickets_idle_for_erase_after_and_waits_for_the_busy_ones(
        fake_slack, fake_zendesk, tmp_path):
    services = deployment(fake_slack, fake_zendesk, tmp_path, retention=RetentionTable(erase_after=30 * 86400.0))
    database = tmp_path / "seam.db"
    old = anas_answered_ticket(services, fake_slack, fake_zendesk)
    still_open = escalate(services, fake_slack, fake_zendesk, requester=OTHER, subject="Wombat",
                          text="Where is my wombat order? I want a real person.")
    recent = escalate(services, fake_slack, fake_zendesk, requester=OTHER, subject="Koala",
                      text="My koala plush arrived broken, I want to talk to a person.")
    answer_in_zendesk(services, fake_zendesk, recent, "Sorry about that: a new one is on its way.")
    age(database, old["ticket"], days=31)
    age(database, still_open["ticket"], days=45)
    age(database, recent["ticket"], days=29)
    [sweep] = [job for job in services.runner._periodic if isinstance(job, RetentionSweep)]
    assert sweep.interval > 0

    assert sweep.run_once() == 1

    assert holding(database, "quokka") == {}, "idle for 31 days: erased"
    assert holding(database, "wombat"), "an escalation nobody finished waits, however old"
    assert holding(database, "koala"), "29 days is not yet 30"
    [entry] = [row for row in services.store.audit_rows(limit=20) if row["action"] == "erase"]
    assert entry["actor"] == "retention" and entry["detail"]["ticket_ids"] == [str(old["ticket"])]
    assert sweep.run_once() == 0, "an erased ticket is not erased again"


def test_retention_is_off_by_default_and_refuses_a_period_under_a_day(services, tmp_path):
    [sweep] = [job for job in services.runner._periodic if isinstance(job, RetentionSweep)]
    assert sweep.interval == 0
    config = tmp_path / "seam.toml"
    config.write_text('[retention]\nerase_after = "2h"\n')
    with pytest.raises(ConfigError, match="retention.erase_after must be 0 \\(off\\) or between 1 day and 10 years"):
        load_settings({"SEAM_CONFIG": str(config)})


def test_a_retention_run_goes_on_while_rounds_come_back_full():
    rounds, pauses = iter([500, 500, 120, 500]), []
    sweep = RetentionSweep(sweep=lambda *, limit: next(rounds), enabled=True, pause=pauses.append)
    assert sweep.run_once() == 1120
    assert len(pauses) == 2, "a pause between rounds, none after the last"
    endless = RetentionSweep(sweep=lambda *, limit: limit, enabled=True, pause=pauses.append)
    assert endless.run_once() == MAX_ROUNDS * ROUND_LIMIT, "a run is bounded"


def test_old_tickets_still_being_worked_on_do_not_hold_up_the_idle_ones_behind_them(
        fake_slack, fake_zendesk, tmp_path):
    # Escalations nobody finished, older than the idle tickets: a full round of them (one here, ROUND_LIMIT in
    # production) must not stop the run before it reaches a ticket it may erase.
    services = deployment(fake_slack, fake_zendesk, tmp_path, retention=RetentionTable(erase_after=30 * 86400.0))
    database = tmp_path / "seam.db"
    abandoned = escalate(services, fake_slack, fake_zendesk, requester=OTHER, subject="Wombat",
                         text="Where is my wombat order? I want a real person.")
    idle = anas_answered_ticket(services, fake_slack, fake_zendesk)
    age(database, abandoned["ticket"], days=45)
    age(database, idle["ticket"], days=31)
    sweep = RetentionSweep(sweep=functools.partial(erase_idle, services.store, after=30 * 86400.0), enabled=True,
                           limit=1, pause=lambda seconds: None)

    assert sweep.run_once() == 1

    assert holding(database, "quokka") == {}, "the idle ticket behind the busy one is erased"
    assert holding(database, "wombat"), "the busy one waits"


def test_a_ticket_the_customer_writes_on_again_after_its_erasure_is_erased_again_once_idle(
        fake_slack, fake_zendesk, tmp_path):
    services = deployment(fake_slack, fake_zendesk, tmp_path, retention=RetentionTable(erase_after=30 * 86400.0))
    database = tmp_path / "seam.db"
    case = anas_answered_ticket(services, fake_slack, fake_zendesk)
    age(database, case["ticket"], days=31)
    [sweep] = [job for job in services.runner._periodic if isinstance(job, RetentionSweep)]
    assert sweep.run_once() == 1 and holding(database, "quokka") == {}
    with sqlite3.connect(database) as db:  # that erasure was two months ago
        db.execute("update tickets set erased_at = ?", [iso(datetime.now(UTC) - timedelta(days=60))])
    # Then Ana writes on the same ticket: Seam keeps her new words, and escalates them.
    httpx.put(f"{fake_zendesk.url}/api/v2/tickets/{case['ticket']}.json", auth=fake_zendesk.auth, json={
        "ticket": {"status": "open", "comment": {"author_id": CUSTOMER_ID, "public": True,
                                                 "body": "My platypus account is locked again, I need a person."}}}
              ).raise_for_status()
    assert "escalated" in ticket_event(services, case["ticket"], "again")
    answer_in_zendesk(services, fake_zendesk, case, "Unlocked again, Ana.", key="solved again")
    assert holding(database, "platypus")
    age(database, case["ticket"], days=31)

    assert sweep.run_once() == 1

    assert holding(database, "platypus", *ANAS) == {}, "what came after the first erasure goes too, once idle"


def test_a_message_that_arrives_while_forget_runs_makes_the_ticket_busy_and_nothing_is_erased(
        services, fake_slack, fake_zendesk, tmp_path):
    # The moment between the busy check and the erasure (another process's worker escalating the ticket's new
    # message then) cannot be timed from outside: the look-up is wrapped so the message lands right after it.
    case = anas_answered_ticket(services, fake_slack, fake_zendesk)
    store, checked = services.store, services.store.busy_tickets

    def checked_then_written_on(keys, **kwargs):
        busy = checked(keys, **kwargs)
        if not store.live_escalation(f"zendesk:{case['ticket']}"):
            httpx.put(f"{fake_zendesk.url}/api/v2/tickets/{case['ticket']}.json", auth=fake_zendesk.auth, json={
                "ticket": {"status": "open", "comment": {
                    "author_id": CUSTOMER_ID, "public": True,
                    "body": "My platypus account is locked again, I need a person."}}}).raise_for_status()
            assert "escalated" in ticket_event(services, case["ticket"], "again")
        return busy

    store.busy_tickets = checked_then_written_on

    found = erasure.erase(store, helpdesk="zendesk", ticket_ids=[str(case["ticket"])], actor="cli")

    assert found.busy == [str(case["ticket"])] and found.changed == {}
    live = store.live_escalation(f"zendesk:{case['ticket']}")
    assert "platypus" in live.customer_text and live.card["ticket"]["subject"] != "(erased on request)", \
        "the agent's new card keeps what they act on"
    assert not [row for row in store.audit_rows(limit=20) if row["action"] == "erase"]


AGENT2, AGENT2_EMAIL = "UAGENT2", "agent2@acme.example"


def dms(fake_slack, user: str, ticket_id: int) -> list[dict]:
    """The DMs Seam sent `user` about this ticket (its id is in every one)."""
    return [m for m in fake_slack.messages(f"D{user}") if f"#{ticket_id}" in m["text"]]


def test_the_dms_agents_got_on_claim_and_reassign_are_deleted_with_the_thread(
        services, fake_slack, fake_zendesk, tmp_path):
    fake_slack.add_user(AGENT2, email=AGENT2_EMAIL, name="agent2")
    fake_zendesk.add_user(id=ZENDESK_AGENT + 1, name="Agent Two", email=AGENT2_EMAIL, role="agent")
    case = escalate(services, fake_slack, fake_zendesk, requester=CUSTOMER_ID, subject="Quokka account locked",
                    text="My quokka account is locked and I need a person to reset my password.")
    # Claimed by one agent, handed to another: each gets a DM with the subject and summary.
    click(services, AGENT2, "seam_claim", case)
    reassign(services, fake_slack, case, by=AGENT2, to=AGENT)
    bos = escalate(services, fake_slack, fake_zendesk, requester=OTHER, subject="Wombat",
                   text="Where is my wombat order? I want a real person.")
    click(services, AGENT, "seam_claim", bos)
    claimed, given = wait_until(lambda: dms(fake_slack, AGENT2, case["ticket"]) +
                                dms(fake_slack, AGENT, case["ticket"]), what="both DMs")
    assert "Quokka" in claimed["text"] and "gave you" in json.dumps(given["blocks"])
    answer_in_zendesk(services, fake_zendesk, case, "Hi Ana, I reset your password: the link is in your inbox.")
    # AGENT2's DM is already gone (deleted meanwhile): that one counts as done.
    services.slack.chat_delete(channel=f"D{AGENT2}", ts=claimed["ts"])
    # Slack fails the job's first delete: the queue retries it, and the retry finishes.
    fake_slack.fail("chat.delete", status=200, body={"ok": False, "error": "fatal_error"})

    assert forget(tmp_path, "--ticket", str(case["ticket"]), "--yes").exit_code == 0
    drain(services)
    with sqlite3.connect(tmp_path / "seam.db") as db:
        db.execute("update events set next_attempt_at = ? where kind = 'erase_thread'", [iso(datetime.now(UTC))])
    drain(services)

    assert dms(fake_slack, AGENT, case["ticket"]) == [] and dms(fake_slack, AGENT2, case["ticket"]) == []
    assert fake_slack.replies(CHANNEL, case["ts"]) == [], "the thread is emptied too"
    assert dms(fake_slack, AGENT, bos["ticket"]), "Bo's escalation's DM stays"
    deleted = [c.params["ts"] for c in fake_slack.calls_to("chat.delete") if c.ok]
    assert deleted.count(given["ts"]) == 1, "each DM is deleted once"
    [job] = list(services.store.db["events"].rows_where("kind = 'erase_thread'"))
    assert job["state"] == "done" and job["attempts"] == 2
    # A second erasure of the ticket queues nothing more: the thread and the DMs are done.
    assert forget(tmp_path, "--ticket", str(case["ticket"]), "--yes").exit_code == 0
    assert drain(services) == 0


def cached_vectors(database) -> dict[str, str]:
    """The embedding cache's rows: text hash -> when it was made."""
    with sqlite3.connect(database) as db:
        return dict(db.execute("select text_hash, created_at from embedding_cache"))


def test_forget_drops_the_sentence_vectors_cached_since_the_customers_first_ticket(
        fake_slack, fake_zendesk, tmp_path):
    database = tmp_path / "seam.db"
    with FakeEmbeddings() as embeddings:
        services = deployment(fake_slack, fake_zendesk, tmp_path, embeddings_model="test-embed-1",
                              embeddings_base_url=embeddings.base_url)
        escalate(services, fake_slack, fake_zendesk, requester=OTHER, subject="Wombat",
                 text="Where is my wombat order? I want a real person.")
        with sqlite3.connect(database) as db:  # the knowledge's vectors and Bo's, made a day ago
            db.execute("update embedding_cache set created_at = ?", [iso(datetime.now(UTC) - timedelta(days=1))])
        earlier = cached_vectors(database)
        case = anas_answered_ticket(services, fake_slack, fake_zendesk)
        made = set(cached_vectors(database)) - set(earlier)
        assert made and earlier, "the engine embedded Ana's words, and the knowledge and Bo's before them"

        assert forget(tmp_path, "--ticket", str(case["ticket"]), "--yes").exit_code == 0

        assert cached_vectors(database) == earlier, "every vector made since Ana's ticket came is gone; none before"
        [entry] = [row for row in services.store.audit_rows(limit=10) if row["action"] == "erase"]
        assert entry["detail"]["rows"]["embedding_cache"] == len(made)


def test_retention_drops_cached_vectors_older_than_erase_after_each_run(fake_slack, fake_zendesk, tmp_path):
    services = deployment(fake_slack, fake_zendesk, tmp_path, retention=RetentionTable(erase_after=30 * 86400.0))
    database = tmp_path / "seam.db"
    services.store.embedding_cache.put_many("test-embed-1", {"old": b"\x00" * 16, "new": b"\x01" * 16})
    with sqlite3.connect(database) as db:
        db.execute("update embedding_cache set created_at = ? where text_hash = 'old'",
                   [iso(datetime.now(UTC) - timedelta(days=31))])
    [sweep] = [job for job in services.runner._periodic if isinstance(job, RetentionSweep)]

    assert sweep.run_once() == 0, "no ticket to erase"

    assert set(cached_vectors(database)) == {"new"}, "a vector lives at most erase_after"
    [entry] = [row for row in services.store.audit_rows(limit=10) if row["actor"] == "retention"]
    assert entry["action"] == "expire_vectors" and entry["detail"] == {"rows": {"embedding_cache": 1}}
    sweep.run_once()
    assert len([row for row in services.store.audit_rows(limit=10) if row["actor"] == "retention"]) == 1, \
        "a run that drops nothing writes no entry"


def test_forget_by_email_matches_the_address_in_any_unicode_case_and_no_look_alike(
        services, fake_slack, fake_zendesk, tmp_path):
    fake_zendesk.add_user(id=OTHER + 1, name="Zoë", email="Zoë.Straße@Example.com")
    case = escalate(services, fake_slack, fake_zendesk, requester=OTHER + 1, subject="Quokka account locked",
                    text="My quokka account is locked and I need a person to reset my password.")
    answer_in_zendesk(services, fake_zendesk, case, "Hi Zoë, I reset your password: the link is in your inbox.")
    # Others' addresses that only look like hers: plus-addressed, without the diaeresis, a Cyrillic "о".
    for n, address in enumerate(("zoë.straße+shop@example.com", "zoe.strasse@example.com",
                                 "z\u043eë.straße@example.com"), start=1):
        services.store.upsert_ticket(helpdesk="zendesk", ticket_id=f"lookalike-{n}", subject="Hello",
                                     requester=address, priority=None)

    # Upper case (ß is SS), and "ë" written as "e" and a combining diaeresis: the same address.
    for asked in ("ZOË.STRASSE@EXAMPLE.COM", "zoe\u0308.straße@example.com"):
        dry = forget(tmp_path, "--email", asked, "--dry-run")
        assert dry.exit_code == 0 and f"would erase 1 zendesk ticket(s): {case['ticket']}\n" in dry.output, asked
    assert forget(tmp_path, "--email", "ZOË.STRASSE@example.com", "--yes").exit_code == 0
    with sqlite3.connect(tmp_path / "seam.db") as db:
        erased = db.execute("select * from tickets where ticket_id = ?", [str(case["ticket"])]).fetchone()
        kept = db.execute("select count(*) from tickets where requester like 'z%'").fetchone()[0]
    assert not any("example.com" in str(value) for value in erased), "her address is gone in every form"
    assert kept == 3, "the look-alikes stay"


def test_forget_by_email_finds_the_tickets_a_database_kept_before_its_upgrade(tmp_path):
    path = tmp_path / "seam.db"
    db = Database(sqlite3.connect(path))
    MIGRATIONS.apply(db, stop_before="m019_requester_key")
    for ticket_id, requester in (("7", "Zoë.Straße@Example.com"), ("8", "zoe.strasse@example.com"), ("9", None)):
        db["tickets"].insert({"key": f"zendesk:{ticket_id}", "helpdesk": "zendesk", "ticket_id": ticket_id,
                              "requester": requester, "first_seen_at": iso(datetime.now(UTC))})
    db.conn.close()

    store = Store(path)

    assert erasure.find(store, helpdesk="zendesk", email="ZOË.STRASSE@EXAMPLE.COM").tickets == ["7"]
