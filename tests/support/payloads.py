"""Slack interaction payloads shaped like Slack's own: a `block_actions` button click, a `view_submission` of a
modal (`card_click` and `form_submission`: on an escalation's card, {escalation, ts}), and the `state.values` of
Seam's Edit, Reject and Reassign modals. Sign and form-encode them with `tests.support.signing.signed_form`.
"""

from __future__ import annotations

import json
import time
import uuid

from tests.support.constants import CHANNEL

TEAM = {"id": "T1", "domain": "acme"}


def block_action(*, user: str, action_id: str, value: str, message_ts: str, channel: str = CHANNEL,
                 text: str = "") -> dict:
    return {
        "type": "block_actions",
        "team": TEAM,
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": "T1"},
        "api_app_id": "A1",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": f"{int(time.time())}.1.{uuid.uuid4().hex}",
        "channel": {"id": channel, "name": "escalations"},
        "message": {"type": "message", "ts": message_ts, "text": "escalation"},
        "response_url": "https://hooks.slack.invalid/actions/T1/1/x",
        "actions": [{"action_id": action_id, "block_id": "seam_actions", "type": "button", "value": value,
                     "text": {"type": "plain_text", "text": text or action_id}, "action_ts": f"{time.time():.6f}"}],
    }


def view_submission(*, user: str, callback_id: str, private_metadata: str, values: dict) -> dict:
    return {
        "type": "view_submission",
        "team": TEAM,
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": "T1"},
        "api_app_id": "A1",
        "token": "legacy-verification-token",
        "trigger_id": f"{int(time.time())}.2.{uuid.uuid4().hex}",
        "view": {"id": "V" + uuid.uuid4().hex[:8].upper(), "type": "modal", "callback_id": callback_id,
                 "private_metadata": private_metadata, "hash": "h1", "team_id": "T1", "app_id": "A1",
                 "state": {"values": values}},
        "response_urls": [],
    }


def card_click(case: dict, *, user: str, action_id: str) -> dict:
    """`user` clicks the button `action_id` on the card of `case` ({escalation, ts})."""
    return block_action(user=user, action_id=action_id, value=str(case["escalation"]), message_ts=case["ts"])


def form_submission(case: dict, *, user: str, callback_id: str, values: dict) -> dict:
    """`user` submits Seam's form `callback_id` opened from the card of `case`: its private metadata names the
    escalation and the card, as the form Seam opens does."""
    metadata = {"escalation_id": int(case["escalation"]), "channel": CHANNEL, "ts": case["ts"]}
    return view_submission(user=user, callback_id=callback_id, values=values, private_metadata=json.dumps(metadata))


def edit_values(text: str | None) -> dict:
    return {"reply": {"text": {"type": "plain_text_input", "value": text}}}


def reject_values(reason: str | None, note: str | None = None) -> dict:
    selected = {"value": reason, "text": {"type": "plain_text", "text": reason}} if reason else None
    return {"reason": {"choice": {"type": "static_select", "selected_option": selected}},
            "note": {"text": {"type": "plain_text_input", "value": note}}}


def reassign_values(user: str | None) -> dict:
    """The Reassign form's state: Slack's users_select gives the picked user's id as `selected_user`."""
    return {"owner": {"user": {"type": "users_select", "selected_user": user}}}
