"""`/escalation`: answered inside the ack (the work is a few database reads or writes, well within Slack's
3 seconds), ephemeral; a change is then announced in the escalation channel."""

from __future__ import annotations

from slack_bolt import Ack, App, BoltContext

from bot.flows.controls import Reply
from bot.services import Services


def announce(services: Services, reply: Reply) -> None:
    """A settings change, said in the escalation channel for everyone to see."""
    if reply.announce:
        services.poster.announce(services.settings.escalation_channel, reply.announce)


def escalation(ack: Ack, command: dict, context: BoltContext) -> None:
    services: Services = context["services"]
    reply = services.controls.handle(command["user_id"], command.get("text") or "")
    ack(text=reply.text, response_type="ephemeral")
    announce(services, reply)


def register(app: App) -> None:
    app.command("/escalation")(escalation)
