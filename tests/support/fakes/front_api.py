"""A stateful fake of Front's Core API (the subset Seam uses), on loopback.

It follows Front's own OpenAPI description (https://github.com/frontapp/front-api-specs, core-api/core-api.json,
rendered at https://dev.frontapp.com/reference) for paths, bodies and resource shapes, and these pages:

- https://dev.frontapp.com/docs/authentication — "The Core API uses Bearer tokens … You MUST send the token for
  each request in the Authorization header." Anything else is answered 401.
- https://dev.frontapp.com/docs/pagination — listings return `_results` and `_pagination.next`, a link on the
  company's own API host (``https://yourCompany.api.frontapp.com/…?page_token=…``) whose query is replayed.
- https://dev.frontapp.com/reference/conversations — conversation statuses (`archived`, `unassigned`, `deleted`,
  `assigned`); PATCH accepts `archived`, `open`, `deleted`, `spam`, or a ticketing `status_id`.
- https://dev.frontapp.com/reference/events — the event types and `q[after]` / `q[before]` filters
  (https://dev.frontapp.com/docs/query-object-q); at most 15 events a page, newest first.
- Create message reply (OutboundReplyMessage): `options.archive` defaults to true — a reply archives the
  conversation unless told not to. Add comment (CreateComment): "If omitted [author_id], will post as the API
  Token" — such messages and comments have no teammate author here.
- GET /company/statuses answers 404 when ticketing is not enabled ("Ticketing is not enabled").
- https://dev.frontapp.com/docs/search-1 — GET /conversations/search/{query} (URL-encoded) answers the conversations
  that match "ordered by last activity date" (no other order) with `_total` beside the usual pagination. Of the
  query syntax only the `after:` and `before:` filters (Unix seconds) are modelled, as a conversation's last
  activity (its latest event) strictly after / before them; whether Front's bounds are inclusive, and whether
  `after:` counts comments and status changes or only messages, is not documented. Other terms answer 400 here.
  Deleted conversations are listed (Front's search can find trashed ones; whether it does without `is:trashed` is
  not documented), so a client must leave them out itself.

The error body (``{"_error": {"status", "title", "message"}}``) is how Front's errors look in practice; no doc page
describing it was found, and Seam reads only the status code.

Each route has a logical name for `calls_to`, `fail`, `set_delay` and `wait_for`:

=========================  ===========================================================
name                       route
=========================  ===========================================================
``me``                     ``GET    /me``
``get_conversation``       ``GET    /conversations/{id}``
``update_conversation``    ``PATCH  /conversations/{id}``
``update_assignee``        ``PUT    /conversations/{id}/assignee``
``search_conversations``   ``GET    /conversations/search/{query}``
``list_messages``          ``GET    /conversations/{id}/messages``
``send_reply``             ``POST   /conversations/{id}/messages``
``list_comments``          ``GET    /conversations/{id}/comments``
``add_comment``            ``POST   /conversations/{id}/comments``
``add_conversation_tags``  ``POST   /conversations/{id}/tags``
``list_tags``              ``GET    /tags``
``create_tag``             ``POST   /company/tags``
``list_teammates``         ``GET    /teammates``
``list_events``            ``GET    /events``
``list_statuses``          ``GET    /company/statuses``
``list_message_templates`` ``GET    /message_templates``
``list_knowledge_bases``   ``GET    /knowledge_bases``
``list_kb_articles``       ``GET    /knowledge_bases/{id}/articles``
``get_kb_article``         ``GET    /knowledge_base_articles/{id}/content``
=========================  ===========================================================

Anything else is recorded as ``"unknown"`` and answered 404.
"""

from __future__ import annotations

import copy
import html
import itertools
import json
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import unquote

from ._base import Call, FakeHTTPServer, Handler, Request, Response

__all__ = ["Call", "FakeFront"]

