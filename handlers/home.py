"""The App Home's listeners: it is published (bot.flows.homes) on `app_home_opened` and after every change made
from it (pause, resume, the thresholds modal, paging, retrying dead jobs). A manager's button that does nothing
(Pause or Resume changing nothing; any of them clicked by someone who is no manager now, on a Home published while
they were) says why by DM."""

from __future__ import annotations

import json
import logging

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.services import Services
from bot.slack.blocks import HOME_ACTIONS, THRESHOLDS_CALLBACK, thresholds_modal
from handlers.commands import announce

log = logging.getLogger(__name__)


def opened(event: dict, context: BoltContext) -> None:
    if event.get("tab", "home") == "home":
        context["services"].homes.publish(event["user"])


def page(ack: Ack, body: dict, context: BoltContext) -> None:
    ack()
    pages = json.loads((body.get("view") or {}).get("private_metadata") or "{}")
    kind, _, number = (body["actions"][0].get("value") or "").partition(":")
    if kind in ("owned", "unclaimed") and number.isdigit():
        pages[kind] = int(number)
    context["services"].homes.publish(body["user"]["id"], owned_page=int(pages.get("owned", 0)),
                                      unclaimed_page=int(pages.get("unclaimed", 0)))


def toggle(ack: Ack, body: dict, context: BoltContext) -> None:
    ack()
    services: Services = context["services"]
    user_id = body["user"]["id"]
    reply = services.controls.handle(user_id, body["actions"][0]["value"])  # "pause" or "resume"
    if reply.announce:
        announce(services, reply)
    else:
        # Nothing changed (not a manager now, the manager group not checkable, already so): the Home alone would
        # look as if the click was lost.
        services.poster.direct_message(user_id, {"text": reply.text})
    services.homes.publish(user_id)


def retry_dead(ack: Ack, body: dict, context: BoltContext) -> None:
    ack()
    services: Services = context["services"]
    user_id = body["user"]["id"]
    refusal = services.controls.refusal(user_id)
    if refusal is None:
        count = services.store.retry_dead()
        services.store.audit(actor=user_id, action="retry_dead_jobs", detail={"count": count})
        services.runner.notify()
    else:
        services.poster.direct_message(user_id, {"text": refusal})
    services.homes.publish(user_id)


def open_thresholds(ack: Ack, body: dict, context: BoltContext, client: WebClient) -> None:
    ack()
    services: Services = context["services"]
    refusal = services.controls.refusal(body["user"]["id"])
    if refusal is not None:
        services.poster.direct_message(body["user"]["id"], {"text": refusal})
        return
    thresholds = services.controls.policy().thresholds
    client.views_open(trigger_id=body["trigger_id"],
                      view=thresholds_modal(auto=thresholds.auto, draft=thresholds.draft))


def submit_thresholds(ack: Ack, body: dict, view: dict, context: BoltContext, client: WebClient) -> None:
    services: Services = context["services"]
    user_id = body["user"]["id"]
    values = (view.get("state") or {}).get("values") or {}
    raw = {key: ((values.get(key) or {}).get("value") or {}).get("value") or "" for key in ("auto", "draft")}
    errors, replies = services.controls.set_thresholds(user_id, raw)
    if errors:
        return ack(response_action="errors", errors=errors)
    ack()
    for reply in replies:
        announce(services, reply)
    services.homes.publish(user_id)


def register(app: App) -> None:
    app.event("app_home_opened")(opened)
    for kind in ("owned", "unclaimed"):
        for direction in ("prev", "next"):
            app.action(f"{HOME_ACTIONS['page']}_{kind}_{direction}")(page)
    app.action(HOME_ACTIONS["pause"])(toggle)
    app.action(HOME_ACTIONS["resume"])(toggle)
    app.action(HOME_ACTIONS["thresholds"])(open_thresholds)
    app.action(HOME_ACTIONS["retry_dead"])(retry_dead)
    app.view(THRESHOLDS_CALLBACK)(submit_thresholds)
