"""The live quality guard (issue 11, item 6): automatic answers recorded, reopens detected (a complaint counts, a
thank-you does not, a ticket set back to open counts), the rate judged only on settled answers, automation paused
once with one announcement, and a manager's resume starting the count afresh — in the store, in-process against the
fakes, and end to end through `python -m bot serve`.
"""

from __future__ import annotations

import itertools
import json
import logging
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from bot.config import QualityGuardTable, load_settings
from bot.errors import ConfigError
from bot.flows.controls import PAUSED_KEY, Controls
from bot.flows.pipeline import Pipeline, _decision_from_row
from bot.flows.quality import is_thanks, reopen_shown
from bot.jobs.worker import Worker
from bot.models import Decision, Event, Message, Route, Ticket
from bot.store import ANNOUNCE_KIND, MIGRATIONS, Store
from bot.text import iso, utcnow
from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.fakes import FakeSlack, FakeZendesk
from tests.support.posts import posts_for
from tests.support.server import UNPACED, SeamServer, seam_env
from tests.support.signing import slack_headers
from tests.support.waiting import wait_until

ANSWER = "Open the sign-in page and choose Forgot password."
QUESTION = "I forgot my password, how do I reset it?"

# -- what counts as unsatisfied ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "thanks, that worked!", "Thank you so much!", "Thanks! 👍", "It works now, cheers", "perfect", "ok.",
    "Got it, thanks again", "no worries, thanks!", "That did the trick, much appreciated", "merci beaucoup",
])
def test_a_short_thank_you_is_not_a_complaint(text):
    assert is_thanks(text)


@pytest.mark.parametrize("text", [
    "That did not work, I still cannot log in.", "thanks but it doesn't work", "Thanks for nothing",
    "thanks? the link is broken", "It still shows the same error", "Great, another useless bot answer",
    "Thank you, although I never got the email and the page says my account is locked and I have tried three "
    "times already today", "I dont see that button", "", "wrong article", "I'd appreciate a call back",
    "I would be grateful if someone phoned me",
])
def test_a_complaint_a_question_or_a_long_message_is_not_a_thank_you(text):
    assert not is_thanks(text)


def thread(*messages: tuple[str, str], status: str = "open") -> Ticket:
    return Ticket(id="1", subject="Reset password", status=status,
                  messages=tuple(Message(author=a, body=b, created_at=None) for a, b in messages))


def test_the_thread_shows_a_reopen_only_after_seams_reply():
    now = utcnow()

    def shown(ticket: Ticket, resolve_status: str | None = "solved") -> str | None:
        found = reopen_shown(ticket, answer=ANSWER, resolve_status=resolve_status, now=now)
        return found and found[1]

    asked = ("customer", QUESTION)
    replied = ("bot", ANSWER)
    assert shown(thread(asked, replied, status="solved")) is None
    assert shown(thread(asked, replied, ("customer", "Still broken"))) == "customer replied"
    assert shown(thread(asked, replied, ("customer", "thanks, that worked!"))) is None, "a helpdesk reopens on thanks"
    assert shown(thread(asked, replied, ("customer", "thanks!"), ("customer", "wait, no, it failed"))) == \
        "customer replied"
    # Set back to open without a word: the customer or an agent reopened it.
    assert shown(thread(asked, replied)) == "ticket reopened"
    # ...unless Seam never set a status ("" in [resolve]), or someone has answered publicly since.
    assert shown(thread(asked, replied), resolve_status=None) is None
    assert shown(thread(asked, replied, ("agent", "Let me look."), ("customer", "Still broken"))) is None
    # A private note between Seam's reply and the customer's does not hide it.
    note = Ticket(id="1", status="open", messages=(Message("customer", QUESTION), Message("bot", ANSWER),
                                                   Message("agent", "note", public=False),
                                                   Message("customer", "Nope, same error")))
    assert shown(note) == "customer replied"
    # Seam's notice that a person will follow up answers nothing: the complaint after it still counts, and when
    # the helpdesk reflowed the answer past recognising, the notice is not taken for it.
    notice = Message("bot", "Hi Ana, a member of our team will get back to you.", acknowledgement=True)
    assert shown(Ticket(id="1", status="open", messages=(Message("customer", QUESTION), Message("bot", ANSWER),
                                                         notice, Message("customer", "Still broken")))) == \
        "customer replied"
    reflowed = Message("bot", ANSWER.upper() + " (sent by Seam)")
    assert shown(Ticket(id="1", status="open", messages=(Message("customer", QUESTION), reflowed,
                                                         Message("customer", "Still broken"), notice))) == \
        "customer replied"
    # A helpdesk clock ahead of ours cannot push a reply out of the window: the time is never later than now.
    ahead = Ticket(id="1", messages=(Message("bot", ANSWER),
                                     Message("customer", "No", created_at="2999-01-01T00:00:00Z")))
    assert reopen_shown(ahead, answer=ANSWER, resolve_status="solved", now=now)[0] == now


# -- the store ---------------------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path):
    store = Store(tmp_path / "seam.db")
    yield store
    store.close()


