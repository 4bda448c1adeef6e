"""Agent actions on an escalation: claim, approve, edit, reject, retry — decided in the database, written back
to the helpdesk, shown in Slack, and logged as feedback.

Who may act: anyone may claim an open escalation; once it is claimed, approve, edit and reject are for the
owner and for managers, and approve, edit or reject on an open one claims it for the clicker first. Each
state change is a compare-and-set in the store, so of many simultaneous clicks exactly one acts; a reply is
recorded before and after it is sent, so a retry never sends it twice. Every outcome carries the sentence the
clicking user is told (ephemerally), if any.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.flows.pipeline import reply_landed
from bot.helpdesk.base import Helpdesk, HelpdeskError
from bot.models import Escalation, EscalationState
from bot.slack.blocks import REJECT_REASONS, owner_dm
from bot.slack.client import display_name, profile_email
from bot.slack.poster import Poster, view_of
from bot.store import Store
from bot.text import clip, has_placeholder, iso, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    notice: str | None = None  # what the clicking user is told, ephemerally


def edit_distance(draft: str | None, final: str | None) -> float:
    """0.0 when the reply went out as drafted, 1.0 when nothing of the draft survived."""
    return round(1.0 - SequenceMatcher(None, draft or "", final or "", autojunk=False).ratio(), 4)


def learned_label(*, action: str, answer_source: str | None, escalation_id: int) -> str:
    """The answer source a sent reply teaches the engine: the same article or macro when approved as drafted,
    else a new answer of its own."""
    return answer_source if action == "approve" and answer_source else f"seam-reply-{escalation_id}"


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
    learn: Callable[[str, str, str], None] | None = None  # (customer text, answer source, reply)
    managers: Callable[[str], bool] | None = None  # who counts as a manager (ids and the user group)

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
        if escalation is None or escalation.state == EscalationState.POSTING:
            return Outcome(False, "This escalation no longer exists or is not ready yet.")
        if escalation.state.finished:
            who = escalation.sent_by or escalation.owner
            return Outcome(False, f"Nothing changed: this escalation was already {escalation.state} by <@{who}>.")
        if escalation.state == EscalationState.SENDING:
            return Outcome(False, "Nothing changed: the reply is being sent right now.")
        if (escalation.state != EscalationState.OPEN and escalation.owner != user_id
                and not self.is_manager(user_id)):
            return Outcome(False, f"This escalation is claimed by <@{escalation.owner}>; only they or a manager "
                                  "can approve, edit or reject it.")
        return None

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
        escalation = self.store.escalation(escalation_id)
        if escalation is None or escalation.state == EscalationState.POSTING:
            return Outcome(False, "This escalation no longer exists or is not ready yet.")
        if not self.store.claim_escalation(escalation_id, user_id=user_id):
            escalation = self.store.escalation(escalation_id)
            if escalation.owner == user_id:
                return Outcome(True, "You already own this escalation.")
            if escalation.state.finished:
                return Outcome(False, f"Nothing changed: this escalation is already {escalation.state}.")
            return Outcome(False, f"Already claimed by <@{escalation.owner}>.")
        escalation = self.store.escalation(escalation_id)
        self._feedback(escalation, user_id=user_id, action="claim")
        self.poster.refresh(escalation_id)
        notice = self._assign(escalation, user_id)
        self.poster.direct_message(user_id, owner_dm(view_of(escalation)))
        return Outcome(True, notice)

    def _assign(self, escalation: Escalation, user_id: str) -> str | None:
        """Assign the ticket to the helpdesk agent with the Slack user's email; say why not when that fails."""
        try:
            email = profile_email(self.slack, user_id)
        except SlackApiError as exc:
            return f"You own this escalation, but Slack did not tell me your email ({exc.response.get('error')})."
        if not email:
            return "You own this escalation, but your Slack profile has no email, so the ticket was not assigned."
        try:
            agent = self.helpdesk.find_agent(email)
            if agent is None:
                return (f"You own this escalation, but no {self.helpdesk.name} agent has the email {email}, "
                        "so the ticket was not assigned to you there.")
            self.helpdesk.assign(escalation.ticket_id, agent.id)
        except HelpdeskError as exc:
            return f"You own this escalation, but assigning the ticket failed: {exc}"
        return None

    def check(self, escalation_id: int, user_id: str) -> Outcome:
        """May this user finish the escalation now? Claims an open one for them."""
        return self._gate(escalation_id, user_id)[1]

    def approve(self, escalation_id: int, user_id: str) -> Outcome:
        escalation, gate = self._gate(escalation_id, user_id)
        if not gate.ok:
            return gate
        if not (escalation.draft or "").strip():
            return Outcome(False, "There is no draft to approve: use Edit to write the reply.")
        if has_placeholder(escalation.draft):
            return Outcome(False, "The draft still holds placeholders (like {{ticket.id}}): use Edit to fill them in "
                                  "before it goes to the customer.")
        return _with_notice(self._send(escalation_id, user_id, text=escalation.draft, action="approve"), gate.notice)

    def send_edited(self, escalation_id: int, user_id: str, text: str) -> Outcome:
        if not text.strip():
            return Outcome(False, "The reply cannot be empty.")
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
            return Outcome(False, "Nothing changed: someone else acted on this escalation first.")
        # Remember what is being sent, and how (approve/edit), so Retry resends exactly this.
        self.store.update_escalation(escalation_id, sent_text=text, send_action=action, last_error=None)
        self.poster.refresh(escalation_id)
        escalation = self.store.escalation(escalation_id)
        key = f"send:{escalation_id}"
        effect = self.store.begin_effect(key, kind="public_reply")
        try:
            if effect["state"] != "done" and not (not effect["fresh"] and self._reply_landed(escalation.ticket_id,
                                                                                             text)):
                self.helpdesk.reply(escalation.ticket_id, text, status=self.settings.approve_status)
            self.store.finish_effect(key, result={"by": user_id})
        except Exception as exc:  # any failure must leave a visible, retryable state, never a stuck "sending"
            self.store.update_escalation(escalation_id, state=EscalationState.FAILED, last_error=clip(str(exc), 500))
            self.store.audit(actor=user_id, action="escalation_send_failed",
                             detail={"escalation_id": escalation_id, "error": clip(str(exc), 500)})
            self.poster.refresh(escalation_id)
            return Outcome(False, "The reply was not sent: the helpdesk did not accept it. The draft is kept; "
                                  "use Retry on the message.")
        self.store.update_escalation(escalation_id, state=EscalationState.SENT, sent_by=user_id,
                                     finished_at=iso(utcnow()))
        escalation = self.store.escalation(escalation_id)
        self._feedback(escalation, user_id=user_id, action=action, final_text=text)
        self.poster.refresh(escalation_id)
        if self.learn and escalation.customer_text:
            label = learned_label(action=action, answer_source=escalation.answer_source, escalation_id=escalation_id)
            self.learn(escalation.customer_text, label, text)
            # The engine answers the next similar ticket from this reply from now on: say when that began.
            self.store.audit(actor="seam", action="learned_reply",
                             detail={"escalation_id": escalation_id, "answer_source": label})
        return Outcome(True)

    def _reply_landed(self, ticket_id: str, text: str) -> bool:
        """Before repeating a send whose earlier attempt may have landed (a write that timed out, a crash),
        look for it on the ticket."""
        return reply_landed(self.helpdesk.fetch_ticket(ticket_id), text, since_latest_customer_message=False)

    def reject(self, escalation_id: int, user_id: str, *, reason: str, note: str = "") -> Outcome:
        escalation, gate = self._gate(escalation_id, user_id)
        if not gate.ok:
            return gate
        if not self.store.begin_finishing(escalation_id, user_id=user_id, manager=self.is_manager(user_id),
                                          to_state=EscalationState.REJECTED):
            return Outcome(False, "Nothing changed: someone else acted on this escalation first.")
        self.store.update_escalation(escalation_id, sent_by=user_id, reject_reason=reason, finished_at=iso(utcnow()))
        body = note_for_rejection(user_name=display_name(self.slack, user_id), reason=reason, note=note,
                                  draft=escalation.draft, confidence=escalation.confidence)
        key = f"reject-note:{escalation_id}"
        try:
            if self.store.begin_effect(key, kind="internal_note")["state"] != "done":
                self.helpdesk.add_note(escalation.ticket_id, body)
                self.store.finish_effect(key)
        except HelpdeskError as exc:
            # The rejection stands (nothing reaches the customer either way); only the note is missing.
            log.warning("rejection note for escalation %s failed: %s", escalation_id, exc)
            self.store.update_escalation(escalation_id, last_error=clip(f"internal note not written: {exc}", 500))
        escalation = self.store.escalation(escalation_id)
        detail = f"{reason}: {note.strip()}" if note.strip() else reason
        self._feedback(escalation, user_id=user_id, action="reject", reason=detail)
        self.poster.refresh(escalation_id)
        return Outcome(True, gate.notice)
