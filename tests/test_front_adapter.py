"""The Front adapter against a loopback FakeFront: both webhook signatures and the challenge handshake, the status
mapping, who wrote what, pagination, the writes, knowledge, pacing and retries, and the importer of API dumps."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.config import HelpdeskTable, Settings
from bot.helpdesk.base import Agent, HelpdeskError, Updates, WebhookAuthError, WebhookChallenge, WebhookPayloadError
from bot.helpdesk.front import PLUGIN
from bot.helpdesk.front import adapter as front_adapter
from bot.helpdesk.front.adapter import MAX_PAGES, FrontAdapter, sign_application, sign_rule
from bot.helpdesk.front.importer import import_front
from bot.helpdesk.front.settings import FrontSettings
from bot.jobs.knowledge import sync_knowledge
from bot.models import Ticket
from bot.store import Store
from tests.support.cli import run_bot
from tests.support.fakes import FakeFront, FakeSlack
from tests.support.helpdesks import FrontHarness
from tests.support.server import SeamServer, seam_env, unpaced_config

SECRET = "front-webhook-secret"
NOW = 1_790_000_000.0
CUSTOMER = ("Ana Customer", "ana@example.com")


@pytest.fixture
def front() -> Iterator[FakeFront]:
    with FakeFront() as fake:
        yield fake


@pytest.fixture
def client(front: FakeFront) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=front.url, headers=front.headers, timeout=5) as c:
        yield c


def make_adapter(client: httpx.Client, **options) -> FrontAdapter:
    return FrontAdapter(client, webhook_secret=SECRET, clock=lambda: NOW,
                        retry_deadline=options.pop("retry_deadline", 1.0), **options)


@pytest.fixture
def adapter(client: httpx.Client) -> FrontAdapter:
    return make_adapter(client)


def conversation(front: FakeFront, *thread: dict, **fields) -> str:
    return front.add_conversation(subject=fields.pop("subject", "Where is my parcel"), recipient_name=CUSTOMER[0],
                                  recipient_handle=CUSTOMER[1], messages=thread or [{"body": "Where is it?"}],
                                  **fields)


def trash(front: FakeFront, cid: str) -> None:
    """Delete a conversation the way a teammate would (Seam itself never deletes)."""
    assert httpx.patch(f"{front.url}/conversations/{cid}", json={"status": "deleted"},
                       headers=front.headers).status_code == 204


def app_headers(body: bytes, *, at: float = NOW, secret: str = SECRET) -> dict[str, str]:
    timestamp = str(int(at * 1000))
    return {"x-front-signature": sign_application(secret, timestamp, body), "x-front-request-timestamp": timestamp}


def rule_headers(body: bytes, *, secret: str = SECRET) -> dict[str, str]:
    return {"x-front-signature": sign_rule(secret, body)}


def app_body(cid: str, event_id: str = "evt_1a2b") -> bytes:
    return json.dumps({"type": "inbound_received", "authorization": {"id": "cmp_1"},
                       "payload": {"id": event_id, "type": "inbound", "emitted_at": NOW,
                                   "conversation": {"id": cid, "subject": "Hi"}}}).encode()


def rule_body(cid: str, event_id: str = "evt_9z") -> bytes:
    return json.dumps({"_links": {"self": "https://acme.api.frontapp.com/events/" + event_id}, "id": event_id,
                       "type": "inbound", "emitted_at": NOW, "source": {"_meta": {"type": "inboxes"}},
                       "conversation": {"id": cid, "status": "unassigned"}}).encode()


# -- webhook signatures ------------------------------------------------------------------------------------


def test_the_application_signature_is_base64_hmac_sha256_of_timestamp_colon_body() -> None:
    expected = base64.b64encode(hmac.new(b"k", b"1700000000123:{}", hashlib.sha256).digest()).decode()
    assert sign_application("k", "1700000000123", b"{}") == expected


def test_the_rule_signature_is_base64_hmac_sha1_of_the_body() -> None:
    assert sign_rule("k", b"{}") == base64.b64encode(hmac.new(b"k", b"{}", hashlib.sha1).digest()).decode()


def test_a_signed_application_webhook_names_its_conversation_and_event(adapter: FrontAdapter) -> None:
    body = app_body("cnv_abc123")
    adapter.verify_webhook(headers=app_headers(body), body=body)
    event = adapter.parse_webhook(headers=app_headers(body), body=body)
    assert (event.ticket_id, event.delivery_key) == ("cnv_abc123", "front:event:evt_1a2b")


def test_a_rule_webhook_signed_with_sha1_is_accepted_and_parsed(adapter: FrontAdapter) -> None:
    body = rule_body("cnv_77")
    adapter.verify_webhook(headers=rule_headers(body), body=body)
    event = adapter.parse_webhook(headers=rule_headers(body), body=body)
    assert (event.ticket_id, event.delivery_key) == ("cnv_77", "front:event:evt_9z")


def test_an_event_preview_names_its_conversation_by_link(adapter: FrontAdapter) -> None:
    body = json.dumps({"id": "evt_5", "type": "tag", "conversation": {
        "_links": {"self": "https://acme.api.frontapp.com/conversations/cnv_linked1"}}}).encode()
    assert adapter.parse_webhook(headers=rule_headers(body), body=body).ticket_id == "cnv_linked1"


@pytest.mark.parametrize("headers", [
    pytest.param(lambda b: {}, id="unsigned"),
    pytest.param(lambda b: rule_headers(b, secret="other"), id="rule-other-secret"),
    pytest.param(lambda b: app_headers(b, secret="other"), id="app-other-secret"),
    pytest.param(lambda b: {**app_headers(b), "x-front-request-timestamp": str(int(NOW * 1000) + 1)},
                 id="app-other-timestamp"),
    pytest.param(lambda b: app_headers(b + b" "), id="app-other-body"),
    pytest.param(lambda b: rule_headers(b + b" "), id="rule-other-body"),
])
def test_forged_and_tampered_webhooks_are_refused(adapter: FrontAdapter, headers) -> None:
    body = app_body("cnv_1")
    with pytest.raises(WebhookAuthError):
        adapter.verify_webhook(headers=headers(body), body=body)


@pytest.mark.parametrize("offset", [-360, 360])
def test_an_application_webhook_six_minutes_away_is_refused(adapter: FrontAdapter, offset: int) -> None:
    body = app_body("cnv_1")
    with pytest.raises(WebhookAuthError, match="window"):
        adapter.verify_webhook(headers=app_headers(body, at=NOW + offset), body=body)


@pytest.mark.parametrize("offset", [-240, 240])
def test_an_application_webhook_four_minutes_away_is_accepted(adapter: FrontAdapter, offset: int) -> None:
    body = app_body("cnv_1")
    adapter.verify_webhook(headers=app_headers(body, at=NOW + offset), body=body)


def test_a_timestamp_in_seconds_is_read_as_seconds(adapter: FrontAdapter) -> None:
    body = app_body("cnv_1")
    timestamp = str(int(NOW))
    adapter.verify_webhook(headers={"x-front-signature": sign_application(SECRET, timestamp, body),
                                    "x-front-request-timestamp": timestamp}, body=body)


def test_an_adapter_without_a_secret_refuses_every_webhook(client: httpx.Client) -> None:
    body = rule_body("cnv_1")
    with pytest.raises(WebhookAuthError, match="not configured"):
        FrontAdapter(client, webhook_secret="").verify_webhook(headers=rule_headers(body, secret=""), body=body)


def test_a_verified_challenge_is_answered_with_the_challenge(adapter: FrontAdapter) -> None:
    body = json.dumps({"type": "sync", "authorization": {"id": "cmp_1"}}).encode()
    headers = {**app_headers(body), "x-front-challenge": "r4nd0m-str1ng"}
    adapter.verify_webhook(headers=headers, body=body)
    with pytest.raises(WebhookChallenge) as challenge:
        adapter.parse_webhook(headers=headers, body=body)
    assert challenge.value.body == {"challenge": "r4nd0m-str1ng"}


def test_an_unsigned_challenge_is_refused(adapter: FrontAdapter) -> None:
    body = json.dumps({"type": "sync"}).encode()
    with pytest.raises(WebhookAuthError):
        adapter.verify_webhook(headers={"x-front-challenge": "x"}, body=body)


@pytest.mark.parametrize("body", [
    b'{"type": "sync", "authorization": {"id": "cmp_1"}}',
    b'{"payload": {"id": "evt_1", "conversation": {"id": "../teammates"}}}',
    b'{"id": "evt_1", "conversation": {"id": 42}}',
    b"[1, 2]",
], ids=["sync-without-challenge", "not-a-conversation-id", "number-id", "not-an-object"])
def test_unusable_bodies_are_payload_errors(adapter: FrontAdapter, body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        adapter.parse_webhook(headers=rule_headers(body), body=body)


def test_a_redelivery_keeps_its_event_id_key_and_a_body_without_one_is_hashed(adapter: FrontAdapter) -> None:
    body = app_body("cnv_1", "evt_same")
    first = adapter.parse_webhook(headers=app_headers(body, at=NOW), body=body)
    # Front retries a failed delivery with a new timestamp, hence a new signature: the event id stays.
    again = adapter.parse_webhook(headers=app_headers(body, at=NOW + 30), body=body)
    assert first.delivery_key == again.delivery_key == "front:event:evt_same"
    bare = b'{"conversation_id": "cnv_1"}'
    keys = {adapter.parse_webhook(headers=rule_headers(b), body=b).delivery_key for b in (bare, bare, bare + b" ")}
    assert len(keys) == 2 and all(k.startswith("front:sha256:") for k in keys)


# -- through `serve`: the handshake and rule webhooks ----------------------------------------------------------


def test_serve_answers_the_challenge_records_nothing_and_accepts_a_rule_webhook(tmp_path: Path) -> None:
    harness = FrontHarness()
    try:
        with FakeSlack() as slack:
            env = seam_env(slack=slack, tmp=tmp_path, helpdesk_env=harness.serve_env(),
                           SEAM_CONFIG=unpaced_config(tmp_path))
            server = SeamServer(env, tmp_path / "serve.log").start()
            try:
                sync = json.dumps({"type": "sync", "authorization": {"id": FakeFront.COMPANY_ID}}).encode()
                answer = server.http.post("/webhooks/front", content=sync,
                                          headers={**harness.sign(sync), "X-Front-Challenge": "ch4ll3nge"})
                assert (answer.status_code, answer.json()) == (200, {"challenge": "ch4ll3nge"})
                forged = server.http.post("/webhooks/front", content=sync,
                                          headers={**harness.sign(sync, how="forged"), "X-Front-Challenge": "x"})
                assert forged.status_code == 401

                cid = harness.add_customer_ticket("Refund", [("customer", "Can I get a refund?", True)])
                body = rule_body(cid, "evt_rule1")
                rule = {"Content-Type": "application/json", "X-Front-Signature": sign_rule(harness.SECRET, body)}
                accepted = server.http.post("/webhooks/front", content=body, headers=rule)
                assert accepted.status_code == 202
                assert accepted.json()["event_id"] == 1, "the challenge recorded nothing before it"
                assert server.http.post("/webhooks/front", content=body, headers=rule).status_code == 200
            finally:
                assert server.stop() == 0, server.log()
    finally:
        harness.close()


# -- statuses ---------------------------------------------------------------------------------------------


def test_the_plugin_offers_open_pending_and_solved_but_not_hold() -> None:
    assert PLUGIN.statuses == ("open", "pending", "solved")


def test_solved_archives_and_open_reopens(front: FakeFront, adapter: FrontAdapter) -> None:
    cid = conversation(front)
    adapter.set_status(cid, "solved")
    assert front.conversation(cid)["status"] == "archived"
    adapter.set_status(cid, "open")
    assert front.conversation(cid)["status"] == "unassigned"
    assert [json.loads(c.body) for c in front.calls_to("update_conversation")] == [
        {"status": "archived"}, {"status": "open"}]


def test_pending_archives_without_ticketing(front: FakeFront, adapter: FrontAdapter) -> None:
    cid = conversation(front)
    adapter.set_status(cid, "pending")
    assert front.conversation(cid)["status"] == "archived"
    assert [c.status for c in front.calls_to("list_statuses")] == [404]


def test_pending_is_the_waiting_ticket_status_with_ticketing() -> None:
    with FakeFront(ticketing=True) as front, httpx.Client(base_url=front.url, headers=front.headers) as c:
        adapter = make_adapter(c)
        first, second = conversation(front), conversation(front)
        adapter.set_status(first, "pending")
        adapter.reply(second, "We have asked the carrier.", status="pending")
        for cid in (first, second):
            assert front.conversation(cid)["status_category"] == "waiting"
        assert json.loads(front.calls_to("send_reply")[0].body)["options"] == {"archive": False}
        assert len(front.calls_to("list_statuses")) == 1, "the ticket statuses are looked up once"


def test_hold_has_no_front_equivalent_and_writes_nothing(front: FakeFront, adapter: FrontAdapter) -> None:
    cid = conversation(front)
    for call in (lambda: adapter.set_status(cid, "hold"), lambda: adapter.reply(cid, "Hi", status="hold")):
        with pytest.raises(HelpdeskError, match="no status"):
            call()
    assert front.messages(cid)[-1]["is_inbound"] and not front.calls_to("update_conversation")


def test_a_reply_without_a_status_tells_front_not_to_archive(front: FakeFront, adapter: FrontAdapter) -> None:
    cid = conversation(front)
    adapter.reply(cid, "First line\nsecond line\n\nA <b>new</b> paragraph")
    sent = json.loads(front.calls_to("send_reply")[0].body)
    assert sent["options"] == {"archive": False}
    assert sent["body"] == "<p>First line<br>second line</p><p>A &lt;b&gt;new&lt;/b&gt; paragraph</p>"
    assert sent["text"] == "First line\nsecond line\n\nA <b>new</b> paragraph" and "author_id" not in sent
    assert front.conversation(cid)["status"] == "unassigned"


def test_a_solved_reply_archives_in_the_same_request(front: FakeFront, adapter: FrontAdapter) -> None:
    cid = conversation(front)
    adapter.reply(cid, "Done.", status="solved")
    assert json.loads(front.calls_to("send_reply")[0].body)["options"] == {"archive": True}
    assert front.conversation(cid)["status"] == "archived" and not front.calls_to("update_conversation")


# -- reading ----------------------------------------------------------------------------------------------


def test_fetch_ticket_tells_customer_agent_and_bot_apart(front: FakeFront, adapter: FrontAdapter) -> None:
    sam = front.add_teammate(email="sam@acme.example", first_name="Sam")
    oauth_bot = front.add_teammate(email="app@acme.example", first_name="Some app", type="API")
    cid = conversation(front, {"body": "My parcel is late", "attachments": ["receipt.pdf"]},
                       {"inbound": False, "body": "Sent by the API token"},
                       {"comment": True, "body": "Checked the carrier", "author_id": sam},
                       {"inbound": False, "body": "Sam's answer", "author_id": sam},
                       {"inbound": False, "body": "An OAuth app's answer", "author_id": oauth_bot},
                       {"inbound": False, "body": "Unsent draft", "author_id": sam, "draft": True},
                       {"comment": True, "body": "API note"},
                       {"inbound": True, "body": "", "html": "<p>Still&nbsp;<b>late</b></p>"},
                       tags=["vip"], custom_fields={"Priority": "high"})
    ticket = adapter.fetch_ticket(cid)
    assert [(m.author, m.body, m.public) for m in ticket.messages] == [
        ("customer", "My parcel is late", True), ("bot", "Sent by the API token", True),
        ("agent", "Checked the carrier", False), ("agent", "Sam's answer", True),
        ("bot", "An OAuth app's answer", True), ("bot", "API note", False), ("customer", "Still late", True)]
    assert ticket.messages[0].attachments == ("receipt.pdf",)
    assert (ticket.requester_name, ticket.requester_email, ticket.tags, ticket.priority, ticket.status) == (
        *CUSTOMER, ("vip",), "high", "unassigned")
    assert ticket.url == f"https://app.frontapp.com/open/{cid}" and ticket.sla_due_at is None
    assert ticket.created_at.endswith("Z") and ticket.created_at <= ticket.messages[0].created_at


def test_with_an_author_teammate_only_its_writes_are_the_bots(front: FakeFront, client: httpx.Client) -> None:
    seam = front.add_teammate(email="seam@acme.example", first_name="Seam", type="user")
    adapter = make_adapter(client, author_id=seam)
    cid = conversation(front, {"body": "Hello?"}, {"inbound": False, "body": "Another integration"})
    adapter.reply(cid, "Seam here.")
    adapter.add_note(cid, "Seam's note")
    assert json.loads(front.calls_to("send_reply")[0].body)["author_id"] == seam
    assert json.loads(front.calls_to("add_comment")[0].body)["author_id"] == seam
    assert [m.author for m in adapter.fetch_ticket(cid).messages] == ["customer", "agent", "bot", "bot"]


def test_fetch_ticket_reads_every_page_without_leaving_the_configured_host(client: httpx.Client) -> None:
    with FakeFront(max_page_size=2) as front, httpx.Client(base_url=front.url, headers=front.headers) as c:
        front.link_host = "https://attacker.example"  # wherever Front's next links point, only the token goes on
        cid = conversation(front, *({"body": f"message {n}"} for n in range(5)))
        ticket = make_adapter(c).fetch_ticket(cid)
        assert [m.body for m in ticket.messages] == [f"message {n}" for n in range(5)]
        assert len(front.calls_to("list_messages")) == 3


def test_an_endless_listing_stops_after_max_pages() -> None:
    class EndlessFront(FakeFront):
        def _h_list_teammates(self, req, params):
            return 200, {}, {"_results": [], "_pagination": {
                "next": f"{self.link_host}/teammates?page_token={time.monotonic_ns()}"}}

    with EndlessFront() as endless, httpx.Client(base_url=endless.url, headers=endless.headers) as c:
        assert make_adapter(c).find_agent("nobody@acme.example") is None
        assert len(endless.calls_to("list_teammates")) == MAX_PAGES


def test_a_missing_conversation_is_404_and_a_malformed_id_never_leaves(front: FakeFront, adapter: FrontAdapter) -> None:
    with pytest.raises(HelpdeskError) as missing:
        adapter.fetch_ticket("cnv_404")
    assert missing.value.status == 404
    with pytest.raises(HelpdeskError):
        adapter.fetch_ticket("../teammates")
    assert len(front.calls) == 1


def test_updated_since_reads_every_events_page_and_leaves_out_deleted(front: FakeFront,
                                                                      adapter: FrontAdapter) -> None:
    old = conversation(front)
    since = front.events(old)[-1]["emitted_at"] + 1
    fresh = [conversation(front, *({"body": f"m{n}"} for n in range(4))) for _ in range(5)]  # 20 events
    gone = conversation(front)
    trash(front, gone)
    listed = dict(adapter.updated_since(since))
    assert set(listed) == set(fresh)
    assert len(front.calls_to("list_events")) == 2, "15 events a page"
    assert listed[fresh[0]] < listed[fresh[-1]]


def test_events_past_the_page_limit_say_where_the_reading_stopped_and_the_window_before_it_can_be_read(
        front: FakeFront, adapter: FrontAdapter, monkeypatch: pytest.MonkeyPatch) -> None:
    old = conversation(front)
    since = front.events(old)[-1]["emitted_at"] + 1
    fresh = [conversation(front, *({"body": f"m{n}"} for n in range(4))) for _ in range(5)]  # 20 events
    monkeypatch.setattr(front_adapter, "MAX_PAGES", 1)
    listed = adapter.updated_since(since)
    # Newest first: the page read holds the newest 15 events, so the oldest conversation was not reached.
    oldest_read = sorted(e["emitted_at"] for e in front.events())[-15]
    assert fresh[0] not in dict(listed) and fresh[-1] in dict(listed)
    assert listed.unread_before == oldest_read and listed.resume_from == since
    earlier = adapter.updated_since(since, before=listed.unread_before)
    assert earlier.unread_before is None and fresh[0] in dict(earlier) and old not in dict(earlier)
    assert all(event["emitted_at"] <= oldest_read for cid in dict(earlier) for event in front.events(cid)[:1])
    monkeypatch.setattr(front_adapter, "MAX_PAGES", 50)
    whole = adapter.updated_since(since)
    assert whole.resume_from is None and whole.unread_before is None and set(dict(whole)) == set(fresh)


def test_reconciliation_reads_back_what_a_cut_newest_first_listing_left_while_traffic_goes_on(
        front: FakeFront, adapter: FrontAdapter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """After an outage the window holds more events than a check reads. Asked again from the same time, the
    newest-first listing would read the same newest page every check and never reach the oldest conversations;
    the backlog reads back from where each reading stopped."""
    from bot.jobs.reconcile import BACKLOG_KEY, SINCE_KEY, Reconciler

    monkeypatch.setattr(front_adapter, "MAX_PAGES", 1)  # 15 events a check
    store = Store(str(tmp_path / "seam.db"))
    waiting = [conversation(front, *({"body": f"m{n}"} for n in range(3))) for _ in range(12)]  # 36 events
    clock = [max(e["emitted_at"] for e in front.events()) + 120]
    reconciler = Reconciler(store=store, helpdesk=adapter, interval=3 * 3600, notify=lambda: None,
                            clock=lambda: clock[0])
    for _ in range(8):
        reconciler.run_once()
        front.advance(600)  # a check every ten minutes, with six events between checks
        waiting.append(conversation(front, *({"body": f"n{n}"} for n in range(6))))
        clock[0] = max(e["emitted_at"] for e in front.events()) + 120
    reconciler.run_once()
    recorded = {row["ticket_id"] for row in store.db["events"].rows}
    assert recorded == set(waiting), "every conversation reached, the oldest included"
    assert store.get_setting(BACKLOG_KEY) is None and store.get_setting(SINCE_KEY) == clock[0]


def test_a_backlog_left_by_another_helpdesk_is_not_read(front: FakeFront, adapter: FrontAdapter,
                                                         tmp_path: Path) -> None:
    """A deployment that moves from Front to another helpdesk keeps its database: the new adapter must not be
    asked for Front's window (it takes no `before=`), and the reconciliation job must keep running."""
    from bot.jobs.reconcile import BACKLOG_KEY, Reconciler

    class Elsewhere:
        name = "zendesk"

        def updated_since(self, since: float) -> Updates:
            return Updates([("42", "2026-12-03T10:00:00Z")])

    store = Store(str(tmp_path / "seam.db"))
    store.set_setting(BACKLOG_KEY, {"helpdesk": "front", "from": NOW - 7200, "to": NOW - 3600}, actor="seam")
    reconciler = Reconciler(store=store, helpdesk=Elsewhere(), interval=300, notify=lambda: None, clock=lambda: NOW)
    assert reconciler.run_once() == 1
    assert Reconciler(store=store, helpdesk=adapter, interval=300, notify=lambda: None,
                      clock=lambda: NOW).run_once() == 0