def answered(store: Store, ticket: str, *, hours_ago: float = 0.0) -> int:
    """An automatic answer on `ticket` by a new event, `hours_ago` in the past; its event id."""
    event_id, _ = store.record_event(helpdesk="zendesk", dedupe_key=f"k{time.time_ns()}", ticket_id=ticket, body="{}")
    store.record_automatic_answer(event_id=event_id, ticket_key=f"zendesk:{ticket}", ticket_id=ticket,
                                  answer_source="reset-password", confidence=0.95)
    if hours_ago:
        store.db.execute("update automatic_answers set answered_at = ? where event_id = ?",
                         [iso(utcnow() - timedelta(hours=hours_ago)), event_id])
    return event_id


def later_event(store: Store, ticket: str) -> int:
    event_id, _ = store.record_event(helpdesk="zendesk", dedupe_key=f"k{time.time_ns()}", ticket_id=ticket, body="{}")
    return event_id


def test_the_migration_follows_m005_and_keeps_its_name(store: Store):
    names = [m.name for m in MIGRATIONS.applied(store.db)]
    assert names[names.index("m005_job_kinds") + 1] == "m006_automatic_answers"


def test_an_answer_is_recorded_once_per_event(store: Store):
    event_id = answered(store, "1")
    again = store.record_automatic_answer(event_id=event_id, ticket_key="zendesk:1", ticket_id="1",
                                          answer_source="reset-password", confidence=0.95)
    assert store.db["automatic_answers"].count == 1
    assert store.latest_automatic_answer("zendesk:1")["id"] == again


def test_the_latest_answer_is_reopened_once_and_only_inside_the_window(store: Store):
    answered(store, "1", hours_ago=3)
    latest = answered(store, "1", hours_ago=1)
    start = iso(utcnow() - timedelta(hours=2))
    own = store.mark_reopened(ticket_key="zendesk:1", event_id=latest, reason="x", answered_after=start)
    assert own is None, "the event that answered cannot reopen its own answer"
    first = later_event(store, "1")
    row = store.mark_reopened(ticket_key="zendesk:1", event_id=first, reason="customer replied within 2 h",
                              answered_after=start)
    assert row["event_id"] == latest and row["reopen_event_id"] == first
    # The same event again (a retry) still owns it; another event does not reopen it a second time.
    assert store.mark_reopened(ticket_key="zendesk:1", event_id=first, reason="y", answered_after=start)
    assert store.mark_reopened(ticket_key="zendesk:1", event_id=later_event(store, "1"), reason="z",
                               answered_after=start) is None
    assert store.latest_automatic_answer("zendesk:1")["reopen_reason"] == "customer replied within 2 h"
    # An answer older than the window's start is not reopened.
    answered(store, "2", hours_ago=5)
    assert store.mark_reopened(ticket_key="zendesk:2", event_id=later_event(store, "2"), reason="late",
                               answered_after=start) is None


def test_answers_still_inside_their_window_are_not_judged_yet(store: Store):
    for n in range(3):
        answered(store, f"old{n}", hours_ago=50)
    fresh = [answered(store, f"new{n}") for n in range(4)]
    store.mark_reopened(ticket_key="zendesk:new0", event_id=later_event(store, "new0"), reason="r",
                        answered_after=iso(utcnow() - timedelta(hours=48)))
    judged = store.judged_automatic_answers(last=50, window_seconds=48 * 3600)
    # The three settled answers; the four fresh ones wait for their window, the reopened one with the others of
    # its time (alone, the reopens would be judged a window before the answers nobody reopened).
    assert len(judged) == 3 and not any(a["reopened_at"] for a in judged)
    assert len(store.judged_automatic_answers(last=2, window_seconds=48 * 3600)) == 2
    later = store.judged_automatic_answers(last=50, window_seconds=48 * 3600, now=utcnow() + timedelta(hours=49))
    assert len(later) == 7 and sum(1 for a in later if a["reopened_at"]) == 1
    assert [a["event_id"] for a in later][:4] == fresh[::-1], "newest first"
    # The latest answers, judged or not: the four fresh ones first.
    latest = store.latest_automatic_answers(last=5)
    assert [a["event_id"] for a in latest][:4] == fresh[::-1] and len(latest) == 5
    # Only answers made after `since` (the last resume) count.
    assert len(store.latest_automatic_answers(last=50, since=iso(utcnow() - timedelta(hours=1)))) == 4
    assert len(store.judged_automatic_answers(last=50, window_seconds=48 * 3600,
                                              since=iso(utcnow() - timedelta(hours=49)), now=utcnow()
                                              + timedelta(hours=49))) == 4
    assert store.automatic_answer_counts(since=iso(utcnow() - timedelta(days=7))) == {"answers": 7, "reopened": 1}
    assert store.automatic_answer_counts(since=iso(utcnow() - timedelta(hours=1))) == {"answers": 4, "reopened": 1}


