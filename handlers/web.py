"""The web process: one Flask app with `/slack/events` (Bolt), `/webhooks/zendesk` and `/healthz`, served by
waitress (a production WSGI server, in-process, so the background workers share the process), plus Socket
Mode when `SLACK_APP_TOKEN` is set.
"""

from __future__ import annotations

import logging
import signal
import threading

import click
from flask import Flask, jsonify, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from werkzeug.exceptions import HTTPException

from bot.config import ConfigError, load_settings
from bot.services import Services
from handlers import webhooks
from handlers.app import build_bolt_app

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


def create_web_app(services: Services, bolt_app: App) -> Flask:
    web = Flask("seam")
    web.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    web.config["SEAM_SERVICES"] = services
    slack_handler = SlackRequestHandler(bolt_app)
    web.register_blueprint(webhooks.blueprint)

    @web.post("/slack/events")
    def slack_events():
        if services.settings.slack_app_token:
            # In Socket Mode Bolt skips signature checks (the socket is authenticated), so the HTTP door
            # must stay shut: nothing unsigned may reach the listeners this way.
            return jsonify(error="Slack traffic uses Socket Mode on this deployment"), 404
        return slack_handler.handle(request)

    @web.get("/healthz")
    def healthz():
        try:
            services.store.ping()
            queue = services.store.queue_stats()
        except Exception as exc:  # the one thing health must report rather than raise
            log.error("health check: database unreachable: %s", exc)
            return jsonify(ok=False, error="database unreachable"), 503
        return jsonify(ok=True, queue=queue)

    @web.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return jsonify(error=exc.description or exc.name), exc.code

    return web


def run(services: Services) -> None:
    """Start workers, Socket Mode if configured, and the HTTP server; stop cleanly on SIGTERM or SIGINT."""
    from waitress.server import create_server

    settings = services.settings
    bolt_app = build_bolt_app(services)
    web = create_web_app(services, bolt_app)
    services.worker.start()
    socket_handler = None
    if settings.slack_app_token:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        socket_handler = SocketModeHandler(bolt_app, settings.slack_app_token)
        socket_handler.connect()
        log.info("Slack traffic over Socket Mode")
    server = create_server(web, host=settings.host, port=settings.port, threads=8,
                           max_request_body_size=MAX_BODY_BYTES, ident="seam")
    stopped = threading.Event()

    def shutdown(signum: int, _frame: object) -> None:
        if stopped.is_set():
            return
        stopped.set()
        log.info("signal %s: stopping", signum)
        server.close()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    log.info("Seam listening on http://%s:%s", settings.host, server.effective_port)
    try:
        server.run()
    except OSError:
        if not stopped.is_set():
            raise
    finally:
        if socket_handler is not None:
            socket_handler.close()
        services.worker.stop()
        log.info("stopped")


@click.command()
def serve() -> None:
    """Run the web process: Slack events, helpdesk webhooks, /healthz and the background workers."""
    try:
        settings = load_settings()
        settings.require_for_serve()
        services = Services.build(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    run(services)