# -- writes -----------------------------------------------------------------------------------------------


def test_add_tags_looks_tags_up_once_and_creates_the_missing(front: FakeFront, adapter: FrontAdapter) -> None:
    front.add_tag("VIP")
    cid = conversation(front)
    adapter.add_tags(cid, ["vip", "seam_escalated"])
    adapter.add_tags(cid, ["seam_escalated", "seam_draft"])
    assert sorted(t["name"] for t in front.conversation(cid)["tags"]) == ["VIP", "seam_draft", "seam_escalated"]
    assert len(front.calls_to("list_tags")) == 1
    assert [json.loads(c.body)["name"] for c in front.calls_to("create_tag")] == ["seam_escalated", "seam_draft"]


def test_assign_puts_the_assignee(front: FakeFront, adapter: FrontAdapter) -> None:
    sam = front.add_teammate(email="sam@acme.example", first_name="Sam")
    cid = conversation(front)
    adapter.assign(cid, sam)
    assert front.conversation(cid)["assignee"]["id"] == sam
    assert front.calls_to("update_assignee")[0].http_method == "PUT"


def test_find_agent_skips_blocked_teammates_and_bots(front: FakeFront, adapter: FrontAdapter) -> None:
    front.add_teammate(email="gone@acme.example", first_name="Gone", is_blocked=True)
    front.add_teammate(email="rule@acme.example", first_name="Rule", type="rule")
    bea = front.add_teammate(email="Bea.Agent@acme.example", first_name="Bea", last_name="Agent")
    assert adapter.find_agent("bea.agent@ACME.example") == Agent(id=bea, name="Bea Agent",
                                                                email="Bea.Agent@acme.example")
    assert adapter.find_agent("gone@acme.example") is None and adapter.find_agent("rule@acme.example") is None


