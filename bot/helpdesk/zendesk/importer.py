"""`python -m bot import zendesk`: Zendesk API dumps as the contract's ticket JSONL, for simulation.

Every ticket written is checked with `Ticket.from_dict` first (bot.offline.importers). Bad records are
reported (`FILE record N: why`) and skipped; an input with no usable ticket at all raises `InputError`.

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

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from bot.errors import InputError
from bot.helpdesk.export import dumps_to_read, from_api_options, keep_fetched
from bot.offline.importers import (
    ImportResult,
    checked,
    clean_id,
    compact,
    documents,
    dump_files,
    id_from_name,
    number,
    opt_str,
    write_result,
)

RESOLVED = ("solved", "closed")


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
        ticket_id = clean_id(raw.get("id"))
        if ticket_id is None:
            self.problems.append(f"{where}: ticket has no id")
            return
        # The export returns a ticket again each time it changes: the latest version wins.
        key = (str(raw.get("updated_at") or ""), number(raw.get("generated_timestamp")), self._next())
        current = self.tickets.get(ticket_id)
        if current is None or key >= current.key:
            self.tickets[ticket_id] = _TicketVersion(raw=raw, where=where, key=key)

    def add_comment(self, raw: Any, where: str, *, ticket_id: str | None, created_at: Any = None,
                    author_id: Any = None) -> None:
        if not isinstance(raw, dict):
            self.problems.append(f"{where}: a comment must be a JSON object")
            return
        ticket_id = clean_id(raw.get("ticket_id")) or ticket_id
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
            ticket_id=ticket_id, author_id=clean_id(raw.get("author_id")) or clean_id(author_id), body=body,
            public=raw.get("public", True) is not False, created_at=opt_str(raw.get("created_at") or created_at),
            id=clean_id(raw.get("id")), order=self._next()))

    def add_users(self, users: Any) -> None:
        for user in users if isinstance(users, list) else []:
            if isinstance(user, dict) and clean_id(user.get("id")) is not None:
                self.users[clean_id(user["id"])] = user


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


def read_zendesk(paths: Iterable[str | Path]) -> _Dump:
    dump = _Dump()
    for path, name in dump_files(paths):
        record = 0
        for document in documents(path, name, dump.problems):
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
                ticket_id = clean_id(document.get("ticket_id")) or id_from_name(path)
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
                    ticket_id = clean_id(event.get("ticket_id"))
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
    requester_id = clean_id(raw.get("requester_id"))
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
        messages.insert(0, {"author": "customer", "body": description, "created_at": opt_str(raw.get("created_at")),
                            "public": True})

    status = opt_str(raw.get("status"))
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
    ticket: dict = {"id": ticket_id, "subject": subject, "messages": [compact(m) for m in messages]}
    who = {k: requester.get(k) for k in ("name", "email") if isinstance(requester.get(k), str)}
    if who:
        ticket["requester"] = who
    ticket.update({"tags": tags, "priority": opt_str(raw.get("priority")), "status": status,
                   "created_at": opt_str(raw.get("created_at")), "sla_due_at": opt_str(raw.get("due_at"))})
    link = _agent_link(raw.get("url"), ticket_id)
    if link:
        ticket["url"] = link
    if resolution is not None:
        ticket["resolution"] = resolution
    if not subject.strip() and not any(m["author"] == "customer" and m["body"].strip() for m in messages):
        raise ValueError(f"ticket {ticket_id} has no subject and no customer message")
    return checked({k: v for k, v in ticket.items() if v is not None})


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




@click.command("zendesk")
@click.argument("dumps", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", required=True, help="The ticket JSONL to write ('-' for stdout).")
@click.option("--resolved-only", is_flag=True,
              help="Keep solved and closed tickets only (for a --history file). With --from-api, only their "
                   "comments are fetched.")
@click.option("--answer-tag-prefix", default="macro_", show_default=True,
              help="A tag with this prefix names the macro that resolved the ticket: tag macro_refund_status gives "
                   "resolution.answer_id refund_status. Without one, answer_id is null (a person answered in "
                   "their own words). '' turns this off.")
@from_api_options("Zendesk", "ZENDESK_SUBDOMAIN, ZENDESK_EMAIL and ZENDESK_API_TOKEN", "zendesk-dump", "comments")
@click.pass_context
def command(ctx: click.Context, dumps: tuple[Path, ...], out: str, resolved_only: bool, answer_tag_prefix: str,
            from_api: bool, since: float | None, dump_dir: Path, limit: int | None) -> None:
    """Convert Zendesk API dumps (files or folders) into ticket JSONL, or fetch the dump first (--from-api).

    \b
    Fetch and convert in one go (re-run the same command to resume an interrupted export):
      python -m bot import zendesk --from-api --since 90d --out tickets.jsonl
    \b
    Each file holds JSON pages as the API returns them (.json: one page or an array of
    pages; .jsonl/.ndjson: one page a line); folders are read recursively:
      {"tickets": [...]}        GET /api/v2/incremental/tickets/cursor.json pages (sideloaded users too)
      {"comments": [...]}       GET /api/v2/tickets/ID/comments.json; the ticket id comes from
                                "ticket_id" in the page or the last number of the file name,
                                e.g. comments/123.json
      {"ticket_events": [...]}  GET /api/v2/incremental/ticket_events.json?include=comment_events
      {"users": [...]}          users, to name requesters and tell customers from agents
    \b
    Deleted tickets are left out; a ticket on several pages counts once, in its latest version.
    Solved and closed tickets get a resolution: the last public agent reply is the answer, and
    the thread stops before it (the question as it stood when a person answered it)."""
    def say(line: str) -> None:
        click.echo(line, err=True)

    dumps, exported = dumps_to_read(ctx, dumps, helpdesk="Zendesk", export="bot.helpdesk.zendesk.export",
                                    from_api=from_api, since=since, dump_dir=dump_dir,
                                    resolved_only=resolved_only, limit=limit, say=say)
    result = import_zendesk(dumps, resolved_only=resolved_only, answer_tag_prefix=answer_tag_prefix)
    result.tickets = keep_fetched(result.tickets, result.notes, exported, limit)
    write_result(result, out, say=say)
