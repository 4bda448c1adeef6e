"""`python -m bot import gorgias`: Gorgias API dumps as the contract's ticket JSONL, for simulation.

Every ticket written is checked with `Ticket.from_dict` first (bot.offline.importers). Bad records are
reported (`FILE record N: why`) and skipped; an input with no usable ticket at all raises `InputError`.

**Gorgias dumps.** Each DUMP is a file or a folder (searched recursively for `*.json`, `*.jsonl`, `*.ndjson`).
A `.json` file holds one JSON document (or an array of them); a `.jsonl`/`.ndjson` file holds one per line. Each
document is recognised by its shape, whichever endpoint it came from
(https://developers.gorgias.com/reference/pagination for the page shape):

- `{"data": [...], "meta": {...}}` — a page of a listing: `GET /api/tickets` (tickets), `GET /api/messages`
  or `GET /api/tickets/{id}/messages` (messages, each naming its `ticket_id`). Pages of `/api/users` or
  `/api/macros` are accepted and ignored.
- A ticket object, `GET /api/tickets/{id}`, with its `messages` inside.
- A message object, `GET /api/tickets/{id}/messages/{message_id}`.

A ticket seen several times counts once, in its latest version (`updated_datetime`); a message seen several times
(in its ticket and in a messages page) counts once. A message with `from_agent: false` is the customer's, any
other an agent's; internal notes (`public: false`) are kept as notes.

With `--from-api` the command first fetches such a dump from the Gorgias API (export.py), then converts it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from bot.errors import InputError
from bot.helpdesk.export import dumps_to_read, from_api_options, keep_fetched
from bot.helpdesk.gorgias.adapter import PRIORITIES, message_text, seam_status
from bot.helpdesk.gorgias.settings import bare_domain
from bot.offline.importers import (
    ImportResult,
    checked,
    clean_id,
    compact,
    documents,
    dump_files,
    opt_str,
    write_result,
)
from bot.text import parse_time


@dataclass
class _Version:
    raw: dict
    where: str  # "FILE record N", for problems found later
    key: tuple


class _Dump:
    """Everything read from the DUMP files, before tickets are assembled."""

    def __init__(self) -> None:
        self.tickets: dict[str, _Version] = {}
        self.messages: dict[str, dict[Any, dict]] = {}
        self.problems: list[str] = []
        self.order = 0

    def add_ticket(self, raw: dict, where: str) -> None:
        ticket_id = clean_id(raw.get("id"))
        if ticket_id is None:
            self.problems.append(f"{where}: ticket has no id")
            return
        self.order += 1
        key = (_moment(raw.get("updated_datetime")), self.order)
        current = self.tickets.get(ticket_id)
        if current is None or key >= current.key:
            self.tickets[ticket_id] = _Version(raw=raw, where=where, key=key)
        messages = raw.get("messages") or []
        if not isinstance(messages, list):
            self.problems.append(f"{where}: 'messages' must be a list")
            return
        for message in messages:
            self.add_message(message, where, ticket_id=ticket_id)

    def add_message(self, raw: Any, where: str, *, ticket_id: str | None = None) -> None:
        if not isinstance(raw, dict):
            self.problems.append(f"{where}: a message must be a JSON object")
            return
        ticket_id = clean_id(raw.get("ticket_id")) or ticket_id
        if ticket_id is None:
            self.problems.append(f"{where}: message without a ticket_id")
            return
        identity = clean_id(raw.get("id")) or (raw.get("created_datetime"), raw.get("body_text"), raw.get("body_html"))
        self.messages.setdefault(ticket_id, {}).setdefault(identity, raw)


def _moment(value: Any) -> float:
    moment = parse_time(value) if isinstance(value, str) else None
    return moment.timestamp() if moment else 0.0


def _is_message(item: dict) -> bool:
    return "from_agent" in item and "ticket_id" in item and "messages" not in item and "customer" not in item


def _is_ticket(item: dict) -> bool:
    return "id" in item and any(key in item for key in ("subject", "customer", "messages", "status"))


def read_gorgias(paths: Iterable[str | Path]) -> _Dump:
    dump = _Dump()
    for path, name in dump_files(paths):
        record = 0
        for document in documents(path, name, dump.problems):
            if not isinstance(document, dict):
                record += 1
                dump.problems.append(f"{name} record {record}: not a JSON object")
                continue
            if isinstance(document.get("data"), list):
                uri = str(document.get("uri") or "")
                for item in document["data"]:
                    record += 1
                    where = f"{name} record {record}"
                    if not isinstance(item, dict):
                        dump.problems.append(f"{where}: not a JSON object")
                    elif _is_message(item):
                        dump.add_message(item, where)
                    elif _is_ticket(item):
                        dump.add_ticket(item, where)
                    elif not uri.startswith(("/api/users", "/api/macros")):
                        dump.problems.append(f"{where}: neither a ticket nor a message")
                continue
            record += 1
            where = f"{name} record {record}"
            if _is_message(document):
                dump.add_message(document, where)
            elif _is_ticket(document):
                dump.add_ticket(document, where)
            else:
                keys = ", ".join(sorted(str(k) for k in document)[:6]) or "none"
                dump.problems.append(f"{where}: not a Gorgias API page, ticket or message (keys: {keys})")
    return dump


def _answer_id(message: dict) -> str | None:
    """The macro a reply was written with, when the message records it (`macros: [{"id": …}]`, the field the
    create-message endpoint takes); None when a person wrote it in their own words."""
    for macro in message.get("macros") or []:
        macro_id = clean_id(macro.get("id")) if isinstance(macro, dict) else clean_id(macro)
        if macro_id is not None:
            return f"macro-{macro_id}"
    return None


def gorgias_ticket(raw: dict, messages: Iterable[dict], *, now: float, domain: str | None = None) -> dict:
    """One Gorgias ticket (and its messages) as a contract ticket dict; ValueError when it is unusable."""
    ticket_id = str(raw["id"]).strip()
    subject = raw.get("subject") or ""
    if not isinstance(subject, str):
        raise ValueError("'subject' must be a string")
    tags = raw.get("tags") or []
    if not isinstance(tags, list):
        raise ValueError("'tags' must be a list")
    tags = [str(t["name"]) for t in tags if isinstance(t, dict) and isinstance(t.get("name"), str | int)]

    ordered = sorted(messages, key=lambda m: (_moment(m.get("created_datetime")), str(m.get("id") or "")))
    thread = []
    for message in ordered:
        author = "agent" if message.get("from_agent") else "customer"
        body = message_text(message, stripped_first=author == "customer")
        if body.strip():
            thread.append((message, {"author": author, "body": body, "id": opt_str(message.get("id")),
                                     "created_at": opt_str(message.get("created_datetime")),
                                     "public": message.get("public", True) is not False}))

    status = seam_status(raw, now=now)
    resolution = None
    if raw.get("status") == "closed":
        answered = [i for i, (_, m) in enumerate(thread) if m["author"] == "agent" and m["public"]]
        answer = answer_id = None
        if answered:
            # The thread as it stood when a person answered: replaying it asks Seam the same question.
            last = answered[-1]
            answer, answer_id = thread[last][1]["body"], _answer_id(thread[last][0])
            thread = thread[:last]
        resolution = {"answer_id": answer_id, "answer": answer}

    customer = raw.get("customer") if isinstance(raw.get("customer"), dict) else {}
    name = customer.get("name") or " ".join(str(customer[k]) for k in ("firstname", "lastname") if customer.get(k))
    ticket: dict = {"id": ticket_id, "subject": subject, "messages": [compact(m) for _, m in thread]}
    who = {k: v for k, v in (("name", name), ("email", customer.get("email"))) if isinstance(v, str) and v}
    if who:
        ticket["requester"] = who
    ticket.update({"tags": tags, "priority": PRIORITIES.get(str(raw.get("priority"))), "status": status,
                   "created_at": opt_str(raw.get("created_datetime"))})
    if domain:
        ticket["url"] = f"https://{domain}.gorgias.com/app/ticket/{ticket_id}"
    if resolution is not None:
        ticket["resolution"] = resolution
    if not subject.strip() and not any(m["author"] == "customer" for m in ticket["messages"]):
        raise ValueError(f"ticket {ticket_id} has no subject and no customer message")
    return checked({k: v for k, v in ticket.items() if v is not None})


def import_gorgias(paths: Iterable[str | Path], *, resolved_only: bool = False, domain: str | None = None,
                   now: float | None = None) -> ImportResult:
    """Gorgias API dumps (see the module docstring) as contract tickets, oldest first."""
    paths = list(paths)
    dump = read_gorgias(paths)
    result = ImportResult(tickets=[], problems=dump.problems)
    unresolved = trashed = 0
    for ticket_id, version in dump.tickets.items():
        if version.raw.get("trashed_datetime") or version.raw.get("spam"):
            trashed += 1
            continue
        if resolved_only and version.raw.get("status") != "closed":
            unresolved += 1
            continue
        try:
            ticket = gorgias_ticket(version.raw, dump.messages.get(ticket_id, {}).values(),
                                    now=time.time() if now is None else now, domain=domain)
        except ValueError as exc:
            result.problems.append(f"{version.where}: {exc}")
            continue
        result.tickets.append(ticket)
    result.tickets.sort(key=lambda t: (_moment(t.get("created_at")), int(t["id"]) if t["id"].isdigit() else 0))
    if trashed:
        result.notes.append(f"left out {trashed} trashed or spam ticket{'s' if trashed != 1 else ''}")
    if unresolved:
        result.notes.append(f"left out {unresolved} open ticket{'s' if unresolved != 1 else ''} (--resolved-only)")
    orphans = sum(len(m) for tid, m in dump.messages.items() if tid not in dump.tickets)
    if orphans:
        result.notes.append(f"ignored {orphans} message{'s' if orphans != 1 else ''} of tickets not in the dump")
    if not result.tickets:
        names = ", ".join(str(p) for p in paths)
        if dump.tickets and unresolved + trashed == len(dump.tickets):
            why = "no ticket is closed (--resolved-only)" if unresolved else "every ticket is trashed or spam"
        elif not dump.tickets:
            why = result.problems[0] if result.problems else \
                "no tickets found: pass GET /api/tickets pages or ticket objects, not only messages"
        else:
            why = result.problems[0] if result.problems else "no usable ticket"
        raise InputError(f"no usable ticket in {names} ({why})")
    return result


@click.command("gorgias")
@click.argument("dumps", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", required=True, help="The ticket JSONL to write ('-' for stdout).")
@click.option("--resolved-only", is_flag=True,
              help="Keep closed tickets only (for a --history file). With --from-api, only their messages are "
                   "fetched.")
@click.option("--domain", default=None,
              help="The account (acme for acme.gorgias.com), to give each ticket its link. With --from-api, "
                   "GORGIAS_DOMAIN unless given.")
@from_api_options("Gorgias", "GORGIAS_DOMAIN, GORGIAS_EMAIL and GORGIAS_API_KEY, and GORGIAS_API_URL if set",
                  "gorgias-dump", "messages")
@click.pass_context
def command(ctx: click.Context, dumps: tuple[Path, ...], out: str, resolved_only: bool, domain: str | None,
            from_api: bool, since: float | None, dump_dir: Path, limit: int | None) -> None:
    """Convert Gorgias API dumps (files or folders) into ticket JSONL, or fetch the dump first (--from-api).

    \b
    Fetch and convert in one go (re-run the same command to resume an interrupted export):
      python -m bot import gorgias --from-api --since 90d --out tickets.jsonl
    \b
    Each file holds JSON as the API returns it (.json: one document or an array of them;
    .jsonl/.ndjson: one a line); folders are read recursively:
      {"data": [...], "meta": {...}}   GET /api/tickets, GET /api/messages pages
      {"id": ..., "messages": [...]}   GET /api/tickets/ID (a ticket with its messages)
      {"id": ..., "ticket_id": ...}    one message
    \b
    Trashed and spam tickets are left out; a ticket seen several times counts once, in its
    latest version. Closed tickets get a resolution: the last public agent reply is the answer
    (answer_id macro-ID when the message records the macro, else null), and the thread stops
    before it (the question as it stood when a person answered it)."""
    def say(line: str) -> None:
        click.echo(line, err=True)

    dumps, exported = dumps_to_read(ctx, dumps, helpdesk="Gorgias", export="bot.helpdesk.gorgias.export",
                                    from_api=from_api, since=since, dump_dir=dump_dir,
                                    resolved_only=resolved_only, limit=limit, say=say)
    if exported is not None:
        # The ticket links a person opens: the account the tickets came from.
        domain = domain or os.environ.get("GORGIAS_DOMAIN")
    result = import_gorgias(dumps, resolved_only=resolved_only, domain=bare_domain(domain))
    result.tickets = keep_fetched(result.tickets, result.notes, exported, limit)
    write_result(result, out, say=say)
