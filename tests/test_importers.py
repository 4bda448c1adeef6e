"""`python -m bot import zendesk|csv`: real-shaped Zendesk API dumps and spreadsheet exports become ticket JSONL
that `read_tickets` loads without a problem and `simulate` replays."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.errors import InputError
from bot.helpdesk.zendesk.importer import import_zendesk
from bot.models import read_tickets
from bot.offline.importers import CsvColumns, answer_hash, import_csv, write_jsonl
from tests.support.knowledge import write_knowledge

REQUESTER, OTHER_CUSTOMER, AGENT, CC_CUSTOMER = 5001, 5002, 9001, 5003
API = "https://acme.zendesk.com/api/v2"


def run_bots(*commands: list[str], cwd: Path) -> list[subprocess.CompletedProcess]:
    """Run `python -m bot ARGS` for each command, as a person would, all at once (each start costs ~2 s)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SEAM_", "OPENAI_", "SLACK_", "ZENDESK_")) and k != "KNOWLEDGE_PATH"}
    procs = [(args, subprocess.Popen([sys.executable, "-m", "bot", *args], cwd=cwd, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)) for args in commands]
    done = []
    for args, proc in procs:
        out, err = proc.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return done


def zticket(ticket_id, status="open", *, subject="", requester=REQUESTER, tags=(), updated="2026-11-01T00:00:00Z",
            created="2026-10-01T09:00:00Z", **extra) -> dict:
    return {"url": f"{API}/tickets/{ticket_id}.json", "id": ticket_id, "external_id": None, "type": "question",
            "subject": subject, "raw_subject": subject, "description": extra.pop("description", subject),
            "priority": extra.pop("priority", "normal"), "status": status, "requester_id": requester,
            "submitter_id": requester, "assignee_id": AGENT, "tags": list(tags), "created_at": created,
            "updated_at": updated, "due_at": extra.pop("due_at", None), "generated_timestamp": 1761955200,
            **extra}


def comment(comment_id, author, body, created, public=True) -> dict:
    return {"id": comment_id, "type": "Comment", "author_id": author, "body": body, "html_body": f"<p>{body}</p>",
            "plain_body": body, "public": public, "attachments": [], "audit_id": comment_id + 1,
            "via": {"channel": "web"}, "created_at": created}


