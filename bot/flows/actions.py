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
(ephemerally), if any.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.flows.pipeline import reply_landed
from bot.helpdesk.base import Helpdesk, HelpdeskError
from bot.models import Escalation, EscalationState
from bot.slack.blocks import REJECT_REASONS, approvable, owner_dm
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
    # Owner changes of one escalation run one at a time (striped by id), so the helpdesk's assignee is written in
    # the same order as the store's owner and the two end up naming the same person.
    _owner_locks: tuple[threading.Lock, ...] = field(default_factory=lambda: tuple(threading.Lock()
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

    def misplaced(self, escalation_id: int, user_id: str, *, channel: str | None, ts: str | None) -> Outcome | None:
        """Why a click or a form may not act on escalation `escalation_id`: the message it came from (its
        channel and ts; for a form, the message it was opened from) is not that escalation's card. A button's
        value and a form's metadata only name an escalation; the message is what the agent saw. None when they
        agree."""
        escalation = self.store.escalation(escalation_id)
        if escalation is None:
            return Outcome(False, "This escalation no longer exists.")
        if escalation.ts and channel == escalation.channel and ts == escalation.ts:
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

    def _assign(self, escalation: Escalation, user_id: str, *, for_someone_else: bool = False) -> str | None:
        """Assign the ticket to the helpdesk agent with the Slack user's email; say why not when that fails."""
        who, your = (f"<@{user_id}> owns", "their") if for_someone_else else ("You own", "your")
        try:
            email = profile_email(self.slack, user_id)
        except SlackApiError as exc:
            return f"{who} this escalation, but Slack did not tell me {your} email ({exc.response.get('error')})."
        if not email:
            return f"{who} this escalation, but {your} Slack profile has no email, so the ticket was not assigned."
        try:
            agent = self.helpdesk.find_agent(email)
            if agent is None:
                return (f"{who} this escalation, but no {self.helpdesk.name} agent has the email {email}, "
                        "so the ticket was not assigned there.")
            self.helpdesk.assign(escalation.ticket_id, agent.id)
        except HelpdeskError as exc:
            return f"{who} this escalation, but assigning the ticket failed: {exc}"
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
        if not approvable(view_of(escalation).decision):
            return Outcome(False, "The AI was not confident enough in this draft to offer it for approval: use Edit "
                                  "to check it and send your version.")
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

    # -- owner changes -------------------------------------------------------------------------------------------

    def _owner_refusal(self, escalation: Escalation | None, user_id: str, *, unclaim: bool) -> Outcome | None:
        """Why this user cannot unclaim or reassign this escalation now, or None if they can."""
        if escalation is None or escalation.state == EscalationState.POSTING:
            return Outcome(False, "This escalation no longer exists or is not ready yet.")
        if escalation.state.finished:
            who = escalation.sent_by or escalation.owner
            return Outcome(False, f"Nothing changed: this escalation was already {escalation.state} by <@{who}>.")
        if escalation.state == EscalationState.SENDING:
            return Outcome(False, "Nothing changed: the reply is being sent right now.")
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
        self._feedback(escalation, user_id=user_id, action="unclaim", reason=f"from {previous}")
        self.poster.refresh(escalation_id)
        notice = None
        try:
            self.helpdesk.assign(escalation.ticket_id, None)
        except HelpdeskError as exc:
            notice = f"Unclaimed, but clearing the ticket's assignee in {self.helpdesk.name} failed: {exc}"
        if previous and previous != user_id:
            self.poster.direct_message(previous, {"text": f"<@{user_id}> unclaimed escalation {escalation_id} "
                                                          f"(#{escalation.ticket_id}): it is back in the queue."})
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
        self._feedback(escalation, user_id=user_id, action="reassign",
                       reason=f"from {previous} to {to_user}" if previous else f"to {to_user}")
        self.poster.refresh(escalation_id)
        notice = self._assign(escalation, to_user, for_someone_else=to_user != user_id)
        if to_user != user_id:
            self.poster.direct_message(to_user, owner_dm(view_of(escalation), assigned_by=user_id))
        if previous and previous not in (user_id, to_user):
            self.poster.direct_message(previous, {"text": f"<@{user_id}> reassigned escalation {escalation_id} "
                                                          f"(#{escalation.ticket_id}) to <@{to_user}>."})
        return Outcome(True, notice)
