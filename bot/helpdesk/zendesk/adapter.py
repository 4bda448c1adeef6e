"""The Zendesk adapter: webhook signature and body, reading a ticket with its comments, and the writes Seam makes.

The httpx client is injected (see `zendesk_client` for the production one); tests point it at a fake Zendesk on
loopback. Reads and writes go through one `_request` with bounded retries that honour `Retry-After`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
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
    resumed_after,
    webhook_json,
)
from bot.helpdesk.http import checked, on_configured_host, send, with_retries
from bot.helpdesk.zendesk.settings import REQUESTS_PER_MINUTE, UPDATES_PER_MINUTE, ZendeskSettings
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

SIGNATURE_HEADER = "x-zendesk-webhook-signature"
TIMESTAMP_HEADER = "x-zendesk-webhook-signature-timestamp"
INVOCATION_HEADER = "x-zendesk-webhook-invocation-id"
_TICKET_ID = re.compile(r"^[1-9][0-9]{0,19}$")
# A webhook subscribed to Zendesk events (rather than connected to a trigger) gets Zendesk's own body: the event's
# `type` ("zen:event-type:ticket.comment_added", "zen:event-type:messaging_ticket.message_added"), its `subject`
# ("zen:ticket:35436") and the ticket's fields under `detail`.
_EVENT_TYPE = "zen:event-type:"
_TICKET_EVENTS = ("zen:event-type:ticket.", "zen:event-type:messaging_ticket.")
_TICKET_SUBJECT = re.compile(r"^zen:ticket:(.*)$")
# Enough for any real thread (100 comments a page) while bounding what a runaway pagination can cost.
MAX_PAGES = 50
# The incremental export for simulation (bot.helpdesk.zendesk.export) reads a whole account's history: 1,000
# tickets a page, so this bounds it at a million ticket versions rather than at a page count a busy account reaches.
EXPORT_MAX_PAGES = 1000
PACING_BURST = 20


def zendesk_client(settings: ZendeskSettings) -> httpx.Client:
    """The production client: Basic auth `{email}/token:{token}`, timeouts on every call."""
    return httpx.Client(
        base_url=settings.base_url,
        auth=(f"{settings.email}/token", settings.api_token or ""),
        timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
        headers={"User-Agent": "seam (+https://github.com/seam-support/seam)", "Accept": "application/json"},
    )


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Zendesk's webhook signature: base64(HMAC-SHA256(secret, timestamp + body))."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _parse_timestamp(raw: str) -> float:
    raw = raw.strip()
    try:
        # isdigit() alone also accepts "²": only ASCII digits are Unix seconds.
        if raw.isascii() and raw.isdigit():
            return float(raw)
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError):
        raise WebhookAuthError("unreadable signature timestamp") from None


class ZendeskAdapter:
    name = "zendesk"

    def __init__(self, client: httpx.Client, *, webhook_secret: str, agent_url: str, tolerance_seconds: int = 300,
                 clock: Callable[[], float] = time.time, retry_deadline: float = CALL_DEADLINE,
                 pacer: ChannelPacer | None = None, update_pacer: ChannelPacer | None = None) -> None:
        self._client = client
        self._pacer = pacer
        self._update_pacer = update_pacer
        self._secret = webhook_secret
        self._agent_url = agent_url.rstrip("/")
        self._tolerance = tolerance_seconds
        self._clock = clock
        self._retry_deadline = retry_deadline
        self._me: dict | None = None
        self._me_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, client: httpx.Client | None = None) -> ZendeskAdapter:
        own: ZendeskSettings = settings.helpdesk_settings or ZendeskSettings()
        limits = settings.helpdesk_limits
        return cls(client or zendesk_client(own), webhook_secret=own.webhook_secret or "",
                   agent_url=own.agent_url, tolerance_seconds=settings.webhook_tolerance_seconds,
                   pacer=per_minute(limits.requests_per_minute, default=REQUESTS_PER_MINUTE, burst=PACING_BURST),
                   update_pacer=per_minute(limits.updates_per_minute, default=UPDATES_PER_MINUTE, burst=PACING_BURST))

    # -- webhooks -------------------------------------------------------------------------------------------

    def verify_webhook(self, *, headers: Mapping[str, str], body: bytes) -> None:
        signature = headers.get(SIGNATURE_HEADER)
        timestamp = headers.get(TIMESTAMP_HEADER)
        if not self._secret:
            raise WebhookAuthError("webhook secret not configured")
        if not signature or not timestamp:
            raise WebhookAuthError("missing signature")
        if abs(self._clock() - _parse_timestamp(timestamp)) > self._tolerance:
            raise WebhookAuthError("signature timestamp outside the allowed window")
        if not hmac.compare_digest(sign(self._secret, timestamp, body).encode(), signature.strip().encode()):
            raise WebhookAuthError("bad signature")

    def parse_webhook(self, *, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        payload = webhook_json(body)
        raw = payload.get("ticket_id")
        if raw is None and isinstance(payload.get("ticket"), dict):
            raw = payload["ticket"].get("id")
        event = payload.get("type") if isinstance(payload.get("type"), str) else ""
        if raw is None and event.startswith(_EVENT_TYPE):
            raw = _event_ticket_id(payload, event)
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise WebhookPayloadError("no ticket id: send 'ticket_id' or 'ticket.id' as a string or number")
        ticket_id = str(raw).strip()
        if not _TICKET_ID.match(ticket_id):
            raise WebhookPayloadError(f"ticket id must be a positive integer, got {ticket_id[:40]!r}")
        invocation = headers.get(INVOCATION_HEADER)
        event_id = payload.get("id") if event.startswith(_EVENT_TYPE) else None
        if invocation:
            key = f"zendesk:invocation:{invocation.strip()[:200]}"
        elif isinstance(event_id, str) and event_id.strip():
            # An event's id names the event, so a retry signed anew is still the same delivery.
            key = f"zendesk:event:{event_id.strip()[:200]}"
        else:
            signature = headers.get(SIGNATURE_HEADER, "")
            key = "zendesk:sha256:" + hashlib.sha256(signature.encode() + b"\n" + body).hexdigest()
        return WebhookEvent(ticket_id=ticket_id, delivery_key=key)

    # -- reads ----------------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, json_body: Any = None, params: Mapping | None = None) -> dict:
        idempotent = method == "GET"
        # An update carrying a comment (a reply, a note) adds it again each time it is sent.
        comment = isinstance(json_body, dict) and isinstance(json_body.get("ticket"), dict) and \
            "comment" in json_body["ticket"]
        json_body, params = encodable_all(json_body), encodable_all(params)  # httpx cannot send a lone surrogate

        def once() -> dict:
            # Zendesk counts every request against the account's limit per minute, and ticket updates also
            # against their own, lower one: keep under both rather than collect 429s.
            if self._pacer is not None:
                self._pacer.wait("zendesk")
            if self._update_pacer is not None and method == "PUT" and path.startswith("/api/v2/tickets/"):
                self._update_pacer.wait("zendesk-updates")
            label = f"Zendesk {method} {path}"
            response = send(label, lambda: self._client.request(method, path, json=json_body, params=params),
                            idempotent=idempotent)
            return checked(label, response, once=comment)

        return with_retries(once, deadline=self._retry_deadline)

    def me(self) -> dict:
        """The API user Seam writes as: its comments are the bot's."""
        with self._me_lock:
            if self._me is None:
                self._me = self._request("GET", "/api/v2/users/me.json").get("user") or {}
            return self._me

    def check(self) -> str:
        """GET /api/v2/users/me: who the API token acts as. Zendesk answers a request without credentials with
        an anonymous user (no id) rather than a 401, so that is a refusal too."""
        user = self._request("GET", "/api/v2/users/me.json").get("user") or {}
        if user.get("id") is None:
            raise HelpdeskError("Zendesk answered as an anonymous user: ZENDESK_EMAIL and ZENDESK_API_TOKEN were not "
                                "accepted", status=401)
        return f"API user {user.get('name') or user['id']} ({user.get('role') or 'unknown role'})"

    def _pages(self, url: str, params: dict | None, next_url: Callable[[dict], str | None], *,
               max_pages: int | None = None) -> Iterator[dict]:
        """Follow a paginated listing, at most `max_pages` pages (MAX_PAGES unless said), each next link on the
        configured host (`on_configured_host`)."""
        for _ in range(max_pages or MAX_PAGES):
            page = self._request("GET", url, params=params)
            yield page
            following = next_url(page)
            if not following:
                return
            url, params = on_configured_host(following, base_url=str(self._client.base_url)), None

    def _comment_pages(self, ticket_id: str) -> tuple[list[dict], int, dict[str, dict], bool]:
        """The ticket's comments, how many entries of the listing were not comments Seam can read, their authors
        by id (`include=users` sideloads them, with their `role`), and whether the listing was read to its end
        (`_pages` stops after MAX_PAGES pages, and at a link to another host)."""
        def next_url(page: dict) -> str | None:  # offset pagination, or cursor pagination's links/meta
            return page.get("next_page") or ((page.get("links") or {}).get("next")
                                             if (page.get("meta") or {}).get("has_more") else None)

        comments: list[dict] = []
        authors: dict[str, dict] = {}
        unreadable = 0
        page: dict = {}
        for page in self._pages(f"/api/v2/tickets/{ticket_id}/comments.json", {"per_page": 100, "include": "users"},
                                next_url):
            authors.update((str(u.get("id")), u) for u in page.get("users") or [] if isinstance(u, dict))
            listed = page.get("comments") or []
            if not isinstance(listed, list):
                unreadable += 1
                continue
            for comment in listed:
                if isinstance(comment, dict) and isinstance(comment.get("plain_body", comment.get("body", "")),
                                                            str | None):
                    comments.append(comment)
                else:
                    unreadable += 1
        return comments, unreadable, authors, not next_url(page)

    def fetch_ticket(self, ticket_id: str) -> Ticket:
        # `slas`: the ticket's SLA policy metrics, when an SLA policy applies (sla_due_at, below).
        data = self._request("GET", f"/api/v2/tickets/{ticket_id}.json", params={"include": "users,slas"})
        raw = data.get("ticket")
        if not isinstance(raw, dict):
            raise HelpdeskError(f"Zendesk ticket {ticket_id} came back without a ticket object")
        users = {str(u.get("id")): u for u in data.get("users") or [] if isinstance(u, dict)}
        requester_id = str(raw.get("requester_id"))
        me_id = str(self.me().get("id"))
        comments, unreadable, authors, whole = self._comment_pages(ticket_id)
        problems = []
        if raw.get("requester_id") is None:
            problems.append("the ticket has no requester, so who wrote which comment is not known")
        if unreadable:
            problems.append(f"{unreadable} comment{'s' if unreadable > 1 else ''} could not be read")
        if not whole:
            problems.append(THREAD_CUT)
        messages = []
        for comment in comments:
            author_id = str(comment.get("author_id"))
            # Besides the requester, any end-user writes as the customer: a CC'd colleague answering the email, a
            # follower. Taken for an agent, their public comment would pass for the helpdesk answering the ticket.
            end_user = (authors.get(author_id) or users.get(author_id) or {}).get("role") == "end-user"
            author = ("customer" if author_id == requester_id else "bot" if author_id == me_id
                      else "customer" if end_user else "agent")
            body = comment.get("plain_body") or comment.get("body") or ""
            # Attached files are named for the agents (a screenshot alone is not an empty message); an inline image
            # is part of the body.
            files = tuple(str(a["file_name"]) for a in comment.get("attachments") or []
                          if isinstance(a, dict) and a.get("file_name") and not a.get("inline"))
            messages.append(Message(author=author, body=str(body), created_at=comment.get("created_at"),
                                    id=str(comment.get("id")), public=bool(comment.get("public", True)),
                                    attachments=files))
        requester = users.get(requester_id, {})
        return Ticket(
            id=str(raw.get("id", ticket_id)), subject=str(raw.get("subject") or raw.get("raw_subject") or ""),
            messages=tuple(messages), requester_name=requester.get("name"), requester_email=requester.get("email"),
            tags=tuple(str(t) for t in raw.get("tags") or []), priority=raw.get("priority"),
            status=raw.get("status"), created_at=raw.get("created_at"),
            sla_due_at=sla_breach_at(raw) or raw.get("due_at"), url=self.ticket_link(ticket_id),
            problems=tuple(problems),
        )

    def updated_since(self, since: float) -> Updates:
        """(ticket id, updated_at) of every ticket updated at or after `since` (Unix seconds), from the
        cursor-based incremental export (oldest update first); deleted tickets are left out. Past MAX_PAGES
        pages the export is cut and `resume_from` says where to go on."""
        def next_url(page: dict) -> str | None:
            return None if page.get("end_of_stream", True) else page.get("after_url")

        found, last = Updates(), {}
        for last in self._pages("/api/v2/incremental/tickets/cursor.json", {"start_time": int(since)}, next_url):
            found += [(str(t["id"]), str(t.get("updated_at") or "")) for t in last.get("tickets") or []
                      if isinstance(t, dict) and t.get("id") and t.get("status") != "deleted"]
        if next_url(last):
            found.resume_from = resumed_after(found, since)
        return found

    def export_pages(self, since: float, *, max_pages: int | None = None) -> Iterator[dict]:
        """The pages of the cursor-based incremental ticket export from `since` (Unix seconds), users sideloaded,
        as Zendesk returns them: `after_url` is followed until `end_of_stream`, at most `max_pages` pages
        (EXPORT_MAX_PAGES unless said) and never to another host (the last page then has `end_of_stream` false)."""
        def next_url(page: dict) -> str | None:
            return None if page.get("end_of_stream", True) else page.get("after_url")

        yield from self._pages("/api/v2/incremental/tickets/cursor.json",
                               {"start_time": int(since), "include": "users"}, next_url,
                               max_pages=max_pages or EXPORT_MAX_PAGES)

    def ticket_comments(self, ticket_id: str) -> tuple[list[dict], int]:
        """Every comment of the ticket as Zendesk returns it (all pages), and how many entries were unreadable (a
        listing cut short counts as one)."""
        comments, unreadable, _, whole = self._comment_pages(ticket_id)
        return comments, unreadable + (not whole)

    def ticket_link(self, ticket_id: str) -> str:
        return f"{self._agent_url}/agent/tickets/{ticket_id}"

    def find_agent(self, email: str) -> Agent | None:
        data = self._request("GET", "/api/v2/users/search.json", params={"query": f'email:"{email}"'})
        for user in data.get("users") or []:
            if (str(user.get("email", "")).lower() == email.lower()
                    and user.get("role") in ("agent", "admin") and user.get("active", True)):
                return Agent(id=str(user["id"]), name=str(user.get("name") or email), email=str(user["email"]))
        return None

    # -- writes ---------------------------------------------------------------------------------------------

    def _update(self, ticket_id: str, fields: dict) -> None:
        self._request("PUT", f"/api/v2/tickets/{ticket_id}.json", json_body={"ticket": fields})

    def reply(self, ticket_id: str, body: str, *, status: str | None = None) -> None:
        fields: dict = {"comment": {"body": body, "public": True}}
        if status:
            fields["status"] = status
        self._update(ticket_id, fields)

    def add_note(self, ticket_id: str, body: str) -> None:
        self._update(ticket_id, {"comment": {"body": body, "public": False}})

    def assign(self, ticket_id: str, agent_id: str | None) -> None:
        # `assignee_id: null` leaves the ticket unassigned (the ticket update API).
        value = None if agent_id is None else int(agent_id) if agent_id.isdigit() else agent_id
        self._update(ticket_id, {"assignee_id": value})

    def set_status(self, ticket_id: str, status: str) -> None:
        self._update(ticket_id, {"status": status})

    def add_tags(self, ticket_id: str, tags: Sequence[str]) -> None:
        self._request("PUT", f"/api/v2/tickets/{ticket_id}/tags.json", json_body={"tags": list(tags)})

    # -- knowledge ------------------------------------------------------------------------------------------

    def knowledge(self) -> list[Article]:
        """Help Center articles customers may read (`article-<id>`) and the active shared macros that write a reply
        (`macro-<id>`), as clean text.

        - Articles: `GET /api/v2/help_center/articles`, HTML `body`, `draft` true for an unpublished one
          (https://developer.zendesk.com/api-reference/help_center/help-center-api/articles/). The API answers
          with what the API user may see, agents' articles included, so an article behind user segments is kept
          only when one of them is open to every signed-in user (`user_type` "signed_in_users" and no tag,
          organization, group or user restriction; https://developer.zendesk.com/api-reference/help_center/
          help-center-api/user_segments/); if the segments cannot be read, none of those articles is kept.
        - Macros: `GET /api/v2/macros?active=true`; the reply is the `comment_value_html` or `comment_value`
          action (a string, or `[channel, text]`); a personal macro (`restriction.type` "User") or one that
          writes an internal note (`comment_mode_is_public` false) is not an answer
          (https://developer.zendesk.com/api-reference/ticketing/business-rules/macros/).
        A listing longer than MAX_PAGES pages raises HelpdeskError rather than give part of the knowledge: a
        sync retires what the helpdesk no longer lists."""
        found: list[Article] = []
        open_segments = self._open_segments()
        for article in self._listing("/api/v2/help_center/articles.json", "articles"):
            segments = {str(s) for s in [article.get("user_segment_id"), *(article.get("user_segment_ids") or [])]
                        if s is not None}
            if article.get("id") is None or article.get("draft") or (
                    segments and (open_segments is None or not segments & open_segments)):
                continue
            body = html_to_text(str(article.get("body") or ""))
            if body:
                found.append(Article(id=f"article-{article['id']}", title=str(article.get("title") or ""),
                                     body=body, updated_at=article.get("edited_at") or article.get("updated_at")))
        for macro in self._listing("/api/v2/macros.json", "macros", {"active": "true"}):
            restriction = macro.get("restriction")
            if (macro.get("id") is None or macro.get("active") is False
                    or (isinstance(restriction, dict) and restriction.get("type") == "User")):
                continue
            body = macro_reply(macro)
            if body:
                found.append(Article(id=f"macro-{macro['id']}", title=str(macro.get("title") or ""), body=body,
                                     updated_at=macro.get("updated_at")))
        return found

    def _open_segments(self) -> set[str] | None:
        """Ids of the user segments every signed-in user belongs to; None when the API user may not read them."""
        try:
            segments = list(self._listing("/api/v2/help_center/user_segments.json", "user_segments"))
        except HelpdeskError as exc:
            if exc.status in (403, 404):
                return None
            raise
        return {str(s["id"]) for s in segments if s.get("id") is not None and s.get("user_type") == "signed_in_users"
                and not any(s.get(k) for k in ("tags", "or_tags", "organization_ids", "group_ids", "added_user_ids"))}

    def _listing(self, path: str, key: str, params: dict | None = None) -> Iterator[dict]:
        """Every item of a cursor-paginated listing (`page[size]`, then `links.next` while `meta.has_more`;
        an offset `next_page` is followed too); HelpdeskError when `_pages` stopped before the end."""
        def next_url(page: dict) -> str | None:
            if (page.get("meta") or {}).get("has_more"):
                return (page.get("links") or {}).get("next")
            return page.get("next_page")

        last: dict = {}
        for last in self._pages(path, {"page[size]": 100, **(params or {})}, next_url):
            yield from (item for item in last.get(key) or [] if isinstance(item, dict))
        if next_url(last):
            raise ListingCut(f"Zendesk {path} has more than {MAX_PAGES} pages (or links elsewhere): not syncing a "
                             "part of it")