USERS = [
    {"id": REQUESTER, "name": "Ana Silva", "email": "ana@example.com", "role": "end-user"},
    {"id": OTHER_CUSTOMER, "name": "Bo Chen", "email": "bo@example.com", "role": "end-user"},
    {"id": AGENT, "name": "Kim Agent", "email": "kim@acme.example", "role": "agent"},
    {"id": CC_CUSTOMER, "name": "Cy Cc", "email": "cy@example.com", "role": "end-user"},
]


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def zendesk_dump(tmp_path: Path) -> Path:
    """A folder as someone saves it: two incremental export pages with sideloaded users, then per-ticket comment
    pages under comments/."""
    dump = tmp_path / "zendesk"
    write_json(dump / "tickets-0001.json", {
        "tickets": [
            zticket(101, "solved", subject="Where is my refund?", tags=["billing", "macro_refund_status"],
                    priority="high", due_at="2026-10-01T13:00:00Z"),
            zticket(102, "open", subject="Can't sign in", updated="2026-10-02T00:00:00Z"),
            zticket(103, "closed", subject="Shipping abroad", requester=OTHER_CUSTOMER),
            {"url": f"{API}/tickets/x.json", "subject": "no id here", "status": "open"},
        ],
        "users": USERS[:3],
        "after_url": f"{API}/incremental/tickets/cursor.json?cursor=MTU3NjYxMzUzOS4wfHw0Njd8",
        "after_cursor": "MTU3NjYxMzUzOS4wfHw0Njd8", "before_cursor": None, "end_of_stream": False,
    })
    write_json(dump / "tickets-0002.json", {
        "tickets": [
            # 102 changed again: its newer version wins.
            zticket(102, "pending", subject="Can't sign in", updated="2026-11-02T00:00:00Z",
                    tags=["login"]),
            zticket(104, "deleted", subject="spam spam"),
            zticket(105, "new", subject="Gift card question", description="Do gift cards expire?",
                    created="2026-10-05T09:00:00Z"),
        ],
        "users": USERS[3:], "after_url": None, "after_cursor": None, "end_of_stream": True,
    })
    write_json(dump / "comments" / "101.json", {"comments": [
        comment(1, REQUESTER, "I returned my order two weeks ago, where is my refund?", "2026-10-01T09:00:00Z"),
        comment(3, AGENT, "Checked with billing: it was issued.", "2026-10-01T09:30:00Z", public=False),
        comment(5, AGENT, "Your refund was issued on Monday; it takes 5-7 days.", "2026-10-01T10:00:00Z"),
        comment(7, REQUESTER, "Thanks!", "2026-10-01T11:00:00Z"),
    ], "next_page": None, "previous_page": None, "count": 4})
    write_json(dump / "comments" / "comments-102.json", {"comments": [
        comment(11, REQUESTER, "I can't sign in since yesterday.", "2026-10-01T09:00:00Z"),
        comment(13, CC_CUSTOMER, "Same here for my colleague.", "2026-10-01T09:05:00Z"),
        comment(15, AGENT, "Can you try resetting your password?", "2026-10-01T09:20:00Z"),
    ]})
    write_json(dump / "comments" / "103.json", {"comments": [
        comment(21, OTHER_CUSTOMER, "How long does shipping to Canada take?", "2026-10-01T09:00:00Z"),
        comment(23, AGENT, "7 to 14 days abroad.", "2026-10-01T10:00:00Z"),
    ]})
    return dump


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- Zendesk ---------------------------------------------------------------------------------------------------

def test_zendesk_export_pages_with_users_and_comment_files(zendesk_dump: Path) -> None:
    result = import_zendesk([zendesk_dump])
    by_id = {t["id"]: t for t in result.tickets}
    assert sorted(by_id) == ["101", "102", "103", "105"]  # 104 deleted, the id-less record skipped
    assert result.problems == ["tickets-0001.json record 4: ticket has no id"]
    assert result.notes == ["left out 1 deleted ticket"]

    refund = by_id["101"]
    assert refund["requester"] == {"name": "Ana Silva", "email": "ana@example.com"}
    assert refund["tags"] == ["billing", "macro_refund_status"]
    assert (refund["priority"], refund["status"]) == ("high", "solved")
    assert refund["sla_due_at"] == "2026-10-01T13:00:00Z"
    assert refund["url"] == "https://acme.zendesk.com/agent/tickets/101"
    assert refund["resolution"] == {"answer_id": "refund_status",
                                    "answer": "Your refund was issued on Monday; it takes 5-7 days."}
    # The thread as it stood when the agent answered: the customer's question and the internal note.
    assert [(m["author"], m["public"]) for m in refund["messages"]] == [("customer", True), ("agent", False)]

    login = by_id["102"]  # the newer page's version
    assert (login["status"], login["tags"]) == ("pending", ["login"])
    assert "resolution" not in login
    # A CC'd end-user is a customer too, not an agent.
    assert [m["author"] for m in login["messages"]] == ["customer", "customer", "agent"]

    shipping = by_id["103"]  # solved in the agent's own words: no macro tag
    assert shipping["resolution"] == {"answer_id": None, "answer": "7 to 14 days abroad."}
    assert shipping["requester"]["name"] == "Bo Chen"
    assert shipping["messages"][0]["author"] == "customer"

    gift = by_id["105"]  # no comments at all: the description is the customer's message
    assert gift["messages"] == [{"author": "customer", "body": "Do gift cards expire?",
                                 "created_at": "2026-10-05T09:00:00Z", "public": True}]


