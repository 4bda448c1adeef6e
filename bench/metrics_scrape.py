"""Benchmark: what one Prometheus scrape of `/metrics` costs on a deployment's database (bot.flows.metrics).

    python -m bench.metrics_scrape [--tickets 100000] [--scrapes 50]

Builds the store bench/erasure.py builds (`--tickets` finished tickets, each with its event, decision, escalation
and feedback row), then times `--scrapes` scrapes as `/metrics` makes them: the database's figures (`families`)
and the text format with the process collector (`exposition`). Baseline in the same run, on the same file: what
`/healthz` reads (`queue_stats`), which a load balancer already asks for every few seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench._common import describe, machine
from bench.erasure import build
from bot.flows.metrics import exposition, families
from bot.policy.decide import Policy
from bot.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_scrape", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--scrapes", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "seam.db"
        started = time.perf_counter()
        build(path, tickets=args.tickets, customers=max(1, args.tickets // 5))
        print(f"# /metrics scrape — {machine()}\n")
        print(f"built {args.tickets:,} finished tickets in {time.perf_counter() - started:.1f} s "
              f"({path.stat().st_size / 1e6:.1f} MB)\n")
        store = Store(str(path))
        healthz, scrape, size = [], [], 0
        for _ in range(args.scrapes):
            started = time.perf_counter()
            queue = store.queue_stats()
            healthz.append(time.perf_counter() - started)
            started = time.perf_counter()
            body = exposition(families(store=store, queue=store.queue_stats(), policy=Policy(), healthy=True,
                                       running=0, stuck=0))
            scrape.append(time.perf_counter() - started)
            size = len(body)
        assert queue["done"] == args.tickets
        print(describe("baseline: /healthz's read", healthz))
        print(describe("/metrics: figures + text", scrape))
        print(f"\nscrape body: {size:,} bytes")


if __name__ == "__main__":
    main()
