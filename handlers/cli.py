"""`python -m bot serve`, registered with the core's command line through the `seam.commands` entry point
(pyproject.toml), so `bot/` never imports the web layer. The web stack loads only when the command runs:
`python -m bot --help` stays fast."""

from __future__ import annotations

import click


@click.command()
def serve() -> None:
    """Run the web process: Slack events, helpdesk webhooks, /healthz and the background workers."""
    from handlers.web import serve as run_serve

    run_serve()