def test_the_guard_pauses_once_audits_and_queues_one_announcement(store: Store):
    figures = {"reopened": 2, "judged": 4, "rate": 0.5, "limit": 0.3, "window_hours": 48, "tickets": ["1", "2"]}

    def pause() -> bool:
        return store.pause_for_quality(paused_key=PAUSED_KEY, record_key="quality_guard_pause", figures=figures,
                                       announcement="Seam paused", helpdesk="zendesk", ticket_id="2")

    assert pause() is True
    assert pause() is False, "already paused: nothing more is written"
    assert store.get_setting(PAUSED_KEY) is True
    assert store.setting_record(PAUSED_KEY)["updated_by"] == "seam"
    [entry] = store.audit_rows(limit=10, actor="seam")
    assert entry["action"] == "quality_guard_paused" and entry["detail"]["rate"] == 0.5
    [job] = [e for e in store.db["events"].rows if e["kind"] == ANNOUNCE_KIND]
    assert json.loads(job["body"]) == {"text": "Seam paused"} and job["state"] == "pending"


def test_the_feedback_export_lists_automatic_answers_and_reopens(store: Store):
    event_id = answered(store, "1")
    store.add_decision(event_id=event_id, ticket_key="zendesk:1", decision=Decision(
        route=Route.RESOLVE, confidence=0.95, reasons=(), answer=ANSWER, answer_source="reset-password", summary=""))
    store.mark_reopened(ticket_key="zendesk:1", event_id=later_event(store, "1"), reason="customer replied within 48 h",
                        answered_after=iso(utcnow() - timedelta(hours=48)))
    store.add_feedback(escalation_id=None, ticket_key="zendesk:2", user_id="UAGENT", action="claim")
    rows = list(store.feedback_rows())
    assert [r["action"] for r in rows] == ["auto_answer", "reopened", "claim"]
    auto, reopened, claim = rows
    assert auto["user_id"] == "seam" and auto["final_text"] == ANSWER and auto["id"] is None
    assert reopened["reason"] == "customer replied within 48 h" and reopened["ticket_key"] == "zendesk:1"
    assert claim["id"] == 1


# -- the configuration -------------------------------------------------------------------------------------------


def test_the_quality_guard_table_has_documented_defaults_and_refuses_unknown_keys(tmp_path: Path):
    assert load_settings(env={}, cwd=tmp_path).quality_guard == QualityGuardTable(
        enabled=True, window_hours=48.0, last=50, max_reopen_rate=0.15, min_answers=20)
    (tmp_path / "seam.toml").write_text("[quality_guard]\nwindow_hours = 24\nlast = 30\nmin_answers = 10\n")
    assert load_settings(env={}, cwd=tmp_path).quality_guard.window_seconds == 24 * 3600
    for body, message in (('window = "48h"', "unknown key 'window'"), ("min_answers = 60", "cannot be more than"),
                          ("max_reopen_rate = 1.5", "max_reopen_rate"), ('enabled = "yes"', "true or false")):
        (tmp_path / "seam.toml").write_text(f"[quality_guard]\n{body}\n")
        with pytest.raises(ConfigError, match=message):
            load_settings(env={}, cwd=tmp_path)


# -- in-process: the pipeline against the fakes -------------------------------------------------------------------


def customer_writes(zendesk: FakeZendesk, ticket_id: int, body: str | None, *, status: str = "open") -> None:
    """What Zendesk does when the requester replies to a solved ticket: a comment, and the ticket open again."""
    change: dict = {"status": status}
    if body is not None:
        change["comment"] = {"author_id": CUSTOMER_ID, "body": body, "public": True}
    httpx.put(f"{zendesk.url}/api/v2/tickets/{ticket_id}.json", auth=zendesk.auth,
              json={"ticket": change}).raise_for_status()


_keys = itertools.count()


def run_event(pipeline: Pipeline, ticket_id: int) -> Event:
    event_id, _ = pipeline.store.record_event(helpdesk="zendesk", dedupe_key=f"e{next(_keys)}",
                                              ticket_id=str(ticket_id), body="{}")
    worker = Worker(store=pipeline.store, handlers={"ticket": pipeline.process,
                                                    ANNOUNCE_KIND: pipeline.guard.announce})
    while worker.run_once():  # the event, and any announcement it queued
        pass
    return pipeline.store.event(event_id)


def asked(zendesk: FakeZendesk, ticket_id: int) -> int:
    zendesk.add_ticket(id=ticket_id, subject="Reset password", requester_id=CUSTOMER_ID,
                       comments=[{"author_id": CUSTOMER_ID, "body": QUESTION}])
    return ticket_id


def test_a_resolved_ticket_records_its_answer_and_a_complaint_reopens_it_once(pipeline, fake_zendesk, fake_slack):
    first = run_event(pipeline, asked(fake_zendesk, 21))
    assert first.outcome == "resolved"
    answer = pipeline.store.latest_automatic_answer("zendesk:21")
    assert answer["event_id"] == first.id and answer["answer_source"] and answer["reopened_at"] is None
    # Seam's own reply fires the trigger again: no reopen.
    assert run_event(pipeline, 21).outcome.startswith("skipped")
    assert pipeline.store.latest_automatic_answer("zendesk:21")["reopened_at"] is None
    customer_writes(fake_zendesk, 21, "That did not work. I want to talk to a person.")
    complaint = run_event(pipeline, 21)
    assert complaint.outcome == "escalated", "the new message takes its own route"
    reopened = pipeline.store.latest_automatic_answer("zendesk:21")
    assert reopened["reopen_event_id"] == complaint.id and reopened["reopen_reason"] == "customer replied within 48 h"
    # Redeliveries and reconciliation of the same turn record nothing more.
    for _ in range(2):
        run_event(pipeline, 21)
    assert pipeline.store.latest_automatic_answer("zendesk:21")["reopen_event_id"] == complaint.id
    assert pipeline.store.automatic_answer_counts(since="") == {"answers": 1, "reopened": 1}


