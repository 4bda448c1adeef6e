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

    def close(self) -> None: ...


class ZendeskHarness:
    """Zendesk: a `FakeZendesk` on loopback and a `ZendeskAdapter` with a short retry deadline and timeout."""

    name = "zendesk"
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


#: Every helpdesk the contract suite runs against, by the name Seam knows it by.
HARNESSES: dict[str, Callable[[], HelpdeskHarness]] = {
    "zendesk": ZendeskHarness,
}
