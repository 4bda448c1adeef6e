"""Benchmark: erasure on request and the retention round (bot.flows.erasure) on a deployment's database.

    python -m bench.erasure [--tickets 20000] [--customers 4000] [--vectors 20000]

Builds a SQLite store with `--tickets` finished tickets, each as serve leaves it — the ticket row, its event
(a 300-byte payload), its decision (summary, evidence, answer), its escalation (the card as JSON, the draft, the
customer's words, the reply sent) and a feedback row — spread over `--customers` requesters, all idle for a
year, and `--vectors` cached sentence vectors (384 float32s, as EMBEDDINGS_MODEL leaves them) made over that
year. Then, on copies of that file:
- `forget --email` of one customer: the look-up alone (`find`, as `--dry-run` does), then all of it (`erase`:
  look-up by requester, busy check, erasure with the vectors made since their first ticket, the thread jobs);
- retention: the vectors older than its period dropped (`expire_vectors`, once a run), one round (`erase_idle`,
  ROUND_LIMIT tickets in one transaction): how long the store's writers wait, and a whole hourly run
  (`RetentionSweep.run_once`: rounds while they come back full, at most MAX_ROUNDS);
- baseline, same run and file: reading those same rows' text columns (a select), the floor of any erasure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench._common import machine
from bot.flows.erasure import erase, erase_idle, expire_vectors, find
from bot.jobs.retention import ROUND_LIMIT, RetentionSweep
from bot.store import Store, requester_key
from bot.text import iso


def build(path: Path, *, tickets: int, customers: int, vectors: int = 0) -> None:
    store = Store(str(path))
    now = datetime.now(UTC)
    year_ago = (now - timedelta(days=365)).isoformat(timespec="seconds").replace("+00:00", "Z")
    words = "My parcel for order 77812 has not arrived and the tracking page shows nothing since Monday. " * 2
    card = {"ticket": {"id": "", "subject": "Parcel late", "requester_name": "Ana Customer",
                       "requester_email": "", "priority": "normal"},
            "decision": {"route": "escalate", "confidence": 0.42, "answer": "We are sorry ... " * 20,
                         "answer_source": "macro-late-parcel", "summary": words,
                         "reasons": [{"code": "asks_for_human", "label": "Customer asked for a person",
                                      "detail": None}]},
            "link": "https://acme.zendesk.com/agent/tickets/1"}
    db = store.db
    with db.conn:
        for n in range(tickets):
            ticket_id, email, key = str(100_000 + n), f"customer{n % customers}@example.com", f"zendesk:{100_000 + n}"
            db.execute("insert into tickets (key, helpdesk, ticket_id, subject, requester, requester_key, priority,"
                       " first_seen_at, last_seen_at) values (?, 'zendesk', ?, 'Parcel late', ?, ?, 'normal', ?, ?)",
                       [key, ticket_id, email, requester_key(email), year_ago, year_ago])
            event = db.execute(
                "insert into events (kind, helpdesk, dedupe_key, ticket_id, body, received_at, state, attempts,"
                " next_attempt_at, processed_at, outcome, priority) values ('ticket', 'zendesk', ?, ?, ?, ?, 'done',"
                " 1, ?, ?, 'escalated', 0)",
                [f"d{n}", ticket_id, json.dumps({"ticket_id": ticket_id, "comment": words[:260]}), year_ago,
                 year_ago, year_ago]).lastrowid
            decision = db.execute(
                "insert into decisions (event_id, ticket_key, route, confidence, reasons, answer, answer_source,"
                " summary, evidence, created_at) values (?, ?, 'escalate', 0.42, '[]', ?, 'macro-late-parcel', ?,"
                " ?, ?)", [event, key, card["decision"]["answer"], words,
                           json.dumps([{"source": "macro-late-parcel", "text": words, "similarity": 0.5}]),
                           year_ago]).lastrowid
            shown = json.dumps({**card, "ticket": {**card["ticket"], "id": ticket_id, "requester_email": email}})
            escalation = db.execute(
                "insert into escalations (event_id, decision_id, ticket_key, ticket_id, channel, ts, state, owner,"
                " draft, confidence, created_at, updated_at, card, customer_text, sent_text, card_synced_at)"
                " values (?, ?, ?, ?, 'C1', ?, 'sent', 'U1', ?, 0.42, ?, ?, ?, ?, ?, ?)",
                [event, decision, key, ticket_id, f"1700000000.{n:06d}", card["decision"]["answer"], year_ago,
                 year_ago, shown, words, card["decision"]["answer"], year_ago]).lastrowid
            db.execute("insert into feedback (escalation_id, ticket_key, user_id, action, confidence, draft,"
                       " final_text, edit_distance, reason, created_at, answer_source, customer_text) values"
                       " (?, ?, 'U1', 'edit', 0.42, ?, ?, 0.1, null, ?, 'macro-late-parcel', ?)",
                       [escalation, key, card["decision"]["answer"], card["decision"]["answer"], year_ago, words])
        vector = bytes(range(256)) * 6
        db.conn.executemany("insert into embedding_cache (model, text_hash, vector, created_at) values (?, ?, ?, ?)",
                            [("bench-embed", f"{n:064x}", vector, iso(now - timedelta(days=365 * (1 - n / vectors))))
                             for n in range(vectors)])
    store.db.conn.close()


def timed(what, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = what(*args, **kwargs)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.erasure", description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=4_000)
    parser.add_argument("--vectors", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        original = Path(tmp) / "built.db"
        took, _ = timed(build, original, tickets=args.tickets, customers=args.customers, vectors=args.vectors)
        size = original.stat().st_size
        print(f"# Erasure — {machine()}\n")
        print(f"{args.tickets:,} finished tickets of {args.customers:,} customers and {args.vectors:,} cached vectors,"
              f" {size / 1e6:.1f} MB, built in {took:.1f} s\n")
        print("| what | tickets | time |")
        print("| --- | --- | --- |")

        def fresh(name: str) -> Store:
            path = Path(tmp) / f"{name}.db"
            shutil.copy(original, path)
            return Store(str(path))

        store = fresh("baseline")
        keys = [row[0] for row in store.db.execute(
            "select key from tickets order by last_seen_at limit ?", [ROUND_LIMIT])]
        marks = ", ".join("?" for _ in keys)
        took, _ = timed(lambda: [store.db.execute(sql, keys).fetchall() for sql in (
            f"select subject, requester from tickets where key in ({marks})",
            f"select summary, evidence, answer from decisions where ticket_key in ({marks})",
            f"select card, draft, customer_text, sent_text from escalations where ticket_key in ({marks})",
            f"select customer_text, draft, final_text from feedback where ticket_key in ({marks})")])
        print(f"| baseline: reading the text of a round's tickets | {len(keys)} | {took * 1000:.0f} ms |")

        store = fresh("forget")
        took, found = timed(find, store, helpdesk="zendesk", email="Customer7@Example.com")
        print(f"| `forget --email --dry-run`: the look-up by requester | {len(found.tickets)} | {took * 1000:.1f} ms |")
        took, done = timed(erase, store, helpdesk="zendesk", email="customer7@example.com", actor="bench")
        print(f"| `forget --email`: one customer ({done.changed.get('embedding_cache', 0):,} vectors dropped) | "
              f"{len(done.tickets)} | {took * 1000:.0f} ms |")

        store = fresh("retention")
        took, count = timed(expire_vectors, store, after=180 * 86400)
        print(f"| retention: the vectors older than its period dropped | {count:,} vectors | {took * 1000:.0f} ms |")
        took, count = timed(erase_idle, store, after=180 * 86400, limit=ROUND_LIMIT)
        print(f"| retention: one round (one transaction) | {count} | {took * 1000:.0f} ms |")
        sweep = RetentionSweep(sweep=lambda *, limit: erase_idle(store, after=180 * 86400, limit=limit), enabled=True)
        took, count = timed(sweep.run_once)
        print(f"| retention: the next hourly run (rounds of {ROUND_LIMIT}, pauses included) | {count:,} | "
              f"{took:.1f} s |")


if __name__ == "__main__":
    main()
