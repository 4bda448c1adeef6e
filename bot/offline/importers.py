"""Importers: turn what people already have (Zendesk API dumps, spreadsheet exports) into the contract's ticket
JSONL (CONTRACT.md, *Formats*), so `python -m bot simulate` can replay real history.

Every ticket written is checked with `Ticket.from_dict` first, so the output always loads with
`bot.simulate.read_tickets` without a problem. Bad records are reported (`FILE record N: why` for Zendesk dumps,
`FILE line N: why` for CSV) and skipped; an input with no usable ticket at all raises `InputError`.

**Zendesk dumps.** Each DUMP is a file or a folder (searched recursively for `*.json`, `*.jsonl`, `*.ndjson`).
A `.json` file holds one JSON document (or an array of them); a `.jsonl`/`.ndjson` file holds one per line. Each
document is recognised by its keys, whichever endpoint it came from:

- `{"tickets": [...]}` — a page of `GET /api/v2/incremental/tickets/cursor.json` (or the time-based export, or
  `GET /api/v2/tickets.json`); `{"ticket": {...}}` — `GET /api/v2/tickets/{id}.json`. A ticket seen on several
  pages (the export returns it each time it changes) counts once, in its latest version.
- `{"comments": [...]}` — a page of `GET /api/v2/tickets/{id}/comments.json`. The ticket id is, in order: a
  `ticket_id` on the comment, a `ticket_id` beside `comments` in the document, or the last number in the file
  name (`comments/123.json`, `comments-123.json`, `123.json`).
- `{"ticket_events": [...]}` — a page of `GET /api/v2/incremental/ticket_events.json?include=comment_events`;
  its `child_events` of type `Comment` are the comments.
- `{"users": [...]}` — sideloaded (`include=users`) or listed users, on any of the above or alone.

A comment whose author is the ticket's requester, or a user whose role is `end-user`, is the customer's; any
other author is an agent's. Without comments, the ticket's `description` (Zendesk's first comment) is the
customer's message.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bot.models import Ticket
from bot.offline.simulate import InputError

RESOLVED = ("solved", "closed")
DUMP_SUFFIXES = (".json", ".jsonl", ".ndjson")


@dataclass
class ImportResult:
    """What an importer made: contract ticket dicts (each valid for `Ticket.from_dict`), the problems of skipped
    records, and counts of what was left out on purpose."""

    tickets: list[dict]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- writing ---------------------------------------------------------------------------------------------------

def write_jsonl(tickets: Iterable[dict], out: str | Path) -> None:
    """Write tickets as JSONL to `out` (`-` is stdout); a file is replaced only once it is complete."""
    if str(out) == "-":
        _write_lines(tickets, sys.stdout)
        return
    path = Path(out)
    if path.is_dir():
        raise InputError(f"--out {path} is a folder: name a file, e.g. {path / 'tickets.jsonl'}")
    if not path.parent.exists():
        raise InputError(f"--out {path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            _write_lines(tickets, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_lines(tickets: Iterable[dict], fh: TextIO) -> None:
    for ticket in tickets:
        fh.write(json.dumps(ticket, ensure_ascii=False) + "\n")


def _checked(ticket: dict) -> dict:
    """The ticket if `Ticket.from_dict` accepts it; ValueError (its reason) if not."""
    Ticket.from_dict(ticket)
    return ticket


# -- Zendesk ---------------------------------------------------------------------------------------------------

@dataclass
class _Comment:
    ticket_id: str
    author_id: str | None
    body: str
    public: bool
    created_at: str | None
    id: str | None
    order: int


@dataclass
class _TicketVersion:
    raw: dict
    where: str  # "FILE record N", for problems found later
    key: tuple


class _Dump:
    """Everything read from the DUMP files, before tickets are assembled."""

    def __init__(self) -> None:
        self.tickets: dict[str, _TicketVersion] = {}
        self.comments: dict[str, list[_Comment]] = {}
        self.users: dict[str, dict] = {}
        self.problems: list[str] = []
        self.seen = 0  # ticket records read, all versions
        self.order = 0
        self.documents = 0

    def _next(self) -> int:
        self.order += 1
        return self.order

    def add_ticket(self, raw: Any, where: str) -> None:
        self.seen += 1
        if not isinstance(raw, dict):
            self.problems.append(f"{where}: a ticket must be a JSON object")
            return
        ticket_id = _id(raw.get("id"))
        if ticket_id is None:
            self.problems.append(f"{where}: ticket has no id")
            return
        # The export returns a ticket again each time it changes: the latest version wins.
        key = (str(raw.get("updated_at") or ""), _number(raw.get("generated_timestamp")), self._next())
        current = self.tickets.get(ticket_id)
        if current is None or key >= current.key:
            self.tickets[ticket_id] = _TicketVersion(raw=raw, where=where, key=key)

    def add_comment(self, raw: Any, where: str, *, ticket_id: str | None, created_at: Any = None,
                    author_id: Any = None) -> None:
        if not isinstance(raw, dict):
            self.problems.append(f"{where}: a comment must be a JSON object")
            return
        ticket_id = _id(raw.get("ticket_id")) or ticket_id
        if ticket_id is None:
            self.problems.append(f"{where}: comment without a ticket id (name the file comments/ID.json or "
                                 f"put \"ticket_id\" beside \"comments\")")
            return
        body = _comment_text(raw)
        if body is None:
            self.problems.append(f"{where}: comment has no body")
            return
        if not body.strip():
            return
        self.comments.setdefault(ticket_id, []).append(_Comment(
            ticket_id=ticket_id, author_id=_id(raw.get("author_id")) or _id(author_id), body=body,
            public=raw.get("public", True) is not False, created_at=_opt_str(raw.get("created_at") or created_at),
            id=_id(raw.get("id")), order=self._next()))

    def add_users(self, users: Any) -> None:
        for user in users if isinstance(users, list) else []:
            if isinstance(user, dict) and _id(user.get("id")) is not None:
                self.users[_id(user["id"])] = user


def _id(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        return None
    return str(value).strip()


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<\s*(br|/p|/div|/li)\b[^>]*>", re.IGNORECASE)


def _comment_text(raw: dict) -> str | None:
    """The comment as plain text: `plain_body`, else `body`, else `html_body` with its tags removed."""
    for key in ("plain_body", "body"):
        if isinstance(raw.get(key), str) and raw[key].strip():
            return raw[key]
    if isinstance(raw.get("html_body"), str):
        return html.unescape(_TAG.sub("", _BREAK.sub("\n", raw["html_body"]))).strip()
    if isinstance(raw.get("body"), str):
        return raw["body"]
    return None


def _dump_files(paths: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """The files to read, each with the name problems are reported under (relative to a folder given)."""
    files: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DUMP_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise InputError(f"{path} holds no .json, .jsonl or .ndjson files")
            files.extend((p, p.relative_to(path).as_posix()) for p in found)
        elif path.is_file():
            files.append((path, path.name))
        else:
            raise InputError(f"file not found: {path}")
    return files


def _documents(path: Path, name: str, problems: list[str]) -> Iterator[Any]:
    """The JSON documents in one dump file: the whole file, an array's items, or one per line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        problems.append(f"{name}: not UTF-8 text, skipped")
        return
    except OSError as exc:
        problems.append(f"{name}: cannot be read ({exc.strerror or exc}), skipped")
        return
    if not text.strip():
        problems.append(f"{name}: empty file, skipped")
        return
    if path.suffix.lower() == ".json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as whole:
            # Some people save JSONL under .json: try one document per line before giving up.
            if not _looks_like_lines(text):
                problems.append(f"{name}: not valid JSON ({whole.msg} at line {whole.lineno}), skipped")
                return
        else:
            yield from document if isinstance(document, list) else [document]
            return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{name} line {number}: not valid JSON ({exc.msg}), skipped")


