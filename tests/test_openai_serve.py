"""The OpenAI engine through `serve` and `simulate`: chosen when OPENAI_API_KEY is set, against a fake
OpenAI-compatible server on loopback (OPENAI_BASE_URL)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.constants import CUSTOMER_ID
from tests.support.fakes import FakeOpenAI
from tests.support.knowledge import write_knowledge
from tests.support.posts import posts_for
from tests.support.server import SeamServer, seam_env
from tests.support.waiting import wait_until


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def seam(fake_slack, fake_zendesk, fake_openai, tmp_path):
    env = seam_env(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path, OPENAI_API_KEY=fake_openai.api_key,
                   OPENAI_BASE_URL=fake_openai.url + "/v1", OPENAI_MODEL="fake-small")
    server = SeamServer(env, tmp_path / "serve.log").start()
    yield server
    assert server.stop() == 0, server.log()


def test_serve_answers_through_the_openai_engine_grounded_in_the_knowledge(seam, fake_zendesk, fake_openai):
    fake_zendesk.add_ticket(id=31, subject="Password", requester_id=CUSTOMER_ID, comments=[
        {"author_id": CUSTOMER_ID, "body": "I forgot my password, how do I reset it? My card is 4111 1111 1111 1111."}])
    fake_openai.reply_json({"answer": "Choose \"Forgot password\" on the sign-in page; the link comes by email.",
                            "supported_by": ["reset-password"], "topic": "account access", "tone": 0.1,
                            "wants_human": False, "summary": "Forgot password.", "confidence": 0.97})
    assert seam.post_webhook({"ticket_id": 31}).status_code == 202
    reply = wait_until(lambda: [c for c in fake_zendesk.comments(31) if c["author_id"] != CUSTOMER_ID],
                       what="the AI's public reply")[0]
    assert reply["public"] and reply["body"].startswith("Choose \"Forgot password\"")
    [request] = fake_openai.requests
    assert request["model"] == "fake-small" and request["response_format"]["type"] == "json_schema"
    sent = json.dumps(request["messages"])
    assert "reset-password" in sent, "the retrieved passage grounds the prompt"
    assert "4111 1111 1111 1111" not in sent, "card numbers are masked before leaving"


def test_when_openai_fails_the_ticket_escalates_as_ai_unavailable(seam, fake_slack, fake_zendesk, fake_openai):
    fake_zendesk.add_ticket(id=32, subject="Password", requester_id=CUSTOMER_ID,
                            comments=[{"author_id": CUSTOMER_ID, "body": "How do I reset my password?"}])
    fake_openai.fail(status=500, times=10)
    assert seam.post_webhook({"ticket_id": 32}).status_code == 202
    [post] = wait_until(lambda: posts_for(fake_slack, 32), timeout=30, what="the escalation")
    assert "AI unavailable" in json.dumps(post["blocks"])
    assert [c for c in fake_zendesk.comments(32) if c["author_id"] != CUSTOMER_ID] == []


def test_simulate_uses_the_openai_engine_when_the_key_is_set(fake_openai, tmp_path):
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text("\n".join(json.dumps(t) for t in [
        {"id": "a", "subject": "Password", "messages": [{"author": "customer", "body": "How do I reset my password?"}],
         "resolution": {"answer_id": "reset-password"}},
        {"id": "b", "subject": "Gift", "messages": [{"author": "customer", "body": "Do gift cards expire?"}],
         "resolution": {"answer_id": "gift-cards"}},
    ]) + "\n")
    env = {"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": fake_openai.api_key, "OPENAI_BASE_URL": fake_openai.url + "/v1",
           "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "bot", "simulate", str(tickets), "--knowledge",
                             str(write_knowledge(tmp_path / "kb")), "--out", str(tmp_path / "out"), "--format", "json"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(fake_openai.requests) == 2
    decisions = [json.loads(line) for line in (tmp_path / "out" / "decisions.jsonl").read_text().splitlines()]
    # The fake answers from the first passage in the prompt, i.e. the closest article for each ticket.
    assert [d["answer_source"] for d in decisions] == ["reset-password", "gift-cards"]


@pytest.mark.parametrize("status", [401, 404])
def test_a_refused_key_or_model_shows_in_healthz_until_the_server_answers_again(
        seam, fake_slack, fake_zendesk, fake_openai, status):
    # While the key (or the model) is refused every ticket escalates as "AI unavailable": safe, and silent.
    for ticket_id in (33, 34):
        fake_zendesk.add_ticket(id=ticket_id, subject="Password", requester_id=CUSTOMER_ID,
                                comments=[{"author_id": CUSTOMER_ID, "body": "How do I reset my password?"}])
    assert seam.http.get("/healthz").status_code == 200
    fake_openai.fail(status=status)
    assert seam.post_webhook({"ticket_id": 33}).status_code == 202
    wait_until(lambda: posts_for(fake_slack, 33), timeout=30, what="the escalation")

    def health(code: int):
        response = seam.http.get("/healthz")
        return response.status_code == code and response.json()

    refused = wait_until(lambda: health(503), what="/healthz degraded")
    assert any("OPENAI_API_KEY or OPENAI_MODEL" in p for p in refused["problems"]), refused
    fake_openai.reply_json({"answer": None, "supported_by": [], "topic": "account access", "tone": 0.0,
                            "wants_human": False, "summary": "Forgot password.", "confidence": 0.2})
    assert seam.post_webhook({"ticket_id": 34}).status_code == 202
    wait_until(lambda: posts_for(fake_slack, 34), timeout=30, what="the second escalation")
    assert wait_until(lambda: health(200), what="/healthz healthy again")["ok"] is True
