"""The Bolt app: services injected into every listener's context, one global error handler, and the listener
modules registered one by one (each has `register(app)`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

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
    )

    @app.middleware
    def inject_services(context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse:
        context["services"] = services
        return next()

    @app.error
    def on_error(error: Exception, body: dict, logger: logging.Logger) -> None:
        kind = body.get("type") or (body.get("event") or {}).get("type") or body.get("command")
        logger.error("Slack listener failed on %s: %s", kind, error, exc_info=error)

    actions.register(app)
    commands.register(app)
    home.register(app)
    return app
