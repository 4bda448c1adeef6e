"""Benchmark: how soon each escalation of a burst is visible in Slack, at Slack's real pace of one post a second
per channel (`posts_per_second = 1`, `post_burst = 1`), in simulated time.

N tickets whose customer asks for a person arrive at once, all routed to one channel. Seam's real core runs them
in-process (`Services.build` against the loopback fakes: the Zendesk adapter, the engine, the pipeline, the
job queue in SQLite, the Poster, the fake Slack over HTTP) on as many worker threads as `serve` uses
(`[server] workers`, 4). Only time is simulated: the Poster's `ChannelPacer` gets a clock and a sleep that jump to
the next wake-up when every worker is waiting, so a burst of 100 that takes 200–400 s at one post a second runs
in about 30 s, and processing itself takes no simulated time (on loopback it is about 10 ms a ticket,
bench.webhook_to_slack, small next to the one-second slot). Measured, per ordering:
- t_k: when the k-th card (top-level post) of the burst is visible, k counted from 1 (the first goes at 0 s, so
  t_k − k·interval is at best −1 interval, and ≤ 0 means "visible within k seconds");
- t_k − k·interval: p50, p90 and max over the burst; and the worst over tickets in arrival order;
- when the last card is visible, when the last post (a transcript reply) lands;
- Slack posts per escalation (card, transcript replies, thread notes).
Baseline, in the same run: the ordering Seam had before (HEAD's pipeline and pacer): each job posts its card and
then, inline, its transcript one reply per message (`transcript_messages`), and the pacer hands out slots
first come, first served (`ChannelPacer.wait` with one priority for every post). The new ordering is the code as
it is: cards at priority 0, the transcript queued as a job behind the tickets due, one reply for a short
conversation (`transcript_replies`), slots to the most urgent post (`bot.slack.poster.PRIORITY`).
With `--serve RATE`, a third row checks the simulation against the real thing: `python -m bot serve` (as
tests/test_burst_order.py drives it) at `posts_per_second = RATE`, `post_burst = 1`, in real time, the burst sent
as signed webhooks; its times are from the first webhook sent and are shown in posting intervals like the others
(a run at 4/s takes about N/2 seconds).

    python -m bench.burst [--escalations 100] [--rate 1.0] [--messages 3] [--workers 4] [--serve 4]
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench._common import machine, percentile
from bot.pacing import ChannelPacer
from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.fakes import FakeSlack, FakeZendesk
from tests.support.server import SeamServer, seam_env
from tests.support.services import build_services
from tests.support.waiting import wait_until

AGENT_ID = 801
FIRST_TICKET = 20_000
CUSTOMER_LINES = ["My parcel is late, it was due on Monday.", "It has been three days now and nobody tells me why.",
                  "The tracking page has not changed since Friday."]
AGENT_LINES = ["Sorry about that, let me check with the courier.", "The courier says it is on its way."]
LAST_LINE = "Please put me through to a real person."


class SimTime:
    """Simulated time for a fixed set of threads: `sleep` blocks until the clock reaches the wake-up, and the clock
    jumps to the earliest wake-up once every thread is asleep or parked (waiting for work). When every thread is
    parked and none sleeps, the run is over: `park` returns False."""

    def __init__(self) -> None:
        self.now = 0.0
        self._cond = threading.Condition()
        self._active = 0
        self._sleepers: list[tuple[float, int, dict]] = []
        self._parked: list[dict] = []
        self._seq = itertools.count()
        self._finished = False

    def clock(self) -> float:
        return self.now

    def enter(self) -> None:
        with self._cond:
            self._active += 1

    def leave(self) -> None:
        with self._cond:
            self._active -= 1
            self._advance()

    def sleep(self, seconds: float) -> None:
        with self._cond:
            entry = {"go": False}
            heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._seq), entry))
            self._active -= 1
            self._advance()
            while not entry["go"]:
                self._cond.wait()

    def park(self) -> bool:
        with self._cond:
            if self._finished:
                return False
            entry = {"go": False}
            self._parked.append(entry)
            self._active -= 1
            self._advance()
            while not entry["go"] and not self._finished:
                self._cond.wait()
            return entry["go"]

    def unpark_all(self) -> None:
        with self._cond:
            for entry in self._parked:
                entry["go"] = True
                self._active += 1
            self._parked.clear()
            self._cond.notify_all()

    def _advance(self) -> None:
        if self._active > 0:
            return
        if self._sleepers:
            self.now = max(self.now, self._sleepers[0][0])
            while self._sleepers and self._sleepers[0][0] <= self.now:
                heapq.heappop(self._sleepers)[2]["go"] = True
                self._active += 1
        else:
            self._finished = True
        self._cond.notify_all()


class FifoPacer(ChannelPacer):
    """The pacer as it was: every post the same priority, so slots go first come, first served."""

    def wait(self, channel: str, *, priority: int = 0) -> float:
        return super().wait(channel, priority=0)


@dataclass
class Post:
    at: float
    ts: str
    thread_ts: str | None
    ticket_id: str | None


@dataclass
class RecordingSlack:
    """The Poster's WebClient, noting the simulated time each chat.postMessage is accepted."""

    client: object
    clock: Callable[[], float]
    posts: list[Post] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def chat_postMessage(self, **params):
        response = self.client.chat_postMessage(**params)
        payload = (params.get("metadata") or {}).get("event_payload") or {}
        with self.lock:
            self.posts.append(Post(at=self.clock(), ts=response["ts"], thread_ts=params.get("thread_ts"),
                                   ticket_id=payload.get("ticket_id")))
        return response

    def __getattr__(self, name: str):
        return getattr(self.client, name)


