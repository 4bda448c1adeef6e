"""`python -m bot simulate` run as a subprocess, exactly as a person would run it, on small files and the sample."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.flows.routes import customer_notice
from bot.models import Decision, Route, Ticket
from tests.support.cli import run_bot
from tests.support.constants import ROOT
from tests.support.jsonl import read_jsonl, row, write_jsonl
from tests.support.knowledge import write_knowledge

PASSWORD = "I forgot my password and cannot sign in, how do I reset it?"
SHIPPING = "How long does shipping take abroad?"
GIFT_REFUND = "I want a refund for my gift card. Do gift cards expire?"
GIBBERISH = "kjdshf wqeoiru"


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    return write_knowledge(tmp_path / "knowledge")


def test_simulate_writes_decisions_summary_chart_and_report(tmp_path: Path, knowledge: Path) -> None:
    tickets = write_jsonl(tmp_path / "tickets.jsonl", [
        row("a", PASSWORD, answer_id="reset-password"),
        row("b", SHIPPING),
        row("c", GIBBERISH),
        {"id": 4, "subject": "Do gift cards expire?"},
    ])
    out = tmp_path / "out"
    result = run_bot("simulate", str(tickets), "--knowledge", str(knowledge), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    decisions = read_jsonl(out / "decisions.jsonl")
    assert [d["id"] for d in decisions] == ["a", "b", "c", "4"]
    for decision in decisions:
        assert set(decision) >= {"id", "route", "confidence", "reasons", "answer", "answer_source"}
        assert decision["route"] in ("resolve", "draft", "escalate")
        assert 0.0 <= decision["confidence"] <= 1.0
        assert isinstance(decision["reasons"], list)
    by_id = {d["id"]: d for d in decisions}
    assert by_id["a"]["answer_source"] == "reset-password" and "Forgot password" in by_id["a"]["answer"]
    assert by_id["c"]["answer_source"] is None and by_id["c"]["route"] == "escalate"

    summary = json.loads((out / "summary.json").read_text())
    assert summary["tickets"] == 4
    assert summary["sweep"]
    for point in summary["sweep"]:
        assert point["resolve"] + point["draft"] + point["escalate"] == 4
        assert point["resolve_rate"] + point["draft_rate"] + point["escalate_rate"] == pytest.approx(1.0)
        assert "accuracy" in point
    thresholds = [p["auto_threshold"] for p in summary["sweep"]]
    assert thresholds == sorted(thresholds) and 0.9 in thresholds

    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.html").read_text()
    assert report.lstrip().lower().startswith("<!doctype html") and "data:image/png;base64," in report
    # Knowledge alone: no calibration, so no estimated share, and the report and the console say so.
    assert summary["calibrated"] is False and summary["uncovered_share_estimate"] is None
    assert "confidence is a plain score, not a probability" in report
    assert "confidence is a plain score, not a probability" in result.stdout


def test_a_hand_checked_case_gives_exact_counts_and_accuracy(tmp_path: Path, knowledge: Path) -> None:
    # a: shipping question, a perfect match for the shipping article, expected answer shipping-times: resolved
    #    at every threshold, right.
    # b: password question, matched to reset-password with a fair (0.76) confidence, but the expected answer
    #    says gift-cards: resolved (wrong) at 0.5; from 0.8 up only drafted.
    # c: a refund question: a high-risk topic is at most drafted, whatever the confidence; never graded.
    # d: gibberish, expected not to be answered: no match, confidence 0, escalated; never resolved.
    tickets = write_jsonl(tmp_path / "tickets.jsonl", [
        row("a", SHIPPING, answer_id="shipping-times"),
        row("b", PASSWORD, answer_id="gift-cards"),
        row("c", GIFT_REFUND, answer_id="gift-cards"),
        row("d", GIBBERISH, answer_id=None),
    ])
    out = tmp_path / "out"
    result = run_bot("simulate", str(tickets), "--knowledge", str(knowledge), "--out", str(out),
                     "--thresholds", "0.5,0.8,0.99", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert json.loads(result.stdout)["sweep"] == summary["sweep"]
    assert summary["graded_tickets"] == 4
    sweep = {p["auto_threshold"]: p for p in summary["sweep"]}
    assert sorted(sweep) == [0.5, 0.8, 0.9, 0.99]  # the current threshold is always included
    for auto in (0.5,):
        point = sweep[auto]
        assert (point["resolve"], point["draft"], point["escalate"]) == (2, 1, 1), auto
        assert (point["auto_right"], point["auto_wrong"]) == (1, 1)
        assert point["accuracy"] == 0.5
        assert point["wrong_answer_rate"] == 0.25
        assert point["resolve_rate"] == 0.5
    for auto in (0.8, 0.9, 0.99):
        top = sweep[auto]
        assert (top["resolve"], top["draft"], top["escalate"]) == (1, 2, 1)
        assert (top["auto_right"], top["auto_wrong"], top["accuracy"], top["wrong_answer_rate"]) == (1, 0, 1.0, 0.0)

    routes = {d["id"]: d["route"] for d in read_jsonl(out / "decisions.jsonl")}
    assert routes == {"a": "resolve", "b": "draft", "c": "draft", "d": "escalate"}
    assert summary["current"] == sweep[0.9]


def test_bad_rows_are_reported_with_their_line_number_and_skipped(tmp_path: Path, knowledge: Path) -> None:
    tickets = write_jsonl(tmp_path / "tickets.jsonl", [
        row("a", PASSWORD),
        "{not json",
        {"subject": "no id here", "messages": [{"author": "customer", "body": "hi"}]},
        row("b", SHIPPING),
    ])
    out = tmp_path / "out"
    result = run_bot("simulate", str(tickets), "--knowledge", str(knowledge), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "line 2" in result.stderr and "line 3" in result.stderr
    assert "line 1" not in result.stderr and "line 4" not in result.stderr
    assert [d["id"] for d in read_jsonl(out / "decisions.jsonl")] == ["a", "b"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tickets"] == 2
    assert summary["skipped_rows"] == 2


@pytest.mark.parametrize("content", ["{not json\n[1, 2]\n", "", '{"subject": "no id"}\n'])
def test_a_file_without_a_usable_row_fails_with_one_line_and_no_traceback(tmp_path: Path, knowledge: Path,
                                                                         content: str) -> None:
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text(content, encoding="utf-8")
    out = tmp_path / "out"
    result = run_bot("simulate", str(tickets), "--knowledge", str(knowledge), "--out", str(out), cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "no usable ticket" in errors[0]
    assert not (out / "summary.json").exists()


@pytest.mark.parametrize("problem", ["missing_tickets", "missing_knowledge", "bad_config"])
def test_wrong_input_or_configuration_fails_with_a_one_line_error(tmp_path: Path, knowledge: Path,
                                                                  problem: str) -> None:
    tickets = write_jsonl(tmp_path / "tickets.jsonl", [row("a", PASSWORD)])
    args = ["simulate", str(tickets), "--knowledge", str(knowledge), "--out", str(tmp_path / "out")]
    if problem == "missing_tickets":
        args[1] = str(tmp_path / "nope.jsonl")
    elif problem == "missing_knowledge":
        args[3] = str(tmp_path / "no-knowledge")
    else:
        (tmp_path / "seam.toml").write_text("[thresholds]\nauto = 0.2\ndraft = 0.9\n")
    result = run_bot(*args, cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_help_lists_serve_and_simulate(tmp_path: Path) -> None:
    result = run_bot("--help", cwd=tmp_path)
    assert result.returncode == 0
    commands = result.stdout.split("Commands:")[1]
    assert "serve" in commands and "simulate" in commands
    sub = run_bot("simulate", "--help", cwd=tmp_path)
    assert sub.returncode == 0 and "--history" in sub.stdout and "--knowledge" in sub.stdout


def test_the_bundled_sample_sweep_is_monotone(tmp_path: Path) -> None:
    out = tmp_path / "sim-out"
    result = run_bot("simulate", str(ROOT / "examples" / "tickets.jsonl"),
                     "--history", str(ROOT / "examples" / "history.jsonl"),
                     "--knowledge", str(ROOT / "examples" / "knowledge"), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    total = len((ROOT / "examples" / "tickets.jsonl").read_text().splitlines())
    assert summary["tickets"] == total
    assert summary["calibrated"] is True and summary["uncovered_share_estimate"] >= 0.2
    assert "plain score" not in result.stdout
    sweep = summary["sweep"]
    assert len(sweep) >= 5
    resolve_rates = [p["resolve_rate"] for p in sweep]
    assert resolve_rates == sorted(resolve_rates, reverse=True)
    assert resolve_rates[0] > resolve_rates[-1]
    escalations = {p["escalate"] for p in sweep}
    assert len(escalations) == 1  # only the draft/resolve split moves with the auto threshold
    for point in sweep:
        assert point["resolve"] + point["draft"] + point["escalate"] == total
        assert point["accuracy"] is None or 0.0 <= point["accuracy"] <= 1.0


@pytest.mark.parametrize("where", ["under_a_file", "output_is_a_folder"])
def test_an_unusable_out_folder_fails_with_one_line(tmp_path: Path, knowledge: Path,
                                                                       where: str) -> None:
    tickets = write_jsonl(tmp_path / "tickets.jsonl", [row("a", PASSWORD)])
    (tmp_path / "a-file").write_text("not a folder")
    out = tmp_path / "a-file" / "sim-out"
    if where == "output_is_a_folder":  # a folder where summary.json should go
        out = tmp_path / "out"
        (out / "summary.json").mkdir(parents=True)
    result = run_bot("simulate", str(tickets), "--knowledge", str(knowledge), "--out", str(out), cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and str(out) in errors[0], result.stderr


def test_a_bom_crlf_and_a_line_of_bad_utf8_cost_only_that_line(tmp_path: Path, knowledge: Path) -> None:
    # Saved by a Windows editor: a UTF-8 BOM and CRLF line ends; one row holds a byte that is not UTF-8.
    lines = [json.dumps(row("a", PASSWORD)).encode(), json.dumps(row("b", SHIPPING)).encode()[:-2] + b'\xff"}',
             json.dumps(row("c", SHIPPING)).encode()]
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n")
    out = tmp_path / "out"
    result = run_bot("simulate", str(tickets), "--knowledge", str(knowledge), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [d["id"] for d in read_jsonl(out / "decisions.jsonl")] == ["a", "c"]
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped")]
    assert skipped == ["skipped: tickets.jsonl line 2: not UTF-8 text"]
    assert json.loads((out / "summary.json").read_text())["skipped_rows"] == 1


def test_a_line_separator_inside_a_body_does_not_split_the_row(tmp_path: Path, knowledge: Path) -> None:
    # U+2028 is legal inside a JSON string, and `import` writes it as it is (ensure_ascii=False): it is no line end.
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [
        row("a", "I forgot my password\u2028please help, how do I reset it?"), row("b", SHIPPING)]), encoding="utf-8")
    out = tmp_path / "out"
    result = run_bot("simulate", str(tickets), "--knowledge", str(knowledge), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "skipped" not in result.stderr
    assert [d["id"] for d in read_jsonl(out / "decisions.jsonl")] == ["a", "b"]


def test_knowledge_files_saved_by_windows_tools_load(tmp_path: Path) -> None:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    (folder / "reset-password.md").write_bytes(
        b"\xef\xbb\xbf# Reset your password\r\nClick 'Forgot password' on the sign-in page to reset your password.\r\n")
    (folder / "macros.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps(
        {"id": "shipping-times", "title": "Shipping", "body": "Abroad\u2028shipping takes 5 days."},
        ensure_ascii=False).encode() + b"\r\n")
    tickets = write_jsonl(tmp_path / "tickets.jsonl", [row("a", PASSWORD)])
    out = tmp_path / "out"
    result = run_bot("simulate", str(tickets), "--knowledge", str(folder), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 articles" in result.stdout
    [decision] = read_jsonl(out / "decisions.jsonl")
    assert decision["answer_source"] == "reset-password" and "\ufeff" not in decision["answer"]
    assert not decision["answer"].startswith("#")  # the title line was read as the title


def test_a_knowledge_file_that_is_not_utf8_is_a_one_line_error_naming_it(tmp_path: Path, knowledge: Path) -> None:
    (knowledge / "legacy.md").write_bytes(b"# Returns\nR\xe9turns within 30 days.\n")  # Latin-1
    tickets = write_jsonl(tmp_path / "tickets.jsonl", [row("a", PASSWORD)])
    result = run_bot("simulate", str(tickets), "--knowledge", str(knowledge), "--out", str(tmp_path / "out"),
                     cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "legacy.md" in result.stderr, result.stderr


def test_a_ticket_holding_one_enormous_word_replays_in_seconds(tmp_path: Path, knowledge: Path) -> None:
    # A pasted base64 attachment or log line: 300,000 characters without a space. The angry-tone rule's address
    # pattern used to try every start position across the whole word (quadratic: minutes here, hours at 2 MB).
    blob = "QUJD" * 75_000
    tickets = write_jsonl(tmp_path / "tickets.jsonl", [row("a", PASSWORD), row("blob", f"See attached: {blob}")])
    started = time.monotonic()
    result = run_bot("simulate", str(tickets), "--knowledge", str(knowledge), "--out", str(tmp_path / "out"),
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 60


def test_expected_answer_ids_that_name_nothing_are_reported(tmp_path: Path, knowledge: Path) -> None:
    # The replay file's expected ids come from another system (Zendesk macro numbers), the knowledge uses slugs:
    # every automatic answer grades as wrong, and nothing used to say why.
    tickets = write_jsonl(tmp_path / "tickets.jsonl", [
        row("a", PASSWORD, answer_id="reset-password"), row("b", SHIPPING, answer_id="macro-360001"),
        row("c", PASSWORD, answer_id="macro-360002"), row("d", GIBBERISH, answer_id=None), row("e", SHIPPING)])
    out = tmp_path / "out"
    result = run_bot("simulate", str(tickets), "--knowledge", str(knowledge), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["unknown_expected_answers"] == {"tickets": 2, "ids": ["macro-360001", "macro-360002"]}
    notes = [line for line in result.stderr.splitlines() if "no article" in line]
    assert len(notes) == 1 and "2 of 4 graded tickets" in notes[0] and "'macro-360001'" in notes[0]
    assert "2 of 4 graded tickets" in (out / "report.html").read_text()


def test_a_history_without_resolutions_is_said_to_teach_nothing(tmp_path: Path, knowledge: Path) -> None:
    # An export of past tickets without the 'resolution' the contract asks for: the engine learns nothing from it.
    history = write_jsonl(tmp_path / "history.jsonl", [
        {"id": f"h{i}", "subject": "Password", "messages": [{"author": "customer", "body": PASSWORD}]}
        for i in range(60)])
    tickets = write_jsonl(tmp_path / "tickets.jsonl", [row("a", PASSWORD, answer_id="reset-password")])
    out = tmp_path / "out"
    result = run_bot("simulate", str(tickets), "--history", str(history), "--knowledge", str(knowledge),
                     "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "none of the 60 history tickets carries a 'resolution'" in result.stderr
    assert json.loads((out / "summary.json").read_text())["history_resolved"] == 0
    # The plain-score note no longer tells someone who passed --history to pass --history.
    assert "confidence is a plain score" in result.stdout.lower() and "Simulate with --history" not in result.stdout
    assert "only 0 of the 60 history tickets" in (out / "report.html").read_text()


def test_a_knowledge_folder_without_articles_is_said_to_hold_none(tmp_path: Path) -> None:
    # Help-centre pages saved as .html or .txt: nothing is read, and the run said only "0 articles".
    empty = tmp_path / "kb"
    empty.mkdir()
    (empty / "reset-password.html").write_text("<h1>Reset your password</h1>", encoding="utf-8")
    tickets = write_jsonl(tmp_path / "tickets.jsonl", [row("a", PASSWORD, answer_id="reset-password")])
    result = run_bot("simulate", str(tickets), "--knowledge", str(empty), "--out", str(tmp_path / "out"),
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{empty} holds no article: the knowledge is read from Markdown (.md) and .jsonl files" in result.stderr


def test_seams_notice_in_a_replayed_ticket_is_read_as_serve_reads_it(tmp_path: Path, knowledge: Path) -> None:
    # An export of a helpdesk Seam served holds its notice that a person will follow up: the customer's "Hello??"
    # after it is still waiting for that person, as in serve, and never answered by the AI.
    settings = load_settings(env={}, cwd=tmp_path)
    question = Ticket(id="p", subject="Password", messages=(), requester_name="Ana Customer")
    escalated = Decision(route=Route.ESCALATE, confidence=0.2, reasons=(), answer=None, answer_source=None,
                         summary="")
    enabled = replace(settings, customer_notice=settings.customer_notice.model_copy(update={"enabled": True}))
    notice = customer_notice(enabled, question, escalated, route=None)
    requester = {"name": "Ana Customer"}
    tickets = write_jsonl(tmp_path / "tickets.jsonl", [
        {"id": "p", "subject": "Password", "requester": requester,
         "messages": [{"author": "customer", "body": PASSWORD}, {"author": "bot", "body": notice},
                      {"author": "customer", "body": "Hello??"}]},
        # Found by review: the importers keep the notice Seam sent when it escalated the question; it is that
        # decision's outcome, not part of the question, and must not decide the replay (a wrong answer hidden).
        {"id": "q", "subject": "Password", "requester": requester,
         "messages": [{"author": "customer", "body": PASSWORD}, {"author": "bot", "body": notice}]},
        {"id": "r", "subject": "Password", "requester": requester,
         "messages": [{"author": "customer", "body": PASSWORD}]}])
    out = tmp_path / "out"
    result = run_bot("simulate", str(tickets), "--knowledge", str(knowledge), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    decisions = {d["id"]: d for d in read_jsonl(out / "decisions.jsonl")}
    assert decisions["p"]["route"] == "escalate" and "person_promised" in json.dumps(decisions["p"]["reasons"])
    assert {k: v for k, v in decisions["q"].items() if k != "id"} == {k: v for k, v in decisions["r"].items()
                                                                     if k != "id"}
