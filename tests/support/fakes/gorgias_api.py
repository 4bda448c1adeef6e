"""A stateful fake of the Gorgias REST API (the subset Seam uses), on 127.0.0.1.

It imitates the payloads of the vendor's pages:

- https://developers.gorgias.com/docs/access-tokens-api-keys — HTTP Basic ``{email}:{api_key}``; anything else
  is answered ``401``.
- https://developers.gorgias.com/reference/pagination — listings answer ``{"data": [...], "object": "list",
  "uri": ..., "meta": {"prev_cursor", "next_cursor"}}``; ``cursor`` and ``limit`` (1–100, default 30) and
  ``order_by`` (``attribute:asc|desc``).
- https://developers.gorgias.com/reference/limitations — a leaky bucket (off unless :meth:`rate_limit` turns it
  on); ``429`` with ``Retry-after`` (seconds) and ``X-Gorgias-Account-Api-Call-Limit: used/limit``.
- https://developers.gorgias.com/reference/the-ticket-object — tickets: ``status`` open/closed,
  ``snooze_datetime``, ``priority`` low/normal/high/critical, ``customer``, ``assignee_user``, ``tags`` of
  ``{"id", "name"}``, ``*_datetime`` times like ``2024-02-14T21:30:50.201204+00:00``, and their ``messages``.
- https://developers.gorgias.com/reference/ticket-messages and /docs/create-a-new-message-in-ticket-via-api —
  messages: ``from_agent``, ``public`` (false for internal notes, channel ``internal-note``), ``sender`` and
  ``receiver``, ``source`` (``type``, ``from``, ``to``), ``body_text``/``body_html``, ``attachments``; an outgoing
  message needs a user as sender and a receiver; ``via`` and ``channel`` are required.
- https://developers.gorgias.com/reference/list-messages — ``GET /api/messages?ticket_id=``, newest first by
  default.
- List tickets (``GET /api/tickets``) — ``order_by`` ``created_datetime`` or ``updated_datetime``, ``:asc`` or
  ``:desc`` (newest created first by default), and ``trashed`` (default true: trashed tickets are listed unless
  ``trashed=false``). Tickets carry ``spam`` and ``trashed_datetime``; :meth:`trash`, ``add_ticket(spam=True)``
  and :meth:`backdate` set them up.

A ``max_page_size`` answers at most that many items a page whatever ``limit`` asks (a server may answer fewer),
so a test can make listings of several pages with few items.
- https://developers.gorgias.com/reference/create-ticket-tags — ``POST /api/tickets/{id}/tags`` with ``names``
  adds tags (201, empty body).

Each route has a logical name for :meth:`calls_to`, :meth:`fail`, :meth:`set_delay` and :meth:`wait_for`:

=========================  ==================================================
name                       route
=========================  ==================================================
``list_tickets``           ``GET  /api/tickets``
``get_ticket``             ``GET  /api/tickets/{id}``
``update_ticket``          ``PUT  /api/tickets/{id}``
``create_message``         ``POST /api/tickets/{id}/messages``
``list_ticket_messages``   ``GET  /api/tickets/{id}/messages``
``list_messages``          ``GET  /api/messages``
``add_tags``               ``POST /api/tickets/{id}/tags``
``list_users``             ``GET  /api/users``
``get_user``               ``GET  /api/users/{id}``
``list_macros``            ``GET  /api/macros``
=========================  ==================================================

Anything else is recorded as ``"unknown"`` and answered 404. The ``API_USER_ID`` user is the API key's owner.
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

from ._base import FakeHTTPServer, Handler, Request, Response

__all__ = ["FakeGorgias"]

API_USER_ID = 900
SUPPORT_ADDRESS = "support@acme-store.example"
EMAIL_INTEGRATION_ID = 77
_STATUSES = {"open", "closed"}
_PRIORITIES = {"low", "normal", "high", "critical"}
_CHANNELS = {"email", "chat", "sms", "api", "internal-note", "phone", "facebook", "instagram-direct-message",
             "whatsapp", "help-center", "contact_form"}
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/api/tickets/?$"), "list_tickets"),
    ("GET", re.compile(r"^/api/tickets/(\d+)/messages/?$"), "list_ticket_messages"),
    ("POST", re.compile(r"^/api/tickets/(\d+)/messages/?$"), "create_message"),
    ("POST", re.compile(r"^/api/tickets/(\d+)/tags/?$"), "add_tags"),
    ("GET", re.compile(r"^/api/tickets/(\d+)/?$"), "get_ticket"),
    ("PUT", re.compile(r"^/api/tickets/(\d+)/?$"), "update_ticket"),
    ("GET", re.compile(r"^/api/messages/?$"), "list_messages"),
    ("GET", re.compile(r"^/api/users/?$"), "list_users"),
    ("GET", re.compile(r"^/api/users/(\d+)/?$"), "get_user"),
    ("GET", re.compile(r"^/api/macros/?$"), "list_macros"),
]


def _error(status: int, message: str) -> Response:
    return status, {}, {"error": {"msg": message}}


class FakeGorgias(FakeHTTPServer):
    """Stateful fake Gorgias API on 127.0.0.1 (see module docstring)."""

    API_USER_ID = API_USER_ID

    def __init__(self, *, email: str = "seam-bot@acme-store.example", api_key: str = "gorgias-key",
                 domain: str = "acme", max_page_size: int = 100) -> None:
        super().__init__()
        self.email = email
        self.api_key = api_key
        self.domain = domain
        self.max_page_size = max_page_size
        self._clock = 0.0
        self._ids = {"message": 10_000, "tag": 300}
        self._users: dict[int, dict[str, Any]] = {}
        self._customers: dict[int, dict[str, Any]] = {}
        self._tickets: dict[int, dict[str, Any]] = {}
        self._messages: dict[int, list[dict[str, Any]]] = {}
        self._macros: list[dict[str, Any]] = []
        self._bucket: tuple[int, float] | None = None  # (capacity, leak per second)
        self._level = 0.0
        self._level_at = time.monotonic()
        self.add_user(id=API_USER_ID, name="Seam Bot", email=email, role="agent")

    def start(self) -> FakeGorgias:
        super().start()
        return self

    def __enter__(self) -> FakeGorgias:
        return self.start()

    @property
    def auth(self) -> tuple[str, str]:
        """``(username, password)`` for httpx Basic auth."""
        return (self.email, self.api_key)

    # ------------------------------------------------------------ test helpers
    def rate_limit(self, *, capacity: int, per_second: float) -> None:
        """Enforce a leaky bucket of `capacity` requests draining `per_second` (Gorgias: 40 and 2)."""
        with self._lock:
            self._bucket = (capacity, per_second)
            self._level, self._level_at = 0.0, time.monotonic()

    def add_user(self, *, id: int, name: str, email: str, role: str = "agent", active: bool = True) -> dict:
        """An agent or admin of the helpdesk (Gorgias's "users"; customers are another object)."""
        with self._lock:
            first, _, last = name.partition(" ")
            user = {"id": id, "email": email, "name": name, "firstname": first, "lastname": last, "active": active,
                    "role": {"name": role}, "bio": None, "country": None, "language": "en", "timezone": "UTC",
                    "meta": {}, "external_id": None, "created_datetime": self._now(), "deactivated_datetime": None,
                    "deleted_datetime": None, "uri": f"/api/users/{id}/"}
            self._users[id] = user
            return copy.deepcopy(user)

    def add_customer(self, *, id: int, name: str, email: str) -> dict:
        with self._lock:
            first, _, last = name.partition(" ")
            customer = {"id": id, "email": email, "name": name, "firstname": first, "lastname": last,
                        "channels": [{"type": "email", "address": email, "preferred": True}], "external_id": None,
                        "meta": {}, "note": None, "data": None, "uri": f"/api/customers/{id}/"}
            self._customers[id] = customer
            return copy.deepcopy(customer)

    def add_macro(self, *, id: int, name: str, body_html: str | None = None, body_text: str | None = None,
                  archived: bool = False) -> dict:
        arguments = {k: v for k, v in (("body_html", body_html), ("body_text", body_text)) if v is not None}
        with self._lock:
            macro = {"id": id, "name": name, "external_id": None, "intent": None, "language": "en", "usage": 3,
                     "actions": [{"name": "setResponseText", "title": "Add response text", "type": "user",
                                  "arguments": arguments}] if arguments else [],
                     "created_datetime": self._now(), "updated_datetime": None,
                     "archived_datetime": self._now() if archived else None, "uri": f"/api/macros/{id}/"}
            self._macros.append(macro)
            return copy.deepcopy(macro)

    def update_macro(self, id: int, *, name: str, body_html: str) -> None:
        with self._lock:
            macro = next(m for m in self._macros if m["id"] == id)
            macro.update(name=name, updated_datetime=self._now(),
                         actions=[{"name": "setResponseText", "title": "Add response text", "type": "user",
                                   "arguments": {"body_html": body_html}}])

    def remove_macro(self, id: int) -> None:
        with self._lock:
            self._macros = [m for m in self._macros if m["id"] != id]

    def add_ticket(self, *, id: int, subject: str, customer_id: int, messages: Iterable[dict] = (),
                   tags: Iterable[str] = (), priority: str = "normal", status: str = "open", channel: str = "email",
                   assignee_id: int | None = None, spam: bool = False) -> dict:
        """A ticket and its messages, oldest first: each ``{"from_agent", "body_text"}`` plus optional
        ``sender_id`` (a user, for agents; the customer otherwise), ``body_html``, ``public`` and
        ``attachments`` (file names)."""
        with self._lock:
            now = self._now()
            ticket = {"id": id, "uri": f"/api/tickets/{id}/", "external_id": None, "status": status,
                      "priority": priority, "channel": channel, "via": channel, "from_agent": False, "spam": spam,
                      "customer": copy.deepcopy(self._customers[customer_id]), "assignee_user": None,
                      "assignee_team": None, "language": "en", "subject": subject, "meta": None,
                      "tags": [self._tag(t) for t in dict.fromkeys(tags)], "custom_fields": None,
                      "created_datetime": now, "opened_datetime": None, "last_received_message_datetime": None,
                      "last_message_datetime": None, "updated_datetime": now, "closed_datetime": None,
                      "snooze_datetime": None, "trashed_datetime": None, "reply_options": {}}
            if assignee_id is not None:
                ticket["assignee_user"] = self._user_ref(assignee_id)
            self._tickets[id] = ticket
            self._messages[id] = []
            for spec in messages:
                self._append(id, spec)
            return copy.deepcopy(ticket)

    def touch(self, ticket_id: int) -> str:
        """Record a change to the ticket now (the update behind a webhook): a new ``updated_datetime``."""
        with self._lock:
            self._tickets[ticket_id]["updated_datetime"] = self._now()
            return self._tickets[ticket_id]["updated_datetime"]

    def trash(self, ticket_id: int) -> None:
        """Move the ticket to the trash now (an update: a new ``updated_datetime`` too)."""
        with self._lock:
            now = self._now()
            self._tickets[ticket_id].update(trashed_datetime=now, updated_datetime=now)

    def backdate(self, ticket_id: int, *, days: float) -> None:
        """Move every time of the ticket and its messages `days` into the past, as if it were that old."""
        def earlier(value: Any) -> Any:
            if not isinstance(value, str):
                return value
            moment = datetime.fromisoformat(value).timestamp() - days * 86400
            return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")

        with self._lock:
            for item in (self._tickets[ticket_id], *self._messages[ticket_id]):
                for key in [k for k in item if k.endswith("_datetime")]:
                    item[key] = earlier(item[key])

    def ticket(self, ticket_id: int) -> dict:
        """The ticket's current state (a copy, without messages); KeyError if unknown."""
        with self._lock:
            return copy.deepcopy(self._tickets[ticket_id])

    def messages(self, ticket_id: int) -> list[dict]:
        """The ticket's messages, oldest first (copies); KeyError if unknown."""
        with self._lock:
            return copy.deepcopy(self._messages[ticket_id])

    # ------------------------------------------------------------ internals
    def _now(self) -> str:
        # The real time with microseconds, like Gorgias; each change at least a second after the last (as the fake
        # Zendesk does), so "updated since" a change's second is unambiguous in tests.
        self._clock = max(self._clock + 1, time.time())
        return datetime.fromtimestamp(self._clock, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")

    def _tag(self, name: str) -> dict:
        self._ids["tag"] += 1
        return {"id": self._ids["tag"], "name": name, "uri": f"/api/tags/{self._ids['tag']}/", "decoration": None}

    def _user_ref(self, user_id: int) -> dict:
        user = self._users[user_id]
        return {k: user[k] for k in ("id", "email", "name", "firstname", "lastname")}

    def _append(self, ticket_id: int, spec: dict) -> dict:
        ticket = self._tickets[ticket_id]
        customer = ticket["customer"]
        from_agent = bool(spec.get("from_agent"))
        public = spec.get("public", True) is not False
        if from_agent:
            sender = self._user_ref(spec.get("sender_id", API_USER_ID))
            receiver = None if not public else {k: customer[k] for k in ("id", "email", "name")}
            source = {"type": "internal-note"} if not public else {
                "type": "email", "from": {"address": SUPPORT_ADDRESS, "name": "Acme Support"},
                "to": [{"address": customer["email"], "name": customer["name"]}]}
        else:
            sender, receiver = {k: customer[k] for k in ("id", "email", "name")}, None
            source = {"type": "email", "from": {"address": customer["email"], "name": customer["name"]},
                      "to": [{"address": SUPPORT_ADDRESS, "name": "Acme Support"}]}
        body_text = spec.get("body_text") or ""
        body_html = spec.get("body_html") or "".join(f"<div>{html.escape(line)}</div>"
                                                     for line in body_text.split("\n"))
        self._ids["message"] += 1
        now = self._now()
        message = {"id": self._ids["message"], "uri": f"/api/tickets/{ticket_id}/messages/{self._ids['message']}/",
                   "ticket_id": ticket_id, "external_id": None, "message_id": None,
                   "channel": spec.get("channel") or ("internal-note" if not public else ticket["channel"]),
                   "via": spec.get("via") or "helpdesk", "from_agent": from_agent, "public": public,
                   "sender": sender, "receiver": receiver, "source": source,
                   "integration_id": None if not public else EMAIL_INTEGRATION_ID, "subject": spec.get("subject"),
                   "body_text": body_text, "body_html": body_html,
                   "stripped_text": spec.get("stripped_text", body_text), "stripped_html": None,
                   "attachments": [{"name": name, "url": f"https://uploads.gorgias.example/{name}",
                                    "content_type": "application/octet-stream", "size": 1024}
                                   for name in spec.get("attachments") or []],
                   "macros": spec.get("macros") or [], "created_datetime": now, "sent_datetime": None,
                   "failed_datetime": None, "opened_datetime": None, "rule_id": None, "meta": None}
        self._messages[ticket_id].append(message)
        ticket["updated_datetime"] = now
        ticket["last_message_datetime"] = now
        if not from_agent:
            ticket["last_received_message_datetime"] = now
            if ticket["status"] == "closed" or ticket["snooze_datetime"]:
                # A customer's reply reopens a closed ticket and wakes a snoozed one.
                ticket["status"], ticket["snooze_datetime"], ticket["closed_datetime"] = "open", None, None
        return message

    def _dispatch(self, http_method: str, path: str) -> tuple[str, Handler]:
        for verb, pattern, name in _ROUTES:
            if verb == http_method and pattern.match(path):
                return name, self._limited(getattr(self, f"_h_{name}"))
        return "unknown", self._limited(self._h_unknown)

    def _limited(self, handler: Handler) -> Handler:
        def run(req: Request, params: dict) -> Response:
            with self._lock:
                header = None
                if self._bucket is not None:
                    capacity, leak = self._bucket
                    now = time.monotonic()
                    self._level = max(0.0, self._level - (now - self._level_at) * leak)
                    self._level_at = now
                    if self._level + 1 > capacity:
                        wait = max(1, int((self._level + 1 - capacity) / leak + 0.999))
                        return 429, {"Retry-after": str(wait),
                                     "X-Gorgias-Account-Api-Call-Limit": f"{int(self._level)}/{capacity}"}, {
                            "error": {"msg": "Too many requests"}}
                    self._level += 1
                    header = f"{int(self._level)}/{capacity}"
            status, headers, payload = handler(req, params)
            if header:
                headers = {**headers, "X-Gorgias-Account-Api-Call-Limit": header}
            return status, headers, payload
        return run

    def _failure_body(self, status: int) -> Any:
        return {"error": {"msg": "Too many requests" if status == 429 else f"Injected HTTP {status}"}}

    def _parse_params(self, req: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(req.query)
        if req.body:
            decoded = json.loads(req.body.decode("utf-8"))
            if isinstance(decoded, dict):
                params.update(decoded)
        return params

    def _authorized(self, req: Request) -> bool:
        scheme, _, value = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == self.email and password == self.api_key

    def _guard(self, req: Request) -> Response | None:
        return None if self._authorized(req) else _error(401, "Authentication failed: wrong email or API key")

    @staticmethod
    def _path_id(req: Request) -> int:
        return int(re.findall(r"/(\d+)", req.path)[0])

    def _page(self, req: Request, items: list[dict], params: dict, *, default_order: str) -> Response:
        """One page of a cursor listing (the pagination page's request parameters and response attributes)."""
        try:
            limit = int(params.get("limit", 30))
            offset = int(json.loads(base64.b64decode(params["cursor"]))[1]) if params.get("cursor") else 0
        except (ValueError, TypeError, IndexError, KeyError):
            return _error(400, "Invalid pagination parameters")
        if not 1 <= limit <= 100:
            return _error(400, "limit: must be between 1 and 100")
        limit = min(limit, self.max_page_size)
        field, _, direction = str(params.get("order_by") or default_order).partition(":")
        items = sorted(items, key=lambda i: (str(i.get(field) or ""), i.get("id") or 0), reverse=direction == "desc")
        chunk = items[offset:offset + limit]

        def cursor(at: int) -> str:
            return base64.b64encode(json.dumps(["next", at]).encode()).decode()

        return 200, {}, {"data": copy.deepcopy(chunk), "object": "list", "uri": req.path,
                         "meta": {"next_cursor": cursor(offset + limit) if offset + limit < len(items) else None,
                                  "prev_cursor": cursor(max(0, offset - limit)) if offset else None}}

    # ------------------------------------------------------------ handlers
    def _h_unknown(self, req: Request, params: dict) -> Response:
        return self._guard(req) or _error(404, f"Not found: {req.http_method} {req.path}")

    def _h_list_tickets(self, req: Request, params: dict) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            with_trashed = str(params.get("trashed", "true")).lower() != "false"
            tickets = [t for t in self._tickets.values() if with_trashed or not t["trashed_datetime"]]
            return self._page(req, tickets, params, default_order="created_datetime:desc")

    def _h_get_ticket(self, req: Request, params: dict) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            ticket = self._tickets.get(self._path_id(req))
            if ticket is None:
                return _error(404, "Ticket not found")
            return 200, {}, {**copy.deepcopy(ticket), "messages": copy.deepcopy(self._messages[ticket["id"]])}

    def _h_update_ticket(self, req: Request, params: dict) -> Response:
        if denied := self._guard(req):
            return denied
        try:
            changes = json.loads(req.body.decode("utf-8")) if req.body else None
        except (ValueError, UnicodeDecodeError):
            return _error(400, "The request body is not valid JSON")
        if not isinstance(changes, dict):
            return _error(400, "Expected a JSON object")
        with self._lock:
            ticket = self._tickets.get(self._path_id(req))
            if ticket is None:
                return _error(404, "Ticket not found")
            if "status" in changes and changes["status"] not in _STATUSES:
                return _error(400, f"status: must be one of {sorted(_STATUSES)}")
            if "priority" in changes and changes["priority"] not in _PRIORITIES:
                return _error(400, f"priority: must be one of {sorted(_PRIORITIES)}")
            assignee = changes.get("assignee_user")
            if assignee is not None and (not isinstance(assignee, dict) or assignee.get("id") not in self._users):
                return _error(400, "assignee_user: no such user")
            if changes.get("snooze_datetime") is not None and not _readable_time(changes["snooze_datetime"]):
                return _error(400, "snooze_datetime: not an ISO 8601 datetime")
            for key in ("status", "priority", "snooze_datetime", "subject"):
                if key in changes:
                    ticket[key] = changes[key]
            if "assignee_user" in changes:
                ticket["assignee_user"] = None if assignee is None else self._user_ref(assignee["id"])
            now = self._now()
            if changes.get("status") == "closed":
                ticket["closed_datetime"] = now
            elif changes.get("status") == "open":
                ticket["closed_datetime"] = None
            ticket["updated_datetime"] = now
            return 202, {}, copy.deepcopy(ticket)

    def _h_create_message(self, req: Request, params: dict) -> Response:
        if denied := self._guard(req):
            return denied
        try:
            body = json.loads(req.body.decode("utf-8")) if req.body else None
        except (ValueError, UnicodeDecodeError):
            return _error(400, "The request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "Expected a JSON object")
        with self._lock:
            ticket_id = self._path_id(req)
            if ticket_id not in self._tickets:
                return _error(404, "Ticket not found")
            problem = self._message_problem(body)
            if problem:
                return _error(400, problem)
            sender = body["sender"]
            sender_id = sender.get("id") if sender.get("id") is not None else next(
                u["id"] for u in self._users.values() if u["email"].lower() == str(sender.get("email")).lower())
            message = self._append(ticket_id, {
                "from_agent": body["from_agent"], "sender_id": sender_id, "body_text": body.get("body_text") or "",
                "body_html": body.get("body_html"), "public": body.get("public", True), "channel": body["channel"],
                "via": body["via"], "subject": body.get("subject"), "macros": body.get("macros"),
                "stripped_text": None})
            if body.get("source"):
                message["source"] = copy.deepcopy(body["source"])
            message["integration_id"] = body.get("integration_id")
            return 201, {}, copy.deepcopy(message)

    def _message_problem(self, body: dict) -> str | None:
        for key in ("channel", "via", "from_agent"):
            if key not in body:
                return f"{key}: missing data for required field"
        if body["channel"] not in _CHANNELS:
            return f"channel: {body['channel']!r} is not a valid channel"
        if not (body.get("body_text") or body.get("body_html")):
            return "body_text: a message needs a body"
        if body["from_agent"] is not True:
            return "from_agent: only outgoing messages and internal notes are supported by this fake"
        sender = body.get("sender")
        if not isinstance(sender, dict) or not (
                sender.get("id") in self._users
                or any(u["email"].lower() == str(sender.get("email") or "").lower() for u in self._users.values())):
            return "sender: an outgoing message must reference a user"
        note = body["channel"] == "internal-note"
        if note and body.get("public", True) is not False:
            return "public: an internal note is not public"
        if not note:
            receiver = body.get("receiver")
            if not isinstance(receiver, dict) or not (receiver.get("id") or receiver.get("email")):
                return "receiver: an outgoing message needs a receiver"
            source = body.get("source") or {}
            if not isinstance(source, dict) or not any(isinstance(a, dict) and a.get("address")
                                                       for a in source.get("to") or []):
                return "source.to: an outgoing message needs an address to send to"
        return None

    def _h_list_ticket_messages(self, req: Request, params: dict) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            ticket_id = self._path_id(req)
            if ticket_id not in self._tickets:
                return _error(404, "Ticket not found")
            return self._page(req, self._messages[ticket_id], params, default_order="created_datetime:asc")

    def _h_list_messages(self, req: Request, params: dict) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            wanted = params.get("ticket_id")
            messages = [m for ms in self._messages.values() for m in ms
                        if wanted in (None, "") or str(m["ticket_id"]) == str(wanted)]
            return self._page(req, messages, params, default_order="created_datetime:desc")

    def _h_add_tags(self, req: Request, params: dict) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            ticket = self._tickets.get(self._path_id(req))
            if ticket is None:
                return _error(404, "Ticket not found")
            names = params.get("names") or []
            if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
                return _error(400, "names: a list of tag names is required")
            have = {t["name"] for t in ticket["tags"]}
            ticket["tags"].extend(self._tag(n) for n in dict.fromkeys(names) if n not in have)
            ticket["updated_datetime"] = self._now()
            return 201, {}, b""

    def _h_list_users(self, req: Request, params: dict) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            return self._page(req, list(self._users.values()), params, default_order="name:asc")

    def _h_get_user(self, req: Request, params: dict) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            user = self._users.get(self._path_id(req))
            return (200, {}, copy.deepcopy(user)) if user else _error(404, "User not found")

    def _h_list_macros(self, req: Request, params: dict) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            macros = [m for m in self._macros if not m["archived_datetime"]]
            return self._page(req, macros, params, default_order="name:asc")


def _readable_time(value: Any) -> bool:
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
