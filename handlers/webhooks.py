"""`POST /webhooks/<helpdesk>`: verify, validate, record durably, answer — and leave all the work to the workers.

The configured helpdesk's adapter (`HELPDESK`, `bot.helpdesk.registry`) verifies and parses its own platform's
webhooks; any other name is 404. `/webhooks/zendesk` is the contract's endpoint for Zendesk.

Nothing slow happens before the answer: no AI, no helpdesk or Slack call. Answers are JSON; bad input gets a
4xx with an `error` message, never a 5xx.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request

from bot.helpdesk.base import WebhookAuthError, WebhookChallenge, WebhookPayloadError
from bot.services import Services

log = logging.getLogger(__name__)

blueprint = Blueprint("webhooks", __name__)


@blueprint.post("/webhooks/<name>")
def helpdesk_webhook(name: str):
    services: Services = current_app.config["SEAM_SERVICES"]
    if name != services.helpdesk.name:
        return jsonify(error=f"no helpdesk named {name[:40]!r} is configured here "
                             f"(this deployment uses {services.helpdesk.name})"), 404
    body = request.get_data(cache=False)
    headers = {name.lower(): value for name, value in request.headers.items()}
    try:
        services.helpdesk.verify_webhook(headers=headers, body=body)
    except WebhookAuthError as exc:
        log.warning("refused a %s webhook from %s: %s", name, request.remote_addr, exc)
        return jsonify(error="invalid or missing webhook signature"), 401
    try:
        event = services.helpdesk.parse_webhook(headers=headers, body=body)
    except WebhookChallenge as challenge:  # the platform checking the endpoint: nothing to record
        if isinstance(challenge.body, dict):
            return jsonify(challenge.body), 200
        return Response(challenge.body, status=200, content_type=challenge.content_type)
    except WebhookPayloadError as exc:
        return jsonify(error=str(exc)), 400
    event_id, created = services.store.record_event(
        helpdesk=services.helpdesk.name, dedupe_key=event.delivery_key, ticket_id=event.ticket_id,
        body=body.decode("utf-8"))
    if created:
        services.runner.notify()
    return jsonify(ok=True, event_id=event_id, duplicate=not created), 200 if not created else 202
