"""The real `serve` process for scenario tests and benchmarks: `SeamServer` starts `python -m bot serve` as a
subprocess exactly as a deployment would (environment only), and `seam_env` builds that environment, pointed at
the fakes through SLACK_API_URL and ZENDESK_API_URL, with its own SQLite file and knowledge folder. `UNPACED`
and `unpaced_config` lift Seam's pacing for runs where the fakes' missing rate limits would otherwise make the
pacing the only thing measured.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.constants import CHANNEL, SLACK_SECRET, ZENDESK_SECRET
from tests.support.fakes import FakeSlack, FakeZendesk
from tests.support.knowledge import write_knowledge
from tests.support.signing import zendesk_headers

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


# Every helpdesk's variables are cleared first, so the environment the tests run in never leaks into serve.
HELPDESK_PREFIXES = ("HELPDESK", "ZENDESK_", "FRESHDESK_", "GORGIAS_", "FRONT_", "HELPSCOUT_")


def seam_env(*, slack: FakeSlack, zendesk: FakeZendesk | None = None, tmp: Path,
             helpdesk_env: dict[str, str] | None = None, **overrides: str) -> dict[str, str]:
    """The environment `serve` runs with: the fake Slack (which learns the escalation channel, with the app in it,
    as `serve` checks at start), and either the fake Zendesk or `helpdesk_env` (a harness's `serve_env()`, for any
    helpdesk)."""
    slack.add_channel(CHANNEL, name="escalations")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "OPENAI_", "SEAM_", *HELPDESK_PREFIXES)) and k != "HISTORY_PATH"}
    if helpdesk_env is None:
        assert zendesk is not None, "seam_env needs a fake Zendesk or another helpdesk's environment"
        helpdesk_env = {"HELPDESK": "zendesk", "ZENDESK_SUBDOMAIN": zendesk.subdomain, "ZENDESK_EMAIL": zendesk.email,
                        "ZENDESK_API_TOKEN": zendesk.token, "ZENDESK_API_URL": zendesk.url,
                        "ZENDESK_WEBHOOK_SECRET": ZENDESK_SECRET}
    env.update({
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": SLACK_SECRET,
        "SLACK_API_URL": slack.url + "/",
        "ESCALATION_CHANNEL": CHANNEL,
        **helpdesk_env,
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
        self.process: subprocess.Popen | None = None
        self._listen_on(env["PORT"])

    def _listen_on(self, port: str) -> None:
        if getattr(self, "http", None) is not None:
            self.http.close()
        self.env["PORT"] = port
        self.url = f"http://{self.env['HOST']}:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def start(self, *, timeout: float = 30.0, attempts: int = 3) -> SeamServer:
        """Start serve and wait until it answers /healthz. `free_port` only found a port free a moment ago: another
        test's serve may take it first, and then answer /healthz in this one's place. So this serve's own log must
        say it listens on the port (at LOG_LEVEL INFO), and a port taken meanwhile is traded for another."""
        for attempt in range(attempts):
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            log = self.log_path.open("ab")
            self.process = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=self.env,
                                            cwd=self.log_path.parent, stdout=log, stderr=subprocess.STDOUT)
            if self._ready(offset, timeout=timeout):
                return self
            if "Address already in use" not in self._log_since(offset) or attempt == attempts - 1:
                raise RuntimeError(f"serve exited with {self.process.returncode}:\n{self.log()}")
            self._listen_on(str(free_port()))
        raise AssertionError("unreachable")

    def _ready(self, offset: int, *, timeout: float) -> bool:
        """True once this process listens and answers /healthz; False when it exited (RuntimeError: never ready)."""
        own = self.env.get("LOG_LEVEL", "INFO").upper() not in ("INFO", "DEBUG")  # no INFO line to look for
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            own = own or f"Seam listening on {self.url}" in self._log_since(offset)
            try:
                if own and httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.process.kill()
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

    def _log_since(self, offset: int) -> str:
        return self.log_path.read_bytes()[offset:].decode("utf-8", errors="replace")

    def post_webhook(self, payload: dict | bytes, *, headers: dict[str, str] | None = None) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.http.post("/webhooks/zendesk", content=body,
                              headers=zendesk_headers(body) if headers is None else headers)
