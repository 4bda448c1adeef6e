"""Erasure audited end to end: one customer's whole life with Seam — escalations claimed, edited, sent,
rejected, a follow-up, an automatic answer the quality guard sees reopened, a customer notice, keep-warm updates,
reminders and the SLA watch, agents' DMs, the sentence-vector cache — then `python -m bot forget --email`, the jobs
it queues, and a search for the customer's words everywhere Seam keeps or posted anything: every table and column
of the SQLite file, the feedback export, the log lines written meanwhile, what Seam itself left in Slack, and the
engine fitted again after a restart.

Distinctive markers stand for the customer's name, email, subject, phone, order number and words; none may be
left. What other people wrote (an agent's own reply in a Slack thread) and what the helpdesk holds are theirs.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.config import CustomerNoticeTable, KeepWarmTable, RetentionTable
from bot.jobs.retention import RetentionSweep
from bot.services import learned_tickets
from bot.text import iso
from tests.support.cli import run_in_process
from tests.support.fakes import FakeEmbeddings
from tests.support.payloads import card_click, edit_values, form_submission, reject_values
from tests.support.services import AGENT, ZENDESK_AGENT, drain, escalated, staffed, ticket_event, web_client
from tests.support.signing import signed_form, slack_headers
from tests.support.waiting import wait_until

CUSTOMER = 7_301
NAME, EMAIL = "Xyloquest Marlowe", "xyloquest.marlowe@example.com"
SUBJECT_WORD, PHONE, ORDER, WORD = "Zarnigoth", "+1 415 555 0199", "ORD-7731946", "quibblefrost"
# What to look for, in any case: the phone as written and as digits, the order number with and without its prefix.
MARKERS = ("xyloquest", "marlowe", "zarnigoth", "555 0199", "4155550199", "7731946", "quibblefrost")


def found_in(text: str) -> list[str]:
    lowered = (text or "").lower()
    return [m for m in MARKERS if m in lowered]


def database_holding(database) -> dict[str, list[str]]:
    """table.column -> markers, for every table (shadow tables included) and every column of the file."""
    found: dict[str, list[str]] = {}
    with sqlite3.connect(database) as db:
        tables = [row[0] for row in db.execute("select name from sqlite_master where type = 'table'")]
        for table in tables:
            columns = [row[1] for row in db.execute(f"pragma table_info('{table}')")]
            for column in columns:
                for (value,) in db.execute(f'select "{column}" from "{table}"'):
                    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                    if hits := found_in(text):
                        found.setdefault(f"{table}.{column}", []).extend(h for h in hits
                                                                         if h not in found.get(f"{table}.{column}",
                                                                                               []))
    return found


def seams_slack(fake_slack, *, homes: bool = False) -> dict[str, list[str]]:
    """Markers in what Seam (the bot) posted, anywhere in the fake Slack: top-level messages, thread replies, DMs,
    and with `homes` the App Home views it published (test_an_agents_app_home...)."""
    found: dict[str, list[str]] = {}
    with fake_slack._lock:
        channels = {name: list(messages) for name, messages in fake_slack._channels.items()}
        users = list(fake_slack._home_views) if homes else []
    for channel, messages in channels.items():
        for message in messages:
            for m in [message, *message.get("replies", [])]:
                if not m.get("bot_id"):
                    continue  # a person's message is theirs
                if hits := found_in(json.dumps({k: m.get(k) for k in ("text", "blocks", "metadata", "attachments")})):
                    found.setdefault(f"{channel} {m['ts']}", []).extend(hits)
    for user in users:
        if hits := found_in(json.dumps(fake_slack.home_view(user))):
            found[f"home {user}"] = hits
    return found


def click(client, action_id: str, case: dict) -> None:
    body, headers = signed_form(card_click(case, user=AGENT, action_id=action_id))
    assert client.post("/slack/events", data=body, headers=headers).status_code == 200


def submit(client, callback_id: str, case: dict, values: dict) -> None:
    body, headers = signed_form(form_submission(case, user=AGENT, callback_id=callback_id, values=values))
    assert client.post("/slack/events", data=body, headers=headers).status_code == 200


def open_home(client, fake_slack) -> None:
    body = json.dumps({"token": "t", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
                       "event_id": f"Ev{time.monotonic_ns()}", "event_time": int(time.time()),
                       "event": {"type": "app_home_opened", "user": AGENT, "channel": "D1", "tab": "home"}}).encode()
    published = len(fake_slack.calls_to("views.publish"))
    assert client.post("/slack/events", data=body,
                       headers=slack_headers(body, content_type="application/json")).status_code == 200
    wait_until(lambda: len(fake_slack.calls_to("views.publish")) > published, what="the App Home")


def reject(services, client, fake_zendesk, case: dict, note: str) -> None:
    """Reject in Slack with a reason and a note, and wait for the note written in the helpdesk (it is queued after
    the form is answered)."""
    click(client, "seam_reject", case)
    drain(services)
    submit(client, "seam_reject_submit", case, reject_values("wrong_information", note))
    wait_until(lambda: services.store.escalation(case["escalation"]).state == "rejected", what="the rejection")

    def noted() -> bool:
        drain(services)
        return any(not c.get("public", True) for c in fake_zendesk.comments(case["ticket"]))

    wait_until(noted, what="the rejection's internal note")


def customer_writes(fake_zendesk, ticket_id: int, body: str, *, status: str = "open") -> None:
    httpx.put(f"{fake_zendesk.url}/api/v2/tickets/{ticket_id}.json", auth=fake_zendesk.auth, json={
        "ticket": {"status": status, "comment": {"author_id": CUSTOMER, "body": body, "public": True}}}
              ).raise_for_status()


def agent_writes(fake_zendesk, ticket_id: int, body: str) -> None:
    httpx.put(f"{fake_zendesk.url}/api/v2/tickets/{ticket_id}.json", auth=fake_zendesk.auth, json={
        "ticket": {"status": "solved", "comment": {"author_id": ZENDESK_AGENT, "body": body, "public": True}}}
              ).raise_for_status()


def due_now(services, *kinds: str) -> None:
    """Bring the scheduled jobs of these kinds forward to now, as if their time had come."""
    now = iso(datetime.now(UTC))
    marks = ", ".join("?" for _ in kinds)
    services.store.db.execute(f"update events set due_at = ?, next_attempt_at = ? where kind in ({marks})"
                              " and state = 'pending'", [now, now, *kinds])
    drain(services)


@pytest.fixture
def life(fake_slack, fake_zendesk, tmp_path, caplog):
    """The customer's life with Seam, on a deployment with every feature that writes on their behalf turned on."""
    caplog.set_level(logging.INFO)
    fake_zendesk.add_user(id=CUSTOMER, name=NAME, email=EMAIL)
    embeddings = FakeEmbeddings().__enter__()
    services = staffed(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path,
                       customer_notice=CustomerNoticeTable(enabled=True),
                       keep_warm=KeepWarmTable(enabled=True, after=86400.0, every=86400.0, max=1),
                       embeddings_model="test-embed-1", embeddings_base_url=embeddings.base_url,
                       retention=RetentionTable(erase_after=30 * 86400.0))
    client = web_client(services)

    # 1. Escalated, a follow-up joins it, reminders, the SLA watch and keep-warm come due, claimed, edited, sent.
    first = escalated(services, fake_slack, fake_zendesk, ticket_id=88_001, requester=CUSTOMER,
                      subject=f"{SUBJECT_WORD} order {ORDER} never arrived",
                      text=f"My {WORD} lamp, order {ORDER}, never arrived. Call me on {PHONE}; I want a person.")
    customer_writes(fake_zendesk, 88_001, f"Still no {WORD} lamp. This is {NAME}, phone {PHONE}.")
    ticket_event(services, 88_001, "follow-up")
    due_now(services, "reminder", "sla_watch", "keep_warm", "manager_page")
    open_home(client, fake_slack)  # the agent's App Home lists the open escalation
    click(client, "seam_claim", first)
    drain(services)
    wait_until(lambda: fake_zendesk.calls_to("update_ticket"), what="the claim's assignment")
    click(client, "seam_edit", first)
    drain(services)
    submit(client, "seam_edit_submit", first,
           edit_values(f"Hi Xyloquest, order {ORDER} ships today; we will call {PHONE} when it leaves."))
    wait_until(lambda: services.store.escalation(first["escalation"]).state == "sent", what="the edited reply")
    drain(services)

    # 2. Escalated and rejected with a note quoting the customer.
    second = escalated(services, fake_slack, fake_zendesk, ticket_id=88_002, requester=CUSTOMER,
                       subject=f"Refund for {SUBJECT_WORD} {ORDER}",
                       text=f"Refund my {WORD} order {ORDER} now, I want to talk to a person.")
    reject(services, client, fake_zendesk, second, f"{NAME} means order {ORDER}")

    # 3. Answered automatically (a manager lowered the bar), reopened by the customer (a quality-guard verdict),
    # then answered in Zendesk.
    services.store.set_setting("thresholds", {"auto": 0.5, "draft": 0.3}, actor="UMANAGER")
    fake_zendesk.add_ticket(id=88_003, subject=f"Reset password {SUBJECT_WORD}", requester_id=CUSTOMER,
                            comments=[{"author_id": CUSTOMER, "body": "I forgot my password, how do I reset it?"}])
    outcome = ticket_event(services, 88_003, "new")
    customer_writes(fake_zendesk, 88_003, f"That did not work for {WORD}. I want to talk to a person, {PHONE}.")
    reopened = ticket_event(services, 88_003, "reopened")
    if "escalated" in reopened:
        agent_writes(fake_zendesk, 88_003, f"Hi Xyloquest, I reset it for you; order {ORDER} is unaffected.")
        ticket_event(services, 88_003, "solved")
    drain(services)
    yield {"services": services, "cases": (first, second), "auto": outcome,
            "reopened": reopened, "database": tmp_path / "seam.db", "tmp": tmp_path}
    embeddings.stop()


