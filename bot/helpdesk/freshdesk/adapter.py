"""The Freshdesk adapter: the shared-secret webhook and its body, reading a ticket with its conversations, the
writes Seam makes, and the knowledge base (solution articles and canned responses).

API v2 as documented at https://developers.freshdesk.com/api/ (endpoints cross-checked against the public clients
github.com/sjkingo/python-freshdesk and github.com/askasoft/pango sdk/fdk/freshdesk): Basic auth with the API key
as user name and any password, JSON bodies, HTML `body`/`description` fields with a plain `body_text` beside
them, list endpoints paged with `page`/`per_page` (at most 100) and a `Link: <…>; rel="next"` header, 429 with
`Retry-After` in seconds. The httpx client is injected (`freshdesk_client` builds the production one); every call
goes through `_call` with bounded retries.
"""

from __future__ import annotations

import hashlib
import html
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from bot.helpdesk.base import (
    THREAD_CUT,
    Agent,
    HelpdeskError,
    ListingCut,
    Updates,
    WebhookEvent,
    WebhookPayloadError,
    check_shared_secret,
    iso_seconds,
    resumed_after,
    status_after_reply,
    webhook_json,
)
from bot.helpdesk.freshdesk.settings import (
    LIST_PER_MINUTE,
    OUTBOUND_EMAIL,
    REQUESTS_PER_MINUTE,
    STATUS_CODES,
    UPDATES_PER_MINUTE,
    FreshdeskSettings,
    priority_word,
    sla_due,
    status_word,
)
from bot.helpdesk.http import checked, on_configured_host, send, with_retries
from bot.helpdesk.listing import Page, by_update_time
from bot.models import Article, Message, Ticket
from bot.pacing import ChannelPacer, per_minute
from bot.retry import (
    CALL_DEADLINE,
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
)
from bot.text import encodable_all, html_to_text

if TYPE_CHECKING:
    from bot.config import Settings

_TICKET_ID = re.compile(r"^[1-9][0-9]{0,19}$")
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?', re.IGNORECASE)
# Enough for any real thread or update window (100 a page) while bounding what a runaway pagination costs.
MAX_PAGES = 50
PER_PAGE = 100
# Freshdesk refuses list pages past the 300th ("You cannot access tickets beyond the 300th page", 400): 30,000
# tickets a listing at 100 a page. The tickets list is read by update time, each page a new list's first, so only
# tickets sharing one update second are ever paged this deep.
LIST_PAGE_CAP = 300
# A thread of 10,000 conversations is far past any real one; the bound keeps a runaway listing finite.
MAX_CONVERSATION_PAGES = 100
PACING_BURST = 10
ARTICLE_PUBLISHED = 2  # solution article status: 1 draft, 2 published
FOLDER_AGENTS_ONLY = 3  # solution folder visibility: internal articles, never for customers
# A create (reply, note) answered by a gateway may have landed behind it: like a timeout, not repeated blindly.
_MAYBE_LANDED = frozenset({502, 504})


class PageCap(ListingCut):
    """A listing stopped by how deep its pages may go, with more to read: a later window reads on."""