def test_a_thank_you_is_not_a_reopen_and_a_ticket_set_back_to_open_is(pipeline, fake_zendesk):
    run_event(pipeline, asked(fake_zendesk, 22))
    customer_writes(fake_zendesk, 22, "thanks, that worked!")
    run_event(pipeline, 22)
    assert pipeline.store.db.execute("select count(reopened_at) from automatic_answers").fetchone()[0] == 0
    run_event(pipeline, asked(fake_zendesk, 23))
    customer_writes(fake_zendesk, 23, None)  # an agent sets it back to open, without a comment
    event = run_event(pipeline, 23)
    assert event.outcome == "skipped: latest comment is by the bot"
    assert pipeline.store.latest_automatic_answer("zendesk:23")["reopen_reason"] == "ticket reopened within 48 h"


def test_a_reply_after_the_window_is_a_new_conversation(pipeline, fake_zendesk):
    run_event(pipeline, asked(fake_zendesk, 24))
    pipeline.store.db.execute("update automatic_answers set answered_at = ?",
                              [iso(utcnow() - timedelta(hours=49))])
    customer_writes(fake_zendesk, 24, "Another question: I want to talk to a person about my invoice.")
    run_event(pipeline, 24)
    assert pipeline.store.latest_automatic_answer("zendesk:24")["reopened_at"] is None


def guarded(pipeline: Pipeline, **table) -> Pipeline:
    settings = replace(pipeline.settings, quality_guard=QualityGuardTable(**table))
    return replace(pipeline, settings=settings)


def test_the_guard_trips_once_pauses_and_announces_and_a_resume_starts_afresh(pipeline, fake_zendesk, fake_slack):
    pipeline = guarded(pipeline, last=4, min_answers=4, max_reopen_rate=0.3)
    for ticket_id in (31, 32, 33, 34):
        assert run_event(pipeline, asked(fake_zendesk, ticket_id)).outcome == "resolved"
    # Two answers settle (their window passes unreopened), then two are reopened: 2 of 4 = 50% > 30%.
    pipeline.store.db.execute("update automatic_answers set answered_at = ? where ticket_id in ('31', '32')",
                              [iso(utcnow() - timedelta(hours=49))])
    customer_writes(fake_zendesk, 33, "No, that is wrong. I want to talk to a person.")
    run_event(pipeline, 33)
    assert pipeline.store.get_setting(PAUSED_KEY) is None, "3 judged: fewer than min_answers"
    customer_writes(fake_zendesk, 34, "Still broken, I want to talk to a person.")
    run_event(pipeline, 34)
    assert pipeline.store.get_setting(PAUSED_KEY) is True
    announcement = ("Seam paused automatic replies: 2 of the last 4 automatic answers (50%) were reopened within "
                    "48 h (limit 30%). A manager can `/escalation resume` after checking them.")
    wait_until(lambda: [m for m in fake_slack.messages(CHANNEL) if m["text"] == announcement], what="announcement")
    controls = Controls(store=pipeline.store, settings=replace(pipeline.settings, manager_user_ids=("UBOSS",)))
    assert "automation is paused* by the quality guard" in controls.thresholds_text()
    notice = controls.quality_notice()
    assert "The quality guard paused automatic replies" in notice and "Reopened: #34, #33" in notice
    assert "Automatic answers: 4, reopened: 2 (50%)." in controls.stats_text(days=7)
    assert "Confidence assumes" not in controls.stats_text(days=7), "this engine has no calibrated share"
    # An engine on knowledge alone says so, and how far the approved replies are from calibrating it.
    pipeline.store.add_feedback(escalation_id=None, action="edit", customer_text="where is my parcel",
                                final_text="It ships today.", user_id="UAGENT")
    plain = Controls(store=pipeline.store, settings=controls.settings, plain_score=lambda: True)
    learnt = "Replies learnt so far (approved, edited, or written in the helpdesk): 1 (at 50 Seam refits on them)."
    assert "Confidence is a plain score, not yet a probability" in plain.stats_text(days=7)
    assert learnt in plain.stats_text(days=7)
    assert "plain score" not in Controls(store=pipeline.store, settings=controls.settings,
                                         plain_score=lambda: False).stats_text(days=7)
    # While paused, new tickets are drafted for a person.
    assert run_event(pipeline, asked(fake_zendesk, 35)).outcome == "drafted"
    # A manager resumes; the old reopens no longer count, so one more reopen does not trip it again.
    resumed = controls.handle("UBOSS", "resume")
    assert resumed.text.startswith("Resumed") and "counting afresh" in resumed.text
    assert controls.quality_notice() is None
    assert run_event(pipeline, asked(fake_zendesk, 36)).outcome == "resolved"
    customer_writes(fake_zendesk, 36, "I want to talk to a person, it failed.")
    run_event(pipeline, 36)
    assert pipeline.store.latest_automatic_answer("zendesk:36")["reopened_at"]
    assert pipeline.store.get_setting(PAUSED_KEY) is False
    assert len([m for m in fake_slack.messages(CHANNEL) if m["text"].startswith("Seam paused")]) == 1


