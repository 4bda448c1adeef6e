"""`python -m bot import helpscout`: Help Scout Mailbox API 2.0 dumps as the contract's ticket JSONL, for
simulation.

Every ticket written is checked with `Ticket.from_dict` first (bot.offline.importers). Bad records are reported
(`FILE record N: why`) and skipped; an input with no usable ticket at all raises `InputError`.

**Help Scout dumps.** Each DUMP is a file or a folder (searched recursively for `*.json`, `*.jsonl`, `*.ndjson`).
A `.json` file holds one JSON document (or an array of them); a `.jsonl`/`.ndjson` file holds one per line. Each
document is recognised by its shape, whichever endpoint it came from:

- `{"_embedded": {"conversations": [...]}, "page": {...}}` — a page of `GET /v2/conversations?status=all`
  (https://developer.helpscout.com/mailbox-api/endpoints/conversations/list/), with `embed=threads` or without;
- a conversation object (`id`, `subject`, `primaryCustomer`, …) — `GET /v2/conversations/{id}[?embed=threads]`
  (https://developer.helpscout.com/mailbox-api/endpoints/conversations/get/);
- `{"_embedded": {"threads": [...]}}` — a page of `GET /v2/conversations/{id}/threads`
  (https://developer.helpscout.com/mailbox-api/endpoints/conversations/threads/list/). The conversation is the
  one its `_links.self.href` names, else a `conversationId` beside `_embedded`, else the last number in the file
  name (`threads/123.json`, `123-threads.json`);
- `{"_embedded": {"users": [...]}}` — read and ignored (threads name their authors themselves).

A conversation seen on several pages counts once, in its newest version; a thread seen twice counts once.
Customer threads are the customer's; replies and notes by users are agents' (notes private); line items, forward
records and drafts are not messages. Spam, draft and deleted conversations are left out.

With `--from-api` the command first fetches such a dump from the Help Scout API (export.py), then converts it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from bot.errors import InputError
from bot.helpdesk.export import dumps_to_read, from_api_options, keep_fetched
from bot.helpdesk.helpscout.settings import AGENT_URL, LEFT_OUT_STATES, PRIORITY_FIELD, RESOLVED
from bot.helpdesk.helpscout.shapes import (
    clean_id,
    custom_field,
    newest_time,
    oldest_first,
    person_name,
    tag_names,
    thread_message,
)
from bot.offline.importers import (
    ImportResult,
    checked,
    compact,
    documents,
    dump_files,
    id_from_name,
    opt_str,
    write_result,
)

NO_THREADS = "conversation(s) had no threads in the dump"
_THREADS_LINK = re.compile(r"/conversations/(\d{1,20})/threads")


@dataclass
class _Version:
    raw: dict
    where: str  # "FILE record N", for problems found later
    key: tuple


class _Dump:
    """Everything read from the DUMP files, before tickets are assembled."""

    def __init__(self) -> None:
        self.conversations: dict[str, _Version] = {}
        self.threads: dict[str, dict[str, dict]] = {}  # conversation id → thread id → thread
        self.problems: list[str] = []
        self.seen = 0
        self.order = 0

    def add_conversation(self, raw: Any, where: str) -> None:
        self.seen += 1
        if not isinstance(raw, dict):
            self.problems.append(f"{where}: a conversation must be a JSON object")
            return
        conversation_id = clean_id(raw.get("id"))
        if conversation_id is None:
            self.problems.append(f"{where}: conversation has no id")
            return
        self.order += 1
        moment = newest_time(raw)
        key = (moment.timestamp() if moment else 0.0, self.order)
        current = self.conversations.get(conversation_id)
        if current is None or key >= current.key:
            self.conversations[conversation_id] = _Version(raw=raw, where=where, key=key)
        self.add_threads((raw.get("_embedded") or {}).get("threads") if isinstance(raw.get("_embedded"), dict)
                         else None, where, conversation_id=conversation_id)

    def add_threads(self, threads: Any, where: str, *, conversation_id: str | None) -> None:
        if threads is None:
            return
        if not isinstance(threads, list):
            self.problems.append(f"{where}: `threads` must be a list")
            return
        if conversation_id is None:
            self.problems.append(f"{where}: threads without a conversation id (name the file threads/ID.json or "
                                 f"keep the page's _links.self)")
            return
        known = self.threads.setdefault(conversation_id, {})
        for thread in threads:
            if isinstance(thread, dict):
                key = clean_id(thread.get("id")) or f"#{len(known)}"
                known.setdefault(key, thread)


def read_helpscout(paths: Iterable[str | Path]) -> _Dump:
    dump = _Dump()
    for path, name in dump_files(paths):
        record = 0
        for document in documents(path, name, dump.problems):
            record += 1
            where = f"{name} record {record}"
            if not isinstance(document, dict):
                dump.problems.append(f"{where}: not a JSON object")
                continue
            embedded = document.get("_embedded") if isinstance(document.get("_embedded"), dict) else {}
            if isinstance(embedded.get("conversations"), list):
                for index, raw in enumerate(embedded["conversations"], start=1):
                    dump.add_conversation(raw, f"{where} conversation {index}")
            elif "threads" in embedded and "id" not in document:
                link = ((document.get("_links") or {}).get("self") or {}).get("href") if isinstance(
                    document.get("_links"), dict) else None
                found = _THREADS_LINK.search(link) if isinstance(link, str) else None
                conversation_id = (found.group(1) if found else None) or clean_id(document.get("conversationId")) \
                    or id_from_name(path)
                dump.add_threads(embedded["threads"], where, conversation_id=conversation_id)
            elif "id" in document and ("subject" in document or "primaryCustomer" in document):
                dump.add_conversation(document, where)
            elif not isinstance(embedded.get("users"), list):
                keys = ", ".join(sorted(str(k) for k in document)[:6]) or "none"
                dump.problems.append(f"{where}: not a Help Scout export page (no conversations, threads or "
                                     f"users; keys: {keys})")
    return dump


def helpscout_ticket(raw: dict, threads: list[dict]) -> dict:
    """One Help Scout conversation (and its threads) as a contract ticket dict; ValueError when it is unusable."""
    conversation_id = clean_id(raw["id"]) or str(raw["id"])
    subject = raw.get("subject") or ""
    if not isinstance(subject, str):
        raise ValueError("'subject' must be a string")
    messages: list[dict] = []
    saved_replies: list[str | None] = []
    for thread in oldest_first(threads):
        message = thread_message(thread, me_id=None)
        if message is None or not message.body.strip():
            continue
        messages.append({"author": message.author, "body": message.body, "created_at": message.created_at,
                         "id": message.id, "public": message.public})
        saved_replies.append(clean_id(thread.get("savedReplyId")))

    status = opt_str(raw.get("status"))
    resolution = None
    if status == RESOLVED:
        answered = [i for i, m in enumerate(messages) if m["author"] == "agent" and m["public"]]
        answer = answer_id = None
        if answered:
            # The thread as it stood when a person answered: replaying it asks Seam the same question. A saved
            # reply's id names the answer the way knowledge() names saved replies.
            last = answered[-1]
            answer = messages[last]["body"]
            answer_id = f"macro-{saved_replies[last]}" if saved_replies[last] else None
            messages = messages[:last]
        resolution = {"answer_id": answer_id, "answer": answer}

    customer = raw.get("primaryCustomer") if isinstance(raw.get("primaryCustomer"), dict) else {}
    ticket: dict = {"id": conversation_id, "subject": subject, "messages": [compact(m) for m in messages]}
    who = {"name": person_name(customer), "email": customer.get("email")}
    who = {k: v for k, v in who.items() if isinstance(v, str) and v}
    if who:
        ticket["requester"] = who
    priority = custom_field(raw.get("customFields"), PRIORITY_FIELD)
    ticket.update({"tags": list(tag_names(raw.get("tags"))), "priority": priority.lower() if priority else None,
                   "status": status, "created_at": opt_str(raw.get("createdAt")),
                   "url": f"{AGENT_URL}/conversation/{conversation_id}"})
    if resolution is not None:
        ticket["resolution"] = resolution
    if not subject.strip() and not any(m["author"] == "customer" and m["body"].strip() for m in messages):
        raise ValueError(f"conversation {conversation_id} has no subject and no customer message")
    return checked({k: v for k, v in ticket.items() if v is not None})


def import_helpscout(paths: Iterable[str | Path], *, resolved_only: bool = False) -> ImportResult:
    """Help Scout API dumps (see the module docstring) as contract tickets, oldest first."""
    paths = list(paths)
    dump = read_helpscout(paths)
    result = ImportResult(tickets=[], problems=dump.problems)
    left_out = {"spam": 0, "draft or deleted": 0, "unresolved": 0, "without threads": 0}
    for conversation_id, version in dump.conversations.items():
        raw = version.raw
        if raw.get("status") == "spam":
            left_out["spam"] += 1
            continue
        if raw.get("state") in LEFT_OUT_STATES:
            left_out["draft or deleted"] += 1
            continue
        if resolved_only and raw.get("status") != RESOLVED:
            left_out["unresolved"] += 1
            continue
        threads = list(dump.threads.get(conversation_id, {}).values())
        left_out["without threads"] += not threads
        try:
            result.tickets.append(helpscout_ticket(raw, threads))
        except ValueError as exc:
            result.problems.append(f"{version.where}: {exc}")
    result.tickets.sort(key=lambda t: (t.get("created_at") or "", int(t["id"]) if t["id"].isdigit() else 0))
    notes = {"spam": "spam conversation{s}", "draft or deleted": "draft or deleted conversation{s}",
             "unresolved": "conversation{s} not closed (--resolved-only)"}
    for what, count in left_out.items():
        if count and what in notes:
            result.notes.append(f"left out {count} {notes[what].format(s='s' if count != 1 else '')}")
    if left_out["without threads"]:
        result.notes.append(f"{left_out['without threads']} {NO_THREADS}: export with embed=threads or add the "
                            "threads pages")
    orphans = sum(len(t) for cid, t in dump.threads.items() if cid not in dump.conversations)
    if orphans:
        result.notes.append(f"ignored {orphans} thread{'s' if orphans != 1 else ''} of conversations not in the dump")
    if not result.tickets:
        names = ", ".join(str(p) for p in paths)
        if not dump.seen:
            why = result.problems[0] if result.problems else \
                "no conversations found: pass the conversations pages, not only threads"
        elif dump.conversations and not result.problems:
            why = "every conversation was left out (spam, draft, deleted, or not closed with --resolved-only)"
        else:
            why = result.problems[0] if result.problems else "no usable conversation"
        raise InputError(f"no usable ticket in {names} ({why})")
    return result


@click.command("helpscout")
@click.argument("dumps", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", required=True, help="The ticket JSONL to write ('-' for stdout).")
@click.option("--resolved-only", is_flag=True,
              help="Keep closed conversations only (for a --history file). With --from-api, only their threads "
                   "are fetched.")
@from_api_options("Help Scout", "HELPSCOUT_APP_ID and HELPSCOUT_APP_SECRET", "helpscout-dump", "threads")
@click.pass_context
def command(ctx: click.Context, dumps: tuple[Path, ...], out: str, resolved_only: bool, from_api: bool,
            since: float | None, dump_dir: Path, limit: int | None) -> None:
    """Convert Help Scout Mailbox API dumps (files or folders) into ticket JSONL, or fetch the dump first
    (--from-api).

    \b
    Fetch and convert in one go (re-run the same command to resume an interrupted export):
      python -m bot import helpscout --from-api --since 90d --out tickets.jsonl
    \b
    Each file holds JSON pages as the API returns them (.json: one page or an array of
    pages; .jsonl/.ndjson: one page a line); folders are read recursively:
      {"_embedded": {"conversations": [...]}}  GET /v2/conversations?status=all&embed=threads
      {"id": ..., "subject": ...}              GET /v2/conversations/ID?embed=threads
      {"_embedded": {"threads": [...]}}        GET /v2/conversations/ID/threads; the id comes from
                                               the page's _links.self or the file name (threads/123.json)
    \b
    Spam, draft and deleted conversations are left out; a conversation on several pages counts
    once, in its newest version. Closed conversations get a resolution: the last public reply by
    a user is the answer (answer_id macro-<savedReplyId> when it was a saved reply), and the
    thread stops before it (the question as it stood when a person answered it)."""
    def say(line: str) -> None:
        click.echo(line, err=True)

    dumps, exported = dumps_to_read(ctx, dumps, helpdesk="Help Scout", export="bot.helpdesk.helpscout.export",
                                    from_api=from_api, since=since, dump_dir=dump_dir,
                                    resolved_only=resolved_only, limit=limit, say=say)
    result = import_helpscout(dumps, resolved_only=resolved_only)
    if exported is not None and exported.beyond_limit:
        # Those are the conversations --limit left unfetched: keep_fetched says so and leaves them out.
        result.notes = [note for note in result.notes if NO_THREADS not in note]
    result.tickets = keep_fetched(result.tickets, result.notes, exported, limit)
    write_result(result, out, say=say)
