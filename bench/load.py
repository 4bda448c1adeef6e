"""Benchmark: `serve` under load — a burst of N webhooks from 16 clients, then 500 button clicks from 20.

Starts the loopback fakes (tests/support/fakes) and the real `python -m bot serve` with a SEAM_CONFIG that
raises the Slack pacing (`[slack] posts_per_second = 200`, `post_burst = 50`; if the configuration refuses that
rate the highest it accepts is used and said so) and turns reconciliation off (`[reconcile] interval_seconds =
0`).
Creates N Zendesk tickets whose customer asks for a person, then measures:
- webhook ack: N signed webhooks sent as fast as 16 concurrent httpx clients can, POST until the 2xx
  (median, p99) and the ack throughput (webhooks/s);
- end to end: the first send until the last top-level chat.postMessage reaches the fake Slack, and that every
  ticket got exactly one top-level post (nothing lost, nothing doubled);
- the serve process's peak memory (VmHWM from /proc/<pid>/status at the end);
- click ack: M signed Claim clicks on random escalations by 20 agents from 20 concurrent clients.
Baseline, in the same run: GET /healthz under the same concurrency (16, then 20 clients), the floor of any
request to the same server.

The fake Slack has no rate limit. Real Slack allows about 1 message per second per channel, and each
escalation is at least 2 messages in the channel (the post and its threaded transcript), so delivering N
escalations to one channel takes about 2N seconds: that estimate is printed too, with the figure for the
number of messages per escalation this run actually measured.

    python -m bench.load [--webhooks 1000] [--clicks 500]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench._common import describe, machine
from bot.config import ConfigError, load_settings
from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.fakes import FakeSlack, FakeZendesk
from tests.support.payloads import block_action
from tests.support.server import SeamServer, seam_env
from tests.support.signing import signed_form, zendesk_headers

FIRST_TICKET = 30_000
AGENTS = [f"UAGENT{n}" for n in range(20)]
WEBHOOK_CLIENTS = 16
CLICK_CLIENTS = 20


def write_config(path: Path, env: dict[str, str], rate: float) -> float:
    """The SEAM_CONFIG file; returns the rate actually configured (lower if the configuration refuses `rate`)."""
    for attempt in (rate, 100.0, 50.0):
        path.write_text(f"[slack]\nposts_per_second = {attempt:g}\npost_burst = 50\n\n"
                        "[helpdesk]\nrequests_per_minute = 0\nupdates_per_minute = 0\n\n"
                        "[reconcile]\ninterval_seconds = 0\n", encoding="utf-8")
        try:
            load_settings({**env, "SEAM_CONFIG": str(path)})
            return attempt
        except ConfigError as exc:
            print(f"note: {exc}; trying a lower rate", flush=True)
    raise SystemExit("the configuration refuses every pacing tried")


def concurrently(clients: list[httpx.Client], count: int, one) -> tuple[list[float], float]:
    """Run one(client, i) for i in range(count) spread over the clients; (latencies, wall seconds)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        futures = [pool.submit(lambda i=i: one(clients[i % len(clients)], i)) for i in range(count)]
        latencies = [f.result() for f in futures]
    return latencies, time.perf_counter() - started


def healthz(client: httpx.Client, _i: int) -> float:
    started = time.perf_counter()
    client.get("/healthz").raise_for_status()
    return time.perf_counter() - started


