"""Listeners for the escalation message's buttons and the Edit and Reject modals.

Each listener acks first (a modal opens right after the ack, inside the trigger_id's 3 seconds) and hands the
work to `bot.actions.AgentActions`. The escalation is found from the button's `value` (or the modal's
private_metadata) alone. What the clicking user needs to know comes back as an ephemeral message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.flows.actions import AgentActions, Outcome
from bot.slack.blocks import ACTION_IDS, EDIT_CALLBACK, REJECT_CALLBACK, REJECT_REASONS, edit_modal, reject_modal

log = logging.getLogger(__name__)


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
    try:
        return _escalation_id(json.loads(view.get("private_metadata") or "{}").get("escalation_id"))
    except (ValueError, AttributeError, TypeError):
        return None


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
        escalation_id = _from_button(body)
        if escalation_id is None:
            return _tell(client, body, Outcome(False, "This button does not name an escalation."))
        _tell(client, body, act(_actions(context), escalation_id, body["user"]["id"]))

    listener.__name__ = act.__name__
    return listener


claim = _button(AgentActions.claim)
approve = _button(AgentActions.approve)
retry = _button(AgentActions.retry)


def open_edit(ack: Ack, body: dict, context: BoltContext, client: WebClient) -> None:
    ack()
    _open_modal(body, context, client, kind="edit")


def open_reject(ack: Ack, body: dict, context: BoltContext, client: WebClient) -> None:
    ack()
    _open_modal(body, context, client, kind="reject")


def _open_modal(body: dict, context: BoltContext, client: WebClient, *, kind: str) -> None:
    actions = _actions(context)
    escalation_id = _from_button(body)
    if escalation_id is None:
        return _tell(client, body, Outcome(False, "This button does not name an escalation."))
    # Only the escalation's row is read before views.open: the trigger_id expires 3 seconds after the click.
    escalation = actions.store.escalation(escalation_id)
    if escalation is None:
        return _tell(client, body, Outcome(False, "This escalation no longer exists."))
    label = f"#{escalation.ticket_id} {escalation.subject}".strip()
    view = (edit_modal(escalation_id, draft=escalation.sent_text or escalation.draft, ticket_label=label)
            if kind == "edit" else reject_modal(escalation_id, ticket_label=label))
    permitted = actions.may_finish(escalation_id, body["user"]["id"])
    if not permitted.ok:
        return _tell(client, body, permitted)
    client.views_open(trigger_id=body["trigger_id"], view=view)
    # Opening the form on an unclaimed escalation claims it (assign, DM): slow work, so after views.open.
    _tell(client, body, actions.check(escalation_id, body["user"]["id"]))


def _edited(values: dict) -> tuple[dict[str, str], dict]:
    text = ((values.get("reply") or {}).get("text") or {}).get("value") or ""
    if not text.strip():
        return {"reply": "Write the reply before sending it."}, {}
    return {}, {"text": text}


def _rejected(values: dict) -> tuple[dict[str, str], dict]:
    reason = (((values.get("reason") or {}).get("choice") or {}).get("selected_option") or {}).get("value")
    note = ((values.get("note") or {}).get("text") or {}).get("value") or ""
    if reason not in REJECT_REASONS:
        return {"reason": "Choose a reason."}, {}
    if reason == "other" and not note.strip():
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
    app.action(ACTION_IDS["reject"])(open_reject)
    app.action(ACTION_IDS["retry"])(retry)
    app.view(EDIT_CALLBACK)(submit_edit)
    app.view(REJECT_CALLBACK)(submit_reject)
