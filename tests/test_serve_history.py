"""`HISTORY_PATH`: serve learns from the same resolved past tickets `simulate --history` replays against, so it
decides each ticket as the simulation predicted — same route, same answer, same confidence — end to end through
`python -m bot serve` and `python -m bot simulate` against the fakes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.models import Ticket
from bot.store import Store
from tests.support.constants import CUSTOMER_ID
from tests.support.server import SeamServer, seam_env
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
HISTORY = ROOT / "examples" / "history.jsonl"
REPLAYED = 30


def sample_tickets() -> list[Ticket]:
    lines = (ROOT / "examples" / "tickets.jsonl").read_text(encoding="utf-8").splitlines()
    # One customer message each, as a new Zendesk ticket holds; numeric ids, as Zendesk's are.
    tickets = [Ticket.from_dict({**json.loads(line), "id": str(9100 + n), "sla_due_at": None})
               for n, line in enumerate(lines[:REPLAYED])]
    return [t for t in tickets if len(t.messages) == 1]


def served_and_predicted(fake_slack, fake_zendesk, tmp_path: Path, **env_extra: str
                         ) -> tuple[dict[str, dict], list[dict], str]:
    """30 sample tickets sent to serve by webhook, then the same tickets through simulate with the same knowledge,
    history and database: serve's decisions by ticket id, simulate's, and serve's log."""
    tickets = sample_tickets()
    assert len(tickets) >= 20
    env = seam_env(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path, **env_extra)
    server = SeamServer(env, tmp_path / "serve.log").start(timeout=90)
    try:
        # Serve listens while it fits; tickets sent meanwhile wait for the engine.
        assert "resolved past tickets from" in server.log()
        for ticket in tickets:
            fake_zendesk.add_ticket(id=int(ticket.id), subject=ticket.subject, requester_id=CUSTOMER_ID,
                                    comments=[{"author_id": CUSTOMER_ID, "body": ticket.messages[0].body}])
            assert server.post_webhook({"ticket_id": int(ticket.id)}).status_code == 202
        store = Store(env["DATABASE_PATH"])
        wait_until(lambda: store.db.execute("select count(*) from decisions").fetchone()[0] >= len(tickets),
                   timeout=60, what="a decision for every ticket")
        served = {row["ticket_key"].split(":")[1]: row for row in store.db.query("select * from decisions")}
        log = server.log()
    finally:
        assert server.stop() == 0, server.log()

    replay = tmp_path / "replay.jsonl"
    replay.write_text("".join(json.dumps({"id": t.id, "subject": t.subject,
                                          "messages": [{"author": "customer", "body": t.messages[0].body}]}) + "\n"
                              for t in tickets), encoding="utf-8")
    # The same knowledge folder and database (synced knowledge, none here) as serve had.
    history = ["--history", env["HISTORY_PATH"]] if env.get("HISTORY_PATH") else []
    result = subprocess.run([sys.executable, "-m", "bot", "simulate", str(replay), *history,
                             "--knowledge", env["KNOWLEDGE_PATH"], "--out", str(tmp_path / "sim")],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    predicted = [json.loads(line) for line in (tmp_path / "sim" / "decisions.jsonl").read_text().splitlines()]
    assert len(predicted) == len(tickets)
    return served, predicted, log


def assert_the_same(served: dict[str, dict], predicted: list[dict]) -> None:
    for p in predicted:
        row = served[p["id"]]
        assert (row["route"], row["answer_source"], row["confidence"]) == \
            (p["route"], p["answer_source"], p["confidence"]), p["id"]


def test_serve_decides_every_ticket_as_the_simulation_on_the_same_history_predicted(fake_slack, fake_zendesk,
                                                                                   tmp_path):
    served, predicted, log = served_and_predicted(fake_slack, fake_zendesk, tmp_path, HISTORY_PATH=str(HISTORY))
    assert "engine: local (calibrated on history)" in log and "engine ready after" in log
    routes = {p["route"] for p in predicted}
    assert "resolve" in routes and len(routes) >= 2, "the sample has both automatic answers and hand-offs"
    assert_the_same(served, predicted)


def test_on_knowledge_alone_serve_decides_every_ticket_as_the_simulation_predicted(fake_slack, fake_zendesk,
                                                                                  tmp_path):
    """A deployment's first day, through the contract's variables only: the plain score of both is the same."""
    served, predicted, log = served_and_predicted(fake_slack, fake_zendesk, tmp_path,
                                                  KNOWLEDGE_PATH=str(ROOT / "examples" / "knowledge"))
    assert "uncalibrated" in log
    assert len({p["route"] for p in predicted}) >= 2 and any(p["answer_source"] for p in predicted)
    assert_the_same(served, predicted)


def test_without_history_the_same_tickets_are_decided_from_the_knowledge_alone(fake_slack, fake_zendesk, tmp_path):
    """The control: the history is what made serve's answers (the test knowledge has none of its macros)."""
    env = seam_env(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path)
    server = SeamServer(env, tmp_path / "serve.log").start()
    try:
        assert "0 resolved past tickets" in server.log()
        wait_until(lambda: "engine ready after" in server.log(), what="the engine fitted")
        assert "uncalibrated" in server.log()
    finally:
        assert server.stop() == 0, server.log()


def test_a_history_file_that_is_missing_stops_serve_with_one_line(fake_slack, fake_zendesk, tmp_path):
    env = seam_env(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path, HISTORY_PATH=str(tmp_path / "nowhere.jsonl"))
    result = subprocess.run([sys.executable, "-m", "bot", "serve"], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip() and " INFO " not in line]
    assert len(lines) == 1 and "nowhere.jsonl" in lines[0] and "Traceback" not in result.stderr, result.stderr


def test_a_history_file_replaced_under_serve_is_refitted_on_at_the_next_refresh(tmp_path):
    from dataclasses import replace

    from bot.config import load_settings
    from bot.services import LiveEngine, engine_revision, fit_engine

    lines = HISTORY.read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path / "history.jsonl"
    path.write_text("".join(lines[:100]), encoding="utf-8")
    settings = replace(load_settings(env={}, cwd=tmp_path), database_path=str(tmp_path / "seam.db"))
    assert settings.history_path == str(path)
    store = Store(settings.database_path)
    live = LiveEngine.fitted(lambda: fit_engine(settings, store), revision=lambda: engine_revision(settings, store))
    assert not live.refresh(), "nothing changed"
    first = live.current
    path.write_text("".join(lines[:300]), encoding="utf-8")
    assert live.refresh() and live.current is not first
    assert live.current.size > first.size
    path.unlink()
    with pytest.raises(Exception, match="file not found"):
        live.refresh()  # the refit fails; the engine fitted last keeps answering
    assert live.current.size > first.size


def test_approved_replies_enough_to_calibrate_on_refit_the_engine_in_the_background(tmp_path):
    """A knowledge-only serve has no probability to give, only a plain score; the 50th learnt reply refits it, so
    it calibrates on them, without waiting for the knowledge sync's next round. The 51st refits nothing."""
    from dataclasses import replace

    from bot.config import load_settings
    from bot.models import read_tickets
    from bot.services import LiveEngine, engine_revision, fit_engine, learned_step

    assert [learned_step(n) for n in (0, 49, 50, 99, 100, 250, 400)] == [0, 0, 50, 50, 100, 200, 400]
    settings = replace(load_settings(env={"KNOWLEDGE_PATH": str(ROOT / "examples" / "knowledge")}, cwd=tmp_path),
                       database_path=str(tmp_path / "seam.db"))
    store = Store(settings.database_path)
    resolved, _ = read_tickets(ROOT / "examples" / "history.jsonl")
    replies = [(t.customer_text(), t.resolution.answer_id, t.resolution.answer) for t in resolved
               if t.resolution and t.resolution.answer_id and t.resolution.answer][:51]

    def approve(number: int) -> None:
        text, source, answer = replies[number]
        store.add_feedback(escalation_id=None, action="approve", customer_text=text, answer_source=source,
                           final_text=answer, user_id="UAGENT1")

    for number in range(49):
        approve(number)
    live = LiveEngine.fitted(lambda: fit_engine(settings, store), revision=lambda: engine_revision(settings, store))
    knowledge_only = live.current
    assert not knowledge_only.calibrated and knowledge_only.size > 0 and live.plain_score()
    approve(49)
    live.learn(*replies[49])
    wait_until(lambda: live.current is not knowledge_only, what="the refit after the 50th reply")
    assert live.current.calibrated and not live.plain_score()
    calibrated = live.current
    approve(50)
    live.learn(*replies[50])
    assert live.fitted_at == engine_revision(settings, store), "the 51st reply moves no step: no refit is due"
    assert live.current is calibrated
