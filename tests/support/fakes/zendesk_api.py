"""A stateful fake of the Zendesk Support REST API (the subset Seam uses).

Requests must use HTTP Basic auth ``{email}/token:{token}`` (API-token auth);
otherwise the answer is ``401 {"error": "Couldn't authenticate you"}``.
Paths accept an optional ``.json`` suffix.  Each route has a logical name used
by :meth:`FakeZendesk.calls_to`, :meth:`FakeZendesk.fail`,
:meth:`FakeZendesk.set_delay` and :meth:`FakeZendesk.wait_for`:

==================  ==============================================
name                route
==================  ==============================================
``get_ticket``      ``GET  /api/v2/tickets/{id}`` (``?include=users,slas``)
``list_comments``   ``GET  /api/v2/tickets/{id}/comments`` (page, per_page; ``include=users``: the authors)
``incremental_tickets`` ``GET /api/v2/incremental/tickets/cursor`` (start_time, cursor, include=users)
``update_ticket``   ``PUT  /api/v2/tickets/{id}``
``add_tags``        ``PUT  /api/v2/tickets/{id}/tags``
``search_users``    ``GET  /api/v2/users/search?query=email:x@y``
``me``              ``GET  /api/v2/users/me``
``show_user``       ``GET  /api/v2/users/{id}``
``list_articles``   ``GET  /api/v2/help_center/articles`` (cursor: ``page[size]``, ``page[after]``)
``list_user_segments`` ``GET  /api/v2/help_center/user_segments`` (same)
``list_macros``     ``GET  /api/v2/macros`` (``active``; same pagination)
==================  ==============================================

Knowledge, as https://developer.zendesk.com/api-reference/help_center/help-center-api/articles/,
.../help-center-api/user_segments/ and /api-reference/ticketing/business-rules/macros/ describe it: an article has
an HTML ``body``, ``draft`` and ``user_segment_id``; a segment a ``user_type`` ("signed_in_users" or "staff") and
its restrictions; a macro ``actions`` of ``{"field", "value"}`` (the reply in ``comment_value_html`` or
``comment_value``), ``active`` and ``restriction``. Cursor pagination (``meta.has_more``, ``links.next``) as in
https://developer.zendesk.com/api-reference/introduction/pagination/; without ``page[size]``, offset pages
(``per_page``, ``page``, ``next_page``). ``add_article``, ``add_user_segment`` and ``add_macro`` set the scene;
``update_article``, ``update_macro``, ``remove_article`` and ``remove_macro`` change it.

SLA policies: ``set_slas(ticket_id, policy_metrics)`` gives a ticket the metrics an SLA policy applied to it;
``include=slas`` then adds them to the ticket as ``"slas": {"policy_metrics": [...]}``, each
``{"breach_at", "stage" ("active", "achieved", "paused"), "metric" ("first_reply_time", "next_reply_time", …),
"hours"/"minutes"/"days"}`` — the shape Zendesk gives `GET /api/v2/tickets/{id}.json?include=slas` (metric names
as in https://developer.zendesk.com/api-reference/ticketing/business-rules/sla_policies/).

Anything else is recorded under the name ``"unknown"`` and answered 404.

Example::

    with FakeZendesk() as zd:
        zd.add_user(id=1, name="Ann", email="ann@example.com")
        zd.add_ticket(id=7, subject="Help", requester_id=1,
                      comments=[{"author_id": 1, "body": "It broke"}])
        r = httpx.get(f"{zd.url}/api/v2/tickets/7.json",
                      auth=("bot@example.com/token", "zd-token"))
"""

from __future__ import annotations

import base64
import copy
import html
import json
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ._base import Call, FakeHTTPServer, Handler, Request, Response

__all__ = ["Call", "FakeZendesk"]

API_USER_ID = 900
_STATUSES = {"new", "open", "pending", "hold", "solved", "closed"}
_PRIORITIES = {None, "low", "normal", "high", "urgent"}
_ROLES = {"end-user", "agent", "admin"}
_TAG_RE = re.compile(r"<[^>]+>")