def test_a_disabled_guard_counts_but_never_pauses(pipeline, fake_zendesk):
    pipeline = guarded(pipeline, enabled=False, last=1, min_answers=1, max_reopen_rate=0.0)
    run_event(pipeline, asked(fake_zendesk, 41))
    customer_writes(fake_zendesk, 41, "Not what I asked. I want to talk to a person.")
    run_event(pipeline, 41)
    assert pipeline.store.latest_automatic_answer("zendesk:41")["reopened_at"]
    assert pipeline.store.get_setting(PAUSED_KEY) is None


# -- the verdicts tune the engine's share of uncovered questions ---------------------------------------------------


def test_reopens_beyond_what_the_confidences_foretold_raise_the_share_until_they_match():
    import numpy as np

    from bot.engine.base import Verdict
    from bot.engine.local import UNCOVERED_SHARE_BOUNDS, Calibrator, share_from_feedback

    floor, ceiling = UNCOVERED_SHARE_BOUNDS
    assert share_from_feedback([]) == floor
    # 40 answers each 96.3% sure at the floor: about one and a half reopens foretold.
    settled = [Verdict(right=0.99, balanced=0.1, reopened=False)] * 40
    assert share_from_feedback(settled) == floor
    assert share_from_feedback(settled[:39] + [Verdict(0.99, 0.1, True)]) == floor, "no more than foretold"
    shares = []
    for reopened in (3, 6, 12):
        verdicts = settled[reopened:] + [Verdict(0.99, 0.1, True)] * reopened
        share = share_from_feedback(verdicts)
        expected = (1 - Calibrator.combine(np.full(40, 0.99), np.full(40, 0.1), share)).sum()
        assert floor < share < ceiling and abs(expected - reopened) < 0.01
        shares.append(share)
    assert shares == sorted(shares), "more reopens, a higher share"
    assert share_from_feedback([Verdict(0.99, 0.1, True)] * 40) == ceiling
    # A part at the very edge (as stored) cannot divide by zero.
    assert share_from_feedback([Verdict(1.0, 1.0, True), Verdict(0.5, 0.0, False)]) == floor  # 1.5 foretold


def test_the_verdicts_need_enough_judged_answers_with_the_local_engines_parts(store: Store):
    from bot.flows.quality import verdicts

    table = QualityGuardTable(last=10, min_answers=3)
    events = []
    for n in range(3):
        event_id, _ = store.record_event(helpdesk="zendesk", dedupe_key=f"v{n}", ticket_id=f"v{n}", body="{}")
        store.record_automatic_answer(event_id=event_id, ticket_key=f"zendesk:v{n}", ticket_id=f"v{n}",
                                      answer_source="reset-password", confidence=0.95, calibration=(0.97, 0.1 * n))
        events.append(event_id)
    answered(store, "other-engine", hours_ago=50)  # no parts: another engine's answer, never a verdict
    store.db.execute("update automatic_answers set answered_at = ?", [iso(utcnow() - timedelta(hours=50))])
    found = verdicts(store, table)
    assert sorted((v.right, v.balanced, v.reopened) for v in found) == [(0.97, 0.0, False), (0.97, 0.1, False),
                                                                         (0.97, 0.2, False)]
    store.mark_reopened(ticket_key="zendesk:v2", event_id=later_event(store, "v2"), reason="r", answered_after="")
    assert sum(v.reopened for v in verdicts(store, table)) == 1
    assert verdicts(store, QualityGuardTable(last=10, min_answers=4)) == [], "three verdicts are too few"


def test_a_resolved_ticket_keeps_its_confidences_parts_for_the_verdict(pipeline, fake_zendesk):
    inner = pipeline.engine

    class WithParts:
        def assess(self, ticket: Ticket):
            return replace(inner.assess(ticket), calibration=(0.97, 0.04))

    pipeline = replace(pipeline, engine=WithParts())
    assert run_event(pipeline, asked(fake_zendesk, 51)).outcome == "resolved"
    answer = pipeline.store.latest_automatic_answer("zendesk:51")
    assert (answer["p_right"], answer["p_uncovered"]) == (0.97, 0.04)
    # A retry after a crash reads the decision back from the store: the parts come back with it.
    [row] = pipeline.store.db["decisions"].rows
    assert _decision_from_row(row).calibration == (0.97, 0.04)