def logged(caplog) -> list[str]:
    """The log lines Seam wrote at INFO or above that hold a marker (third-party libraries' DEBUG output aside)."""
    return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records
            if r.levelno >= logging.INFO and found_in(r.getMessage())]


def forget(life, *args: str):
    return run_in_process("forget", *args, env={"DATABASE_PATH": str(life["database"])}, cwd=life["tmp"])


def probe(services):
    """What the engine drafts for another customer asking what our customer asked."""
    from bot.models import Message, Ticket

    return services.engine.assess(Ticket(id="probe", subject="lamp never arrived", requester_name="Bo Other",
                                         messages=(Message("customer", f"My {WORD} lamp order never arrived, when"
                                                                       " does it ship?"),)))


def test_after_forget_nothing_of_the_customer_is_left_anywhere_seam_keeps_or_posted(
        life, fake_slack, fake_zendesk, caplog, tmp_path):
    services, database = life["services"], life["database"]
    assert "resolved" in life["auto"] and "escalated" in life["reopened"], (life["auto"], life["reopened"])
    held = database_holding(database)
    assert {"tickets.subject", "tickets.requester", "events.body", "decisions.summary", "escalations.card",
            "escalations.customer_text", "feedback.final_text", "feedback.reason", "audit_log.detail"} <= set(held)
    assert seams_slack(fake_slack), "the cards, transcripts, notes and DMs quote the customer"
    assert any(found_in(t.messages[0].body) for t in learned_tickets(services.store))
    assert probe(services).answer_source.startswith("seam-reply"), "the engine drafts from the learnt reply"
    assert logged(caplog) == [], "Seam logs no customer text, name or address at INFO and above"

    result = forget(life, "--email", EMAIL.upper(), "--yes")
    assert result.exit_code == 0, result.output
    assert "erased 3 zendesk ticket(s): 88001, 88002, 88003" in result.output
    drain(services)  # serve's erase_thread jobs
    services.poster.refresh_stale()  # serve's card sweep

    assert database_holding(database) == {}
    for fmt in ("csv", "jsonl"):
        exported = run_in_process("feedback", "export", "--format", fmt, env={"DATABASE_PATH": str(database)},
                                  cwd=tmp_path)
        assert exported.exit_code == 0 and found_in(exported.output) == [], (fmt, found_in(exported.output))
    assert seams_slack(fake_slack) == {}, "what Seam posted is re-rendered or deleted"
    assert not [t for t in learned_tickets(services.store)
                if found_in(t.messages[0].body or "") or found_in(t.resolution.answer or "")]
    assert logged(caplog) == []

    # A second forget is harmless: the address is gone, so it matches nothing; by ticket it finds nothing more to
    # blank and nothing more to delete in Slack.
    again = forget(life, "--email", EMAIL, "--yes")
    assert again.exit_code == 0 and "nothing to erase" in again.output
    again = forget(life, "--ticket", "88001", "--ticket", "88003", "--yes")
    assert again.exit_code == 0 and "erased 2 zendesk ticket(s)" in again.output
    assert drain(services) == 0 and database_holding(database) == {}

    # The helpdesk still has the tickets: redelivered webhooks and reconciliation of the same turns are
    # duplicates, skipped before anything is kept again, and nothing learnt comes back.
    for ticket_id in (88_001, 88_002, 88_003):
        assert not services.store.record_event(helpdesk="zendesk", dedupe_key=f"t{ticket_id}:new",
                                               ticket_id=str(ticket_id), body="{}")[1]
        assert ticket_event(services, ticket_id, "reconciled").startswith("skipped")
    assert database_holding(database) == {} and seams_slack(fake_slack) == {}
    assert services.store.learned_answers() == []

    # serve's running engine still holds the learnt reply until its next refit, which the knowledge sync's round
    # (or the next reply learnt) makes: the erasure moved the engine's revision.
    assert services.engine.refresh()
    assert not (probe(services).answer_source or "").startswith("seam-reply")
    # serve restarted on the same file: the engine it fits neither holds nor drafts from the erased replies.
    restarted = staffed(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path)
    drafted = probe(restarted)
    assert not drafted.answer_source or not drafted.answer_source.startswith("seam-reply"), drafted
    assert not found_in(json.dumps([drafted.answer, drafted.summary, drafted.evidence]).replace(WORD, ""))


