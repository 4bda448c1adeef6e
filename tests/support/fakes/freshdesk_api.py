"""A stateful fake of the Freshdesk API v2 (the subset Seam uses), imitating the documented payloads.

It follows https://developers.freshdesk.com/api/ — sections "Tickets" (View a Ticket with ``include=requester``,
List All Tickets with ``updated_since``/``order_by``/``order_type``, Update a Ticket), "Conversations" (Reply to
a Ticket, Create a Note, List All Conversations of a Ticket), "Agents" (List All Agents with ``email``, View
Me), "Solutions" (categories → folders → articles) and "Canned Responses" (folders → responses) — with the shapes
cross-checked against the sample payloads of github.com/sjkingo/python-freshdesk
(``freshdesk/v2/sample_json_data``, ``freshdesk/v2/tests/sample_json_data``) and the field list of the official SDK
reference https://developers.freshworks.com/freshdesk-sdk/docs/GetAllTicketResponse.html. Rate limits as
support.freshdesk.com/support/solutions/articles/225439 describes them (``X-RateLimit-*`` headers; 429 with
``Retry-After``, here only through failure injection).

List All Tickets as the API answers accounts created since December 2018: no ``description`` or
``description_text`` unless ``include=description`` asks for them, the requester embedded with
``include=requester``, spam and deleted tickets left out, and no page past the 300th (``max_list_page``; deeper
pages are refused with the 400 Freshdesk answers, ``You cannot access tickets beyond the 300th page``, as reported
in github.com/airbytehq/airbyte/issues/3858) while the ``Link`` header still points on.

Like Freshdesk: HTTP Basic auth with the API key as user name (any password, conventionally ``X``), otherwise
``401 {"code": "invalid_credentials", ...}``; list endpoints answer a bare JSON array, ``page``/``per_page`` (at
most 100, default 30) with a ``Link: <…>; rel="next"`` header while more remain; unknown query parameters and
invalid fields are ``400 {"description": "Validation failed", "errors": [...]}``; an unknown ticket is a 404 with
an empty body; status codes 2 Open, 3 Pending, 4 Resolved, 5 Closed, priority 1–4; HTML ``body`` with a plain
``body_text`` computed beside it. Each route has a logical name for ``calls_to``/``fail``/``set_delay``:

=========================  =====================================================
name                       route
=========================  =====================================================
``view_ticket``            ``GET  /api/v2/tickets/{id}`` (``include=requester,conversations,stats``)
``list_tickets``           ``GET  /api/v2/tickets``
``update_ticket``          ``PUT  /api/v2/tickets/{id}``
``list_conversations``     ``GET  /api/v2/tickets/{id}/conversations``
``reply``                  ``POST /api/v2/tickets/{id}/reply``
``add_note``               ``POST /api/v2/tickets/{id}/notes``
``me``                     ``GET  /api/v2/agents/me``
``list_agents``            ``GET  /api/v2/agents`` (``email``)
``list_categories``        ``GET  /api/v2/solutions/categories``
``list_folders``           ``GET  /api/v2/solutions/categories/{id}/folders``
``list_articles``          ``GET  /api/v2/solutions/folders/{id}/articles``
``list_canned_folders``    ``GET  /api/v2/canned_response_folders``
``list_canned_responses``  ``GET  /api/v2/canned_response_folders/{id}/responses``
=========================  =====================================================

Anything else is recorded as ``"unknown"`` and answered 404.
"""

from __future__ import annotations

import base64
import copy
import html
import json
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from ._base import FakeHTTPServer, Handler, Request, Response

__all__ = ["FakeFreshdesk"]

