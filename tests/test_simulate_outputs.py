"""What `python -m bot simulate` leaves in its --out folder: each output whole or not there, `summary.json` only
beside the other three files of its own run, the same bytes from two runs; and what it tells about the history:
copies of the replayed tickets left out by id and by identical text, and the history rows it could not read."""

from __future__ import annotations

import html
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from bot.models import Message, Resolution, Ticket
from bot.offline.simulate import MIN_SAME_TEXT_WORDS, skipped_by_reason, without_same_text
from tests.support.cli import run_bot
from tests.support.jsonl import row, write_jsonl
from tests.support.knowledge import write_knowledge

OUTPUTS = ("decisions.jsonl", "summary.json", "sweep.png", "report.html")
PASSWORD = "I forgot my password and cannot sign in, how do I reset it?"
SHIPPING = "How long does shipping take abroad?"


def outputs(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in OUTPUTS if (folder / name).exists()}


def run_limited(*args: str, cwd: Path, file_size_limit: int) -> subprocess.CompletedProcess:
    """`run_bot` with the kernel refusing to let the process grow any file past `file_size_limit` bytes: a write
    fails half-way (EFBIG), as on a disk that fills up."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEAM_", "OPENAI_")) and k != "KNOWLEDGE_PATH"}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, preexec_fn=limit)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes], dict[str, bytes]]:
    """A folder, a knowledge folder, and the whole outputs of an earlier small run and of a later bigger one."""
    folder = tmp_path_factory.mktemp("outputs")
    knowledge = write_knowledge(folder / "knowledge")
    write_jsonl(folder / "earlier.jsonl", [row("a", PASSWORD), row("b", SHIPPING)])
    write_jsonl(folder / "later.jsonl", [row(f"t{i}", (PASSWORD, SHIPPING)[i % 2] + f" (order {i})")
                                         for i in range(40)])
    for name in ("earlier", "later"):
        done = run_bot("simulate", f"{name}.jsonl", "--knowledge", str(knowledge), "--out", name, cwd=folder)
        assert done.returncode == 0, done.stderr
    return folder, outputs(folder / "earlier"), outputs(folder / "later")


def later_run_over_earlier(tmp_path: Path, runs: tuple[Path, dict[str, bytes], dict[str, bytes]], *,
                           file_size_limit: int):
    """The later run, into a folder holding the earlier run's outputs, with the files it may write capped in size."""
    folder, earlier, _ = runs
    out = tmp_path / "out"
    out.mkdir()
    for name, data in earlier.items():
        (out / name).write_bytes(data)
    return out, run_limited("simulate", str(folder / "later.jsonl"), "--knowledge", str(folder / "knowledge"),
                            "--out", str(out), cwd=tmp_path, file_size_limit=file_size_limit)


@pytest.mark.parametrize("cut", OUTPUTS)
def test_a_run_that_fails_while_writing_leaves_no_partial_file_and_no_summary(
        tmp_path: Path, runs: tuple[Path, dict[str, bytes], dict[str, bytes]], cut: str) -> None:
    # The disk fills while the later run writes its outputs over the earlier run's: each write stops at a size
    # just short of the `cut` file's, so the first file at least that big is left half-written.
    folder, earlier, later = runs
    out, done = later_run_over_earlier(tmp_path, runs, file_size_limit=len(later[cut]) - 1)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.strip().splitlines()[-1].startswith("Error: --out")
    left = outputs(out)
    for name, data in left.items():
        assert data in (earlier[name], later[name]), f"{name} is partial"
    # summary.json marks a finished run: a failed one leaves none, so no earlier summary stands beside files the
    # later run already replaced.
    assert "summary.json" not in left
    assert sorted(p.name for p in out.iterdir()) == sorted(left), "a temporary file was left behind"


