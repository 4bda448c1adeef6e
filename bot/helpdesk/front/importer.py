"""`python -m bot import front`: Front API dumps as the contract's ticket JSONL, for simulation.

Every ticket written is checked with `Ticket.from_dict` first (bot.offline.importers). Bad records are reported
(`FILE record N: why`) and skipped; an input with no usable conversation at all raises `InputError`.

**Front dumps.** Each DUMP is a file or a folder (searched recursively for `*.json`, `*.jsonl`, `*.ndjson`); a
`.json` file holds one page (or an array of pages), a `.jsonl`/`.ndjson` file one page a line. Pages are what the
Core API returns (https://dev.frontapp.com/reference, shapes from core-api.json): `{"_results": [...]}` listings,
each item recognised by its id:

- `cnv_…` — conversations, from GET /conversations, /conversations/search/{query} or /inboxes/{id}/conversations;
  a single GET /conversations/{id} answer works too. A conversation on several pages counts once (the last read).
- `msg_…` — messages, from GET /conversations/{id}/messages. The conversation is the message's
  `_links.related.conversation`, else the page's `_links.self`, else a `cnv_…` in the file name.
- `com_…` — comments (internal notes), from GET /conversations/{id}/comments, found the same way.
- `rsp_…` — message templates, from GET /message_templates: a resolution whose answer is a template's text gets
  `answer_id` `macro-<id>`, the id `knowledge()` gives that template.

Inbound messages are the customer's; outbound ones an agent's, or the bot's when no person wrote them (no teammate
author, or a teammate of a bot type). Comments are private. Drafts are left out, and so are deleted conversations.
An archived conversation (or one whose ticket status is resolved) is resolved: its last outbound message is the
answer, and the thread stops before it — the question as it stood when someone answered it.

With `--from-api` the command first fetches such a dump from the Front API (export.py), then converts it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from bot.errors import InputError
from bot.helpdesk.export import dumps_to_read, from_api_options, keep_fetched
from bot.helpdesk.front.adapter import when
from bot.helpdesk.front.settings import APP_URL, resolved
from bot.offline.importers import ImportResult, checked, compact, documents, dump_files, opt_str, write_result
from bot.text import html_to_text

_CONVERSATION = re.compile(r"cnv_[0-9A-Za-z]+")
_OTHER_RESOURCES = ("evt_", "tea_", "tag_", "inb_", "cha_", "crd_", "tim_", "fil_", "knb_", "kba_", "rsf_")


@dataclass
class _Entry:
    conversation_id: str
    when: float
    order: int
    message: dict


@dataclass
class _Dump:
    """Everything read from the DUMP files, before tickets are assembled."""

    conversations: dict[str, tuple[dict, str]] = field(default_factory=dict)  # id → (raw, "FILE record N")
    entries: dict[str, dict[str, _Entry]] = field(default_factory=dict)  # conversation → message id → entry
    templates: dict[str, str] = field(default_factory=dict)  # normalised text → template id
    problems: list[str] = field(default_factory=list)
    ignored: int = 0  # other Front resources (events, teammates, tags…): nothing to import from them
    order: int = 0


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def _link_id(link: Any) -> str | None:
    found = _CONVERSATION.findall(link) if isinstance(link, str) else []
    return found[-1] if found else None


def _by_person(author: Any) -> bool:
    return isinstance(author, dict) and bool(author.get("id")) and author.get("type", "user") == "user"


def _add(dump: _Dump, raw: Any, where: str, *, page_conversation: str | None, file_conversation: str | None) -> None:
    if not isinstance(raw, dict):
        dump.problems.append(f"{where}: not a JSON object")
        return
    item_id = str(raw.get("id") or "")
    dump.order += 1
    if item_id.startswith("cnv_"):
        dump.conversations[item_id] = (raw, where)
    elif item_id.startswith("rsp_"):
        text = _normal(html_to_text(str(raw.get("body") or "")))
        if text:
            dump.templates.setdefault(text, item_id)
    elif item_id.startswith(("msg_", "com_")):
        comment = item_id.startswith("com_")
        related = (raw.get("_links") or {}).get("related") or {}
        conversation = (_link_id(related.get("conversations" if comment else "conversation"))
                        or page_conversation or file_conversation)
        if conversation is None:
            dump.problems.append(f"{where}: {'comment' if comment else 'message'} without a conversation (name the "
                                 f"file after it, e.g. messages/cnv_123.json)")
            return
        if not comment and not isinstance(raw.get("is_inbound"), bool):
            dump.problems.append(f"{where}: message without is_inbound")
            return
        if raw.get("draft_mode"):
            return
        body = raw.get("body") if comment else raw.get("text") or html_to_text(str(raw.get("body") or ""))
        if not isinstance(body, str):
            dump.problems.append(f"{where}: {'comment' if comment else 'message'} has no body")
            return
        if not body.strip():
            return
        inbound = raw.get("is_inbound") is True
        author = "customer" if inbound else "agent" if _by_person(raw.get("author")) else "bot"
        stamp = raw.get("posted_at") if comment else raw.get("created_at")
        message = {"author": author, "body": body, "created_at": when(stamp), "id": item_id, "public": not comment}
        dump.entries.setdefault(conversation, {})[item_id] = _Entry(conversation, _number(stamp), dump.order, message)
    elif item_id.startswith(_OTHER_RESOURCES):
        dump.ignored += 1
    else:
        keys = ", ".join(sorted(str(k) for k in raw)[:6]) or "none"
        dump.problems.append(f"{where}: not a Front conversation, message, comment or template (id {item_id[:20]!r}, "
                             f"keys: {keys})")


def read_front(paths: Iterable[str | Path]) -> _Dump:
    dump = _Dump()
    for path, name in dump_files(paths):
        file_conversation = _link_id(path.name)
        record = 0
        for document in documents(path, name, dump.problems):
            if isinstance(document, dict) and isinstance(document.get("_results"), list):
                page_conversation = _link_id((document.get("_links") or {}).get("self"))
                items = document["_results"]
            else:
                page_conversation, items = None, [document]
            for raw in items:
                record += 1
                _add(dump, raw, f"{name} record {record}", page_conversation=page_conversation,
                     file_conversation=file_conversation)
    return dump


def front_ticket(raw: dict, entries: Iterable[_Entry], templates: dict[str, str]) -> dict:
    """One Front conversation (and its messages and comments) as a contract ticket dict; ValueError when it is
    unusable."""
    conversation_id = str(raw["id"])
    subject = raw.get("subject") or ""
    if not isinstance(subject, str):
        raise ValueError("'subject' must be a string")
    messages = [e.message for e in sorted(entries, key=lambda e: (e.when, e.order))]
    resolution = None
    if resolved(raw):
        answered = [i for i, m in enumerate(messages) if m["public"] and m["author"] != "customer"]
        answer = answer_id = None
        if answered:
            last = answered[-1]
            answer = messages[last]["body"]
            messages = messages[:last]
            normal = _normal(answer)
            # The reply is a message template's text (perhaps with a greeting or signature around it).
            answer_id = next((f"macro-{tid}" for text, tid in templates.items() if len(text) >= 20 and text in normal),
                             None)
        resolution = {"answer_id": answer_id, "answer": answer}
    recipient = raw.get("recipient") if isinstance(raw.get("recipient"), dict) else {}
    handle = str(recipient.get("handle") or "")
    who = {k: v for k, v in (("name", recipient.get("name")), ("email", handle if "@" in handle else None))
           if isinstance(v, str) and v}
    fields = raw.get("custom_fields") if isinstance(raw.get("custom_fields"), dict) else {}
    ticket: dict = {"id": conversation_id, "subject": subject, "messages": [compact(m) for m in messages]}
    if who:
        ticket["requester"] = who
    ticket.update({
        "tags": [str(t["name"]) for t in raw.get("tags") or [] if isinstance(t, dict) and t.get("name")],
        "priority": next((str(v) for k, v in fields.items() if str(k).strip().lower() == "priority" and v), None),
        "status": opt_str(raw.get("status")), "created_at": when(raw.get("created_at")),
        "url": f"{APP_URL}/{conversation_id}"})
    if resolution is not None:
        ticket["resolution"] = resolution
    if not subject.strip() and not any(m["author"] == "customer" and m["body"].strip() for m in messages):
        raise ValueError(f"conversation {conversation_id} has no subject and no customer message")
    return checked({k: v for k, v in ticket.items() if v is not None})


def import_front(paths: Iterable[str | Path], *, resolved_only: bool = False) -> ImportResult:
    """Front API dumps (see the module docstring) as contract tickets, oldest first."""
    paths = list(paths)
    dump = read_front(paths)
    result = ImportResult(tickets=[], problems=dump.problems)
    deleted = unresolved = 0
    for conversation_id, (raw, where) in dump.conversations.items():
        if raw.get("status") == "deleted":
            deleted += 1
            continue
        if resolved_only and not resolved(raw):
            unresolved += 1
            continue
        try:
            ticket = front_ticket(raw, dump.entries.get(conversation_id, {}).values(), dump.templates)
        except ValueError as exc:
            result.problems.append(f"{where}: {exc}")
            continue
        result.tickets.append(ticket)
    result.tickets.sort(key=lambda t: (t.get("created_at") or "", t["id"]))
    if deleted:
        result.notes.append(f"left out {deleted} deleted conversation{'s' if deleted != 1 else ''}")
    if unresolved:
        result.notes.append(f"left out {unresolved} conversation{'s' if unresolved != 1 else ''} not archived "
                            f"(--resolved-only)")
    if dump.ignored:
        result.notes.append(f"ignored {dump.ignored} other Front record{'s' if dump.ignored != 1 else ''} (events, "
                            f"teammates, tags…)")
    orphans = sum(len(e) for cid, e in dump.entries.items() if cid not in dump.conversations)
    if orphans:
        result.notes.append(f"ignored {orphans} message{'s' if orphans != 1 else ''} and comments of conversations "
                            f"not in the dump")
    if not result.tickets:
        names = ", ".join(str(p) for p in paths)
        if dump.conversations and deleted + unresolved == len(dump.conversations):
            why = "every conversation is deleted" if not unresolved else "no conversation is archived (--resolved-only)"
        elif not dump.conversations:
            why = result.problems[0] if result.problems else \
                "no conversations found: pass the conversation list pages, not only messages"
        else:
            why = result.problems[0] if result.problems else "no usable conversation"
        raise InputError(f"no usable conversation in {names} ({why})")
    return result


@click.command("front")
@click.argument("dumps", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", required=True, help="The ticket JSONL to write ('-' for stdout).")
@click.option("--resolved-only", is_flag=True,
              help="Keep archived (resolved) conversations only (for a --history file). With --from-api, only their "
                   "messages and comments are fetched.")
@from_api_options("Front", "FRONT_API_TOKEN, and FRONT_API_URL if set", "front-dump", "threads")
@click.pass_context
def command(ctx: click.Context, dumps: tuple[Path, ...], out: str, resolved_only: bool, from_api: bool,
            since: float | None, dump_dir: Path, limit: int | None) -> None:
    """Convert Front API dumps (files or folders) into ticket JSONL, or fetch the dump first (--from-api).

    \b
    Fetch and convert in one go (re-run the same command to resume an interrupted export):
      python -m bot import front --from-api --since 90d --out tickets.jsonl
    \b
    Each file holds JSON pages as the Core API returns them (.json: one page or an array of
    pages; .jsonl/.ndjson: one page a line); folders are read recursively. Items are known by id:
      cnv_…   GET /conversations (or search) pages, or one GET /conversations/ID
      msg_…   GET /conversations/ID/messages pages
      com_…   GET /conversations/ID/comments pages (internal notes)
      rsp_…   GET /message_templates pages: answers that are a template's text get its id
    A message's conversation is its _links.related.conversation, the page's _links.self, or a
    cnv_… in the file name (messages/cnv_123.json).
    \b
    Deleted conversations and drafts are left out. Archived conversations get a resolution: the
    last outbound message is the answer, and the thread stops before it."""
    def say(line: str) -> None:
        click.echo(line, err=True)

    dumps, exported = dumps_to_read(ctx, dumps, helpdesk="Front", export="bot.helpdesk.front.export",
                                    from_api=from_api, since=since, dump_dir=dump_dir,
                                    resolved_only=resolved_only, limit=limit, say=say)
    result = import_front(dumps, resolved_only=resolved_only)
    result.tickets = keep_fetched(result.tickets, result.notes, exported, limit)
    write_result(result, out, say=say)