def test_retention_erases_the_same_everywhere_once_the_customers_tickets_are_idle(life, fake_slack, caplog, tmp_path):
    services, database = life["services"], life["database"]
    when = iso(datetime.now(UTC) - timedelta(days=31))
    with sqlite3.connect(database) as db:
        db.execute("update tickets set last_seen_at = ?", [when])
        db.execute("update escalations set updated_at = ?", [when])
    [sweep] = [job for job in services.runner._periodic if isinstance(job, RetentionSweep)]

    assert sweep.run_once() == 3
    drain(services)
    services.poster.refresh_stale()

    assert database_holding(database) == {}
    exported = run_in_process("feedback", "export", "--format", "jsonl", env={"DATABASE_PATH": str(database)},
                              cwd=tmp_path)
    assert exported.exit_code == 0 and found_in(exported.output) == []
    assert seams_slack(fake_slack) == {}
    assert services.store.learned_answers() == [] and logged(caplog) == []
    assert services.engine.refresh() and not (probe(services).answer_source or "").startswith("seam-reply")


def test_forget_by_email_also_erases_the_customers_tickets_kept_under_a_helpdesk_used_before(
        fake_slack, fake_zendesk, tmp_path):
    # A team that moved from Freshdesk to Zendesk: Seam's file still holds what it kept of the Freshdesk tickets.
    # An address is the customer's whatever helpdesk their tickets came through; a ticket id is not (`--ticket`
    # names the current helpdesk's).
    fake_zendesk.add_user(id=CUSTOMER, name=NAME, email=EMAIL)
    services = staffed(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path)
    services.store.upsert_ticket(helpdesk="freshdesk", ticket_id="512", subject=f"{SUBJECT_WORD} order {ORDER}",
                                 requester=EMAIL.title(), priority=None)
    services.store.upsert_ticket(helpdesk="freshdesk", ticket_id="513", subject="Someone else's",
                                 requester="bo@example.com", priority=None)
    escalated(services, fake_slack, fake_zendesk, ticket_id=88_010, requester=CUSTOMER,
              subject=f"{SUBJECT_WORD} again", text=f"Where is my {WORD} lamp? I want a person.")
    with sqlite3.connect(tmp_path / "seam.db") as db:
        db.execute("update escalations set state = 'sent', finished_at = updated_at")
    life = {"database": tmp_path / "seam.db", "tmp": tmp_path}

    assert forget(life, "--ticket", "512", "--dry-run").output.startswith("nothing to erase"), \
        "a bare id is the current helpdesk's"
    result = forget(life, "--email", EMAIL, "--yes")

    assert result.exit_code == 0, result.output
    assert "erased 2 ticket(s): 512 (freshdesk), 88010" in result.output
    assert database_holding(tmp_path / "seam.db") == {}
    with sqlite3.connect(tmp_path / "seam.db") as db:
        assert db.execute("select requester from tickets where ticket_id = '513'").fetchone() == ("bo@example.com",)