def iso_stamp(since: float) -> str:
    """Unix seconds as the `updated_since` Freshdesk reads (UTC, to the second)."""
    return datetime.fromtimestamp(max(0, int(since)), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def freshdesk_client(settings: FreshdeskSettings) -> httpx.Client:
    """The production client: Basic auth `{api_key}:X`, timeouts on every call."""
    return httpx.Client(
        base_url=settings.base_url,
        auth=(settings.api_key or "", "X"),
        timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
        headers={"User-Agent": "seam (+https://github.com/seam-support/seam)", "Accept": "application/json"},
    )


def list_pacer(requests_per_minute: float | None) -> ChannelPacer | None:
    """The pacer of the tickets list for `[helpdesk] requests_per_minute`. There is no key for the list's sub-limit:
    it follows the documented one unless pacing is off."""
    return None if requests_per_minute == 0 else per_minute(None, default=LIST_PER_MINUTE, burst=3)


def text_to_html(text: str) -> str:
    """Seam's plain text as the HTML `body` Freshdesk expects: escaped, paragraphs kept, line breaks as <br>."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "".join(f"<p>{html.escape(p.strip()).replace(chr(10), '<br>')}</p>" for p in paragraphs) or "<p></p>"


def body_text(item: Mapping[str, Any], html_key: str, text_key: str) -> str:
    """Clean text of a conversation, description or article: Seam's own HTML reading when there is HTML (so a
    reply reads back exactly as it was written), else the plain text Freshdesk sent beside it."""
    markup = item.get(html_key)
    if isinstance(markup, str) and markup.strip():
        return html_to_text(markup)
    plain = item.get(text_key)
    return plain.strip() if isinstance(plain, str) else ""


def _names(attachments: Any) -> tuple[str, ...]:
    return tuple(str(a["name"]) for a in attachments or [] if isinstance(a, dict) and a.get("name"))


class FreshdeskAdapter:
    name = "freshdesk"

    def __init__(self, client: httpx.Client, *, webhook_secret: str, agent_url: str,
                 retry_deadline: float = CALL_DEADLINE,
                 pacer: ChannelPacer | None = None, update_pacer: ChannelPacer | None = None,
                 list_pacer: ChannelPacer | None = None) -> None:
        self._client = client
        self._secret = webhook_secret
        self._agent_url = agent_url.rstrip("/")
        self._retry_deadline = retry_deadline
        self._pacer = pacer
        self._update_pacer = update_pacer
        self._list_pacer = list_pacer
        self._me: dict | None = None
        self._me_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, client: httpx.Client | None = None) -> FreshdeskAdapter:
        own: FreshdeskSettings = settings.helpdesk_settings or FreshdeskSettings()
        limits = settings.helpdesk_limits
        # Freshdesk shared secrets carry no time, so `webhook_tolerance_seconds` has nothing to apply to here.
        return cls(client or freshdesk_client(own), webhook_secret=own.webhook_secret or "",
                   agent_url=own.agent_url,
                   pacer=per_minute(limits.requests_per_minute, default=REQUESTS_PER_MINUTE, burst=PACING_BURST),
                   update_pacer=per_minute(limits.updates_per_minute, default=UPDATES_PER_MINUTE, burst=PACING_BURST),
                   list_pacer=list_pacer(limits.requests_per_minute))

    # -- webhooks -------------------------------------------------------------------------------------------

    def verify_webhook(self, *, headers: Mapping[str, str], body: bytes) -> None:
        # Freshdesk does not sign webhook requests: the automation rule sends the secret as the Basic auth
        # password ("Requires authentication") or in an X-Seam-Webhook-Secret header. There is no timestamp to
        # hold a replay window against — and Freshdesk itself redelivers a failed call 5, 35 and 95 minutes
        # later (support article "Receiving webhook failure emails") — so redeliveries are de-duplicated, not
        # refused.
        check_shared_secret(headers, self._secret)

    def parse_webhook(self, *, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        payload = webhook_json(body)
        raw = payload.get("ticket_id")
        for nested in ("ticket", "freshdesk_webhook"):  # {"ticket": {"id"}} or the Zulip-style wrapper
            if raw is None and isinstance(payload.get(nested), dict):
                raw = payload[nested].get("id", payload[nested].get("ticket_id"))
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise WebhookPayloadError("no ticket id: send 'ticket_id' (the {{ticket.id}} placeholder) as a string "
                                      "or number")
        ticket_id = str(raw).strip()
        if not _TICKET_ID.match(ticket_id):
            raise WebhookPayloadError(f"ticket id must be a positive integer, got {ticket_id[:40]!r}")
        # Freshdesk sends no delivery id: the body is the delivery. A redelivery repeats the same bytes; the
        # template's {{ticket.latest_public_comment}} makes a customer's new reply a new body. Two events that
        # render the same body are one event to Seam, as they would be anyway: it dedupes on the latest comment.
        return WebhookEvent(ticket_id=ticket_id,
                            delivery_key="freshdesk:sha256:" + hashlib.sha256(body).hexdigest())

    # -- the API --------------------------------------------------------------------------------------------

    def _pace(self, method: str, path: str) -> None:
        if self._pacer is not None:
            self._pacer.wait("freshdesk")
        ticket_write = method != "GET" and path.startswith("/api/v2/tickets/")
        if self._update_pacer is not None and ticket_write:
            self._update_pacer.wait("freshdesk-updates")
        if self._list_pacer is not None and method == "GET" and path.split("?")[0] == "/api/v2/tickets":
            self._list_pacer.wait("freshdesk-list")

    def _call(self, method: str, path: str, *, json_body: Any = None,
              params: Mapping | None = None) -> tuple[Any, httpx.Headers]:
        """One API call with its retries: the parsed JSON body and the response headers."""
        idempotent = method in ("GET", "PUT")
        json_body, params = encodable_all(json_body), encodable_all(params)  # httpx cannot send a lone surrogate

        def once() -> tuple[Any, httpx.Headers]:
            self._pace(method, path)
            label = f"Freshdesk {method} {path}"
            response = send(label, lambda: self._client.request(method, path, json=json_body, params=params),
                            idempotent=method == "GET")
            status = response.status_code
            if status in _MAYBE_LANDED and not idempotent:
                raise HelpdeskError(f"{label} answered {status}; it may have landed", status=status)
            return checked(label, response), response.headers

        return with_retries(once, deadline=self._retry_deadline)

    def _request(self, method: str, path: str, *, json_body: Any = None, params: Mapping | None = None) -> Any:
        return self._call(method, path, json_body=json_body, params=params)[0]

    def _walk(self, path: str, params: dict | None, *, max_pages: int) -> Iterator[Any]:
        """Each page of a listing as Freshdesk answers it, following `Link: rel="next"` for at most `max_pages`
        pages, each on the configured host (`on_configured_host`). A listing that goes on past them raises PageCap
        once its pages are read."""
        first = path
        for _ in range(max_pages):
            page, headers = self._call("GET", path, params=params)
            yield page
            match = _NEXT.search(headers.get("link") or "")
            if not match:
                return
            path, params = on_configured_host(match.group(1), base_url=str(self._client.base_url)), None
        raise PageCap(f"Freshdesk {first} has more than {max_pages} pages")

    def _pages(self, path: str, params: dict | None = None, *, whole: bool = False) -> Iterator[dict]:
        """The items of a listing (each page a JSON array), for at most MAX_PAGES pages (`_walk`). With `whole`,
        a listing that goes on past that raises HelpdeskError once its pages are read instead of ending quietly:
        knowledge sync retires what a listing leaves out, so part of one must not pass for all of it."""
        try:
            for page in self._walk(path, params, max_pages=MAX_PAGES):
                yield from (item for item in page if isinstance(item, dict)) if isinstance(page, list) else ()
        except ListingCut:
            if whole:
                raise ListingCut(f"Freshdesk {path} has more than {MAX_PAGES} pages (or links elsewhere): not "
                                 "syncing a part of it") from None

    def me(self) -> dict:
        """The agent whose API key Seam uses: its conversations are the bot's."""
        with self._me_lock:
            if self._me is None:
                self._me = self._request("GET", "/api/v2/agents/me") or {}
            return self._me

    def check(self) -> str:
        """GET /api/v2/agents/me: the agent FRESHDESK_API_KEY belongs to."""
        agent = self._request("GET", "/api/v2/agents/me") or {}
        contact = agent.get("contact") if isinstance(agent.get("contact"), dict) else {}
        return f"API agent {contact.get('name') or agent.get('id')}"

    # -- reads ----------------------------------------------------------------------------------------------

    def fetch_ticket(self, ticket_id: str) -> Ticket:
        raw = self._request("GET", f"/api/v2/tickets/{ticket_id}", params={"include": "requester"})
        if not isinstance(raw, dict) or raw.get("id") is None:
            raise HelpdeskError(f"Freshdesk ticket {ticket_id} came back without a ticket object")
        requester_id = str(raw.get("requester_id"))
        me_id = str(self.me().get("id"))
        # The description is the ticket's first message (the customer's, unless an agent sent an outbound email);
        # conversations are every reply and note after it.
        messages = []
        opening = body_text(raw, "description", "description_text")
        if opening or raw.get("attachments"):
            messages.append(Message(
                author="agent" if raw.get("source") == OUTBOUND_EMAIL else "customer", body=opening,
                created_at=raw.get("created_at"), id="description", attachments=_names(raw.get("attachments"))))
        conversations, cut = self._thread(ticket_id)
        for item in conversations:
            user_id = str(item.get("user_id"))
            # `incoming` marks what came from outside the helpdesk (a customer's email, a CC'd contact).
            if user_id == me_id and not item.get("incoming"):
                author = "bot"
            elif item.get("incoming") or user_id == requester_id:
                author = "customer"
            else:
                author = "agent"
            messages.append(Message(author=author, body=body_text(item, "body", "body_text"),
                                    created_at=item.get("created_at"), id=str(item.get("id")),
                                    public=not item.get("private", False), attachments=_names(item.get("attachments"))))
        requester = raw.get("requester") if isinstance(raw.get("requester"), dict) else {}
        answered = any(m.author != "customer" and m.public for m in messages)
        return Ticket(
            id=str(raw.get("id", ticket_id)), subject=str(raw.get("subject") or ""), messages=tuple(messages),
            requester_name=requester.get("name"), requester_email=requester.get("email"),
            tags=tuple(str(t) for t in raw.get("tags") or []), priority=priority_word(raw.get("priority")),
            # Spam and deleted are flags beside the status: said in DISCARDED_STATUSES' words, never answered.
            status="spam" if raw.get("spam") is True else "deleted" if raw.get("deleted") is True
            else status_word(raw.get("status")), created_at=raw.get("created_at"),
            sla_due_at=sla_due(raw, answered=answered), url=self.ticket_link(ticket_id),
            problems=(("the ticket has no requester, so who wrote which reply is not known",)
                      if raw.get("requester_id") is None else ()) + ((THREAD_CUT,) if cut else ()),
        )

    def _thread(self, ticket_id: str) -> tuple[list[dict], bool]:
        """The ticket's conversations (every page, MAX_PAGES at most) and whether the listing went on past what
        was read (or linked to another host)."""
        conversations: list[dict] = []
        try:
            for page in self._walk(f"/api/v2/tickets/{ticket_id}/conversations", {"per_page": PER_PAGE},
                                   max_pages=MAX_PAGES):
                conversations += [item for item in page if isinstance(item, dict)] if isinstance(page, list) else []
        except ListingCut:
            return conversations, True
        return conversations, False

    def _ticket_list(self, since: float, *, include: str | None, max_requests: int | None) -> Iterator[Page]:
        """The tickets list updated at or after `since`, oldest update first, read by update time
        (bot.helpdesk.listing): each page is page 1 of a new list from the last `updated_at` the page before showed,
        so a ticket updated while the list is read cannot push one not yet read onto a page already read. Only
        tickets sharing one update second past a page's worth are paged by number, never past LIST_PAGE_CAP: PageCap
        then, as for a deeper page Freshdesk refuses (a 400 naming `page`). Past `max_requests` pages: PageCap.

        Relied on (https://developers.freshdesk.com/api/#list_all_tickets, read through a copy of that section,
        docs/helpdesks/freshdesk.md): `updated_since` takes an ISO time to the second (the docs' example
        `2015-01-19T02:00:00Z`) and `updated_at` comes to the second; `order_by=updated_at` with
        `order_type=asc` sorts oldest update first; `per_page` is at most 100; `Link: rel="next"` while more
        remain. Whether `updated_since` includes its own second is not said: Seam takes it to (a list restarted
        from the last `updated_at` read, as the Airbyte and Onyx connectors restart theirs past page 300)."""
        params = {"order_by": "updated_at", "order_type": "asc", "per_page": PER_PAGE}
        if include:
            params["include"] = include

        def fetch(cursor: int, number: int) -> Page:
            query = {"updated_since": iso_stamp(cursor), **params, **({"page": number} if number > 1 else {})}
            try:
                body, headers = self._call("GET", "/api/v2/tickets", params=query)
            except HelpdeskError as exc:
                # The request line names per_page too: only the answer's body says which field was refused.
                if exc.status == 400 and number > 1 and '"page"' in (exc.detail or ""):
                    raise PageCap(f"Freshdesk refused page {number} of the tickets list") from None
                raise
            rows = [t for t in body if isinstance(t, dict)] if isinstance(body, list) else []
            return Page(body if isinstance(body, list) else [], rows, bool(_NEXT.search(headers.get("link") or "")))

        return by_update_time(fetch, since, time_of=lambda t: iso_seconds(str(t.get("updated_at") or "")),
                              max_requests=max_requests, deepest=LIST_PAGE_CAP, cut=PageCap,
                              name="Freshdesk's tickets list")

    def updated_since(self, since: float) -> Updates:
        """(ticket id, updated_at) of every ticket updated at or after `since` (Unix seconds), oldest first, each
        version once. The list endpoint leaves spam and deleted tickets out unless asked for them. Past MAX_PAGES
        pages the listing is cut and `resume_from` says where to go on: the last update read, since everything
        updated before it was read (`_ticket_list`)."""
        found = Updates()
        read: set[tuple[str, str]] = set()
        try:
            for page in self._ticket_list(since, include=None, max_requests=MAX_PAGES):
                for ticket in page.rows:
                    version = (str(ticket.get("id")), str(ticket.get("updated_at") or ""))
                    if ticket.get("id") is not None and version not in read:  # each new list repeats the last second
                        read.add(version)
                        found.append(version)
        except ListingCut:
            found.resume_from = resumed_after(found, since)
        return found

    def ticket_pages(self, since: float) -> Iterator[list]:
        """The pages of the tickets list updated at or after `since` (Unix seconds), oldest update first, each
        ticket with its requester and description, as Freshdesk answers them (a JSON array each; spam and deleted
        tickets are not listed). Read by update time (`_ticket_list`), so a ticket may be on two pages (the
        second its update shares with the next list, or updated meanwhile): the latest version counts. PageCap
        when more tickets share one update second than Freshdesk pages (LIST_PAGE_CAP pages of them)."""
        for page in self._ticket_list(since, include="requester,description", max_requests=None):
            yield page.body

    def ticket_conversations(self, ticket_id: str) -> tuple[list[dict], int]:
        """Every conversation of the ticket (all pages) as Freshdesk returns them, and how many entries were not
        conversation objects."""
        conversations: list[dict] = []
        unreadable = 0
        try:
            for page in self._walk(f"/api/v2/tickets/{ticket_id}/conversations", {"per_page": PER_PAGE},
                                   max_pages=MAX_CONVERSATION_PAGES):
                for item in page if isinstance(page, list) else [page]:
                    if isinstance(item, dict):
                        conversations.append(item)
                    else:
                        unreadable += 1
        except ListingCut:
            unreadable += 1  # the thread goes on past what is read: counted, the rest kept
        return conversations, unreadable

    def ticket_link(self, ticket_id: str) -> str:
        return f"{self._agent_url}/a/tickets/{ticket_id}"

    def find_agent(self, email: str) -> Agent | None:
        # Freshdesk keeps emails lower-cased; agents and contacts are separate lists, so a customer never matches.
        wanted = email.strip().lower()
        for agent in self._request("GET", "/api/v2/agents", params={"email": wanted}) or []:
            contact = agent.get("contact") if isinstance(agent, dict) else None
            if not isinstance(contact, dict) or str(contact.get("email", "")).lower() != wanted:
                continue
            if contact.get("active") is False or agent.get("deactivated"):
                continue  # not verified yet, or deactivated: cannot own a ticket
            return Agent(id=str(agent["id"]), name=str(contact.get("name") or contact["email"]),
                         email=str(contact["email"]))
        return None

    def knowledge(self) -> list[Article]:
        """Published solution articles in folders customers may see, and canned responses, as clean text.
        A listing longer than MAX_PAGES pages raises HelpdeskError rather than give part of the knowledge: a
        sync retires what the helpdesk no longer lists."""
        def listing(path: str) -> Iterator[dict]:  # every level may page; items without an id are skipped
            return (item for item in self._pages(path, whole=True) if item.get("id") is not None)

        found: list[Article] = []
        for category in listing("/api/v2/solutions/categories"):
            for folder in listing(f"/api/v2/solutions/categories/{category['id']}/folders"):
                if folder.get("visibility") == FOLDER_AGENTS_ONLY:
                    continue
                for article in listing(f"/api/v2/solutions/folders/{folder['id']}/articles"):
                    text = body_text(article, "description", "description_text")
                    if article.get("status") == ARTICLE_PUBLISHED and text:
                        found.append(Article(id=f"article-{article['id']}", title=str(article.get("title") or ""),
                                             body=text))
        for folder in listing("/api/v2/canned_response_folders"):
            for response in listing(f"/api/v2/canned_response_folders/{folder['id']}/responses"):
                text = body_text(response, "content_html", "content")
                if text:
                    found.append(Article(id=f"macro-{response['id']}", title=str(response.get("title") or ""),
                                         body=text))
        return found

    # -- writes ---------------------------------------------------------------------------------------------

    @staticmethod
    def _status_code(status: str) -> int:
        code = STATUS_CODES.get(status.strip().lower())
        if code is None:
            raise HelpdeskError(f"Freshdesk has no status {status!r} Seam can set (supported: "
                                f"{', '.join(STATUS_CODES)})")
        return code

    def _update(self, ticket_id: str, fields: dict) -> None:
        self._request("PUT", f"/api/v2/tickets/{ticket_id}", json_body=fields)

    def reply(self, ticket_id: str, body: str, *, status: str | None = None) -> None:
        # The reply endpoint takes no status: the reply goes first, so a failed status change never leaves a
        # ticket solved without its answer.
        code = self._status_code(status) if status else None
        self._request("POST", f"/api/v2/tickets/{ticket_id}/reply", json_body={"body": text_to_html(body)})
        if code is not None:
            status_after_reply(lambda: self._update(ticket_id, {"status": code}),
                               ticket=f"Freshdesk ticket {ticket_id}")

    def add_note(self, ticket_id: str, body: str) -> None:
        self._request("POST", f"/api/v2/tickets/{ticket_id}/notes",
                      json_body={"body": text_to_html(body), "private": True})

    def assign(self, ticket_id: str, agent_id: str | None) -> None:
        if agent_id is None:  # `responder_id: null` unassigns the ticket
            self._update(ticket_id, {"responder_id": None})
            return
        if not agent_id.strip().isdigit():
            raise HelpdeskError(f"Freshdesk agent ids are numbers, got {agent_id[:40]!r}")
        self._update(ticket_id, {"responder_id": int(agent_id)})

    def set_status(self, ticket_id: str, status: str) -> None:
        self._update(ticket_id, {"status": self._status_code(status)})

    def add_tags(self, ticket_id: str, tags: Sequence[str]) -> None:
        # `tags` on a ticket update replaces the list and v2 has no add-tags call: read, merge, write back.
        current = self._request("GET", f"/api/v2/tickets/{ticket_id}") or {}
        existing = [str(t) for t in current.get("tags") or []]
        merged = list(dict.fromkeys([*existing, *(str(t) for t in tags)]))
        if merged != existing:
            self._update(ticket_id, {"tags": merged})

