"""Listeners for the escalation message's buttons and the Edit, Reject and Reassign modals.

Each listener acks first (a modal opens right after the ack, inside the trigger_id's 3 seconds) and hands the
work to `bot.flows.actions.AgentActions`. The escalation is named by the button's `value` (or the modal's
private_metadata), and acted on only when the message clicked (or the one the form was opened from) is that
escalation's card. What the clicking user needs to know comes back as an ephemeral message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.flows.actions import POSTED_WAIT_SECONDS, AgentActions, Outcome
from bot.slack.blocks import (
    ACTION_IDS,
    EDIT_CALLBACK,
    OTHER_CUSTOMER,
    REASSIGN_CALLBACK,
    REJECT_CALLBACK,
    REJECT_REASONS,
    edit_modal,
    reassign_modal,
    reject_modal,
    trusted,
)
from bot.slack.poster import view_of
from bot.text import blank

log = logging.getLogger(__name__)

MODAL_POSTED_WAIT_SECONDS = 1.0
# How long the Reassign form's answer waits for users.info on the person picked (see submit_reassign).
ASSIGNEE_CHECK_SECONDS = 1.5
_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="seam-assignee-check")


def _escalation_id(raw: object) -> int | None:
    try:
        value = int(str(raw))
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def _from_button(body: dict) -> int | None:
    actions = body.get("actions") or [{}]
    return _escalation_id(actions[0].get("value"))


def _from_view(view: dict) -> int | None:
    return _escalation_id(_view_metadata(view).get("escalation_id"))


def _view_metadata(view: dict) -> dict:
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except (ValueError, TypeError):
        return {}
    return metadata if isinstance(metadata, dict) else {}


def _clicked_on(body: dict) -> tuple[str | None, str | None]:
    """The message a button was clicked on: (channel, ts)."""
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
    return channel, ts


def _button_target(body: dict, actions: AgentActions, *,
                   posted_wait: float = POSTED_WAIT_SECONDS) -> tuple[int | None, Outcome | None]:
    """The escalation a click acts on, or why it may not: the button names none, or the message clicked is
    not that escalation's card."""
    escalation_id = _from_button(body)
    if escalation_id is None:
        return None, Outcome(False, "This button does not name an escalation.")
    actions.wait_posted(escalation_id, timeout=posted_wait)
    channel, ts = _clicked_on(body)
    return escalation_id, actions.misplaced(escalation_id, body["user"]["id"], channel=channel, ts=ts)


def _form_misplaced(view: dict, escalation_id: int, user_id: str, actions: AgentActions) -> str | None:
    """Why a form may not act on its escalation: it was not opened from that escalation's card."""
    metadata = _view_metadata(view)
    refusal = actions.misplaced(escalation_id, user_id, channel=metadata.get("channel"), ts=metadata.get("ts"))
    return refusal.notice if refusal else None


def _tell(client: WebClient, body: dict, outcome: Outcome) -> None:
    """Send the outcome's notice to the clicking user only, where they clicked."""
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    if not outcome.notice or not channel:
        return
    try:
        client.chat_postEphemeral(channel=channel, user=body["user"]["id"], text=outcome.notice)
    except SlackApiError as exc:
        log.warning("could not tell %s: %s", body["user"]["id"], exc)


def _actions(context: BoltContext) -> AgentActions:
    return context["services"].actions


def _button(act: Callable[[AgentActions, int, str], Outcome]) -> Callable[..., None]:
    """A listener for a button whose whole work is one AgentActions call, told back to the clicker."""

    def listener(ack: Ack, body: dict, context: BoltContext, client: WebClient) -> None:
        ack()
        actions = _actions(context)
        escalation_id, refusal = _button_target(body, actions)
        if refusal is not None:
            return _tell(client, body, refusal)
        _tell(client, body, act(actions, escalation_id, body["user"]["id"]))

    listener.__name__ = act.__name__
    return listener


claim = _button(AgentActions.claim)
approve = _button(AgentActions.approve)
retry = _button(AgentActions.retry)
unclaim = _button(AgentActions.unclaim)


