"""The web process: one Flask app with `/slack/events` (Bolt), `/webhooks/<helpdesk>`, `/healthz` and `/metrics`,
served by waitress (a production WSGI server, in-process, so the background workers share the process), plus
Socket Mode when `SLACK_APP_TOKEN` is set.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import logging
import os
import signal
import threading
import time

import click
from flask import Flask, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from werkzeug.exceptions import HTTPException

from bot.config import ConfigError, load_settings
from bot.flows import metrics
from bot.flows.routes import check_routes
from bot.services import Services
from handlers import webhooks
from handlers.app import build_bolt_app

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
SLACK_WINDOW_SECONDS = 300


def slack_signature_ok(secret: bytes, timestamp: str, signature: str, body: bytes, *,
                       now: float | None = None) -> bool:
    """Slack's v0 signature over the raw bytes (any bytes: slack_sdk's verifier decodes them as UTF-8 first and
    raises on anything else), with its 5-minute replay window, compared in constant time."""
    if not secret or not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > SLACK_WINDOW_SECONDS:
        return False
    expected = "v0=" + hmac.new(secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def create_web_app(services: Services, bolt_app: App) -> Flask:
    web = Flask("seam")
    web.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    web.config["SEAM_SERVICES"] = services
    slack_handler = SlackRequestHandler(bolt_app)
    web.register_blueprint(webhooks.blueprint)

    secret = (services.settings.slack_signing_secret or "").encode()

    @web.post("/slack/events")
    def slack_events():
        if services.settings.slack_app_token:
            # In Socket Mode Bolt skips signature checks (the socket is authenticated), so the HTTP door
            # must stay shut: nothing unsigned may reach the listeners this way.
            return jsonify(error="Slack traffic uses Socket Mode on this deployment"), 404
        body = request.get_data(cache=True)
        # Checked here, before Bolt parses anything: a forged body must get a 401, not a parser's 500.
        if not slack_signature_ok(secret, request.headers.get("X-Slack-Request-Timestamp", ""),
                                  request.headers.get("X-Slack-Signature", ""), body):
            return jsonify(error="invalid or missing Slack signature"), 401
        try:
            response = slack_handler.handle(request)
        except Exception as exc:  # Bolt could not make a request of it: the payload is malformed
            log.warning("malformed Slack request: %s", exc)
            return jsonify(error="malformed Slack request"), 400
        if response.status_code >= 500:
            # A listener failed on a payload missing what Slack always sends (the error handler logged it).
            return jsonify(error="could not handle this Slack request"), 400
        return response

    def problems() -> tuple[dict, list[str]]:
        """The queue's figures and what /healthz reports as failing; raises when the database does not answer."""
        services.store.ping()
        queue = services.store.queue_stats()
        return queue, services.health.problems(queue) if services.health is not None else []

    def at_work() -> tuple[list[dict], list[dict]]:
        """Jobs running now with their ages, and those past [server] stuck_after (named as stuck)."""
        running = services.runner.worker.running()
        return running, [job for job in running if job["seconds"] >= services.settings.stuck_after_seconds]

    @web.get("/healthz")
    def healthz():
        try:
            queue, found = problems()
        except Exception as exc:  # the one thing health must report rather than raise
            log.error("health check: database unreachable: %s", exc)
            return jsonify(ok=False, error="database unreachable"), 503
        running, stuck = at_work()
        if found:  # degraded: Seam answers, but escalations are failing (bot.flows.health)
            return jsonify(ok=False, problems=found, queue=queue, running=running, stuck=stuck), 503
        return jsonify(ok=True, queue=queue, running=running, stuck=stuck)

    token = services.settings.metrics_token

    @web.get("/metrics")
    def prometheus():
        if not token:
            return jsonify(error="/metrics is off: set METRICS_TOKEN to turn it on"), 404
        # The figures are counts only, but they are the business's: a scraper shows the token first.
        given = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, f"Bearer {token}".encode()):
            return jsonify(error="missing or wrong bearer token"), 401, {"WWW-Authenticate": 'Bearer realm="seam"'}
        try:
            queue, found = problems()
            running, stuck = at_work()
            body = metrics.exposition(metrics.families(
                store=services.store, queue=queue, policy=services.controls.policy(), healthy=not found,
                running=len(running), stuck=len(stuck)))
        except Exception as exc:  # a scrape must say the database is gone, not fail with a 500
            log.error("metrics: database unreachable: %s", exc)
            return jsonify(error="database unreachable"), 503
        return Response(body, content_type=CONTENT_TYPE_LATEST)

    @web.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return jsonify(error=exc.description or exc.name), exc.code

    return web


def listen(web: Flask, *, host: str, port: int):
    """The waitress server bound to HOST and PORT; a ConfigError (one line) when it cannot bind there: the port taken
    by another process, a HOST that is no address of this machine."""
    from waitress.server import create_server

    try:
        return create_server(web, host=host, port=port, threads=8, max_request_body_size=MAX_BODY_BYTES,
                             ident="seam")
    except OSError as exc:
        # The OS's own words stay in the line ("Address already in use"): scripts and tests/support/server.py
        # look for them to pick another port.
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            reason += " (another process listens there)"
        raise ConfigError(f"cannot listen on HOST {host} PORT {port}: {reason}") from None
    except ValueError:  # waitress's word for a host name that resolves to nothing
        raise ConfigError(f"cannot listen on HOST {host} PORT {port}: HOST is not an address of this machine") from None


def run(services: Services, *, bolt_app: App, server) -> None:
    """Start workers, Socket Mode if configured, and serve HTTP on `server` (bound already, by `listen`); stop
    cleanly on SIGTERM or SIGINT."""
    settings = services.settings
    services.start()
    socket_handler = None
    if settings.slack_app_token:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        socket_handler = SocketModeHandler(bolt_app, settings.slack_app_token)
        socket_handler.connect()
        log.info("Slack traffic over Socket Mode")
    stopped = threading.Event()

    def shutdown(signum: int, _frame: object) -> None:
        if stopped.is_set():
            return
        stopped.set()
        log.info("signal %s: stopping", signum)
        # waitress's loop runs while any connection is open (a client's keep-alive one, say): SystemExit is
        # its way out — it stops taking requests, lets the running ones finish, and returns from run().
        raise SystemExit(0)

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
        services.stop()
        log.info("stopped")


def serve() -> None:
    """Build the services from the environment and run until SIGTERM (the `serve` command)."""
    try:
        settings = load_settings()
        settings.require_for_serve()
        # The token lives in Settings from here on. Bolt would read SLACK_BOT_TOKEN from the environment again
        # and warn that it goes unused beside the client Seam gives it; no child process needs it either.
        os.environ.pop("SLACK_BOT_TOKEN", None)
        services = Services.build(settings)
        # The Slack token, the escalation channel (the app in it) and the helpdesk's credentials: one refused
        # stops serve with one line naming it.
        for line in services.check_credentials():
            log.info("checked %s", line)
        # Every [[routes]] channel exists and has the bot in it: a bad route stops serve, named in one line.
        check_routes(services.slack, settings)
        # Bound before the workers start: a serve that cannot listen stops before it does any work.
        bolt_app = build_bolt_app(services)
        server = listen(create_web_app(services, bolt_app), host=settings.host, port=settings.port)
    except ConfigError as exc:
        # The engine's first fit runs in a background thread and may log on ("engine ready") while this exits:
        # the error must stay the last line, the one a person reads.
        logging.disable(logging.CRITICAL)
        raise click.ClickException(str(exc)) from None
    run(services, bolt_app=bolt_app, server=server)
