"""The Front adapter: webhook signatures (application and rule webhooks) and the challenge handshake, reading a
conversation with its messages and comments, and the writes Seam makes. Paths and shapes follow Front's OpenAPI file
(github.com/frontapp/front-api-specs, core-api.json; https://dev.frontapp.com/reference). The httpx client is
injected; every call goes through `_request`: paced, retried within a deadline honouring Retry-After, and a write
whose answer was lost is never repeated blindly."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

from bot.helpdesk.base import (
    THREAD_CUT,
    Agent,
    HelpdeskError,
    ListingCut,
    Updates,
    WebhookAuthError,
    WebhookChallenge,
    WebhookEvent,
    WebhookPayloadError,
    status_after_reply,
    webhook_json,
)
from bot.helpdesk.front.settings import APP_URL, REQUESTS_PER_MINUTE, FrontSettings
from bot.helpdesk.http import checked, send, with_retries
from bot.models import Article, Message, Ticket
from bot.pacing import ChannelPacer, per_minute
from bot.retry import (
    CALL_DEADLINE,
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
)
from bot.text import encodable_all, html_to_text, iso

if TYPE_CHECKING:
    from bot.config import Settings

SIGNATURE_HEADER = "x-front-signature"
TIMESTAMP_HEADER = "x-front-request-timestamp"
CHALLENGE_HEADER = "x-front-challenge"
CONVERSATION_ID = re.compile(r"^cnv_[0-9A-Za-z]{1,40}$")
_RESOURCE_ID = re.compile(r"^[a-z]{3}_[0-9A-Za-z]{1,40}$")  # tea_…, tag_…, knb_…: they go into URL paths
# Bounds what a runaway listing can cost: 50 pages of 100 messages, or of 15 events for reconciliation.
MAX_PAGES = 50
PAGE_LIMIT = 100  # the `limit` maximum of every paginated listing
EVENTS_LIMIT = 15  # GET /events allows at most 15 a page
PACING_BURST = 5


def front_client(settings: FrontSettings) -> httpx.Client:
    """The production client: `Authorization: Bearer <API token>` (https://dev.frontapp.com/docs/authentication)."""
    return httpx.Client(
        base_url=settings.base_url, timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
        headers={"Authorization": f"Bearer {settings.api_token or ''}", "Accept": "application/json",
                 "User-Agent": "seam (+https://github.com/seam-support/seam)"})


def sign_application(secret: str, timestamp: str, body: bytes) -> str:
    """An application webhook's `X-Front-Signature`: base64(HMAC-SHA256(secret, timestamp + ":" + raw body))
    (https://dev.frontapp.com/docs/application-webhooks, "Verifying integrity")."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b":" + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def sign_rule(secret: str, body: bytes) -> str:
    """A rule webhook's `X-Front-Signature`: base64(HMAC-SHA1(secret, raw body))
    (https://dev.frontapp.com/docs/rule-webhooks, "Validating Data Integrity")."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha1).digest()).decode()


def _timestamp_seconds(raw: str) -> float:
    """`X-Front-Request-Timestamp` is in milliseconds; seconds are accepted too."""
    raw = raw.strip()
    if not re.fullmatch(r"[0-9]{1,16}(\.[0-9]{1,6})?", raw):
        raise WebhookAuthError("unreadable signature timestamp")
    value = float(raw)
    return value / 1000 if value > 1e11 else value


def when(value: Any) -> str | None:
    """Front's times (Unix seconds, with milliseconds) as ISO 8601."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return iso(datetime.fromtimestamp(value, UTC))
    except (OverflowError, OSError, ValueError):
        return None


def conversation_of(event: Mapping) -> str | None:
    """The conversation id of an event: `conversation.id`, else the last segment of `conversation._links.self`
    (an event preview carries links), else a top-level `conversation_id`."""
    conversation = event.get("conversation")
    if isinstance(conversation, dict):
        found = conversation.get("id")
        if not isinstance(found, str):
            links = conversation.get("_links")
            link = links.get("self") if isinstance(links, dict) else None
            found = urlsplit(link).path.rsplit("/", 1)[-1] if isinstance(link, str) else ""
        return found.strip() or None
    found = event.get("conversation_id")
    return (found.strip() or None) if isinstance(found, str) else None


def _html(text: str) -> str:
    """A plain-text reply as the HTML body an email needs: paragraphs kept, line breaks kept, nothing interpreted."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs) or "<p></p>"


def _results(page: Any) -> list[dict]:
    return [r for r in (page.get("_results") if isinstance(page, dict) else None) or [] if isinstance(r, dict)]


def _files(item: dict) -> tuple[str, ...]:
    """Attached file names; images inline in the body are part of the message, not attachments."""
    return tuple(str(a["filename"]) for a in item.get("attachments") or [] if isinstance(a, dict)
                 and a.get("filename") and not (a.get("metadata") or {}).get("is_inline"))


class FrontAdapter:
    name = "front"

    def __init__(self, client: httpx.Client, *, webhook_secret: str, author_id: str | None = None,
                 tolerance_seconds: int = 300, clock: Callable[[], float] = time.time,
                 retry_deadline: float = CALL_DEADLINE,
                 pacer: ChannelPacer | None = None, write_pacer: ChannelPacer | None = None) -> None:
        self._client = client
        self._secret = webhook_secret
        self._author_id = author_id
        self._tolerance = tolerance_seconds
        self._clock = clock
        self._retry_deadline = retry_deadline
        self._pacer = pacer
        self._write_pacer = write_pacer
        self._lock = threading.Lock()
        self._tags: dict[str, str] | None = None  # tag name → id, loaded once
        self._waiting: str | None | bool = False  # the ticketing "waiting" status id; False: not looked up yet

    @classmethod
    def from_settings(cls, settings: Settings, *, client: httpx.Client | None = None) -> FrontAdapter:
        own: FrontSettings = settings.helpdesk_settings or FrontSettings()
        limits = settings.helpdesk_limits
        requests = REQUESTS_PER_MINUTE if limits.requests_per_minute is None else limits.requests_per_minute
        # Front documents no separate limit for writes: pace them apart only when `updates_per_minute` is set.
        return cls(client or front_client(own), webhook_secret=own.webhook_secret or "", author_id=own.author_id,
                   tolerance_seconds=settings.webhook_tolerance_seconds, pacer=per_minute(requests, burst=PACING_BURST),
                   write_pacer=per_minute(limits.updates_per_minute, burst=PACING_BURST))

    # -- webhooks -------------------------------------------------------------------------------------------

    def verify_webhook(self, *, headers: Mapping[str, str], body: bytes) -> None:
        """Either an application webhook (HMAC-SHA256 over timestamp and body, within the replay window) or a
        rule webhook (HMAC-SHA1 over the body, which carries no timestamp: a replay is caught by the event id)."""
        if not self._secret:
            raise WebhookAuthError("webhook secret not configured")
        signature = (headers.get(SIGNATURE_HEADER) or "").strip().encode()
        if not signature:
            raise WebhookAuthError("missing signature")
        timestamp = headers.get(TIMESTAMP_HEADER)
        if timestamp is not None and hmac.compare_digest(
                sign_application(self._secret, timestamp, body).encode(), signature):
            # Front recommends refusing requests older than 5 minutes (https://dev.frontapp.com/docs/security-1).
            if abs(self._clock() - _timestamp_seconds(timestamp)) > self._tolerance:
                raise WebhookAuthError("signature timestamp outside the allowed window")
            return
        if not hmac.compare_digest(sign_rule(self._secret, body).encode(), signature):
            raise WebhookAuthError("bad signature")

    def parse_webhook(self, *, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        challenge = headers.get(CHALLENGE_HEADER)
        if challenge is not None:
            # Saving an application webhook sends a signed `sync` request with this header; Front's own sample
            # (github.com/dugjason/front-webhook-application) answers 200 {"challenge": <value>}.
            raise WebhookChallenge({"challenge": challenge})
        payload = webhook_json(body)
        # Application webhooks wrap the event: {"type", "authorization", "payload": {event}}; rule webhooks send
        # the event itself (https://dev.frontapp.com/reference/events, "Event Preview").
        event = payload["payload"] if isinstance(payload.get("payload"), dict) else payload
        conversation_id = conversation_of(event) or conversation_of(payload)
        if conversation_id is None:
            raise WebhookPayloadError("no conversation id: expected 'conversation.id' or 'payload.conversation.id'")
        if not CONVERSATION_ID.match(conversation_id):
            raise WebhookPayloadError(f"not a Front conversation id: {conversation_id[:40]!r}")
        event_id = event.get("id")
        if isinstance(event_id, str) and event_id.startswith("evt_"):
            key = f"front:event:{event_id.strip()[:200]}"
        else:
            signature = headers.get(SIGNATURE_HEADER, "")
            key = "front:sha256:" + hashlib.sha256(signature.encode() + b"\n" + body).hexdigest()
        return WebhookEvent(ticket_id=conversation_id, delivery_key=key)

    # -- HTTP -----------------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, json_body: Any = None, params: Mapping | None = None) -> dict:
        idempotent = method == "GET"
        json_body, params = encodable_all(json_body), encodable_all(params)  # httpx cannot send a lone surrogate

        def once() -> dict:
            # Front counts every request against one per-company limit a minute: keep under it, not collect 429s.
            if self._pacer is not None:
                self._pacer.wait("front")
            if self._write_pacer is not None and not idempotent:
                self._write_pacer.wait("front-writes")
            label = f"Front {method} {path}"
            response = send(label, lambda: self._client.request(method, path, json=json_body, params=params),
                            idempotent=idempotent)
            data = checked(label, response, once=method == "POST")  # a POST sends a message or adds a comment
            return data if isinstance(data, dict) else {}

        return with_retries(once, deadline=self._retry_deadline)

    def _pages(self, path: str, params: Mapping | None = None, *, whole: bool = False) -> Iterator[dict]:
        """A paginated listing, at most MAX_PAGES pages. `_pagination.next` names the company's own API host
        (https://dev.frontapp.com/docs/pagination): only its query goes on, to this path on the configured host,
        so the token never travels to a host named in a response. With `whole`, a listing that goes on past
        MAX_PAGES (or hands back a token it already gave) raises HelpdeskError instead of ending quietly:
        knowledge sync retires what a listing leaves out, so part of one must not pass for all of it."""
        query = dict(params or {})
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            page = self._request("GET", path, params=query)
            yield page
            following = (page.get("_pagination") or {}).get("next")
            query = dict(parse_qsl(urlsplit(following).query)) if isinstance(following, str) else {}
            token = query.get("page_token")
            if not token:
                return
            if token in seen:
                break
            seen.add(token)
        if whole:
            raise ListingCut(f"Front {path} has more than {MAX_PAGES} pages (or loops): not syncing a part of it")

    # -- reads ----------------------------------------------------------------------------------------------

    def check(self) -> str:
        """GET /me: the company FRONT_API_TOKEN belongs to (https://dev.frontapp.com/reference/get-me)."""
        answer = self._request("GET", "/me")
        return f"API token of {answer.get('name') or answer.get('id') or 'the company'}"

    def _by_seam(self, author: Any) -> bool:
        """Written by the identity Seam writes as: FRONT_AUTHOR_ID's teammate when set; else the API token, whose
        messages and comments carry no teammate author ("If omitted, will post as the API Token", core-api.json
        CreateComment) — or the bot teammate of type "API" Front uses for OAuth clients."""
        if self._author_id:
            return isinstance(author, dict) and author.get("id") == self._author_id
        return not isinstance(author, dict) or not author.get("id") or author.get("type") == "API"

    def fetch_ticket(self, ticket_id: str) -> Ticket:
        path = f"/conversations/{self._conversation_id(ticket_id)}"
        raw = self._request("GET", path)
        if not raw.get("id"):
            raise HelpdeskError(f"Front conversation {ticket_id} came back without an id")
        entries: list[tuple[float, int, Message]] = []
        senders: list[dict] = []
        cut = False
        for page in self._whole(f"{path}/messages", {"limit": PAGE_LIMIT}):
            if page is None:
                cut = True
                break
            for message in _results(page):
                if message.get("draft_mode"):  # a draft nobody sent
                    continue
                inbound = message.get("is_inbound") is True
                author = "customer" if inbound else "bot" if self._by_seam(message.get("author")) else "agent"
                body = message.get("text") or html_to_text(str(message.get("body") or ""))
                entries.append((_number(message.get("created_at")), len(entries), Message(
                    author=author, body=str(body), created_at=when(message.get("created_at")),
                    id=str(message.get("id")), public=True, attachments=_files(message))))
                if inbound:
                    senders += [r for r in message.get("recipients") or [] if isinstance(r, dict)
                                and r.get("role") == "from"]
        for page in self._whole(f"{path}/comments"):
            if page is None:
                cut = True
                break
            for comment in _results(page):
                entries.append((_number(comment.get("posted_at")), len(entries), Message(
                    author="bot" if self._by_seam(comment.get("author")) else "agent",
                    body=str(comment.get("body") or ""), created_at=when(comment.get("posted_at")),
                    id=str(comment.get("id")), public=False, attachments=_files(comment))))
        # Front lists messages and comments newest first, each on its own: one thread, oldest first.
        messages = tuple(m for _, _, m in sorted(entries, key=lambda e: (e[0], e[1])))
        recipient = raw.get("recipient") if isinstance(raw.get("recipient"), dict) else (senders or [{}])[0]
        handle = str(recipient.get("handle") or "")
        fields = raw.get("custom_fields") if isinstance(raw.get("custom_fields"), dict) else {}
        # Front has no priority of its own; teams that track one do it in a conversation custom field.
        priority = next((str(v) for k, v in fields.items() if str(k).strip().lower() == "priority" and v), None)
        return Ticket(
            id=str(raw["id"]), subject=str(raw.get("subject") or ""), messages=messages,
            requester_name=recipient.get("name") or None, requester_email=handle if "@" in handle else None,
            tags=tuple(str(t.get("name")) for t in raw.get("tags") or [] if isinstance(t, dict) and t.get("name")),
            priority=priority, status=raw.get("status"), created_at=when(raw.get("created_at")),
            # The conversation resource exposes no SLA or due date (ConversationResponse, core-api.json).
            sla_due_at=None, url=self.ticket_link(str(raw["id"])), problems=(THREAD_CUT,) if cut else ())

    def _whole(self, path: str, params: Mapping | None = None) -> Iterator[dict | None]:
        """The pages of a listing, then None when it went on past the MAX_PAGES pages read (or looped)."""
        try:
            yield from self._pages(path, params, whole=True)
        except ListingCut:
            yield None

    def updated_since(self, since: float, *, before: float | None = None) -> Updates:
        """(conversation id, time of its latest event) for every conversation with an event at or after `since`
        (and at or before `before`; Unix seconds), from GET /events?q[after]=&q[before]=
        (https://dev.frontapp.com/docs/query-object-q); deleted conversations are left out. Events come newest
        first: when MAX_PAGES pages do not reach `since`, the oldest were not read, and `unread_before` is the
        time of the oldest event read, for reconciliation to ask for the window before it."""
        latest: dict[str, float] = {}
        deleted: set[str] = set()
        oldest: float | None = None
        resume_from = unread_before = None
        # Whether `after` and `before` include their bounds is not documented: ask a little wider, filter here.
        params = {"q[after]": f"{since - 0.001:.3f}", "limit": EVENTS_LIMIT}
        if before is not None:
            params["q[before]"] = f"{before + 0.001:.3f}"
        try:
            for page in self._pages("/events", params, whole=True):
                for event in _results(page):
                    conversation_id, emitted = conversation_of(event), _number(event.get("emitted_at"))
                    if conversation_id is None or emitted < since or (before is not None and emitted > before):
                        continue
                    oldest = emitted if oldest is None else min(oldest, emitted)
                    if (event.get("conversation") or {}).get("status") == "deleted":
                        deleted.add(conversation_id)
                    latest[conversation_id] = max(latest.get(conversation_id, emitted), emitted)
        except ListingCut:
            resume_from, unread_before = since, oldest
        return Updates(((cid, when(at) or "") for cid, at in latest.items() if cid not in deleted),
                       resume_from=resume_from, unread_before=unread_before)

    def conversation_pages(self, since: float, *, before: float | None = None) -> Iterator[dict]:
        """The pages of GET /conversations/search/{query} for `after:<since>` (and `before:<before>`; Unix
        seconds), as Front answers them: conversations active in that window, most recently active first, the only
        order a search has (https://dev.frontapp.com/docs/search-1). ListingCut once MAX_PAGES pages are read with
        more to come; a search ending where this one stopped reads on."""
        # Whole seconds, a second wider at each end: whether the bounds are inclusive is not documented.
        terms = [f"after:{math.floor(since) - 1}"] + ([f"before:{math.floor(before) + 1}"] if before is not None
                                                      else [])
        yield from self._pages(f"/conversations/search/{quote(' '.join(terms), safe='')}", {"limit": PAGE_LIMIT},
                               whole=True)

    def conversation_thread(self, conversation_id: str) -> tuple[list[dict], int]:
        """Every page of GET /conversations/{id}/messages and of …/comments, as Front answers them (each message
        and comment names its conversation in `_links.related`), and how many of the two listings went on past
        MAX_PAGES pages (the rest not read)."""
        path = f"/conversations/{self._conversation_id(conversation_id)}"
        pages: list[dict] = []
        cut = 0
        # The same calls fetch_ticket makes, so a thread exported reads as the one serve sees.
        for listing, params in ((f"{path}/messages", {"limit": PAGE_LIMIT}), (f"{path}/comments", None)):
            try:
                for page in self._pages(listing, params, whole=True):
                    pages.append(page)
            except ListingCut:
                cut += 1
        return pages, cut

    def ticket_link(self, ticket_id: str) -> str:
        return f"{APP_URL}/{ticket_id}"

    def find_agent(self, email: str) -> Agent | None:
        """A teammate whose email is `email` in any case; blocked accounts, visitors and bots are not agents. The
        `is_available` away switch is not looked at: someone claiming in Slack is at work."""
        wanted = email.strip().casefold()
        for page in self._pages("/teammates"):
            for mate in _results(page):
                if (str(mate.get("email") or "").casefold() == wanted and mate.get("id")
                        and not mate.get("is_blocked") and mate.get("type", "user") == "user"):
                    name = " ".join(str(mate.get(k) or "") for k in ("first_name", "last_name")).strip()
                    return Agent(id=str(mate["id"]), name=name or str(mate.get("username") or email),
                                 email=str(mate["email"]))
        return None

    def knowledge(self) -> list[Article]:
        """Message templates as `macro-<id>`, and the published articles of published knowledge bases as
        `article-<id>`, both as clean text (https://dev.frontapp.com/reference/message-templates,
        https://dev.frontapp.com/reference/knowledge-bases). A listing longer than MAX_PAGES pages raises
        HelpdeskError rather than give part of the knowledge: a sync retires what the helpdesk no longer lists."""
        articles: list[Article] = []
        for page in self._pages("/message_templates", {"limit": PAGE_LIMIT}, whole=True):
            for template in _results(page):
                body = html_to_text(str(template.get("body") or ""))
                if template.get("id") and body:
                    articles.append(Article(id=f"macro-{template['id']}", body=body,
                                            title=str(template.get("name") or template.get("subject") or "")))
        # Read as a listing like the others: should the answer name a next page, it is followed, not taken for the end.
        bases = [base for page in self._pages("/knowledge_bases", whole=True) for base in _results(page)]
        for base in bases:
            if base.get("status") == "unpublished" or not _RESOURCE_ID.match(str(base.get("id") or "")):
                continue
            for page in self._pages(f"/knowledge_bases/{base['id']}/articles", {"limit": PAGE_LIMIT}, whole=True):
                for slim in _results(page):
                    if not _RESOURCE_ID.match(str(slim.get("id") or "")):
                        continue
                    full = self._request("GET", f"/knowledge_base_articles/{slim['id']}/content")
                    body = html_to_text(str(full.get("content") or ""))
                    if full.get("status") == "published" and body:
                        articles.append(Article(id=f"article-{slim['id']}", body=body,
                                                title=str(full.get("name") or full.get("subject") or "")))
        return articles

    # -- writes ---------------------------------------------------------------------------------------------

    def _conversation_id(self, ticket_id: str) -> str:
        ticket_id = str(ticket_id).strip()
        if not CONVERSATION_ID.match(ticket_id):
            raise HelpdeskError(f"not a Front conversation id: {ticket_id[:40]!r}", status=404)
        return ticket_id

    def _waiting_status(self) -> str | None:
        """The first ticket status of category "waiting" when the company has ticketing; None when it has not
        (GET /company/statuses answers 404 then, core-api.json)."""
        with self._lock:
            if self._waiting is False:
                try:
                    found = _results(self._request("GET", "/company/statuses"))
                except HelpdeskError as exc:
                    if exc.status != 404:
                        raise
                    found = []
                self._waiting = next((str(s["id"]) for s in found if s.get("category") == "waiting" and s.get("id")),
                                     None)
            return self._waiting or None

    def _status_change(self, status: str) -> dict:
        """The PATCH /conversations/{id} body for a status word (Seam's, or Front's own "archived" and "open")."""
        word = status.strip().lower()
        if word in ("solved", "archived"):
            return {"status": "archived"}
        if word == "open":
            return {"status": "open"}
        if word == "pending":
            waiting = self._waiting_status()
            return {"status_id": waiting} if waiting else {"status": "archived"}
        raise HelpdeskError(f"Front has no status for {status!r}: use open, pending or solved")

    def _authored(self, fields: dict) -> dict:
        return {**fields, "author_id": self._author_id} if self._author_id else fields

    def reply(self, ticket_id: str, body: str, *, status: str | None = None) -> None:
        path = f"/conversations/{self._conversation_id(ticket_id)}"
        change = self._status_change(status) if status else None
        archive = change == {"status": "archived"}
        # Front archives on reply unless told not to (`options.archive` defaults to true, OutboundReplyMessage).
        self._request("POST", f"{path}/messages", json_body=self._authored(
            {"body": _html(body), "text": body, "options": {"archive": archive}}))
        if change and not archive:
            status_after_reply(lambda: self._request("PATCH", path, json_body=change),
                               ticket=f"Front conversation {ticket_id}")

    def add_note(self, ticket_id: str, body: str) -> None:
        self._request("POST", f"/conversations/{self._conversation_id(ticket_id)}/comments",
                      json_body=self._authored({"body": body}))

    def assign(self, ticket_id: str, agent_id: str | None) -> None:
        if agent_id is None:  # `assignee_id: null` unassigns the conversation
            self._request("PUT", f"/conversations/{self._conversation_id(ticket_id)}/assignee",
                          json_body={"assignee_id": None})
            return
        if not _RESOURCE_ID.match(agent_id.strip()):
            raise HelpdeskError(f"not a Front teammate id: {agent_id[:40]!r}", status=400)
        self._request("PUT", f"/conversations/{self._conversation_id(ticket_id)}/assignee",
                      json_body={"assignee_id": agent_id.strip()})

    def set_status(self, ticket_id: str, status: str) -> None:
        path = f"/conversations/{self._conversation_id(ticket_id)}"
        self._request("PATCH", path, json_body=self._status_change(status))

    def _tag_id(self, name: str) -> str:
        """The id of the tag called `name`, created as a company tag when there is none."""
        with self._lock:
            if self._tags is None:
                self._tags = {str(t["name"]): str(t["id"]) for page in self._pages("/tags", {"limit": PAGE_LIMIT})
                              for t in _results(page) if t.get("name") and t.get("id")}
            found = self._tags.get(name) or next(
                (tag_id for known, tag_id in self._tags.items() if known.casefold() == name.casefold()), None)
            if found is None:
                created = self._request("POST", "/company/tags", json_body={"name": name})
                if not created.get("id"):
                    raise HelpdeskError(f"Front created tag {name!r} without an id")
                found = self._tags[name] = str(created["id"])
            return found

    def add_tags(self, ticket_id: str, tags: Sequence[str]) -> None:
        path = f"/conversations/{self._conversation_id(ticket_id)}/tags"
        names = list(dict.fromkeys(t.strip() for t in tags if t.strip()))
        if names:
            self._request("POST", path, json_body={"tag_ids": [self._tag_id(n) for n in names]})


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