def open_edit(ack: Ack, body: dict, context: BoltContext, client: WebClient) -> None:
    ack()
    _open_modal(body, context, client, kind="edit")


def open_reject(ack: Ack, body: dict, context: BoltContext, client: WebClient) -> None:
    ack()
    _open_modal(body, context, client, kind="reject")


def _open_modal(body: dict, context: BoltContext, client: WebClient, *, kind: str) -> None:
    actions = _actions(context)
    # The trigger_id expires 3 seconds after the click: a card still being recorded is waited for a second at
    # most, so views.open still has time.
    escalation_id, refusal = _button_target(body, actions, posted_wait=MODAL_POSTED_WAIT_SECONDS)
    if refusal is not None:
        return _tell(client, body, refusal)
    # Only the escalation's row is read before views.open.
    escalation = actions.store.escalation(escalation_id)
    if escalation is None:
        return _tell(client, body, Outcome(False, "This escalation no longer exists."))
    message = (escalation.channel, escalation.ts)
    label = f"#{escalation.ticket_id} {escalation.subject}".strip()
    if kind == "edit":
        decision = view_of(escalation).decision
        caution = None
        other = next((r for r in decision.reasons if r.code == OTHER_CUSTOMER), None)
        if not escalation.sent_text and escalation.draft and other is not None:
            caution = (f":warning: This draft was written for another customer and names their details "
                       f"({other.detail.split(':')[0]}): take them out before sending.")
        elif not escalation.sent_text and escalation.draft and not trusted(decision):
            caution = (f":warning: The AI was only {decision.confidence:.0%} confident in this draft (or it holds "
                       "placeholders): it is a starting point. Check every word before sending.")
        view = edit_modal(escalation_id, draft=escalation.sent_text or escalation.draft, ticket_label=label,
                          caution=caution, message=message)
    else:
        view = reject_modal(escalation_id, ticket_label=label, message=message)
    permitted = actions.may_finish(escalation_id, body["user"]["id"])
    if not permitted.ok:
        return _tell(client, body, permitted)
    client.views_open(trigger_id=body["trigger_id"], view=view)
    # Opening the form on an unclaimed escalation claims it (assign, DM): slow work, so after views.open.
    _tell(client, body, actions.check(escalation_id, body["user"]["id"]))


def open_reassign(ack: Ack, body: dict, context: BoltContext, client: WebClient) -> None:
    ack()
    actions = _actions(context)
    # views.open follows: as for Edit and Reject, a card still being recorded is waited for a second at most.
    escalation_id, refusal = _button_target(body, actions, posted_wait=MODAL_POSTED_WAIT_SECONDS)
    if refusal is not None:
        return _tell(client, body, refusal)
    permitted = actions.may_change_owner(escalation_id, body["user"]["id"])
    if not permitted.ok:
        return _tell(client, body, permitted)
    escalation = actions.store.escalation(escalation_id)
    label = f"#{escalation.ticket_id} {escalation.subject}".strip()
    client.views_open(trigger_id=body["trigger_id"],
                      view=reassign_modal(escalation_id, ticket_label=label, owner=escalation.owner,
                                          message=(escalation.channel, escalation.ts)))


def submit_reassign(ack: Ack, body: dict, view: dict, context: BoltContext) -> None:
    """The Reassign form's submission: who was picked, checked in the form (a person, and the submitter still
    allowed to change the owner) before the ack, or by DM after it when Slack is slow to say who the person is;
    the change itself after it."""
    escalation_id = _from_view(view)
    if escalation_id is None:
        return ack(response_action="errors", errors={"owner": "This form no longer names an escalation."})
    values = (view.get("state") or {}).get("values") or {}
    to_user = ((values.get("owner") or {}).get("user") or {}).get("selected_user")
    if not to_user:
        return ack(response_action="errors", errors={"owner": "Choose who takes it."})
    actions = _actions(context)
    user_id = body["user"]["id"]
    misplaced = _form_misplaced(view, escalation_id, user_id, actions)
    if misplaced:
        return ack(response_action="errors", errors={"owner": misplaced})
    permitted = actions.may_change_owner(escalation_id, user_id)
    if not permitted.ok:
        return ack(response_action="errors", errors={"owner": permitted.notice or "You cannot reassign it."})
    poster = context["services"].poster
    # users.info answers the form when Slack is quick; a slower one (rate-limited, say) is waited for after the
    # ack, since Slack gives the form 3 seconds, and what it finds is told by DM.
    check = _checks.submit(actions.assignee_problem, to_user)
    try:
        problem = check.result(timeout=ASSIGNEE_CHECK_SECONDS)
    except FutureTimeout:
        ack()
        problem = check.result()
        if problem:
            poster.direct_message(user_id, {"text": f"Nothing changed: {problem}"})
            return None
    else:
        if problem:
            return ack(response_action="errors", errors={"owner": problem})
        ack()
    outcome = actions.reassign(escalation_id, user_id, to_user)
    if outcome.notice:
        poster.direct_message(user_id, {"text": outcome.notice})