_ID = r"([0-9A-Za-z_]+)"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/me/?$"), "me"),
    ("GET", re.compile(r"^/conversations/search/[^/]+/?$"), "search_conversations"),
    ("GET", re.compile(rf"^/conversations/{_ID}/messages/?$"), "list_messages"),
    ("POST", re.compile(rf"^/conversations/{_ID}/messages/?$"), "send_reply"),
    ("GET", re.compile(rf"^/conversations/{_ID}/comments/?$"), "list_comments"),
    ("POST", re.compile(rf"^/conversations/{_ID}/comments/?$"), "add_comment"),
    ("POST", re.compile(rf"^/conversations/{_ID}/tags/?$"), "add_conversation_tags"),
    ("PUT", re.compile(rf"^/conversations/{_ID}/assignee/?$"), "update_assignee"),
    ("GET", re.compile(rf"^/conversations/{_ID}/?$"), "get_conversation"),
    ("PATCH", re.compile(rf"^/conversations/{_ID}/?$"), "update_conversation"),
    ("GET", re.compile(r"^/tags/?$"), "list_tags"),
    ("POST", re.compile(r"^/company/tags/?$"), "create_tag"),
    ("GET", re.compile(r"^/teammates/?$"), "list_teammates"),
    ("GET", re.compile(r"^/events/?$"), "list_events"),
    ("GET", re.compile(r"^/company/statuses/?$"), "list_statuses"),
    ("GET", re.compile(r"^/message_templates/?$"), "list_message_templates"),
    ("GET", re.compile(r"^/knowledge_bases/?$"), "list_knowledge_bases"),
    ("GET", re.compile(rf"^/knowledge_bases/{_ID}/articles/?$"), "list_kb_articles"),
    ("GET", re.compile(rf"^/knowledge_base_articles/{_ID}/content/?$"), "get_kb_article"),
]
_TAGS = re.compile(r"<[^>]+>")


def _error(status: int, title: str, message: str) -> Response:
    return status, {}, {"_error": {"status": status, "title": title, "message": message}}


def _html(text: str) -> str:
    return "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n") if p) or "<p></p>"


def _text(markup: str) -> str:
    return html.unescape(_TAGS.sub("", re.sub(r"<br\s*/?>|</p>", "\n", markup))).strip()