def test_a_write_that_timed_out_is_not_repeated(front: FakeFront) -> None:
    cid = conversation(front)
    front.set_delay("add_comment", 1.5)
    with httpx.Client(base_url=front.url, headers=front.headers, timeout=0.5) as c, pytest.raises(HelpdeskError):
        make_adapter(c, retry_deadline=5.0).add_note(cid, "once")
    time.sleep(1.2)
    assert len(front.calls_to("add_comment")) == 1 and [c["body"] for c in front.comments(cid)] == ["once"]


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_error_on_a_comment_is_not_repeated(front: FakeFront, adapter: FrontAdapter, status: int) -> None:
    # A comment is its own call in Front (a reply's is in the contract suite): a gateway that timed out may have
    # let it through, and sent again it would be there twice.
    cid = conversation(front)
    front.fail("add_comment", status=status)
    with pytest.raises(HelpdeskError):
        adapter.add_note(cid, "Note")
    assert len(front.calls_to("add_comment")) == 1


def test_a_wrong_token_is_a_401(front: FakeFront) -> None:
    cid = conversation(front)
    with httpx.Client(base_url=front.url, headers={"Authorization": "Bearer nope"}) as c, \
            pytest.raises(HelpdeskError) as error:
        make_adapter(c).fetch_ticket(cid)
    assert error.value.status == 401


