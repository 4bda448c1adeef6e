"""The Help Scout adapter: webhook signature and body, reading a conversation with its threads, the writes Seam
makes, reconciliation, the listings `import helpscout --from-api` saves (export.py), and knowledge (saved replies
and Help Scout Docs articles) — against the Mailbox API 2.0
(https://developer.helpscout.com/mailbox-api/) with an OAuth2 client-credentials token.

The httpx clients are injected (see `helpscout_client` and `docs_client` for the production ones); tests point
them at a fake Help Scout on loopback. Every call goes through one `_request`: paced to the account's limit
(writes count twice), retried with backoff that honours `X-RateLimit-Retry-After`, a 401 answered once with a
fresh token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

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
    iso_seconds,
    resumed_after,
    webhook_json,
)
from bot.helpdesk.helpscout.auth import AccessToken
from bot.helpdesk.helpscout.knowledge import docs_articles, saved_replies
from bot.helpdesk.helpscout.settings import (
    AGENT_URL,
    DOCS_REQUESTS_PER_MINUTE,
    NATIVE_STATUSES,
    PRIORITY_FIELD,
    REQUESTS_PER_MINUTE,
    STATUS_MAP,
    HelpScoutSettings,
)
from bot.helpdesk.helpscout.shapes import (
    clean_id,
    custom_field,
    items,
    newest_time,
    next_link,
    oldest_first,
    page_position,
    person_name,
    tag_names,
    thread_message,
    to_html,
)
from bot.helpdesk.http import checked, on_configured_host, with_retries
from bot.helpdesk.http import send as send_http
from bot.helpdesk.listing import Page, by_update_time
from bot.models import Article, Ticket
from bot.pacing import ChannelPacer, per_minute
from bot.retry import (
    CALL_DEADLINE,
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
)
from bot.text import encodable_all

if TYPE_CHECKING:
    from bot.config import Settings


# https://developer.helpscout.com/webhooks/ and the official PHP client's IncomingWebhook (TEST_EVENT).
SIGNATURE_HEADER = "x-helpscout-signature"
EVENT_HEADER = "x-helpscout-event"
TEST_EVENT = "helpscout.test"
TOKEN_PATH = "/v2/oauth2/token"
# Bounds what a runaway pagination can cost (a conversation holds at most 100 threads).
MAX_PAGES = 50
# Each saved reply is one request (the listing holds no text): 2,000 is about five minutes at Help Scout's pace.
MAX_SAVED_REPLIES = 2000
PACING_BURST = 10
# [0-9], not \d: an id in another script's digits ("١٢٣") is no Help Scout id.
_CONVERSATION_LINK = re.compile(r"/conversations/([0-9]{1,20})(?:[/?#]|$)")


class PageCap(ListingCut):
    """A listing that went on past MAX_PAGES pages (not one that linked elsewhere): a listing sorted by
    modification time can go on with a new one from the last time read."""


def helpscout_client(settings: HelpScoutSettings) -> httpx.Client:
    """The production Mailbox API client; the bearer token is added per request."""
    return httpx.Client(base_url=settings.base_url, timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
                        headers={"User-Agent": "seam (+https://github.com/seam-support/seam)",
                                 "Accept": "application/json"})


def docs_client(settings: HelpScoutSettings) -> httpx.Client:
    """The Docs API client: Basic auth with the API key as user name and a dummy password
    (https://developer.helpscout.com/docs-api/)."""
    return httpx.Client(base_url=settings.docs_base_url, auth=(settings.docs_api_key or "", "X"),
                        timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
                        headers={"Accept": "application/json"})


def sign(secret: str, body: bytes) -> str:
    """Help Scout's webhook signature: base64(HMAC-SHA1(secret, raw body))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha1).digest()).decode()


def _conversation_id(ticket_id: str) -> str:
    """The id as it goes into a path: digits only, so no id can reach another endpoint."""
    conversation_id = clean_id(ticket_id)
    if conversation_id is None:
        raise HelpdeskError(f"{str(ticket_id)[:40]!r} is not a Help Scout conversation id")
    return conversation_id


def _stamp(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def modified_since(since: float) -> dict:
    """The query of the conversations list modified at or after `since` (Unix seconds), oldest modification
    first, of every status: without `status` Help Scout lists active conversations only."""
    return {"status": "all", "modifiedSince": _stamp(datetime.fromtimestamp(int(since), UTC)),
            "sortField": "modifiedAt", "sortOrder": "asc"}


def conversation_version(raw: dict) -> str:
    """A listed conversation's state as reconciliation and the export compare it. The conversation shows no
    modification time, so this is its newest time with its thread count: equal for the same state, different
    after a new thread or a change a user made."""
    return f"{_stamp(newest_time(raw))}#{raw.get('threads', '')}"


class HelpScoutAdapter:
    name = "helpscout"

    def __init__(self, client: httpx.Client, *, app_id: str, app_secret: str, webhook_secret: str,
                 tolerance_seconds: int = 300, clock: Callable[[], float] = time.time,
                 retry_deadline: float = CALL_DEADLINE,
                 pacer: ChannelPacer | None = None, update_pacer: ChannelPacer | None = None,
                 docs: httpx.Client | None = None, docs_pacer: ChannelPacer | None = None,
                 token_clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._docs = docs
        self._app_id = app_id
        self._app_secret = app_secret
        self._secret = webhook_secret
        self._tolerance = tolerance_seconds
        self._clock = clock
        self._retry_deadline = retry_deadline
        self._pacer, self._update_pacer, self._docs_pacer = pacer, update_pacer, docs_pacer
        self._token = AccessToken(self._fetch_token, clock=token_clock)
        self._me: dict | None = None
        self._me_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, client: httpx.Client | None = None) -> HelpScoutAdapter:
        own: HelpScoutSettings = settings.helpdesk_settings or HelpScoutSettings()
        limits = settings.helpdesk_limits
        requests = REQUESTS_PER_MINUTE if limits.requests_per_minute is None else limits.requests_per_minute
        return cls(client or helpscout_client(own), app_id=own.app_id or "", app_secret=own.app_secret or "",
                   webhook_secret=own.webhook_secret or "", tolerance_seconds=settings.webhook_tolerance_seconds,
                   pacer=per_minute(requests, burst=PACING_BURST),
                   update_pacer=per_minute(limits.updates_per_minute, burst=PACING_BURST),
                   docs=docs_client(own) if own.docs_api_key else None,
                   docs_pacer=per_minute(DOCS_REQUESTS_PER_MINUTE if requests else 0, burst=PACING_BURST))

    # -- webhooks -------------------------------------------------------------------------------------------

    def verify_webhook(self, *, headers: Mapping[str, str], body: bytes) -> None:
        if not self._secret:
            raise WebhookAuthError("webhook secret not configured")
        signature = headers.get(SIGNATURE_HEADER)
        if not signature:
            raise WebhookAuthError("missing signature")
        if not hmac.compare_digest(sign(self._secret, body).encode(), signature.strip().encode()):
            raise WebhookAuthError("bad signature")
        if (headers.get(EVENT_HEADER) or "").strip() == TEST_EVENT:
            return
        # Help Scout signs no timestamp: the replay window is judged by the newest time the signed conversation
        # shows. A body without one (a deletion, a malformed body) is left to parse_webhook.
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return
        moment = newest_time(payload) if isinstance(payload, dict) else None
        if moment is not None and self._clock() - moment.timestamp() > self._tolerance:
            raise WebhookAuthError("event older than the allowed window")

    def parse_webhook(self, *, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        event = (headers.get(EVENT_HEADER) or "").strip()[:100]
        if event == TEST_EVENT:  # sent when the webhook is saved: nothing to record
            raise WebhookChallenge({"ok": True, "event": TEST_EVENT})
        if event and (not event.startswith("convo.") or event == "convo.deleted"):
            # Customer, tag, rating and chat events name no conversation Seam can read; a deleted one is gone.
            raise WebhookChallenge({"ok": True, "ignored": event})
        payload = webhook_json(body)
        links = payload.get("_links") if isinstance(payload.get("_links"), dict) else {}
        link = links["self"].get("href") if isinstance(links.get("self"), dict) else None
        found = _CONVERSATION_LINK.search(link) if isinstance(link, str) else None
        conversation_id = clean_id(payload.get("id")) or (found.group(1) if found else None)
        if conversation_id is None:
            raise WebhookPayloadError("no conversation id: send the conversation object (its 'id' a positive integer)")
        # Help Scout sends no delivery id. A redelivery repeats the same event and bytes; a new event carries the
        # conversation as it now is, which differs (a new thread, tag, status or userUpdatedAt).
        digest = hashlib.sha256(event.encode() + b"\n" + body).hexdigest()
        return WebhookEvent(ticket_id=conversation_id, delivery_key=f"helpscout:sha256:{digest}")

    # -- the one way out ------------------------------------------------------------------------------------

    def _pace(self, method: str, docs: bool) -> None:
        if docs:
            if self._docs_pacer is not None:
                self._docs_pacer.wait("helpscout-docs")
            return
        write = method != "GET"
        if self._pacer is not None:
            for _ in range(2 if write else 1):  # "Write requests … count as 2 requests toward the rate limit."
                self._pacer.wait("helpscout")
        if write and self._update_pacer is not None:
            self._update_pacer.wait("helpscout-writes")

    def _request(self, method: str, path: str, *, json_body: Any = None, params: Mapping | None = None,
                 form: Mapping | None = None, docs: bool = False, bearer: bool = True) -> Any:
        client = self._docs if docs else self._client
        assert client is not None
        # A write that timed out may have landed: the caller checks before repeating. The token request is safe.
        idempotent = method == "GET" or not bearer
        # httpx cannot send a lone surrogate: text from outside is made encodable here.
        json_body, params, form = encodable_all(json_body), encodable_all(params), encodable_all(form)
        label = f"Help Scout {'Docs ' if docs else ''}{method} {path}"

        def send(token: str | None, url: str) -> httpx.Response:
            self._pace(method, docs)
            headers = {"Authorization": f"Bearer {token}"} if token else None
            return send_http(label, lambda: client.request(method, url, json=json_body, params=params, data=form,
                                                           headers=headers), idempotent=idempotent)

        def once() -> Any:
            token = self._token.get() if bearer and not docs else None
            response = send(token, path)
            if response.status_code == 401 and token is not None:
                self._token.invalidate(token)  # expired or revoked early: one more try with a fresh one
                token = self._token.get()
                response = send(token, path)
            location = response.headers.get("location", "")
            if response.is_redirect and method == "GET" and location:
                # A merged conversation answers 301 with its new address on the same API (on the configured host:
                # behind a proxy, the address names Help Scout's own).
                response = send(token, on_configured_host(location, base_url=str(client.base_url)))
            # A token request's error body stays out of logs.
            # A POST with the token (a reply, a note) adds a thread each time it is sent.
            return checked(label, response, retry_after=response.headers.get("x-ratelimit-retry-after"),
                           error_at=300, show_body=bearer, once=method == "POST" and bearer)

        return with_retries(once, deadline=self._retry_deadline)

    def _fetch_token(self) -> Mapping:
        # https://developer.helpscout.com/mailbox-api/overview/authentication/ (client credentials flow)
        answer = self._request("POST", TOKEN_PATH, bearer=False, form={
            "grant_type": "client_credentials", "client_id": self._app_id, "client_secret": self._app_secret})
        return answer if isinstance(answer, dict) else {}

    def _pages(self, path: str, params: dict | None, *, docs: bool = False, whole: bool = False) -> Iterator[Any]:
        """A paginated listing, at most MAX_PAGES pages: HAL's `_links.next` (on the configured host,
        `on_configured_host`), else the next page number while the page says there are more. With `whole`, a
        listing that goes on past that raises PageCap instead of ending quietly: knowledge sync retires what a
        listing leaves out, so part of one must not pass for all of it."""
        url, query = path, params
        for _ in range(MAX_PAGES):
            page = self._request("GET", url, params=query, docs=docs)
            yield page
            following = next_link(page)
            if following:
                url, query = on_configured_host(
                    following, base_url=str((self._docs if docs else self._client).base_url)), None
                continue
            position = page_position(page)
            if position is None or position[0] >= position[1]:
                return
            url, query = path, {**(params or {}), "page": position[0] + 1}
        if whole:
            raise PageCap(f"Help Scout {path} has more than {MAX_PAGES} pages: not syncing a part of it")

    # -- reads ----------------------------------------------------------------------------------------------

    def me(self) -> dict:
        """The user Seam acts as — the OAuth app's owner, whom the API credits with every thread Seam writes."""
        with self._me_lock:
            if self._me is None:
                answer = self._request("GET", "/v2/users/me")
                self._me = answer if isinstance(answer, dict) else {}
            return self._me

    def check(self) -> str:
        """GET /v2/users/me (after fetching a token with the app's id and secret): the app's owner."""
        answer = self._request("GET", "/v2/users/me")
        user = answer if isinstance(answer, dict) else {}
        name = " ".join(str(user.get(k) or "") for k in ("firstName", "lastName")).strip()
        return f"API user {name or user.get('email') or user.get('id')}"

    def _conversation(self, ticket_id: str) -> tuple[str, dict]:
        conversation_id = _conversation_id(ticket_id)
        answer = self._request("GET", f"/v2/conversations/{conversation_id}")
        if not isinstance(answer, dict) or not answer.get("id"):
            raise HelpdeskError(f"Help Scout conversation {conversation_id} came back without a conversation")
        return clean_id(answer["id"]) or conversation_id, answer

    def fetch_ticket(self, ticket_id: str) -> Ticket:
        conversation_id, raw = self._conversation(ticket_id)
        threads: list = []
        cut = False
        try:
            for page in self._pages(f"/v2/conversations/{conversation_id}/threads", None, whole=True):
                threads += items(page, "threads")
        except ListingCut:  # past MAX_PAGES pages, or a link to another host: only part of the thread was read
            cut = True
        me_id = clean_id(self.me().get("id"))
        messages = [m for t in oldest_first(threads) if (m := thread_message(t, me_id=me_id)) is not None]
        customer = raw.get("primaryCustomer") if isinstance(raw.get("primaryCustomer"), dict) else {}
        priority = custom_field(raw.get("customFields"), PRIORITY_FIELD)
        return Ticket(
            id=conversation_id, subject=str(raw.get("subject") or ""), messages=tuple(messages),
            requester_name=person_name(customer), requester_email=customer.get("email"),
            tags=tag_names(raw.get("tags")), priority=priority.lower() if priority else None,
            status=raw.get("status"), created_at=raw.get("createdAt"), sla_due_at=None,
            url=self.ticket_link(conversation_id), problems=(THREAD_CUT,) if cut else ())

    def ticket_link(self, ticket_id: str) -> str:
        return f"{AGENT_URL}/conversation/{ticket_id}"

    def updated_since(self, since: float) -> Updates:
        """(conversation id, version) of every conversation modified at or after `since` (Unix seconds), spam
        left out. The conversation shows no modification time, so the version is its newest time with its
        thread count: equal for the same state, different after any change reconciliation should look at.
        Past MAX_PAGES pages the listing (oldest modification first) is cut and `resume_from` says where to go
        on: the newest time read, which is never after the modification it stands for."""
        found: dict[str, str] = {}
        resume_from = None
        try:
            for page in self.conversation_pages(since):
                for raw in items(page, "conversations"):
                    conversation_id = clean_id(raw.get("id"))
                    if conversation_id and raw.get("status") != "spam":
                        found[conversation_id] = conversation_version(raw)
        except ListingCut:
            resume_from = resumed_after(list(found.items()), since,
                                        time_of=lambda version: iso_seconds(version.split("#")[0]))
        return Updates(found.items(), resume_from=resume_from)

    def conversation_pages(self, since: float) -> Iterator[Any]:
        """The pages of the conversations list modified at or after `since` (Unix seconds), oldest modification
        first, as Help Scout answers them, read by modification time (bot.helpdesk.listing): each page is page 1
        of a new list from the newest time the page before showed, so a conversation modified while the list is
        read cannot push one not yet read onto a page already read. A conversation may come on two pages. Past
        MAX_PAGES pages PageCap is raised once they are read (a new listing from the last time read goes on).

        Relied on (https://developer.helpscout.com/mailbox-api/endpoints/conversations/list/): `modifiedSince`
        takes an ISO time to the second, `sortField=modifiedAt` with `sortOrder=asc` sorts oldest modification
        first, pages by `page` with `page.number`/`page.totalPages`. The conversation object has no modification
        time (…/conversations/get/: `createdAt`, `closedAt`, `userUpdatedAt`, `customerWaitingSince`), so a page
        is keyed by the newest of those it shows (`newest_time`): each is a moment the conversation was modified,
        never after the modification it is sorted by, so a new list from it can repeat conversations but never
        skip one. When a whole page shows nothing newer (a bulk change in one second, or times that lag), the
        walk pages on by number within that list."""
        def fetch(cursor: int, number: int) -> Page:
            body = self._request("GET", "/v2/conversations",
                                 params={**modified_since(cursor), **({"page": number} if number > 1 else {})})
            position = page_position(body)
            more = bool(next_link(body)) or (position is not None and position[0] < position[1])
            return Page(body, items(body, "conversations"), more)

        def time_of(raw: dict) -> float | None:
            moment = newest_time(raw)
            return moment.timestamp() if moment else None

        for page in by_update_time(fetch, since, time_of=time_of, max_requests=MAX_PAGES, cut=PageCap,
                                   name="Help Scout's conversations list"):
            yield page.body

    def conversation_threads(self, conversation_id: str) -> tuple[list[dict], int]:
        """Every thread of the conversation (all pages, newest first) as Help Scout answers them, and how many
        entries were not thread objects (a thread listing cut short counts as one)."""
        threads: list[dict] = []
        unreadable = 0
        try:
            for page in self._pages(f"/v2/conversations/{_conversation_id(conversation_id)}/threads", None,
                                    whole=True):
                embedded = page.get("_embedded") if isinstance(page, dict) else None
                listed = embedded.get("threads") if isinstance(embedded, dict) else None
                listed = listed if isinstance(listed, list) else []
                threads += [thread for thread in listed if isinstance(thread, dict)]
                unreadable += sum(not isinstance(thread, dict) for thread in listed)
        except ListingCut:
            unreadable += 1  # the rest is kept: a conversation holds at most 100 threads, so this is rare
        return threads, unreadable

    def find_agent(self, email: str) -> Agent | None:
        """The Help Scout user with this email (or alternate email), in any case. The API's `email` filter is
        an exact match, so when it finds nobody the user list is searched."""
        wanted = email.strip().casefold()

        def match(page: Any) -> Agent | None:
            for user in items(page, "users"):
                emails = [user.get("email"), *(user.get("alternateEmails") or [])]
                if any(isinstance(e, str) and e.strip().casefold() == wanted for e in emails) and user.get("id"):
                    return Agent(id=str(user["id"]), name=person_name(user) or str(user.get("email") or email),
                                 email=str(user.get("email") or email))
            return None

        found = match(self._request("GET", "/v2/users", params={"email": email.strip()}))
        if found is None:
            found = next((a for page in self._pages("/v2/users", None) if (a := match(page))), None)
        return found

    def knowledge(self) -> list[Article]:
        """Saved replies of every inbox (`macro-<id>`) and, with a Docs API key, the published articles of public
        Docs collections (`article-<id>`), as clean text (bot.helpdesk.helpscout.knowledge). A listing longer
        than MAX_PAGES pages raises HelpdeskError rather than give part of the knowledge: a sync retires what
        the helpdesk no longer lists."""
        def get(path: str, **options: Any) -> Any:
            return self._request("GET", path, **options)

        def pages(path: str, params: dict | None, **options: Any) -> Iterator[Any]:
            return self._pages(path, params, whole=True, **options)

        found = list(saved_replies(get, pages, limit=MAX_SAVED_REPLIES))
        if self._docs is not None:
            found += docs_articles(get, pages)
        return found

    # -- writes ---------------------------------------------------------------------------------------------

    def _status(self, status: str) -> str:
        word = status.strip().lower()
        if word in NATIVE_STATUSES:
            return word
        if word not in STATUS_MAP:
            raise HelpdeskError(f"Help Scout has no status for {status!r} (use one of {', '.join(STATUS_MAP)})")
        return STATUS_MAP[word]

    def reply(self, ticket_id: str, body: str, *, status: str | None = None) -> None:
        target = self._status(status) if status else None
        conversation_id, raw = self._conversation(ticket_id)
        customer_id = clean_id((raw.get("primaryCustomer") or {}).get("id"))
        if customer_id is None:
            raise HelpdeskError(f"Help Scout conversation {conversation_id} has no customer to reply to")
        # A reply without a status reactivates the conversation
        # (https://developer.helpscout.com/mailbox-api/endpoints/conversations/threads/reply/): Seam's "no status"
        # means leave it as it is, so the current one is sent back.
        if target is None and raw.get("status") in NATIVE_STATUSES:
            target = raw["status"]
        fields: dict = {"customer": {"id": int(customer_id)}, "text": to_html(body)}
        if target:
            fields["status"] = target
        self._request("POST", f"/v2/conversations/{conversation_id}/reply", json_body=fields)

    def _at_current_id(self, ticket_id: str, write: Callable[[str], Any]) -> None:
        """`write(conversation id)`, at the conversation's current id: a conversation merged into another answers
        a write at its old id 404, and a read of it 301 with its new address
        (https://developer.helpscout.com/mailbox-api/endpoints/conversations/delete/, "Moved or merged
        conversations"), so after a 404 the conversation is read and, when it moved, the write is made there. A
        404 means the write was not applied: making it again adds nothing twice."""
        conversation_id = _conversation_id(ticket_id)
        try:
            write(conversation_id)
        except HelpdeskError as exc:
            if exc.status != 404:
                raise
            moved, _ = self._conversation(ticket_id)
            if moved == conversation_id:
                raise
            write(moved)

    def add_note(self, ticket_id: str, body: str) -> None:
        self._at_current_id(ticket_id, lambda conversation_id: self._request(
            "POST", f"/v2/conversations/{conversation_id}/notes", json_body={"text": to_html(body)}))

    def _patch(self, ticket_id: str, operation: dict) -> None:
        # https://developer.helpscout.com/mailbox-api/endpoints/conversations/update/ (JSON Patch, 204)
        self._at_current_id(ticket_id, lambda conversation_id: self._request(
            "PATCH", f"/v2/conversations/{conversation_id}", json_body=operation))

    def assign(self, ticket_id: str, agent_id: str | None) -> None:
        if agent_id is None:  # JSON Patch `remove` on /assignTo unassigns the conversation
            self._patch(ticket_id, {"op": "remove", "path": "/assignTo"})
            return
        self._patch(ticket_id, {"op": "replace", "path": "/assignTo",
                                "value": int(agent_id) if agent_id.isdigit() else agent_id})

    def set_status(self, ticket_id: str, status: str) -> None:
        self._patch(ticket_id, {"op": "replace", "path": "/status", "value": self._status(status)})

    def add_tags(self, ticket_id: str, tags: Sequence[str]) -> None:
        # PUT replaces the whole set (https://developer.helpscout.com/mailbox-api/endpoints/conversations/tags/
        # update/): read the tags first and send them all; Help Scout keeps tag names lower-case.
        conversation_id, raw = self._conversation(ticket_id)
        current = list(tag_names(raw.get("tags")))
        wanted = list(dict.fromkeys([*current, *(t.strip().lower() for t in tags if t.strip())]))
        if wanted != current:
            self._request("PUT", f"/v2/conversations/{conversation_id}/tags", json_body={"tags": wanted})
