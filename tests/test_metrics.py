"""`GET /metrics` through `python -m bot serve`: absent without `METRICS_TOKEN`, refused without the token, and with
it the figures Prometheus reads, moving as a ticket is escalated, claimed and automation is paused."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.payloads import block_action
from tests.support.posts import posts_for
from tests.support.server import SeamServer, seam_env
from tests.support.signing import signed_form, slack_headers
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "scrape-me-please"
MANAGER = "UMETRICS"
AGENT_EMAIL = "mira@acme.example"


def scrape(server: SeamServer) -> dict[tuple[str, frozenset], float]:
    """Every sample of one scrape, by name and labels."""
    response = server.http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def command(server: SeamServer, text: str) -> None:
    body = urlencode({"token": "t", "team_id": "T1", "channel_id": CHANNEL, "user_id": MANAGER, "user_name": "boss",
                      "command": "/escalation", "text": text, "api_app_id": "A1",
                      "response_url": "https://hooks.slack.invalid/commands/1", "trigger_id": "1.2.3"}).encode()
    assert server.http.post("/slack/events", content=body, headers=slack_headers(body)).status_code == 200


@pytest.fixture
def server(fake_slack, fake_zendesk, tmp_path):
    fake_slack.add_user(MANAGER, email=AGENT_EMAIL, name="mira")
    fake_zendesk.add_user(id=901, name="Mira", email=AGENT_EMAIL, role="agent")
    running = SeamServer(seam_env(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path, METRICS_TOKEN=TOKEN,
                                  MANAGER_USER_IDS=MANAGER), tmp_path / "serve.log").start()
    yield running
    assert running.stop() == 0, running.log()


def test_there_is_no_metrics_endpoint_without_a_token(fake_slack, fake_zendesk, tmp_path):
    running = SeamServer(seam_env(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path), tmp_path / "serve.log").start()
    try:
        response = running.http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 404 and "METRICS_TOKEN" in response.json()["error"]
    finally:
        assert running.stop() == 0, running.log()


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_a_scrape_without_the_token_is_refused(server, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = server.http.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "seam_" not in response.text


def test_the_figures_follow_a_ticket_from_webhook_to_claim_and_a_pause(server, fake_slack, fake_zendesk):
    before = scrape(server)
    assert value(before, "seam_decisions_total", route="escalate") == 0
    assert value(before, "seam_escalations", state="open") == 0
    assert value(before, "seam_agent_actions_total", action="claim") == 0
    assert value(before, "seam_healthy") == 1 and value(before, "seam_automation_paused") == 0
    assert value(before, "seam_threshold", kind="auto") == 0.9 and value(before, "seam_threshold", kind="draft") == 0.5
    assert value(before, "seam_process_resident_memory_bytes") > 0
    # The docs name only what a scrape holds: the contract additions' list and the example alerts.
    names = {name for name, _ in before}
    [row] = [line for line in (ROOT / "docs" / "contract-additions.md").read_text().splitlines()
             if line.startswith("| `GET /metrics`")]
    documented = set(re.findall(r"`(seam_[a-z_]+)", row))
    monitoring = (ROOT / "docs" / "configuration.md").read_text().split("## Monitoring")[1]
    rules = yaml.safe_load(re.findall(r"```yaml\n(.*?)```", monitoring, re.S)[1])["groups"][0]["rules"]
    in_alerts = {name for rule in rules for name in re.findall(r"seam_[a-z_]+", rule["expr"])}
    assert documented - {"seam_process_"} and in_alerts
    assert (documented - {"seam_process_"}) | in_alerts <= names, "every documented metric is scraped"

    fake_zendesk.add_ticket(id=4401, subject="Order 4401", requester_id=CUSTOMER_ID,
                            comments=[{"author_id": CUSTOMER_ID, "body": "Please put me through to a real person."}])
    assert server.post_webhook({"ticket_id": 4401}).status_code == 202
    [post] = wait_until(lambda: posts_for(fake_slack, 4401), what="the escalation")
    posted = wait_until(lambda: (s := scrape(server)) and value(s, "seam_escalations", state="open") == 1 and s,
                        what="the open escalation in /metrics")
    assert value(posted, "seam_decisions_total", route="escalate") == 1
    assert value(posted, "seam_decisions_total", route="resolve") == 0
    assert value(posted, "seam_queue_jobs", state="dead") == 0
    assert value(posted, "seam_escalation_oldest_seconds", state="open") >= 0
    assert value(posted, "seam_escalation_oldest_seconds", state="claimed") == 0

    body, headers = signed_form(block_action(user=MANAGER, action_id="seam_claim",
                                             value=str(post["metadata"]["event_payload"]["escalation_id"]),
                                             message_ts=post["ts"]))
    assert server.http.post("/slack/events", content=body, headers=headers).status_code == 200
    # The escalation is claimed first, then the claim is logged as feedback: wait for both.
    claimed = wait_until(lambda: (s := scrape(server)) and value(s, "seam_escalations", state="claimed") == 1
                         and value(s, "seam_agent_actions_total", action="claim") == 1 and s,
                         what="the claim in /metrics")
    assert value(claimed, "seam_escalations", state="open") == 0
    assert value(claimed, "seam_escalation_oldest_seconds", state="open") == 0

    text = server.http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert "4401" not in text and "real person" not in text and "mira" not in text, "counts only, never words"

    command(server, "pause")
    assert value(scrape(server), "seam_automation_paused") == 1
    command(server, "resume")
    assert value(scrape(server), "seam_automation_paused") == 0
