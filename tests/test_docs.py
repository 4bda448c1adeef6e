"""The docs stay true: the manifest, the configuration reference and the README's commands are checked here."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.config import load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_manifest_declares_what_the_app_uses():
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert manifest["_metadata"]["major_version"] == 1
    info = manifest["display_information"]
    assert len(info["name"]) <= 35 and len(info["description"]) <= 140
    assert 175 <= len(info["long_description"]) <= 4000
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/escalation"
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # chat.postMessage/update, conversations.history (find a post after a crash), users.info with email,
    # conversations.info (the start-up check that the app is in its channel).
    assert {"chat:write", "commands", "channels:history", "users:read", "users:read.email", "channels:read",
            "groups:read"} <= scopes
    # Seam posts only where it is a member (crash recovery reads the channel's history, which needs membership).
    assert "chat:write.public" not in scopes
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert "app_home_opened" in settings["event_subscriptions"]["bot_events"]
    urls = [command["url"], settings["interactivity"]["request_url"], settings["event_subscriptions"]["request_url"]]
    assert all(url.endswith("/slack/events") for url in urls)


def test_the_configuration_reference_example_loads(tmp_path):
    text = (ROOT / "docs" / "configuration.md").read_text()
    [example] = re.findall(r"```toml\n(.*?)```", text, re.S)
    (tmp_path / "seam.toml").write_text(example)
    settings = load_settings(env={}, cwd=tmp_path)
    assert (settings.policy.thresholds.auto, settings.policy.thresholds.draft) == (0.9, 0.5)
    refund = settings.policy.triggers.high_risk.topics["refund"]
    assert "store credit" in refund and "refund*" in refund
    assert "medical claims" in settings.policy.triggers.high_risk.topics
    assert "put me through to billing" in settings.policy.triggers.asks_for_human.phrases
    assert [r.name for r in settings.routes] == ["vip", "acme", "billing"]
    assert settings.routes[0].page_manager and settings.routes[1].notify_customer is False
    assert settings.customer_notice.enabled and settings.customer_notice.response_time["high"] == 4 * 3600
    assert settings.resolve_status == "solved" and settings.approve_status == "pending" and settings.workers == 4
    assert settings.stuck_after_seconds == 120


def test_readme_commands_are_the_ones_ci_and_the_tree_use():
    readme = (ROOT / "README.md").read_text()
    assert 'pip install -e ".[test]" && python -m pytest' in readme
    assert "python -m pytest" in (ROOT / ".ci" / "run").read_text()
    main_job = re.search(r"python -m bot simulate (\S+) --history (\S+) --knowledge (\S+)", readme)
    assert main_job and all((ROOT / path).exists() for path in main_job.groups())
    assert (ROOT / "Procfile").read_text().strip() == "web: python -m bot serve"


def test_readme_sample_figures_match_a_fresh_simulation():
    from bot.engine.knowledge import load_knowledge
    from bot.engine.local import LocalEngine
    from bot.models import read_tickets
    from bot.offline.simulate import simulate
    from bot.policy.decide import Policy

    tickets, _ = read_tickets(ROOT / "examples" / "tickets.jsonl")
    history, _ = read_tickets(ROOT / "examples" / "history.jsonl")
    # As `python -m bot simulate` fits it: in processes, so the figures are the same every run.
    engine = LocalEngine(articles=load_knowledge(ROOT / "examples" / "knowledge"), history=history, processes=True)
    _, summary = simulate(tickets, engine=engine, policy=Policy())
    current = summary["current"]
    readme = " ".join((ROOT / "README.md").read_text().split())
    claimed = re.search(r"answers ([\d.]+)% of tickets itself with ([\d.]+)% of those answers right, "
                        r"drafts ([\d.]+)% and escalates ([\d.]+)%", readme)
    assert claimed, "the README states the sample's figures"
    actual = [current["resolve_rate"], current["accuracy"], current["draft_rate"], current["escalate_rate"]]
    assert [float(x) for x in claimed.groups()] == [round(v * 100, 1) for v in actual]


def test_the_block_kit_example_in_the_agent_flow_doc_is_what_seam_builds():
    import json

    from bot.models import Decision, Reason, Route, Ticket
    from bot.slack.blocks import EscalationView, escalation_message

    example = EscalationView(
        escalation_id=42,
        ticket=Ticket(id="1042", subject="Refund for order 7781", requester_name="Ana",
                      requester_email="ana@example.com", priority="high"),
        decision=Decision(route=Route.DRAFT, confidence=0.91, answer_source="check-refund-policy",
                          summary="1 customer message. I returned order 7781 two weeks ago and have not been refunded.",
                          answer="Refunds reach your card within 5 to 10 business days after the return arrives.",
                          reasons=(Reason("high_risk_topic", "High-risk topic: refund", "“refunded”"),)),
        link="https://acme.zendesk.com/agent/tickets/1042")
    text = (ROOT / "docs" / "agent-flow.md").read_text()
    [documented] = re.findall(r"```json\n(.*?)```", text, re.S)
    assert json.loads(documented) == escalation_message(example)["blocks"]


def test_every_config_example_in_the_readme_loads(tmp_path):
    blocks = re.findall(r"```toml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) >= 2
    for index, block in enumerate(blocks):
        path = tmp_path / f"readme-{index}.toml"
        path.write_text(block)
        load_settings({"SEAM_CONFIG": str(path)}, cwd=tmp_path)
