"""Honest evaluation: a replayed ticket never answers itself, and one file can be split by time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.errors import InputError
from bot.models import Message, Resolution, Ticket
from bot.offline.simulate import split_by_time, without_replayed


def ticket(ticket_id: str, created_at: str | None = None) -> Ticket:
    return Ticket(id=ticket_id, created_at=created_at, messages=(Message("customer", f"question {ticket_id}"),),
                  resolution=Resolution(answer_id="a", answer="x"))


def test_history_loses_exactly_the_replayed_tickets():
    history = [ticket("1"), ticket("2"), ticket("3")]
    kept, left_out = without_replayed(history, [ticket("2"), ticket("9")])
    assert [t.id for t in kept] == ["1", "3"] and left_out == 1


def test_a_time_split_replays_the_newest_and_learns_from_the_rest():
    tickets = [ticket("c", "2026-11-03T00:00:00Z"), ticket("a", "2026-11-01T00:00:00Z"), ticket("x"),
               ticket("d", "2026-11-04T00:00:00Z"), ticket("b", "2026-11-02T00:00:00Z")]
    history, replay = split_by_time(tickets, newest=0.4)
    assert [t.id for t in replay] == ["c", "d"]
    assert [t.id for t in history] == ["x", "a", "b"]  # undated tickets count as the oldest


def test_a_split_that_leaves_no_history_is_an_error():
    with pytest.raises(InputError):
        split_by_time([ticket("a", "2026-11-01T00:00:00Z")], newest=0.5)


def test_a_ticket_in_both_files_cannot_answer_itself(tmp_path: Path):
    # Each question appears once; only the history's copy of the same ticket could answer it.
    rows = [{"id": f"t{i}", "subject": f"Unique question number {i} about zorblax {i * 7}",
             "messages": [{"author": "customer", "body": f"zorblax {i * 7} frobnicate {i}"}],
             "resolution": {"answer_id": f"answer-{i}", "answer": f"Answer {i}"}} for i in range(60)]
    path = tmp_path / "tickets.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = subprocess.run([sys.executable, "-m", "bot", "simulate", str(path), "--history", str(path),
                             "--out", str(tmp_path / "out"), "--format", "json"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "left 60 replayed tickets out of the history" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["history_tickets"] == 0 and summary["left_out_of_history"] == 60
    assert summary["current"]["auto_right"] == 0, "nothing can be answered from its own copy"


def run_simulate(tmp_path: Path, rows: list[dict], *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "tickets.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEAM_", "OPENAI_")) and k != "KNOWLEDGE_PATH"}
    return subprocess.run([sys.executable, "-m", "bot", "simulate", str(path), "--out", str(tmp_path / "out"), *args],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)


def test_a_time_split_orders_by_the_moment_not_by_how_the_time_is_written(tmp_path: Path):
    # In UTC: late-offset 06:30, z-early 09:00, no-t 10:00, z-last 11:00. As strings, "+05:30" and "2026-11-20 10"
    # sort wrongly ('T' > ' ', 12:00 > 11:00): the oldest ticket was replayed and a newer one learnt from.
    times = {"late-offset": "2026-11-20T12:00:00+05:30", "z-early": "2026-11-20T09:00:00Z",
             "no-t": "2026-11-20 10:00:00", "z-last": "2026-11-20T11:00:00Z"}
    rows = [{"id": i, "subject": f"question {i}", "created_at": t} for i, t in times.items()]
    result = run_simulate(tmp_path, rows, "--split-newest", "0.5", "--format", "json")
    assert result.returncode == 0, result.stderr
    replayed = [json.loads(line)["id"] for line in (tmp_path / "out" / "decisions.jsonl").read_text().splitlines()]
    assert sorted(replayed) == ["no-t", "z-last"]


def test_a_ticket_without_a_readable_time_is_not_judged_against_todays_clock(tmp_path: Path):
    # Both tickets are the same question with no time of their own: whether they were near their SLA when they
    # came in cannot be known. Judged against the clock of the run, the one due in 2026 breached and the one due
    # in 2099 did not — and the answer changed with the day the simulation ran.
    rows = [{"id": due[:4], "subject": "How long does shipping take abroad?", "sla_due_at": due,
             "created_at": "last Tuesday"} for due in ("2026-01-01T10:00:00Z", "2099-01-01T10:00:00Z")]
    result = run_simulate(tmp_path, rows, "--format", "json")
    assert result.returncode == 0, result.stderr
    decisions = [json.loads(line) for line in (tmp_path / "out" / "decisions.jsonl").read_text().splitlines()]
    assert [d["reasons"] for d in decisions][0] == [d["reasons"] for d in decisions][1]
    assert all("sla_breach" not in d["reasons"] for d in decisions)
    assert "2 replayed tickets have no readable time" in result.stderr
    assert json.loads(result.stdout)["sla_not_judged"] == 2