_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/api/v2/tickets/(\d+)/comments(?:\.json)?/?$"), "list_comments"),
    ("PUT", re.compile(r"^/api/v2/tickets/(\d+)/tags(?:\.json)?/?$"), "add_tags"),
    ("GET", re.compile(r"^/api/v2/tickets/(\d+)(?:\.json)?/?$"), "get_ticket"),
    ("PUT", re.compile(r"^/api/v2/tickets/(\d+)(?:\.json)?/?$"), "update_ticket"),
    ("GET", re.compile(r"^/api/v2/users/search(?:\.json)?/?$"), "search_users"),
    ("GET", re.compile(r"^/api/v2/users/me(?:\.json)?/?$"), "me"),
    ("GET", re.compile(r"^/api/v2/users/(\d+)(?:\.json)?/?$"), "show_user"),
    ("GET", re.compile(r"^/api/v2/incremental/tickets/cursor(?:\.json)?/?$"), "incremental_tickets"),
    ("GET", re.compile(r"^/api/v2/help_center/articles(?:\.json)?/?$"), "list_articles"),
    ("GET", re.compile(r"^/api/v2/help_center/user_segments(?:\.json)?/?$"), "list_user_segments"),
    ("GET", re.compile(r"^/api/v2/macros(?:\.json)?/?$"), "list_macros"),
]


def _error(status: int, error: str, description: str | None = None, **extra: Any) -> Response:
    payload: dict[str, Any] = {"error": error}
    if description is not None:
        payload["description"] = description
    payload.update(extra)
    return status, {}, payload


def _html_from_text(body: str) -> str:
    paras = "".join(
        f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in body.split("\n\n") if p
    )
    return f'<div class="zd-comment" dir="auto">{paras}</div>'


