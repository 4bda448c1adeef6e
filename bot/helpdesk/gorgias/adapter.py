"""The Gorgias adapter: the shared-secret webhook of an HTTP integration, reading a ticket with its messages, and the
writes Seam makes (messages, internal notes, status, assignee, tags), plus macros as knowledge.

The httpx client is injected (see `gorgias_client` for the production one); tests point it at a fake Gorgias on
loopback. Every call goes through one `_request` with bounded retries that honour `Retry-After`, paced to the
account's leaky bucket. The vendor pages each behaviour follows are named where it matters and listed in
docs/helpdesks/gorgias.md.
"""

from __future__ import annotations

import hashlib
import html
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from bot.helpdesk.base import (
    THREAD_CUT,
    Agent,
    HelpdeskError,
    ListingCut,
    Updates,
    WebhookAuthError,
    WebhookEvent,
    WebhookPayloadError,
    check_shared_secret,
    status_after_reply,
    webhook_json,
)
from bot.helpdesk.gorgias.settings import REQUESTS_PER_MINUTE, STATUSES, GorgiasSettings
from bot.helpdesk.http import checked, send, with_retries
from bot.models import Article, Message, Ticket
from bot.pacing import ChannelPacer, per_minute
from bot.retry import (
    CALL_DEADLINE,
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
)
from bot.text import encodable_all, html_to_text, parse_time

if TYPE_CHECKING:
    from bot.config import Settings

TICKET_ID = re.compile(r"^[1-9][0-9]{0,19}$")
# Enough for any real thread or team (100 a page, the documented maximum `limit`) while bounding what a runaway
# pagination can cost against a 2-requests-a-second budget.
MAX_PAGES = 50
PAGE_SIZE = 100
# Half the documented bucket of 40: other integrations of the account (Shopify apps, reporting) draw on it too.
PACING_BURST = 20
# Gorgias has no "pending": a snoozed open ticket is the closest state, out of the queue until it reopens by
# itself at the snooze time (whether a customer reply wakes it sooner is not documented: not relied on).
PENDING_SNOOZE = timedelta(days=3)
# https://developers.gorgias.com/reference/the-ticket-object : priority is low, normal, high or critical.
PRIORITIES = {"low": "low", "normal": "normal", "high": "high", "critical": "urgent"}


def gorgias_client(settings: GorgiasSettings) -> httpx.Client:
    """The production client: HTTP Basic `{email}:{api_key}` (developers.gorgias.com/docs/access-tokens-api-keys),
    timeouts on every call."""
    return httpx.Client(
        base_url=settings.base_url,
        auth=(settings.email or "", settings.api_key or ""),
        timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
        headers={"User-Agent": "seam (+https://github.com/seam-support/seam)", "Accept": "application/json"},
    )


def seam_status(ticket: Mapping[str, Any], *, now: float) -> str | None:
    """Gorgias's status in Seam's words: closed is "solved", an open ticket snoozed into the future "pending"; a
    ticket marked as spam (`spam`) or moved to the trash (`trashed_datetime`), whatever its status, is "spam" or
    "deleted" (bot.models DISCARDED_STATUSES: never answered)."""
    if ticket.get("spam"):
        return "spam"
    if ticket.get("trashed_datetime"):
        return "deleted"
    status = ticket.get("status")
    if status == "closed":
        return "solved"
    if status == "open":
        snooze = parse_time(ticket.get("snooze_datetime"))
        return "pending" if snooze is not None and snooze.timestamp() > now else "open"
    return None if status is None else str(status)


def message_text(message: Mapping[str, Any], *, stripped_first: bool) -> str:
    """A message as plain text: the text Gorgias gives (quotes and signature stripped first, for customers), else
    its HTML turned into text."""
    order = ("stripped_text", "body_text") if stripped_first else ("body_text", "stripped_text")
    for key in order:
        if isinstance(message.get(key), str) and message[key].strip():
            return message[key].strip()
    for key in ("stripped_html", "body_html") if stripped_first else ("body_html", "stripped_html"):
        if isinstance(message.get(key), str) and message[key].strip():
            return html_to_text(message[key])
    return ""


def macro_text(macro: Mapping[str, Any]) -> str:
    """The reply a macro writes, as clean text: every action that carries a body (`arguments.body_html` or
    `body_text`), HTML turned into text."""
    parts = []
    for action in macro.get("actions") or []:
        arguments = action.get("arguments") if isinstance(action, dict) else None
        if not isinstance(arguments, dict):
            continue
        if isinstance(arguments.get("body_html"), str) and arguments["body_html"].strip():
            parts.append(html_to_text(arguments["body_html"]))
        elif isinstance(arguments.get("body_text"), str) and arguments["body_text"].strip():
            parts.append(arguments["body_text"].strip())
    return "\n\n".join(p for p in parts if p)


