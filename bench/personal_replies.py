"""Benchmark: past replies written for one customer, replayed to others — what goes out automatically.

    python -m bench.personal_replies [--shares 0,0.3,1]

A real history's replies greet their customer and often name their case ("Hi Ana, … your order 481516"); the
bundled history's do neither. Here each of its 2,000 replies is rewritten as an agent would write it: "Hi
<requester's first name>," before and "Best, Sam" after, and for a share of them (`--shares`) a sentence naming a
six-digit order number of that ticket's own. The engine fits on that history with no articles (so every answer is
a past reply), and the 600 bundled tickets are replayed through the policy at the default thresholds. Two systems
in the same run:
- Seam: the reply greets this customer, the reply of the same answer that names no other case is sent, and one
  that still names one is drafted (`bot.engine.local._reply`, `bot.policy.decide.OTHER_CUSTOMER`);
- verbatim: the nearest past reply as it was written (what Seam sent before this check), by replacing `_reply`
  for the run.
Counted: automatic answers, those greeting another customer by name, those naming another customer's order
number, and tickets drafted because their answer names another case.
"""

from __future__ import annotations

import argparse
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from bench._common import machine
from bot.engine import local
from bot.models import Resolution, Route, Ticket, read_tickets
from bot.policy.decide import OTHER_CUSTOMER, Policy, decide
from bot.text import parse_time

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def verbatim() -> Iterator[None]:
    """The nearest reply as written, naming nothing: the engine before it read replies for another case."""
    chosen = local._reply
    local._reply = lambda index, ticket, label, position: (index.docs[position].answer, ())
    try:
        yield
    finally:
        local._reply = chosen


def personalised(history: list[Ticket], share: float, *, seed: int = 0) -> tuple[list[Ticket], set[str]]:
    """The history with every reply greeting its customer and signed, and `share` of them naming an order; the
    order numbers used."""
    rng = random.Random(seed)
    out, orders = [], set()
    for past in history:
        body = past.resolution.answer or ""
        if rng.random() < share:
            order = str(rng.randrange(100_000, 1_000_000))
            orders.add(order)
            body += f"\n\nI have noted this on your order {order}."
        first = (past.requester_name or "there").split()[0]
        resolution = Resolution(answer_id=past.resolution.answer_id, answer=f"Hi {first},\n\n{body}\n\nBest,\nSam")
        out.append(replace(past, resolution=resolution))
    return out, orders


def replay(history: list[Ticket], orders: set[str], tickets: list[Ticket]) -> dict[str, int]:
    names = {(t.requester_name or "").split()[0] for t in history if t.requester_name}
    found = local.LocalEngine(history=history).assess_many(tickets)
    counts = dict.fromkeys(("automatic", "greets another customer", "names another's order", "drafted: other case"),
                           0)
    for ticket, assessment in zip(tickets, found, strict=True):
        # The bundled tickets' SLA times are in 2026-11: decide as of each ticket's arrival, as simulate does.
        decision = decide(ticket, assessment, policy=Policy(), now=parse_time(ticket.created_at))
        if any(r.code == OTHER_CUSTOMER for r in decision.reasons):
            counts["drafted: other case"] += 1
        if decision.route != Route.RESOLVE:
            continue
        counts["automatic"] += 1
        greeted = re.match(r"Hi (\w+)", decision.answer or "")
        own = (ticket.requester_name or "").split()[:1]
        counts["greets another customer"] += bool(greeted and greeted.group(1) in names and [greeted.group(1)] != own)
        counts["names another's order"] += any(order in (decision.answer or "") for order in orders)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.personal_replies", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shares", default="0,0.3,1", help="shares of replies that name an order, comma-separated")
    args = parser.parse_args()
    history, _ = read_tickets(ROOT / "examples" / "history.jsonl")
    tickets, _ = read_tickets(ROOT / "examples" / "tickets.jsonl")
    print(f"# Past replies written for one customer — {machine()}\n")
    print(f"{len(history)} past replies, {len(tickets)} tickets replayed at the default thresholds.\n")
    print("| replies naming an order | system | automatic | greets another customer | names another's order | "
          "drafted: other case |")
    print("| --- | --- | --- | --- | --- | --- |")
    for share in (float(s) for s in args.shares.split(",")):
        personal, orders = personalised(history, share)
        for system in ("Seam", "verbatim"):
            if system == "verbatim":
                with verbatim():
                    counts = replay(personal, orders, tickets)
            else:
                counts = replay(personal, orders, tickets)
            print(f"| {share:.0%} | {system} | " + " | ".join(str(v) for v in counts.values()) + " |", flush=True)


if __name__ == "__main__":
    main()