def test_zendesk_ticket_events_jsonl_pages_and_answer_tag_prefix(tmp_path: Path) -> None:
    pages = tmp_path / "export.jsonl"
    pages.write_text("\n".join(json.dumps(p) for p in [
        {"tickets": [zticket(7, "solved", subject="Order status", tags=["kb_track_order"])],
         "users": USERS, "end_of_stream": False},
        {"tickets": [zticket(8, "open", subject="Hello")], "end_of_stream": True},
    ]) + "\n", encoding="utf-8")
    events = write_json(tmp_path / "events.json", {"ticket_events": [
        {"id": 1, "ticket_id": 7, "updater_id": REQUESTER, "created_at": "2026-10-01T09:00:00Z",
         "event_type": "Audit", "child_events": [
             {"id": 71, "event_type": "Comment", "body": "Where is order 7781?", "public": True,
              "author_id": REQUESTER},
             {"id": 72, "event_type": "Change", "field_name": "status", "value": "open"}]},
        {"id": 2, "ticket_id": 7, "updater_id": AGENT, "created_at": "2026-10-01T10:00:00Z",
         "event_type": "Audit", "child_events": [
             {"id": 73, "event_type": "Comment", "body": "It ships tomorrow.", "public": True, "author_id": AGENT}]},
        {"id": 3, "ticket_id": 999, "created_at": "2026-10-01T10:00:00Z", "child_events": [
            {"id": 74, "event_type": "Comment", "body": "orphan", "public": True, "author_id": AGENT}]},
        {"id": 4, "created_at": "2026-10-01T10:00:00Z", "child_events": [
            {"id": 75, "event_type": "Comment", "body": "no ticket", "public": True, "author_id": AGENT}]},
    ]})
    result = import_zendesk([pages, events], answer_tag_prefix="kb_")
    by_id = {t["id"]: t for t in result.tickets}
    assert by_id["7"]["resolution"] == {"answer_id": "track_order", "answer": "It ships tomorrow."}
    assert by_id["7"]["messages"] == [{"author": "customer", "body": "Where is order 7781?",
                                       "created_at": "2026-10-01T09:00:00Z", "id": "71", "public": True}]
    assert by_id["8"]["messages"][0]["body"] == "Hello"
    assert result.problems == ["events.json record 4: ticket event has no ticket_id"]
    assert "ignored 1 comment of tickets not in the dump" in result.notes