class FakeFront(FakeHTTPServer):
    """Stateful fake Front Core API on 127.0.0.1 (see module docstring)."""

    COMPANY_ID = "cmp_seam1"
    INBOX_ADDRESS = "support@acme.example"

    def __init__(self, *, token: str = "front-api-token", company: str = "acme", ticketing: bool = False,
                 page_size: int = 25, max_page_size: int = 100) -> None:
        super().__init__()
        self.token = token
        self.company = company
        self.ticketing = ticketing
        self.page_size = page_size  # `limit` when none is asked for
        self.max_page_size = max_page_size  # Front's is 100; tests lower it to see pagination at work
        # Where `_pagination.next` links point: Front names the company's own API host.
        self.link_host = f"https://{company}.api.frontapp.com"
        self._clock = 0.0
        self._ids = itertools.count(1)
        self._teammates: dict[str, dict[str, Any]] = {}
        self._conversations: dict[str, dict[str, Any]] = {}
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._comments: dict[str, list[dict[str, Any]]] = {}
        self._tags: dict[str, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._templates: list[dict[str, Any]] = []
        self._bases: dict[str, dict[str, Any]] = {}
        self._articles: dict[str, dict[str, Any]] = {}
        self._pages: dict[str, tuple[str, int, int, dict[str, Any]]] = {}
        self._statuses = [{"id": "sts_open1", "name": "Open", "category": "open"},
                          {"id": "sts_wait1", "name": "Waiting", "category": "waiting"},
                          {"id": "sts_done1", "name": "Resolved", "category": "resolved"}]

    def start(self) -> FakeFront:
        super().start()
        return self

    def __enter__(self) -> FakeFront:
        return self.start()

    @property
    def headers(self) -> dict[str, str]:
        """What an httpx client needs to be let in."""
        return {"Authorization": f"Bearer {self.token}"}

    # ------------------------------------------------------------------ the scene
    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):x}{secrets.token_hex(2)}"

    def _now(self) -> float:
        # Like Front: real time with milliseconds; kept strictly increasing (a second apart) so order is clear.
        self._clock = max(self._clock + 1.0, round(time.time(), 3))
        return self._clock

    def advance(self, seconds: float) -> None:
        """Let time pass: the next event is emitted at least `seconds` after the last one."""
        with self._lock:
            self._clock += seconds

    def add_teammate(self, *, email: str, first_name: str, last_name: str = "", is_blocked: bool = False,
                     type: str = "user") -> str:
        with self._lock:
            mate_id = self._new_id("tea")
            self._teammates[mate_id] = {
                "_links": {"self": f"{self.link_host}/teammates/{mate_id}"}, "id": mate_id, "email": email,
                "username": email.split("@")[0].replace(".", "_"), "first_name": first_name,
                "last_name": last_name, "is_admin": False, "is_available": True, "is_blocked": is_blocked,
                "type": type, "custom_fields": {}}
            return mate_id

    def add_tag(self, name: str) -> str:
        with self._lock:
            return self._create_tag(name)["id"]

    def _create_tag(self, name: str) -> dict[str, Any]:
        tag_id = self._new_id("tag")
        now = self._now()
        self._tags[tag_id] = {"_links": {"self": f"{self.link_host}/tags/{tag_id}"}, "id": tag_id, "name": name,
                              "description": None, "highlight": None, "is_private": False,
                              "is_visible_in_conversation_lists": False, "created_at": now, "updated_at": now}
        return self._tags[tag_id]

    def add_conversation(self, *, subject: str, recipient_name: str | None, recipient_handle: str,
                         messages: Iterable[dict[str, Any]] = (), tags: Sequence[str] = (),
                         custom_fields: dict[str, Any] | None = None, status: str = "unassigned") -> str:
        """A conversation with its thread, oldest first. Each item is a message (``inbound``, ``body``,
        ``author_id``, ``attachments``, ``draft``, ``html``) or, with ``"comment": True``, a comment
        (``body``, ``author_id``)."""
        with self._lock:
            cid = self._new_id("cnv")
            now = self._now()
            tag_ids = []
            for name in tags:
                known = next((t for t in self._tags.values() if t["name"] == name), None)
                tag_ids.append((known or self._create_tag(name))["id"])
            self._conversations[cid] = {
                "id": cid, "subject": subject, "archived": status == "archived", "deleted": status == "deleted",
                "assignee_id": None, "recipient": {"name": recipient_name, "handle": recipient_handle},
                "tag_ids": tag_ids, "custom_fields": dict(custom_fields or {}), "created_at": now,
                "status_id": "sts_open1" if self.ticketing else None}
            self._messages[cid] = []
            self._comments[cid] = []
            for item in messages:
                if item.get("comment"):
                    self._append_comment(cid, body=item["body"], author_id=item.get("author_id"))
                else:
                    self._append_message(cid, inbound=item.get("inbound", True), text=item.get("body", ""),
                                         markup=item.get("html"), author_id=item.get("author_id"),
                                         attachments=item.get("attachments", ()), draft=item.get("draft", False))
            return cid

    def add_message_template(self, *, name: str, body: str, subject: str = "") -> str:
        with self._lock:
            template_id = self._new_id("rsp")
            self._templates.append({"_links": {"self": f"{self.link_host}/message_templates/{template_id}"},
                                    "id": template_id, "name": name, "subject": subject, "body": body,
                                    "attachments": [], "is_available_for_all_inboxes": True, "inbox_ids": None})
            return template_id

    def add_knowledge_base(self, *, name: str, status: str = "published") -> str:
        with self._lock:
            base_id = self._new_id("knb")
            self._bases[base_id] = {"_links": {"self": f"{self.link_host}/knowledge_bases/{base_id}"},
                                    "id": base_id, "name": name, "status": status, "type": "external",
                                    "locale": "en", "created_at": self._now(), "updated_at": self._clock}
            return base_id

    def add_article(self, base_id: str, *, name: str, content: str, status: str = "published") -> str:
        with self._lock:
            article_id = self._new_id("kba")
            self._articles[article_id] = {
                "_links": {"self": f"{self.link_host}/knowledge_base_articles/{article_id}"}, "id": article_id,
                "name": name, "status": status, "keywords": [], "content": content, "locale": "en",
                "attachments": [], "slug": f"/articles/{article_id}", "created_at": self._now(),
                "updated_at": self._clock, "last_edited_at": self._clock, "knowledge_base_id": base_id}
            return article_id

    def update_message_template(self, template_id: str, *, name: str, body: str) -> None:
        with self._lock:
            next(t for t in self._templates if t["id"] == template_id).update(name=name, body=body)

    def remove_message_template(self, template_id: str) -> None:
        with self._lock:
            self._templates = [t for t in self._templates if t["id"] != template_id]

    def update_article(self, article_id: str, *, name: str, content: str) -> None:
        with self._lock:
            self._now()
            self._articles[article_id].update(name=name, content=content, updated_at=self._clock,
                                              last_edited_at=self._clock)

    def remove_article(self, article_id: str) -> None:
        with self._lock:
            del self._articles[article_id]

    # ------------------------------------------------------------------ the state, for assertions
    def conversation(self, cid: str) -> dict[str, Any]:
        """The conversation as GET /conversations/{id} shows it (a copy); KeyError if unknown."""
        with self._lock:
            return self._conversation_resource(self._conversations[cid])

    def messages(self, cid: str) -> list[dict[str, Any]]:
        """The conversation's messages, oldest first (copies)."""
        with self._lock:
            return copy.deepcopy(self._messages[cid])

    def comments(self, cid: str) -> list[dict[str, Any]]:
        """The conversation's comments, oldest first (copies)."""
        with self._lock:
            return copy.deepcopy(self._comments[cid])

    def events(self, cid: str | None = None) -> list[dict[str, Any]]:
        """Events oldest first, of one conversation or all."""
        with self._lock:
            return [copy.deepcopy(e) for e in self._events if cid is None or e["_conversation_id"] == cid]

    def tags(self) -> dict[str, str]:
        """Every tag, name → id."""
        with self._lock:
            return {t["name"]: t["id"] for t in self._tags.values()}

    # ------------------------------------------------------------------ resources
    def _status(self, raw: dict[str, Any]) -> str:
        if raw["deleted"]:
            return "deleted"
        if raw["archived"]:
            return "archived"
        return "assigned" if raw["assignee_id"] else "unassigned"

    def _conversation_resource(self, raw: dict[str, Any]) -> dict[str, Any]:
        cid = raw["id"]
        base = f"{self.link_host}/conversations/{cid}"
        assignee = self._teammates.get(raw["assignee_id"] or "")
        resource: dict[str, Any] = {
            "_links": {"self": base, "related": {k: f"{base}/{k}" for k in
                                                 ("events", "followers", "messages", "comments", "inboxes")}},
            "id": cid, "subject": raw["subject"], "status": self._status(raw),
            "assignee": copy.deepcopy(assignee),
            "recipient": {"_links": {"related": {"contact": f"{self.link_host}/contacts/crd_1"}},
                          "name": raw["recipient"]["name"], "handle": raw["recipient"]["handle"], "role": "from"},
            "tags": [copy.deepcopy(self._tags[t]) for t in raw["tag_ids"] if t in self._tags],
            "links": [], "custom_fields": copy.deepcopy(raw["custom_fields"]), "created_at": raw["created_at"],
            "waiting_since": raw["created_at"], "is_private": False, "scheduled_reminders": [], "metadata": {}}
        if self.ticketing:
            category = next(s["category"] for s in self._statuses if s["id"] == raw["status_id"])
            resource.update(status_id=raw["status_id"], status_category=category, ticket_ids=[])
        return resource

    def _event(self, cid: str, kind: str, target_type: str | None = None, target: Any = None) -> None:
        event_id = self._new_id("evt")
        self._events.append({
            "_links": {"self": f"{self.link_host}/events/{event_id}"}, "id": event_id, "type": kind,
            "emitted_at": self._now(), "source": {"_meta": {"type": "api"}, "data": None},
            "target": {"_meta": {"type": target_type}, "data": copy.deepcopy(target)} if target_type else None,
            "_conversation_id": cid})

    def _append_message(self, cid: str, *, inbound: bool, text: str, markup: str | None = None,
                        author_id: str | None = None, attachments: Iterable[str] = (), draft: bool = False) -> dict:
        raw = self._conversations[cid]
        customer = {"name": raw["recipient"]["name"], "handle": raw["recipient"]["handle"]}
        inbox = {"name": "Support", "handle": self.INBOX_ADDRESS}
        msg_id = self._new_id("msg")
        body = markup or _html(text)
        message = {
            "_links": {"self": f"{self.link_host}/messages/{msg_id}",
                       "related": {"conversation": f"{self.link_host}/conversations/{cid}",
                                   "message_seen": f"{self.link_host}/messages/{msg_id}/seen"}},
            "id": msg_id, "type": "email", "is_inbound": inbound, "draft_mode": "shared" if draft else None,
            "error_type": None, "version": secrets.token_hex(8), "created_at": self._now(),
            "subject": raw["subject"], "blurb": (text or _text(body))[:80],
            "author": None if inbound else copy.deepcopy(self._teammates.get(author_id or "")),
            "recipients": [{**(customer if inbound else inbox), "role": "from"},
                           {**(inbox if inbound else customer), "role": "to"}],
            # `text` is the "Text version of the body for email messages": a message given as HTML only stands
            # for one from a channel without it.
            "body": body, "text": text or (None if markup else _text(body)),
            "attachments": [{"id": self._new_id("fil"), "filename": name, "content_type": "application/pdf",
                             "url": f"{self.link_host}/download/fil_1", "size": 1024,
                             "metadata": {"is_inline": False}} for name in attachments],
            "signature": None, "metadata": {}}
        self._messages[cid].append(message)
        if not draft:
            if inbound and raw["archived"]:
                raw["archived"] = False  # a customer's new message brings the conversation back
            self._event(cid, "inbound" if inbound else "out_reply", "message", message)
        return message

    def _append_comment(self, cid: str, *, body: str, author_id: str | None) -> dict:
        com_id = self._new_id("com")
        comment = {"_links": {"self": f"{self.link_host}/comments/{com_id}",
                              "related": {"conversations": f"{self.link_host}/conversations/{cid}",
                                          "mentions": f"{self.link_host}/comments/{com_id}/mentions"}},
                   "id": com_id, "author": copy.deepcopy(self._teammates.get(author_id or "")), "body": body,
                   "posted_at": self._now(), "attachments": [], "is_pinned": False}
        self._comments[cid].append(comment)
        self._event(cid, "comment", "comment", comment)
        return comment

    # ------------------------------------------------------------------ plumbing
    def _dispatch(self, http_method: str, path: str) -> tuple[str, Handler]:
        for verb, pattern, name in _ROUTES:
            if verb == http_method and pattern.match(path):
                return name, getattr(self, f"_h_{name}")
        return "unknown", self._h_unknown

    def _failure_body(self, status: int) -> Any:
        titles = {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
        return {"_error": {"status": status, "title": titles.get(status, f"HTTP {status}"),
                           "message": "Injected failure"}}

    def _parse_params(self, req: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(req.query)
        if req.body:
            decoded = json.loads(req.body.decode("utf-8"))
            if isinstance(decoded, dict):
                params.update(decoded)
        return params

    def _guard(self, req: Request) -> Response | None:
        scheme, _, value = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or value.strip() != self.token:
            return _error(401, "Unauthorized", "You are not authenticated")
        return None

    @staticmethod
    def _path_id(req: Request) -> str:
        return req.path.strip("/").split("/")[1]

    @staticmethod
    def _body(req: Request) -> dict[str, Any] | None:
        try:
            decoded = json.loads(req.body.decode("utf-8")) if req.body else {}
        except (ValueError, UnicodeDecodeError):
            return None
        return decoded if isinstance(decoded, dict) else None

    def _page(self, req: Request, params: dict[str, Any], items: list[Any], *,
              filters: dict[str, Any] | None = None, most: int = 100) -> Response:
        """One page of `items` with `_pagination.next` on the company host, the way Front pages."""
        token = params.get("page_token")
        if token is not None:
            if token not in self._pages or self._pages[token][0] != req.path.rstrip("/"):
                return _error(400, "Bad Request", "Invalid page_token")
            _, offset, limit, _ = self._pages[token]
        else:
            offset = 0
            try:
                limit = int(params.get("limit", self.page_size))
            except (TypeError, ValueError):
                return _error(400, "Bad Request", "limit must be an integer")
        limit = max(1, min(limit, most, self.max_page_size))
        chunk = items[offset:offset + limit]
        following = None
        if offset + limit < len(items):
            token = secrets.token_hex(10)
            self._pages[token] = (req.path.rstrip("/"), offset + limit, limit, dict(filters or {}))
            following = f"{self.link_host}{req.path}?limit={limit}&page_token={token}"
        return 200, {}, {"_pagination": {"next": following}, "_links": {"self": f"{self.link_host}{req.path}"},
                         "_results": copy.deepcopy(chunk)}

    def _conversation_or_404(self, req: Request) -> dict[str, Any] | Response:
        raw = self._conversations.get(self._path_id(req))
        return raw if raw is not None else _error(404, "Not Found", "Conversation not found")

    # ------------------------------------------------------------------ handlers
    def _h_unknown(self, req: Request, params: dict[str, Any]) -> Response:
        return self._guard(req) or _error(404, "Not Found", f"No route {req.http_method} {req.path}")

    def _h_me(self, req: Request, params: dict[str, Any]) -> Response:
        return self._guard(req) or (200, {}, {"_links": {"self": f"{self.link_host}/me"}, "id": self.COMPANY_ID,
                                              "name": "Acme"})

    def _h_get_conversation(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            raw = self._conversation_or_404(req)
            return raw if isinstance(raw, tuple) else (200, {}, self._conversation_resource(raw))

    def _last_activity(self, raw: dict[str, Any]) -> float:
        return max((e["emitted_at"] for e in self._events if e["_conversation_id"] == raw["id"]),
                   default=raw["created_at"])

    def _h_search_conversations(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        bounds = {"after": float("-inf"), "before": float("inf")}
        for term in unquote(req.path.rstrip("/").rsplit("/", 1)[1]).split():
            name, _, value = term.partition(":")
            if name not in bounds or not re.fullmatch(r"[0-9]+", value):
                return _error(400, "Bad Request", f"Unsupported search term {term!r}")
            bounds[name] = float(value)
        with self._lock:
            found = sorted(((self._last_activity(raw), raw) for raw in self._conversations.values()),
                           key=lambda pair: -pair[0])
            items = [self._conversation_resource(raw) for activity, raw in found
                     if bounds["after"] < activity < bounds["before"]]
            status, headers, body = self._page(req, params, items)
            if isinstance(body, dict) and "_results" in body:
                body["_total"] = len(items)
            return status, headers, body

    def _h_list_messages(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            raw = self._conversation_or_404(req)
            if isinstance(raw, tuple):
                return raw
            order = self._pages[params["page_token"]][3] if params.get("page_token") in self._pages else params
            items = list(self._messages[raw["id"]])
            if str(order.get("sort_order", "desc")).lower() != "asc":
                items.reverse()  # newest first, as documented
            return self._page(req, params, items, filters={"sort_order": order.get("sort_order", "desc")})

    def _h_list_comments(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            raw = self._conversation_or_404(req)
            if isinstance(raw, tuple):
                return raw
            return 200, {}, {"_links": {"self": f"{self.link_host}{req.path}"},
                             "_results": copy.deepcopy(list(reversed(self._comments[raw["id"]])))}

    def _h_send_reply(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        body = self._body(req)
        if body is None:
            return _error(400, "Bad Request", "Body must be a JSON object")
        with self._lock:
            raw = self._conversation_or_404(req)
            if isinstance(raw, tuple):
                return raw
            if not isinstance(body.get("body"), str) or not body["body"].strip():
                return _error(400, "Bad Request", "body is required")
            author = body.get("author_id")
            if author is not None and author not in self._teammates:
                return _error(404, "Not Found", "Teammate not found")
            options = body.get("options") or {}
            message = self._append_message(raw["id"], inbound=False, text=body.get("text") or "",
                                           markup=body["body"], author_id=author)
            if options.get("archive", True) and not raw["archived"]:
                raw["archived"] = True
                self._event(raw["id"], "archive")
            return 202, {}, copy.deepcopy(message)

    def _h_add_comment(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        body = self._body(req)
        if body is None or not isinstance(body.get("body"), str) or not body["body"].strip():
            return _error(400, "Bad Request", "body is required")
        with self._lock:
            raw = self._conversation_or_404(req)
            if isinstance(raw, tuple):
                return raw
            author = body.get("author_id")
            if author is not None and author not in self._teammates:
                return _error(404, "Not Found", "Teammate not found")
            return 201, {}, copy.deepcopy(self._append_comment(raw["id"], body=body["body"], author_id=author))

    def _assignable(self, mate_id: Any) -> bool:
        mate = self._teammates.get(mate_id) if isinstance(mate_id, str) else None
        return mate is not None and not mate["is_blocked"] and mate["type"] == "user"

    def _h_update_assignee(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        body = self._body(req)
        if body is None or "assignee_id" not in body:
            return _error(400, "Bad Request", "assignee_id is required")
        with self._lock:
            raw = self._conversation_or_404(req)
            if isinstance(raw, tuple):
                return raw
            if body["assignee_id"] is not None and not self._assignable(body["assignee_id"]):
                return _error(400, "Bad Request", "Cannot assign to this teammate")
            raw["assignee_id"] = body["assignee_id"]
            self._event(raw["id"], "assign" if body["assignee_id"] else "unassign", "teammate",
                        self._teammates.get(body["assignee_id"] or ""))
            return 204, {}, b""

    def _h_update_conversation(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        body = self._body(req)
        if body is None:
            return _error(400, "Bad Request", "Body must be a JSON object")
        with self._lock:
            raw = self._conversation_or_404(req)
            if isinstance(raw, tuple):
                return raw
            status, status_id = body.get("status"), body.get("status_id")
            if status is not None and status_id is not None:
                return _error(400, "Bad Request", "Only one of status and status_id should be provided")
            if status is not None and status not in ("archived", "open", "deleted", "spam"):
                return _error(400, "Bad Request", f"Invalid status {status!r}")
            if status_id is not None and (not self.ticketing
                                          or status_id not in {s["id"] for s in self._statuses}):
                return _error(400, "Bad Request", "Invalid status_id")
            if "assignee_id" in body and body["assignee_id"] is not None and not self._assignable(
                    body["assignee_id"]):
                return _error(400, "Bad Request", "Cannot assign to this teammate")
            if "tag_ids" in body and (not isinstance(body["tag_ids"], list)
                                      or any(t not in self._tags for t in body["tag_ids"])):
                return _error(400, "Bad Request", "Invalid tag_ids")
            if status == "archived" and not raw["archived"]:
                raw["archived"] = True
                self._event(raw["id"], "archive")
            elif status == "open" and (raw["archived"] or raw["deleted"]):
                raw["archived"] = raw["deleted"] = False
                self._event(raw["id"], "reopen")
            elif status in ("deleted", "spam") and not raw["deleted"]:
                raw["deleted"] = True
                self._event(raw["id"], "trash")
            if status_id is not None:
                raw["status_id"] = status_id
                category = next(s["category"] for s in self._statuses if s["id"] == status_id)
                raw["archived"] = category == "resolved"
                self._event(raw["id"], "archive" if raw["archived"] else "reopen")
            if "assignee_id" in body:
                raw["assignee_id"] = body["assignee_id"]
                self._event(raw["id"], "assign" if body["assignee_id"] else "unassign")
            if "tag_ids" in body:
                raw["tag_ids"] = list(dict.fromkeys(body["tag_ids"]))
                self._event(raw["id"], "tag")
            return 204, {}, b""

    def _h_add_conversation_tags(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        body = self._body(req)
        if body is None or not isinstance(body.get("tag_ids"), list) or not body["tag_ids"]:
            return _error(400, "Bad Request", "tag_ids is required")
        with self._lock:
            raw = self._conversation_or_404(req)
            if isinstance(raw, tuple):
                return raw
            unknown = [t for t in body["tag_ids"] if t not in self._tags]
            if unknown:
                return _error(404, "Not Found", f"Tag not found: {unknown[0]}")
            for tag_id in body["tag_ids"]:
                if tag_id not in raw["tag_ids"]:
                    raw["tag_ids"].append(tag_id)
                    self._event(raw["id"], "tag", "tag", self._tags[tag_id])
            return 204, {}, b""

    def _h_list_tags(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            return self._page(req, params, list(self._tags.values()))

    def _h_create_tag(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        body = self._body(req)
        name = body.get("name") if body else None
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            return _error(400, "Bad Request", "name is required (at most 64 characters)")
        with self._lock:
            if any(t["name"] == name for t in self._tags.values()):
                return _error(409, "Conflict", "A tag with this name already exists")
            return 201, {}, copy.deepcopy(self._create_tag(name))

    def _h_list_teammates(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            return 200, {}, {"_links": {"self": f"{self.link_host}/teammates"},
                             "_results": copy.deepcopy(list(self._teammates.values()))}

    def _h_list_events(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            filters = self._pages[params["page_token"]][3] if params.get("page_token") in self._pages else {
                k: params[k] for k in ("q[after]", "q[before]") if k in params}
            try:
                after = float(filters.get("q[after]", "-inf"))
                before = float(filters.get("q[before]", "inf"))
            except ValueError:
                return _error(400, "Bad Request", "q[after] and q[before] must be timestamps")
            items = []
            for event in reversed(self._events):  # newest first
                if after < event["emitted_at"] < before:
                    public = {k: v for k, v in event.items() if k != "_conversation_id"}
                    public["conversation"] = self._conversation_resource(
                        self._conversations[event["_conversation_id"]])
                    items.append(public)
            return self._page(req, params, items, filters=filters, most=15)

    def _h_list_statuses(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        if not self.ticketing:
            return _error(404, "Not Found", "Ticketing is not enabled")
        return 200, {}, {"_links": {"self": f"{self.link_host}/company/statuses"},
                         "_results": copy.deepcopy(self._statuses)}

    def _h_list_message_templates(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            return self._page(req, params, list(self._templates))

    def _h_list_knowledge_bases(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            return 200, {}, {"_links": {"self": f"{self.link_host}/knowledge_bases"},
                             "_results": copy.deepcopy(list(self._bases.values()))}

    def _h_list_kb_articles(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            base_id = self._path_id(req)
            if base_id not in self._bases:
                return _error(404, "Not Found", "Knowledge base not found")
            slim = [{"_links": a["_links"], "id": a["id"], "slug": a["slug"], "locales": ["en"],
                     "created_at": a["created_at"], "updated_at": a["updated_at"]}
                    for a in self._articles.values() if a["knowledge_base_id"] == base_id]
            return self._page(req, params, slim)

    def _h_get_kb_article(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            article = self._articles.get(self._path_id(req))
            if article is None:
                return _error(404, "Not Found", "Article not found")
            return 200, {}, {k: copy.deepcopy(v) for k, v in article.items() if k != "knowledge_base_id"}
