"""Helpdesk harnesses for the contract suite in `tests/contract/`: one class per helpdesk that owns a running
fake of that helpdesk and a real adapter pointed at it, and speaks about tickets, agents, webhooks and failures
in the suite's own generic terms (customer, agent, bot; read, write; signed, forged, stale). Everything specific
to a platform — its webhook headers and signature scheme, its JSON shapes, its user ids, the names of its API
calls in the fake — stays inside its harness, so the suite never knows which helpdesk it is testing. Adding a
helpdesk means writing its harness against `HelpdeskHarness` and adding one entry to `HARNESSES`.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Literal, Protocol

import httpx

from bot.helpdesk.base import Helpdesk
from bot.helpdesk.zendesk.adapter import ZendeskAdapter, sign
from tests.support.fakes import FakeZendesk

Author = Literal["customer", "agent", "bot"]
#: How a test webhook is delivered: as the platform sends it, without a signature, signed with another secret,
#: or correctly signed ten minutes ago (outside every adapter's replay window).
How = Literal["signed", "unsigned", "forged", "stale"]
#: "read" is reading a ticket (the first request `fetch_ticket` makes); "write" is updating a ticket (the
#: request behind `reply`, `add_note`, `assign` and `set_status`).
Operation = Literal["read", "write"]

STALE_SECONDS = 600


class HelpdeskHarness(Protocol):
    """What the contract suite needs from a helpdesk: a real adapter, a way to set the scene on the platform,
    webhooks exactly as the platform sends them, a view of the platform's state that does not go through the
    adapter, and failure injection. Ticket and agent ids are the strings the adapter uses."""

    name: str
    adapter: Helpdesk
    #: False for platforms whose webhooks carry a shared secret instead of a signature over the body.
    signs_bodies: bool
    #: The requester of every ticket `add_customer_ticket` creates.
    customer_name: str
    customer_email: str
    #: Status values this platform accepts from `set_status` / `reply(status=…)` and reports back.
    solved_status: str
    pending_status: str
    #: The adapter's retry deadline in seconds: a call that keeps failing must end within about this long.
    retry_deadline: float

    def add_customer_ticket(self, subject: str, messages: Sequence[tuple[Author, str, bool]], *,
                            tags: Sequence[str] = (), priority: str = "normal") -> str:
        """A ticket requested by the customer whose conversation is `messages`, oldest first: (author, body,
        public). "agent" is a human agent, "bot" the account the adapter writes as."""
        ...

    def add_agent(self, email: str, name: str) -> str:
        """A new agent who can be found by email and assigned tickets; returns the agent's id."""
        ...

    def unknown_ticket_id(self) -> str:
        """An id of the right shape that names no ticket."""
        ...

    def webhook(self, ticket_id: str, *, how: How = "signed") -> tuple[dict[str, str], bytes]:
        """A new webhook delivery about the ticket: (headers as sent on the wire, body)."""
        ...

    def sign(self, body: bytes, *, how: How = "signed") -> dict[str, str]:
        """The headers a new delivery of an arbitrary body would carry."""
        ...

    def public_replies(self, ticket_id: str) -> list[str]:
        """Bodies of the ticket's public messages not written by the customer, oldest first."""
        ...

    def internal_notes(self, ticket_id: str) -> list[str]:
        """Bodies of the ticket's private messages, oldest first."""
        ...

    def assignee(self, ticket_id: str) -> str | None: ...

    def status(self, ticket_id: str) -> str: ...

    def tags(self, ticket_id: str) -> list[str]: ...

    def updated_at(self, ticket_id: str) -> float:
        """When the platform last recorded a change to the ticket, in Unix seconds."""
        ...

    def fail_next(self, operation: Operation, status: int, *, retry_after: float | None = None,
                  times: int = 1) -> None:
        """Answer the next `times` requests of `operation` with HTTP `status` (and `Retry-After` when given),
        without doing them."""
        ...

    def attempts(self, operation: Operation) -> int:
        """How many requests of `operation` the platform has received so far, failed ones included."""
        ...

    def write_answers_lost(self) -> AbstractContextManager[None]:
        """A context in which writes land on the platform but their answers come back only after the adapter
        has stopped waiting (a timeout, as after a crash or a network cut); on leaving it, every write in
        flight has landed."""
        ...

    def serve_env(self) -> dict[str, str]:
        """The environment `python -m bot serve` needs for this helpdesk: `HELPDESK` and its variables, pointed
        at this harness's fake (the base-URL override) with the harness's webhook secret."""
        ...

    # -- knowledge (`Helpdesk.knowledge()`, bot.jobs.knowledge) ----------------------------------------------

    #: What knowledge the platform keeps: ("article", "macro"), or ("macro",) where it has no help centre.
    knowledge_kinds: tuple[str, ...]

    def add_knowledge_article(self, title: str, html: str) -> str:
        """A published help-centre article customers can read; returns the id Seam knows it by (`article-…`)."""
        ...

    def add_knowledge_macro(self, title: str, html: str) -> str:
        """A shared macro, canned response, saved reply or message template whose reply is `html`; returns the id
        Seam knows it by (`macro-…`)."""
        ...

    def edit_knowledge(self, seam_id: str, *, title: str, html: str) -> None:
        """Change an article's or macro's title and text on the platform."""
        ...

    def remove_knowledge(self, seam_id: str) -> None:
        """Delete an article or macro on the platform."""
        ...

    def fail_knowledge(self, kind: str, status: int) -> None:
        """Answer the next listing of `kind` ("article" or "macro") with HTTP `status`."""
        ...

    def close(self) -> None: ...