def _looks_like_lines(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    try:
        json.loads(lines[0])
    except json.JSONDecodeError:
        return False
    return True


_DIGITS = re.compile(r"\d+")


def _id_from_name(path: Path) -> str | None:
    numbers = _DIGITS.findall(path.stem)
    return numbers[-1] if numbers else None


def read_zendesk(paths: Iterable[str | Path]) -> _Dump:
    dump = _Dump()
    for path, name in _dump_files(paths):
        record = 0
        for document in _documents(path, name, dump.problems):
            dump.documents += 1
            if not isinstance(document, dict):
                record += 1
                dump.problems.append(f"{name} record {record}: not a JSON object")
                continue
            dump.add_users(document.get("users"))
            known = False
            if isinstance(document.get("tickets"), list):
                known = True
                for raw in document["tickets"]:
                    record += 1
                    dump.add_ticket(raw, f"{name} record {record}")
            if isinstance(document.get("ticket"), dict):
                known = True
                record += 1
                dump.add_ticket(document["ticket"], f"{name} record {record}")
            if isinstance(document.get("comments"), list):
                known = True
                ticket_id = _id(document.get("ticket_id")) or _id_from_name(path)
                for raw in document["comments"]:
                    record += 1
                    dump.add_comment(raw, f"{name} record {record}", ticket_id=ticket_id)
            if isinstance(document.get("ticket_events"), list):
                known = True
                for event in document["ticket_events"]:
                    record += 1
                    where = f"{name} record {record}"
                    if not isinstance(event, dict):
                        dump.problems.append(f"{where}: a ticket event must be a JSON object")
                        continue
                    ticket_id = _id(event.get("ticket_id"))
                    children = event.get("child_events") or []
                    comments = [c for c in children if isinstance(c, dict) and c.get("event_type") == "Comment"]
                    if comments and ticket_id is None:
                        dump.problems.append(f"{where}: ticket event has no ticket_id")
                        continue
                    for child in comments:
                        dump.add_comment(child, where, ticket_id=ticket_id, created_at=event.get("created_at"),
                                         author_id=event.get("updater_id"))
            if isinstance(document.get("users"), list):
                known = True
            if not known:
                record += 1
                keys = ", ".join(sorted(str(k) for k in document)[:6]) or "none"
                dump.problems.append(f"{name} record {record}: not a Zendesk export page (no tickets, "
                                     f"comments, ticket_events or users; keys: {keys})")
    return dump


def _agent_link(api_url: Any, ticket_id: str) -> str | None:
    """`https://acme.zendesk.com/api/v2/tickets/1.json` → `https://acme.zendesk.com/agent/tickets/1`."""
    if not isinstance(api_url, str):
        return None
    match = re.match(r"(https?://[^/]+)/api/v2/", api_url)
    return f"{match.group(1)}/agent/tickets/{ticket_id}" if match else None


def _answer_id(tags: list[str], prefix: str) -> str | None:
    if not prefix:
        return None
    for tag in tags:
        if tag.startswith(prefix) and len(tag) > len(prefix):
            return tag[len(prefix):]
    return None


def zendesk_ticket(raw: dict, comments: list[_Comment], users: dict[str, dict], *,
                   answer_tag_prefix: str) -> dict:
    """One Zendesk ticket (and its comments) as a contract ticket dict; ValueError when it is unusable."""
    ticket_id = str(raw["id"]).strip()
    requester_id = _id(raw.get("requester_id"))
    subject = raw.get("subject") or raw.get("raw_subject") or ""
    if not isinstance(subject, str):
        raise ValueError("'subject' must be a string")
    tags = raw.get("tags") or []
    if not isinstance(tags, list):
        raise ValueError("'tags' must be a list")
    tags = [str(t) for t in tags if isinstance(t, str | int) and not isinstance(t, bool) and str(t).strip()]

    def author(author_id: str | None) -> str:
        if author_id is not None and author_id == requester_id:
            return "customer"
        user = users.get(author_id or "")
        return "customer" if user and user.get("role") == "end-user" else "agent"

    # One comment once, whichever file it came from; oldest first.
    unique: dict[Any, _Comment] = {}
    for comment in comments:
        unique.setdefault(comment.id or (comment.created_at, comment.author_id, comment.body), comment)
    ordered = sorted(unique.values(), key=lambda c: (c.created_at or "", c.order))
    messages = [{"author": author(c.author_id), "body": c.body, "created_at": c.created_at, "id": c.id,
                 "public": c.public} for c in ordered]
    description = raw.get("description")
    if isinstance(description, str) and description.strip() and not any(m["author"] == "customer" for m in messages):
        # Zendesk's description is the first comment: the customer's opening, when the comments loaded miss it
        # (no comment files, or ticket events that start after the ticket was opened).
        messages.insert(0, {"author": "customer", "body": description, "created_at": _opt_str(raw.get("created_at")),
                            "public": True})

    status = _opt_str(raw.get("status"))
    resolution = None
    if status in RESOLVED:
        answered = [i for i, m in enumerate(messages) if m["author"] == "agent" and m["public"]]
        answer = None
        if answered:
            # The thread as it stood when a person answered: replaying it asks Seam the same question.
            last = answered[-1]
            answer = messages[last]["body"]
            messages = messages[:last]
        resolution = {"answer_id": _answer_id(tags, answer_tag_prefix), "answer": answer}

    requester = users.get(requester_id or "", {})
    ticket: dict = {"id": ticket_id, "subject": subject, "messages": [_compact(m) for m in messages]}
    who = {k: requester.get(k) for k in ("name", "email") if isinstance(requester.get(k), str)}
    if who:
        ticket["requester"] = who
    ticket.update({"tags": tags, "priority": _opt_str(raw.get("priority")), "status": status,
                   "created_at": _opt_str(raw.get("created_at")), "sla_due_at": _opt_str(raw.get("due_at"))})
    link = _agent_link(raw.get("url"), ticket_id)
    if link:
        ticket["url"] = link
    if resolution is not None:
        ticket["resolution"] = resolution
    if not subject.strip() and not any(m["author"] == "customer" and m["body"].strip() for m in messages):
        raise ValueError(f"ticket {ticket_id} has no subject and no customer message")
    return _checked({k: v for k, v in ticket.items() if v is not None})


def _compact(message: dict) -> dict:
    return {k: v for k, v in message.items() if v is not None}


def import_zendesk(paths: Iterable[str | Path], *, resolved_only: bool = False,
                   answer_tag_prefix: str = "macro_") -> ImportResult:
    """Zendesk API dumps (see the module docstring) as contract tickets, oldest first."""
    paths = list(paths)
    dump = read_zendesk(paths)
    result = ImportResult(tickets=[], problems=dump.problems)
    deleted = unresolved = 0
    for ticket_id, version in dump.tickets.items():
        if version.raw.get("status") == "deleted":
            deleted += 1
            continue
        if resolved_only and version.raw.get("status") not in RESOLVED:
            unresolved += 1
            continue
        try:
            ticket = zendesk_ticket(version.raw, dump.comments.get(ticket_id, []), dump.users,
                                    answer_tag_prefix=answer_tag_prefix)
        except ValueError as exc:
            result.problems.append(f"{version.where}: {exc}")
            continue
        result.tickets.append(ticket)
    result.tickets.sort(key=lambda t: (t.get("created_at") or "", _sortable_id(t["id"])))
    if deleted:
        result.notes.append(f"left out {deleted} deleted ticket{'s' if deleted != 1 else ''}")
    if unresolved:
        result.notes.append(f"left out {unresolved} unsolved ticket{'s' if unresolved != 1 else ''} "
                            f"(--resolved-only)")
    orphans = sum(len(c) for tid, c in dump.comments.items() if tid not in dump.tickets)
    if orphans:
        result.notes.append(f"ignored {orphans} comment{'s' if orphans != 1 else ''} of tickets not in the dump")
    if not result.tickets:
        names = ", ".join(str(p) for p in paths)
        if dump.tickets and deleted + unresolved == len(dump.tickets):
            why = "every ticket is deleted" if not unresolved else "no ticket is solved or closed (--resolved-only)"
        elif not dump.seen:
            why = result.problems[0] if result.problems else \
                "no tickets found: pass the tickets export pages, not only comments or events"
        else:
            why = result.problems[0] if result.problems else "no usable ticket"
        raise InputError(f"no usable ticket in {names} ({why})")
    return result


def _sortable_id(ticket_id: str) -> tuple:
    return (0, int(ticket_id), "") if ticket_id.isdigit() else (1, 0, ticket_id)


# -- CSV -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CsvColumns:
    """The header names the CSV importer reads (matched case-insensitively); `explicit` are those the user named
    on the command line, which must exist."""

    id: str = "id"
    subject: str = "subject"
    body: str = "body"
    answer: str = "answer"
    answer_id: str = "answer_id"
    created_at: str = "created_at"
    tags: str = "tags"
    explicit: frozenset[str] = frozenset()


def answer_hash(answer: str) -> str:
    """A stable short id for a reply text: the same words (ignoring case and spacing) give the same id, so tickets
    resolved with the same reply share an `answer_id`."""
    normalised = " ".join(answer.casefold().split())
    return "answer-" + hashlib.sha256(normalised.encode("utf-8")).hexdigest()[:12]


_TAG_SPLIT = re.compile(r"[,;\s]+")


def import_csv(path: str | Path, *, columns: CsvColumns = CsvColumns(), delimiter: str = ",",
               encoding: str = "utf-8-sig") -> ImportResult:
    """A spreadsheet export (one ticket per row) as contract tickets, in file order."""
    path = Path(path)
    if len(delimiter) != 1:
        raise InputError(f"--delimiter must be one character, got {delimiter!r}")
    try:
        text = path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise InputError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder, not a CSV file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not {encoding} text (try --encoding cp1252)") from None
    except LookupError:
        raise InputError(f"unknown --encoding {encoding!r}") from None
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        text = text.removeprefix("\ufeff")
    if not text.strip():
        raise InputError(f"{path} is empty")

    csv.field_size_limit(max(csv.field_size_limit(), 16 * 1024 * 1024))
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delimiter)
    header: list[str] = []
    try:
        while not any(h.strip() for h in header):  # blank lines before the header
            header = next(reader)
    except StopIteration:
        raise InputError(f"{path} has no header row") from None
    except csv.Error as exc:
        raise InputError(f"{path.name} line {reader.line_num}: not readable as CSV ({exc})") from None
    names = [h.strip() for h in header]
    index = {n.casefold(): i for i, n in reversed(list(enumerate(names))) if n}

    def find(role: str) -> int | None:
        wanted = getattr(columns, role)
        position = index.get(wanted.strip().casefold())
        if position is None and role in columns.explicit:
            raise InputError(f"{path.name} has no column {wanted!r} (--{role.replace('_', '-')}-col); "
                             f"columns found: {_found(names)}")
        return position

    at = {role: find(role) for role in ("id", "subject", "body", "answer", "answer_id", "created_at", "tags")}
    if at["subject"] is None and at["body"] is None:
        hint = ""
        other = next((d for d in (";", "\t", "|", ",") if d != delimiter and d in header[0]), None)
        if len(names) == 1 and other:
            hint = f" (is the delimiter {other!r}? use --delimiter {other!r})"
        raise InputError(f"{path.name} has neither a {columns.subject!r} nor a {columns.body!r} column; columns "
                         f"found: {_found(names)}{hint}. Name them with --subject-col/--body-col")

    result = ImportResult(tickets=[])
    seen: set[str] = set()
    row_number = 0
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InputError(f"{path.name} line {start}: not readable as CSV ({exc})") from None
        if not any(c.strip() for c in cells):
            continue
        row_number += 1
        where = f"{path.name} line {start}"
        if len(cells) != len(header):
            result.problems.append(f"{where}: {len(cells)} fields, the header has {len(header)}")
            continue

        def cell(role: str) -> str:
            position = at[role]
            return cells[position].strip() if position is not None else ""

        ticket_id = cell("id") if at["id"] is not None else f"row-{row_number}"
        if not ticket_id:
            result.problems.append(f"{where}: empty {columns.id!r}")
            continue
        if ticket_id in seen:
            result.problems.append(f"{where}: duplicate id {ticket_id!r}")
            continue
        subject, body = cell("subject"), cell("body")
        if not subject and not body:
            result.problems.append(f"{where}: no subject and no body")
            continue
        created = cell("created_at") or None
        message = _compact({"author": "customer", "body": body, "created_at": created})
        ticket: dict = {"id": ticket_id, "subject": subject, "messages": [message] if body else []}
        tags = [t for t in _TAG_SPLIT.split(cell("tags")) if t]
        if tags:
            ticket["tags"] = tags
        if created:
            ticket["created_at"] = created
        answer, answer_id = cell("answer"), cell("answer_id")
        if answer_id.casefold() in ("null", "none"):
            ticket["resolution"] = {"answer_id": None, "answer": answer or None}
        elif answer_id or answer:
            ticket["resolution"] = {"answer_id": answer_id or answer_hash(answer), "answer": answer or None}
        try:
            result.tickets.append(_checked(ticket))
        except ValueError as exc:
            result.problems.append(f"{where}: {exc}")
            continue
        seen.add(ticket_id)
    if not result.tickets:
        raise InputError(f"{path} has no usable row" + (f" ({result.problems[0]})" if result.problems else ""))
    return result


def _found(names: list[str]) -> str:
    shown = [n for n in names if n][:20]
    return ", ".join(repr(n) for n in shown) if shown else "none"