_TIME = "%Y-%m-%dT%H:%M:%SZ"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/api/v2/tickets/(\d+)/conversations/?$"), "list_conversations"),
    ("POST", re.compile(r"^/api/v2/tickets/(\d+)/reply/?$"), "reply"),
    ("POST", re.compile(r"^/api/v2/tickets/(\d+)/notes/?$"), "add_note"),
    ("GET", re.compile(r"^/api/v2/tickets/(\d+)/?$"), "view_ticket"),
    ("PUT", re.compile(r"^/api/v2/tickets/(\d+)/?$"), "update_ticket"),
    ("GET", re.compile(r"^/api/v2/tickets/?$"), "list_tickets"),
    ("GET", re.compile(r"^/api/v2/agents/me/?$"), "me"),
    ("GET", re.compile(r"^/api/v2/agents/?$"), "list_agents"),
    ("GET", re.compile(r"^/api/v2/solutions/categories/?$"), "list_categories"),
    ("GET", re.compile(r"^/api/v2/solutions/categories/(\d+)/folders/?$"), "list_folders"),
    ("GET", re.compile(r"^/api/v2/solutions/folders/(\d+)/articles/?$"), "list_articles"),
    ("GET", re.compile(r"^/api/v2/canned_response_folders/?$"), "list_canned_folders"),
    ("GET", re.compile(r"^/api/v2/canned_response_folders/(\d+)/responses/?$"), "list_canned_responses"),
]
_STATUSES = {2, 3, 4, 5}
_PRIORITIES = {1, 2, 3, 4}
_UPDATABLE = {"status", "priority", "responder_id", "tags", "subject", "type", "group_id", "custom_fields"}
_LIST_TICKETS_PARAMS = {"filter", "requester_id", "email", "company_id", "updated_since", "order_by", "order_type",
                        "include", "page", "per_page"}


def plain_text(markup: str) -> str:
    """What Freshdesk puts in ``body_text``: the HTML without tags, breaks and paragraphs kept."""
    text = re.sub(r"<br\s*/?>", "\n", markup, flags=re.IGNORECASE)
    text = re.sub(r"</(p|div|li|h[1-6])\s*>", "\n\n", text, flags=re.IGNORECASE)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def html_of(text: str) -> str:
    return "<div>" + html.escape(text).replace("\n", "<br>") + "</div>"


def _invalid(field: str, message: str, code: str = "invalid_value") -> Response:
    return 400, {}, {"description": "Validation failed",
                     "errors": [{"field": field, "message": message, "code": code}]}