# -- knowledge --------------------------------------------------------------------------------------------


def test_knowledge_is_templates_and_published_articles_as_clean_text(front: FakeFront, adapter: FrontAdapter) -> None:
    refund = front.add_message_template(name="Refunds", body="<div>Refunds take&nbsp;<b>5 days</b>.</div>"
                                                             "<ul><li>Keep the receipt</li></ul>")
    front.add_message_template(name="Empty", body="<p> </p>")
    base = front.add_knowledge_base(name="Help")
    article = front.add_article(base, name="Shipping", content="<h1>Shipping</h1><p>We ship&amp;track.</p>"
                                                               "<script>x()</script>")
    front.add_article(base, name="Draft", content="<p>Not yet</p>", status="draft")
    hidden = front.add_knowledge_base(name="Old", status="unpublished")
    front.add_article(hidden, name="Old", content="<p>Old</p>")
    found = {a.id: (a.title, a.body) for a in adapter.knowledge()}
    assert found == {f"macro-{refund}": ("Refunds", "Refunds take 5 days.\n\n• Keep the receipt"),
                     f"article-{article}": ("Shipping", "Shipping\n\nWe ship&track.")}


@pytest.mark.parametrize("kind", ["macro", "article"])
def test_a_knowledge_listing_longer_than_max_pages_is_refused_and_the_sync_keeps_what_it_had(
        monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    with FakeFront(max_page_size=1) as front, httpx.Client(base_url=front.url, headers=front.headers) as c:
        adapter = make_adapter(c)
        base = front.add_knowledge_base(name="Help")
        for n in range(3):  # three pages of one
            if kind == "macro":
                front.add_message_template(name=f"Template {n}", body=f"<p>Answer {n}</p>")
            else:
                front.add_article(base, name=f"Article {n}", content=f"<p>Answer {n}</p>")
        store = Store(":memory:")
        assert sync_knowledge(store, adapter).added == 3
        monkeypatch.setattr(front_adapter, "MAX_PAGES", 2)
        with pytest.raises(HelpdeskError, match="more than 2 pages"):
            adapter.knowledge()
        with pytest.raises(HelpdeskError):
            sync_knowledge(store, adapter)
        assert len(store.synced_articles("front")) == 3, "nothing beyond page 2 is retired"


def test_a_knowledge_base_listing_that_goes_on_is_followed_and_refused_when_it_never_ends() -> None:
    class EndlessBases(FakeFront):
        def _h_list_knowledge_bases(self, req, params):
            status, headers, body = super()._h_list_knowledge_bases(req, params)
            body["_pagination"] = {"next": f"{self.link_host}/knowledge_bases?page_token=again"}
            return status, headers, body

    with EndlessBases() as front, httpx.Client(base_url=front.url, headers=front.headers) as c:
        front.add_knowledge_base(name="Help")
        with pytest.raises(HelpdeskError, match="knowledge_bases"):
            make_adapter(c).knowledge()
        assert len(front.calls_to("list_knowledge_bases")) == 2, "a token handed back twice ends the listing"


# -- pacing and retries -----------------------------------------------------------------------------------


def settings(*, requests_per_minute: float | None) -> Settings:
    return Settings(helpdesk="front", helpdesk_settings=FrontSettings(api_token="t", webhook_secret=SECRET),
                    helpdesk_limits=HelpdeskTable(requests_per_minute=requests_per_minute))


def timed_fetches(front: FakeFront, adapter: FrontAdapter, count: int) -> float:
    """Seconds `count` fetch_ticket calls take: three requests each (conversation, messages, comments)."""
    cid = conversation(front)
    started = time.monotonic()
    for _ in range(count):
        adapter.fetch_ticket(cid)
    assert len(front.calls) == 3 * count
    return time.monotonic() - started


def test_requests_are_paced_to_fronts_lowest_plan_by_default(front: FakeFront, client: httpx.Client) -> None:
    adapter = FrontAdapter.from_settings(settings(requests_per_minute=None), client=client)
    # 50 a minute with a burst of 5: the sixth request waits about 1.2 s.
    assert timed_fetches(front, adapter, 2) >= 1.0


@pytest.mark.parametrize("limit, at_least, at_most", [(600.0, 0.3, 5.0), (0.0, 0.0, 0.5)])
def test_the_configured_limit_paces_and_zero_turns_pacing_off(front: FakeFront, client: httpx.Client, limit: float,
                                                              at_least: float, at_most: float) -> None:
    adapter = FrontAdapter.from_settings(settings(requests_per_minute=limit), client=client)
    # 600 a minute with a burst of 5: the four requests after the burst are 0.1 s apart.
    assert at_least <= timed_fetches(front, adapter, 3) < at_most


def test_a_429_waits_for_retry_after(front: FakeFront, client: httpx.Client) -> None:
    # The call's deadline leaves room for the wait: one that would not is given up at once (tests/test_retry_after).
    adapter = make_adapter(client, retry_deadline=3.0)
    cid = conversation(front)
    front.fail("get_conversation", status=429, headers={"Retry-After": "1", "x-ratelimit-remaining": "0"})
    started = time.monotonic()
    assert adapter.fetch_ticket(cid).id == cid
    assert time.monotonic() - started >= 0.9 and len(front.calls_to("get_conversation")) == 2


# -- the importer -----------------------------------------------------------------------------------------


def dump_pages(front: FakeFront, folder: Path, cids: list[str]) -> None:
    """Save the API's answers the way someone exporting Front would: every page of each listing."""
    folder.mkdir()
    with httpx.Client(base_url=front.url, headers=front.headers) as c:
        def pages(path: str) -> list[dict]:
            found, params = [], {"limit": 2}
            while True:
                page = c.get(path, params=params).json()
                found.append(page)
                following = page.get("_pagination", {}).get("next")
                if not following:
                    return found
                params = dict(httpx.URL(following).params)

        (folder / "conversations.json").write_text(json.dumps([c.get(f"/conversations/{cid}").json()
                                                               for cid in cids]))
        for cid in cids:
            (folder / "messages").mkdir(exist_ok=True)
            (folder / "messages" / f"{cid}.jsonl").write_text(
                "\n".join(json.dumps(p) for p in pages(f"/conversations/{cid}/messages")))
            (folder / f"comments-{cid}.json").write_text(json.dumps(c.get(f"/conversations/{cid}/comments").json()))
        (folder / "templates.json").write_text(json.dumps(pages("/message_templates")))


def test_the_importer_turns_api_dumps_into_contract_tickets(front: FakeFront, adapter: FrontAdapter,
                                                            tmp_path: Path) -> None:
    sam = front.add_teammate(email="sam@acme.example", first_name="Sam")
    template = front.add_message_template(name="Tracking", body="<p>Your parcel left our warehouse yesterday.</p>")
    solved = conversation(front, {"body": "Where is my parcel?"}, {"comment": True, "body": "Carrier?",
                                                                   "author_id": sam},
                          {"inbound": False, "body": "Hi Ana, your parcel left our warehouse yesterday. Best, Sam",
                           "author_id": sam}, {"inbound": False, "body": "draft", "author_id": sam, "draft": True},
                          subject="Parcel")
    adapter.set_status(solved, "solved")
    own_words = conversation(front, {"body": "Can I pay by card?"},
                             {"inbound": False, "body": "Yes, every card.", "author_id": sam}, subject="Cards")
    adapter.set_status(own_words, "solved")
    open_one = conversation(front, {"body": "Hello?"}, {"inbound": False, "body": "Auto-reply"}, subject="Hello")
    gone = conversation(front, subject="Spam")
    trash(front, gone)
    dump_pages(front, tmp_path / "dump", [solved, own_words, open_one, gone])
    (tmp_path / "dump" / "broken.json").write_text(json.dumps({"_results": [{"id": "xyz_1"}, "nope",
                                                                            {"id": "evt_1", "type": "inbound"}]}))

    result = import_front([tmp_path / "dump"])
    tickets = {t["id"]: t for t in result.tickets}
    assert set(tickets) == {solved, own_words, open_one}
    assert tickets[solved]["resolution"] == {
        "answer_id": f"macro-{template}", "answer": "Hi Ana, your parcel left our warehouse yesterday. Best, Sam"}
    assert [(m["author"], m["body"], m["public"]) for m in tickets[solved]["messages"]] == [
        ("customer", "Where is my parcel?", True), ("agent", "Carrier?", False)]
    assert tickets[own_words]["resolution"] == {"answer_id": None, "answer": "Yes, every card."}
    assert "resolution" not in tickets[open_one]
    assert [m["author"] for m in tickets[open_one]["messages"]] == ["customer", "bot"]
    assert tickets[solved]["requester"] == {"name": CUSTOMER[0], "email": CUSTOMER[1]}
    assert tickets[solved]["url"] == f"https://app.frontapp.com/open/{solved}"
    assert len(result.problems) == 2 and all(p.startswith("broken.json record") for p in result.problems)
    assert result.notes == ["left out 1 deleted conversation",
                            "ignored 1 other Front record (events, teammates, tags…)"]
    for ticket in result.tickets:
        Ticket.from_dict(ticket)

    out = run_bot("import", "front", str(tmp_path / "dump"), "--out", str(tmp_path / "resolved.jsonl"),
                  "--resolved-only", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    written = [json.loads(line) for line in (tmp_path / "resolved.jsonl").read_text().splitlines()]
    assert {t["id"] for t in written} == {solved, own_words}
    assert "skipped: broken.json record 1" in out.stderr


def test_the_importer_refuses_a_dump_without_conversations(tmp_path: Path) -> None:
    (tmp_path / "messages.json").write_text(json.dumps({"_results": [
        {"id": "msg_1", "is_inbound": True, "text": "Hi",
         "_links": {"related": {"conversation": "https://acme.api.frontapp.com/conversations/cnv_1"}}}]}))
    out = run_bot("import", "front", str(tmp_path / "messages.json"), "--out", str(tmp_path / "t.jsonl"),
                  cwd=tmp_path)
    assert out.returncode != 0 and "no conversations found" in out.stderr