def conversation(messages: int) -> list[dict]:
    """A ticket's comments: customer and agent in turn, the customer last, asking for a person."""
    comments = []
    for n in range(messages - 1):
        customer = n % 2 == 0
        lines = CUSTOMER_LINES if customer else AGENT_LINES
        comments.append({"author_id": CUSTOMER_ID if customer else AGENT_ID, "body": lines[(n // 2) % len(lines)]})
    if comments and comments[-1]["author_id"] == CUSTOMER_ID:
        comments[-1] = {"author_id": CUSTOMER_ID, "body": comments[-1]["body"] + " " + LAST_LINE}
    else:
        comments.append({"author_id": CUSTOMER_ID, "body": LAST_LINE})
    return comments


@dataclass
class Result:
    name: str
    interval: float
    cards: list[Post]
    replies: list[Post]
    arrival: list[str]  # ticket ids in the order they arrived
    wall: float

    def units(self, seconds: float) -> float:
        """`seconds` in posting intervals (seconds at one post a second)."""
        return seconds / self.interval

    def lateness(self) -> list[float]:
        """t_k − k·interval for each card in the order they appeared, in intervals."""
        return [self.units(card.at) - k for k, card in enumerate(self.cards, start=1)]

    def arrival_lateness(self) -> list[float]:
        """The same for the k-th ticket to arrive, wherever its card came."""
        at = {card.ticket_id: card.at for card in self.cards}
        return [self.units(at[ticket]) - k for k, ticket in enumerate(self.arrival, start=1)]

    def posts_per_escalation(self) -> list[int]:
        counts = {card.ts: 1 for card in self.cards}
        for reply in self.replies:
            counts[reply.thread_ts] += 1
        return list(counts.values())


def run(name: str, *, escalations: int, rate: float, messages: int, workers: int, baseline: bool) -> Result:
    sim = SimTime()
    with FakeSlack() as slack, FakeZendesk() as zendesk, tempfile.TemporaryDirectory() as tmp:
        ids = [FIRST_TICKET + n for n in range(escalations)]
        add_tickets(zendesk, ids, messages)
        services = build_services(slack=slack, zendesk=zendesk, tmp=Path(tmp))
        poster, store = services.poster, services.store
        recording = RecordingSlack(poster.slack, sim.clock)
        poster.slack = recording
        pacer_class = FifoPacer if baseline else ChannelPacer
        poster.pacer = pacer_class(rate=rate, burst=1, clock=sim.clock, sleep=sim.sleep)
        if baseline:
            # HEAD's pipeline: the transcript right after the card, in the same job, one reply per message.
            def inline(escalation, ticket_messages, *, link):
                posted = store.escalation(escalation.id)
                poster.post_transcript(posted, posted.ts, ticket_messages, link=link, packed=False)
            poster.queue_transcript = inline

        # The burst: every webhook's job recorded at once, as handlers.webhooks does.
        for ticket_id in ids:
            store.record_event(helpdesk="zendesk", dedupe_key=f"burst:{ticket_id}", ticket_id=str(ticket_id),
                               body=json.dumps({"ticket_id": ticket_id}))
        worker = services.runner.worker
        errors: list[BaseException] = []

        def loop() -> None:
            try:
                while True:
                    if worker.run_once():
                        sim.unpark_all()  # the job may have queued another (a transcript)
                    elif not sim.park():
                        return
            except BaseException as exc:
                errors.append(exc)
                sim.leave()

        started = time.perf_counter()
        threads = [threading.Thread(target=loop, name=f"worker-{n}", daemon=True) for n in range(workers)]
        for _ in threads:
            sim.enter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        if errors:
            raise errors[0]
        failed = store.db.execute("select count(*) from events where kind in ('ticket', 'transcript', "
                                  "'thread_note') and state != 'done'").fetchone()[0]
        posts = list(recording.posts)
        cards = sorted((p for p in posts if p.thread_ts is None), key=lambda p: (p.at, p.ts))
        replies = sorted((p for p in posts if p.thread_ts is not None), key=lambda p: (p.at, p.ts))
        if len(cards) != escalations or {c.ticket_id for c in cards} != {str(t) for t in ids} or failed:
            raise SystemExit(f"{name}: {len(cards)} cards for {escalations} tickets, {failed} jobs not done")
        if any(len(slack.replies(CHANNEL, card.ts)) == 0 for card in cards):
            raise SystemExit(f"{name}: an escalation has no transcript")
        return Result(name=name, interval=1.0 / rate, cards=cards, replies=replies,
                      arrival=[str(t) for t in ids], wall=wall)


def add_tickets(zendesk: FakeZendesk, ids: list[int], messages: int) -> None:
    zendesk.add_user(id=CUSTOMER_ID, name="Ana Customer", email="ana@example.com")
    zendesk.add_user(id=AGENT_ID, name="Agent", email="agent@acme.example", role="agent")
    for ticket_id in ids:
        zendesk.add_ticket(id=ticket_id, subject=f"Order {ticket_id}", requester_id=CUSTOMER_ID,
                           comments=conversation(messages))


SERVE_CONFIG = """[slack]
posts_per_second = {rate}
post_burst = 1

[server]
workers = {workers}

[helpdesk]
requests_per_minute = 0
updates_per_minute = 0

[reconcile]
interval_seconds = 0
"""


def run_serve(*, escalations: int, rate: float, messages: int, workers: int) -> Result:
    """The code as it is, through `python -m bot serve`, in real time at `rate` posts a second."""
    ids = [FIRST_TICKET + n for n in range(escalations)]
    with FakeSlack() as slack, FakeZendesk() as zendesk, tempfile.TemporaryDirectory() as tmp:
        add_tickets(zendesk, ids, messages)
        config = Path(tmp) / "seam.toml"
        config.write_text(SERVE_CONFIG.format(rate=rate, workers=workers), encoding="utf-8")
        server = SeamServer(seam_env(slack=slack, zendesk=zendesk, tmp=Path(tmp), LOG_LEVEL="WARNING",
                                     SEAM_CONFIG=str(config)), Path(tmp) / "serve.log").start()
        try:
            started = time.monotonic()
            for ticket_id in ids:
                response = server.post_webhook({"ticket_id": ticket_id})
                assert response.status_code == 202, response.text

            def done() -> bool:
                cards = slack.messages(CHANNEL)
                return len(cards) == escalations and all(card["replies"] for card in cards)

            wait_until(done, timeout=escalations * (2 + messages) / rate + 60, what="every card and transcript")
            wall = time.monotonic() - started
            time.sleep(2 / rate)  # anything more (a second reply, a note) would have landed by now
        finally:
            server.stop()
        posts = [Post(at=c.received_at - started, ts=c.response["ts"], thread_ts=c.params.get("thread_ts"),
                      ticket_id=((c.params.get("metadata") or {}).get("event_payload") or {}).get("ticket_id"))
                 for c in slack.calls_to("chat.postMessage") if c.ok and c.params.get("channel") == CHANNEL]
    cards = sorted((p for p in posts if p.thread_ts is None), key=lambda p: p.at)
    replies = sorted((p for p in posts if p.thread_ts is not None), key=lambda p: p.at)
    return Result(name=f"now, real serve at {rate:g}/s", interval=1.0 / rate, cards=cards, replies=replies,
                  arrival=[str(t) for t in ids], wall=wall)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__.splitlines()[0])
    parser.add_argument("--escalations", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1.0, help="posts a second per channel (Slack: about 1)")
    parser.add_argument("--messages", type=int, default=3, help="messages in each ticket's conversation")
    parser.add_argument("--workers", type=int, default=4, help="worker threads (serve's default: 4)")
    parser.add_argument("--serve", type=float, metavar="RATE",
                        help="also run the real `serve` at RATE posts a second, in real time")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    results = [run(name, escalations=args.escalations, rate=args.rate, messages=args.messages,
                   workers=args.workers, baseline=baseline)
               for name, baseline in (("before: FIFO, inline", True), ("now: cards first", False))]
    if args.serve:
        results.append(run_serve(escalations=args.escalations, rate=args.serve, messages=args.messages,
                                 workers=args.workers))

    n = args.escalations
    marks = sorted({k for k in (1, 10, 50, n) if 1 <= k <= n})
    print(f"machine: {machine()}")
    print(f"{n} escalations at once to one channel, post_burst 1, {args.messages}-message conversations, "
          f"{args.workers} workers; simulated rows at {args.rate:g} post/s. Times in posting intervals "
          f"(= seconds at 1 post/s), from the burst's arrival.")
    head = " | ".join(f"t_{k}" for k in marks)
    print(f"| ordering | {head} | t_k − k p50 / p90 / max | worst by arrival | last card | last post "
          f"| posts per escalation | run took |")
    print("| --- " * (len(marks) + 7) + "|")
    for r in results:
        late = r.lateness()
        per = r.posts_per_escalation()
        counts = f"{min(per)}" if min(per) == max(per) else f"{min(per)}–{max(per)} (mean {sum(per) / len(per):.2f})"
        last = max([*r.cards, *r.replies], key=lambda p: p.at)
        ts = " | ".join(f"{r.units(r.cards[k - 1].at):.1f}" for k in marks)
        print(f"| {r.name} | {ts} | {percentile(late, 0.5):+.1f} / {percentile(late, 0.9):+.1f} / {max(late):+.1f} "
              f"| {max(r.arrival_lateness()):+.1f} | {r.units(r.cards[-1].at):.1f} | {r.units(last.at):.1f} "
              f"| {counts} | {r.wall:.1f} s |")
    for r in results:
        within = sum(1 for x in r.lateness() if x <= 1e-6)
        before_last_card = sum(1 for reply in r.replies if reply.at < r.cards[-1].at)
        print(f"{r.name}: {within}/{n} cards visible within k intervals; {before_last_card} of "
              f"{len(r.replies)} thread replies went before the last card")

if __name__ == "__main__":
    main()
