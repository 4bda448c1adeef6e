"""Benchmark: time from a signed Zendesk webhook to Seam's `chat.postMessage`, on loopback.

Starts the loopback fakes (tests/support/fakes) and the real `python -m bot serve`, then sends N signed
webhooks, one at a time, for tickets whose customer asks for a person (so each ends in a Slack post), and
measures:
- ack: POST /webhooks/zendesk until its 2xx answer;
- webhook → post: POST sent until the fake Slack receives the escalation's chat.postMessage.
Baseline, in the same run: the floor of that path, i.e. what the same process's two calls that must happen
anyway cost without Seam — a ticket and comments read from the fake Zendesk plus one chat.postMessage to the
fake Slack, made directly with httpx and slack_sdk.

    python -m bench.webhook_to_slack [--tickets 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from slack_sdk import WebClient

from bench._common import describe, machine
from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.fakes import FakeSlack, FakeZendesk
from tests.support.server import SeamServer, seam_env, unpaced_config


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_to_slack", description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=200)
    args = parser.parse_args()

    with FakeSlack() as slack, FakeZendesk() as zendesk, tempfile.TemporaryDirectory() as tmp:
        zendesk.add_user(id=CUSTOMER_ID, name="Ana Customer", email="ana@example.com")
        for n in range(args.tickets + 20):
            zendesk.add_ticket(id=10_000 + n, subject=f"Order {n}", requester_id=CUSTOMER_ID, comments=[
                {"author_id": CUSTOMER_ID, "body": "My parcel is late."},
                {"author_id": CUSTOMER_ID, "body": "Please let me talk to a real person about it."}])

        # Baseline: the unavoidable calls, made directly.
        client = WebClient(token=slack.token, base_url=slack.url + "/")
        http = httpx.Client(base_url=zendesk.url, auth=zendesk.auth)
        baseline = []
        for n in range(args.tickets):
            started = time.perf_counter()
            http.get(f"/api/v2/tickets/{10_000 + n}.json").raise_for_status()
            http.get(f"/api/v2/tickets/{10_000 + n}/comments.json").raise_for_status()
            client.chat_postMessage(channel="CBASELINE", text="baseline")
            baseline.append(time.perf_counter() - started)

        server = SeamServer(seam_env(slack=slack, zendesk=zendesk, tmp=Path(tmp), LOG_LEVEL="WARNING",
                                     SEAM_CONFIG=unpaced_config(Path(tmp))),
                            Path(tmp) / "serve.log").start()
        try:
            acks, ends = [], []
            for n in range(args.tickets):
                ticket_id = 10_000 + n
                body = json.dumps({"ticket_id": ticket_id}).encode()
                sent = time.monotonic()
                response = server.post_webhook(body)
                acks.append(time.monotonic() - sent)
                assert response.status_code == 202, response.text
                deadline = sent + 30
                while time.monotonic() < deadline:
                    posted = [c for c in slack.calls_to("chat.postMessage") if c.ok
                              and c.params.get("channel") == CHANNEL and "thread_ts" not in c.params
                              and (c.params.get("metadata") or {}).get("event_payload", {}).get("ticket_id")
                              == str(ticket_id)]
                    if posted:
                        ends.append(posted[0].received_at - sent)
                        break
                    time.sleep(0.001)
                else:
                    raise SystemExit(f"ticket {ticket_id} was never posted:\n{server.log()}")
        finally:
            server.stop()

    print(f"machine: {machine()}")
    print(describe("ack (webhook → 2xx)", acks))
    print(describe("webhook → chat.postMessage", ends))
    print(describe("baseline (direct calls)", baseline))
    print(f"Seam's overhead over the baseline, median: "
          f"{(statistics.median(ends) - statistics.median(baseline)) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
