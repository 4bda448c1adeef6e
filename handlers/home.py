"""The App Home: published on `app_home_opened` and after every change made from it (pause, resume, the
thresholds modal, paging)."""

from __future__ import annotations

import json
import logging

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.services import Services
from bot.slack.blocks import HOME_ACTIONS, THRESHOLDS_CALLBACK, HomeItem, home_view, thresholds_modal
from handlers.commands import announce

log = logging.getLogger(__name__)


def publish(services: Services, client: WebClient, user_id: str, *, owned_page: int = 0,
            unclaimed_page: int = 0) -> None:
    controls = services.controls
    queue = controls.queue(user_id=user_id, owned_page=owned_page, unclaimed_page=unclaimed_page)
    manager = controls.is_manager(user_id)
    view = home_view(
        manager=manager, paused=controls.policy().paused,
        thresholds_text=controls.thresholds_text(),
        stats_text=controls.stats_text(days=7),
        queues=controls.queues(),
        owned=[HomeItem(**item) for item in queue["owned"]], owned_total=queue["owned_total"],
        owned_page=queue["owned_page"],
        unclaimed=[HomeItem(**item) for item in queue["unclaimed"]], unclaimed_total=queue["unclaimed_total"],
        unclaimed_page=queue["unclaimed_page"], queue=services.store.queue_stats(),
        notice=controls.home_notice(manager=manager))
    client.views_publish(user_id=user_id, view=view)


def opened(event: dict, context: BoltContext, client: WebClient) -> None:
    if event.get("tab", "home") == "home":
        publish(context["services"], client, event["user"])


def page(ack: Ack, body: dict, context: BoltContext, client: WebClient) -> None:
    ack()
    pages = json.loads((body.get("view") or {}).get("private_metadata") or "{}")
    kind, _, number = (body["actions"][0].get("value") or "").partition(":")
    if kind in ("owned", "unclaimed") and number.isdigit():
        pages[kind] = int(number)
    publish(context["services"], client, body["user"]["id"], owned_page=int(pages.get("owned", 0)),
            unclaimed_page=int(pages.get("unclaimed", 0)))


def toggle(ack: Ack, body: dict, context: BoltContext, client: WebClient) -> None:
    ack()
    services: Services = context["services"]
    user_id = body["user"]["id"]
    reply = services.controls.handle(user_id, body["actions"][0]["value"])  # "pause" or "resume"
    announce(services, reply)
    publish(services, client, user_id)


def retry_dead(ack: Ack, body: dict, context: BoltContext, client: WebClient) -> None:
    ack()
    services: Services = context["services"]
    user_id = body["user"]["id"]
    if services.controls.is_manager(user_id):
        count = services.store.retry_dead()
        services.store.audit(actor=user_id, action="retry_dead_jobs", detail={"count": count})
        services.runner.notify()
    publish(services, client, user_id)


def open_thresholds(ack: Ack, body: dict, context: BoltContext, client: WebClient) -> None:
    ack()
    services: Services = context["services"]
    if not services.controls.is_manager(body["user"]["id"]):
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
    publish(services, client, user_id)


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