def test_the_local_engine_answers_less_surely_once_customers_reopen_more_than_it_foretold(store: Store, caplog):
    from bot.engine.base import Verdict
    from bot.engine.local import DEFAULT_UNCOVERED_SHARE, LocalEngine
    from bot.models import read_tickets
    from bot.services import LiveEngine

    root = Path(__file__).resolve().parent.parent
    history = read_tickets(root / "examples" / "history.jsonl", limit=600)[0]
    replay = read_tickets(root / "examples" / "tickets.jsonl", limit=40)[0]
    told: list[Verdict] = []
    locked = threading.Event()

    def feedback() -> list[Verdict]:
        if locked.is_set():
            raise RuntimeError("database is locked")
        return told

    engine = LocalEngine(history=history, feedback=feedback)
    assert engine.calibrated
    before = [engine.assess(t) for t in replay]
    assert engine.uncovered_share == DEFAULT_UNCOVERED_SHARE and not engine.share_from_reopens
    # Every one of 40 automatic answers reopened: far more than their confidences foretold.
    told.extend(Verdict(*a.calibration, reopened=True) for a in before if a.calibration)
    after = [engine.assess(t) for t in replay]
    assert engine.feedback_share > DEFAULT_UNCOVERED_SHARE and engine.uncovered_share == engine.feedback_share
    assert engine.share_from_reopens
    live = LiveEngine(engine)
    controls = Controls(store=store, settings=load_settings(env={}), uncovered_share=live.uncovered_share)
    assert (f"Confidence assumes {engine.uncovered_share:.0%} of questions are outside the knowledge (raised because "
            "customers reopened more automatic answers than their confidence foretold).") in controls.stats_text(days=7)
    answered = [(b.confidence, a.confidence) for b, a in zip(before, after, strict=True) if b.calibration]
    assert answered and all(a < b for b, a in answered)
    assert [a.answer_source for a in after] == [b.answer_source for b in before], "the same answers, less sure"

    # Verdicts that cannot be read (a locked database): the share they last showed stands, logged once.
    raised = engine.feedback_share
    locked.set()
    with caplog.at_level(logging.ERROR, logger="bot.engine.local"):
        assert [engine.assess(t).confidence for t in replay] == [a.confidence for a in after]
    assert engine.feedback_share == raised
    assert len([r for r in caplog.records if "unreadable" in r.getMessage()]) == 1
    engine = LocalEngine(history=history, feedback=feedback)
    assert [engine.assess(t).confidence for t in replay] == [b.confidence for b in before], "none read yet: 20%"


# -- end to end through `python -m bot serve` ----------------------------------------------------------------------

MANAGER = "UBOSS"
WINDOW_HOURS = 0.005  # 18 s: long enough to reply inside it on a busy machine, short enough to wait out
_ids = itertools.count(7000)
_deliveries = itertools.count()


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
    tmp = tmp_path_factory.mktemp("quality")
    config = tmp / "seam.toml"
    config.write_text(UNPACED + f"\n[quality_guard]\nwindow_hours = {WINDOW_HOURS}\nlast = 4\nmin_answers = 4\n"
                                "max_reopen_rate = 0.3\n")
    env = seam_env(slack=slack, zendesk=zendesk, tmp=tmp, MANAGER_USER_IDS=MANAGER, SEAM_CONFIG=str(config))
    server = SeamServer(env, tmp / "serve.log").start()
    yield server
    assert server.stop() == 0, server.log()


def webhook(seam: SeamServer, ticket_id: int) -> None:
    # A distinct body per delivery: the same bytes signed in the same second would be a redelivery.
    assert seam.post_webhook({"ticket_id": ticket_id, "delivery": next(_deliveries)}).status_code == 202


def settled(seam: SeamServer, ticket_id: int, events: int) -> None:
    """Wait until `events` ticket events for this ticket are done."""
    store = Store(seam.env["DATABASE_PATH"])
    wait_until(lambda: store.db.execute("select count(*) from events where kind = 'ticket' and ticket_id = ? and "
                                        "state = 'done'", [str(ticket_id)]).fetchone()[0] >= events,
               timeout=20, what=f"{events} events done for ticket {ticket_id}")


def command(seam: SeamServer, user: str, text: str) -> str:
    body = urlencode({"token": "t", "team_id": "T1", "channel_id": CHANNEL, "user_id": user, "command": "/escalation",
                      "text": text, "response_url": "https://hooks.slack.invalid/1", "trigger_id": "1.2.3"}).encode()
    response = seam.http.post("/slack/events", content=body, headers=slack_headers(body))
    assert response.status_code == 200, response.text
    return response.json()["text"]


def announcements(slack: FakeSlack, start: str) -> list[str]:
    # Not the cards (an escalation's text may quote anything); an announcement carries its own metadata.
    return [m["text"] for m in slack.messages(CHANNEL)
            if (m.get("metadata") or {}).get("event_type") != "seam_escalation" and m["text"].startswith(start)]


def replies_by_seam(zendesk: FakeZendesk, ticket_id: int) -> int:
    return sum(1 for c in zendesk.comments(ticket_id) if c["author_id"] != CUSTOMER_ID)


def new_answered_tickets(seam: SeamServer, zendesk: FakeZendesk, count: int) -> list[int]:
    tickets = [asked(zendesk, next(_ids)) for _ in range(count)]
    for ticket_id in tickets:
        webhook(seam, ticket_id)
    for ticket_id in tickets:
        wait_until(lambda t=ticket_id: zendesk.ticket(t)["status"] == "solved", timeout=20, what="the AI reply")
    return tickets


