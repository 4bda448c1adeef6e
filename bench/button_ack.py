"""Benchmark: how fast `serve` acknowledges a button click (Slack allows 3 seconds), on loopback.

Starts the fakes (tests/support/fakes) and the real `python -m bot serve`, creates escalations through signed
webhooks, then sends N signed block_actions clicks (Claim and Approve by 20 agents, on 50 escalations, so the
work behind the acks is real: assignment, chat.update, DMs, public replies) and measures the time from request
to HTTP answer — one at a time, then with 20 clients at once. Baseline, in the same run: GET /healthz on the
same server, the floor of any request to it.

    python -m bench.button_ack [--clicks 500]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench._common import describe, machine
from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.fakes import FakeSlack, FakeZendesk
from tests.support.payloads import block_action
from tests.support.server import SeamServer, seam_env, unpaced_config
from tests.support.signing import signed_form

ESCALATIONS = 50
AGENTS = [f"UAGENT{n}" for n in range(20)]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.button_ack", description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=500)
    args = parser.parse_args()
    rng = random.Random(7)

    with FakeSlack() as slack, FakeZendesk() as zendesk, tempfile.TemporaryDirectory() as tmp:
        zendesk.add_user(id=CUSTOMER_ID, name="Ana Customer", email="ana@example.com")
        for n, user in enumerate(AGENTS):
            slack.add_user(user, email=f"agent{n}@acme.example", name=user.lower())
            zendesk.add_user(id=500 + n, name=user, email=f"agent{n}@acme.example", role="agent")
        for n in range(ESCALATIONS):
            zendesk.add_ticket(id=20_000 + n, subject=f"Password {n}", requester_id=CUSTOMER_ID, comments=[
                {"author_id": CUSTOMER_ID, "body": "I forgot my password. Can I talk to a person please?"}])
        server = SeamServer(seam_env(slack=slack, zendesk=zendesk, tmp=Path(tmp), LOG_LEVEL="WARNING",
                                     SEAM_CONFIG=unpaced_config(Path(tmp))),
                            Path(tmp) / "serve.log").start()
        try:
            for n in range(ESCALATIONS):
                server.post_webhook({"ticket_id": 20_000 + n})
            deadline = time.monotonic() + 60
            while len(slack.messages(CHANNEL)) < ESCALATIONS and time.monotonic() < deadline:
                time.sleep(0.05)
            posts = [(m["ts"], str(m["metadata"]["event_payload"]["escalation_id"])) for m in slack.messages(CHANNEL)]
            assert len(posts) == ESCALATIONS, f"only {len(posts)} escalations were posted"

            def one_click(client: httpx.Client) -> float:
                ts, escalation = rng.choice(posts)
                body, headers = signed_form(block_action(user=rng.choice(AGENTS), value=escalation, message_ts=ts,
                                                         action_id=rng.choice(["seam_claim", "seam_approve"])))
                started = time.perf_counter()
                response = client.post("/slack/events", content=body, headers=headers)
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, response.text
                return elapsed

            baseline = []
            for _ in range(args.clicks):
                started = time.perf_counter()
                server.http.get("/healthz").raise_for_status()
                baseline.append(time.perf_counter() - started)
            sequential = [one_click(server.http) for _ in range(args.clicks)]
            clients = [httpx.Client(base_url=server.url, timeout=10) for _ in range(20)]
            with ThreadPoolExecutor(max_workers=20) as pool:
                concurrent = list(pool.map(lambda i: one_click(clients[i % 20]), range(args.clicks)))
            time.sleep(2)  # let the work behind the acks finish before the server stops
            replies = [sum(1 for c in zendesk.comments(20_000 + n) if c["public"] and c["author_id"] != CUSTOMER_ID)
                       for n in range(ESCALATIONS)]
        finally:
            server.stop()

    print(f"machine: {machine()}")
    print(describe("click ack, one at a time", sequential))
    print(describe("click ack, 20 at once", concurrent))
    print(describe("baseline GET /healthz", baseline))
    print(describe("all clicks (limit 3000 ms)", sequential + concurrent))
    print(f"approved escalations: {sum(1 for r in replies if r)} of {ESCALATIONS}; most replies on one ticket: "
          f"{max(replies)} (more than 1 would be a double send)")


if __name__ == "__main__":
    main()
