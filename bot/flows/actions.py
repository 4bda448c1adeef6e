"""Agent actions on an escalation: claim, approve, edit, reject, retry, unclaim, reassign — decided in the
database, written back to the helpdesk, shown in Slack, and logged as feedback.

Who may act: anyone may claim an open escalation; once it is claimed, approve, edit and reject are for the
owner and for managers, and approve, edit or reject on an open one claims it for the clicker first. Owner
changes follow the same rule: Unclaim (back to open, the helpdesk assignee cleared) and Reassign (to a person
picked in Slack, assigned in the helpdesk by their email) of an owned escalation are for its owner and for
managers; Reassign of an open one ("Assign to…") is for anyone, as claiming it is, and makes the picked person
the owner as if they had claimed it. Each state change is a compare-and-set in the store, so of many
simultaneous clicks exactly one acts and there are never two owners; a reply is recorded before and after it
is sent, so a retry never sends it twice. Every outcome carries the sentence the clicking user is told
(ephemerally), if any. An escalation answered in the helpdesk (`bot.flows.answered`) takes no action: a click on
its stale card changes nothing and says where the ticket was answered. Its ticket event may not have come yet (the
README's Zendesk trigger fires on customers' comments only, so reconciliation finds an agent's reply minutes later):
before Approve or an edited reply goes out, the ticket is read, and an agent's public reply written there since the
customer's latest message, or the ticket solved there, closes the escalation as the event would, and nothing is sent.

Every helpdesk write an action makes (the reply, Reject's internal note, the assignee of Claim, Unclaim and
Reassign) is a durable job of the queue (`WRITE_KIND`), recorded right after the state change and run at once on
the clicking user's thread, so they still hear how it went. A crash mid-write leaves the job in the queue: the
next start runs it again (`write_job`), and the write's effect record makes it check the ticket before writing a
second time. A failed note or assignment is retried by the queue with backoff; a refused reply waits for Retry.
Before repeating a reply (or note) whose earlier attempt may have reached the helpdesk, Seam first waits out that
attempt's own time limit (`write_timeout` from when it started), so a write the helpdesk applies late is found
on the ticket and not made twice. The same holds for whatever follows a failed reply on its card: an edited reply
or a Reject first look for the failed attempt's words on the ticket, and if they landed late the escalation is
finished as sent with them, and nothing else is sent or noted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.engine.local import REJECTED
from bot.errors import asked_to_wait, transient
from bot.flows.answered import HelpdeskAnswers
from bot.flows.feedback import Learn, edit_distance, learned_label, same_words
from bot.flows.pipeline import reply_landed
from bot.helpdesk.base import Helpdesk, HelpdeskError, StatusNotSet, explained, recorded_elsewhere
from bot.models import Escalation, EscalationState, Event
from bot.retry import CALL_DEADLINE
from bot.slack.blocks import REJECT_REASONS, approvable, fits_card, helpdesk_label, owner_dm
from bot.slack.client import display_name, profile_email
from bot.slack.poster import Poster, view_of
from bot.store import Store
from bot.text import blank, clip, has_placeholder, iso, seconds_since, utcnow

log = logging.getLogger(__name__)

# The job kind of an agent action's helpdesk write: body {escalation_id, op: reply|note|assign|unassign, user_id,
# and text/action (reply), text (note), to_user/for_someone_else (assign)}.
WRITE_KIND = "helpdesk_write"
# How long a click waits for a card Slack already shows to be recorded as posted (see AgentActions.wait_posted).
POSTED_WAIT_SECONDS = 3.0
# How long the clicking user's thread holds a write it runs at once before the queue may take it (bot.jobs.worker
# holds its jobs as long). A failed write is retried by the queue as the worker retries any job (bot.store
# `fail_event`: with backoff, and until the helpdesk is back when it was down).
WRITE_LEASE_SECONDS = 300.0
# How long after an attempt started a write may still be applied by the helpdesk: its call's deadline and a margin.
WRITE_TIMEOUT = CALL_DEADLINE + 10.0
NOTE_ERROR = "internal note not written: "
# What the clicking user is told when the reply of an attempt that failed (timed out) reached the customer late.
EARLIER_LANDED = ("Nothing else was sent: the earlier reply, which seemed to fail, reached the customer after all. "
                  "The message now shows it as sent.")
ASSIGN_ERROR = "ticket not assigned: "


@dataclass(frozen=True)
class _Written:
    """How a helpdesk write ended for good: the job's outcome, what the clicking user is told, and whether the
    action it belongs to succeeded."""

    outcome: str
    notice: str | None = None
    ok: bool = True


class WriteFailed(Exception):
    """A helpdesk write that failed and is retried by the queue; `notice` is what the clicking user is told."""

    def __init__(self, notice: str | None, cause: Exception) -> None:
        super().__init__(str(cause))
        self.notice = notice


def _refused(exc: Exception) -> bool:
    """Did the helpdesk answer this write with a refusal (so it certainly did not apply it)?"""
    status = getattr(exc, "status", None)
    return isinstance(exc, HelpdeskError) and status is not None and 400 <= status < 500 and status not in (408, 429)


def _helpdesk_of(escalation: Escalation) -> str:
    """The helpdesk the escalation's ticket is in (its key's first part, bot.store `ticket_key`)."""
    return escalation.ticket_key.split(":", 1)[0]


def _unavailable(escalation: Escalation | None) -> Outcome | None:
    """Why nobody can act on this escalation now (gone, not posted yet, finished, being sent), or None."""
    if escalation is None or escalation.state == EscalationState.POSTING:
        return Outcome(False, "This escalation no longer exists or is not ready yet.")
    if escalation.state == EscalationState.ANSWERED:
        # Answered outside Seam (bot.flows.answered): a stale card in someone's view must not send a second answer.
        where = helpdesk_label(_helpdesk_of(escalation))
        done = "answered" if (escalation.sent_text or "").strip() else "solved"
        return Outcome(False, f"This ticket was {done} in {where}; nothing was sent.")
    if escalation.state.finished:
        who = escalation.sent_by or escalation.owner
        return Outcome(False, f"Nothing changed: this escalation was already {escalation.state} by <@{who}>.")
    if escalation.state == EscalationState.SENDING:
        return Outcome(False, "Nothing changed: the reply is being sent right now.")
    return None


@dataclass(frozen=True)
class Outcome:
    ok: bool
    notice: str | None = None  # what the clicking user is told, ephemerally


# Reject reasons that say this draft should not have been offered for this question: the engine learns the
# question (bot.engine.local REJECTED), and the same question again gets no answer — a person takes it. A wrong
# tone or a case to investigate says nothing about the answer.
TEACHING_REJECTIONS = ("wrong_information", "should_not_automate")


def note_for_rejection(*, user_name: str, reason: str, note: str, draft: str | None, confidence: float) -> str:
    lines = [f"Seam: {user_name} rejected the AI draft (confidence {confidence:.2f}).",
             f"Reason: {REJECT_REASONS.get(reason, reason)}"]
    if note.strip():
        lines.append(f"Details: {note.strip()}")
    lines += ["", "Rejected draft:", draft or "(no draft)"]
    return "\n".join(lines)


def _with_notice(outcome: Outcome, earlier: str | None) -> Outcome:
    notices = [n for n in (earlier, outcome.notice) if n]
    return Outcome(outcome.ok, " ".join(notices) or None)


@dataclass
class AgentActions:
    settings: Settings
    store: Store
    helpdesk: Helpdesk
    slack: WebClient
    poster: Poster
    learn: Learn | None = None
    managers: Callable[[str], bool] | None = None  # who counts as a manager (ids and the user group)
    # Closes an escalation whose ticket was answered in the helpdesk before its event came (`_answered_meanwhile`).
    answers: HelpdeskAnswers | None = None
    # Owner changes of one escalation run one at a time (striped by id), so the helpdesk's assignee is written in
    # the same order as the store's owner and the two end up naming the same person.
    _owner_locks: tuple[threading.Lock, ...] = field(default_factory=lambda: tuple(threading.Lock()
                                                                                    for _ in range(32)))
    # Seconds an earlier attempt's write may still be applied after it started (tests shorten it), and the sleep.
    write_timeout: float = WRITE_TIMEOUT
    sleep: Callable[[float], None] = time.sleep
    # The helpdesk writes of one escalation run one at a time (striped by id), inline or from the queue.
    _write_locks: tuple[threading.Lock, ...] = field(default_factory=lambda: tuple(threading.Lock()
                                                                                    for _ in range(32)))

    def _owner_lock(self, escalation_id: int) -> threading.Lock:
        return self._owner_locks[escalation_id % len(self._owner_locks)]

    # -- helpers -------------------------------------------------------------------------------------------

    def is_manager(self, user_id: str) -> bool:
        if self.managers is not None:
            return self.managers(user_id)
        return user_id in self.settings.manager_user_ids

    def _feedback(self, escalation: Escalation, *, user_id: str, action: str, final_text: str | None = None,
                  reason: str | None = None) -> None:
        self.store.add_feedback(
            escalation_id=escalation.id, ticket_key=escalation.ticket_key, user_id=user_id, action=action,
            confidence=escalation.confidence, draft=escalation.draft, final_text=final_text,
            edit_distance=edit_distance(escalation.draft, final_text) if final_text is not None else None,
            reason=reason, answer_source=escalation.answer_source, customer_text=escalation.customer_text)
        self.store.audit(actor=user_id, action=f"escalation_{action}",
                         detail={"escalation_id": escalation.id, "ticket_id": escalation.ticket_id, "reason": reason})

    def _refusal(self, escalation: Escalation | None, user_id: str) -> Outcome | None:
        """Why this user cannot finish this escalation now, or None if they can (an open one they may claim)."""
        unavailable = _unavailable(escalation) or self._elsewhere(escalation)
        if unavailable is not None:
            return unavailable
        if (escalation.state != EscalationState.OPEN and escalation.owner != user_id
                and not self.is_manager(user_id)):
            return Outcome(False, f"This escalation is claimed by <@{escalation.owner}>; only they or a manager "
                                  "can approve, edit or reject it.")
        return None

    def _elsewhere(self, escalation: Escalation) -> Outcome | None:
        """Why nothing may be done from a card made before HELPDESK changed (`recorded_elsewhere`), or None."""
        recorded = _helpdesk_of(escalation)
        if recorded_elsewhere(recorded, current=self.helpdesk.name) is None:
            return None
        return Outcome(False, f"This escalation is for a ticket in {helpdesk_label(recorded)}, and Seam now works "
                              f"with {helpdesk_label(self.helpdesk.name)}: answer the customer in "
                              f"{helpdesk_label(recorded)}. Nothing was changed.")

    def wait_posted(self, escalation_id: int, *, timeout: float = POSTED_WAIT_SECONDS) -> None:
        """Wait (at most `timeout`) while the escalation's card is in Slack but not yet recorded as posted: a
        click can arrive in the moment between chat.postMessage's answer and the store's record of it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            escalation = self.store.escalation(escalation_id)
            if escalation is None or escalation.state != EscalationState.POSTING:
                return
            self.sleep(0.05)

    def misplaced(self, escalation_id: int, user_id: str, *, channel: str | None, ts: str | None) -> Outcome | None:
        """Why a click or a form may not act on escalation `escalation_id`: the message it came from (its
        channel and ts; for a form, the message it was opened from) is not that escalation's card. A button's
        value and a form's metadata name the escalation (the boundary contract finds it by the value alone, so a
        payload that names no message is taken at its word); the message is what the agent saw, and when the
        payload names one it must be the card. None when they agree."""
        escalation = self.store.escalation(escalation_id)
        if escalation is None:
            return Outcome(False, "This escalation no longer exists.")
        if (channel is None or channel == escalation.channel) and (ts is None or ts == escalation.ts):
            return None
        log.warning("refused %s's action on escalation %s from message %s/%s (its card is %s/%s)", user_id,
                    escalation_id, channel, ts, escalation.channel, escalation.ts)
        self.store.audit(actor=user_id, action="action_refused",
                         detail={"escalation_id": escalation_id, "why": "not this escalation's message",
                                 "channel": channel, "ts": ts})
        return Outcome(False, "That button is not on this escalation's message, so nothing was done. "
                              "Use the buttons on the escalation itself.")

    def may_finish(self, escalation_id: int, user_id: str) -> Outcome:
        """A read-only check, fast enough to run before opening a modal."""
        return self._refusal(self.store.escalation(escalation_id), user_id) or Outcome(True)

    def _gate(self, escalation_id: int, user_id: str) -> tuple[Escalation | None, Outcome]:
        """Load the escalation and check the user may finish it, claiming it for them if nobody has.
        Returns the escalation and either a refusal or an ok Outcome (carrying the claim's notice, if any)."""
        escalation = self.store.escalation(escalation_id)
        refusal = self._refusal(escalation, user_id)
        if refusal is not None:
            return escalation, refusal
        if escalation.state != EscalationState.OPEN:
            return escalation, Outcome(True)
        claimed = self.claim(escalation_id, user_id)
        escalation = self.store.escalation(escalation_id)
        return escalation, self._refusal(escalation, user_id) or Outcome(True, claimed.notice)

    # -- actions -------------------------------------------------------------------------------------------

    def claim(self, escalation_id: int, user_id: str) -> Outcome:
        with self._owner_lock(escalation_id):
            return self._claim(escalation_id, user_id)

    def _claim(self, escalation_id: int, user_id: str) -> Outcome:
        escalation = self.store.escalation(escalation_id)
        if escalation is None or escalation.state == EscalationState.POSTING:
            return Outcome(False, "This escalation no longer exists or is not ready yet.")
        if (elsewhere := self._elsewhere(escalation)) is not None:
            return elsewhere
        if not self.store.claim_escalation(escalation_id, user_id=user_id):
            escalation = self.store.escalation(escalation_id)
            if escalation.state == EscalationState.ANSWERED:  # its owner, if any, owns nothing left to do
                return _unavailable(escalation)
            if escalation.owner == user_id:
                return Outcome(True, "You already own this escalation.")
            if escalation.state.finished:
                return Outcome(False, f"Nothing changed: this escalation is already {escalation.state}.")
            return Outcome(False, f"Already claimed by <@{escalation.owner}>.")
        escalation = self.store.escalation(escalation_id)
        job = self._queue_write(escalation, "assign", user_id, to_user=user_id, for_someone_else=False)
        self._feedback(escalation, user_id=user_id, action="claim")
        self.poster.refresh(escalation_id)
        notice = self._run_write(job).notice
        self.poster.direct_message(user_id, owner_dm(view_of(escalation)), escalation_id=escalation_id)
        return Outcome(True, notice)

    # -- helpdesk writes: durable jobs, run at once ---------------------------------------------------------------

    def _queue_write(self, escalation: Escalation, op: str, user_id: str, **fields: object) -> int:
        """Record a helpdesk write as a job of the queue, right after the state change it follows, and return its
        id. It is due only once the clicking user's thread had time to run it (`_run_write`): until then no
        worker takes it, and after a crash the next start runs it."""
        body = {"escalation_id": escalation.id, "op": op, "user_id": user_id, **fields}
        event_id, _ = self.store.record_event(
            kind=WRITE_KIND, helpdesk=_helpdesk_of(escalation), ticket_id=escalation.ticket_id,
            dedupe_key=f"{WRITE_KIND}:{escalation.id}:{op}:{uuid.uuid4().hex}", body=json.dumps(body),
            run_at=utcnow() + timedelta(seconds=WRITE_LEASE_SECONDS))
        return event_id

    def _run_write(self, event_id: int) -> _Written:
        """Run a recorded write now, on this thread, and record its outcome as the worker would: a failure is
        retried by the queue with backoff."""
        event = self.store.claim_event_by_id(event_id, lease_seconds=WRITE_LEASE_SECONDS)
        if event is None:  # already taken by the queue
            return _Written("queued")
        try:
            written = self._perform(json.loads(event.body or "{}"))
        except Exception as exc:
            state = self.store.fail_event(event.id, error=f"{type(exc).__name__}: {explained(exc)}",
                                          transient=transient(exc), at_least=asked_to_wait(exc))
            log.warning("helpdesk write %s failed (attempt %s, now %s): %s", event.id, event.attempts, state, exc)
            notice = (exc.notice if isinstance(exc, WriteFailed)
                      else f"Writing to {self.helpdesk.name} failed: {explained(exc)}")
            return _Written(f"failed: {exc}", notice=notice, ok=False)
        self.store.finish_event(event.id, outcome=written.outcome)
        return written

    def write_job(self, event: Event) -> str:
        """The queue's handler for WRITE_KIND jobs: a write left by a crash, or retried after a failure."""
        return self._perform(json.loads(event.body or "{}")).outcome

    def _perform(self, job: dict) -> _Written:
        ops = {"reply": self._write_reply, "note": self._write_note, "assign": self._write_assign,
               "unassign": self._write_unassign}
        escalation = self.store.escalation(int(job["escalation_id"]))
        if escalation is not None and (elsewhere := self._elsewhere(escalation)) is not None:
            # Queued before HELPDESK changed: the ticket id names another customer's ticket here.
            return _Written(f"skipped: {recorded_elsewhere(_helpdesk_of(escalation), current=self.helpdesk.name)}",
                            notice=elsewhere.notice, ok=False)
        with self._write_locks[int(job["escalation_id"]) % len(self._write_locks)]:
            return ops[job["op"]](job)

    def _after_timeout(self, effect: dict) -> None:
        """Wait until an earlier attempt (started at the effect's `started_at`) can no longer be applied late."""
        elapsed = seconds_since(effect.get("started_at"))
        wait = self.write_timeout - (elapsed if elapsed is not None else self.write_timeout)
        if wait > 0:
            log.info("waiting %.1f s for an earlier attempt's write to time out before checking the ticket", wait)
            self.sleep(wait)

    def _note_error(self, escalation_id: int, prefix: str, error: str | None) -> None:
        """Show (or, with None, clear) a failed note or assignment in the escalation's last_error; a failed reply's
        error is kept."""
        escalation = self.store.escalation(escalation_id)
        if escalation is None or escalation.state == EscalationState.FAILED:
            return
        if error is not None:
            self.store.update_escalation(escalation_id, last_error=clip(prefix + error, 500))
        elif (escalation.last_error or "").startswith(prefix):
            self.store.update_escalation(escalation_id, last_error=None)
        else:
            return
        self.poster.refresh(escalation_id)

    def _write_assign(self, job: dict) -> _Written:
        """Assign the ticket to the helpdesk agent with the Slack user's email; say why not when that fails."""
        escalation_id, user_id = int(job["escalation_id"]), job["to_user"]
        escalation = self.store.escalation(escalation_id)
        if escalation is None or escalation.owner != user_id:
            return _Written("not assigned: the owner changed since")
        who, your = (f"<@{user_id}> owns", "their") if job.get("for_someone_else") else ("You own", "your")
        try:
            email = profile_email(self.slack, user_id)
        except SlackApiError as exc:
            self._note_error(escalation_id, ASSIGN_ERROR, str(exc))
            raise WriteFailed(f"{who} this escalation, but Slack did not tell me {your} email "
                              f"({exc.response.get('error')}).", exc) from exc
        if not email:
            return _Written("not assigned: no email", notice=f"{who} this escalation, but {your} Slack profile has "
                                                             "no email, so the ticket was not assigned.")
        try:
            agent = self.helpdesk.find_agent(email)
            if agent is None:
                return _Written("not assigned: no agent with that email",
                                notice=f"{who} this escalation, but no {self.helpdesk.name} agent has the email "
                                       f"{email}, so the ticket was not assigned there.")
            self.helpdesk.assign(escalation.ticket_id, agent.id)
        except HelpdeskError as exc:
            self._note_error(escalation_id, ASSIGN_ERROR, explained(exc))
            raise WriteFailed(f"{who} this escalation, but assigning the ticket failed: {explained(exc)}",
                              exc) from exc
        self._note_error(escalation_id, ASSIGN_ERROR, None)
        return _Written(f"assigned to {user_id}")

    def _write_unassign(self, job: dict) -> _Written:
        escalation_id = int(job["escalation_id"])
        escalation = self.store.escalation(escalation_id)
        if escalation is None or escalation.owner is not None:
            return _Written("not unassigned: the escalation has an owner again")
        try:
            self.helpdesk.assign(escalation.ticket_id, None)
        except HelpdeskError as exc:
            self._note_error(escalation_id, ASSIGN_ERROR, explained(exc))
            raise WriteFailed(f"Unclaimed, but clearing the ticket's assignee in {self.helpdesk.name} failed: "
                              f"{explained(exc)}", exc) from exc
        self._note_error(escalation_id, ASSIGN_ERROR, None)
        return _Written("unassigned")

    def _write_note(self, job: dict) -> _Written:
        """Reject's internal note, once: after an attempt that may have landed, look for it on the ticket first."""
        escalation_id, body = int(job["escalation_id"]), job["text"]
        escalation = self.store.escalation(escalation_id)
        key = f"reject-note:{escalation_id}"
        effect = self.store.begin_effect(key, kind="internal_note")
        if effect["state"] == "done":
            return _Written("note already written")
        try:
            if not effect["fresh"]:
                self._after_timeout(effect)
            if effect["fresh"] or not self._note_landed(escalation.ticket_id, body):
                if not effect["fresh"]:
                    self.store.restart_effect(key)
                self.helpdesk.add_note(escalation.ticket_id, body)
        except HelpdeskError as exc:
            # The rejection stands (nothing reaches the customer either way); only the note is missing, for now.
            if _refused(exc):
                self.store.forget_effect(key)
            log.warning("rejection note for escalation %s failed: %s", escalation_id, exc)
            self._note_error(escalation_id, NOTE_ERROR, explained(exc))
            raise WriteFailed(None, exc) from exc
        self.store.finish_effect(key)
        self._note_error(escalation_id, NOTE_ERROR, None)
        return _Written("note written")

    def _note_landed(self, ticket_id: str, body: str) -> bool:
        return any(not m.public and same_words(m.body, body) for m in self.helpdesk.fetch_ticket(ticket_id).messages)

    def _write_reply(self, job: dict) -> _Written:
        """The public reply, once; a refusal (or any failure) leaves the escalation failed, with Retry offered."""
        escalation_id, user_id, text, action = int(job["escalation_id"]), job["user_id"], job["text"], job["action"]
        escalation = self.store.escalation(escalation_id)
        key = f"send:{escalation_id}"
        done = (self.store.effect(key) or {}).get("state") == "done"
        if not done and escalation.state not in (EscalationState.SENDING, EscalationState.FAILED):
            return _Written(f"not sent: the escalation is {escalation.state}", ok=False,
                            notice="Nothing changed: someone else acted on this escalation first.")
        try:
            effect = self.store.begin_effect(key, kind="public_reply")
            if effect["state"] != "done":
                if not effect["fresh"]:
                    self._after_timeout(effect)
                    earlier = job.get("earlier") or {}
                    # An edit sent after an attempt at other words: that attempt may have landed late, and the
                    # customer must not get both.
                    if earlier.get("text") and earlier["text"] != text and self._reply_landed(escalation.ticket_id,
                                                                                              earlier["text"]):
                        self.store.finish_effect(key, result={"by": earlier.get("by")})
                        self._sent(escalation_id, earlier.get("by") or user_id, text=earlier["text"],
                                   action=earlier.get("action") or "approve")
                        return _Written("not sent: an earlier attempt landed", ok=False, notice=EARLIER_LANDED)
                if effect["fresh"] or not self._reply_landed(escalation.ticket_id, text):
                    if not effect["fresh"]:
                        self.store.restart_effect(key)
                    self.helpdesk.reply(escalation.ticket_id, text, status=self.settings.approve_status)
                self.store.finish_effect(key, result={"by": user_id})
        except StatusNotSet as exc:  # the customer has the reply: sent, with the status left for a person
            self.store.finish_effect(key, result={"by": user_id})
            self._sent(escalation_id, user_id, text=text, action=action)
            why = (f"The reply was sent, but setting the ticket's status in {self.helpdesk.name} failed: "
                   f"{explained(exc)}")
            self.store.update_escalation(escalation_id, last_error=clip(why, 500))
            self.poster.refresh(escalation_id)
            return _Written(f"sent; status not set: {clip(str(exc), 200)}", notice=clip(why, 500))
        except Exception as exc:  # any failure must leave a visible, retryable state, never a stuck "sending"
            if _refused(exc):  # certainly not applied: Retry sends at once
                self.store.forget_effect(key)
            self.store.update_escalation(escalation_id, state=EscalationState.FAILED,
                                         last_error=clip(explained(exc), 500))
            self.store.audit(actor=user_id, action="escalation_send_failed",
                             detail={"escalation_id": escalation_id, "error": clip(str(exc), 500)})
            self.poster.refresh(escalation_id)
            return _Written(f"not sent: {clip(str(exc), 200)}", ok=False,
                            notice="The reply was not sent: the helpdesk did not accept it. The draft is kept; "
                                   "use Retry on the message.")
        escalation = self.store.escalation(escalation_id)
        if escalation.state not in (EscalationState.SENDING, EscalationState.FAILED):
            return _Written("already sent")
        self._sent(escalation_id, user_id, text=text, action=action)
        return _Written("sent")

    def _sent(self, escalation_id: int, user_id: str, *, text: str, action: str) -> None:
        """The reply `text` reached the customer: the escalation is finished, logged, shown, and learnt from."""
        self.store.update_escalation(escalation_id, state=EscalationState.SENT, sent_by=user_id, sent_text=text,
                                     send_action=action, finished_at=iso(utcnow()), last_error=None)
        escalation = self.store.escalation(escalation_id)
        self._feedback(escalation, user_id=user_id, action=action, final_text=text)
        self.poster.refresh(escalation_id)
        if self.learn and escalation.customer_text:
            label = learned_label(action=action, answer_source=escalation.answer_source, escalation_id=escalation_id,
                                  draft=escalation.draft, final_text=text, requester_name=escalation.requester_name)
            self.learn(escalation.customer_text, label, text, requester_name=escalation.requester_name)
            # The engine answers the next similar ticket from this reply from now on: say when that began.
            self.store.audit(actor="seam", action="learned_reply",
                             detail={"escalation_id": escalation_id, "answer_source": label})

    def _answered_meanwhile(self, escalation_id: int, user_id: str) -> Outcome | None:
        """Before a reply goes out from the card: was the ticket answered (or solved) in the helpdesk since, with
        no event yet to say so? Then the escalation is closed as that event would close it (bot.flows.answered),
        and the refusal says where it was answered. None when the reply may go (or when this user may not send it
        anyway: the gate says why). A ticket that cannot be read now leaves the reply to its own write."""
        escalation = self.store.escalation(escalation_id)
        if (self.answers is None or escalation is None
                or escalation.state not in (EscalationState.OPEN, EscalationState.CLAIMED)
                or self._refusal(escalation, user_id) is not None):
            return None
        read_at = iso(utcnow())
        try:
            ticket = self.helpdesk.fetch_ticket(escalation.ticket_id)
        except Exception as exc:  # the reply's own write meets the same helpdesk, and says how it went
            log.warning("could not read ticket %s before sending escalation %s's reply: %s", escalation.ticket_id,
                        escalation_id, exc)
            return None
        if ticket.problems:
            return None
        self.answers.settle(ticket, read_at=read_at)
        escalation = self.store.escalation(escalation_id)
        return _unavailable(escalation) if escalation.state == EscalationState.ANSWERED else None

    def check(self, escalation_id: int, user_id: str) -> Outcome:
        """May this user finish the escalation now? Claims an open one for them."""
        return self._gate(escalation_id, user_id)[1]

    def approve(self, escalation_id: int, user_id: str) -> Outcome:
        answered = self._answered_meanwhile(escalation_id, user_id)
        if answered is not None:
            return answered
        escalation, gate = self._gate(escalation_id, user_id)
        if not gate.ok:
            return gate
        if not (escalation.draft or "").strip():
            return Outcome(False, "There is no draft to approve: use Edit to write the reply.")
        if has_placeholder(escalation.draft):
            return Outcome(False, "The draft still holds placeholders (like {{ticket.id}}): use Edit to fill them in "
                                  "before it goes to the customer.")
        if not fits_card(escalation.draft):
            return Outcome(False, "The draft is too long for the message to show it whole, so it is not sent with one "
                                  "click: use Edit to check it and send your version.")
        if not approvable(view_of(escalation).decision):
            return Outcome(False, "The AI was not confident enough in this draft to offer it for approval: use Edit "
                                  "to check it and send your version.")
        return _with_notice(self._send(escalation_id, user_id, text=escalation.draft, action="approve"), gate.notice)

    def send_edited(self, escalation_id: int, user_id: str, text: str) -> Outcome:
        if blank(text):
            return Outcome(False, "The reply cannot be empty.")
        answered = self._answered_meanwhile(escalation_id, user_id)
        if answered is not None:
            return answered
        _, gate = self._gate(escalation_id, user_id)
        if not gate.ok:
            return gate
        return _with_notice(self._send(escalation_id, user_id, text=text, action="edit"), gate.notice)

    def retry(self, escalation_id: int, user_id: str) -> Outcome:
        escalation, gate = self._gate(escalation_id, user_id)
        if not gate.ok:
            return gate
        if escalation.state != EscalationState.FAILED:
            return Outcome(False, "Nothing to retry: the reply did not fail.")
        return self._send(escalation_id, user_id, text=escalation.sent_text or escalation.draft or "",
                          action=escalation.send_action or "approve")

    def _send(self, escalation_id: int, user_id: str, *, text: str, action: str) -> Outcome:
        if not self.store.begin_finishing(escalation_id, user_id=user_id, manager=self.is_manager(user_id),
                                          to_state=EscalationState.SENDING):
            return self._beaten(escalation_id)
        escalation = self.store.escalation(escalation_id)
        # What an earlier attempt sent (and who sent it, how), if one failed: it may still have landed.
        earlier = ({"text": escalation.sent_text, "by": escalation.sent_by, "action": escalation.send_action}
                   if escalation.sent_text else None)
        job = self._queue_write(escalation, "reply", user_id, text=text, action=action, earlier=earlier)
        # Remember what is being sent, how (approve/edit) and by whom, so Retry resends exactly this.
        self.store.update_escalation(escalation_id, sent_text=text, send_action=action, sent_by=user_id,
                                     last_error=None)
        self.poster.refresh(escalation_id)
        written = self._run_write(job)
        return Outcome(written.ok, written.notice)

    def _beaten(self, escalation_id: int) -> Outcome:
        """What the clicking user is told when another change won the compare-and-set their click lost."""
        # The change that won may be this user's own (a form delivered twice, a double click): say what happened
        # to the escalation rather than blame someone else.
        return (_unavailable(self.store.escalation(escalation_id))
                or Outcome(False, "Nothing changed: someone else acted on this escalation first."))

    def _earlier_reply_landed(self, escalation: Escalation) -> bool:
        """Did the reply of a failed attempt (one the helpdesk did not refuse) reach the ticket after all? Waits
        out that attempt's time limit first; one that has not landed by then never will."""
        key = f"send:{escalation.id}"
        effect = self.store.effect(key)
        if effect is None or effect["state"] == "done" or not (escalation.sent_text or "").strip():
            return False
        self._after_timeout(effect)
        if self._reply_landed(escalation.ticket_id, escalation.sent_text):
            self.store.finish_effect(key, result={"by": escalation.sent_by})
            return True
        self.store.forget_effect(key)
        return False

    def _reply_landed(self, ticket_id: str, text: str) -> bool:
        """Before repeating a send whose earlier attempt may have landed (a write that timed out, a crash),
        look for it on the ticket."""
        return reply_landed(self.helpdesk.fetch_ticket(ticket_id), text, since_latest_customer_message=False)

    def reject(self, escalation_id: int, user_id: str, *, reason: str, note: str = "") -> Outcome:
        escalation, gate = self._gate(escalation_id, user_id)
        if not gate.ok:
            return gate
        body = note_for_rejection(user_name=display_name(self.slack, user_id), reason=reason, note=note,
                                  draft=escalation.draft, confidence=escalation.confidence)
        if not self.store.begin_finishing(escalation_id, user_id=user_id, manager=self.is_manager(user_id),
                                          to_state=EscalationState.REJECTED):
            return self._beaten(escalation_id)
        if self._earlier_reply_landed(escalation):
            # The reply of a failed attempt reached the customer after all: it was sent, not rejected.
            self._sent(escalation_id, escalation.sent_by or user_id, text=escalation.sent_text,
                       action=escalation.send_action or "approve")
            return Outcome(False, EARLIER_LANDED)
        job = self._queue_write(escalation, "note", user_id, text=body)
        self.store.update_escalation(escalation_id, sent_by=user_id, reject_reason=reason, finished_at=iso(utcnow()))
        # A failed note is retried by the queue; the rejection stands (nothing reaches the customer either way).
        self._run_write(job)
        escalation = self.store.escalation(escalation_id)
        detail = f"{reason}: {note.strip()}" if note.strip() else reason
        self._feedback(escalation, user_id=user_id, action="reject", reason=detail)
        self.poster.refresh(escalation_id)
        if self.learn and escalation.customer_text and reason in TEACHING_REJECTIONS:
            self.learn(escalation.customer_text, REJECTED, "")
            self.store.audit(actor="seam", action="learned_rejection",
                             detail={"escalation_id": escalation_id, "answer_source": escalation.answer_source,
                                     "reason": reason})
        return Outcome(True, gate.notice)

    # -- owner changes -------------------------------------------------------------------------------------------

    def _owner_refusal(self, escalation: Escalation | None, user_id: str, *, unclaim: bool) -> Outcome | None:
        """Why this user cannot unclaim or reassign this escalation now, or None if they can."""
        unavailable = _unavailable(escalation) or self._elsewhere(escalation)
        if unavailable is not None:
            return unavailable
        if escalation.state == EscalationState.OPEN:
            # An open one may be given to anyone by anyone (as anyone may claim it); there is nothing to unclaim.
            return Outcome(False, "Nobody owns this escalation, so there is nothing to unclaim.") if unclaim else None
        if escalation.owner != user_id and not self.is_manager(user_id):
            verb = "unclaim" if unclaim else "reassign"
            return Outcome(False, f"This escalation is claimed by <@{escalation.owner}>; only they or a manager can "
                                  f"{verb} it.")
        return None

    def assignee_problem(self, user_id: str) -> str | None:
        """Why this Slack user cannot own an escalation (a bot, a deactivated account), or None."""
        try:
            user = self.slack.users_info(user=user_id)["user"]
        except SlackApiError as exc:
            return f"Slack does not know that user ({exc.response.get('error')})."
        if user.get("is_bot") or user_id == "USLACKBOT":
            return "Pick a person: a bot cannot own an escalation."
        if user.get("deleted"):
            return "That account is deactivated: pick someone else."
        return None

    def may_change_owner(self, escalation_id: int, user_id: str, *, unclaim: bool = False) -> Outcome:
        """A read-only check, fast enough to run before opening the Reassign form."""
        return self._owner_refusal(self.store.escalation(escalation_id), user_id, unclaim=unclaim) or Outcome(True)

    def unclaim(self, escalation_id: int, user_id: str) -> Outcome:
        """Back to open: nobody owns it, the helpdesk assignee is cleared, and the card offers Claim again."""
        with self._owner_lock(escalation_id):
            return self._unclaim(escalation_id, user_id)

    def _unclaim(self, escalation_id: int, user_id: str) -> Outcome:
        escalation = self.store.escalation(escalation_id)
        refusal = self._owner_refusal(escalation, user_id, unclaim=True)
        if refusal is not None:
            return refusal
        previous = escalation.owner
        if not self.store.change_owner(escalation_id, expected=previous, new=None):
            return Outcome(False, "Nothing changed: someone else changed this escalation first.")
        escalation = self.store.escalation(escalation_id)
        job = self._queue_write(escalation, "unassign", user_id)
        self._feedback(escalation, user_id=user_id, action="unclaim", reason=f"from {previous}")
        self.poster.refresh(escalation_id)
        notice = self._run_write(job).notice
        if previous and previous != user_id:
            self.poster.direct_message(previous, {"text": f"<@{user_id}> unclaimed escalation {escalation_id} "
                                                          f"(#{escalation.ticket_id}): it is back in the queue."},
                                      escalation_id=escalation_id)
        return Outcome(True, notice)

    def reassign(self, escalation_id: int, user_id: str, to_user: str) -> Outcome:
        """Give the escalation to `to_user`: the store's owner (compare-and-set), the helpdesk assignee (by their
        Slack email, as Claim does), a DM to them, the card updated."""
        with self._owner_lock(escalation_id):
            return self._reassign(escalation_id, user_id, to_user)

    def _reassign(self, escalation_id: int, user_id: str, to_user: str) -> Outcome:
        escalation = self.store.escalation(escalation_id)
        refusal = self._owner_refusal(escalation, user_id, unclaim=False)
        if refusal is not None:
            return refusal
        previous = escalation.owner
        if previous == to_user:
            return Outcome(True, f"<@{to_user}> already owns this escalation.")
        if not self.store.change_owner(escalation_id, expected=previous, new=to_user):
            escalation = self.store.escalation(escalation_id)
            owner = f"<@{escalation.owner}>" if escalation.owner else "nobody"
            return Outcome(False, f"Nothing changed: someone else changed this escalation first (owner now: {owner}).")
        escalation = self.store.escalation(escalation_id)
        job = self._queue_write(escalation, "assign", user_id, to_user=to_user, for_someone_else=to_user != user_id)
        self._feedback(escalation, user_id=user_id, action="reassign",
                       reason=f"from {previous} to {to_user}" if previous else f"to {to_user}")
        self.poster.refresh(escalation_id)
        notice = self._run_write(job).notice
        if to_user != user_id:
            self.poster.direct_message(to_user, owner_dm(view_of(escalation), assigned_by=user_id),
                                      escalation_id=escalation_id)
        if previous and previous not in (user_id, to_user):
            self.poster.direct_message(previous, {"text": f"<@{user_id}> reassigned escalation {escalation_id} "
                                                          f"(#{escalation.ticket_id}) to <@{to_user}>."},
                                      escalation_id=escalation_id)
        return Outcome(True, notice)