def _as_html(body: str) -> str:
    paragraphs = [p for p in re.split(r"\n\s*\n", body.strip()) if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)


def _event_time(payload: Mapping[str, Any]) -> float | None:
    raw = payload.get("updated_datetime")
    if raw is None and isinstance(payload.get("ticket"), dict):
        raw = payload["ticket"].get("updated_datetime")
    moment = parse_time(raw) if isinstance(raw, str) else None
    return None if moment is None else moment.timestamp()


class GorgiasAdapter:
    name = "gorgias"

    def __init__(self, client: httpx.Client, *, email: str, webhook_secret: str, agent_url: str,
                 tolerance_seconds: int = 300, clock: Callable[[], float] = time.time,
                 retry_deadline: float = CALL_DEADLINE,
                 pacer: ChannelPacer | None = None, write_pacer: ChannelPacer | None = None,
                 pending_snooze: timedelta = PENDING_SNOOZE) -> None:
        self._client = client
        self._email = email
        self._secret = webhook_secret
        self._agent_url = agent_url.rstrip("/")
        self._tolerance = tolerance_seconds
        self._clock = clock
        self._retry_deadline = retry_deadline
        self._pacer = pacer
        self._write_pacer = write_pacer
        self._pending_snooze = pending_snooze
        self._me: dict | None = None
        self._me_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, client: httpx.Client | None = None) -> GorgiasAdapter:
        own: GorgiasSettings = settings.helpdesk_settings or GorgiasSettings()
        limits = settings.helpdesk_limits
        requests = REQUESTS_PER_MINUTE if limits.requests_per_minute is None else limits.requests_per_minute
        # Gorgias documents one budget for every call; writes get their own pace only when it is configured.
        return cls(client or gorgias_client(own), email=own.email or "", webhook_secret=own.webhook_secret or "",
                   agent_url=own.agent_url, tolerance_seconds=settings.webhook_tolerance_seconds,
                   pacer=per_minute(requests, burst=PACING_BURST),
                   write_pacer=per_minute(limits.updates_per_minute, burst=PACING_BURST))

    # -- webhooks -------------------------------------------------------------------------------------------

    def verify_webhook(self, *, headers: Mapping[str, str], body: bytes) -> None:
        # HTTP integrations do not sign their requests: the admin's header carries the shared secret.
        check_shared_secret(headers, self._secret)
        # Nothing else vouches for a delivery, so a late one is refused by the event time the template carries
        # (`{{ticket.updated_datetime}}`); an unreadable body is parse_webhook's to reject.
        try:
            moment = _event_time(webhook_json(body))
        except WebhookPayloadError:
            return
        if moment is not None and abs(self._clock() - moment) > self._tolerance:
            raise WebhookAuthError("event time (updated_datetime) outside the allowed window")

    def parse_webhook(self, *, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        payload = webhook_json(body)
        raw = payload.get("ticket_id")
        if raw is None and isinstance(payload.get("ticket"), dict):
            raw = payload["ticket"].get("id")
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise WebhookPayloadError("no ticket id: send 'ticket_id' or 'ticket.id' as a string or number")
        ticket_id = str(raw).strip()
        if not TICKET_ID.match(ticket_id):
            raise WebhookPayloadError(f"ticket id must be a positive integer, got {ticket_id[:40]!r}")
        # Gorgias sends no delivery id: the body is the delivery. Its per-event fields (updated_datetime, the
        # latest message) make a new event a new body, while a retry of the same request repeats the bytes.
        return WebhookEvent(ticket_id=ticket_id, delivery_key="gorgias:sha256:" + hashlib.sha256(body).hexdigest())

    # -- the API --------------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, json_body: Any = None, params: Mapping | None = None) -> Any:
        idempotent = method == "GET"
        json_body, params = encodable_all(json_body), encodable_all(params)  # httpx cannot send a lone surrogate

        def once() -> Any:
            if self._pacer is not None:
                self._pacer.wait("gorgias")
            if self._write_pacer is not None and not idempotent:
                self._write_pacer.wait("gorgias-writes")
            label = f"Gorgias {method} {path}"
            response = send(label, lambda: self._client.request(method, path, json=json_body, params=params),
                            idempotent=idempotent)
            # 429 carries `Retry-after` in seconds (developers.gorgias.com/reference/limitations). A POST sends a
            # message or adds a note.
            return checked(label, response, once=method == "POST")

        return with_retries(once, deadline=self._retry_deadline)

    def _pages(self, path: str, params: Mapping[str, Any], *, whole: bool = False,
               cursor: str | None = None) -> Iterator[dict]:
        """A cursor-paginated listing (developers.gorgias.com/reference/pagination), at most MAX_PAGES pages, from
        `cursor` (the first page without). The cursor is a token sent back to the same path, so no listing can lead
        the credentials to another host. With `whole`, a listing that still has a next cursor after MAX_PAGES
        raises HelpdeskError instead of ending quietly: knowledge sync retires what a listing leaves out, so part
        of one must not pass for all."""
        query = {**params, "cursor": cursor} if cursor else dict(params)
        for _ in range(MAX_PAGES):
            page = self._request("GET", path, params=query)
            if not isinstance(page, dict):
                if whole:  # an answer that is not a page cannot say the listing ended
                    raise HelpdeskError(f"Gorgias {path} answered something that is not a page: not syncing it")
                return
            yield page
            cursor = (page.get("meta") or {}).get("next_cursor")
            if not cursor:
                return
            query = {**params, "cursor": cursor}
        if whole:
            raise ListingCut(f"Gorgias {path} has more than {MAX_PAGES} pages: not syncing a part of it")

    def _listed(self, path: str, params: Mapping[str, Any], *, whole: bool = False) -> Iterator[dict]:
        for page in self._pages(path, params, whole=whole):
            yield from (item for item in page.get("data") or [] if isinstance(item, dict))

    def me(self) -> dict:
        """The user Seam writes as: the API key's owner, GORGIAS_EMAIL (an API key acts as its user)."""
        with self._me_lock:
            if self._me is None:
                wanted = self._email.strip().lower()
                found = next((u for u in self._listed("/api/users", {"limit": PAGE_SIZE})
                              if str(u.get("email") or "").strip().lower() == wanted), None)
                self._me = found or {"email": self._email}
            return self._me

    def check(self) -> str:
        """GET /api/users?limit=1: the cheapest call that needs the API key (Gorgias has no "me" endpoint)."""
        self._request("GET", "/api/users", params={"limit": 1})
        return f"API key of {self._email}"

    def _sender(self) -> dict:
        me = self.me()
        return {"id": me["id"]} if me.get("id") is not None else {"email": self._email}

    # -- reads ----------------------------------------------------------------------------------------------

    def _ticket(self, ticket_id: str) -> dict:
        raw = self._request("GET", f"/api/tickets/{ticket_id}")
        if not isinstance(raw, dict) or raw.get("id") is None:
            raise HelpdeskError(f"Gorgias ticket {ticket_id} came back without a ticket object")
        return raw

    def _messages(self, ticket_id: str) -> list[dict]:
        """Every message of the ticket, oldest first (GET /api/messages?ticket_id=, which pages; its order
        defaults to newest first, so the order is made here)."""
        return self._thread(ticket_id)[0]

    def _thread(self, ticket_id: str) -> tuple[list[dict], bool]:
        """The ticket's messages, oldest first, and whether the listing went on past the MAX_PAGES pages read."""
        unique: dict[str, dict] = {}
        try:
            for page in self._pages("/api/messages", {"ticket_id": ticket_id, "limit": PAGE_SIZE}, whole=True):
                unique.update((str(m.get("id")), m) for m in page.get("data") or [] if isinstance(m, dict))
        except ListingCut:
            return sorted(unique.values(), key=_message_order), True
        return sorted(unique.values(), key=_message_order), False

    def fetch_ticket(self, ticket_id: str) -> Ticket:
        raw = self._ticket(ticket_id)
        me = self.me()
        my_id, my_email = me.get("id"), str(me.get("email") or self._email).strip().lower()
        messages = []
        listed, cut = self._thread(ticket_id)
        for message in listed:
            sender = message.get("sender") if isinstance(message.get("sender"), dict) else {}
            if not message.get("from_agent"):
                author = "customer"
            elif (my_id is not None and sender.get("id") == my_id) or (
                    my_email and str(sender.get("email") or "").strip().lower() == my_email):
                author = "bot"
            else:
                author = "agent"
            attachments = tuple(str(a["name"]) for a in message.get("attachments") or []
                                if isinstance(a, dict) and a.get("name"))
            messages.append(Message(author=author, body=message_text(message, stripped_first=author == "customer"),
                                    created_at=message.get("created_datetime"), id=str(message.get("id")),
                                    public=message.get("public", True) is not False, attachments=attachments))
        customer = raw.get("customer") if isinstance(raw.get("customer"), dict) else {}
        name = customer.get("name") or " ".join(
            str(customer[k]) for k in ("firstname", "lastname") if customer.get(k)) or None
        return Ticket(
            id=str(raw.get("id", ticket_id)), subject=str(raw.get("subject") or ""), messages=tuple(messages),
            requester_name=name, requester_email=customer.get("email"),
            tags=tuple(str(t["name"]) for t in raw.get("tags") or [] if isinstance(t, dict) and t.get("name")),
            priority=PRIORITIES.get(str(raw.get("priority"))), status=seam_status(raw, now=self._clock()),
            # Gorgias's ticket object carries no SLA due date.
            created_at=raw.get("created_datetime"), sla_due_at=None, url=self.ticket_link(ticket_id),
            problems=(THREAD_CUT,) if cut else ())

    def updated_since(self, since: float) -> Updates:
        """(ticket id, updated_datetime) of every ticket updated at or after `since` (Unix seconds), oldest update
        first: the newest-first listing is read until it goes past `since`. Trashed and spam tickets are left out
        (the listing holds trashed ones unless told otherwise). When
        MAX_PAGES pages do not reach `since`, the oldest updates were not read: `resume_from` is `since` itself,
        so the next check asks for the same window again."""
        found: list[tuple[float, str, str]] = []
        resume_from = None
        try:
            for ticket in self._listed("/api/tickets", {"order_by": "updated_datetime:desc", "limit": PAGE_SIZE},
                                       whole=True):
                moment = parse_time(ticket.get("updated_datetime"))
                if moment is None or ticket.get("id") is None:
                    continue
                if moment.timestamp() < since:
                    break
                if ticket.get("spam") or ticket.get("trashed_datetime"):
                    continue
                found.append((moment.timestamp(), str(ticket["id"]), str(ticket["updated_datetime"])))
        except ListingCut:
            resume_from = since
        return Updates(((ticket_id, updated) for _, ticket_id, updated in sorted(found)), resume_from=resume_from)

    def ticket_pages(self, *, cursor: str | None = None) -> Iterator[dict]:
        """The pages of GET /api/tickets, most recently updated first, as Gorgias answers them, from `cursor` (the
        first page without). ListingCut once MAX_PAGES pages are read with more to come: the last page's
        `meta.next_cursor` goes on from there, in a new listing."""
        yield from self._pages("/api/tickets", {"order_by": "updated_datetime:desc", "limit": PAGE_SIZE},
                               whole=True, cursor=cursor)

    def message_pages(self, ticket_id: str) -> tuple[list[dict], int]:
        """Every page of GET /api/messages?ticket_id= (the call fetch_ticket makes), as Gorgias answers them (each
        message names its `ticket_id`), and 1 when the listing went on past MAX_PAGES pages (the rest not read)."""
        pages: list[dict] = []
        try:
            for page in self._pages("/api/messages", {"ticket_id": ticket_id, "limit": PAGE_SIZE}, whole=True):
                pages.append(page)
        except ListingCut:
            return pages, 1
        return pages, 0

    def ticket_link(self, ticket_id: str) -> str:
        return f"{self._agent_url}/app/ticket/{ticket_id}"

    def find_agent(self, email: str) -> Agent | None:
        """The active user (Gorgias's word for agents and admins; customers are another object) with this email."""
        wanted = email.strip().lower()
        for user in self._listed("/api/users", {"limit": PAGE_SIZE}):
            if (str(user.get("email") or "").strip().lower() == wanted and user.get("active", True) is not False
                    and not user.get("deleted_datetime") and user.get("id") is not None):
                return Agent(id=str(user["id"]), name=str(user.get("name") or email), email=str(user["email"]))
        return None

    def knowledge(self) -> list[Article]:
        """Macros as articles (`macro-<id>`). The public REST API has no help-centre endpoint, so that is all.
        A listing longer than MAX_PAGES pages raises HelpdeskError rather than give part of the macros: a sync
        retires what the helpdesk no longer lists."""
        articles = []
        for macro in self._listed("/api/macros", {"limit": PAGE_SIZE}, whole=True):
            text = macro_text(macro)
            if macro.get("id") is not None and text and not macro.get("archived_datetime"):
                articles.append(Article(id=f"macro-{macro['id']}", title=str(macro.get("name") or ""), body=text))
        return articles

    # -- writes ---------------------------------------------------------------------------------------------

    def _status_fields(self, status: str) -> dict:
        word = status.strip().lower()
        if word in ("solved", "closed"):
            return {"status": "closed"}
        if word == "open":
            return {"status": "open", "snooze_datetime": None}
        if word == "pending":
            until = datetime.fromtimestamp(self._clock(), UTC) + self._pending_snooze
            return {"status": "open", "snooze_datetime": until.isoformat()}
        raise HelpdeskError(f"Gorgias has no status like {status!r} (Seam can set {', '.join(STATUSES)})")

    def _update(self, ticket_id: str, fields: dict) -> None:
        self._request("PUT", f"/api/tickets/{ticket_id}", json_body=fields)

    def _post_message(self, ticket_id: str, message: dict) -> None:
        # developers.gorgias.com/reference/create-ticket-message: without `sent_datetime` Gorgias sends it.
        self._request("POST", f"/api/tickets/{ticket_id}/messages", json_body=message)

    def reply(self, ticket_id: str, body: str, *, status: str | None = None) -> None:
        fields = self._status_fields(status) if status else None  # a bad status fails before anything is sent
        ticket = self._ticket(ticket_id)
        messages = ticket.get("messages") if isinstance(ticket.get("messages"), list) else self._messages(ticket_id)
        self._post_message(ticket_id, self._outgoing(ticket, messages, body))
        if fields:
            status_after_reply(lambda: self._update(ticket_id, fields), ticket=f"Gorgias ticket {ticket_id}")

    def _outgoing(self, ticket: dict, messages: list, body: str) -> dict:
        """A public message back on the channel the customer last wrote on, through the same integration, to the
        address they wrote from (developers.gorgias.com/docs/create-a-new-message-in-ticket-via-api: an outgoing
        message has from_agent true, a user as sender and the customer as receiver)."""
        customer = ticket.get("customer") if isinstance(ticket.get("customer"), dict) else {}
        theirs = [m for m in sorted((m for m in messages if isinstance(m, dict)), key=_message_order)
                  if not m.get("from_agent") and m.get("public", True) is not False]
        last = theirs[-1] if theirs else {}
        source = last.get("source") if isinstance(last.get("source"), dict) else {}
        channel = last.get("channel") or ticket.get("channel") or "email"
        message: dict[str, Any] = {
            "channel": channel, "via": "api", "from_agent": True, "public": True, "body_text": body,
            "body_html": _as_html(body), "sender": self._sender(),
            "receiver": {"id": customer["id"]} if customer.get("id") is not None else {"email": customer.get("email")}}
        to_address = (source.get("from") or {}).get("address") or customer.get("email")
        ours = [a for a in source.get("to") or [] if isinstance(a, dict) and a.get("address")]
        if to_address:
            message["source"] = {"type": source.get("type") or channel, "to": [{"address": to_address}]}
            if ours:
                message["source"]["from"] = {"address": ours[0]["address"]}
        if last.get("integration_id"):
            message["integration_id"] = last["integration_id"]
        subject = str(ticket.get("subject") or "")
        if channel == "email" and subject:
            message["subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
        return message

    def add_note(self, ticket_id: str, body: str) -> None:
        self._post_message(ticket_id, {"channel": "internal-note", "via": "api", "from_agent": True, "public": False,
                                       "body_text": body, "body_html": _as_html(body), "sender": self._sender()})

    def assign(self, ticket_id: str, agent_id: str | None) -> None:
        if agent_id is None:  # `assignee_user: null` unassigns the ticket
            self._update(ticket_id, {"assignee_user": None})
            return
        self._update(ticket_id, {"assignee_user": {"id": int(agent_id) if agent_id.isdigit() else agent_id}})

    def set_status(self, ticket_id: str, status: str) -> None:
        self._update(ticket_id, self._status_fields(status))

    def add_tags(self, ticket_id: str, tags: Sequence[str]) -> None:
        # POST /api/tickets/{id}/tags adds; PUT would replace (developers.gorgias.com/reference/create-ticket-tags).
        names = list(dict.fromkeys(t for t in tags if t))
        if names:
            self._request("POST", f"/api/tickets/{ticket_id}/tags", json_body={"names": names})


def _message_order(message: Mapping[str, Any]) -> tuple:
    moment = parse_time(message.get("created_datetime"))
    raw_id = str(message.get("id") or "")
    return (moment.timestamp() if moment else float("inf"), int(raw_id) if raw_id.isdigit() else 0, raw_id)