def peak_memory_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=1000)
    parser.add_argument("--clicks", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for all posts")
    args = parser.parse_args()
    n = args.webhooks
    rng = random.Random(11)
    print(f"machine: {machine()}", flush=True)

    with FakeSlack() as slack, FakeZendesk() as zendesk, tempfile.TemporaryDirectory() as tmp:
        zendesk.add_user(id=CUSTOMER_ID, name="Ana Customer", email="ana@example.com")
        for k, user in enumerate(AGENTS):
            slack.add_user(user, email=f"agent{k}@acme.example", name=user.lower())
            zendesk.add_user(id=500 + k, name=user, email=f"agent{k}@acme.example", role="agent")
        for k in range(n):
            zendesk.add_ticket(id=FIRST_TICKET + k, subject=f"Order {k}", requester_id=CUSTOMER_ID, comments=[
                {"author_id": CUSTOMER_ID, "body": "My parcel is late."},
                {"author_id": CUSTOMER_ID, "body": "Please let me talk to a real person about it."}])
        env = seam_env(slack=slack, zendesk=zendesk, tmp=Path(tmp), LOG_LEVEL="WARNING")
        rate = write_config(Path(tmp) / "seam.toml", env, 200.0)
        env["SEAM_CONFIG"] = str(Path(tmp) / "seam.toml")
        server = SeamServer(env, Path(tmp) / "serve.log").start()
        assert server.process is not None
        try:
            clients = [httpx.Client(base_url=server.url, timeout=30)
                       for _ in range(max(WEBHOOK_CLIENTS, CLICK_CLIENTS))]
            health16, _ = concurrently(clients[:WEBHOOK_CLIENTS], 500, healthz)

            # Phase 1: the webhook burst.
            bodies = [json.dumps({"ticket_id": FIRST_TICKET + k}).encode() for k in range(n)]
            statuses: Counter[int] = Counter()
            lock = threading.Lock()
            first_send: list[float] = []

            def webhook(client: httpx.Client, i: int) -> float:
                sent = time.monotonic()
                with lock:
                    if not first_send:
                        first_send.append(sent)
                started = time.perf_counter()
                response = client.post("/webhooks/zendesk", content=bodies[i], headers=zendesk_headers(bodies[i]))
                elapsed = time.perf_counter() - started
                with lock:
                    statuses[response.status_code] += 1
                return elapsed

            acks, ack_wall = concurrently(clients[:WEBHOOK_CLIENTS], n, webhook)

            def top_level_posts() -> list:
                return [c for c in slack.calls_to("chat.postMessage") if c.ok and c.params.get("channel") == CHANNEL
                        and "thread_ts" not in c.params
                        and (c.params.get("metadata") or {}).get("event_type") == "seam_escalation"]

            deadline = time.monotonic() + args.timeout
            while len(top_level_posts()) < n and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)  # anything doubled would show up now
            posts = top_level_posts()
            per_ticket = Counter(str((c.params.get("metadata") or {}).get("event_payload", {}).get("ticket_id"))
                                 for c in posts)
            in_channel = Counter(str(m["metadata"]["event_payload"]["ticket_id"]) for m in slack.messages(CHANNEL)
                                 if (m.get("metadata") or {}).get("event_type") == "seam_escalation")
            expected = {str(FIRST_TICKET + k) for k in range(n)}
            lost = sorted(expected - set(per_ticket))
            doubled = sorted(t for t, c in per_ticket.items() if c > 1) + sorted(
                t for t, c in in_channel.items() if c > 1)
            last_post = max((c.received_at for c in posts), default=float("nan"))
            end_to_end = last_post - first_send[0]
            replies = sum(1 for c in slack.calls_to("chat.postMessage") if c.ok and "thread_ts" in c.params)

            # Phase 2: clicks on the escalations just posted.
            escalations = [(m["ts"], str(m["metadata"]["event_payload"]["escalation_id"]))
                           for m in slack.messages(CHANNEL)
                           if (m.get("metadata") or {}).get("event_type") == "seam_escalation"]
            click_status: Counter[int] = Counter()
            clicks_plan = [(rng.choice(escalations), rng.choice(AGENTS)) for _ in range(args.clicks)]

            def click(client: httpx.Client, i: int) -> float:
                (ts, escalation), user = clicks_plan[i]
                body, headers = signed_form(block_action(user=user, action_id="seam_claim", value=escalation,
                                                         message_ts=ts))
                started = time.perf_counter()
                response = client.post("/slack/events", content=body, headers=headers)
                elapsed = time.perf_counter() - started
                with lock:
                    click_status[response.status_code] += 1
                return elapsed

            health20, _ = concurrently(clients[:CLICK_CLIENTS], 500, healthz)
            click_acks, click_wall = concurrently(clients[:CLICK_CLIENTS], args.clicks, click) if escalations \
                else ([], 0.0)
            time.sleep(2)  # the work behind the acks
            assigned = sum(1 for k in range(n) if zendesk.ticket(FIRST_TICKET + k).get("assignee_id"))
            peak_kb = peak_memory_kb(server.process.pid)
            for client in clients:
                client.close()
        finally:
            server.stop()

    print(f"pacing: posts_per_second = {rate:g}, post_burst = 50 (fake Slack: no rate limit); reconcile off")
    print(f"webhooks: {n} from {WEBHOOK_CLIENTS} clients; answers {dict(sorted(statuses.items()))}")
    print(describe("webhook ack", acks))
    print(f"{'webhook ack throughput':<28} {n / ack_wall:8.1f} webhooks/s  ({n} in {ack_wall:.2f} s)")
    print(describe("baseline GET /healthz (16)", health16))
    print(f"{'end to end':<28} {end_to_end:8.2f} s  first send -> last top-level post "
          f"({len(posts)} posts, {replies} thread replies)")
    print(f"{'delivery rate':<28} {len(posts) / end_to_end:8.1f} escalations/s")
    print(f"posts per ticket: {len(expected) - len(lost)} of {n} posted; lost {len(lost)}"
          f"{' ' + str(lost[:10]) if lost else ''}; doubled {len(doubled)}{' ' + str(doubled[:10]) if doubled else ''}")
    per_escalation = 1 + replies / max(1, len(posts))
    print(f"estimate with real Slack (1 message/s/channel): ~{2 * n} s (~{2 * n / 60:.0f} min) to deliver {n} "
          f"escalations to one channel at 2 messages each; ~{per_escalation * n:.0f} s at the "
          f"{per_escalation:.1f} messages per escalation measured here")
    print(f"serve peak memory (VmHWM): {peak_kb / 1024:.1f} MiB" if peak_kb else "serve peak memory: unavailable")
    print(f"clicks: {args.clicks} Claim by {len(AGENTS)} agents on {len(escalations)} escalations from "
          f"{CLICK_CLIENTS} clients; answers {dict(sorted(click_status.items()))}; tickets assigned: {assigned}")
    if click_acks:
        print(describe("click ack (limit 3000 ms)", click_acks))
        print(f"{'click throughput':<28} {args.clicks / click_wall:8.1f} clicks/s")
    print(describe("baseline GET /healthz (20)", health20))
    if lost or doubled:
        print("FAIL: every ticket must get exactly one top-level post")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