class ZendeskHarness:
    """Zendesk: a `FakeZendesk` on loopback and a `ZendeskAdapter` with a short retry deadline and timeout."""

    name = "zendesk"
    signs_bodies = True
    customer_name = "Ana Customer"
    customer_email = "ana@example.com"
    solved_status = "solved"
    pending_status = "pending"
    retry_deadline = 2.0
    request_timeout = 2.0

    SECRET = "contract-zendesk-webhook-secret"
    AGENT_URL = "https://acme.zendesk.com"
    WEBHOOK_ID = "01GV1QH3S6ZQ6X0E1A5W3T7Y8P"
    # The fake's logical call names behind the suite's operations.
    CALLS = {"read": "get_ticket", "write": "update_ticket"}

    def __init__(self) -> None:
        self.fake = FakeZendesk().start()
        self._ticket_ids = itertools.count(101)
        self._user_ids = itertools.count(501)
        self._invocations = itertools.count(8_350_205_582)
        self._subjects: dict[str, str] = {}
        self._customer = next(self._user_ids)
        self.fake.add_user(id=self._customer, name=self.customer_name, email=self.customer_email)
        self._agent = int(self.add_agent("sam.agent@example.com", "Sam Agent"))
        self._client = httpx.Client(base_url=self.fake.url, auth=self.fake.auth, timeout=self.request_timeout)
        self.adapter = ZendeskAdapter(self._client, webhook_secret=self.SECRET, agent_url=self.AGENT_URL,
                                      retry_deadline=self.retry_deadline)

    def __enter__(self) -> ZendeskHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()
        self.fake.stop()

    def serve_env(self) -> dict[str, str]:
        return {"HELPDESK": "zendesk", "ZENDESK_SUBDOMAIN": "acme", "ZENDESK_EMAIL": self.fake.email,
                "ZENDESK_API_TOKEN": self.fake.token, "ZENDESK_API_URL": self.fake.url,
                "ZENDESK_WEBHOOK_SECRET": self.SECRET}

    # -- the scene ------------------------------------------------------------------------------------------

    def add_customer_ticket(self, subject: str, messages: Sequence[tuple[Author, str, bool]], *,
                            tags: Sequence[str] = (), priority: str = "normal") -> str:
        authors = {"customer": self._customer, "agent": self._agent, "bot": FakeZendesk.API_USER_ID}
        ticket_id = next(self._ticket_ids)
        self.fake.add_ticket(id=ticket_id, subject=subject, requester_id=self._customer, tags=tags,
                             priority=priority, comments=[{"author_id": authors[author], "body": body, "public": public}
                                                          for author, body, public in messages])
        self._subjects[str(ticket_id)] = subject
        return str(ticket_id)

    def add_agent(self, email: str, name: str) -> str:
        user_id = next(self._user_ids)
        self.fake.add_user(id=user_id, name=name, email=email, role="agent")
        return str(user_id)

    def unknown_ticket_id(self) -> str:
        return "999999"

    # -- knowledge: Help Center articles and macros --------------------------------------------------------

    knowledge_kinds = ("article", "macro")
    KNOWLEDGE_CALLS = {"article": "list_articles", "macro": "list_macros"}

    def add_knowledge_article(self, title: str, html: str) -> str:
        return f"article-{self.fake.add_article(title=title, body=html)['id']}"

    def add_knowledge_macro(self, title: str, html: str) -> str:
        return f"macro-{self.fake.add_macro(title=title, html_body=html)['id']}"

    def edit_knowledge(self, seam_id: str, *, title: str, html: str) -> None:
        kind, _, native = seam_id.partition("-")
        if kind == "article":
            self.fake.update_article(int(native), title=title, body=html)
        else:
            self.fake.update_macro(int(native), title=title, html_body=html)

    def remove_knowledge(self, seam_id: str) -> None:
        kind, _, native = seam_id.partition("-")
        (self.fake.remove_article if kind == "article" else self.fake.remove_macro)(int(native))

    def fail_knowledge(self, kind: str, status: int) -> None:
        self.fake.fail(self.KNOWLEDGE_CALLS[kind], status=status)

    # -- webhooks, as a Zendesk trigger sends them ----------------------------------------------------------

    def webhook(self, ticket_id: str, *, how: How = "signed") -> tuple[dict[str, str], bytes]:
        # The body Seam's README tells the trigger to send.
        body = json.dumps({"ticket_id": ticket_id, "subject": self._subjects.get(ticket_id, ""),
                           "link": f"{self.AGENT_URL.removeprefix('https://')}/agent/tickets/{ticket_id}"}).encode()
        return self.sign(body, how=how), body

    def sign(self, body: bytes, *, how: How = "signed") -> dict[str, str]:
        moment = time.time() - (STALE_SECONDS if how == "stale" else 0)
        timestamp = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Zendesk Webhook",
                   "X-Zendesk-Account-Id": "10001", "X-Zendesk-Webhook-Id": self.WEBHOOK_ID,
                   "X-Zendesk-Webhook-Invocation-Id": str(next(self._invocations))}
        if how != "unsigned":
            secret = "not-the-webhook-secret" if how == "forged" else self.SECRET
            headers["X-Zendesk-Webhook-Signature"] = sign(secret, timestamp, body)
            headers["X-Zendesk-Webhook-Signature-Timestamp"] = timestamp
        return headers

    # -- the platform's state, read from the fake -----------------------------------------------------------

    def public_replies(self, ticket_id: str) -> list[str]:
        return [c["body"] for c in self.fake.comments(int(ticket_id))
                if c["public"] and c["author_id"] != self._customer]

    def internal_notes(self, ticket_id: str) -> list[str]:
        return [c["body"] for c in self.fake.comments(int(ticket_id)) if not c["public"]]

    def assignee(self, ticket_id: str) -> str | None:
        assignee = self.fake.ticket(int(ticket_id))["assignee_id"]
        return None if assignee is None else str(assignee)

    def status(self, ticket_id: str) -> str:
        return self.fake.ticket(int(ticket_id))["status"]

    def tags(self, ticket_id: str) -> list[str]:
        return list(self.fake.ticket(int(ticket_id))["tags"])

    def updated_at(self, ticket_id: str) -> float:
        raw = self.fake.ticket(int(ticket_id))["updated_at"]
        return datetime.strptime(raw, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()

    # -- failures -------------------------------------------------------------------------------------------

    def fail_next(self, operation: Operation, status: int, *, retry_after: float | None = None,
                  times: int = 1) -> None:
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        self.fake.fail(self.CALLS[operation], status=status, times=times, headers=headers)

    def attempts(self, operation: Operation) -> int:
        return len(self.fake.calls_to(self.CALLS[operation]))

    @contextmanager
    def write_answers_lost(self) -> Iterator[None]:
        # The fake sleeps before it handles the request, so the write lands after the client has timed out.
        name = self.CALLS["write"]
        self.fake.set_delay(name, self.request_timeout + 1.0)
        try:
            yield
        finally:
            deadline = time.monotonic() + self.request_timeout + 10
            while any(c.status is None for c in self.fake.calls_to(name)) and time.monotonic() < deadline:
                time.sleep(0.02)
            self.fake.set_delay(name, 0)


class FrontHarness:
    """Front: a `FakeFront` on loopback and a `FrontAdapter` with a short retry deadline and timeout. The bot's
    messages and comments are the API token's (no teammate author), as Seam's are without FRONT_AUTHOR_ID."""

    name = "front"
    customer_name = "Ana Customer"
    customer_email = "ana@example.com"
    # Front reports a solved conversation as "archived". Without ticketing (the fake's default) pending archives
    # too — the conversation comes back when the customer writes — so both land on the same value.
    solved_status = "archived"
    pending_status = "archived"
    retry_deadline = 2.0
    request_timeout = 2.0

    SECRET = "contract-front-webhook-secret"
    # The fake's call names behind the suite's operations: the first request of fetch_ticket, and the reply (Front
    # has one endpoint per kind of write; the reply is the one whose lost answer matters).
    CALLS = {"read": "get_conversation", "write": "send_reply"}

    def __init__(self) -> None:
        from bot.helpdesk.front.adapter import FrontAdapter
        from tests.support.fakes import FakeFront

        self.fake = FakeFront().start()
        self._events = itertools.count(1)
        self._agent = self.fake.add_teammate(email="sam.agent@example.com", first_name="Sam", last_name="Agent")
        self._client = httpx.Client(base_url=self.fake.url, headers=self.fake.headers, timeout=self.request_timeout)
        self.adapter = FrontAdapter(self._client, webhook_secret=self.SECRET, retry_deadline=self.retry_deadline)

    def __enter__(self) -> FrontHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()
        self.fake.stop()

    def serve_env(self) -> dict[str, str]:
        return {"HELPDESK": "front", "FRONT_API_TOKEN": self.fake.token, "FRONT_API_URL": self.fake.url,
                "FRONT_WEBHOOK_SECRET": self.SECRET}

    # -- the scene ------------------------------------------------------------------------------------------

    def add_customer_ticket(self, subject: str, messages: Sequence[tuple[Author, str, bool]], *,
                            tags: Sequence[str] = (), priority: str = "normal") -> str:
        thread: list[dict] = []
        for author, body, public in messages:
            if author == "customer":
                thread.append({"inbound": True, "body": body})
            else:  # the bot writes as the API token: no teammate author
                written = {"body": body, "author_id": self._agent if author == "agent" else None}
                thread.append(written | ({"inbound": False} if public else {"comment": True}))
        # Front has no priority field: teams keep one in a conversation custom field, which the adapter reads.
        return self.fake.add_conversation(subject=subject, recipient_name=self.customer_name,
                                          recipient_handle=self.customer_email, messages=thread, tags=tags,
                                          custom_fields={"Priority": priority})

    def add_agent(self, email: str, name: str) -> str:
        first, _, last = name.partition(" ")
        return self.fake.add_teammate(email=email, first_name=first, last_name=last)

    def unknown_ticket_id(self) -> str:
        return "cnv_0zzzzzz"

    # -- knowledge: knowledge base articles and message templates -------------------------------------------

    knowledge_kinds = ("article", "macro")
    KNOWLEDGE_CALLS = {"article": "list_kb_articles", "macro": "list_message_templates"}

    def add_knowledge_article(self, title: str, html: str) -> str:
        if not getattr(self, "_base", None):
            self._base = self.fake.add_knowledge_base(name="Help centre")
        return f"article-{self.fake.add_article(self._base, name=title, content=html)}"

    def add_knowledge_macro(self, title: str, html: str) -> str:
        return f"macro-{self.fake.add_message_template(name=title, body=html)}"

    def edit_knowledge(self, seam_id: str, *, title: str, html: str) -> None:
        kind, _, native = seam_id.partition("-")
        if kind == "article":
            self.fake.update_article(native, name=title, content=html)
        else:
            self.fake.update_message_template(native, name=title, body=html)

    def remove_knowledge(self, seam_id: str) -> None:
        kind, _, native = seam_id.partition("-")
        (self.fake.remove_article if kind == "article" else self.fake.remove_message_template)(native)

    def fail_knowledge(self, kind: str, status: int) -> None:
        self.fake.fail(self.KNOWLEDGE_CALLS[kind], status=status)

    # -- webhooks, as a Front application webhook sends them ------------------------------------------------

    def webhook(self, ticket_id: str, *, how: How = "signed") -> tuple[dict[str, str], bytes]:
        from tests.support.fakes import FakeFront

        event_id = f"evt_{next(self._events):x}{int(time.time() * 1000) % 100000:x}"
        link = f"{self.fake.link_host}/conversations/{ticket_id}"
        body = json.dumps({"type": "inbound_received", "authorization": {"id": FakeFront.COMPANY_ID},
                           "payload": {"_links": {"self": f"{self.fake.link_host}/events/{event_id}"},
                                       "id": event_id, "type": "inbound", "emitted_at": round(time.time(), 3),
                                       "source": {"_meta": {"type": "inboxes"}, "data": []},
                                       "target": {"_meta": {"type": "message"}, "data": {}},
                                       "conversation": {"_links": {"self": link}, "id": ticket_id,
                                                        "status": "unassigned"}}}).encode()
        return self.sign(body, how=how), body

    def sign(self, body: bytes, *, how: How = "signed") -> dict[str, str]:
        from bot.helpdesk.front.adapter import sign_application

        moment = time.time() - (STALE_SECONDS if how == "stale" else 0)
        timestamp = str(int(moment * 1000))  # Front sends milliseconds
        headers = {"Content-Type": "application/json", "X-Front-Request-Timestamp": timestamp}
        if how != "unsigned":
            secret = "not-the-webhook-secret" if how == "forged" else self.SECRET
            headers["X-Front-Signature"] = sign_application(secret, timestamp, body)
        return headers

    # -- the platform's state, read from the fake -----------------------------------------------------------

    def public_replies(self, ticket_id: str) -> list[str]:
        return [m["text"] for m in self.fake.messages(ticket_id) if not m["is_inbound"] and not m["draft_mode"]]

    def internal_notes(self, ticket_id: str) -> list[str]:
        return [c["body"] for c in self.fake.comments(ticket_id)]

    def assignee(self, ticket_id: str) -> str | None:
        assignee = self.fake.conversation(ticket_id)["assignee"]
        return None if assignee is None else assignee["id"]

    def status(self, ticket_id: str) -> str:
        return self.fake.conversation(ticket_id)["status"]

    def tags(self, ticket_id: str) -> list[str]:
        return [t["name"] for t in self.fake.conversation(ticket_id)["tags"]]

    def updated_at(self, ticket_id: str) -> float:
        return self.fake.events(ticket_id)[-1]["emitted_at"]

    # -- failures -------------------------------------------------------------------------------------------

    def fail_next(self, operation: Operation, status: int, *, retry_after: float | None = None,
                  times: int = 1) -> None:
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        self.fake.fail(self.CALLS[operation], status=status, times=times, headers=headers)

    def attempts(self, operation: Operation) -> int:
        return len(self.fake.calls_to(self.CALLS[operation]))

    @contextmanager
    def write_answers_lost(self) -> Iterator[None]:
        # The fake sleeps before it handles the request, so the write lands after the client has timed out.
        name = self.CALLS["write"]
        self.fake.set_delay(name, self.request_timeout + 1.0)
        try:
            yield
        finally:
            deadline = time.monotonic() + self.request_timeout + 10
            while any(c.status is None for c in self.fake.calls_to(name)) and time.monotonic() < deadline:
                time.sleep(0.02)
            self.fake.set_delay(name, 0)


class GorgiasHarness:
    """Gorgias: a `FakeGorgias` on loopback and a `GorgiasAdapter` with a short retry deadline and timeout.

    Gorgias does not sign what its HTTP integrations send: a delivery is the body template of
    docs/helpdesks/gorgias.md (`ticket_id`, `updated_datetime`) with the shared secret in `X-Seam-Webhook-Secret`.
    Every delivery stands for a change Gorgias just made to the ticket (the trigger's cause), so it carries a new
    `updated_datetime`; "stale" is a change ten minutes old; "forged" carries another secret. A shared secret
    vouches for whatever body comes with it, so nothing ties one delivery's headers to its own body.
    """

    name = "gorgias"
    customer_name = "Ana Customer"
    customer_email = "ana@example.com"
    solved_status = "solved"
    pending_status = "pending"
    retry_deadline = 2.0
    request_timeout = 2.0

    #: Gorgias signs nothing: its deliveries carry a shared secret, which vouches for any body sent with it, so
    #: the contract's "a signature does not vouch for another body" cannot hold here (docs/helpdesks/gorgias.md).
    signs_bodies = False

    SECRET = "contract-gorgias-webhook-secret"
    DOMAIN = "acme"
    CUSTOMER_ID = 7001
    # The fake's logical call names behind the suite's operations: a reply is a new message.
    CALLS = {"read": "get_ticket", "write": "create_message"}

    def __init__(self) -> None:
        from bot.helpdesk.gorgias.adapter import GorgiasAdapter
        from tests.support.fakes import FakeGorgias

        self.fake = FakeGorgias(domain=self.DOMAIN).start()
        self._ticket_ids = itertools.count(101)
        self._knowledge_ids = itertools.count(8001)
        self._user_ids = itertools.count(501)
        self.fake.add_customer(id=self.CUSTOMER_ID, name=self.customer_name, email=self.customer_email)
        self._agent = int(self.add_agent("sam.agent@example.com", "Sam Agent"))
        self._client = httpx.Client(base_url=self.fake.url, auth=self.fake.auth, timeout=self.request_timeout)
        self.adapter = GorgiasAdapter(self._client, email=self.fake.email, webhook_secret=self.SECRET,
                                      agent_url=f"https://{self.DOMAIN}.gorgias.com",
                                      retry_deadline=self.retry_deadline)

    def __enter__(self) -> GorgiasHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()
        self.fake.stop()

    def serve_env(self) -> dict[str, str]:
        return {"HELPDESK": "gorgias", "GORGIAS_DOMAIN": self.DOMAIN, "GORGIAS_EMAIL": self.fake.email,
                "GORGIAS_API_KEY": self.fake.api_key, "GORGIAS_API_URL": self.fake.url,
                "GORGIAS_WEBHOOK_SECRET": self.SECRET}

    # -- the scene ------------------------------------------------------------------------------------------

    def add_customer_ticket(self, subject: str, messages: Sequence[tuple[Author, str, bool]], *,
                            tags: Sequence[str] = (), priority: str = "normal") -> str:
        senders = {"agent": self._agent, "bot": self.fake.API_USER_ID}
        specs = [{"from_agent": False, "body_text": body} if author == "customer"
                 else {"from_agent": True, "sender_id": senders[author], "body_text": body, "public": public}
                 for author, body, public in messages]
        ticket_id = next(self._ticket_ids)
        self.fake.add_ticket(id=ticket_id, subject=subject, customer_id=self.CUSTOMER_ID, messages=specs, tags=tags,
                             priority="critical" if priority == "urgent" else priority)
        return str(ticket_id)

    def add_agent(self, email: str, name: str) -> str:
        user_id = next(self._user_ids)
        self.fake.add_user(id=user_id, name=name, email=email, role="agent")
        return str(user_id)

    def unknown_ticket_id(self) -> str:
        return "999999"

    # -- knowledge: macros (Gorgias's public API has no help centre) ------------------------------------------

    knowledge_kinds = ("macro",)

    def add_knowledge_article(self, title: str, html: str) -> str:
        raise NotImplementedError("Gorgias's public API has no help-centre articles")

    def add_knowledge_macro(self, title: str, html: str) -> str:
        macro_id = next(self._knowledge_ids)
        self.fake.add_macro(id=macro_id, name=title, body_html=html)
        return f"macro-{macro_id}"

    def edit_knowledge(self, seam_id: str, *, title: str, html: str) -> None:
        self.fake.update_macro(int(seam_id.removeprefix("macro-")), name=title, body_html=html)

    def remove_knowledge(self, seam_id: str) -> None:
        self.fake.remove_macro(int(seam_id.removeprefix("macro-")))

    def fail_knowledge(self, kind: str, status: int) -> None:
        self.fake.fail("list_macros", status=status)

    # -- webhooks, as the HTTP integration of docs/helpdesks/gorgias.md sends them ----------------------------

    def webhook(self, ticket_id: str, *, how: How = "signed") -> tuple[dict[str, str], bytes]:
        if how == "stale":
            moment = datetime.fromtimestamp(time.time() - STALE_SECONDS, UTC)
            updated = moment.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        else:
            updated = self.fake.touch(int(ticket_id))
        body = json.dumps({"ticket_id": ticket_id, "updated_datetime": updated}).encode()
        return self.sign(body, how=how), body

    def sign(self, body: bytes, *, how: How = "signed") -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if how != "unsigned":
            headers["X-Seam-Webhook-Secret"] = "not-the-webhook-secret" if how == "forged" else self.SECRET
        return headers

    # -- the platform's state, read from the fake -----------------------------------------------------------

    def public_replies(self, ticket_id: str) -> list[str]:
        return [m["body_text"] for m in self.fake.messages(int(ticket_id)) if m["public"] and m["from_agent"]]

    def internal_notes(self, ticket_id: str) -> list[str]:
        return [m["body_text"] for m in self.fake.messages(int(ticket_id)) if not m["public"]]

    def assignee(self, ticket_id: str) -> str | None:
        assignee = self.fake.ticket(int(ticket_id))["assignee_user"]
        return None if assignee is None else str(assignee["id"])

    def status(self, ticket_id: str) -> str:
        from bot.helpdesk.gorgias.adapter import seam_status

        return str(seam_status(self.fake.ticket(int(ticket_id)), now=time.time()))

    def tags(self, ticket_id: str) -> list[str]:
        return [t["name"] for t in self.fake.ticket(int(ticket_id))["tags"]]

    def updated_at(self, ticket_id: str) -> float:
        return datetime.fromisoformat(self.fake.ticket(int(ticket_id))["updated_datetime"]).timestamp()

    # -- failures -------------------------------------------------------------------------------------------

    def fail_next(self, operation: Operation, status: int, *, retry_after: float | None = None,
                  times: int = 1) -> None:
        headers = {} if retry_after is None else {"Retry-after": f"{retry_after:g}"}
        self.fake.fail(self.CALLS[operation], status=status, times=times, headers=headers)

    def attempts(self, operation: Operation) -> int:
        return len(self.fake.calls_to(self.CALLS[operation]))

    @contextmanager
    def write_answers_lost(self) -> Iterator[None]:
        # The fake sleeps before it handles the request, so the message lands after the client has timed out.
        name = self.CALLS["write"]
        self.fake.set_delay(name, self.request_timeout + 1.0)
        try:
            yield
        finally:
            deadline = time.monotonic() + self.request_timeout + 10
            while any(c.status is None for c in self.fake.calls_to(name)) and time.monotonic() < deadline:
                time.sleep(0.02)
            self.fake.set_delay(name, 0)


class HelpScoutHarness:
    """Help Scout: a `FakeHelpScout` on loopback and a `HelpScoutAdapter` with a short retry deadline and timeout.

    Seam acts as the OAuth app's owner (the fake's `api_user_id`), so the "bot" author is that user. Help Scout
    sends the conversation itself as the webhook body, signed with HMAC-SHA1 and no timestamp: each new delivery
    here follows a change a person made in Help Scout (a custom field set by the agent, which fires
    convo.custom-fields), so its body is new; "stale" is the conversation as it stood ten minutes ago, correctly
    signed. Seam's "open / pending / solved" are Help Scout's active / pending / closed, and the suite speaks the
    platform's values. Priority comes from a "Priority" custom field, Help Scout having none of its own.
    """

    name = "helpscout"
    customer_name = "Ana Customer"
    customer_email = "ana@example.com"
    solved_status = "closed"
    pending_status = "pending"
    retry_deadline = 2.0
    request_timeout = 2.0

    SECRET = "contract-helpscout-webhook-secret"
    EVENT = "convo.custom-fields"
    # The fake's logical call names behind the suite's operations: reading is getting the conversation; a write
    # is the request behind reply, add_note, assign or set_status.
    READ = ("get_conversation",)
    WRITES = ("create_reply", "create_note", "update_conversation")

    def __init__(self) -> None:
        from bot.helpdesk.helpscout.adapter import HelpScoutAdapter
        from tests.support.fakes import FakeHelpScout

        self.fake = FakeHelpScout().start()
        self._deliveries = itertools.count(1)
        first, last = self.customer_name.split()
        self._customer = self.fake.add_customer(first, last, self.customer_email)
        self._agent = int(self.add_agent("sam.agent@example.com", "Sam Agent"))
        self._client = httpx.Client(base_url=self.fake.url, timeout=self.request_timeout)
        # With a Docs API key, as a deployment that syncs Help Scout Docs articles has (HELPSCOUT_DOCS_API_KEY).
        self._docs = httpx.Client(base_url=self.fake.url, auth=(self.fake.docs_api_key, "X"),
                                  timeout=self.request_timeout)
        self.adapter = HelpScoutAdapter(self._client, app_id=self.fake.app_id, app_secret=self.fake.app_secret,
                                        webhook_secret=self.SECRET, retry_deadline=self.retry_deadline,
                                        docs=self._docs)

    def __enter__(self) -> HelpScoutHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()
        self._docs.close()
        self.fake.stop()

    def serve_env(self) -> dict[str, str]:
        return {"HELPDESK": "helpscout", "HELPSCOUT_APP_ID": self.fake.app_id,
                "HELPSCOUT_APP_SECRET": self.fake.app_secret, "HELPSCOUT_API_URL": self.fake.url,
                "HELPSCOUT_WEBHOOK_SECRET": self.SECRET, "HELPSCOUT_DOCS_API_KEY": self.fake.docs_api_key,
                "HELPSCOUT_DOCS_API_URL": self.fake.url}

    # -- knowledge: Docs articles and saved replies -------------------------------------------------------

    knowledge_kinds = ("article", "macro")
    KNOWLEDGE_CALLS = {"article": "docs_articles", "macro": "list_saved_replies"}

    def add_knowledge_article(self, title: str, html: str) -> str:
        if not getattr(self, "_collection", None):
            self._collection = self.fake.add_docs_collection("Help")
        return f"article-{self.fake.add_docs_article(self._collection, title, html)}"

    def add_knowledge_macro(self, title: str, html: str) -> str:
        return f"macro-{self.fake.add_saved_reply(title, html)}"

    def edit_knowledge(self, seam_id: str, *, title: str, html: str) -> None:
        kind, _, native = seam_id.partition("-")
        if kind == "article":
            self.fake.update_docs_article(native, name=title, text=html)
        else:
            self.fake.update_saved_reply(int(native), name=title, text=html)

    def remove_knowledge(self, seam_id: str) -> None:
        kind, _, native = seam_id.partition("-")
        if kind == "article":
            self.fake.remove_docs_article(native)
        else:
            self.fake.remove_saved_reply(int(native))

    def fail_knowledge(self, kind: str, status: int) -> None:
        self.fake.fail(self.KNOWLEDGE_CALLS[kind], status=status)

    # -- the scene ------------------------------------------------------------------------------------------

    def add_customer_ticket(self, subject: str, messages: Sequence[tuple[Author, str, bool]], *,
                            tags: Sequence[str] = (), priority: str = "normal") -> str:
        authors = {"customer": None, "agent": self._agent, "bot": self.fake.api_user_id}
        threads = [{"type": "customer" if author == "customer" else "message" if public else "note",
                    "body": body, "user_id": authors[author]} for author, body, public in messages]
        conversation_id = self.fake.add_conversation(
            subject=subject, customer_id=self._customer, threads=threads, tags=tags,
            custom_fields=[{"id": 1, "name": "Priority", "value": priority, "text": priority}])
        return str(conversation_id)

    def add_agent(self, email: str, name: str) -> str:
        first, _, last = name.partition(" ")
        return str(self.fake.add_user(first, last, email))

    def unknown_ticket_id(self) -> str:
        return "999999"

    # -- webhooks, as Help Scout sends them -----------------------------------------------------------------

    def webhook(self, ticket_id: str, *, how: How = "signed") -> tuple[dict[str, str], bytes]:
        conversation_id = int(ticket_id)
        if how == "stale":
            body = self._as_it_was(self.fake.conversation(conversation_id), STALE_SECONDS)
        else:
            self.fake.add_activity(conversation_id, field="Seam test", value=str(next(self._deliveries)),
                                   user_id=self._agent)
            body = self.fake.conversation(conversation_id)
        raw = json.dumps(body, separators=(",", ":")).encode()
        return self.sign(raw, how=how), raw

    def sign(self, body: bytes, *, how: How = "signed") -> dict[str, str]:
        from bot.helpdesk.helpscout.adapter import sign as helpscout_sign

        headers = {"Content-Type": "application/json", "User-Agent": "Help Scout Webhook",
                   "X-HelpScout-Event": self.EVENT}
        if how != "unsigned":
            headers["X-HelpScout-Signature"] = helpscout_sign(
                "not-the-webhook-secret" if how == "forged" else self.SECRET, body)
        return headers

    @staticmethod
    def _as_it_was(value: object, seconds: int) -> object:
        """Every timestamp in the conversation moved `seconds` into the past."""
        if isinstance(value, dict):
            return {k: HelpScoutHarness._as_it_was(v, seconds) for k, v in value.items()}
        if isinstance(value, list):
            return [HelpScoutHarness._as_it_was(v, seconds) for v in value]
        if isinstance(value, str) and len(value) == 20 and value.endswith("Z") and value[10] == "T":
            moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() - seconds
            return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return value

    # -- the platform's state, read from the fake -----------------------------------------------------------

    def _bodies(self, ticket_id: str, kinds: tuple[str, ...]) -> list[str]:
        from bot.helpdesk.helpscout.shapes import text_of

        return [text_of(t["body"]) for t in self.fake.threads(int(ticket_id))
                if t["type"] in kinds and t["state"] == "published"]

    def public_replies(self, ticket_id: str) -> list[str]:
        return self._bodies(ticket_id, ("message", "reply"))

    def internal_notes(self, ticket_id: str) -> list[str]:
        return self._bodies(ticket_id, ("note",))

    def assignee(self, ticket_id: str) -> str | None:
        assignee = self.fake.conversation(int(ticket_id)).get("assignee")
        return None if assignee is None else str(assignee["id"])

    def status(self, ticket_id: str) -> str:
        return self.fake.conversation(int(ticket_id))["status"]

    def tags(self, ticket_id: str) -> list[str]:
        return [t["tag"] for t in self.fake.conversation(int(ticket_id))["tags"]]

    def updated_at(self, ticket_id: str) -> float:
        return self.fake.modified_at(int(ticket_id))

    # -- failures -------------------------------------------------------------------------------------------

    def _calls(self, operation: Operation) -> tuple[str, ...]:
        return self.READ if operation == "read" else self.WRITES

    def fail_next(self, operation: Operation, status: int, *, retry_after: float | None = None,
                  times: int = 1) -> None:
        # Help Scout's own header for the wait (https://developer.helpscout.com/mailbox-api/overview/rate-limiting/).
        headers = {} if retry_after is None else {"X-RateLimit-Retry-After": f"{retry_after:g}"}
        for name in self._calls(operation):
            self.fake.fail(name, status=status, times=times, headers=headers)

    def attempts(self, operation: Operation) -> int:
        return sum(len(self.fake.calls_to(name)) for name in self._calls(operation))

    @contextmanager
    def write_answers_lost(self) -> Iterator[None]:
        # The fake sleeps before it handles the request, so the write lands after the client has timed out.
        for name in self.WRITES:
            self.fake.set_delay(name, self.request_timeout + 1.0)
        try:
            yield
        finally:
            deadline = time.monotonic() + self.request_timeout + 10
            while (any(c.status is None for name in self.WRITES for c in self.fake.calls_to(name))
                   and time.monotonic() < deadline):
                time.sleep(0.02)
            for name in self.WRITES:
                self.fake.set_delay(name, 0)


class FreshdeskHarness:
    """Freshdesk: a `FakeFreshdesk` on loopback and a `FreshdeskAdapter` with a short retry deadline and timeout.

    Freshdesk signs nothing: a delivery is the automation rule's "Trigger Webhook" request as
    docs/helpdesks/freshdesk.md sets it up — POST, the shared secret as the Basic auth password, and the JSON body
    `{"ticket_id": "{{ticket.id}}", "latest_public_comment": "{{ticket.latest_public_comment}}"}` rendered from the
    ticket as it stands. "forged" carries another secret, "unsigned" none. Such a request carries no time and no
    delivery id, so three things the contract asks of signed platforms cannot hold (see the flags below): a
    delivery ten minutes old is byte for byte a fresh one (and Freshdesk itself redelivers failed calls 5, 35 and
    95 minutes later), the secret vouches for any body, and two deliveries about an unchanged ticket are the same
    bytes.
    """

    name = "freshdesk"
    customer_name = "Ana Customer"
    customer_email = "ana@example.com"
    solved_status = "solved"
    pending_status = "pending"
    retry_deadline = 2.0
    request_timeout = 2.0

    #: A shared secret vouches for whatever body comes with it.
    signs_bodies = False
    #: Deliveries carry no time: there is no replay window to refuse a stale one by.
    dates_deliveries = False
    #: Deliveries carry no id: two deliveries about an unchanged ticket are the same bytes, hence one delivery key.
    identifies_deliveries = False

    SECRET = "contract-freshdesk-webhook-secret"
    DOMAIN = "acme"
    # The fake's logical call names behind the suite's operations: Freshdesk writes through three endpoints.
    CALLS = {"read": ("view_ticket",), "write": ("reply", "add_note", "update_ticket")}
    PRIORITIES = {"low": 1, "normal": 2, "high": 3, "urgent": 4}
    # Freshdesk's status codes as the suite's words, read here independently of the adapter's own table.
    STATUS_WORDS = {2: "open", 3: "pending", 4: "solved", 5: "closed"}

    def __init__(self) -> None:
        from bot.helpdesk.freshdesk.adapter import FreshdeskAdapter
        from tests.support.fakes import FakeFreshdesk

        self.fake = FakeFreshdesk(domain=self.DOMAIN).start()
        self._ticket_ids = itertools.count(101)
        self._knowledge_ids = itertools.count(9001)
        self._user_ids = itertools.count(501)
        self._customer = next(self._user_ids)
        self.fake.add_contact(id=self._customer, name=self.customer_name, email=self.customer_email)
        self._agent = int(self.add_agent("sam.agent@example.com", "Sam Agent"))
        self._client = httpx.Client(base_url=self.fake.url, auth=self.fake.auth, timeout=self.request_timeout)
        self.adapter = FreshdeskAdapter(self._client, webhook_secret=self.SECRET,
                                        agent_url=f"https://{self.DOMAIN}.freshdesk.com",
                                        retry_deadline=self.retry_deadline)

    def __enter__(self) -> FreshdeskHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()
        self.fake.stop()

    def serve_env(self) -> dict[str, str]:
        return {"HELPDESK": "freshdesk", "FRESHDESK_DOMAIN": self.DOMAIN, "FRESHDESK_API_KEY": self.fake.api_key,
                "FRESHDESK_API_URL": self.fake.url, "FRESHDESK_WEBHOOK_SECRET": self.SECRET}

    # -- the scene ------------------------------------------------------------------------------------------

    def add_customer_ticket(self, subject: str, messages: Sequence[tuple[Author, str, bool]], *,
                            tags: Sequence[str] = (), priority: str = "normal") -> str:
        # The customer's opening message is the ticket's description; everything after it is a conversation.
        users = {"customer": self._customer, "agent": self._agent, "bot": self.fake.API_AGENT_ID}
        rest = list(messages)
        description = rest.pop(0)[1] if rest and rest[0][0] == "customer" else ""
        ticket_id = next(self._ticket_ids)
        self.fake.add_ticket(id=ticket_id, subject=subject, requester_id=self._customer, description=description,
                             tags=tags, priority=self.PRIORITIES[priority],
                             conversations=[{"user_id": users[author], "body": body, "private": not public,
                                             "incoming": author == "customer"} for author, body, public in rest])
        return str(ticket_id)

    def add_agent(self, email: str, name: str) -> str:
        agent_id = next(self._user_ids)
        self.fake.add_agent(id=agent_id, name=name, email=email)
        return str(agent_id)

    def unknown_ticket_id(self) -> str:
        return "999999"

    # -- knowledge: solution articles and canned responses --------------------------------------------------

    knowledge_kinds = ("article", "macro")
    KNOWLEDGE_CALLS = {"article": "list_articles", "macro": "list_canned_responses"}
    SOLUTION_FOLDER = 71
    CANNED_FOLDER = 81

    def add_knowledge_article(self, title: str, html: str) -> str:
        if not getattr(self, "_solutions", False):
            self.fake.add_category(id=70, name="Help")
            self.fake.add_folder(id=self.SOLUTION_FOLDER, category_id=70, name="FAQ")
            self._solutions = True
        article_id = next(self._knowledge_ids)
        self.fake.add_article(id=article_id, folder_id=self.SOLUTION_FOLDER, title=title, html_body=html)
        return f"article-{article_id}"

    def add_knowledge_macro(self, title: str, html: str) -> str:
        if not getattr(self, "_canned", False):
            self.fake.add_canned_folder(id=self.CANNED_FOLDER, name="Replies")
            self._canned = True
        response_id = next(self._knowledge_ids)
        self.fake.add_canned_response(id=response_id, folder_id=self.CANNED_FOLDER, title=title, html_body=html)
        return f"macro-{response_id}"

    def edit_knowledge(self, seam_id: str, *, title: str, html: str) -> None:
        kind, _, native = seam_id.partition("-")
        update = self.fake.update_article if kind == "article" else self.fake.update_canned_response
        update(int(native), title=title, html_body=html)

    def remove_knowledge(self, seam_id: str) -> None:
        kind, _, native = seam_id.partition("-")
        (self.fake.remove_article if kind == "article" else self.fake.remove_canned_response)(int(native))

    def fail_knowledge(self, kind: str, status: int) -> None:
        self.fake.fail(self.KNOWLEDGE_CALLS[kind], status=status)

    # -- webhooks, as the automation rule of docs/helpdesks/freshdesk.md sends them --------------------------

    def webhook(self, ticket_id: str, *, how: How = "signed") -> tuple[dict[str, str], bytes]:
        ticket = self.fake.ticket(int(ticket_id))
        public = [c["body"] for c in self.fake.conversations(int(ticket_id)) if not c["private"]]
        body = json.dumps({"ticket_id": ticket_id,
                           "latest_public_comment": public[-1] if public else ticket["description"]}).encode()
        return self.sign(body, how=how), body

    def sign(self, body: bytes, *, how: How = "signed") -> dict[str, str]:
        import base64

        headers = {"Content-Type": "application/json"}
        if how != "unsigned":
            # "Requires authentication": any user name, the secret as the password. A stale delivery is the same.
            secret = "not-the-webhook-secret" if how == "forged" else self.SECRET
            headers["Authorization"] = "Basic " + base64.b64encode(f"seam:{secret}".encode()).decode()
        return headers

    # -- the platform's state, read from the fake -----------------------------------------------------------

    def public_replies(self, ticket_id: str) -> list[str]:
        return [c["body_text"] for c in self.fake.conversations(int(ticket_id))
                if not c["private"] and not c["incoming"] and c["user_id"] != self._customer]

    def internal_notes(self, ticket_id: str) -> list[str]:
        return [c["body_text"] for c in self.fake.conversations(int(ticket_id)) if c["private"]]

    def assignee(self, ticket_id: str) -> str | None:
        responder = self.fake.ticket(int(ticket_id))["responder_id"]
        return None if responder is None else str(responder)

    def status(self, ticket_id: str) -> str:
        code = self.fake.ticket(int(ticket_id))["status"]
        return self.STATUS_WORDS.get(code, f"status-{code}")

    def tags(self, ticket_id: str) -> list[str]:
        return list(self.fake.ticket(int(ticket_id))["tags"])

    def updated_at(self, ticket_id: str) -> float:
        raw = self.fake.ticket(int(ticket_id))["updated_at"]
        return datetime.strptime(raw, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()

    # -- failures -------------------------------------------------------------------------------------------

    def fail_next(self, operation: Operation, status: int, *, retry_after: float | None = None,
                  times: int = 1) -> None:
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        for name in self.CALLS[operation]:
            self.fake.fail(name, status=status, times=times, headers=headers)

    def attempts(self, operation: Operation) -> int:
        return sum(len(self.fake.calls_to(name)) for name in self.CALLS[operation])

    @contextmanager
    def write_answers_lost(self) -> Iterator[None]:
        # The fake sleeps before it handles the request, so the write lands after the client has timed out.
        for name in self.CALLS["write"]:
            self.fake.set_delay(name, self.request_timeout + 1.0)
        try:
            yield
        finally:
            deadline = time.monotonic() + self.request_timeout + 10
            while (any(c.status is None for name in self.CALLS["write"] for c in self.fake.calls_to(name))
                   and time.monotonic() < deadline):
                time.sleep(0.02)
            for name in self.CALLS["write"]:
                self.fake.set_delay(name, 0)


#: Every helpdesk the contract suite runs against, by the name Seam knows it by.
HARNESSES: dict[str, Callable[[], HelpdeskHarness]] = {
    "zendesk": ZendeskHarness,
    "front": FrontHarness,
    "gorgias": GorgiasHarness,
    "helpscout": HelpScoutHarness,
    "freshdesk": FreshdeskHarness,
}