def _edited(values: dict) -> tuple[dict[str, str], dict]:
    text = ((values.get("reply") or {}).get("text") or {}).get("value") or ""
    if blank(text):
        return {"reply": "Write the reply before sending it."}, {}
    return {}, {"text": text}


def _rejected(values: dict) -> tuple[dict[str, str], dict]:
    reason = (((values.get("reason") or {}).get("choice") or {}).get("selected_option") or {}).get("value")
    note = ((values.get("note") or {}).get("text") or {}).get("value") or ""
    if reason not in REJECT_REASONS:
        return {"reason": "Choose a reason."}, {}
    if reason == "other" and blank(note):
        return {"note": "Say what is wrong with the draft."}, {}
    return {}, {"reason": reason, "note": note}


def _submission(*, block: str, refused: str, read: Callable[[dict], tuple[dict[str, str], dict]],
                act: Callable[..., Outcome]) -> Callable[..., None]:
    """A listener for a modal whose submission is one AgentActions call. What is wrong with the form is shown
    in the form (`block` holds errors that belong to no one field); the outcome's notice arrives by DM, since the
    modal has closed and there is no channel to be ephemeral in."""

    def listener(ack: Ack, body: dict, view: dict, context: BoltContext) -> None:
        escalation_id = _from_view(view)
        if escalation_id is None:
            return ack(response_action="errors", errors={block: "This form no longer names an escalation."})
        errors, arguments = read((view.get("state") or {}).get("values") or {})
        if errors:
            return ack(response_action="errors", errors=errors)
        actions = _actions(context)
        user_id = body["user"]["id"]
        misplaced = _form_misplaced(view, escalation_id, user_id, actions)
        if misplaced:
            return ack(response_action="errors", errors={block: misplaced})
        # Read-only before the ack: claiming an open escalation (Slack and helpdesk calls) happens after it.
        permitted = actions.may_finish(escalation_id, user_id)
        if not permitted.ok:
            return ack(response_action="errors", errors={block: permitted.notice or refused})
        ack()
        outcome = act(actions, escalation_id, user_id, **arguments)
        if outcome.notice:
            context["services"].poster.direct_message(user_id, {"text": outcome.notice})

    listener.__name__ = act.__name__
    return listener


submit_edit = _submission(block="reply", refused="You cannot send this reply.", read=_edited,
                          act=AgentActions.send_edited)
submit_reject = _submission(block="reason", refused="You cannot reject this draft.", read=_rejected,
                            act=AgentActions.reject)


def register(app: App) -> None:
    app.action(ACTION_IDS["claim"])(claim)
    app.action(ACTION_IDS["approve"])(approve)
    app.action(ACTION_IDS["edit"])(open_edit)
    app.action(ACTION_IDS["approve_after_edit"])(open_edit)
    app.action(ACTION_IDS["reject"])(open_reject)
    app.action(ACTION_IDS["retry"])(retry)
    app.action(ACTION_IDS["unclaim"])(unclaim)
    app.action(ACTION_IDS["reassign"])(open_reassign)
    app.view(EDIT_CALLBACK)(submit_edit)
    app.view(REJECT_CALLBACK)(submit_reject)
    app.view(REASSIGN_CALLBACK)(submit_reassign)
