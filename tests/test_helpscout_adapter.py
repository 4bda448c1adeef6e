"""The Help Scout adapter against a loopback FakeHelpScout: the OAuth2 token (fetched, refreshed early and after a
401, shared by threads, never logged), webhooks, status mapping, who wrote each thread, pagination, writes,
knowledge (saved replies and Docs articles as clean text), pacing and the importer of API dumps."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from bot.config import HelpdeskTable, Settings
from bot.errors import InputError
from bot.helpdesk import registry
from bot.helpdesk.base import HelpdeskError, WebhookAuthError, WebhookChallenge, WebhookPayloadError
from bot.helpdesk.helpscout import adapter as helpscout_adapter
from bot.helpdesk.helpscout.adapter import MAX_PAGES, HelpScoutAdapter, sign
from bot.helpdesk.helpscout.importer import command, import_helpscout
from bot.helpdesk.helpscout.settings import HelpScoutSettings
from bot.jobs.knowledge import sync_knowledge
from bot.models import Ticket
from bot.pacing import ChannelPacer
from bot.store import Store
from tests.support.fakes import FakeHelpScout

SECRET = "hs-webhook-secret"
NOW = datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def fake() -> Iterator[FakeHelpScout]:
    with FakeHelpScout() as server:
        yield server


@pytest.fixture
def client(fake: FakeHelpScout) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=5) as c:
        yield c


def make(client: httpx.Client, fake: FakeHelpScout, **kwargs: Any) -> HelpScoutAdapter:
    kwargs.setdefault("retry_deadline", 1.0)
    return HelpScoutAdapter(client, app_id=fake.app_id, app_secret=fake.app_secret, webhook_secret=SECRET, **kwargs)


@pytest.fixture
def adapter(client: httpx.Client, fake: FakeHelpScout) -> HelpScoutAdapter:
    return make(client, fake)


def conversation(fake: FakeHelpScout, *bodies: str, **kwargs: Any) -> int:
    customer = fake.add_customer("Ana", "Customer", "ana@example.com")
    kwargs.setdefault("subject", "Where is my parcel")
    return fake.add_conversation(customer_id=customer, threads=[{"body": b} for b in bodies], **kwargs)


def bearer(call) -> str:
    return call.headers.get("authorization", "")


# -- the OAuth2 token ------------------------------------------------------------------------------------------


def test_the_token_is_fetched_once_with_the_app_credentials_and_sent_as_bearer(fake, adapter):
    conversation_id = conversation(fake, "Hello")
    adapter.fetch_ticket(str(conversation_id))
    adapter.fetch_ticket(str(conversation_id))
    [token_call] = fake.calls_to("token")
    assert token_call.params == {"grant_type": "client_credentials", "client_id": fake.app_id,
                                 "client_secret": fake.app_secret}
    assert token_call.headers["content-type"].startswith("application/x-www-form-urlencoded")
    token = token_call.response["access_token"]
    api_calls = [c for c in fake.calls if c.method != "token"]
    assert len(api_calls) >= 4 and all(bearer(c) == f"Bearer {token}" for c in api_calls)


def test_the_token_is_renewed_five_minutes_before_it_expires(fake, client):
    clock = [1000.0]
    adapter = make(client, fake, token_clock=lambda: clock[0])
    conversation_id = str(conversation(fake, "Hello"))
    adapter.fetch_ticket(conversation_id)
    first = fake.calls_to("token")[0].response["access_token"]
    clock[0] += fake.token_ttl - 301  # still more than five minutes to go: the same token
    adapter.fetch_ticket(conversation_id)
    assert len(fake.calls_to("token")) == 1
    clock[0] += 2  # now within five minutes of expiry: a new one, before any request is refused
    adapter.fetch_ticket(conversation_id)
    assert len(fake.calls_to("token")) == 2
    assert bearer(fake.calls[-1]) != f"Bearer {first}"
    assert not [c for c in fake.calls if c.status == 401]


def test_a_short_lived_token_is_renewed_at_three_quarters_of_its_life(client):
    with FakeHelpScout(token_ttl=40) as fake, httpx.Client(base_url=fake.url, timeout=5) as short_client:
        clock = [0.0]
        adapter = make(short_client, fake, token_clock=lambda: clock[0])
        adapter.me()
        clock[0] = 29.0
        adapter.find_agent("nobody@example.com")
        assert len(fake.calls_to("token")) == 1
        clock[0] = 31.0
        adapter.find_agent("nobody@example.com")
        assert len(fake.calls_to("token")) == 2


def test_a_refused_token_is_replaced_once_and_the_request_repeated(fake, adapter):
    conversation_id = str(conversation(fake, "Hello"))
    adapter.fetch_ticket(conversation_id)
    fake.expire_tokens()  # revoked early: the adapter still believes in it
    ticket = adapter.fetch_ticket(conversation_id)
    assert ticket.messages[0].body == "Hello"
    assert len(fake.calls_to("token")) == 2
    refused = [c for c in fake.calls_to("get_conversation") if c.status == 401]
    assert len(refused) == 1


def test_a_401_that_persists_is_a_helpdesk_error_after_one_new_token(fake, adapter):
    conversation_id = str(conversation(fake, "Hello"))
    fake.fail("get_conversation", status=401, times=10)
    with pytest.raises(HelpdeskError) as error:
        adapter.fetch_ticket(conversation_id)
    assert error.value.status == 401
    assert len(fake.calls_to("get_conversation")) == 2
    assert len(fake.calls_to("token")) == 2


def test_wrong_app_credentials_fail_at_once_without_the_secret_in_the_error(fake, client):
    adapter = HelpScoutAdapter(client, app_id=fake.app_id, app_secret="wrong-secret-value", webhook_secret=SECRET,
                               retry_deadline=1.0)
    with pytest.raises(HelpdeskError) as error:
        adapter.me()
    assert error.value.status == 401
    assert "wrong-secret-value" not in str(error.value)
    assert len(fake.calls_to("token")) == 1 and not fake.calls_to("me")


def test_threads_that_need_a_token_at_once_share_one(fake, adapter):
    conversation_id = str(conversation(fake, "Hello"))
    fake.set_delay("token", 0.3)
    with ThreadPoolExecutor(max_workers=8) as pool:
        tickets = list(pool.map(lambda _: adapter.fetch_ticket(conversation_id), range(8)))
    assert len(fake.calls_to("token")) == 1
    assert {t.id for t in tickets} == {conversation_id}


def test_the_token_and_the_app_secret_never_reach_the_log(fake, adapter, caplog):
    caplog.set_level(logging.DEBUG)
    conversation_id = str(conversation(fake, "Hello"))
    adapter.fetch_ticket(conversation_id)
    fake.expire_tokens()
    fake.fail("get_conversation", status=500)  # retried: logged on the way
    adapter.fetch_ticket(conversation_id)
    with pytest.raises(HelpdeskError):
        adapter.fetch_ticket("999999")
    tokens = [c.response["access_token"] for c in fake.calls_to("token")]
    assert len(tokens) == 2
    assert "Help Scout access token" in caplog.text, "the token's life is logged, at DEBUG"
    for secret in [*tokens, fake.app_secret]:
        assert secret not in caplog.text
    assert tokens[-1] not in repr(adapter._token)


# -- webhooks --------------------------------------------------------------------------------------------------


def body_of(fake: FakeHelpScout, conversation_id: int) -> bytes:
    return json.dumps(fake.conversation(conversation_id)).encode()


def signed(body: bytes, event: str = "convo.customer.reply.created", secret: str = SECRET) -> dict[str, str]:
    return {"x-helpscout-signature": sign(secret, body), "x-helpscout-event": event}


def test_the_signature_is_base64_hmac_sha1_of_the_raw_body():
    expected = base64.b64encode(hmac.new(b"k", b'{"id":1}', hashlib.sha1).digest()).decode()
    assert sign("k", b'{"id":1}') == expected


def test_a_fresh_signed_conversation_verifies_and_names_its_conversation(fake, adapter):
    conversation_id = conversation(fake, "Hello")
    body = body_of(fake, conversation_id)
    adapter.verify_webhook(headers=signed(body), body=body)
    assert adapter.parse_webhook(headers=signed(body), body=body).ticket_id == str(conversation_id)


@pytest.mark.parametrize("headers", [{}, {"x-helpscout-signature": "bm90IGl0"}],
                         ids=["missing", "wrong"])
def test_a_missing_or_wrong_signature_is_refused(fake, adapter, headers):
    body = body_of(fake, conversation(fake, "Hello"))
    with pytest.raises(WebhookAuthError):
        adapter.verify_webhook(headers=headers, body=body)


def test_without_a_secret_every_webhook_is_refused(fake, client):
    adapter = HelpScoutAdapter(client, app_id="a", app_secret="b", webhook_secret="")
    body = body_of(fake, conversation(fake, "Hello"))
    with pytest.raises(WebhookAuthError, match="not configured"):
        adapter.verify_webhook(headers=signed(body, secret=""), body=body)


def test_a_conversation_whose_newest_time_is_older_than_the_window_is_refused(client, fake):
    adapter = make(client, fake, clock=lambda: NOW)
    old = {"id": 5, "createdAt": "2026-11-20T09:00:00Z", "userUpdatedAt": "2026-11-20T09:54:00Z",
           "customerWaitingSince": {"time": "2026-11-20T09:50:00Z", "friendly": "10 min ago"}}
    body = json.dumps(old).encode()
    with pytest.raises(WebhookAuthError, match="older"):
        adapter.verify_webhook(headers=signed(body), body=body)
    fresh = dict(old, _embedded={"threads": [{"id": 9, "createdAt": "2026-11-20T09:58:30Z"}]})
    body = json.dumps(fresh).encode()
    adapter.verify_webhook(headers=signed(body), body=body)  # a thread written 90 s ago makes it fresh


def test_a_body_without_times_is_judged_by_its_signature_alone(adapter):
    body = b'{"id": 123}'  # what convo.deleted sends
    adapter.verify_webhook(headers=signed(body, "convo.deleted"), body=body)


def test_the_test_event_sent_when_the_webhook_is_saved_is_answered_and_not_recorded(adapter):
    body = b'{"test": true}'
    headers = signed(body, "helpscout.test")
    adapter.verify_webhook(headers=headers, body=body)
    with pytest.raises(WebhookChallenge) as challenge:
        adapter.parse_webhook(headers=headers, body=body)
    assert challenge.value.body == {"ok": True, "event": "helpscout.test"}


@pytest.mark.parametrize("event", ["customer.created", "satisfaction.ratings", "tag.created", "convo.deleted",
                                   "beacon.chat.created"])
def test_events_about_no_readable_conversation_are_answered_and_not_recorded(adapter, event):
    with pytest.raises(WebhookChallenge) as challenge:
        adapter.parse_webhook(headers=signed(b'{"id": 1}', event), body=b'{"id": 1}')
    assert challenge.value.body == {"ok": True, "ignored": event}


def test_the_delivery_key_is_the_event_and_the_bytes(adapter):
    body = b'{"id": 77, "userUpdatedAt": "2026-11-20T10:00:00Z"}'
    first = adapter.parse_webhook(headers=signed(body, "convo.assigned"), body=body)
    assert adapter.parse_webhook(headers=signed(body, "convo.assigned"), body=body).delivery_key == first.delivery_key
    assert adapter.parse_webhook(headers=signed(body, "convo.tags"), body=body).delivery_key != first.delivery_key
    changed = body.replace(b"10:00:00", b"10:00:05")
    assert adapter.parse_webhook(headers=signed(changed, "convo.assigned"), body=changed).delivery_key \
        != first.delivery_key


def test_the_conversation_id_may_come_from_the_self_link(adapter):
    body = json.dumps({"_links": {"self": {"href": "https://api.helpscout.net/v2/conversations/4321"}}}).encode()
    assert adapter.parse_webhook(headers=signed(body), body=body).ticket_id == "4321"


@pytest.mark.parametrize("raw_id", ["abc", 0, -3, True, "12/../users", None, 1.5])
def test_an_unusable_conversation_id_is_a_payload_error(adapter, raw_id):
    body = json.dumps({"id": raw_id}).encode()
    with pytest.raises(WebhookPayloadError):
        adapter.parse_webhook(headers=signed(body), body=body)


@pytest.mark.parametrize("links", ["x", {"self": "https://api.helpscout.net/v2/conversations/4321"},
                                   {"self": {"href": 4321}}, ["self"]])
def test_a_malformed_self_link_is_a_payload_error_not_a_crash(adapter, links):
    # Signed but malformed: answered 400, never a 500 (the contract's "never 5xx for bad input").
    body = json.dumps({"_links": links}).encode()
    with pytest.raises(WebhookPayloadError):
        adapter.parse_webhook(headers=signed(body), body=body)


# -- reading ---------------------------------------------------------------------------------------------------


def test_fetch_ticket_tells_the_customer_agents_and_the_bot_apart(fake, adapter):
    customer = fake.add_customer("Ana", "Customer", "ana@example.com")
    bob = fake.add_user("Bob", "Agent", "bob@example.com")
    bot = fake.api_user_id
    conversation_id = fake.add_conversation(
        subject="Broken", customer_id=customer, tags=["VIP", "billing"],
        custom_fields=[{"id": 3, "name": "priority", "value": "77", "text": "High"}],
        threads=[
            {"type": "customer", "body": "<div>It is <b>broken</b>&nbsp;again</div>", "attachments": ["shot.png"]},
            {"type": "lineitem", "body": "Assigned to Bob", "user_id": bob},
            {"type": "message", "body": "Did you restart it?", "user_id": bot},
            {"type": "note", "body": "Legacy plan", "user_id": bob},
            {"type": "reply", "body": "Draft answer", "user_id": bob, "state": "draft"},
            {"type": "chat", "body": "Still broken", "user_id": None},
            {"type": "reply", "body": "Looking now", "user_id": bob},
            {"type": "note", "body": "Seam: escalated", "user_id": bot},
            {"type": "phone", "body": "Called the customer", "user_id": bob},
        ])
    ticket = adapter.fetch_ticket(str(conversation_id))
    assert [(m.author, m.body, m.public) for m in ticket.messages] == [
        ("customer", "It is broken again", True), ("bot", "Did you restart it?", True),
        ("agent", "Legacy plan", False), ("customer", "Still broken", True), ("agent", "Looking now", True),
        ("bot", "Seam: escalated", False), ("agent", "Called the customer", True)]
    assert ticket.messages[0].attachments == ("shot.png",)
    assert (ticket.requester_name, ticket.requester_email) == ("Ana Customer", "ana@example.com")
    assert ticket.tags == ("vip", "billing")
    assert (ticket.priority, ticket.status, ticket.sla_due_at) == ("high", "active", None)
    assert ticket.url == f"https://secure.helpscout.net/conversation/{conversation_id}"
    assert ticket.created_at == fake.conversation(conversation_id)["createdAt"]


def test_a_conversation_without_a_priority_field_has_no_priority(fake, adapter):
    assert adapter.fetch_ticket(str(conversation(fake, "Hello"))).priority is None


def test_threads_are_read_page_by_page_and_put_oldest_first(client):
    with FakeHelpScout(page_size=2) as fake, httpx.Client(base_url=fake.url, timeout=5) as paged:
        adapter = make(paged, fake)
        conversation_id = conversation(fake, *[f"message {i}" for i in range(5)])
        ticket = adapter.fetch_ticket(str(conversation_id))
        assert [m.body for m in ticket.messages] == [f"message {i}" for i in range(5)]
        assert len(fake.calls_to("list_threads")) == 3


class ForeignLinks(FakeHelpScout):
    """A Help Scout whose next-page links name another host (as behind a proxy, or a forged answer)."""

    def _links(self, path: str, page: dict, params: dict[str, Any]) -> dict[str, Any]:
        links = super()._links(path, page, params)
        if "next" in links:
            links["next"]["href"] = links["next"]["href"].replace(self.url, "https://evil.example")
        return links


class EndlessPages(FakeHelpScout):
    """A Help Scout that always says there is another page of threads."""

    def _h_list_threads(self, req, params):
        status, headers, body = super()._h_list_threads(req, params)
        body["_links"]["next"] = {"href": f"{self.url}{req.path}?page=2"}
        return status, headers, body


def test_pagination_never_follows_a_link_to_another_host():
    with ForeignLinks(page_size=1) as fake, httpx.Client(base_url=fake.url, timeout=5) as c:
        adapter = make(c, fake)
        conversation_id = conversation(fake, "one", "two", "three")
        ticket = adapter.fetch_ticket(str(conversation_id))
        # Only the link's path and query are taken, to the configured host: every page is read there.
        assert [m.body for m in ticket.messages] == ["one", "two", "three"] and ticket.problems == ()
        assert len(fake.calls_to("list_threads")) == 3


def test_pagination_stops_after_max_pages():
    with EndlessPages() as fake, httpx.Client(base_url=fake.url, timeout=5) as c:
        adapter = make(c, fake)
        adapter.fetch_ticket(str(conversation(fake, "one")))
        assert len(fake.calls_to("list_threads")) == MAX_PAGES


class Merged(FakeHelpScout):
    """Conversation `old` was merged into `new`: Help Scout answers 301 with the new address."""

    moved: dict[int, int] = {}

    def _h_get_conversation(self, req, params):
        old = int(self._ids(req)[0])
        if old in self.moved:
            return 301, {"Location": f"{self.url}/v2/conversations/{self.moved[old]}"}, b""
        return super()._h_get_conversation(req, params)


def test_a_merged_conversation_is_read_at_its_new_address():
    with Merged() as fake, httpx.Client(base_url=fake.url, timeout=5) as c:
        adapter = make(c, fake)
        new = conversation(fake, "Merged question")
        fake.moved = {424242: new}
        ticket = adapter.fetch_ticket("424242")
        assert ticket.id == str(new) and ticket.messages[0].body == "Merged question"


def test_writes_to_a_merged_conversation_land_at_its_new_address():
    # A merged conversation answers a write at its old id 404 (only a read answers 301 with the new address): a
    # rejection's note, a claim's assignment or a status set from Slack failed for good and showed as an error.
    with Merged() as fake, httpx.Client(base_url=fake.url, timeout=5) as c:
        adapter = make(c, fake)
        new = conversation(fake, "Merged question")
        fake.moved = {424242: new}
        bob = fake.add_user("Bob", "Agent", "bob@example.com")
        adapter.add_note("424242", "Rejected: wrong tone")
        adapter.assign("424242", str(bob))
        adapter.set_status("424242", "pending")
        moved = fake.conversation(new)
        assert [t["body"] for t in fake.threads(new) if t["type"] == "note"] == ["Rejected: wrong tone"]
        assert moved["status"] == "pending" and moved["assignee"]["id"] == bob
        adapter.assign("424242", None)
        assert not fake.conversation(new).get("assignee")
        with pytest.raises(HelpdeskError) as gone:  # a conversation that is gone, not moved: still a 404
            adapter.add_note("555555", "Rejected")
        assert gone.value.status == 404


def test_updated_since_lists_every_status_but_spam_across_pages():
    with FakeHelpScout(page_size=2) as fake, httpx.Client(base_url=fake.url, timeout=5) as c:
        adapter = make(c, fake)
        ids = [conversation(fake, "q", status=s) for s in ("active", "pending", "closed", "active", "spam")]
        since = fake.modified_at(ids[0])
        listed = dict(adapter.updated_since(since))
        assert set(listed) == {str(i) for i in ids[:4]}
        [call, *_] = fake.calls_to("list_conversations")
        assert call.params["status"] == "all" and call.params["sortField"] == "modifiedAt"
        assert call.params["modifiedSince"] == datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_conversation_modified_while_the_list_is_read_pushes_none_past_the_reader():
    """Paged by number, the fifth conversation modified once page 1 is read moves to the end, and the eleventh,
    first on page 2, slides onto page 1, never to be seen: the list is read by modification time instead."""
    with FakeHelpScout(page_size=10) as fake, httpx.Client(base_url=fake.url, timeout=5) as c:
        adapter = make(c, fake)
        ids = [conversation(fake, f"question {n}") for n in range(30)]
        fake.after_answer("list_conversations", lambda: fake.add_activity(ids[4], field="Priority", value="High",
                                                                          user_id=fake.api_user_id))
        updates = adapter.updated_since(fake.modified_at(ids[0]) - 60)
        listed = dict(updates)
        assert set(listed) == {str(i) for i in ids}, "the eleventh is not skipped"
        assert listed[str(ids[4])].startswith(datetime.fromtimestamp(fake.modified_at(ids[4]), UTC)
                                              .strftime("%Y-%m-%dT%H:%M:%SZ")), "the new version is read"
        assert updates.resume_from is None
        asked = fake.calls_to("list_conversations")
        assert all("page" not in call.params for call in asked) and len(asked) == 4


def test_more_conversations_modified_in_one_second_than_a_page_holds_are_paged_within_it(
        monkeypatch: pytest.MonkeyPatch):
    with FakeHelpScout(page_size=10) as fake, httpx.Client(base_url=fake.url, timeout=5) as c:
        adapter = make(c, fake)
        bulk = [conversation(fake, f"question {n}") for n in range(30)]
        since = fake.modified_at(bulk[0]) - 60
        fake.bulk_change(bulk, status="closed", user_id=fake.api_user_id)
        moment = datetime.fromtimestamp(fake.modified_at(bulk[0]), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        later = [conversation(fake, f"later {n}") for n in range(5)]
        listed = adapter.updated_since(since)
        assert {i for i, _ in listed} == {str(i) for i in bulk + later} and listed.resume_from is None
        asked = [(call.params["modifiedSince"], call.params.get("page", "1"))
                 for call in fake.calls_to("list_conversations")]
        assert asked[1:] == [(moment, "1"), (moment, "2"), (moment, "3"), (moment, "4")]
        # Capped at MAX_PAGES pages: everything before the bulk change's second was read.
        fake.clear_calls()
        monkeypatch.setattr(helpscout_adapter, "MAX_PAGES", 3)
        cut = adapter.updated_since(since)
        assert len(cut) == 20 and cut.resume_from == fake.modified_at(bulk[0])


def test_find_agent_uses_the_email_filter_and_alternate_emails(fake, adapter):
    bea = fake.add_user("Bea", "Agent", "bea@example.com", alternate_emails=["Bea.Slack@Example.com"])
    assert adapter.find_agent("bea@example.com").id == str(bea)
    assert len(fake.calls_to("list_users")) == 1, "an exact hit needs no listing"
    found = adapter.find_agent("bea.slack@example.com")
    assert (found.id, found.email, found.name) == (str(bea), "bea@example.com", "Bea Agent")


# -- writing and statuses --------------------------------------------------------------------------------------


def test_the_plugin_offers_open_pending_and_solved_and_no_hold():
    assert registry.plugin("helpscout").statuses == ("open", "pending", "solved")


@pytest.mark.parametrize("word, value", [("open", "active"), ("pending", "pending"), ("solved", "closed"),
                                         ("closed", "closed"), ("Solved", "closed")])
def test_set_status_maps_seams_words_to_help_scouts(fake, adapter, word, value):
    conversation_id = conversation(fake, "Hello", status="pending" if value == "active" else "active")
    adapter.set_status(str(conversation_id), word)
    assert fake.conversation(conversation_id)["status"] == value
    assert fake.calls_to("update_conversation")[-1].params == {"op": "replace", "path": "/status", "value": value}


@pytest.mark.parametrize("word", ["hold", "spam", "new"])
def test_a_status_help_scout_lacks_is_refused_without_writing(fake, adapter, word):
    conversation_id = conversation(fake, "Hello")
    with pytest.raises(HelpdeskError):
        adapter.set_status(str(conversation_id), word)
    with pytest.raises(HelpdeskError):
        adapter.reply(str(conversation_id), "Hi", status=word)
    assert not fake.calls_to("update_conversation") and not fake.calls_to("create_reply")


def test_a_reply_without_a_status_keeps_the_conversations_status(fake, adapter):
    conversation_id = conversation(fake, "Hello", status="pending")
    adapter.reply(str(conversation_id), "We are on it.")
    assert fake.conversation(conversation_id)["status"] == "pending", "Help Scout would reactivate it otherwise"
    [call] = fake.calls_to("create_reply")
    customer = fake.conversation(conversation_id)["primaryCustomer"]["id"]
    assert call.params == {"customer": {"id": customer}, "text": "We are on it.", "status": "pending"}


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_error_on_a_note_is_not_repeated(fake, adapter, status):
    # A note is its own call in Help Scout (a reply's is in the contract suite): a gateway that timed out may have
    # let it through, and sent again it would be there twice.
    conversation_id = str(conversation(fake, "Hello"))
    fake.fail("create_note", status=status)
    with pytest.raises(HelpdeskError):
        adapter.add_note(conversation_id, "Note")
    assert len(fake.calls_to("create_note")) == 1


def test_a_reply_keeps_its_lines_and_is_read_back_word_for_word(fake, adapter):
    conversation_id = str(conversation(fake, "Hello"))
    text = "Hi Ana,\n\nStep 1:  open <Settings> & reset.\n  - then wait"
    adapter.reply(conversation_id, text, status="solved")
    sent = fake.calls_to("create_reply")[0].params
    assert sent["text"] == "Hi Ana,<br><br>Step 1:  open &lt;Settings&gt; &amp; reset.<br>  - then wait"
    assert sent["status"] == "closed"
    latest = adapter.fetch_ticket(conversation_id).messages[-1]
    assert (latest.author, latest.body, latest.public) == ("bot", text, True)


def test_assign_patches_the_owner_with_a_numeric_user_id(fake, adapter):
    conversation_id = conversation(fake, "Hello")
    bob = fake.add_user("Bob", "Agent", "bob@example.com")
    adapter.assign(str(conversation_id), str(bob))
    assert fake.calls_to("update_conversation")[-1].params == {"op": "replace", "path": "/assignTo", "value": bob}
    assert fake.conversation(conversation_id)["assignee"]["id"] == bob


def test_add_tags_sends_the_whole_set_and_skips_a_write_that_changes_nothing(fake, adapter):
    conversation_id = conversation(fake, "Hello", tags=["vip"])
    adapter.add_tags(str(conversation_id), ["Seam_Escalated", "vip"])
    assert fake.calls_to("update_tags")[-1].params == {"tags": ["vip", "seam_escalated"]}
    adapter.add_tags(str(conversation_id), ["seam_escalated"])
    assert len(fake.calls_to("update_tags")) == 1


def test_a_write_that_timed_out_is_not_repeated(fake):
    conversation_id = str(conversation(fake, "Hello"))
    with httpx.Client(base_url=fake.url, timeout=0.5) as impatient:
        adapter = make(impatient, fake)
        adapter.me()
        fake.set_delay("create_note", 1.0)
        with pytest.raises(HelpdeskError):
            adapter.add_note(conversation_id, "Rejected in Slack")
        fake.wait_for("create_note", timeout=5)
    assert len(fake.calls_to("create_note")) == 1, "it may have landed: the caller checks before repeating"
    assert [t["body"] for t in fake.threads(int(conversation_id)) if t["type"] == "note"] == ["Rejected in Slack"]


def test_a_token_endpoint_that_fails_for_a_moment_is_retried(fake, adapter):
    fake.fail("token", status=503)
    assert adapter.me()["id"] == fake.api_user_id
    assert len(fake.calls_to("token")) == 2


@pytest.mark.parametrize("bad", ["12/../../users", "abc", ""])
def test_an_id_that_is_not_a_conversation_id_never_reaches_a_path(fake, adapter, bad):
    for call in (lambda: adapter.fetch_ticket(bad), lambda: adapter.add_note(bad, "x"),
                 lambda: adapter.set_status(bad, "solved")):
        with pytest.raises(HelpdeskError):
            call()
    assert not [c for c in fake.calls if c.method not in ("token", "me")]


# -- pacing and Retry-After ------------------------------------------------------------------------------------


class CountingPacer(ChannelPacer):
    def __init__(self) -> None:
        super().__init__(rate=10_000, burst=1_000)
        self.slots: dict[str, int] = {}

    def wait(self, channel: str) -> float:
        self.slots[channel] = self.slots.get(channel, 0) + 1
        return super().wait(channel)


def test_a_write_takes_two_slots_of_the_account_limit_and_a_read_one(fake, client):
    pacer = CountingPacer()
    adapter = make(client, fake, pacer=pacer)
    conversation_id = str(conversation(fake, "Hello"))
    adapter.me()  # the token (a POST: 2) and the user (1)
    assert pacer.slots == {"helpscout": 3}
    adapter.set_status(conversation_id, "pending")
    assert pacer.slots == {"helpscout": 5}
    adapter._conversation(conversation_id)
    assert pacer.slots == {"helpscout": 6}


def test_the_wait_help_scout_asks_for_is_honoured(fake, client):
    # The call's deadline leaves room for the wait: one that would not is given up at once (tests/test_retry_after).
    adapter = make(client, fake, retry_deadline=3.0)
    conversation_id = str(conversation(fake, "Hello"))
    adapter.me()
    fake.fail("get_conversation", status=429, headers={"X-RateLimit-Retry-After": "1"})
    started = time.monotonic()
    adapter.fetch_ticket(conversation_id)
    assert time.monotonic() - started >= 0.9
    assert len(fake.calls_to("get_conversation")) == 2


def settings_with(limits: HelpdeskTable, **own: Any) -> Settings:
    return Settings(helpdesk="helpscout", helpdesk_settings=HelpScoutSettings(app_id="a", app_secret="b", **own),
                    helpdesk_limits=limits)


def test_from_settings_paces_to_200_a_minute_unless_told_otherwise():
    paced = HelpScoutAdapter.from_settings(settings_with(HelpdeskTable()))
    assert paced._pacer._interval == pytest.approx(60 / 200) and paced._update_pacer is None
    assert paced._docs is None, "no Docs API key: no Docs client"
    raised = HelpScoutAdapter.from_settings(settings_with(HelpdeskTable(requests_per_minute=800.0,
                                                                        updates_per_minute=60.0)))
    assert raised._pacer._interval == pytest.approx(60 / 800) and raised._update_pacer._interval == 1.0
    unpaced = HelpScoutAdapter.from_settings(settings_with(HelpdeskTable(requests_per_minute=0.0),
                                                           docs_api_key="k"))
    assert unpaced._pacer is None and unpaced._docs_pacer is None and unpaced._docs is not None


def test_settings_name_what_serve_needs_and_default_the_urls():
    settings = HelpScoutSettings.from_env({"HELPSCOUT_APP_ID": "id"}.get)
    assert settings.missing() == ["HELPSCOUT_APP_SECRET", "HELPSCOUT_WEBHOOK_SECRET"]
    assert (settings.base_url, settings.docs_base_url) == ("https://api.helpscout.net",
                                                           "https://docsapi.helpscout.net")
    assert HelpScoutSettings(api_url="http://127.0.0.1:9/").base_url == "http://127.0.0.1:9"


# -- knowledge -------------------------------------------------------------------------------------------------


def test_knowledge_is_saved_replies_and_published_public_docs_articles_as_clean_text(fake, client):
    reply = fake.add_saved_reply("Refund status", "Hi there,<br /><br />Refunds take <b>5&nbsp;days</b>.")
    second_mailbox = fake.add_mailbox("Billing")
    fake.add_saved_reply("Invoice", "<p>Find it under <a href='#'>Billing</a>.</p><script>x()</script>",
                         mailbox_id=second_mailbox)
    public = fake.add_docs_collection("Help")
    private = fake.add_docs_collection("Internal", visibility="private")
    article = fake.add_docs_article(public, "Reset your password", "<h2>Steps</h2><ol><li>Open</li><li>Reset</li></ol>")
    fake.add_docs_article(public, "Unfinished", "<p>Draft</p>", status="notpublished")
    fake.add_docs_article(private, "Internal runbook", "<p>Secret</p>")
    with httpx.Client(base_url=fake.url, auth=(fake.docs_api_key, "X"), timeout=5) as docs:
        adapter = make(client, fake, docs=docs)
        articles = {a.id: a for a in adapter.knowledge()}
    assert articles[f"macro-{reply}"].body == "Hi there,\n\nRefunds take 5 days."
    assert articles[f"macro-{reply}"].title == "Refund status"
    assert [a.body for a in articles.values() if a.title == "Invoice"] == ["Find it under Billing."]
    assert articles[f"article-{article}"].body == "Steps\n\n• Open\n• Reset"
    assert len(articles) == 3, "drafts and private collections are left out"


def test_without_a_docs_key_knowledge_is_saved_replies_only(fake, adapter):
    fake.add_docs_collection("Help")
    reply = fake.add_saved_reply("Hello", "Hello!")
    assert [a.id for a in adapter.knowledge()] == [f"macro-{reply}"]
    assert not fake.calls_to("docs_collections")


@pytest.mark.parametrize("listing", ["collections", "articles"])
def test_a_docs_listing_longer_than_max_pages_is_refused_and_the_sync_keeps_what_it_had(
        monkeypatch: pytest.MonkeyPatch, listing: str) -> None:
    with FakeHelpScout(page_size=1) as fake, httpx.Client(base_url=fake.url, timeout=5) as c, \
            httpx.Client(base_url=fake.url, auth=(fake.docs_api_key, "X"), timeout=5) as docs:
        adapter = make(c, fake, docs=docs)
        collection = fake.add_docs_collection("Help")
        for n in range(3):  # three pages of one
            where = fake.add_docs_collection(f"More {n}") if listing == "collections" else collection
            fake.add_docs_article(where, f"Article {n}", f"<p>Answer {n}</p>")
        store = Store(":memory:")
        assert sync_knowledge(store, adapter).added == 3
        monkeypatch.setattr(helpscout_adapter, "MAX_PAGES", 2)
        with pytest.raises(HelpdeskError, match="more than 2 pages"):
            adapter.knowledge()
        with pytest.raises(HelpdeskError):
            sync_knowledge(store, adapter)
        assert len(store.synced_articles("helpscout")) == 3, "nothing beyond page 2 is retired"


def test_a_mailbox_listing_longer_than_max_pages_is_refused(fake: FakeHelpScout, adapter: HelpScoutAdapter,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(100):  # with the first: three pages of 50
        fake.add_mailbox(f"Inbox{n}")
    monkeypatch.setattr(helpscout_adapter, "MAX_PAGES", 2)
    with pytest.raises(HelpdeskError, match="/v2/mailboxes has more than 2 pages"):
        adapter.knowledge()


# -- the importer ----------------------------------------------------------------------------------------------


def api_get(fake: FakeHelpScout, path: str) -> dict:
    """A page exactly as the Mailbox API returns it, saved the way a dump would be."""
    token = httpx.post(f"{fake.url}/v2/oauth2/token", data={"grant_type": "client_credentials",
                                                            "client_id": fake.app_id,
                                                            "client_secret": fake.app_secret}).json()["access_token"]
    return httpx.get(f"{fake.url}{path}", headers={"Authorization": f"Bearer {token}"}).json()


@pytest.fixture
def dump(fake: FakeHelpScout, tmp_path: Path) -> tuple[Path, int]:
    customer = fake.add_customer("Ana", "Customer", "ana@example.com")
    bob = fake.add_user("Bob", "Agent", "bob@example.com")
    refund = fake.add_saved_reply("Refund", "Refunds take 5 days.")
    fake.add_conversation(subject="Refund?", customer_id=customer, status="closed", tags=["billing"], threads=[
        {"body": "Where is my refund?"}, {"type": "note", "body": "Check Stripe", "user_id": bob},
        {"type": "lineitem", "body": "Status changed", "user_id": bob},
        {"type": "message", "body": "Refunds take 5 days.", "user_id": bob, "saved_reply_id": refund}])
    fake.add_conversation(subject="Login", customer_id=customer, threads=[{"body": "I cannot log in"}])
    fake.add_conversation(subject="Buy now", customer_id=customer, status="spam", threads=[{"body": "Spam"}])
    separate = fake.add_conversation(subject="Shipping", customer_id=customer, status="closed", threads=[
        {"body": "When does it ship?"}, {"type": "message", "body": "<p>Tomorrow.</p>", "user_id": bob}])
    folder = tmp_path / "dump"
    (folder / "threads").mkdir(parents=True)
    page = api_get(fake, "/v2/conversations?status=all&embed=threads")
    page["_embedded"]["conversations"] = [c for c in page["_embedded"]["conversations"] if c["id"] != separate]
    spam = api_get(fake, "/v2/conversations?status=spam&embed=threads")
    (folder / "conversations.json").write_text(json.dumps([page, spam]))
    (folder / "shipping.json").write_text(json.dumps(api_get(fake, f"/v2/conversations/{separate}")))
    threads = api_get(fake, f"/v2/conversations/{separate}/threads")
    threads.pop("_links")  # the id then comes from the file name
    (folder / "threads" / f"{separate}.json").write_text(json.dumps(threads))
    (folder / "junk.jsonl").write_text('{"hello": 1}\nnot json\n')
    return folder, refund


def test_the_importer_turns_api_pages_into_tickets_with_resolutions(dump):
    folder, refund_reply = dump
    result = import_helpscout([folder])
    tickets = {t["subject"]: t for t in result.tickets}
    assert set(tickets) == {"Refund?", "Login", "Shipping"}
    refund = tickets["Refund?"]
    assert [(m["author"], m["body"], m.get("public", True)) for m in refund["messages"]] == [
        ("customer", "Where is my refund?", True), ("agent", "Check Stripe", False)]
    assert refund["resolution"] == {"answer_id": f"macro-{refund_reply}", "answer": "Refunds take 5 days."}
    assert refund["requester"] == {"name": "Ana Customer", "email": "ana@example.com"}
    assert refund["tags"] == ["billing"] and refund["status"] == "closed"
    assert refund["url"].startswith("https://secure.helpscout.net/conversation/")
    assert tickets["Shipping"]["resolution"] == {"answer_id": None, "answer": "Tomorrow."}
    assert [m["body"] for m in tickets["Shipping"]["messages"]] == ["When does it ship?"]
    assert "resolution" not in tickets["Login"]
    for ticket in result.tickets:
        Ticket.from_dict(ticket)
    assert any("junk.jsonl record 1: not a Help Scout export page" in p for p in result.problems)
    assert any("junk.jsonl line 2: not valid JSON" in p for p in result.problems)
    assert "left out 1 spam conversation" in result.notes


def test_resolved_only_keeps_closed_conversations(dump):
    result = import_helpscout([dump[0]], resolved_only=True)
    assert sorted(t["subject"] for t in result.tickets) == ["Refund?", "Shipping"]
    assert "left out 1 conversation not closed (--resolved-only)" in result.notes


def test_the_import_command_writes_jsonl_simulate_can_read(dump, tmp_path):
    out = tmp_path / "tickets.jsonl"
    run = CliRunner().invoke(command, [str(dump[0]), "--out", str(out), "--resolved-only"])
    assert run.exit_code == 0, run.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2 and all(Ticket.from_dict(t).resolution for t in lines)
    assert "wrote 2 ticket(s) (2 with a resolution)" in run.output


def test_threads_without_their_conversation_are_noted_and_nothing_usable_is_an_error(tmp_path):
    path = tmp_path / "threads-77.json"
    path.write_text(json.dumps({"_embedded": {"threads": [{"id": 1, "type": "customer", "body": "hi"}]}}))
    with pytest.raises(InputError, match="no conversations found"):
        import_helpscout([path])


def test_importing_is_the_registered_helpscout_command():
    assert registry.plugin("helpscout").import_command() is command


def test_more_saved_replies_than_seam_reads_is_refused_not_cut(monkeypatch: pytest.MonkeyPatch, fake, adapter):
    """Each saved reply costs a request, so Seam reads at most MAX_SAVED_REPLIES; past that, a part would make
    the sync retire the rest as deleted, so the whole listing is refused."""
    monkeypatch.setattr(helpscout_adapter, "MAX_SAVED_REPLIES", 2)
    for n in range(2):
        fake.add_saved_reply(f"Reply {n}", f"Answer {n}")
    assert len(adapter.knowledge()) == 2
    fake.add_saved_reply("One too many", "Answer 3")
    with pytest.raises(HelpdeskError, match="more than 2 saved replies"):
        adapter.knowledge()
