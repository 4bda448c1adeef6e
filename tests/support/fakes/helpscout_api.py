"""A stateful fake of the Help Scout Mailbox API 2.0 and Docs API (the subset Seam uses), imitating the
documented payloads:

* https://developer.helpscout.com/mailbox-api/overview/authentication/ — "All requests have to be authenticated
  via the Authorization header" (`Bearer <token>`); the client-credentials flow posts `grant_type=client_credentials`,
  `client_id`, `client_secret` ("as JSON, form or query params") to `/v2/oauth2/token` and gets
  `{"token_type": "bearer", "access_token": …, "expires_in": …}`. Tokens here live `token_ttl` seconds (Help
  Scout's last two days) and an expired or unknown one is answered 401.
* .../overview/rate-limiting/ — 429 with `X-RateLimit-Retry-After` (inject it with `fail(..., headers=…)`).
* .../endpoints/conversations/get/ and .../list/ — the conversation object (`id`, `number`, `threads`, `status`
  active|pending|closed|spam, `state`, `subject`, `mailboxId`, `assignee`, `createdBy`, `createdAt`, `closedAt`,
  `userUpdatedAt`, `customerWaitingSince` {time, friendly}, `tags` [{id, color, tag}], `primaryCustomer`,
  `customFields` [{id, name, value, text}], `_links`); `embed=threads`; the list filters `status` (default
  active), `modifiedSince`, `sortField`, `sortOrder`, `page`, in `_embedded.conversations` with `page` {size,
  totalElements, totalPages, number} and `_links.next`.
* .../conversations/threads/list/ — threads newest first; `type` customer | message | note | lineitem | …,
  `state`, `body`, `createdBy` {id, type, first, last, email}, `savedReplyId`, `_embedded.attachments`.
* .../threads/reply/ — `customer` and `text` required; "If not explicitly set, a reply thread will reactivate the
  conversation"; 201 with `Resource-ID`. .../threads/note/ — `text` required. Threads are credited to the token's
  user ("The resource owner is the default when not set"). More than 100 threads: 412.
* .../conversations/update/ — JSON Patch `{op, path, value}` on `/status`, `/assignTo`, `/subject`; 204.
* .../conversations/tags/update/ — PUT `{"tags": [...]}` replaces the whole set; 204.
* .../users/list/ — `email` is an "exact match" filter; `_embedded.users`, 50 a page. `GET /v2/users/me` is the
  resource owner.
* .../mailboxes/… saved-replies-list and saved-replies-get — a bare list of {id, name, preview}; one in full
  {id, name, text}.
* https://developer.helpscout.com/docs-api/ — Basic auth with the API key as user name; `GET /v1/collections`,
  `/v1/collections/{id}/articles?status=…`, `/v1/articles/{id}` in `{"collections"|"articles": {page, pages,
  count, items}}` and `{"article": {…}}` envelopes.

Each route has a logical name for `calls_to`, `fail`, `set_delay` and `wait_for`: token, me, list_users,
list_conversations, get_conversation, list_threads, create_reply, create_note, update_conversation, update_tags,
list_mailboxes, list_saved_replies, get_saved_reply, docs_collections, docs_articles, docs_article. Anything else is
"unknown" and answered 404.
"""

from __future__ import annotations

import base64
import copy
import html
import json
import math
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from ._base import FakeHTTPServer, Handler, Request, Response

__all__ = ["FakeHelpScout"]

STATUSES = ("active", "pending", "closed", "spam")
MAX_THREADS = 100
_TAG_RE = re.compile(r"<[^>]+>")

_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"^/v2/oauth2/token/?$"), "token"),
    ("GET", re.compile(r"^/v2/users/me/?$"), "me"),
    ("GET", re.compile(r"^/v2/users/?$"), "list_users"),
    ("GET", re.compile(r"^/v2/conversations/?$"), "list_conversations"),
    ("GET", re.compile(r"^/v2/conversations/(\d+)/threads/?$"), "list_threads"),
    ("POST", re.compile(r"^/v2/conversations/(\d+)/reply/?$"), "create_reply"),
    ("POST", re.compile(r"^/v2/conversations/(\d+)/notes/?$"), "create_note"),
    ("PUT", re.compile(r"^/v2/conversations/(\d+)/tags/?$"), "update_tags"),
    ("GET", re.compile(r"^/v2/conversations/(\d+)/?$"), "get_conversation"),
    ("PATCH", re.compile(r"^/v2/conversations/(\d+)/?$"), "update_conversation"),
    ("GET", re.compile(r"^/v2/mailboxes/?$"), "list_mailboxes"),
    ("GET", re.compile(r"^/v2/mailboxes/(\d+)/saved-replies/?$"), "list_saved_replies"),
    ("GET", re.compile(r"^/v2/mailboxes/(\d+)/saved-replies/(\d+)/?$"), "get_saved_reply"),
    ("GET", re.compile(r"^/v1/collections/?$"), "docs_collections"),
    ("GET", re.compile(r"^/v1/collections/([^/]+)/articles/?$"), "docs_articles"),
    ("GET", re.compile(r"^/v1/articles/([^/]+)/?$"), "docs_article"),
]


