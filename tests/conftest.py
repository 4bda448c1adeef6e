"""Shared test harness: the loopback fakes, a knowledge folder, signed requests, and the real `serve` process.

`SeamServer` starts `python -m bot serve` as a subprocess exactly as a deployment would (environment only),
pointed at the fakes through SLACK_API_URL and ZENDESK_API_URL, with its own SQLite file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bot.helpdesk.zendesk.adapter import sign
from tests.fakes import FakeSlack, FakeZendesk

ROOT = Path(__file__).resolve().parent.parent
SLACK_SECRET = "slack-signing-secret-for-tests"
ZENDESK_SECRET = "zendesk-webhook-secret-for-tests"
CHANNEL = "C0ESCALATE"
CUSTOMER_ID = 1001

ARTICLES = {
    "reset-password": (
        "Reset your password",
        "If you forgot your password, open the sign-in page and choose \"Forgot password\". Enter the email "
        "address on your account and we send you a reset link within a few minutes. The link works for 24 "
        "hours. If the email does not arrive, check your spam folder.",
    ),
    "shipping-times": (
        "How long shipping takes",
        "Standard shipping takes 3 to 5 business days within the country and 7 to 14 days abroad. Express "
        "shipping arrives in 1 to 2 business days. You get a tracking link by email as soon as the parcel leaves "
        "our warehouse.",
    ),
    "gift-cards": (
        "Gift cards",
        "Gift cards are sold in amounts from 10 to 500 and never expire. Redeem one at checkout by entering the "
        "16-digit code. A gift card cannot be exchanged for cash.",
    ),
}


def write_knowledge(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for article_id, (title, body) in ARTICLES.items():
        (folder / f"{article_id}.md").write_text(f"# {title}\n\n{body}\n", encoding="utf-8")
    return folder


def zendesk_headers(body: bytes, *, secret: str = ZENDESK_SECRET, timestamp: str | None = None) -> dict[str, str]:
    timestamp = timestamp or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Signature": sign(secret, timestamp, body),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }


def slack_headers(body: bytes, *, secret: str = SLACK_SECRET, timestamp: int | None = None,
                  content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    timestamp = timestamp or int(time.time())
    base = f"v0:{timestamp}:".encode() + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": signature}


# For benchmarks and burst tests: the fakes have no rate limits, so Seam's pacing to Slack's and Zendesk's
# would only measure the pacing. Real deployments keep the defaults (docs/configuration.md).
UNPACED = ("[slack]\nposts_per_second = 1000\npost_burst = 50\n\n[helpdesk]\nrequests_per_minute = 0\n"
           "updates_per_minute = 0\n\n[reconcile]\ninterval_seconds = 0\n")


def unpaced_config(folder: Path) -> str:
    path = folder / "unpaced.toml"
    path.write_text(UNPACED, encoding="utf-8")
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seam_env(*, slack: FakeSlack, zendesk: FakeZendesk, tmp: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ZENDESK_", "OPENAI_", "SEAM_"))}
    env.update({
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": SLACK_SECRET,
        "SLACK_API_URL": slack.url + "/",
        "ESCALATION_CHANNEL": CHANNEL,
        "ZENDESK_SUBDOMAIN": zendesk.subdomain,
        "ZENDESK_EMAIL": zendesk.email,
        "ZENDESK_API_TOKEN": zendesk.token,
        "ZENDESK_API_URL": zendesk.url,
        "ZENDESK_WEBHOOK_SECRET": ZENDESK_SECRET,
        "DATABASE_PATH": str(tmp / "seam.db"),
        "KNOWLEDGE_PATH": str(write_knowledge(tmp / "knowledge")),
        "LOG_LEVEL": "INFO",
    })
    env.update(overrides)
    return env


class SeamServer:
    """`python -m bot serve` in a subprocess, with its log captured to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.url = f"http://{env['HOST']}:{env['PORT']}"
        self.process: subprocess.Popen | None = None
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def start(self, *, timeout: float = 30.0) -> SeamServer:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=self.env, cwd=self.log_path.parent,
                                        stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"serve did not become healthy:\n{self.log()}")

    def stop(self, *, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def post_webhook(self, payload: dict | bytes, *, headers: dict[str, str] | None = None) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.http.post("/webhooks/zendesk", content=body,
                              headers=zendesk_headers(body) if headers is None else headers)


@pytest.fixture
def fake_slack():
    with FakeSlack() as server:
        yield server


@pytest.fixture
def fake_zendesk():
    with FakeZendesk() as server:
        server.add_user(id=CUSTOMER_ID, name="Ana Customer", email="ana@example.com")
        yield server


@pytest.fixture
def knowledge_dir(tmp_path: Path) -> Path:
    return write_knowledge(tmp_path / "knowledge")