def open_home(seam: SeamServer, slack: FakeSlack, user: str) -> str:
    body = json.dumps({"token": "t", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
                       "event_id": f"Ev{time.time_ns()}", "event_time": int(time.time()),
                       "event": {"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home"}}).encode()
    before = len(slack.calls_to("views.publish"))
    seam.http.post("/slack/events", content=body, headers=slack_headers(body, content_type="application/json"))
    calls = wait_until(lambda: [c for c in slack.calls_to("views.publish")[before:] if c.params["user_id"] == user],
                       what="views.publish")
    return json.dumps(calls[-1].params["view"])


def test_reopened_answers_pause_automation_once_until_a_manager_resumes(seam, slack, zendesk):
    store = Store(seam.env["DATABASE_PATH"])
    paused_text = "Seam paused automatic replies"
    # Five answered, the first before the rest; a complaint on it (a reopen, but 1 judged is too few) and a
    # thank-you on another (not a reopen).
    [complained] = new_answered_tickets(seam, zendesk, 1)
    thanked, *_ = new_answered_tickets(seam, zendesk, 4)
    customer_writes(zendesk, thanked, "thanks, that worked!")
    webhook(seam, thanked)
    customer_writes(zendesk, complained, "That did not work. I want to talk to a person.")
    webhook(seam, complained)
    settled(seam, thanked, 2)
    settled(seam, complained, 2)
    reopened = {row["ticket_id"] for row in store.db.query("select ticket_id from automatic_answers "
                                                           "where reopened_at is not null")}
    assert reopened == {str(complained)}
    wait_until(lambda: posts_for(slack, complained), what="the complaint's escalation")
    # Let every answer so far settle (the last four judged are now unreopened: the complaint's answer is older),
    # then three fresh ones; two are reopened within the window.
    time.sleep(WINDOW_HOURS * 3600 + 0.5)
    first, second, third = new_answered_tickets(seam, zendesk, 3)
    customer_writes(zendesk, first, "No, wrong answer. I want to talk to a person.")
    webhook(seam, first)
    settled(seam, first, 2)
    assert not announcements(slack, paused_text), "1 of the last 4 judged (25%) is within the limit"
    customer_writes(zendesk, second, "Still broken. I want to talk to a person.")
    webhook(seam, second)
    expected = (f"{paused_text}: 2 of the last 4 automatic answers (50%) were reopened within 18 s (limit 30%). "
                "A manager can `/escalation resume` after checking them.")
    assert wait_until(lambda: announcements(slack, paused_text), what="the announcement") == [expected]
    # A third reopen while paused is recorded, and nothing more is announced.
    customer_writes(zendesk, third, "This is not it, I want to talk to a person.")
    webhook(seam, third)
    settled(seam, third, 2)
    assert store.latest_automatic_answer(f"zendesk:{third}")["reopened_at"]
    time.sleep(0.5)
    assert announcements(slack, paused_text) == [expected]
    [entry] = [row for row in store.audit_rows(limit=100, actor="seam") if row["action"] == "quality_guard_paused"]
    assert entry["detail"]["rate"] == 0.5 and sorted(entry["detail"]["tickets"]) == sorted([str(first), str(second)])
    # While paused a new ticket is drafted for a person, not answered.
    drafted = asked(zendesk, next(_ids))
    webhook(seam, drafted)
    [post] = wait_until(lambda: posts_for(slack, drafted), what="the draft")
    assert "Automation is paused" in json.dumps(post["blocks"]) and replies_by_seam(zendesk, drafted) == 0
    # Shown: /escalation stats, thresholds, the App Home.
    counts = store.automatic_answer_counts(since="")
    assert counts["reopened"] == 4
    rate = f"{counts['reopened'] / counts['answers']:.0%}"
    line = f"Automatic answers: {counts['answers']}, reopened: {counts['reopened']} ({rate})."
    assert line in command(seam, "UAGENT", "stats")
    assert "paused* by the quality guard" in command(seam, "UAGENT", "thresholds")
    home = open_home(seam, slack, MANAGER)
    assert "The quality guard paused automatic replies" in home and line in home
    # The feedback export lists the automatic answers and the reopens.
    exported = subprocess.run([sys.executable, "-m", "bot", "feedback", "export", "--format", "jsonl"],
                              env=seam.env, capture_output=True, text=True, timeout=60, check=True).stdout
    actions = [json.loads(row)["action"] for row in exported.splitlines()]
    assert actions.count("auto_answer") == counts["answers"] and actions.count("reopened") == 4
    # A manager resumes: confident tickets are answered again, and the old reopens do not trip it at once.
    assert "counting afresh" in command(seam, MANAGER, "resume")
    assert "The quality guard" not in open_home(seam, slack, MANAGER)
    [again] = new_answered_tickets(seam, zendesk, 1)
    customer_writes(zendesk, again, "Not working, I want to talk to a person.")
    webhook(seam, again)
    settled(seam, again, 2)
    assert store.latest_automatic_answer(f"zendesk:{again}")["reopened_at"]
    assert "automation is on" in command(seam, "UAGENT", "thresholds")
    assert announcements(slack, paused_text) == [expected]