def test_zendesk_resolved_only_and_unusable_dumps(zendesk_dump: Path, tmp_path: Path) -> None:
    history = import_zendesk([zendesk_dump], resolved_only=True)
    assert [t["id"] for t in history.tickets] == ["101", "103"]
    assert all(t["resolution"] for t in history.tickets)

    only_deleted = write_json(tmp_path / "deleted.json", {"tickets": [zticket(1, "deleted", subject="x")]})
    with pytest.raises(InputError, match="every ticket is deleted"):
        import_zendesk([only_deleted])
    only_comments = write_json(tmp_path / "c" / "5.json", {"comments": [comment(1, 1, "hi", "2026-10-01")]})
    with pytest.raises(InputError, match="no tickets found"):
        import_zendesk([only_comments])
    with pytest.raises(InputError, match="file not found"):
        import_zendesk([tmp_path / "missing.json"])
    (tmp_path / "garbage.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match=r"no usable ticket in .*garbage.json \(garbage.json: not valid JSON"):
        import_zendesk([tmp_path / "garbage.json"])


# -- CSV -------------------------------------------------------------------------------------------------------

def test_csv_bom_multiline_cells_hash_ids_and_bad_rows(tmp_path: Path) -> None:
    sheet = tmp_path / "export.csv"
    sheet.write_bytes("\ufeffTicket ID,Subject,Body,Answer,Created_At,Tags\r\n"
                      "T1,Refund,\"Where is my refund?\nOrder 7781.\",\"Refunds take 5-7 days.\","
                      "2026-10-01T09:00:00Z,\"billing, refund\"\r\n"
                      "T2,Refund again,Still no refund,refunds take   5-7 DAYS.,,\r\n"
                      "T3,,,,,\r\n"
                      "T4,Too,many,cells,here,x,y\r\n"
                      "\r\n"
                      "T5,Just a subject,,,,\r\n".encode("utf-8"))
    result = import_csv(sheet, columns=CsvColumns(id="ticket id"))
    by_id = {t["id"]: t for t in result.tickets}
    assert list(by_id) == ["T1", "T2", "T5"]
    assert result.problems == ["export.csv line 5: no subject and no body",
                               "export.csv line 6: 7 fields, the header has 6"]
    assert by_id["T1"]["messages"][0]["body"] == "Where is my refund?\nOrder 7781."
    assert by_id["T1"]["tags"] == ["billing", "refund"]
    # The same reply (up to case and spacing) gives the same answer id.
    assert by_id["T1"]["resolution"]["answer_id"] == by_id["T2"]["resolution"]["answer_id"] \
        == answer_hash("Refunds take 5-7 days.")
    assert by_id["T5"] == {"id": "T5", "subject": "Just a subject", "messages": []}


def test_csv_without_id_column_and_column_errors(tmp_path: Path) -> None:
    sheet = tmp_path / "s.csv"
    sheet.write_text("question;reply;macro\nHow do I reset my password?;Use the link.;reset-password\n"
                     "Do gift cards expire?;No.;null\n", encoding="utf-8")
    result = import_csv(sheet, columns=CsvColumns(body="Question", answer="reply", answer_id="MACRO"),
                        delimiter=";")
    assert [t["id"] for t in result.tickets] == ["row-1", "row-2"]
    assert result.tickets[0]["resolution"] == {"answer_id": "reset-password", "answer": "Use the link."}
    assert result.tickets[1]["resolution"] == {"answer_id": None, "answer": "No."}

    with pytest.raises(InputError, match=r"neither a 'subject' nor a 'body' column.*'question;reply;macro'"
                                         r".*delimiter ';'"):
        import_csv(sheet)
    with pytest.raises(InputError, match="no column 'answer' .*columns found: 'question', 'reply', 'macro'"):
        import_csv(sheet, columns=CsvColumns(body="question", explicit=frozenset({"answer"})), delimiter=";")
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="is empty"):
        import_csv(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("subject,body\n", encoding="utf-8")
    with pytest.raises(InputError, match="no usable row"):
        import_csv(tmp_path / "header.csv")


# -- the command line ------------------------------------------------------------------------------------------

def test_cli_import_then_simulate_round_trip(zendesk_dump: Path, tmp_path: Path) -> None:
    out, from_csv, history = tmp_path / "tickets.jsonl", tmp_path / "csv.jsonl", tmp_path / "history.jsonl"
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("subject,body,answer\nPassword,\"I forgot my password,\nhow do I reset it?\",Use the link.\n",
                     encoding="utf-8-sig")
    zendesk, spreadsheet = run_bots(["import", "zendesk", str(zendesk_dump), "--out", str(out)],
                                    ["import", "csv", str(sheet), "--out", str(from_csv)], cwd=tmp_path)
    assert zendesk.returncode == 0, zendesk.stderr
    assert "skipped: tickets-0001.json record 4: ticket has no id" in zendesk.stderr
    assert "wrote 4 ticket(s) (2 with a resolution)" in zendesk.stderr
    assert spreadsheet.returncode == 0, spreadsheet.stderr
    tickets, problems = read_tickets(out)
    assert (len(tickets), problems) == (4, [])
    assert read_tickets(from_csv)[1] == []
    write_jsonl(import_zendesk([zendesk_dump], resolved_only=True).tickets, history)
    assert read_tickets(history)[1] == []

    knowledge = write_knowledge(tmp_path / "knowledge")
    sim, = run_bots(["simulate", str(out), "--history", str(history), "--knowledge", str(knowledge),
                     "--out", str(tmp_path / "sim"), "--format", "json"], cwd=tmp_path)
    assert sim.returncode == 0, sim.stderr
    assert "skipped" not in sim.stderr
    summary = json.loads(sim.stdout)
    assert (summary["tickets"], summary["left_out_of_history"]) == (4, 2)  # a ticket never answers itself
    assert len(read_jsonl(tmp_path / "sim" / "decisions.jsonl")) == 4


def test_cli_bad_input_is_one_line_error(tmp_path: Path) -> None:
    write_json(tmp_path / "deleted.json", {"tickets": [zticket(1, "deleted", subject="x")]})
    (tmp_path / "cols.csv").write_text("Title,Text\na,b\n", encoding="utf-8")
    # One of each importer as a subprocess (each start costs ~2 s); the other messages are checked in-process.
    cases = {
        "no usable ticket in deleted.json (every ticket is deleted)": ["zendesk", "deleted.json", "--out", "o.jsonl"],
        "columns found: 'Title', 'Text'": ["csv", "cols.csv", "--out", "o.jsonl"],
    }
    for message, done in zip(cases, run_bots(*[["import", *a] for a in cases.values()], cwd=tmp_path), strict=True):
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("Error: ") and message in done.stderr, \
            done.stderr
    assert not (tmp_path / "o.jsonl").exists()


def test_a_jsonl_dump_with_a_raw_line_separator_in_a_body_keeps_the_ticket(tmp_path: Path) -> None:
    # U+2028 is legal raw inside a JSON string (jq and json.dumps(ensure_ascii=False) write it so): no line end.
    pages = [{"tickets": [zticket(1, "solved", subject="Reset", description="Forgot my password\u2028help")],
              "users": USERS},
             {"tickets": [zticket(2, "solved", subject="Order", description="Where is my order?")]}]
    dump = tmp_path / "tickets.jsonl"
    dump.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pages), encoding="utf-8")
    [done] = run_bots(["import", "zendesk", str(dump), "--out", str(tmp_path / "out.jsonl")], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "skipped:" not in done.stderr
    tickets, problems = read_tickets(tmp_path / "out.jsonl")
    assert [t.id for t in tickets] == ["1", "2"] and not problems
    assert tickets[0].messages[0].body == "Forgot my password\u2028help"


def test_a_csv_cell_with_a_raw_line_separator_stays_whole(tmp_path: Path) -> None:
    (tmp_path / "export.csv").write_text("id,subject,body\n1,Reset,I forgot my password\u2028please help\n"
                                         "2,Order,Where is my order?\n", encoding="utf-8")
    [done] = run_bots(["import", "csv", "export.csv", "--out", "out.jsonl"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "skipped:" not in done.stderr
    tickets, _ = read_tickets(tmp_path / "out.jsonl")
    assert [t.messages[0].body for t in tickets] == ["I forgot my password\u2028please help", "Where is my order?"]


def test_a_gorgias_ticket_whose_messages_is_not_a_list_is_reported_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "tickets.json").write_text(json.dumps({"data": [
        {"id": 1, "subject": "Where is my order?", "status": "closed", "messages": 7},
        {"id": 2, "subject": "Reset my password", "status": "closed", "messages": []}]}))
    [done] = run_bots(["import", "gorgias", "tickets.json", "--out", "out.jsonl"], cwd=tmp_path)
    assert "Traceback" not in done.stderr
    assert done.returncode == 0, done.stderr
    assert "tickets.json record 1: 'messages' must be a list" in done.stderr


def test_the_written_file_is_as_readable_as_any_new_file(tmp_path: Path) -> None:
    # It was made by tempfile.mkstemp, readable by its owner alone: a history file written for `serve` running as
    # another user could not be read. It now gets the mode every new file gets (0644 under the usual umask).
    previous = os.umask(0o022)
    try:
        write_jsonl([{"id": "1", "subject": "Hi"}], tmp_path / "tickets.jsonl")
    finally:
        os.umask(previous)
    assert (tmp_path / "tickets.jsonl").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["tickets.jsonl"]