def test_a_customer_with_one_ticket_still_being_worked_on_is_erased_once_it_is_finished(
        fake_slack, fake_zendesk, tmp_path):
    fake_zendesk.add_user(id=CUSTOMER, name=NAME, email=EMAIL)
    services = staffed(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path)
    client = web_client(services)
    done = escalated(services, fake_slack, fake_zendesk, ticket_id=88_030, requester=CUSTOMER,
                     subject=f"{SUBJECT_WORD} lamp", text=f"My {WORD} lamp {ORDER} broke. I want a person.")
    agent_writes(fake_zendesk, 88_030, "Hi Xyloquest, a new lamp is on its way.")
    ticket_event(services, 88_030, "solved")
    open_case = escalated(services, fake_slack, fake_zendesk, ticket_id=88_031, requester=CUSTOMER,
                          subject=f"{SUBJECT_WORD} refund", text=f"Refund {ORDER} to {PHONE}, I want a person.")
    life = {"database": tmp_path / "seam.db", "tmp": tmp_path}
    held = database_holding(life["database"])

    refused = forget(life, "--email", EMAIL, "--yes")

    assert refused.exit_code == 1 and "not erased: zendesk ticket(s) 88031 still being worked on" in refused.output
    assert database_holding(life["database"]) == held, "nothing is erased, not even the finished ticket"
    assert done["ts"] and drain(services) == 0
    reject(services, client, fake_zendesk, open_case, f"{NAME} called")

    erased = forget(life, "--email", EMAIL, "--yes")

    assert erased.exit_code == 0 and "erased 2 zendesk ticket(s): 88030, 88031" in erased.output
    drain(services)
    services.poster.refresh_stale()
    assert database_holding(life["database"]) == {} and seams_slack(fake_slack) == {}


