"""Importers: turn what people already have into the contract's ticket JSONL (CONTRACT.md, *Formats*), so
`python -m bot simulate` can replay real history. This module holds what every importer shares — reading
dump files page by page, checking and writing tickets — and the spreadsheet (CSV) importer; each helpdesk's
API-dump importer lives in its folder (`bot.helpdesk.zendesk.importer`).

Every ticket written is checked with `Ticket.from_dict` first, so the output always loads with
`bot.models.read_tickets` without a problem. Bad records are reported (`FILE record N: why` for
dumps, `FILE line N: why` for CSV) and skipped; an input with no usable ticket at all raises `InputError`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bot.errors import InputError
from bot.models import Ticket
from bot.offline.files import replacing
from bot.text import jsonl_lines

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
    with replacing(path) as fh:
        _write_lines(tickets, fh)


def write_result(result: ImportResult, out: str | Path, *, say: Callable[[str], None]) -> None:
    """Report what was skipped and left out (through `say`), then write the tickets to `out`."""
    for problem in result.problems:
        say(f"skipped: {problem}")
    for note in result.notes:
        say(note)
    write_jsonl(result.tickets, out)
    resolved = sum(1 for t in result.tickets if "resolution" in t)
    say(f"wrote {len(result.tickets)} ticket(s) ({resolved} with a resolution) to "
        f"{'stdout' if str(out) == '-' else out}; skipped {len(result.problems)} bad record(s)")


def _write_lines(tickets: Iterable[dict], fh: TextIO) -> None:
    for ticket in tickets:
        fh.write(json.dumps(ticket, ensure_ascii=False) + "\n")


def checked(ticket: dict) -> dict:
    """The ticket if `Ticket.from_dict` accepts it; ValueError (its reason) if not."""
    Ticket.from_dict(ticket)
    return ticket


# -- API dumps ----------------------------------------------------------------------------------------------

def clean_id(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        return None
    return str(value).strip()


def number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def compact(message: dict) -> dict:
    """The dict without its None values."""
    return {k: v for k, v in message.items() if v is not None}


def opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def dump_files(paths: Iterable[str | Path]) -> list[tuple[Path, str]]:
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


def documents(path: Path, name: str, problems: list[str]) -> Iterator[Any]:
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
    for number, line in enumerate(jsonl_lines(text), start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{name} line {number}: not valid JSON ({exc.msg}), skipped")


def _looks_like_lines(text: str) -> bool:
    lines = [line for line in jsonl_lines(text) if line.strip()]
    if len(lines) < 2:
        return False
    try:
        json.loads(lines[0])
    except json.JSONDecodeError:
        return False
    return True


_DIGITS = re.compile(r"\d+")


def id_from_name(path: Path) -> str | None:
    numbers = _DIGITS.findall(path.stem)
    return numbers[-1] if numbers else None


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
    # Rows end at CR and LF only (newline=""), as the csv module expects: str.splitlines() would also end one at a
    # U+2028 inside a cell, cutting the ticket's text short.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
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

        def cell(role: str, cells: list[str] = cells) -> str:
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
        message = compact({"author": "customer", "body": body, "created_at": created})
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
            result.tickets.append(checked(ticket))
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
