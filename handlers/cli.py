"""`python -m bot serve`, registered with the core's command line through the `seam.commands` entry point
(pyproject.toml), so `bot/` never imports the web layer. The web stack loads only when the command runs:
`python -m bot --help` stays fast."""

from __future__ import annotations

import logging
import sys

import click


@click.command()
def serve() -> None:
    """Run the web process: Slack events, helpdesk webhooks, /healthz and the background workers. Its log goes
    to stdout; stderr holds only the one-line error that stops it."""
    from handlers.web import serve as run_serve

    _log_to_stdout()
    run_serve()


def _log_to_stdout() -> None:
    """A service's log is its event stream: stdout, line by line, as process managers and platforms read it.
    Every command keeps stderr for its one-line error (the contract), and serve's start-up log (knowledge read,
    credentials checked) must not come before that line. The other commands log to stderr: their stdout is data."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(line_buffering=True)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
            handler.setStream(sys.stdout)