def test_an_agents_app_home_published_while_the_escalation_was_open_no_longer_lists_it_after_forget(
        life, fake_slack):
    # The life's agent opened their App Home while the first escalation waited: it lists its subject.
    assert found_in(json.dumps(fake_slack.home_view(AGENT)))
    assert forget(life, "--email", EMAIL, "--yes").exit_code == 0
    drain(life["services"])
    life["services"].poster.refresh_stale()

    assert seams_slack(fake_slack, homes=True) == {}



def test_a_helpdesk_refusal_quoting_the_customer_is_not_written_to_the_log(fake_slack, fake_zendesk, tmp_path,
                                                                           caplog):
    caplog.set_level(logging.INFO)
    fake_zendesk.add_user(id=CUSTOMER, name=NAME, email=EMAIL)
    services = staffed(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path)
    client = web_client(services)
    case = escalated(services, fake_slack, fake_zendesk, ticket_id=88_040, requester=CUSTOMER,
                     subject="Lamp", text=f"My {WORD} lamp broke. I want a person.")
    click(client, "seam_claim", case)
    drain(services)
    wait_until(lambda: fake_zendesk.calls_to("update_ticket"), what="the claim's assignment")
    fake_zendesk.fail("update_ticket", status=422, times=1,
                      body={"error": "RecordInvalid", "description": f"note about the {WORD} lamp is invalid"})
    click(client, "seam_reject", case)
    submit(client, "seam_reject_submit", case, reject_values("wrong_information", f"{WORD} lamp was a gift"))
    wait_until(lambda: services.store.escalation(case["escalation"]).state == "rejected", what="the rejection")
    drain(services)
    # The note's failure is recorded on the escalation right after it is logged (bot.flows.actions): only then
    # is the log complete, however late the write ran.
    wait_until(lambda: services.store.escalation(case["escalation"]).last_error, what="the note's failure recorded")

    assert logged(caplog) == []
    # The log still says which call failed and the helpdesk's error code; its words, which quote the customer,
    # are on the escalation (erased with the ticket), where the agent sees them.
    assert any("answered 422 (RecordInvalid)" in r.getMessage() for r in caplog.records)
    assert f"note about the {WORD} lamp is invalid" in services.store.escalation(case["escalation"]).last_error
