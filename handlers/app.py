"""The Bolt app: services injected into every listener's context, one global error handler, and the listener
modules registered one by one (each has `register(app)`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App, BoltContext
from slack_bolt.response import BoltResponse

from bot.services import Services
from handlers import actions, commands, home

log = logging.getLogger(__name__)


def build_bolt_app(services: Services) -> App:
    settings = services.settings
    app = App(
        client=services.slack,
        signing_secret=settings.slack_signing_secret or "",
        # Socket Mode traffic is authenticated by the app token's connection, not by a request signature.
        request_verification_enabled=not settings.slack_app_token,
        token_verification_enabled=False,
        raise_error_for_unhandled_request=False,
        # Each listener acks first, then works (Slack and helpdesk calls) in this pool: size it so a burst
        # of clicks finds free threads to ack on.
        listener_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="seam-listener"),
    )

    @app.middleware
    def inject_services(context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse:
        context["services"] = services
        return next()

    @app.middleware
    def drop_redelivered_events(body: dict, next: Callable[[], BoltResponse]) -> BoltResponse:
        # Slack redelivers an event when our 2xx came late (X-Slack-Retry-Num); it was handled the first time.
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if isinstance(event_id, str) and not services.store.remember_slack_event(event_id):
            return BoltResponse(status=200, body="")
        return next()

    @app.error
    def on_error(error: Exception, body: dict, logger: logging.Logger) -> None:
        kind = body.get("type") or (body.get("event") or {}).get("type") or body.get("command")
        logger.error("Slack listener failed on %s: %s", kind, error, exc_info=error)

    actions.register(app)
    commands.register(app)
    home.register(app)
    return app
