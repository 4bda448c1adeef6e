"""`python -m bot import freshdesk`: Freshdesk API v2 dumps as the contract's ticket JSONL, for simulation.

Every ticket written is checked with `Ticket.from_dict` first (bot.offline.importers). Bad records are reported
(`FILE record N: why`) and skipped; an input with no usable ticket at all raises `InputError`.

**Freshdesk dumps.** Each DUMP is a file or a folder (searched recursively for `*.json`, `*.jsonl`, `*.ndjson`).
A `.json` file holds one response body (or an array, as list endpoints answer); a `.jsonl`/`.ndjson` file holds
one per line. Freshdesk list endpoints answer with a bare JSON array, so every object is recognised by its keys
(https://developers.freshdesk.com/api/):

- a ticket — `GET /api/v2/tickets` pages (`include=requester,description` welcome), `GET /api/v2/tickets/{id}` (with
  `include=conversations,requester` its first conversations come along), or a `{"results": [...]}` page of
  `GET /api/v2/search/tickets`: an object with `requester_id` and `status`. A ticket seen several times counts
  once, in its latest version (`updated_at`).
- a conversation — `GET /api/v2/tickets/{id}/conversations` pages: an object with `ticket_id` and `body` or
  `body_text` (a file name's last number stands in for a missing `ticket_id`).
- an agent — `GET /api/v2/agents` pages: an object with a `contact`; a contact — `GET /api/v2/contacts` pages: an
  object with `email` and `name`, to name requesters.

The ticket's `description` is its first message (the customer's; an agent's for outbound emails, source 10).
A conversation that is `incoming` or written by the requester is the customer's; any other is an agent's.
Resolved (4) and closed (5) tickets get a resolution: the last public agent reply, and the thread before it.

With `--from-api` the command first fetches such a dump from the Freshdesk API (export.py), then converts it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from bot.errors import InputError
from bot.helpdesk.export import dumps_to_read, from_api_options, keep_fetched
from bot.helpdesk.freshdesk.settings import (
    OUTBOUND_EMAIL,
    RESOLVED_CODES,
    FreshdeskSettings,
    priority_word,
    sla_due,
    status_word,
)
from bot.offline.importers import (
    ImportResult,
    checked,
    clean_id,
    compact,
    documents,
    dump_files,
    id_from_name,
    opt_str,
    write_result,
)
from bot.text import html_to_text


@dataclass
class _Conversation:
    ticket_id: str
    raw: dict
    order: int


@dataclass
class _TicketVersion:
    raw: dict
    where: str  # "FILE record N", for problems found later
    key: tuple


def _text(item: dict, html_key: str, text_key: str) -> str | None:
    """HTML read with Seam's reader when present, else Freshdesk's plain text; None when the item has neither."""
    if isinstance(item.get(html_key), str) and item[html_key].strip():
        return html_to_text(item[html_key])
    if isinstance(item.get(text_key), str):
        return item[text_key].strip()
    return None


class _Dump:
    """Everything read from the DUMP files, before tickets are assembled."""

    def __init__(self) -> None:
        self.tickets: dict[str, _TicketVersion] = {}
        self.conversations: dict[str, dict[Any, _Conversation]] = {}
        self.contacts: dict[str, dict] = {}
        self.agents: set[str] = set()
        self.problems: list[str] = []
        self.seen = 0
        self.order = 0

    def _next(self) -> int:
        self.order += 1
        return self.order

    def add_ticket(self, raw: dict, where: str) -> None:
        self.seen += 1
        ticket_id = clean_id(raw.get("id"))
        if ticket_id is None:
            self.problems.append(f"{where}: ticket has no id")
            return
        if isinstance(raw.get("requester"), dict) and clean_id(raw.get("requester_id")):
            self.contacts.setdefault(clean_id(raw["requester_id"]), raw["requester"])
        for conversation in raw.get("conversations") or []:
            self.add_conversation(conversation, where, ticket_id=ticket_id)
        key = (str(raw.get("updated_at") or ""), self._next())
        current = self.tickets.get(ticket_id)
        if current is None or key >= current.key:
            self.tickets[ticket_id] = _TicketVersion(raw=raw, where=where, key=key)

    def add_conversation(self, raw: Any, where: str, *, ticket_id: str | None) -> None:
        if not isinstance(raw, dict):
            self.problems.append(f"{where}: a conversation must be a JSON object")
            return
        ticket_id = clean_id(raw.get("ticket_id")) or ticket_id
        if ticket_id is None:
            self.problems.append(f"{where}: conversation without a ticket_id")
            return
        if _text(raw, "body", "body_text") is None:
            self.problems.append(f"{where}: conversation has no body")
            return
        # The same conversation from two files (a page and an include=conversations ticket) counts once.
        key = clean_id(raw.get("id")) or (raw.get("created_at"), raw.get("user_id"), raw.get("body_text"))
        self.conversations.setdefault(ticket_id, {}).setdefault(key, _Conversation(ticket_id, raw, self._next()))


def read_freshdesk(paths: Iterable[str | Path]) -> _Dump:
    dump = _Dump()
    for path, name in dump_files(paths):
        record = 0
        for document in documents(path, name, dump.problems):
            items = document.get("results") if isinstance(document, dict) and "results" in document else [document]
            for item in items if isinstance(items, list) else [items]:
                record += 1
                where = f"{name} record {record}"
                if not isinstance(item, dict):
                    dump.problems.append(f"{where}: not a JSON object")
                elif "requester_id" in item and "status" in item and "ticket_id" not in item:
                    dump.add_ticket(item, where)
                elif "ticket_id" in item and ("body" in item or "body_text" in item):
                    dump.add_conversation(item, where, ticket_id=id_from_name(path))
                elif isinstance(item.get("contact"), dict) and clean_id(item.get("id")):
                    dump.agents.add(clean_id(item["id"]))
                    dump.contacts[clean_id(item["id"])] = item["contact"]
                elif "email" in item and "name" in item and clean_id(item.get("id")):
                    dump.contacts[clean_id(item["id"])] = item
                else:
                    keys = ", ".join(sorted(str(k) for k in item)[:6]) or "none"
                    dump.problems.append(f"{where}: not a Freshdesk ticket, conversation, agent or contact "
                                         f"(keys: {keys})")
    return dump


def _answer_id(tags: list[str], prefix: str) -> str | None:
    if not prefix:
        return None
    return next((t[len(prefix):] for t in tags if t.startswith(prefix) and len(t) > len(prefix)), None)


def freshdesk_ticket(raw: dict, conversations: list[_Conversation], contacts: dict[str, dict], *,
                     answer_tag_prefix: str, agent_url: str | None) -> dict:
    """One Freshdesk ticket (and its conversations) as a contract ticket dict; ValueError when it is unusable."""
    ticket_id = str(raw["id"]).strip()
    requester_id = clean_id(raw.get("requester_id"))
    subject = raw.get("subject") or ""
    if not isinstance(subject, str):
        raise ValueError("'subject' must be a string")
    tags = raw.get("tags") or []
    if not isinstance(tags, list):
        raise ValueError("'tags' must be a list")
    tags = [str(t) for t in tags if isinstance(t, str | int) and not isinstance(t, bool) and str(t).strip()]

    messages: list[dict] = []
    opening = _text(raw, "description", "description_text")
    if opening:
        messages.append({"author": "agent" if raw.get("source") == OUTBOUND_EMAIL else "customer", "body": opening,
                         "created_at": opt_str(raw.get("created_at")), "id": "description", "public": True})
    for conversation in sorted(conversations, key=lambda c: (str(c.raw.get("created_at") or ""), c.order)):
        item = conversation.raw
        body = _text(item, "body", "body_text") or ""
        if not body:
            continue
        customer = bool(item.get("incoming")) or clean_id(item.get("user_id")) == requester_id
        messages.append({"author": "customer" if customer else "agent", "body": body,
                         "created_at": opt_str(item.get("created_at")), "id": clean_id(item.get("id")),
                         "public": not item.get("private", False)})

    resolution = None
    if raw.get("status") in RESOLVED_CODES:
        answered = [i for i, m in enumerate(messages) if m["author"] == "agent" and m["public"]]
        answer = None
        if answered:
            # The thread as it stood when a person answered: replaying it asks Seam the same question.
            answer = messages[answered[-1]]["body"]
            messages = messages[:answered[-1]]
        resolution = {"answer_id": _answer_id(tags, answer_tag_prefix), "answer": answer}

    requester = raw.get("requester") if isinstance(raw.get("requester"), dict) else contacts.get(requester_id or "", {})
    ticket: dict = {"id": ticket_id, "subject": subject, "messages": [compact(m) for m in messages]}
    who = {k: requester.get(k) for k in ("name", "email") if isinstance(requester.get(k), str)}
    if who:
        ticket["requester"] = who
    replied = any(m["author"] == "agent" and m["public"] for m in messages)
    ticket.update({"tags": tags, "priority": priority_word(raw.get("priority")),
                   "status": status_word(raw.get("status")), "created_at": opt_str(raw.get("created_at")),
                   "sla_due_at": sla_due(raw, answered=replied)})
    if agent_url:
        ticket["url"] = f"{agent_url}/a/tickets/{ticket_id}"
    if resolution is not None:
        ticket["resolution"] = resolution
    if not subject.strip() and not any(m["author"] == "customer" and m["body"].strip() for m in messages):
        raise ValueError(f"ticket {ticket_id} has no subject and no customer message")
    return checked({k: v for k, v in ticket.items() if v is not None})


def import_freshdesk(paths: Iterable[str | Path], *, resolved_only: bool = False, answer_tag_prefix: str = "",
                     domain: str | None = None) -> ImportResult:
    """Freshdesk API dumps (see the module docstring) as contract tickets, oldest first."""
    paths = list(paths)
    dump = read_freshdesk(paths)
    agent_url = FreshdeskSettings(domain=domain).agent_url if domain else None
    result = ImportResult(tickets=[], problems=dump.problems)
    gone = unresolved = 0
    for ticket_id, version in dump.tickets.items():
        if version.raw.get("deleted") or version.raw.get("spam"):
            gone += 1
            continue
        if resolved_only and version.raw.get("status") not in RESOLVED_CODES:
            unresolved += 1
            continue
        try:
            ticket = freshdesk_ticket(version.raw, list(dump.conversations.get(ticket_id, {}).values()),
                                      dump.contacts, answer_tag_prefix=answer_tag_prefix, agent_url=agent_url)
        except ValueError as exc:
            result.problems.append(f"{version.where}: {exc}")
            continue
        result.tickets.append(ticket)
    result.tickets.sort(key=lambda t: (t.get("created_at") or "", _sortable_id(t["id"])))
    if gone:
        result.notes.append(f"left out {gone} deleted or spam ticket{'s' if gone != 1 else ''}")
    if unresolved:
        result.notes.append(f"left out {unresolved} unresolved ticket{'s' if unresolved != 1 else ''} "
                            f"(--resolved-only)")
    orphans = sum(len(c) for tid, c in dump.conversations.items() if tid not in dump.tickets)
    if orphans:
        result.notes.append(f"ignored {orphans} conversation{'s' if orphans != 1 else ''} of tickets not in the dump")
    if not result.tickets:
        names = ", ".join(str(p) for p in paths)
        if dump.tickets and gone + unresolved == len(dump.tickets):
            why = "every ticket is deleted or spam" if not unresolved else \
                "no ticket is resolved or closed (--resolved-only)"
        elif not dump.seen:
            why = result.problems[0] if result.problems else \
                "no tickets found: pass the tickets pages, not only conversations, agents or contacts"
        else:
            why = result.problems[0] if result.problems else "no usable ticket"
        raise InputError(f"no usable ticket in {names} ({why})")
    return result


def _sortable_id(ticket_id: str) -> tuple:
    return (0, int(ticket_id), "") if ticket_id.isdigit() else (1, 0, ticket_id)


_DOMAIN = re.compile(r"^[A-Za-z0-9.-]+$")


@click.command("freshdesk")
@click.argument("dumps", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", required=True, help="The ticket JSONL to write ('-' for stdout).")
@click.option("--resolved-only", is_flag=True,
              help="Keep resolved and closed tickets only (for a --history file). With --from-api, only their "
                   "conversations are fetched.")
@click.option("--answer-tag-prefix", default="", show_default=True,
              help="A tag with this prefix names the canned response that resolved the ticket: with 'canned_', "
                   "tag canned_refund gives resolution.answer_id refund. Freshdesk records no such link itself, "
                   "so by default answer_id is null.")
@click.option("--domain", default=None,
              help="Your Freshdesk domain (acme or acme.freshdesk.com), to give each ticket its agent link. With "
                   "--from-api, FRESHDESK_DOMAIN unless given.")
@from_api_options("Freshdesk", "FRESHDESK_DOMAIN and FRESHDESK_API_KEY", "freshdesk-dump", "conversations")
@click.pass_context
def command(ctx: click.Context, dumps: tuple[Path, ...], out: str, resolved_only: bool, answer_tag_prefix: str,
            domain: str | None, from_api: bool, since: float | None, dump_dir: Path, limit: int | None) -> None:
    """Convert Freshdesk API v2 dumps (files or folders) into ticket JSONL, or fetch the dump first (--from-api).

    \b
    Fetch and convert in one go (re-run the same command to resume an interrupted export):
      python -m bot import freshdesk --from-api --since 90d --out tickets.jsonl
    \b
    Each file holds responses as the API returns them (.json: one response, often an
    array; .jsonl/.ndjson: one a line); folders are read recursively:
      tickets        GET /api/v2/tickets pages (include=requester,description welcome),
                     GET /api/v2/tickets/ID
      conversations  GET /api/v2/tickets/ID/conversations pages
      agents         GET /api/v2/agents pages; contacts: GET /api/v2/contacts pages
    \b
    Deleted and spam tickets are left out; a ticket on several pages counts once, in its
    latest version. Resolved and closed tickets get a resolution: the last public agent
    reply is the answer, and the thread stops before it."""
    def say(line: str) -> None:
        click.echo(line, err=True)

    if domain is not None and not _DOMAIN.match(domain.strip()):
        raise click.BadParameter("a domain like acme or acme.freshdesk.com", param_hint="--domain")
    dumps, exported = dumps_to_read(ctx, dumps, helpdesk="Freshdesk", export="bot.helpdesk.freshdesk.export",
                                    from_api=from_api, since=since, dump_dir=dump_dir,
                                    resolved_only=resolved_only, limit=limit, say=say)
    if exported is not None:
        # The agent links a person opens: the helpdesk the tickets came from.
        domain = domain or (os.environ.get("FRESHDESK_DOMAIN") or "").strip() or None
    result = import_freshdesk(dumps, resolved_only=resolved_only, answer_tag_prefix=answer_tag_prefix,
                              domain=domain)
    result.tickets = keep_fetched(result.tickets, result.notes, exported, limit)
    write_result(result, out, say=say)