class FakeFreshdesk(FakeHTTPServer):
    """A Freshdesk account ``{domain}.freshdesk.com`` on loopback; ``API_AGENT_ID`` is the agent whose API key the
    client uses (``GET /api/v2/agents/me``), so conversations it writes carry that ``user_id``."""

    API_AGENT_ID = 9000
    RATE_LIMIT_TOTAL = 200
    max_list_page = 300  # the deepest page of the tickets list Freshdesk serves; tests lower it

    def __init__(self, *, api_key: str = "fd-api-key-0123456789", domain: str = "acme") -> None:
        super().__init__()
        self.api_key = api_key
        self.domain = domain
        self._clock = 0
        self._ids = {"conversation": 5000, "attachment": 700}
        self._tickets: dict[int, dict[str, Any]] = {}
        self._conversations: dict[int, list[dict[str, Any]]] = {}
        self._contacts: dict[int, dict[str, Any]] = {}
        self._agents: dict[int, dict[str, Any]] = {}
        self._categories: dict[int, dict[str, Any]] = {}
        self._folders: dict[int, dict[str, Any]] = {}
        self._articles: dict[int, dict[str, Any]] = {}
        self._canned_folders: dict[int, dict[str, Any]] = {}
        self._canned: dict[int, dict[str, Any]] = {}
        self._recent: list[float] = []
        self.add_agent(id=self.API_AGENT_ID, name="Seam Bot", email="seam-bot@acme.example")

    def start(self) -> FakeFreshdesk:
        super().start()
        return self

    def __enter__(self) -> FakeFreshdesk:
        return self.start()

    @property
    def auth(self) -> tuple[str, str]:
        """``(username, password)`` for Basic auth: the API key and ``X``."""
        return (self.api_key, "X")

    # ------------------------------------------------------------ the scene
    def add_contact(self, *, id: int, name: str, email: str) -> dict[str, Any]:
        with self._lock:
            now = self._now()
            contact = {"id": id, "name": name, "email": email, "active": True, "phone": None, "mobile": None,
                       "job_title": None, "language": "en", "time_zone": "UTC", "created_at": now,
                       "updated_at": now}
            self._contacts[id] = contact
            return copy.deepcopy(contact)

    def add_agent(self, *, id: int, name: str, email: str, active: bool = True) -> dict[str, Any]:
        """An agent; ``active=False`` is one who has not verified the invitation yet (``contact.active``)."""
        with self._lock:
            now = self._now()
            agent = {"id": id, "available": True, "occasional": False, "signature": None, "ticket_scope": 1,
                     "type": "support_agent", "group_ids": [], "role_ids": [], "created_at": now, "updated_at": now,
                     "available_since": None,
                     "contact": {"active": active, "email": email, "job_title": None, "language": "en",
                                 "last_login_at": None, "mobile": None, "name": name, "phone": None,
                                 "time_zone": "UTC", "created_at": now, "updated_at": now}}
            self._agents[id] = agent
            return copy.deepcopy(agent)

    def add_ticket(self, *, id: int, subject: str, requester_id: int, description: str = "",
                   conversations: Iterable[dict[str, Any]] = (), status: int = 2, priority: int = 1,
                   tags: Iterable[str] = (), responder_id: int | None = None, source: int = 2,
                   due_by: str | None = None, fr_due_by: str | None = None, attachments: Iterable[str] = (),
                   created_at: str | None = None, spam: bool = False) -> dict[str, Any]:
        """A ticket whose ``description`` (plain text, stored as HTML) is the first message, then its
        conversations, oldest first: ``user_id``, ``body`` (text) or ``html``, ``private``, ``incoming``,
        ``attachments`` (file names)."""
        with self._lock:
            now = created_at or self._now()
            ticket = {
                "id": id, "subject": subject, "description": html_of(description) if description else "",
                "description_text": description, "status": status, "priority": priority, "source": source,
                "type": None, "requester_id": requester_id, "responder_id": responder_id, "group_id": None,
                "company_id": None, "product_id": None, "email_config_id": None, "spam": spam,
                "is_escalated": False, "fr_escalated": False, "to_emails": None, "cc_emails": [], "fwd_emails": [],
                "reply_cc_emails": [], "tags": list(dict.fromkeys(tags)), "custom_fields": {},
                "attachments": [self._attachment(n) for n in attachments], "created_at": now, "updated_at": now,
                "due_by": due_by, "fr_due_by": fr_due_by,
            }
            self._tickets[id] = ticket
            self._conversations[id] = []
            for item in conversations:
                markup = item.get("html") or html_of(item.get("body", ""))
                self._append(id, user_id=item["user_id"], markup=markup, private=item.get("private", False),
                             incoming=item.get("incoming", False), attachments=item.get("attachments", ()))
            return copy.deepcopy(ticket)

    def update_ticket(self, ticket_id: int, **fields: Any) -> dict[str, Any]:
        """A change made in Freshdesk itself (an agent, an automation): the fields given, and ``updated_at`` now."""
        with self._lock:
            ticket = self._tickets[ticket_id]
            ticket.update(copy.deepcopy(fields))
            ticket["updated_at"] = self._now()
            return copy.deepcopy(ticket)

    def add_category(self, *, id: int, name: str) -> None:
        with self._lock:
            self._categories[id] = {"id": id, "name": name, "description": None, "visible_in_portals": []}

    def add_folder(self, *, id: int, category_id: int, name: str, visibility: int = 1) -> None:
        """A solution folder; ``visibility`` 1 all users, 2 logged-in users, 3 agents only, 4 some companies."""
        with self._lock:
            self._folders[id] = {"id": id, "category_id": category_id, "name": name, "description": None,
                                 "visibility": visibility}

    def add_article(self, *, id: int, folder_id: int, title: str, html_body: str, status: int = 2) -> None:
        """A solution article; ``status`` 1 draft, 2 published."""
        with self._lock:
            folder = self._folders[folder_id]
            self._articles[id] = {"id": id, "type": 1, "status": status, "agent_id": self.API_AGENT_ID,
                                  "category_id": folder["category_id"], "folder_id": folder_id, "title": title,
                                  "description": html_body, "description_text": plain_text(html_body),
                                  "tags": [], "attachments": [], "created_at": self._now(), "updated_at": self._now()}

    def add_canned_folder(self, *, id: int, name: str) -> None:
        with self._lock:
            self._canned_folders[id] = {"id": id, "name": name, "personal": False, "responses_count": 0}

    def add_canned_response(self, *, id: int, folder_id: int, title: str, html_body: str) -> None:
        with self._lock:
            self._canned[id] = {"id": id, "folder_id": folder_id, "title": title, "content_html": html_body,
                                "content": plain_text(html_body), "visibility": 0, "group_ids": [],
                                "attachments": [], "created_at": self._now(), "updated_at": self._now()}
            self._canned_folders[folder_id]["responses_count"] += 1

    def update_article(self, id: int, *, title: str, html_body: str) -> None:
        with self._lock:
            self._articles[id].update(title=title, description=html_body, description_text=plain_text(html_body),
                                      updated_at=self._now())

    def remove_article(self, id: int) -> None:
        with self._lock:
            del self._articles[id]

    def update_canned_response(self, id: int, *, title: str, html_body: str) -> None:
        with self._lock:
            self._canned[id].update(title=title, content_html=html_body, content=plain_text(html_body),
                                    updated_at=self._now())

    def remove_canned_response(self, id: int) -> None:
        with self._lock:
            response = self._canned.pop(id)
            self._canned_folders[response["folder_id"]]["responses_count"] -= 1

    # ------------------------------------------------------------ the state, for assertions
    def ticket(self, ticket_id: int) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._tickets[ticket_id])

    def conversations(self, ticket_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._conversations[ticket_id])

    # ------------------------------------------------------------ internals
    def _now(self) -> str:
        # The real time to the second, kept strictly increasing so conversations and updates stay ordered.
        self._clock = max(self._clock + 1, int(time.time()))
        return datetime.fromtimestamp(self._clock, UTC).strftime(_TIME)

    def _attachment(self, name: str) -> dict[str, Any]:
        self._ids["attachment"] += 1
        aid = self._ids["attachment"]
        return {"id": aid, "name": name, "content_type": "application/octet-stream", "size": 1024,
                "attachment_url": f"https://s3.amazonaws.com/cdn.freshdesk.com/data/helpdesk/attachments/{aid}/{name}",
                "created_at": self._now(), "updated_at": self._now()}

    def _append(self, ticket_id: int, *, user_id: int, markup: str, private: bool, incoming: bool,
                source: int | None = None, attachments: Iterable[str] = ()) -> dict[str, Any]:
        self._ids["conversation"] += 1
        ticket = self._tickets[ticket_id]
        requester = self._contacts.get(ticket["requester_id"], {})
        now = self._now()
        item = {"id": self._ids["conversation"], "body": markup, "body_text": plain_text(markup),
                "incoming": incoming, "private": private, "user_id": user_id,
                "support_email": None if private else f"support@{self.domain}.freshdesk.com",
                "source": source if source is not None else (2 if private else 0), "category": 2,
                "ticket_id": ticket_id, "to_emails": [] if private or incoming else [requester.get("email")],
                "from_email": None, "cc_emails": [], "bcc_emails": [], "created_at": now, "updated_at": now,
                "attachments": [self._attachment(n) for n in attachments]}
        self._conversations[ticket_id].append(item)
        ticket["updated_at"] = now
        return item

    def _dispatch(self, http_method: str, path: str) -> tuple[str, Handler]:
        for verb, pattern, name in _ROUTES:
            if verb == http_method and pattern.match(path):
                return name, getattr(self, f"_h_{name}")
        return "unknown", self._h_unknown

    def _failure_body(self, status: int) -> Any:
        return {"description": f"Injected failure (HTTP {status})", "errors": []}

    def _parse_params(self, req: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(req.query)
        if req.body:
            decoded = json.loads(req.body.decode("utf-8"))
            if isinstance(decoded, dict):
                params.update(decoded)
        return params

    def _guard(self, req: Request) -> Response | None:
        scheme, _, value = req.headers.get("authorization", "").partition(" ")
        user = None
        if scheme.lower() == "basic":
            try:
                user = base64.b64decode(value).decode("utf-8").partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                user = None
        if user != self.api_key:
            return 401, {}, {"code": "invalid_credentials",
                             "message": "You have to be logged in to perform this action."}
        return None

    def _limits(self) -> dict[str, str]:
        with self._lock:
            now = time.monotonic()
            self._recent = [t for t in self._recent if now - t < 60] + [now]
            used = len(self._recent)
        return {"X-RateLimit-Total": str(self.RATE_LIMIT_TOTAL),
                "X-RateLimit-Remaining": str(max(0, self.RATE_LIMIT_TOTAL - used)),
                "X-RateLimit-Used-CurrentRequest": "1"}

    def _paged(self, req: Request, items: list[Any], *, allowed: Iterable[str] = ()) -> Response:
        unknown = set(req.query) - set(allowed) - {"page", "per_page"}
        if unknown:
            return _invalid(sorted(unknown)[0], "Unexpected/invalid field in request", "invalid_field")
        try:
            page, per_page = int(req.query.get("page", 1)), int(req.query.get("per_page", 30))
        except ValueError:
            return _invalid("page", "It should be a Positive Integer", "datatype_mismatch")
        if page < 1 or not 1 <= per_page <= 100:
            return _invalid("per_page", "It should be a Positive Integer less than or equal to 100")
        chunk = copy.deepcopy(items[(page - 1) * per_page:page * per_page])
        headers = self._limits()
        if page * per_page < len(items):
            query = urlencode({**req.query, "page": page + 1})
            headers["Link"] = f'<{self.url}{req.path}?{query}>; rel="next"'
        return 200, headers, chunk

    def _ticket_or_404(self, req: Request) -> tuple[dict[str, Any] | None, Response | None]:
        ticket = self._tickets.get(int(re.findall(r"/tickets/(\d+)", req.path)[0]))
        return (ticket, None) if ticket is not None else (None, (404, {}, b""))

    # ------------------------------------------------------------ handlers
    def _h_unknown(self, req: Request, params: dict[str, Any]) -> Response:
        return self._guard(req) or (404, {}, b"")

    def _h_view_ticket(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        includes = {s.strip() for s in req.query.get("include", "").split(",") if s.strip()}
        if includes - {"requester", "conversations", "stats", "company"}:
            return _invalid("include", "It should be one of these values: 'conversations,requester,company,stats'")
        with self._lock:
            ticket, missing = self._ticket_or_404(req)
            if missing:
                return missing
            payload = copy.deepcopy(ticket)
            if "requester" in includes:
                contact = self._contacts.get(ticket["requester_id"], {})
                payload["requester"] = {k: contact.get(k) for k in ("id", "name", "email", "mobile", "phone")}
            if "conversations" in includes:  # the API embeds the oldest ten only
                payload["conversations"] = copy.deepcopy(self._conversations[ticket["id"]][:10])
            if "stats" in includes:
                payload["stats"] = {"agent_responded_at": None, "requester_responded_at": None,
                                    "first_responded_at": None, "status_updated_at": None, "reopened_at": None,
                                    "resolved_at": None, "closed_at": None, "pending_since": None}
        return 200, self._limits(), payload

    def _h_list_tickets(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        if (order := req.query.get("order_by", "created_at")) not in ("created_at", "due_by", "updated_at", "status"):
            return _invalid("order_by", "It should be one of these values: 'created_at,due_by,updated_at,status'")
        includes = {s.strip() for s in req.query.get("include", "").split(",") if s.strip()}
        if includes - {"requester", "description", "stats", "company"}:
            return _invalid("include", "It should be one of these values: 'requester,description,stats,company'")
        if req.query.get("page", "1").isdigit() and int(req.query.get("page", "1")) > self.max_list_page:
            return _invalid("page", f"You cannot access tickets beyond the {self.max_list_page}th page. Please "
                                    "provide a smaller page number.")
        with self._lock:
            if "updated_since" in req.query:
                try:
                    since = datetime.strptime(req.query["updated_since"], _TIME).replace(tzinfo=UTC)
                except ValueError:
                    return _invalid("updated_since", "It should be in the 'valid date time' format")
                field = "updated_at"
            else:  # without updated_since the API lists tickets created in the past 30 days
                since, field = datetime.now(UTC) - timedelta(days=30), "created_at"
            rows = [t for t in self._tickets.values() if not t["spam"] and not t.get("deleted")
                    and datetime.strptime(t[field], _TIME).replace(tzinfo=UTC) >= since]
            rows.sort(key=lambda t: (str(t.get(order) or ""), t["id"]), reverse=req.query.get("order_type") != "asc")
            rows = [self._listed(t, includes) for t in rows]
            return self._paged(req, rows, allowed=_LIST_TICKETS_PARAMS)

    def _listed(self, ticket: dict[str, Any], includes: set[str]) -> dict[str, Any]:
        listed = {k: v for k, v in ticket.items() if k not in ("description", "description_text")
                  or "description" in includes}
        if "requester" in includes:
            contact = self._contacts.get(ticket["requester_id"], {})
            listed["requester"] = {k: contact.get(k) for k in ("id", "name", "email", "mobile", "phone")}
        return listed

    def _h_list_conversations(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            ticket, missing = self._ticket_or_404(req)
            return missing or self._paged(req, self._conversations[ticket["id"]])

    def _write_body(self, req: Request) -> tuple[dict[str, Any] | None, Response | None]:
        try:
            body = json.loads(req.body.decode("utf-8")) if req.body else None
        except (ValueError, UnicodeDecodeError):
            return None, (400, {}, {"code": "invalid_json", "message": "Request body has invalid json format"})
        if not isinstance(body, dict):
            return None, (400, {}, {"code": "invalid_json", "message": "Request body has invalid json format"})
        return body, None

    def _conversation(self, req: Request, *, note: bool) -> Response:
        if denied := self._guard(req):
            return denied
        body, bad = self._write_body(req)
        if bad:
            return bad
        allowed = {"body", "private", "incoming", "notify_emails", "user_id"} if note else \
            {"body", "from_email", "user_id", "cc_emails", "bcc_emails"}
        if extra := set(body) - allowed:
            return _invalid(sorted(extra)[0], "Unexpected/invalid field in request", "invalid_field")
        if not isinstance(body.get("body"), str) or not body["body"].strip():
            return _invalid("body", "It should be a/an String", "missing_field")
        with self._lock:
            ticket, missing = self._ticket_or_404(req)
            if missing:
                return missing
            user_id = body.get("user_id", self.API_AGENT_ID)
            if user_id not in self._agents and not (note and user_id in self._contacts):
                return _invalid("user_id", "There is no contact matching the given user_id")
            item = self._append(ticket["id"], user_id=user_id, markup=body["body"],
                                private=bool(body.get("private", True)) if note else False,
                                incoming=bool(body.get("incoming", False)) if note else False)
            return 201, self._limits(), copy.deepcopy(item)

    def _h_reply(self, req: Request, params: dict[str, Any]) -> Response:
        return self._conversation(req, note=False)

    def _h_add_note(self, req: Request, params: dict[str, Any]) -> Response:
        return self._conversation(req, note=True)

    def _h_update_ticket(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        body, bad = self._write_body(req)
        if bad:
            return bad
        if extra := set(body) - _UPDATABLE:
            return _invalid(sorted(extra)[0], "Unexpected/invalid field in request", "invalid_field")
        if "status" in body and body["status"] not in _STATUSES:
            return _invalid("status", "It should be one of these values: '2,3,4,5'")
        if "priority" in body and body["priority"] not in _PRIORITIES:
            return _invalid("priority", "It should be one of these values: '1,2,3,4'")
        if "tags" in body and not (isinstance(body["tags"], list) and all(isinstance(t, str) for t in body["tags"])):
            return _invalid("tags", "It should be an Array of String", "datatype_mismatch")
        with self._lock:
            ticket, missing = self._ticket_or_404(req)
            if missing:
                return missing
            if body.get("responder_id") is not None and body["responder_id"] not in self._agents:
                return _invalid("responder_id", "There is no agent matching the given responder_id")
            for field, value in body.items():
                ticket[field] = list(dict.fromkeys(value)) if field == "tags" else copy.deepcopy(value)
            ticket["updated_at"] = self._now()
            return 200, self._limits(), copy.deepcopy(ticket)

    def _h_me(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            return 200, self._limits(), copy.deepcopy(self._agents[self.API_AGENT_ID])

    def _h_list_agents(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        wanted = req.query.get("email")
        with self._lock:
            rows = [a for a in sorted(self._agents.values(), key=lambda a: a["id"])
                    if wanted is None or a["contact"]["email"].lower() == wanted.lower()]
            return self._paged(req, rows, allowed={"email", "mobile", "phone", "state"})

    def _h_list_categories(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            return 200, self._limits(), copy.deepcopy(list(self._categories.values()))

    def _h_list_folders(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        category = int(re.findall(r"/categories/(\d+)", req.path)[0])
        with self._lock:
            if category not in self._categories:
                return 404, {}, b""
            return 200, self._limits(), [copy.deepcopy(f) for f in self._folders.values()
                                         if f["category_id"] == category]

    def _h_list_articles(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        folder = int(re.findall(r"/folders/(\d+)", req.path)[0])
        with self._lock:
            if folder not in self._folders:
                return 404, {}, b""
            return self._paged(req, [a for a in self._articles.values() if a["folder_id"] == folder])

    def _h_list_canned_folders(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            return 200, self._limits(), copy.deepcopy(list(self._canned_folders.values()))

    def _h_list_canned_responses(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        folder = int(re.findall(r"/canned_response_folders/(\d+)", req.path)[0])
        with self._lock:
            if folder not in self._canned_folders:
                return 404, {}, b""
            return self._paged(req, [c for c in self._canned.values() if c["folder_id"] == folder])
