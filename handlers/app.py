"""The Bolt app: services injected into every listener's context, one global error handler, and the listener
modules registered one by one (each has `register(app)`).

A listener that fails never leaves the person who clicked or typed without an answer: the error handler answers
the request itself when the listener failed before acknowledging it (a slash command whose change could not be
saved), and otherwise tells them where they acted — ephemerally in the channel, or by DM from a modal or the App
Home. A full disk, a locked database or a bug all end in a sentence rather than silence.
"""

from __future__ import annotations

import json
import logging
import sqlite3
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
    def on_error(error: Exception, body: dict, logger: logging.Logger,
                 response: BoltResponse | None) -> BoltResponse | None:
        kind = body.get("type") or (body.get("event") or {}).get("type") or body.get("command")
        logger.error("Slack listener failed on %s: %s", kind, error, exc_info=error)
        notice = failure_notice(error)
        if response is not None and body.get("command"):
            # Failed before acknowledging: the command's own answer says so (instead of Slack's "failed").
            return BoltResponse(status=200, headers={"content-type": "application/json"},
                                body=json.dumps({"response_type": "ephemeral", "text": notice}))
        if kind in ("block_actions", "view_submission"):
            try:
                tell_about_failure(services, body, notice)
            except Exception as exc:  # Slack unreachable as well: the log line above is all there is
                logger.warning("could not tell the user about that failure: %s", exc)
        if response is not None:
            return BoltResponse(status=200, body="")  # acknowledged: the person has been told instead
        return None

    actions.register(app)
    commands.register(app)
    home.register(app)
    return app


def failure_notice(error: Exception) -> str:
    """What the person is told when their click or command failed inside Seam."""
    if isinstance(error, sqlite3.OperationalError):
        return (f"Seam could not save that: its database is not writable right now ({error}). Nothing changed; "
                "try again in a minute, and tell whoever runs Seam if it keeps happening.")
    return (f"Something went wrong inside Seam ({type(error).__name__}), so that may not have finished. Check the "
            "message before trying again; Seam's log has the details.")


def tell_about_failure(services: Services, body: dict, notice: str) -> None:
    """Ephemerally where they clicked; by DM from a modal or the App Home (no channel to be ephemeral in)."""
    user = (body.get("user") or {}).get("id")
    if not user:
        return
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    try:
        if channel:
            services.slack.chat_postEphemeral(channel=channel, user=user, text=notice)
            return
    except Exception as exc:  # Slack refused too: fall back to the DM
        log.warning("could not tell %s about a failure in the channel: %s", user, exc)
    services.poster.direct_message(user, {"text": notice})