def sla_breach_at(raw: Mapping[str, Any]) -> str | None:
    """The next breach of the ticket's SLA policy: the earliest `breach_at` of its `slas.policy_metrics` still
    `active` (a metric achieved or paused has no breach coming), as `GET /api/v2/tickets/{id}.json?include=slas`
    returns them (`{"breach_at": "…Z", "stage": "active", "metric": "first_reply_time", "hours": 2}`); None when no
    SLA policy applies or the plan has none."""
    slas = raw.get("slas")
    metrics = slas.get("policy_metrics") if isinstance(slas, dict) else None
    due = [(moment, str(m["breach_at"])) for m in metrics or [] if isinstance(m, dict) and m.get("breach_at")
           and str(m.get("stage") or "active").lower() == "active"
           and (moment := parse_time(str(m["breach_at"]))) is not None]
    return min(due)[1] if due else None


def macro_reply(macro: Mapping[str, Any]) -> str:
    """The public reply a Zendesk macro writes, as clean text ("" when it writes none): its `comment_value_html`
    action, else its `comment_value` (either a string or `[channel, text]`)."""
    values: dict[str, str] = {}
    public = True
    for action in macro.get("actions") or []:
        if not isinstance(action, dict):
            continue
        field, value = action.get("field"), action.get("value")
        if field == "comment_mode_is_public":
            public = str(value).strip().lower() not in ("false", "0")
        elif field in ("comment_value_html", "comment_value"):
            if isinstance(value, list) and value:
                value = value[-1]
            if isinstance(value, str) and value.strip():
                values[field] = value
    text = values.get("comment_value_html") or values.get("comment_value") or ""
    return html_to_text(text) if public and text else ""


def _event_ticket_id(payload: Mapping[str, Any], event: str) -> object:
    """The ticket an event-subscription body is about: its subject, else the ticket's own id under `detail`.
    An event about anything else (a user, an article) is refused with what to change."""
    if not event.startswith(_TICKET_EVENTS):
        raise WebhookPayloadError(f"a {event[len(_EVENT_TYPE):][:60]!r} event is not about a ticket: subscribe "
                                  "this webhook to ticket events, or connect it to a trigger")
    subject = payload.get("subject")
    if isinstance(subject, str) and (match := _TICKET_SUBJECT.match(subject.strip())):
        return match.group(1)
    detail = payload.get("detail")
    return detail.get("id") if isinstance(detail, dict) else None