class FakeZendesk(FakeHTTPServer):
    """Stateful fake Zendesk API on 127.0.0.1 (see module docstring)."""

    API_USER_ID = API_USER_ID

    def __init__(
        self,
        *,
        email: str = "bot@example.com",
        token: str = "zd-token",
        subdomain: str = "acme",
    ) -> None:
        super().__init__()
        self.email = email
        self.token = token
        self.subdomain = subdomain
        self._clock = 0
        self.incremental_page_size = 1000  # Zendesk's; tests lower it to see an export span many pages
        self._comment_seq = 0
        self._audit_seq = 0
        self._users: dict[int, dict[str, Any]] = {}
        self._tickets: dict[int, dict[str, Any]] = {}
        self._comments: dict[int, list[dict[str, Any]]] = {}
        self._slas: dict[int, list[dict[str, Any]]] = {}
        self._articles: dict[int, dict[str, Any]] = {}
        self._segments: dict[int, dict[str, Any]] = {}
        self._macros: dict[int, dict[str, Any]] = {}
        self._knowledge_seq = 360_000_000
        self._ticket_delays: dict[int, float] = {}
        self.add_user(id=API_USER_ID, name="Seam Bot", email=email, role="agent")

    def start(self) -> FakeZendesk:
        super().start()
        return self

    def __enter__(self) -> FakeZendesk:
        return self.start()

    @property
    def auth(self) -> tuple[str, str]:
        """``(username, password)`` for httpx/requests Basic auth."""
        return (f"{self.email}/token", self.token)

    # ------------------------------------------------------------ test helpers
    def add_user(
        self, *, id: int, name: str, email: str, role: str = "end-user"
    ) -> dict[str, Any]:
        """Create or replace a user; ``role`` is "end-user", "agent" or "admin"."""
        if role not in _ROLES:
            raise ValueError(f"role must be one of {sorted(_ROLES)}")
        with self._lock:
            now = self._now()
            user = {
                "id": id,
                "url": f"https://{self.subdomain}.zendesk.com/api/v2/users/{id}.json",
                "name": name,
                "email": email,
                "role": role,
                "active": True,
                "verified": True,
                "time_zone": "UTC",
                "created_at": now,
                "updated_at": now,
            }
            self._users[id] = user
            return copy.deepcopy(user)

    def add_ticket(
        self,
        *,
        id: int,
        subject: str,
        requester_id: int,
        comments: Iterable[dict[str, Any]] = (),
        priority: str | None = "normal",
        status: str = "open",
        tags: Iterable[str] = (),
        assignee_id: int | None = None,
    ) -> dict[str, Any]:
        """Create a ticket with its comments (``author_id``, ``body``, ``public=True``, ``attachments``: a list of
        ``{"file_name", "inline"}``).

        Comment ids auto-increment and ``created_at`` timestamps increase.  The
        ticket ``description`` is the first comment's body.
        """
        with self._lock:
            now = self._now()
            ticket = {
                "id": id,
                "url": f"https://{self.subdomain}.zendesk.com/api/v2/tickets/{id}.json",
                "external_id": None,
                "type": None,
                "subject": subject,
                "raw_subject": subject,
                "description": "",
                "priority": priority,
                "status": status,
                "requester_id": requester_id,
                "submitter_id": requester_id,
                "assignee_id": assignee_id,
                "organization_id": None,
                "group_id": None,
                "tags": list(dict.fromkeys(tags)),
                "via": {"channel": "web", "source": {"from": {}, "to": {}, "rel": None}},
                "custom_fields": [],
                "created_at": now,
                "updated_at": now,
            }
            self._tickets[id] = ticket
            self._comments[id] = []
            for c in comments:
                self._append_comment(
                    id,
                    author_id=c.get("author_id", requester_id),
                    body=c.get("body", ""),
                    html_body=c.get("html_body"),
                    public=c.get("public", True),
                    created_at=c.get("created_at"),
                    attachments=c.get("attachments", ()),
                )
            if self._comments[id]:
                ticket["description"] = self._comments[id][0]["body"]
            return copy.deepcopy(ticket)

    def set_ticket_delay(self, ticket_id: int, seconds: float) -> None:
        """Sleep ``seconds`` before answering ``get_ticket`` for this one ticket (0 removes it): a helpdesk that
        hangs on some tickets while it answers the others (``set_delay`` slows every call of a name)."""
        with self._lock:
            if seconds <= 0:
                self._ticket_delays.pop(ticket_id, None)
            else:
                self._ticket_delays[ticket_id] = seconds

    def set_slas(self, ticket_id: int, policy_metrics: list[dict[str, Any]]) -> None:
        """The SLA policy metrics of a ticket, returned with ``include=slas`` (module docstring)."""
        with self._lock:
            self._slas[ticket_id] = copy.deepcopy(policy_metrics)

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        """The ticket's current state (a copy); KeyError if unknown."""
        with self._lock:
            return copy.deepcopy(self._tickets[ticket_id])

    def comments(self, ticket_id: int) -> list[dict[str, Any]]:
        """The ticket's comments, oldest first (copies); KeyError if unknown."""
        with self._lock:
            return copy.deepcopy(self._comments[ticket_id])

    def user(self, user_id: int) -> dict[str, Any]:
        """A user's state (a copy); KeyError if unknown."""
        with self._lock:
            return copy.deepcopy(self._users[user_id])

    # ------------------------------------------------------------ knowledge helpers
    def _knowledge_id(self, id: int | None) -> int:
        if id is None:
            self._knowledge_seq += 1
            return self._knowledge_seq
        return id

    def add_article(self, *, title: str, body: str, id: int | None = None, draft: bool = False,
                    user_segment_id: int | None = None) -> dict[str, Any]:
        """A Help Center article (``body`` is HTML); its id is chosen when not given. Returns a copy."""
        with self._lock:
            id = self._knowledge_id(id)
            now = self._now()
            self._articles[id] = {
                "id": id, "url": f"https://{self.subdomain}.zendesk.com/api/v2/help_center/en-us/articles/{id}.json",
                "html_url": f"https://{self.subdomain}.zendesk.com/hc/en-us/articles/{id}", "author_id": API_USER_ID,
                "comments_disabled": False, "draft": draft, "promoted": False, "position": 0, "vote_sum": 0,
                "vote_count": 0, "section_id": 1, "created_at": now, "updated_at": now, "edited_at": now,
                "name": title, "title": title, "source_locale": "en-us", "locale": "en-us", "outdated": False,
                "outdated_locales": [], "permission_group_id": 1, "user_segment_id": user_segment_id,
                "user_segment_ids": [] if user_segment_id is None else [user_segment_id], "content_tag_ids": [],
                "label_names": [], "body": body}
            return copy.deepcopy(self._articles[id])

    def update_article(self, id: int, **changes: Any) -> None:
        """Change an article's fields (``title``, ``body``, ``draft`` …); its ``edited_at`` moves on."""
        with self._lock:
            article = self._articles[id]
            article.update(changes)
            article["updated_at"] = article["edited_at"] = self._now()

    def remove_article(self, id: int) -> None:
        with self._lock:
            del self._articles[id]

    def add_user_segment(self, *, name: str, user_type: str = "signed_in_users", id: int | None = None,
                         **restrictions: Any) -> int:
        """A user segment (``user_type`` "signed_in_users" or "staff"; ``tags``, ``organization_ids`` … restrict
        it further); returns its id."""
        with self._lock:
            id = self._knowledge_id(id)
            now = self._now()
            self._segments[id] = {"id": id, "name": name, "user_type": user_type, "built_in": False, "tags": [],
                                  "or_tags": [], "group_ids": [], "organization_ids": [], "added_user_ids": [],
                                  "created_at": now, "updated_at": now, **restrictions}
            return id

    def add_macro(self, *, title: str, body: str | None = None, html_body: str | None = None,
                  id: int | None = None, active: bool = True, restriction: dict | None = None,
                  public: bool | None = None, actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A macro whose reply is ``html_body`` (``comment_value_html``) or ``body`` (``comment_value``);
        ``public=False`` makes it an internal note; ``restriction`` {"type": "User" | "Group", "id": …}.
        ``actions`` replaces the ones built from these. Returns a copy."""
        built: list[dict[str, Any]] = [{"field": "status", "value": "solved"}]
        if html_body is not None:
            built.append({"field": "comment_value_html", "value": html_body})
        if body is not None:
            built.append({"field": "comment_value", "value": body})
        if public is not None:
            built.append({"field": "comment_mode_is_public", "value": "true" if public else "false"})
        with self._lock:
            id = self._knowledge_id(id)
            now = self._now()
            self._macros[id] = {"id": id, "url": f"https://{self.subdomain}.zendesk.com/api/v2/macros/{id}.json",
                                "title": title, "raw_title": title, "description": None, "active": active,
                                "default": False, "position": len(self._macros) + 1, "restriction": restriction,
                                "actions": actions if actions is not None else built, "created_at": now,
                                "updated_at": now}
            return copy.deepcopy(self._macros[id])

    def update_macro(self, id: int, *, title: str | None = None, html_body: str | None = None,
                     **changes: Any) -> None:
        """Change a macro: its title, its reply's HTML, or any field (``active`` …)."""
        with self._lock:
            macro = self._macros[id]
            if title is not None:
                macro["title"] = macro["raw_title"] = title
            if html_body is not None:
                macro["actions"] = [a for a in macro["actions"] if a["field"] not in ("comment_value",
                                                                                       "comment_value_html")]
                macro["actions"].append({"field": "comment_value_html", "value": html_body})
            macro.update(changes)
            macro["updated_at"] = self._now()

    def remove_macro(self, id: int) -> None:
        with self._lock:
            del self._macros[id]

    def run_clock_ahead(self, seconds: int) -> None:
        """From now on the helpdesk's clock (comment and ticket times) runs `seconds` ahead of Seam's."""
        with self._lock:
            self._clock = max(self._clock, int(time.time()) + seconds)

    # ------------------------------------------------------------ internals
    def _now(self) -> str:
        # Like Zendesk: the real time, to the second; kept strictly increasing so comments stay ordered.
        self._clock = max(self._clock + 1, int(time.time()))
        return datetime.fromtimestamp(self._clock, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _append_comment(
        self,
        ticket_id: int,
        *,
        author_id: int,
        body: str,
        html_body: str | None = None,
        public: bool = True,
        created_at: str | None = None,
        attachments: Iterable[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        self._comment_seq += 1
        if not body and html_body:
            body = html.unescape(_TAG_RE.sub("", html_body))
        comment = {
            "id": self._comment_seq,
            "type": "Comment",
            "author_id": author_id,
            "body": body,
            "plain_body": body,
            "html_body": html_body or _html_from_text(body),
            "public": bool(public),
            # Zendesk's Attachment objects: `file_name`, `content_type`, `inline` (an image shown in the body).
            "attachments": [{"id": self._comment_seq * 100 + i, "content_type": "application/octet-stream",
                             "inline": False, **a} for i, a in enumerate(attachments)],
            "audit_id": self._audit_seq or None,
            "via": {"channel": "api"},
            "metadata": {},
            "created_at": created_at or self._now(),
        }
        self._comments[ticket_id].append(comment)
        return comment

    def _dispatch(self, http_method: str, path: str) -> tuple[str, Handler]:
        for verb, pattern, name in _ROUTES:
            if verb == http_method and pattern.match(path):
                return name, getattr(self, f"_h_{name}")
        return "unknown", self._h_unknown

    def _failure_body(self, status: int) -> Any:
        if status == 429:
            return {"error": "TooManyRequests", "description": "Rate limit exceeded"}
        if status >= 500:
            return {"error": "InternalServerError", "description": "Injected failure"}
        return {"error": f"HTTP{status}", "description": "Injected failure"}

    def _parse_params(self, req: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(req.query)
        if req.body:
            decoded = json.loads(req.body.decode("utf-8"))
            if isinstance(decoded, dict):
                params.update(decoded)
        return params

    def _authorized(self, req: Request) -> bool:
        header = req.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == f"{self.email}/token" and password == self.token

    def _guard(self, req: Request) -> Response | None:
        if not self._authorized(req):
            return _error(401, "Couldn't authenticate you")
        return None

    @staticmethod
    def _path_id(req: Request) -> int:
        return int(re.findall(r"/(\d+)", req.path)[0])

    @staticmethod
    def _json_body(req: Request) -> Any:
        return json.loads(req.body.decode("utf-8")) if req.body else None

    # ------------------------------------------------------------ handlers
    def _h_unknown(self, req: Request, params: dict[str, Any]) -> Response:
        return self._guard(req) or _error(404, "InvalidEndpoint", f"Not found: {req.http_method} {req.path}")

    def _h_get_ticket(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        tid = self._path_id(req)
        with self._lock:
            delay = self._ticket_delays.get(tid, 0.0)
        if delay:
            time.sleep(delay)
        with self._lock:
            ticket = self._tickets.get(tid)
            if ticket is None:
                return _error(404, "RecordNotFound", "Not found")
            payload: dict[str, Any] = {"ticket": copy.deepcopy(ticket)}
            includes = {s.strip() for s in str(params.get("include", "")).split(",")}
            if "slas" in includes and tid in self._slas:
                payload["ticket"]["slas"] = {"policy_metrics": copy.deepcopy(self._slas[tid])}
            if "users" in includes:
                ids = [ticket["requester_id"], ticket["assignee_id"]]
                payload["users"] = [
                    copy.deepcopy(self._users[i])
                    for i in dict.fromkeys(ids)
                    if i is not None and i in self._users
                ]
        return 200, {}, payload

    def _h_incremental_tickets(self, req: Request, params: dict[str, Any]) -> Response:
        """Cursor-based incremental export: tickets updated at or after `start_time` (Unix seconds), in one page
        of at most `per_page` (default 1000), oldest update first; `cursor` continues; `include=users` sideloads
        the page's requesters and assignees."""
        if denied := self._guard(req):
            return denied
        per_page = int(params.get("per_page", self.incremental_page_size))
        with self._lock:
            if "cursor" in params:
                start, offset = (int(x) for x in str(params["cursor"]).split(":"))
            else:
                start, offset = int(params.get("start_time", 0)), 0
            matching = sorted((t for t in self._tickets.values()
                               if datetime.strptime(t["updated_at"], "%Y-%m-%dT%H:%M:%SZ").replace(
                                   tzinfo=UTC).timestamp() >= start), key=lambda t: (t["updated_at"], t["id"]))
            page = [copy.deepcopy(t) for t in matching[offset:offset + per_page]]
            includes = {s.strip() for s in str(params.get("include", "")).split(",")}
            ids = dict.fromkeys(i for t in page for i in (t["requester_id"], t["assignee_id"]) if i is not None)
            users = [copy.deepcopy(self._users[i]) for i in ids if i in self._users]
        end = offset + per_page >= len(matching)
        cursor = f"{start}:{offset + per_page}"
        body = {"tickets": page, "end_of_stream": end, "after_cursor": None if end else cursor,
                "after_url": None if end else f"{self.url}/api/v2/incremental/tickets/cursor.json?cursor={cursor}"
                + (f"&include={params['include']}" if params.get("include") else "")}
        if "users" in includes:  # sideloaded: the requesters and assignees of the page's tickets
            body["users"] = users
        return 200, {}, body

    def _h_list_comments(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        tid = self._path_id(req)
        try:
            page = int(params.get("page", 1))
            per_page = min(int(params.get("per_page", 100)), 100)
        except (TypeError, ValueError):
            return _error(400, "InvalidPagination", "page and per_page must be integers")
        if page < 1 or per_page < 1:
            return _error(400, "InvalidPagination", "page and per_page must be >= 1")
        with self._lock:
            if tid not in self._tickets:
                return _error(404, "RecordNotFound", "Not found")
            comments = list(self._comments[tid])
            if str(params.get("sort_order", "asc")).lower() == "desc":
                comments.reverse()
            start = (page - 1) * per_page
            chunk = copy.deepcopy(comments[start : start + per_page])
        base = f"{self.url}/api/v2/tickets/{tid}/comments.json"
        include = f"&include={params['include']}" if params.get("include") else ""
        next_page = (
            f"{base}?page={page + 1}&per_page={per_page}{include}"
            if start + per_page < len(comments)
            else None
        )
        previous = f"{base}?page={page - 1}&per_page={per_page}{include}" if page > 1 else None
        body: dict[str, Any] = {
            "comments": chunk,
            "next_page": next_page,
            "previous_page": previous,
            "count": len(comments),
        }
        if "users" in {s.strip() for s in str(params.get("include", "")).split(",")}:
            # Sideloaded as Zendesk does (List Comments, `include=users`): the users who wrote the page's comments.
            with self._lock:
                ids = dict.fromkeys(c.get("author_id") for c in chunk)
                body["users"] = [copy.deepcopy(self._users[i]) for i in ids if i in self._users]
        return 200, {}, body

    def _h_update_ticket(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        tid = self._path_id(req)
        try:
            body = self._json_body(req)
        except (ValueError, UnicodeDecodeError):
            return _error(400, "InvalidJSON", "The request body is not valid JSON")
        if not isinstance(body, dict) or not isinstance(body.get("ticket"), dict):
            return _error(400, "InvalidParameter", 'Expected {"ticket": {...}}')
        changes: dict[str, Any] = body["ticket"]
        with self._lock:
            ticket = self._tickets.get(tid)
            if ticket is None:
                return _error(404, "RecordNotFound", "Not found")
            # Validate everything before mutating anything.
            problems: dict[str, list[dict[str, str]]] = {}
            if ticket["status"] == "closed":
                problems["status"] = [{"description": "Status: closed prevents ticket update"}]
            if "status" in changes and changes["status"] not in _STATUSES:
                problems["status"] = [{"description": f"Status: {changes['status']!r} is invalid"}]
            if "priority" in changes and changes["priority"] not in _PRIORITIES:
                problems["priority"] = [{"description": "Priority: is invalid"}]
            if changes.get("assignee_id") is not None:
                assignee = self._users.get(changes["assignee_id"])
                if assignee is None or assignee["role"] not in ("agent", "admin"):
                    problems["assignee"] = [{"description": "Assignee is invalid"}]
            comment = changes.get("comment")
            if comment is not None:
                if not isinstance(comment, dict) or not (comment.get("body") or comment.get("html_body")):
                    problems["comment"] = [{"description": "Comment: Body can't be blank"}]
                elif comment.get("author_id") is not None and comment["author_id"] not in self._users:
                    problems["comment"] = [{"description": "Comment: Author is invalid"}]
            if "tags" in changes and not isinstance(changes["tags"], list):
                problems["tags"] = [{"description": "Tags must be a list"}]
            if problems:
                first = next(iter(problems.values()))[0]["description"]
                return _error(422, "RecordInvalid", f"Record validation errors: {first}", details=problems)

            self._audit_seq += 1
            events: list[dict[str, Any]] = []
            if comment is not None:
                added = self._append_comment(
                    tid,
                    author_id=comment.get("author_id") or API_USER_ID,
                    body=comment.get("body") or "",
                    html_body=comment.get("html_body"),
                    public=comment.get("public", True),
                )
                events.append(
                    {
                        "id": added["id"],
                        "type": "Comment",
                        "author_id": added["author_id"],
                        "body": added["body"],
                        "html_body": added["html_body"],
                        "public": added["public"],
                    }
                )
                if not ticket["description"]:
                    ticket["description"] = added["body"]
            new_tags = None
            if "tags" in changes:
                new_tags = list(dict.fromkeys(changes["tags"]))
            if changes.get("additional_tags") or changes.get("remove_tags"):
                base_tags = new_tags if new_tags is not None else list(ticket["tags"])
                base_tags += [t for t in changes.get("additional_tags") or [] if t not in base_tags]
                removed = set(changes.get("remove_tags") or [])
                new_tags = [t for t in base_tags if t not in removed]
            if new_tags is not None:
                changes = {**changes, "tags": new_tags}
            for field in ("status", "priority", "assignee_id", "subject", "tags", "type", "group_id"):
                if field in changes and changes[field] != ticket.get(field):
                    events.append(
                        {
                            "id": self._audit_seq * 1000 + len(events),
                            "type": "Change",
                            "field_name": field,
                            "value": changes[field],
                            "previous_value": ticket.get(field),
                        }
                    )
                    ticket[field] = copy.deepcopy(changes[field])
            ticket["updated_at"] = self._now()
            payload = {
                "ticket": copy.deepcopy(ticket),
                "audit": {
                    "id": self._audit_seq,
                    "ticket_id": tid,
                    "author_id": API_USER_ID,
                    "created_at": ticket["updated_at"],
                    "events": events,
                },
            }
        return 200, {}, payload

    def _h_add_tags(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        tid = self._path_id(req)
        try:
            body = self._json_body(req)
        except (ValueError, UnicodeDecodeError):
            return _error(400, "InvalidJSON", "The request body is not valid JSON")
        if not isinstance(body, dict) or not isinstance(body.get("tags"), list):
            return _error(400, "InvalidParameter", 'Expected {"tags": [...]}')
        with self._lock:
            ticket = self._tickets.get(tid)
            if ticket is None:
                return _error(404, "RecordNotFound", "Not found")
            ticket["tags"] = list(dict.fromkeys([*ticket["tags"], *map(str, body["tags"])]))
            ticket["updated_at"] = self._now()
            return 200, {}, {"tags": list(ticket["tags"])}

    def _h_search_users(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        query = str(params.get("query") or params.get("email") or "").strip()
        if query.lower().startswith("email:"):
            query = query[len("email:") :].strip()
        query = query.strip('"').lower()
        with self._lock:
            users = [
                copy.deepcopy(u)
                for u in sorted(self._users.values(), key=lambda u: u["id"])
                if query and u["email"].lower() == query
            ]
        return 200, {}, {"users": users, "count": len(users), "next_page": None, "previous_page": None}

    def _h_me(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            return 200, {}, {"user": copy.deepcopy(self._users[API_USER_ID])}

    def _h_show_user(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            user = self._users.get(self._path_id(req))
            if user is None:
                return _error(404, "RecordNotFound", "Not found")
            return 200, {}, {"user": copy.deepcopy(user)}

    def _listing(self, req: Request, params: dict[str, Any], key: str, items: list[dict[str, Any]]) -> Response:
        """One page of `items`: cursor pagination with ``page[size]`` (at most 100), else offset pages."""
        base = f"{self.url}{req.path}"
        if "page[size]" in params or "page[after]" in params:
            try:
                size = min(int(params.get("page[size]", 100)), 100)
                start = int(params.get("page[after]") or 0)
            except (TypeError, ValueError):
                return _error(400, "InvalidPaginationParameter", "page[size] and page[after] must be numbers")
            chunk, more = items[start:start + size], start + size < len(items)
            after = str(start + size) if more else None
            extra = "".join(f"&{k}={v}" for k, v in params.items() if not k.startswith("page["))
            return 200, {}, {key: copy.deepcopy(chunk),
                             "meta": {"has_more": more, "after_cursor": after, "before_cursor": None},
                             "links": {"next": f"{base}?page[size]={size}&page[after]={after}{extra}" if more
                                       else None, "prev": None}}
        page, per_page = int(params.get("page", 1)), min(int(params.get("per_page", 30)), 100)
        start = (page - 1) * per_page
        more = start + per_page < len(items)
        return 200, {}, {key: copy.deepcopy(items[start:start + per_page]), "count": len(items),
                         "next_page": f"{base}?page={page + 1}&per_page={per_page}" if more else None,
                         "previous_page": None}

    def _h_list_articles(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            return self._listing(req, params, "articles", sorted(self._articles.values(), key=lambda a: a["id"]))

    def _h_list_user_segments(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            return self._listing(req, params, "user_segments", sorted(self._segments.values(),
                                                                       key=lambda s: s["id"]))

    def _h_list_macros(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        active = str(params.get("active", "")).lower()
        with self._lock:
            macros = [m for m in sorted(self._macros.values(), key=lambda m: m["id"])
                      if active not in ("true", "false") or m["active"] == (active == "true")]
            return self._listing(req, params, "macros", macros)
