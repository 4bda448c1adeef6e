"""`/escalation`: answered inside the ack (the work is a few database reads or writes, well within Slack's
3 seconds), ephemeral; a change is then announced in the escalation channel."""

from __future__ import annotations

import logging

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.flows.controls import Reply
from bot.services import Services

log = logging.getLogger(__name__)


def announce(services: Services, client: WebClient, reply: Reply) -> None:
    if not reply.announce or not services.settings.escalation_channel:
        return
    try:
        client.chat_postMessage(channel=services.settings.escalation_channel, text=reply.announce)
    except SlackApiError as exc:
        log.warning("could not announce a settings change: %s", exc)


def escalation(ack: Ack, command: dict, context: BoltContext, client: WebClient) -> None:
    services: Services = context["services"]
    reply = services.controls.handle(command["user_id"], command.get("text") or "")
    ack(text=reply.text, response_type="ephemeral")
    announce(services, client, reply)


def register(app: App) -> None:
    app.command("/escalation")(escalation)