def test_a_finished_run_replaces_every_output_and_writes_the_summary_last(
        tmp_path: Path, runs: tuple[Path, dict[str, bytes], dict[str, bytes]]) -> None:
    folder, earlier, later = runs
    out, done = later_run_over_earlier(tmp_path, runs, file_size_limit=max(map(len, later.values())))
    assert done.returncode == 0, done.stderr
    assert outputs(out) == later  # and the same bytes as the run into another folder
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    summary_written = (out / "summary.json").stat().st_mtime_ns
    assert all((out / name).stat().st_mtime_ns <= summary_written for name in OUTPUTS)


# -- the same ticket under another id --------------------------------------------------------------------------

def unique_rows(prefix: str, *, shout: bool = False) -> list[dict]:
    """60 resolved tickets, each a question only its own copy could answer; `shout` writes the same words in
    capitals with other spacing, as another export might."""
    rows = []
    for i in range(60):
        subject = f"Unique question number {i} about zorblax {i * 7}"
        body = f"zorblax {i * 7} frobnicate {i}, what happens next with it?"
        if shout:
            subject, body = subject.upper(), "  " + body.replace(" ", "\n  ").upper()
        rows.append({"id": f"{prefix}{i}", "subject": subject, "messages": [{"author": "customer", "body": body}],
                     "resolution": {"answer_id": f"answer-{i}", "answer": f"Answer {i}"}})
    return rows


