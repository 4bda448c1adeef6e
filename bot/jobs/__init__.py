"""Background work in the `serve` process: the durable queue's worker (worker.py), periodic jobs such as
reconciliation (reconcile.py) and knowledge sync (knowledge.py), and the one runner that starts and stops them
together (runner.py)."""
