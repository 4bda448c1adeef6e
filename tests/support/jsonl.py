"""Contract JSONL files for `python -m bot simulate`: `row` builds one ticket with a single
customer message (and, when given, its resolution), `write_jsonl` writes rows (raw strings are written as they
are, to test malformed lines) and `read_jsonl` reads a JSONL output back, skipping blank lines.
"""

from __future__ import annotations

import json
from pathlib import Path


def row(ticket_id: str, body: str, *, answer_id: str | None | bool = False, subject: str = "") -> dict:
    data: dict = {"id": ticket_id, "subject": subject, "messages": [{"author": "customer", "body": body}]}
    if answer_id is not False:
        data["resolution"] = {"answer_id": answer_id}
    return data


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