def test_a_copy_of_a_replayed_ticket_under_another_id_cannot_answer_it(tmp_path: Path) -> None:
    tickets = write_jsonl(tmp_path / "tickets.jsonl", unique_rows("t"))
    history = write_jsonl(tmp_path / "history.jsonl", unique_rows("copy-", shout=True))
    out = tmp_path / "out"
    done = run_bot("simulate", str(tickets), "--history", str(history), "--out", str(out), "--format", "json",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["left_out_of_history"] == 0 and summary["left_out_of_history_by_text"] == 60
    assert summary["history_tickets"] == 0
    assert summary["current"]["auto_right"] == 0, "nothing can be answered from its own copy"
    assert "left 60 history tickets out whose customer text is the same as a replayed ticket's" in done.stderr
    assert "60 history tickets were left out because their customer's text is the same" in \
        html.unescape((out / "report.html").read_text())


def history_ticket(ticket_id: str, subject: str, body: str, *, email: str | None = None) -> Ticket:
    return Ticket(id=ticket_id, subject=subject, messages=(Message("customer", body),), requester_email=email,
                  resolution=Resolution(answer_id="a", answer="x"))


def test_only_a_long_enough_text_from_the_same_requester_counts_as_the_same_ticket() -> None:
    long = "My parcel with the blue lamp never arrived and the tracking page has said in transit for weeks"
    replay = [history_ticket("r1", "Thanks", "thanks!"), history_ticket("r2", "Lamp", long, email="ann@x.test"),
              history_ticket("r3", "Lamp again", long)]
    history = [
        history_ticket("h1", "THANKS", "Thanks!"),  # short: different customers write it word for word
        history_ticket("h2", "lamp", long.upper(), email="Ann@X.test"),  # the same ticket, exported again
        history_ticket("h3", "Lamp", long, email="bob@x.test"),  # the same words from another customer
        history_ticket("h4", "Lamp again", f"{long}\n\n"),  # no address on either side: the same text is enough
        history_ticket("h5", "Lamp", long + " please"),  # not the same text
    ]
    kept, left_out = without_same_text(history, replay)
    assert [t.id for t in kept] == ["h1", "h3", "h5"] and left_out == 2
    assert len("thanks thanks!".split()) < MIN_SAME_TEXT_WORDS <= len(f"lamp {long}".split())


def test_the_subject_and_the_customers_public_messages_are_what_is_compared() -> None:
    long = "My parcel with the blue lamp never arrived and the tracking page has said in transit for weeks"
    replay = [Ticket(id="r", subject="Lamp", messages=(Message("customer", long), Message("agent", "Sorry!")))]
    same = Ticket(id="h", subject="lamp", messages=(Message("customer", long), Message("agent", "Other words"),
                                                    Message("customer", "private", public=False)))
    other_subject = Ticket(id="h2", subject="Lamp broken", messages=(Message("customer", long),))
    kept, left_out = without_same_text([same, other_subject], replay)
    assert [t.id for t in kept] == ["h2"] and left_out == 1


# -- history rows that cannot be used ---------------------------------------------------------------------------

def test_unreadable_history_rows_are_counted_by_reason_in_the_summary_and_the_report(tmp_path: Path) -> None:
    knowledge = write_knowledge(tmp_path / "knowledge")
    tickets = write_jsonl(tmp_path / "tickets.jsonl", [row("a", PASSWORD, answer_id="reset-password"), "{not json"])
    history = write_jsonl(tmp_path / "history.jsonl", [
        row("h1", "Forgot my password, how can I reset it?", answer_id="reset-password"),
        "{not json",
        {"subject": "no id", "messages": [{"author": "customer", "body": "hi"}]},
        {"id": "h2", "subject": "", "messages": [{"author": "agent", "body": "Only us talking"}]},
        row("h1", SHIPPING, answer_id="shipping-times"),
        {"id": "h3", "subject": "x", "tags": "not-a-list"},
        row("h4", SHIPPING),
    ])
    with history.open("ab") as fh:
        fh.write(json.dumps(row("h5", SHIPPING)).encode()[:-2] + b'\xff"}\n')
    out = tmp_path / "out"
    done = run_bot("simulate", str(tickets), "--history", str(history), "--knowledge", str(knowledge),
                   "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_rows"] == 1  # TICKETS' own, as before
    assert summary["history_skipped_rows"] == 6
    assert summary["history_skipped_by_reason"] == {"duplicate_id": 1, "malformed": 1, "no_customer_text": 1,
                                                    "no_id": 1, "not_json": 1, "not_utf8": 1}
    assert (summary["history_tickets"], summary["history_resolved"]) == (2, 1)
    report = html.unescape((out / "report.html").read_text())
    assert "6 rows of the history file could not be read and were skipped" in report
    assert "1 duplicate id" in report and "1 without customer text" in report
    assert "1 of the 2 history tickets carries no resolution" in report


def test_reasons_are_read_from_the_problems_as_read_tickets_words_them() -> None:
    problems = ["h.jsonl line 2: not valid JSON (Expecting value)", "h.jsonl line 3: not UTF-8 text",
                "h.jsonl line 4: duplicate id 'x'", "h.jsonl line 5: ticket needs an 'id' (string or number)",
                "h.jsonl line 6: ticket needs a 'subject' or a customer message",
                "h.jsonl line 7: messages[0] needs a string 'body'", "h.jsonl line 8: not valid JSON (Extra data)"]
    assert skipped_by_reason(problems) == {"duplicate_id": 1, "malformed": 1, "no_customer_text": 1, "no_id": 1,
                                           "not_json": 2, "not_utf8": 1}


def test_two_runs_write_the_same_bytes(tmp_path: Path) -> None:
    knowledge = write_knowledge(tmp_path / "knowledge")
    tickets = write_jsonl(tmp_path / "tickets.jsonl", unique_rows("t")[:10] + [row("a", PASSWORD), "{bad"])
    history = write_jsonl(tmp_path / "history.jsonl",
                          unique_rows("copy-", shout=True)[:5] + [row("h", SHIPPING, answer_id="shipping-times"),
                                                                  "{bad", row("t1", PASSWORD)])
    for name in ("one", "two"):
        done = run_bot("simulate", str(tickets), "--history", str(history), "--knowledge", str(knowledge),
                       "--out", name, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    assert outputs(tmp_path / "one") == outputs(tmp_path / "two")
    summary = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert (summary["left_out_of_history"], summary["left_out_of_history_by_text"]) == (1, 5)
