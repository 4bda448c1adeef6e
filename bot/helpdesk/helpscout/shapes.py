"""Reading Help Scout's API shapes, shared by the adapter and the dump importer: pages (HAL `_embedded` and
`_links`, the Docs API's `{page, pages, items}`), which threads are messages and who wrote them, thread bodies as
text (and Seam's text as a thread body), tags, the requester, custom fields, and a conversation's newest time.

Threads (https://developer.helpscout.com/mailbox-api/endpoints/conversations/threads/list/) come newest first,
each with a `type` — customer, message (an agent's reply; "reply" is the type Seam creates them with), note,
lineitem ("a change of state on the conversation"), phone, chat, beaconchat, forwardparent, forwardchild — a
`state` (published, draft, underreview, hidden), `createdBy` {id, type: user | customer, first, last, email}, an
HTML `body` and `_embedded.attachments` [{filename, …}].
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any

from bot.models import Message
from bot.text import html_to_text, parse_time

# Records of something that happened rather than something someone wrote.
NOT_MESSAGES = frozenset({"lineitem", "forwardparent", "forwardchild"})
AGENT_REPLIES = frozenset({"message", "reply"})
# Never sent (a draft, or held by collision detection) or removed from what the customer saw.
UNSENT_STATES = frozenset({"draft", "underreview", "review", "hidden"})

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def to_html(text: str) -> str:
    """Seam's plain text as a thread body: Help Scout's bodies are HTML, so line breaks must be <br>."""
    return html.escape(text, quote=False).replace("\r\n", "\n").replace("\n", "<br>")


def text_of(body: Any) -> str:
    """A thread body as text. A body of text and <br> only (what `to_html` writes) is decoded exactly, so Seam
    finds its own reply again word for word; any other HTML goes through `html_to_text`."""
    if not isinstance(body, str):
        return ""
    plain = _BR.sub("\n", body)
    if "<" not in plain and ">" not in plain:
        return html.unescape(plain).strip()
    return html_to_text(body)


def clean_id(value: Any) -> str | None:
    """A Help Scout numeric id as a string; None unless it is a positive integer (as a number or digits)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    text = str(value).strip()
    return text if text.isascii() and text.isdigit() and text != "0" and len(text) <= 20 else None


def person_name(person: Any) -> str | None:
    if not isinstance(person, dict):
        return None
    parts = [person.get(k) or person.get(k + "Name") for k in ("first", "last")]
    name = " ".join(str(p).strip() for p in parts if isinstance(p, str) and p.strip())
    return name or None


def tag_names(tags: Any) -> tuple[str, ...]:
    """Tags as names: the API gives [{id, color, tag}]; dumps and older payloads may hold plain strings."""
    names = []
    for tag in tags if isinstance(tags, list) else []:
        name = tag.get("tag") if isinstance(tag, dict) else tag
        if isinstance(name, str) and name.strip():
            names.append(name.strip())
    return tuple(dict.fromkeys(names))


def custom_field(fields: Any, name: str) -> str | None:
    """The value of the conversation's custom field called `name` (case-insensitive): a dropdown's label
    (`text`) when there is one, else its `value`."""
    for field in fields if isinstance(fields, list) else []:
        if isinstance(field, dict) and str(field.get("name", "")).strip().casefold() == name.casefold():
            value = field.get("text") or field.get("value")
            if value is None:
                return None
            return str(value).strip() or None
    return None


def attachment_names(thread: dict) -> tuple[str, ...]:
    files = ((thread.get("_embedded") or {}).get("attachments") if isinstance(thread.get("_embedded"), dict)
             else None) or thread.get("attachments") or []
    return tuple(str(a.get("filename") or a.get("fileName")) for a in files
                 if isinstance(a, dict) and (a.get("filename") or a.get("fileName")))


def thread_message(thread: Any, *, me_id: str | None) -> Message | None:
    """The thread as a Message, or None when it is not one (a line item, a forward record, a draft). Customer
    threads are the customer's; replies and notes by the user Seam acts as are the bot's, by anyone else an
    agent's; notes are private."""
    if not isinstance(thread, dict):
        return None
    kind = str(thread.get("type") or "").lower()
    if kind in NOT_MESSAGES or str(thread.get("state") or "published").lower() in UNSENT_STATES:
        return None
    by = thread.get("createdBy") if isinstance(thread.get("createdBy"), dict) else {}
    via = (thread.get("source") or {}).get("via") if isinstance(thread.get("source"), dict) else None
    if kind == "customer" or (kind not in AGENT_REPLIES and kind != "note"
                              and (by.get("type") == "customer" or via == "customer")):
        author = "customer"
    else:
        author = "bot" if me_id is not None and clean_id(by.get("id")) == me_id else "agent"
    return Message(author=author, body=text_of(thread.get("body", thread.get("text"))),
                   created_at=thread.get("createdAt") if isinstance(thread.get("createdAt"), str) else None,
                   id=clean_id(thread.get("id")), public=kind != "note", attachments=attachment_names(thread))


def oldest_first(threads: list) -> list[dict]:
    """Threads in the order they were written (the API lists them newest first)."""
    def key(thread: dict) -> tuple:
        moment = parse_time(thread.get("createdAt"))
        return (moment.timestamp() if moment else 0.0, int(clean_id(thread.get("id")) or 0))

    return sorted((t for t in threads if isinstance(t, dict)), key=key)


def newest_time(conversation: dict) -> datetime | None:
    """The newest moment a conversation object shows: it has no "modified at", so the latest of when it was
    created, closed, last touched by a user, last waited on by the customer, and of any thread it embeds."""
    moments = [conversation.get(k) for k in ("createdAt", "closedAt", "userUpdatedAt", "updatedAt", "modifiedAt")]
    waiting = conversation.get("customerWaitingSince")
    moments.append(waiting.get("time") if isinstance(waiting, dict) else waiting)
    embedded = conversation.get("_embedded")
    threads = embedded.get("threads") if isinstance(embedded, dict) else None
    moments += [t.get("createdAt") for t in threads if isinstance(t, dict)] if isinstance(threads, list) else []
    parsed = [m for m in (parse_time(v) for v in moments if isinstance(v, str)) if m is not None]
    return max(parsed) if parsed else None


# -- pages ----------------------------------------------------------------------------------------------------

def next_link(page: Any) -> str | None:
    links = page.get("_links") if isinstance(page, dict) else None
    following = (links.get("next") or {}).get("href") if isinstance(links, dict) else None
    return following if isinstance(following, str) and following else None


def page_position(page: Any) -> tuple[int, int] | None:
    """(this page, last page): the Mailbox API's `page` {number, totalPages}, or a Docs API envelope such as
    `articles` {page, pages, items}."""
    for info in [page.get("page"), *page.values()] if isinstance(page, dict) else []:
        if isinstance(info, dict):
            current, last = info.get("number", info.get("page")), info.get("totalPages", info.get("pages"))
            if isinstance(current, int) and isinstance(last, int):
                return current, last
    return None


def items(page: Any, *keys: str) -> list:
    """The records of a page: `_embedded.<key>` (Mailbox API) or `<key>.items` (Docs API)."""
    for key in keys:
        holder = (page.get("_embedded") or {}) if isinstance(page, dict) else {}
        found = holder.get(key) if isinstance(holder, dict) else None
        if found is None and isinstance(page, dict) and isinstance(page.get(key), dict):
            found = page[key].get("items")
        if isinstance(found, list):
            return [item for item in found if isinstance(item, dict)]
    return []