def _error(status: int, message: str, **extra: Any) -> Response:
    return status, {}, {"message": message, **extra}


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _page(records: list, page: int, size: int) -> tuple[list, dict]:
    total_pages = max(1, math.ceil(len(records) / size))
    chunk = records[(page - 1) * size: page * size]
    return chunk, {"size": size, "totalElements": len(records), "totalPages": total_pages, "number": page}


class FakeHelpScout(FakeHTTPServer):
    """Stateful fake Help Scout on 127.0.0.1 (see the module docstring)."""

    def __init__(self, *, app_id: str = "hs-app-id", app_secret: str = "hs-app-secret", token_ttl: float = 172800,
                 docs_api_key: str = "hs-docs-key", page_size: int = 25, users_page_size: int = 50) -> None:
        super().__init__()
        self.app_id, self.app_secret, self.docs_api_key = app_id, app_secret, docs_api_key
        self.token_ttl = token_ttl
        self.page_size, self.users_page_size = page_size, users_page_size
        self._clock = 0
        self._seq = 1000
        self._tokens: dict[str, float] = {}  # access token → expires at (time.monotonic)
        self._users: dict[int, dict[str, Any]] = {}
        self._customers: dict[int, dict[str, Any]] = {}
        self._conversations: dict[int, dict[str, Any]] = {}
        self._threads: dict[int, list[dict[str, Any]]] = {}
        self._modified: dict[int, float] = {}
        self._mailboxes: list[dict[str, Any]] = [{"id": 1, "name": "Support", "email": "support@acme.example"}]
        self._saved_replies: dict[int, list[dict[str, Any]]] = {1: []}
        self._collections: list[dict[str, Any]] = []
        self._articles: dict[str, dict[str, Any]] = {}
        self.api_user_id = self.add_user("Seam", "Bot", "seam-bot@acme.example", role="admin")

    def start(self) -> FakeHelpScout:
        super().start()
        return self

    def __enter__(self) -> FakeHelpScout:
        return self.start()

    # ------------------------------------------------------------ test helpers
    def add_user(self, first: str, last: str, email: str, *, role: str = "user",
                 alternate_emails: Sequence[str] = ()) -> int:
        with self._lock:
            user_id = self._next_id()
            now = _iso(self._now())
            self._users[user_id] = {"id": user_id, "firstName": first, "lastName": last, "email": email,
                                    "role": role, "timezone": "UTC", "createdAt": now, "updatedAt": now,
                                    "type": "user", "mention": first.lower(), "initials": (first[:1] + last[:1]),
                                    "alternateEmails": list(alternate_emails)}
            return user_id

    def add_customer(self, first: str, last: str, email: str) -> int:
        with self._lock:
            customer_id = self._next_id()
            self._customers[customer_id] = {"id": customer_id, "first": first, "last": last, "email": email}
            return customer_id

    def add_conversation(self, *, subject: str, customer_id: int, threads: Iterable[dict[str, Any]] = (),
                         tags: Iterable[str] = (), status: str = "active", state: str = "published",
                         custom_fields: Iterable[dict[str, Any]] = (), mailbox_id: int = 1) -> int:
        """A conversation and its threads, oldest first. A thread is {"body", "type" (customer, message, note,
        lineitem, …; default customer), "user_id" (its author when a user wrote it), "state", "attachments"
        (file names), "saved_reply_id"}; thread times increase in order."""
        with self._lock:
            conversation_id = self._next_id()
            customer = self._customers[customer_id]
            now = self._now()
            self._conversations[conversation_id] = {
                "id": conversation_id, "number": conversation_id - 1000, "type": "email", "folderId": 1,
                "status": status, "state": state, "subject": subject, "preview": "", "mailboxId": mailbox_id,
                "createdBy": {"id": customer_id, "type": "customer", "email": customer["email"]},
                "createdAt": _iso(now), "userUpdatedAt": _iso(now),
                "customerWaitingSince": {"time": _iso(now), "friendly": "just now"},
                "source": {"type": "email", "via": "customer"}, "tags": [], "cc": [], "bcc": [],
                "primaryCustomer": {"id": customer_id, "type": "customer", "first": customer["first"],
                                    "last": customer["last"], "email": customer["email"]},
                "customFields": [dict(f) for f in custom_fields]}
            self._threads[conversation_id] = []
            self._set_tags(conversation_id, tags)
            for thread in threads:
                self._add_thread(conversation_id, kind=thread.get("type", "customer"), body=thread.get("body", ""),
                                 user_id=thread.get("user_id"), state=thread.get("state", "published"),
                                 attachments=thread.get("attachments", ()),
                                 saved_reply_id=thread.get("saved_reply_id", 0), action=thread.get("action"))
            self._touch(conversation_id)
            return conversation_id

    def add_activity(self, conversation_id: int, *, field: str, value: str, user_id: int) -> None:
        """A user changes a custom field in Help Scout's UI: the conversation changes (and a convo.custom-fields
        webhook would follow) without any thread being written."""
        with self._lock:
            fields = self._conversations[conversation_id]["customFields"]
            existing = next((f for f in fields if f["name"] == field), None)
            if existing is None:
                fields.append({"id": len(fields) + 1, "name": field, "value": value, "text": value})
            else:
                existing.update(value=value, text=value)
            self._touch(conversation_id, user=True)

    def bulk_change(self, conversation_ids: Iterable[int], *, status: str, user_id: int) -> None:
        """A user changes the status of many conversations at once (a bulk action in Help Scout's UI): all of them
        are modified in the same second."""
        with self._lock:
            now = self._now()
            for conversation_id in conversation_ids:
                self._conversations[conversation_id].update(status=status, userUpdatedAt=_iso(now))
                self._modified[conversation_id] = now
                if status == "closed":
                    self._conversations[conversation_id].update(closedAt=_iso(now), closedBy=user_id)

    def conversation(self, conversation_id: int, *, embed_threads: bool = False) -> dict[str, Any]:
        """The conversation as `GET /v2/conversations/{id}` returns it (a copy); KeyError if unknown."""
        with self._lock:
            return self._conversation_json(conversation_id, embed_threads=embed_threads)

    def threads(self, conversation_id: int) -> list[dict[str, Any]]:
        """The conversation's threads, oldest first (copies); KeyError if unknown."""
        with self._lock:
            return copy.deepcopy(self._threads[conversation_id])

    def modified_at(self, conversation_id: int) -> float:
        """When the conversation last changed (Unix seconds): what `modifiedSince` compares with."""
        with self._lock:
            return self._modified[conversation_id]

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (as when Help Scout revokes them early)."""
        with self._lock:
            self._tokens.clear()

    def add_saved_reply(self, name: str, text: str, *, mailbox_id: int = 1) -> int:
        with self._lock:
            reply_id = self._next_id()
            self._saved_replies.setdefault(mailbox_id, []).append({"id": reply_id, "name": name, "text": text})
            return reply_id

    def add_mailbox(self, name: str) -> int:
        with self._lock:
            mailbox_id = self._next_id()
            self._mailboxes.append({"id": mailbox_id, "name": name, "email": f"{name.lower()}@acme.example"})
            self._saved_replies[mailbox_id] = []
            return mailbox_id

    def add_docs_collection(self, name: str, *, visibility: str = "public") -> str:
        with self._lock:
            collection_id = f"c{self._next_id():x}"
            self._collections.append({"id": collection_id, "siteId": "s1", "name": name, "visibility": visibility,
                                      "order": len(self._collections) + 1})
            return collection_id

    def add_docs_article(self, collection_id: str, name: str, text: str, *, status: str = "published") -> str:
        with self._lock:
            article_id = f"a{self._next_id():x}"
            self._articles[article_id] = {"id": article_id, "number": len(self._articles) + 1,
                                          "collectionId": collection_id, "status": status, "hasDraft": False,
                                          "name": name, "text": text, "slug": name.lower().replace(" ", "-"),
                                          "publicUrl": f"https://acme.helpscoutdocs.com/article/{article_id}"}
            return article_id

    def update_saved_reply(self, reply_id: int, *, name: str, text: str) -> None:
        with self._lock:
            next(r for replies in self._saved_replies.values() for r in replies if r["id"] == reply_id).update(
                name=name, text=text)

    def remove_saved_reply(self, reply_id: int) -> None:
        with self._lock:
            for mailbox_id, replies in self._saved_replies.items():
                self._saved_replies[mailbox_id] = [r for r in replies if r["id"] != reply_id]

    def update_docs_article(self, article_id: str, *, name: str, text: str) -> None:
        with self._lock:
            self._articles[article_id].update(name=name, text=text)

    def remove_docs_article(self, article_id: str) -> None:
        with self._lock:
            del self._articles[article_id]

    # ------------------------------------------------------------ internals
    def _next_id(self) -> int:
        self._seq += 1
        return self._seq

    def _now(self) -> float:
        # The real time to the second, kept strictly increasing so threads and changes stay ordered.
        self._clock = max(self._clock + 1, int(time.time()))
        return float(self._clock)

    def _touch(self, conversation_id: int, *, user: bool = False) -> float:
        now = self._now()
        self._modified[conversation_id] = now
        if user:
            self._conversations[conversation_id]["userUpdatedAt"] = _iso(now)
        return now

    def _person(self, user_id: int | None, conversation_id: int) -> dict[str, Any]:
        if user_id is None:
            customer = self._conversations[conversation_id]["primaryCustomer"]
            return {"id": customer["id"], "type": "customer", "first": customer["first"], "last": customer["last"],
                    "email": customer["email"]}
        user = self._users[user_id]
        return {"id": user_id, "type": "user", "first": user["firstName"], "last": user["lastName"],
                "email": user["email"]}

    def _add_thread(self, conversation_id: int, *, kind: str, body: str, user_id: int | None,
                    state: str = "published", attachments: Iterable[str] = (), saved_reply_id: int = 0,
                    action: dict | None = None, status: str | None = None) -> dict[str, Any]:
        conversation = self._conversations[conversation_id]
        now = self._now()
        by = self._person(user_id, conversation_id)
        thread = {"id": self._next_id(), "type": kind, "status": status or "nochange", "state": state,
                  "action": action or {"type": "default", "associatedEntities": {}}, "body": body,
                  "source": {"type": "email" if by["type"] == "customer" else "web", "via": by["type"]},
                  "customer": dict(conversation["primaryCustomer"]), "createdBy": by, "assignedTo": None,
                  "savedReplyId": saved_reply_id, "to": [], "cc": [], "bcc": [], "createdAt": _iso(now),
                  "openedAt": None,
                  "_embedded": {"attachments": [{"id": self._next_id(), "filename": name, "mimeType":
                                                 "application/octet-stream", "size": 100, "state": "valid"}
                                                for name in attachments]}}
        self._threads[conversation_id].append(thread)
        if kind == "customer":
            if not self._waiting_since_set(conversation_id):
                conversation["customerWaitingSince"] = {"time": _iso(now), "friendly": "just now"}
        elif by["type"] == "user":
            conversation["userUpdatedAt"] = _iso(now)
        if kind not in ("lineitem", "note") and state == "published":
            conversation["preview"] = html.unescape(_TAG_RE.sub(" ", body))[:185]
        self._modified[conversation_id] = now
        return thread

    def _waiting_since_set(self, conversation_id: int) -> bool:
        # The customer has been waiting since their first message after the last reply.
        for thread in reversed(self._threads[conversation_id][:-1]):
            if thread["type"] == "customer":
                return True
            if thread["type"] in ("message", "reply"):
                return False
        return False

    def _set_tags(self, conversation_id: int, names: Iterable[str]) -> None:
        unique = list(dict.fromkeys(str(n).strip().lower() for n in names if str(n).strip()))
        self._conversations[conversation_id]["tags"] = [
            {"id": 9000 + sum(map(ord, n)), "color": "#929499", "tag": n} for n in unique]

    def _conversation_json(self, conversation_id: int, *, embed_threads: bool = False) -> dict[str, Any]:
        conversation = copy.deepcopy(self._conversations[conversation_id])
        threads = self._threads[conversation_id]
        conversation["threads"] = len(threads)
        base = f"{self.url}/v2/conversations/{conversation_id}"
        conversation["_links"] = {"self": {"href": base}, "threads": {"href": f"{base}/threads"},
                                  "mailbox": {"href": f"{self.url}/v2/mailboxes/{conversation['mailboxId']}"}}
        if embed_threads:
            conversation["_embedded"] = {"threads": copy.deepcopy(list(reversed(threads)))}
        return conversation

    def _dispatch(self, http_method: str, path: str) -> tuple[str, Handler]:
        for verb, pattern, name in _ROUTES:
            if verb == http_method and pattern.match(path):
                return name, getattr(self, f"_h_{name}")
        return "unknown", self._h_unknown

    def _failure_body(self, status: int) -> Any:
        if status == 429:
            return {"message": "Too many requests"}
        return {"message": f"Injected HTTP {status}"}

    def _parse_params(self, req: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(req.query)
        if req.body:
            if "application/x-www-form-urlencoded" in req.headers.get("content-type", ""):
                params.update({k: v[-1] for k, v in parse_qs(req.body.decode("utf-8")).items()})
            else:
                decoded = json.loads(req.body.decode("utf-8"))
                if isinstance(decoded, dict):
                    params.update(decoded)
        return params

    def _bearer(self, req: Request) -> str | None:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        with self._lock:
            expires = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
            return token.strip() if expires is not None and expires > time.monotonic() else None

    def _guard(self, req: Request) -> Response | None:
        if self._bearer(req) is None:
            return _error(401, "Unauthorized: a valid access token is required", error="invalid_token")
        return None

    def _docs_guard(self, req: Request) -> Response | None:
        scheme, _, value = req.headers.get("authorization", "").partition(" ")
        try:
            user = base64.b64decode(value).decode("utf-8").partition(":")[0] if scheme.lower() == "basic" else ""
        except (ValueError, UnicodeDecodeError):
            user = ""
        return None if user and user == self.docs_api_key else _error(401, "Invalid API key")

    @staticmethod
    def _ids(req: Request) -> list[str]:
        return re.findall(r"/(?:conversations|mailboxes|saved-replies|collections|articles)/([^/]+)", req.path)

    @staticmethod
    def _json(req: Request) -> Any:
        try:
            return json.loads(req.body.decode("utf-8")) if req.body else None
        except (ValueError, UnicodeDecodeError):
            return None

    @staticmethod
    def _page_number(params: dict[str, Any]) -> int:
        try:
            return max(1, int(params.get("page", 1)))
        except (TypeError, ValueError):
            return 1

    def _links(self, path: str, page: dict, params: dict[str, Any]) -> dict[str, Any]:
        query = "&".join(f"{k}={v}" for k, v in params.items() if k != "page")
        joiner = f"?{query}&" if query else "?"
        links = {"self": {"href": f"{self.url}{path}{joiner}page={page['number']}"},
                 "first": {"href": f"{self.url}{path}{joiner}page=1"},
                 "last": {"href": f"{self.url}{path}{joiner}page={page['totalPages']}"}}
        if page["number"] < page["totalPages"]:
            links["next"] = {"href": f"{self.url}{path}{joiner}page={page['number'] + 1}"}
        return links

    # ------------------------------------------------------------ handlers
    def _h_unknown(self, req: Request, params: dict[str, Any]) -> Response:
        return _error(404, f"Not found: {req.http_method} {req.path}")

    def _h_token(self, req: Request, params: dict[str, Any]) -> Response:
        if params.get("grant_type") != "client_credentials":
            return _error(400, "unsupported grant_type", error="unsupported_grant_type")
        if params.get("client_id") != self.app_id or params.get("client_secret") != self.app_secret:
            return _error(401, "invalid client credentials", error="invalid_client")
        token = secrets.token_hex(16)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_ttl
        return 200, {}, {"token_type": "bearer", "access_token": token, "expires_in": self.token_ttl}

    def _h_me(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            return 200, {}, copy.deepcopy(self._users[self.api_user_id])

    def _h_list_users(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            users = sorted(self._users.values(), key=lambda u: u["id"])
            if "email" in params:  # "an exact match"
                users = [u for u in users if u["email"] == params["email"]]
            chunk, page = _page(copy.deepcopy(users), self._page_number(params), self.users_page_size)
        body: dict[str, Any] = {"page": page, "_links": self._links("/v2/users", page, params)}
        if chunk:
            body["_embedded"] = {"users": chunk}
        return 200, {}, body

    def _h_list_conversations(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        status = str(params.get("status", "active"))
        if status not in (*STATUSES, "all", "open"):
            return _error(400, f"invalid status {status!r}")
        since = None
        if "modifiedSince" in params:
            try:
                since = datetime.fromisoformat(str(params["modifiedSince"]).replace("Z", "+00:00")).timestamp()
            except ValueError:
                return _error(400, "modifiedSince must be an ISO 8601 date-time")
        field = str(params.get("sortField", "createdAt"))
        if field not in ("createdAt", "modifiedAt", "number", "status", "subject"):
            return _error(400, f"invalid sortField {field!r}")
        with self._lock:
            found = [cid for cid, c in self._conversations.items()
                     if (status == "all" and c["status"] != "spam") or c["status"] == status
                     or (status == "open" and c["status"] == "active")]
            if since is not None:
                found = [cid for cid in found if self._modified[cid] >= since]
            sort = {"modifiedAt": lambda cid: (self._modified[cid], cid)}.get(
                field, lambda cid: (self._conversations[cid].get(field) or "", cid))
            found.sort(key=sort, reverse=str(params.get("sortOrder", "desc")) == "desc")
            chunk, page = _page(found, self._page_number(params), self.page_size)
            embed = params.get("embed") == "threads"
            conversations = [self._conversation_json(cid, embed_threads=embed) for cid in chunk]
        body: dict[str, Any] = {"page": page, "_links": self._links("/v2/conversations", page, params)}
        if conversations:
            body["_embedded"] = {"conversations": conversations}
        return 200, {}, body

    def _h_get_conversation(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        cid = int(self._ids(req)[0])
        with self._lock:
            if cid not in self._conversations:
                return _error(404, "Conversation not found")
            return 200, {}, self._conversation_json(cid, embed_threads=params.get("embed") == "threads")

    def _h_list_threads(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        cid = int(self._ids(req)[0])
        with self._lock:
            if cid not in self._conversations:
                return _error(404, "Conversation not found")
            newest_first = copy.deepcopy(list(reversed(self._threads[cid])))
        chunk, page = _page(newest_first, self._page_number(params), self.page_size)
        body: dict[str, Any] = {"page": page, "_links": self._links(f"/v2/conversations/{cid}/threads", page, params)}
        if chunk:
            body["_embedded"] = {"threads": chunk}
        return 200, {}, body

    def _write_thread(self, req: Request, *, kind: str) -> Response:
        if denied := self._guard(req):
            return denied
        cid = int(self._ids(req)[0])
        body = self._json(req)
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object")
        problems = []
        if not isinstance(body.get("text"), str) or not body["text"].strip():
            problems.append({"path": "text", "message": "may not be empty"})
        if "status" in body and body["status"] not in STATUSES:
            problems.append({"path": "status", "message": f"invalid status {body['status']!r}"})
        with self._lock:
            conversation = self._conversations.get(cid)
            if conversation is None:
                return _error(404, "Conversation not found")
            if kind == "message":
                customer = body.get("customer")
                if not isinstance(customer, dict) or customer.get("id") != conversation["primaryCustomer"]["id"]:
                    problems.append({"path": "customer", "message": "must be the conversation's customer"})
            if problems:
                return _error(400, "Validation error", _embedded={"errors": problems})
            if len(self._threads[cid]) >= MAX_THREADS:
                return _error(412, "Conversation has reached the maximum number of threads")
            user_id = self._users_by_token(req)
            # "If not explicitly set, a reply thread will reactivate the conversation."
            status = body.get("status") or ("active" if kind == "message" else None)
            thread = self._add_thread(cid, kind=kind, body=body["text"], user_id=user_id, status=status)
            if status:
                self._set_status(cid, status, user_id)
            self._touch(cid, user=True)
        return 201, {"Resource-ID": str(thread["id"])}, b""

    def _users_by_token(self, req: Request) -> int:
        return self.api_user_id  # every token is the app owner's (client credentials)

    def _set_status(self, cid: int, status: str, user_id: int) -> None:
        conversation = self._conversations[cid]
        conversation["status"] = status
        if status == "closed":
            conversation.update(closedBy=user_id, closedAt=_iso(self._now()),
                                closedByUser=self._person(user_id, cid))
        else:
            for key in ("closedBy", "closedAt", "closedByUser"):
                conversation.pop(key, None)

    def _h_create_reply(self, req: Request, params: dict[str, Any]) -> Response:
        return self._write_thread(req, kind="message")

    def _h_create_note(self, req: Request, params: dict[str, Any]) -> Response:
        return self._write_thread(req, kind="note")

    def _h_update_conversation(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        cid = int(self._ids(req)[0])
        body = self._json(req)
        if not isinstance(body, dict) or body.get("op") not in ("replace", "remove", "add", "move"):
            return _error(400, "Expected a JSON Patch operation {op, path, value}")
        op, path, value = body["op"], body.get("path"), body.get("value")
        with self._lock:
            conversation = self._conversations.get(cid)
            if conversation is None:
                return _error(404, "Conversation not found")
            if path == "/status" and op == "replace" and value in STATUSES:
                self._set_status(cid, value, self.api_user_id)
            elif path == "/assignTo" and op == "replace" and isinstance(value, int) and value in self._users:
                user = self._users[value]
                conversation["assignee"] = {"id": value, "type": "user", "first": user["firstName"],
                                            "last": user["lastName"], "email": user["email"]}
            elif path == "/assignTo" and op == "remove":
                conversation.pop("assignee", None)
            elif path == "/subject" and op == "replace" and isinstance(value, str) and value:
                conversation["subject"] = value
            else:
                return _error(400, f"Invalid patch: {op} {path} {value!r}")
            self._touch(cid, user=True)
        return 204, {}, b""

    def _h_update_tags(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        cid = int(self._ids(req)[0])
        body = self._json(req)
        if not isinstance(body, dict) or not isinstance(body.get("tags"), list):
            return _error(400, 'Expected {"tags": [...]}')
        with self._lock:
            if cid not in self._conversations:
                return _error(404, "Conversation not found")
            self._set_tags(cid, body["tags"])
            self._touch(cid, user=True)
        return 204, {}, b""

    def _h_list_mailboxes(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        with self._lock:
            chunk, page = _page(copy.deepcopy(self._mailboxes), self._page_number(params), 50)
        return 200, {}, {"_embedded": {"mailboxes": chunk}, "page": page,
                         "_links": self._links("/v2/mailboxes", page, params)}

    def _h_list_saved_replies(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        mailbox_id = int(self._ids(req)[0])
        with self._lock:
            if mailbox_id not in self._saved_replies:
                return _error(404, "Mailbox not found")
            return 200, {}, [{"id": r["id"], "name": r["name"], "preview": _TAG_RE.sub("", r["text"])[:100]}
                             for r in self._saved_replies[mailbox_id]]

    def _h_get_saved_reply(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._guard(req):
            return denied
        mailbox_id, reply_id = (int(i) for i in self._ids(req)[:2])
        with self._lock:
            found = next((r for r in self._saved_replies.get(mailbox_id, []) if r["id"] == reply_id), None)
            if found is None:
                return _error(404, "Saved reply not found")
            return 200, {}, {**copy.deepcopy(found), "chatText": _TAG_RE.sub("", found["text"])}

    def _h_docs_collections(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._docs_guard(req):
            return denied
        with self._lock:
            chunk, page = _page(copy.deepcopy(self._collections), self._page_number(params), self.page_size)
        return 200, {}, {"collections": {"page": page["number"], "pages": page["totalPages"],
                                         "count": page["totalElements"], "items": chunk}}

    def _h_docs_articles(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._docs_guard(req):
            return denied
        collection_id = self._ids(req)[0]
        status = str(params.get("status", "all"))
        with self._lock:
            if not any(c["id"] == collection_id for c in self._collections):
                return _error(404, "Collection not found")
            refs = [{k: v for k, v in a.items() if k != "text"} for a in self._articles.values()
                    if a["collectionId"] == collection_id and status in ("all", a["status"])]
        chunk, page = _page(refs, self._page_number(params), self.page_size)
        return 200, {}, {"articles": {"page": page["number"], "pages": page["totalPages"],
                                      "count": page["totalElements"], "items": chunk}}

    def _h_docs_article(self, req: Request, params: dict[str, Any]) -> Response:
        if denied := self._docs_guard(req):
            return denied
        with self._lock:
            article = self._articles.get(self._ids(req)[0])
            if article is None:
                return _error(404, "Article not found")
            return 200, {}, {"article": copy.deepcopy(article)}
