"""Seam's whole core in-process, without `serve`: `build_services` makes the `Services` a deployment would have
(store, Zendesk adapter, engine, Slack client, flows, runner) against the loopback fakes, with its own SQLite
file; `web_client` puts the real Flask app and Bolt listeners in front of it (Flask's test client), and
`drain` runs the queue's jobs on the calling thread. Nothing runs in the background unless a test starts it.
`ticket_event` and `escalated` put a Zendesk ticket through the pipeline as an accepted webhook would; `staffed`
builds a deployment with one agent in both Slack and Zendesk (AGENT, ZENDESK_AGENT: Claim finds them by email).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.support.constants import CHANNEL, SLACK_SECRET, ZENDESK_SECRET
from tests.support.fakes import FakeSlack, FakeZendesk
from tests.support.knowledge import write_knowledge


def build_services(*, slack: FakeSlack, zendesk: FakeZendesk, tmp: Path, slack_table: Any = None, **overrides: Any):
    """`Services.build` for a deployment pointed at the fakes; `overrides` replace Settings fields (`slack_table`
    the `[slack]` table, whose field name the fake's argument takes)."""
    from bot.config import Settings
    from bot.helpdesk.zendesk.settings import ZendeskSettings
    from bot.services import Services

    settings = Settings(
        host="127.0.0.1", port=0, slack_bot_token=slack.token, slack_signing_secret=SLACK_SECRET,
        slack_api_url=slack.url + "/", escalation_channel=CHANNEL,
        helpdesk_settings=ZendeskSettings(subdomain=zendesk.subdomain, email=zendesk.email, api_token=zendesk.token,
                                          api_url=zendesk.url, webhook_secret=ZENDESK_SECRET),
        database_path=str(tmp / "seam.db"), knowledge_path=str(write_knowledge(tmp / "knowledge")),
    )
    if slack_table is not None:
        overrides["slack"] = slack_table
    return Services.build(replace(settings, **overrides))


AGENT, AGENT_EMAIL, ZENDESK_AGENT = "UAGENT", "agent@acme.example", 801


def staffed(*, slack: FakeSlack, zendesk: FakeZendesk, tmp: Path, **overrides: Any):
    """`build_services` with AGENT in Slack and ZENDESK_AGENT in Zendesk, one person by their email."""
    slack.add_user(AGENT, email=AGENT_EMAIL, name="agent")
    zendesk.add_user(id=ZENDESK_AGENT, name="Agent", email=AGENT_EMAIL, role="agent")
    return build_services(slack=slack, zendesk=zendesk, tmp=tmp, **overrides)


def web_client(services):
    """Flask's test client for the web app `serve` runs (Bolt's listeners included)."""
    from handlers.app import build_bolt_app
    from handlers.web import create_web_app

    return create_web_app(services, build_bolt_app(services)).test_client()


def drain(services, *, limit: int = 50) -> int:
    """Run due jobs one by one on this thread until none is left (at most `limit`); how many ran."""
    ran = 0
    while ran < limit and services.runner.worker.run_once():
        ran += 1
    return ran


def ticket_event(services, ticket_id: int, key: str) -> str:
    """Record a ticket event (as an accepted webhook does) and run the queue; the event's outcome."""
    event_id, new = services.store.record_event(helpdesk="zendesk", dedupe_key=f"t{ticket_id}:{key}",
                                                ticket_id=str(ticket_id), body="{}")
    assert new
    drain(services)
    event = services.store.event(event_id)
    assert event.state == "done", event.last_error
    return event.outcome


def escalated(services, fake_slack: FakeSlack, fake_zendesk: FakeZendesk, *, ticket_id: int, requester: int,
              subject: str, text: str) -> dict:
    """A new Zendesk ticket with one comment, escalated: {ticket, escalation, ts} of its card."""
    from tests.support.posts import posts_for

    fake_zendesk.add_ticket(id=ticket_id, subject=subject, requester_id=requester,
                            comments=[{"author_id": requester, "body": text}])
    assert "escalated" in ticket_event(services, ticket_id, "new")
    [post] = posts_for(fake_slack, ticket_id)
    return {"ticket": ticket_id, "escalation": int(post["metadata"]["event_payload"]["escalation_id"]),
            "ts": post["ts"]}
