"""The Zendesk adapter against a loopback FakeZendesk: webhook signatures and bodies, reads, writes and retries."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from bot.helpdesk.base import Agent, HelpdeskError, WebhookAuthError, WebhookPayloadError
from bot.helpdesk.zendesk.adapter import ZendeskAdapter, sign
from tests.support.fakes import FakeZendesk

SECRET = "webhook-secret"
NOW = datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC).timestamp()
CUSTOMER = 1001
OTHER_AGENT = 77


@pytest.fixture
def zendesk() -> Iterator[FakeZendesk]:
    with FakeZendesk() as fake:
        fake.add_user(id=CUSTOMER, name="Ana Customer", email="ana@example.com")
        fake.add_user(id=OTHER_AGENT, name="Bob Agent", email="bob@example.com", role="agent")
        yield fake


@pytest.fixture
def client(zendesk: FakeZendesk) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=zendesk.url, auth=zendesk.auth, timeout=5) as c:
        yield c


def make_adapter(client: httpx.Client, *, clock=lambda: NOW, retry_deadline: float = 1.0) -> ZendeskAdapter:
    return ZendeskAdapter(client, webhook_secret=SECRET, agent_url="https://acme.zendesk.com/", clock=clock,
                          retry_deadline=retry_deadline)


@pytest.fixture
def adapter(client: httpx.Client) -> ZendeskAdapter:
    return make_adapter(client)


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def signed(body: bytes, *, timestamp: str | None = None, secret: str = SECRET) -> dict[str, str]:
    timestamp = timestamp if timestamp is not None else iso(NOW)
    return {"x-zendesk-webhook-signature": sign(secret, timestamp, body),
            "x-zendesk-webhook-signature-timestamp": timestamp}


BODY = json.dumps({"ticket_id": "42"}).encode()


# -- webhook signatures ------------------------------------------------------------------------------------


def test_a_correct_signature_with_an_iso_timestamp_is_accepted(adapter: ZendeskAdapter) -> None:
    adapter.verify_webhook(headers=signed(BODY), body=BODY)


def test_a_correct_signature_with_a_unix_seconds_timestamp_is_accepted(adapter: ZendeskAdapter) -> None:
    adapter.verify_webhook(headers=signed(BODY, timestamp=str(int(NOW))), body=BODY)


def test_the_signature_is_base64_hmac_sha256_of_timestamp_and_body() -> None:
    import base64
    import hashlib
    import hmac

    expected = base64.b64encode(hmac.new(b"k", b"2021-03-25T05:09:27Z" + b"{}", hashlib.sha256).digest()).decode()
    assert sign("k", "2021-03-25T05:09:27Z", b"{}") == expected


@pytest.mark.parametrize("missing", ["x-zendesk-webhook-signature", "x-zendesk-webhook-signature-timestamp"])
def test_a_webhook_without_either_header_is_refused(adapter: ZendeskAdapter, missing: str) -> None:
    headers = {k: v for k, v in signed(BODY).items() if k != missing}
    with pytest.raises(WebhookAuthError):
        adapter.verify_webhook(headers=headers, body=BODY)


def test_a_webhook_signed_with_another_secret_is_refused(adapter: ZendeskAdapter) -> None:
    with pytest.raises(WebhookAuthError):
        adapter.verify_webhook(headers=signed(BODY, secret="not-the-secret"), body=BODY)


def test_a_tampered_body_is_refused(adapter: ZendeskAdapter) -> None:
    with pytest.raises(WebhookAuthError):
        adapter.verify_webhook(headers=signed(BODY), body=json.dumps({"ticket_id": "43"}).encode())


def test_a_signature_over_a_different_timestamp_is_refused(adapter: ZendeskAdapter) -> None:
    headers = signed(BODY)
    headers["x-zendesk-webhook-signature-timestamp"] = iso(NOW - 1)
    with pytest.raises(WebhookAuthError):
        adapter.verify_webhook(headers=headers, body=BODY)


@pytest.mark.parametrize("offset", [-360, 360])
def test_a_timestamp_six_minutes_away_is_refused_even_when_correctly_signed(adapter: ZendeskAdapter,
                                                                            offset: int) -> None:
    with pytest.raises(WebhookAuthError):
        adapter.verify_webhook(headers=signed(BODY, timestamp=iso(NOW + offset)), body=BODY)


@pytest.mark.parametrize("offset", [-240, 240])
def test_a_timestamp_four_minutes_away_is_still_accepted(adapter: ZendeskAdapter, offset: int) -> None:
    adapter.verify_webhook(headers=signed(BODY, timestamp=iso(NOW + offset)), body=BODY)


@pytest.mark.parametrize("timestamp", ["yesterday", "2026-13-45T99:00:00Z", ""])
def test_an_unreadable_timestamp_is_refused(adapter: ZendeskAdapter, timestamp: str) -> None:
    with pytest.raises(WebhookAuthError):
        adapter.verify_webhook(headers=signed(BODY, timestamp=timestamp), body=BODY)


def test_an_adapter_without_a_secret_refuses_every_webhook(client: httpx.Client) -> None:
    adapter = ZendeskAdapter(client, webhook_secret="", agent_url="https://acme.zendesk.com", clock=lambda: NOW)
    with pytest.raises(WebhookAuthError):
        adapter.verify_webhook(headers=signed(BODY, secret=""), body=BODY)


# -- webhook bodies ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [{"ticket_id": "42"}, {"ticket_id": 42}, {"ticket": {"id": 42}},
                                     {"ticket": {"id": " 42 "}, "other": [1, 2]}])
def test_the_ticket_id_is_read_as_a_string_or_number_at_top_level_or_nested(adapter: ZendeskAdapter,
                                                                            payload: dict) -> None:
    body = json.dumps(payload).encode()
    assert adapter.parse_webhook(headers=signed(body), body=body).ticket_id == "42"


@pytest.mark.parametrize("ticket_id", ["../users", "{{ticket.id}}", "0", "-5", -5, 0, "4 2", "42abc", "", True,
                                       None, 4.2, "١٢"])
def test_a_ticket_id_that_is_not_a_positive_integer_is_refused(adapter: ZendeskAdapter, ticket_id: object) -> None:
    body = json.dumps({"ticket_id": ticket_id}).encode()
    with pytest.raises(WebhookPayloadError):
        adapter.parse_webhook(headers=signed(body), body=body)


@pytest.mark.parametrize("body", [b"{not json", "{\"ticket_id\": \"42\"}".encode("utf-16"), b"\xff\xfe\x00",
                                  b"[42]", b"42", b"null", b"{}"])
def test_unusable_bodies_are_payload_errors(adapter: ZendeskAdapter, body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        adapter.parse_webhook(headers=signed(body), body=body)


def test_the_delivery_key_is_stable_for_the_same_signature_and_body(adapter: ZendeskAdapter) -> None:
    headers = signed(BODY)
    first = adapter.parse_webhook(headers=headers, body=BODY)
    again = adapter.parse_webhook(headers=dict(headers), body=bytes(BODY))
    assert first.delivery_key == again.delivery_key


def test_a_different_body_for_the_same_ticket_gets_a_different_delivery_key(adapter: ZendeskAdapter) -> None:
    other = json.dumps({"ticket_id": "42", "comment": "new"}).encode()
    first = adapter.parse_webhook(headers=signed(BODY), body=BODY)
    second = adapter.parse_webhook(headers=signed(other), body=other)
    assert first.ticket_id == second.ticket_id
    assert first.delivery_key != second.delivery_key


def test_the_invocation_id_header_identifies_the_delivery_when_present(adapter: ZendeskAdapter) -> None:
    other = json.dumps({"ticket_id": "42", "comment": "retry with new timestamp"}).encode()
    first = adapter.parse_webhook(headers={**signed(BODY), "x-zendesk-webhook-invocation-id": "inv-1"}, body=BODY)
    second = adapter.parse_webhook(headers={**signed(other), "x-zendesk-webhook-invocation-id": "inv-1"},
                                   body=other)
    third = adapter.parse_webhook(headers={**signed(BODY), "x-zendesk-webhook-invocation-id": "inv-2"}, body=BODY)
    assert first.delivery_key == second.delivery_key
    assert first.delivery_key != third.delivery_key
    assert "inv-1" in first.delivery_key


def _event(kind: str, ticket_id: str = "35436", event_id: str = "01HNXEXAMPLE", **extra: object) -> bytes:
    """A body as Zendesk sends it to a webhook subscribed to events (its shape per Zendesk's ticket events page)."""
    return json.dumps({"type": f"zen:event-type:{kind}", "account_id": 88888888, "id": event_id,
                       "time": "2026-12-04T17:18:10Z", "zendesk_event_version": "2022-11-06",
                       "subject": f"zen:ticket:{ticket_id}",
                       "detail": {"id": ticket_id, "status": "OPEN", "via": {"channel": "web"}},
                       "event": {}, **extra}).encode()


@pytest.mark.parametrize("kind", ["ticket.created", "ticket.comment_added", "messaging_ticket.message_added"])
def test_a_ticket_event_body_names_its_ticket(adapter: ZendeskAdapter, kind: str) -> None:
    body = _event(kind)
    assert adapter.parse_webhook(headers=signed(body), body=body).ticket_id == "35436"


def test_a_ticket_event_without_a_subject_is_read_from_its_detail(adapter: ZendeskAdapter) -> None:
    body = json.dumps({"type": "zen:event-type:ticket.comment_added", "id": "e1", "detail": {"id": 77}}).encode()
    assert adapter.parse_webhook(headers=signed(body), body=body).ticket_id == "77"


def test_an_event_about_something_else_is_refused_with_what_to_change(adapter: ZendeskAdapter) -> None:
    body = json.dumps({"type": "zen:event-type:user.active_changed", "id": "e2", "subject": "zen:user:6596848315901",
                       "detail": {"id": "6596848315901"}}).encode()
    with pytest.raises(WebhookPayloadError, match="not about a ticket"):
        adapter.parse_webhook(headers=signed(body), body=body)


@pytest.mark.parametrize("subject", ["zen:ticket:../users", "zen:ticket:", "zen:ticket:0", "zen:ticket:42abc"])
def test_a_ticket_event_with_an_unusable_ticket_id_is_refused(adapter: ZendeskAdapter, subject: str) -> None:
    body = json.dumps({"type": "zen:event-type:ticket.created", "id": "e3", "subject": subject,
                       "detail": {"id": "42"}}).encode()
    with pytest.raises(WebhookPayloadError):
        adapter.parse_webhook(headers=signed(body), body=body)


def test_an_event_redelivered_and_signed_anew_is_the_same_delivery(adapter: ZendeskAdapter) -> None:
    first = adapter.parse_webhook(headers=signed(_event("ticket.created")), body=_event("ticket.created"))
    # Another event for the same ticket (a comment added later) is another delivery.
    later = _event("ticket.comment_added", event_id="01HNYLATER")
    second = adapter.parse_webhook(headers=signed(later), body=later)
    retried = _event("ticket.created", time_sent="again")
    again = adapter.parse_webhook(headers=signed(retried), body=retried)
    assert first.delivery_key == again.delivery_key != second.delivery_key


# -- reading a ticket --------------------------------------------------------------------------------------


def test_fetch_ticket_maps_authors_and_fills_the_ticket(zendesk: FakeZendesk, adapter: ZendeskAdapter) -> None:
    zendesk.add_ticket(id=7, subject="Cannot log in", requester_id=CUSTOMER, priority="high", tags=["login", "vip"],
                       comments=[{"author_id": CUSTOMER, "body": "I cannot log in"},
                                 {"author_id": FakeZendesk.API_USER_ID, "body": "Try resetting your password."},
                                 {"author_id": OTHER_AGENT, "body": "Checking your account.", "public": False},
                                 {"author_id": CUSTOMER, "body": "Still broken"}])
    ticket = adapter.fetch_ticket("7")
    assert ticket.id == "7"
    assert ticket.subject == "Cannot log in"
    assert [m.author for m in ticket.messages] == ["customer", "bot", "agent", "customer"]
    assert [m.body for m in ticket.messages] == ["I cannot log in", "Try resetting your password.",
                                                 "Checking your account.", "Still broken"]
    assert [m.public for m in ticket.messages] == [True, True, False, True]
    assert ticket.requester_name == "Ana Customer"
    assert ticket.requester_email == "ana@example.com"
    assert ticket.priority == "high"
    assert ticket.tags == ("login", "vip")
    assert ticket.status == "open"
    assert ticket.url == "https://acme.zendesk.com/agent/tickets/7"
    assert adapter.ticket_link("7") == ticket.url
    assert len({m.id for m in ticket.messages}) == 4


def test_a_comment_by_another_end_user_is_the_customers_not_an_agents(zendesk: FakeZendesk,
                                                                        adapter: ZendeskAdapter) -> None:
    # A CC'd colleague of the requester answers by email: an end-user who is not the requester. Read as an agent's
    # public reply, it would make Seam take the ticket for answered in the helpdesk and never look at it again.
    zendesk.add_user(id=1002, name="Carla Colleague", email="carla@example.com")
    zendesk.add_ticket(id=17, subject="Invoice", requester_id=CUSTOMER,
                       comments=[{"author_id": CUSTOMER, "body": "Where is our invoice?"},
                                 {"author_id": 1002, "body": "Adding: we need it by Friday."},
                                 {"author_id": OTHER_AGENT, "body": "Looking.", "public": False}])
    ticket = adapter.fetch_ticket("17")
    assert [m.author for m in ticket.messages] == ["customer", "customer", "agent"]


def test_attached_files_are_named_and_inline_images_are_not(zendesk: FakeZendesk, adapter: ZendeskAdapter) -> None:
    # A customer who only sends a screenshot: the agent must see there is one, not an empty message.
    zendesk.add_ticket(id=18, subject="Error", requester_id=CUSTOMER,
                       comments=[{"author_id": CUSTOMER, "body": "",
                                  "attachments": [{"file_name": "error.png"},
                                                  {"file_name": "logo.png", "inline": True}]}])
    [message] = adapter.fetch_ticket("18").messages
    assert message.attachments == ("error.png",)


def test_fetch_ticket_follows_comment_pagination(zendesk: FakeZendesk, adapter: ZendeskAdapter) -> None:
    zendesk.add_ticket(id=8, subject="Long thread", requester_id=CUSTOMER,
                       comments=[{"author_id": CUSTOMER if i % 2 == 0 else OTHER_AGENT, "body": f"comment {i}"}
                                 for i in range(250)])
    ticket = adapter.fetch_ticket("8")
    assert [m.body for m in ticket.messages] == [f"comment {i}" for i in range(250)]
    assert len(zendesk.calls_to("list_comments")) == 3


def test_the_api_user_is_looked_up_once_per_adapter(zendesk: FakeZendesk, adapter: ZendeskAdapter) -> None:
    zendesk.add_ticket(id=9, subject="a", requester_id=CUSTOMER, comments=[{"body": "hi"}])
    adapter.fetch_ticket("9")
    adapter.fetch_ticket("9")
    assert len(zendesk.calls_to("me")) == 1


# -- writes ------------------------------------------------------------------------------------------------


def last_update_body(zendesk: FakeZendesk) -> dict:
    return json.loads(zendesk.calls_to("update_ticket")[-1].body)


def test_reply_sends_a_public_comment_and_the_status(zendesk: FakeZendesk, adapter: ZendeskAdapter) -> None:
    zendesk.add_ticket(id=10, subject="a", requester_id=CUSTOMER, comments=[{"body": "hi"}])
    adapter.reply("10", "Here is how to do it.", status="solved")
    assert last_update_body(zendesk) == {"ticket": {"comment": {"body": "Here is how to do it.", "public": True},
                                                    "status": "solved"}}
    comment = zendesk.comments(10)[-1]
    assert (comment["body"], comment["public"], comment["author_id"]) == ("Here is how to do it.", True,
                                                                         FakeZendesk.API_USER_ID)
    assert zendesk.ticket(10)["status"] == "solved"


def test_reply_without_a_status_leaves_the_status_alone(zendesk: FakeZendesk, adapter: ZendeskAdapter) -> None:
    zendesk.add_ticket(id=11, subject="a", requester_id=CUSTOMER, status="pending", comments=[{"body": "hi"}])
    adapter.reply("11", "Answer")
    assert "status" not in last_update_body(zendesk)["ticket"]
    assert zendesk.ticket(11)["status"] == "pending"
    assert zendesk.comments(11)[-1]["public"] is True


def test_add_note_writes_a_private_comment(zendesk: FakeZendesk, adapter: ZendeskAdapter) -> None:
    zendesk.add_ticket(id=12, subject="a", requester_id=CUSTOMER, comments=[{"body": "hi"}])
    adapter.add_note("12", "Rejected: wrong article")
    assert last_update_body(zendesk)["ticket"]["comment"] == {"body": "Rejected: wrong article", "public": False}
    assert zendesk.comments(12)[-1]["public"] is False


def test_assign_sets_the_assignee_id_as_a_number(zendesk: FakeZendesk, adapter: ZendeskAdapter) -> None:
    zendesk.add_ticket(id=13, subject="a", requester_id=CUSTOMER, comments=[{"body": "hi"}])
    adapter.assign("13", str(OTHER_AGENT))
    assert last_update_body(zendesk) == {"ticket": {"assignee_id": OTHER_AGENT}}
    assert zendesk.ticket(13)["assignee_id"] == OTHER_AGENT


def test_set_status_changes_only_the_status(zendesk: FakeZendesk, adapter: ZendeskAdapter) -> None:
    zendesk.add_ticket(id=14, subject="a", requester_id=CUSTOMER, comments=[{"body": "hi"}])
    adapter.set_status("14", "pending")
    assert last_update_body(zendesk) == {"ticket": {"status": "pending"}}
    assert zendesk.ticket(14)["status"] == "pending"
    assert len(zendesk.comments(14)) == 1


def test_add_tags_adds_to_the_existing_tags(zendesk: FakeZendesk, adapter: ZendeskAdapter) -> None:
    zendesk.add_ticket(id=15, subject="a", requester_id=CUSTOMER, tags=["vip"], comments=[{"body": "hi"}])
    adapter.add_tags("15", ["seam_escalated", "seam_draft"])
    assert zendesk.ticket(15)["tags"] == ["vip", "seam_escalated", "seam_draft"]


@pytest.mark.parametrize("email", ["bob@example.com", "BOB@Example.COM"])
def test_find_agent_returns_an_agent_for_an_agent_email_in_any_case(adapter: ZendeskAdapter, email: str) -> None:
    assert adapter.find_agent(email) == Agent(id=str(OTHER_AGENT), name="Bob Agent", email="bob@example.com")


def test_find_agent_accepts_admins(zendesk: FakeZendesk, adapter: ZendeskAdapter) -> None:
    zendesk.add_user(id=88, name="Ada Admin", email="ada@example.com", role="admin")
    agent = adapter.find_agent("ada@example.com")
    assert agent is not None and agent.id == "88"


@pytest.mark.parametrize("email", ["ana@example.com", "nobody@example.com"])
def test_find_agent_returns_none_for_an_end_user_or_an_unknown_email(adapter: ZendeskAdapter, email: str) -> None:
    assert adapter.find_agent(email) is None


# -- retries and failures ----------------------------------------------------------------------------------


def test_a_429_with_retry_after_is_retried_after_the_requested_wait(zendesk: FakeZendesk,
                                                                    client: httpx.Client) -> None:
    adapter = make_adapter(client, retry_deadline=10.0)
    zendesk.add_ticket(id=20, subject="a", requester_id=CUSTOMER, comments=[{"body": "hi"}])
    zendesk.fail("update_ticket", status=429, headers={"Retry-After": "1"})
    started = time.monotonic()
    adapter.reply("20", "Answer")
    elapsed = time.monotonic() - started
    calls = zendesk.calls_to("update_ticket")
    assert [c.status for c in calls] == [429, 200]
    assert elapsed >= 0.9
    assert calls[1].received_at - calls[0].received_at >= 0.9
    assert [c["body"] for c in zendesk.comments(20)] == ["hi", "Answer"]


def test_a_transient_500_on_a_read_is_retried(zendesk: FakeZendesk, adapter: ZendeskAdapter) -> None:
    zendesk.add_ticket(id=21, subject="a", requester_id=CUSTOMER, comments=[{"body": "hi"}])
    zendesk.fail("get_ticket", status=503, headers={"Retry-After": "0"})
    assert adapter.fetch_ticket("21").subject == "a"
    assert [c.status for c in zendesk.calls_to("get_ticket")] == [503, 200]


def test_a_persistent_500_raises_helpdesk_error_after_retrying(zendesk: FakeZendesk, client: httpx.Client) -> None:
    adapter = make_adapter(client, retry_deadline=0.5)
    zendesk.add_ticket(id=22, subject="a", requester_id=CUSTOMER, comments=[{"body": "hi"}])
    zendesk.fail("update_ticket", status=500, times=100, headers={"Retry-After": "0.05"})
    with pytest.raises(HelpdeskError) as error:
        adapter.reply("22", "Answer")
    assert error.value.status == 500
    assert 2 <= len(zendesk.calls_to("update_ticket")) <= 5
    assert [c["body"] for c in zendesk.comments(22)] == ["hi"]


def test_a_404_raises_helpdesk_error_without_retrying(zendesk: FakeZendesk, adapter: ZendeskAdapter) -> None:
    with pytest.raises(HelpdeskError) as error:
        adapter.fetch_ticket("404")
    assert error.value.status == 404
    assert len(zendesk.calls_to("get_ticket")) == 1


def test_a_422_on_a_write_raises_without_retrying(zendesk: FakeZendesk, adapter: ZendeskAdapter) -> None:
    zendesk.add_ticket(id=23, subject="a", requester_id=CUSTOMER, comments=[{"body": "hi"}])
    with pytest.raises(HelpdeskError) as error:
        adapter.assign("23", str(CUSTOMER))  # an end-user cannot be the assignee
    assert error.value.status == 422
    assert len(zendesk.calls_to("update_ticket")) == 1


def test_wrong_credentials_raise_helpdesk_error_with_status_401(zendesk: FakeZendesk) -> None:
    zendesk.add_ticket(id=24, subject="a", requester_id=CUSTOMER, comments=[{"body": "hi"}])
    with httpx.Client(base_url=zendesk.url, auth=(f"{zendesk.email}/token", "wrong"), timeout=5) as bad:
        adapter = make_adapter(bad)
        with pytest.raises(HelpdeskError) as error:
            adapter.fetch_ticket("24")
    assert error.value.status == 401
    assert len(zendesk.calls_to("get_ticket")) == 1