def test_a_pause_stops_an_automatic_answer_whose_first_try_failed(pipeline, fake_zendesk):
    # The reply is refused once (a 422, a 500): the event waits for its retry with the decision "resolve" stored.
    fake_zendesk.fail("update_ticket", status=422, times=1, body={"error": "RecordInvalid"})
    event = run_event(pipeline, asked(fake_zendesk, 41))
    assert event.state == "pending" and pipeline.store.decision_for_event(event.id)["route"] == "resolve"
    # A manager pauses (or the quality guard does) before the retry: nothing may be answered automatically now.
    pipeline.store.set_setting(PAUSED_KEY, True, actor="UBOSS")
    pipeline.store.db.execute("update events set next_attempt_at = ? where id = ?", [iso(utcnow()), event.id])
    worker = Worker(store=pipeline.store, handlers={"ticket": pipeline.process})
    while worker.run_once():
        pass
    assert pipeline.store.event(event.id).outcome == "drafted"
    assert [c["public"] for c in fake_zendesk.comments(41)] == [True], "only the customer's question"
    assert pipeline.store.latest_automatic_answer("zendesk:41") is None



def test_the_pause_announcement_is_posted_once_across_a_crash_after_slack_took_it(pipeline, fake_slack):
    store = pipeline.store
    assert store.pause_for_quality(paused_key=PAUSED_KEY, record_key="quality_pause", figures={"rate": 0.5},
                                   announcement="Seam paused automatic replies.", helpdesk="zendesk", ticket_id="1")
    job = store.claim_event()
    assert job.kind == ANNOUNCE_KIND and pipeline.guard.announce(job) == "announced"
    # A kill -9 after Slack took the post, before the job was recorded done: the next start runs it again.
    assert store.recover_interrupted() == 1
    pipeline.guard.announce(store.claim_event())
    assert [m["text"] for m in fake_slack.messages(CHANNEL)] == ["Seam paused automatic replies."]


def answers_with_reopens(store: Store, prefix: str, *, count: int, reopened: int, hours_ago: float) -> None:
    """`count` automatic answers made `hours_ago` hours ago, the first `reopened` of them reopened."""
    for n in range(count):
        answered(store, f"{prefix}{n}", hours_ago=hours_ago)
        if n < reopened:
            assert store.mark_reopened(ticket_key=f"zendesk:{prefix}{n}", event_id=later_event(store, f"{prefix}{n}"),
                                       reason="customer replied within 48 h", answered_after="")


def test_a_busy_deployment_within_the_limit_is_not_paused_by_reopens_counted_before_their_answers_settle(pipeline):
    # 10% of answers reopened all along (the limit is 15%): 40 answers from three days ago (4 reopened), and the
    # 100 of the last two days, whose 10 reopens are in while the other 90 are still inside their window.
    pipeline = guarded(pipeline, last=50, min_answers=20, max_reopen_rate=0.15, window_hours=48)
    store = pipeline.store
    answers_with_reopens(store, "old", count=40, reopened=4, hours_ago=72)
    answers_with_reopens(store, "new", count=100, reopened=10, hours_ago=1)
    assert pipeline.guard.judge(helpdesk="zendesk", ticket_id="new0") is False
    assert store.get_setting(PAUSED_KEY) is None
    figures = pipeline.guard.figures()
    assert figures["rate"] <= 0.15, figures


def test_reopens_that_alone_exceed_the_limit_pause_before_the_window_passes(pipeline):
    pipeline = guarded(pipeline, last=50, min_answers=20, max_reopen_rate=0.15, window_hours=48)
    answers_with_reopens(pipeline.store, "bad", count=60, reopened=20, hours_ago=1)
    # 20 of the last 50 answers reopened already: whatever becomes of the rest, more than 15% were wrong.
    assert pipeline.guard.judge(helpdesk="zendesk", ticket_id="bad0") is True


@pytest.mark.parametrize("helpdesk, status", [("zendesk", "open"), ("freshdesk", "open"), ("gorgias", "open"),
                                               ("helpscout", "active"), ("front", "unassigned"), ("front", "assigned")])
def test_a_ticket_set_back_to_open_counts_in_each_helpdesks_own_word_for_open(helpdesk, status):
    # What each adapter reports as the status of an open ticket: Help Scout's native "active", Front's conversation
    # statuses "unassigned" and "assigned" (bot/helpdesk/<name>/adapter.py passes them through).
    answered = (Message("customer", QUESTION), Message("bot", ANSWER))
    now = utcnow()
    assert reopen_shown(Ticket(id="1", status=status, messages=answered), answer=ANSWER, resolve_status="solved",
                        now=now) == (now, "ticket reopened"), helpdesk
    for finished in ("solved", "closed", "archived", "pending"):
        assert reopen_shown(Ticket(id="1", status=finished, messages=answered), answer=ANSWER,
                            resolve_status="solved", now=now) is None
