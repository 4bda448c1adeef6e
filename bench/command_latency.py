"""Benchmark: how fast `serve` answers `/escalation` (Slack allows 3 seconds), on loopback.

Starts the fakes and the real `python -m bot serve` with a database holding a few thousand decisions and
feedback rows (so `stats` and `advise` read real tables), then sends N signed slash commands of each kind, one
at a time, and measures request to HTTP answer (the ephemeral reply is in that answer). Baseline, in the same
run: GET /healthz on the same server.

    python -m bench.command_latency [--commands 300]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from bench._common import describe, machine
from bot.store import Store, iso, utcnow
from tests.support.constants import CHANNEL
from tests.support.fakes import FakeSlack, FakeZendesk
from tests.support.server import SeamServer, seam_env, unpaced_config
from tests.support.signing import slack_headers

MANAGER = "UBOSS"
KINDS = ("thresholds", "stats 30d", "advise 2%", "set auto 0.9")


def seed(database: str, *, decisions: int = 5000) -> None:
    store = Store(database)
    rng = random.Random(3)
    now = iso(utcnow())
    store.db["decisions"].insert_all(
        {"route": rng.choice(["resolve", "draft", "escalate"]), "confidence": rng.random(), "created_at": now,
         "ticket_key": f"zendesk:{n}", "answer_source": rng.choice(["a", "b", "c", None]), "reasons": "[]"}
        for n in range(decisions))
    store.db["feedback"].insert_all(
        {"action": rng.choice(["approve", "approve", "edit", "reject"]), "confidence": rng.random(),
         "created_at": now, "user_id": "U1"} for _ in range(decisions // 2))
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.command_latency", description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=300)
    args = parser.parse_args()
    with FakeSlack() as slack, FakeZendesk() as zendesk, tempfile.TemporaryDirectory() as tmp:
        env = seam_env(slack=slack, zendesk=zendesk, tmp=Path(tmp), LOG_LEVEL="WARNING", MANAGER_USER_IDS=MANAGER,
                       SEAM_CONFIG=unpaced_config(Path(tmp)))
        seed(env["DATABASE_PATH"])
        server = SeamServer(env, Path(tmp) / "serve.log").start()
        timings: dict[str, list[float]] = {kind: [] for kind in KINDS}
        baseline = []
        try:
            for _ in range(args.commands):
                started = time.perf_counter()
                server.http.get("/healthz").raise_for_status()
                baseline.append(time.perf_counter() - started)
                for kind in KINDS:
                    body = urlencode({"token": "t", "team_id": "T1", "channel_id": CHANNEL, "user_id": MANAGER,
                                      "command": "/escalation", "text": kind, "api_app_id": "A1",
                                      "response_url": "https://hooks.slack.invalid/1", "trigger_id": "1.2.3"}).encode()
                    started = time.perf_counter()
                    response = server.http.post("/slack/events", content=body, headers=slack_headers(body))
                    timings[kind].append(time.perf_counter() - started)
                    assert response.status_code == 200 and json.loads(response.text)["text"], response.text
        finally:
            server.stop()
    print(f"machine: {machine()}")
    for kind, values in timings.items():
        print(describe(f"/escalation {kind}", values))
    print(describe("all commands", [v for values in timings.values() for v in values]))
    print(describe("baseline GET /healthz", baseline))


if __name__ == "__main__":
    main()
