"""The Gorgias adapter against a loopback FakeGorgias, beyond the contract suite: the status mapping (snooze for
"pending"), author detection, the reply's routing fields, pagination, the shared-secret webhook and its event
time, macros as knowledge, pacing to the leaky bucket and Retry-after, settings, and the dump importer."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from bot.config import HelpdeskTable
from bot.errors import InputError
from bot.helpdesk import registry
from bot.helpdesk.base import HelpdeskError, WebhookAuthError, WebhookPayloadError
from bot.helpdesk.gorgias import adapter as gorgias_adapter
from bot.helpdesk.gorgias.adapter import GorgiasAdapter
from bot.helpdesk.gorgias.importer import import_gorgias
from bot.helpdesk.gorgias.settings import GorgiasSettings
from bot.jobs.knowledge import sync_knowledge
from bot.models import read_tickets
from bot.offline.importers import write_jsonl
from bot.pacing import ChannelPacer
from bot.store import Store
from tests.support.cli import run_bot
from tests.support.fakes import FakeGorgias

SECRET = "gorgias-webhook-secret"
CUSTOMER = 7001
AGENT = 501


@pytest.fixture
def gorgias() -> Iterator[FakeGorgias]:
    with FakeGorgias() as fake:
        fake.add_customer(id=CUSTOMER, name="Ana Customer", email="ana@example.com")
        fake.add_user(id=AGENT, name="Bob Agent", email="bob@example.com")
        yield fake


@pytest.fixture
def client(gorgias: FakeGorgias) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gorgias.url, auth=gorgias.auth, timeout=5) as c:
        yield c


def make_adapter(client: httpx.Client, email: str, **options) -> GorgiasAdapter:
    options.setdefault("retry_deadline", 3.0)
    return GorgiasAdapter(client, email=email, webhook_secret=SECRET, agent_url="https://acme.gorgias.com/",
                          **options)


@pytest.fixture
def adapter(client: httpx.Client, gorgias: FakeGorgias) -> GorgiasAdapter:
    return make_adapter(client, gorgias.email)


def question(fake: FakeGorgias, ticket_id: int = 42, **options) -> int:
    fake.add_ticket(id=ticket_id, subject="Where is my order?", customer_id=CUSTOMER,
                    messages=[{"from_agent": False, "body_text": "Order 1001 has not arrived."}], **options)
    return ticket_id


def sent(fake: FakeGorgias, name: str) -> list[dict]:
    return [json.loads(c.body) for c in fake.calls_to(name) if c.ok]


# -- statuses ------------------------------------------------------------------------------------------------

def test_pending_snoozes_the_open_ticket_and_open_wakes_it(adapter: GorgiasAdapter, gorgias: FakeGorgias) -> None:
    ticket_id = str(question(gorgias))
    adapter.set_status(ticket_id, "pending")
    ticket = gorgias.ticket(42)
    snooze = datetime.fromisoformat(ticket["snooze_datetime"]).timestamp()
    assert ticket["status"] == "open" and 2.9 * 86400 < snooze - time.time() <= 3 * 86400
    assert adapter.fetch_ticket(ticket_id).status == "pending"
    adapter.set_status(ticket_id, "open")
    assert (gorgias.ticket(42)["status"], gorgias.ticket(42)["snooze_datetime"]) == ("open", None)
    assert adapter.fetch_ticket(ticket_id).status == "open"


def test_solved_closes_and_a_reply_with_a_status_sends_then_closes(adapter: GorgiasAdapter,
                                                                    gorgias: FakeGorgias) -> None:
    ticket_id = str(question(gorgias))
    adapter.reply(ticket_id, "It ships tomorrow.", status="solved")
    assert gorgias.ticket(42)["status"] == "closed"
    assert [m["body_text"] for m in gorgias.messages(42)][-1] == "It ships tomorrow."
    assert [c.method for c in gorgias.calls if c.method in ("create_message", "update_ticket")] == [
        "create_message", "update_ticket"]
    assert adapter.fetch_ticket(ticket_id).status == "solved"


def test_hold_has_no_gorgias_equivalent_and_nothing_is_sent(adapter: GorgiasAdapter, gorgias: FakeGorgias) -> None:
    ticket_id = str(question(gorgias))
    assert registry.plugin("gorgias").statuses == ("open", "pending", "solved")
    with pytest.raises(HelpdeskError, match="no status like 'hold'"):
        adapter.reply(ticket_id, "Hold on.", status="hold")
    with pytest.raises(HelpdeskError):
        adapter.set_status(ticket_id, "hold")
    assert gorgias.calls_to("create_message") == [] and gorgias.calls_to("update_ticket") == []


# -- reading a ticket ----------------------------------------------------------------------------------------

def test_authors_visibility_attachments_html_and_ticket_fields(adapter: GorgiasAdapter, gorgias: FakeGorgias) -> None:
    gorgias.add_ticket(id=7, subject="Broken mug", customer_id=CUSTOMER, priority="critical", tags=["vip", "damage"],
                       messages=[
                           {"from_agent": False, "body_text": "", "stripped_text": "",
                            "body_html": "<p>My mug arrived <b>broken</b>.</p><p>Photo attached&nbsp;!</p>",
                            "attachments": ["mug.jpg"]},
                           {"from_agent": True, "sender_id": FakeGorgias.API_USER_ID, "body_text": "Sorry!"},
                           {"from_agent": True, "sender_id": AGENT, "body_text": "Refund approved", "public": False},
                           {"from_agent": False, "body_text": "Thanks\n\nOn Monday Acme wrote: Sorry!",
                            "stripped_text": "Thanks"}])
    ticket = adapter.fetch_ticket("7")
    assert [(m.author, m.body, m.public) for m in ticket.messages] == [
        ("customer", "My mug arrived broken.\n\nPhoto attached !", True), ("bot", "Sorry!", True),
        ("agent", "Refund approved", False), ("customer", "Thanks", True)]
    assert ticket.messages[0].attachments == ("mug.jpg",)
    assert (ticket.priority, sorted(ticket.tags), ticket.sla_due_at) == ("urgent", ["damage", "vip"], None)
    assert (ticket.requester_name, ticket.requester_email) == ("Ana Customer", "ana@example.com")
    assert ticket.url == "https://acme.gorgias.com/app/ticket/7"


def test_the_bot_is_the_gorgias_email_user_in_any_case(client: httpx.Client, gorgias: FakeGorgias) -> None:
    gorgias.add_ticket(id=8, subject="Hi", customer_id=CUSTOMER, messages=[
        {"from_agent": False, "body_text": "Hello"},
        {"from_agent": True, "sender_id": AGENT, "body_text": "Hi from Bob"}])
    as_bob = make_adapter(client, "BOB@example.com")
    assert [m.author for m in as_bob.fetch_ticket("8").messages] == ["customer", "bot"]
    as_seam = make_adapter(client, gorgias.email)
    assert [m.author for m in as_seam.fetch_ticket("8").messages] == ["customer", "agent"]


def test_a_long_thread_is_read_across_pages_oldest_first(adapter: GorgiasAdapter, gorgias: FakeGorgias) -> None:
    gorgias.add_ticket(id=9, subject="Long", customer_id=CUSTOMER, messages=[
        {"from_agent": bool(i % 2), "sender_id": AGENT, "body_text": f"message {i}"} for i in range(230)])
    ticket = adapter.fetch_ticket("9")
    assert [m.body for m in ticket.messages] == [f"message {i}" for i in range(230)]
    pages = gorgias.calls_to("list_messages")
    assert len(pages) == 3 and all(c.params["limit"] == "100" and c.params["ticket_id"] == "9" for c in pages)


def test_updated_since_reads_newest_first_and_stops_past_since(adapter: GorgiasAdapter, gorgias: FakeGorgias) -> None:
    for ticket_id in range(1, 206):
        question(gorgias, ticket_id)
    since = datetime.fromisoformat(gorgias.ticket(60)["updated_datetime"]).timestamp()
    listed = adapter.updated_since(since)
    assert [t for t, _ in listed] == [str(i) for i in range(60, 206)]  # oldest update first
    assert len(gorgias.calls_to("list_tickets")) == 2  # the third page is older than `since`: never asked for
    assert all(c.params["order_by"] == "updated_datetime:desc" for c in gorgias.calls_to("list_tickets"))


def test_spam_and_trashed_tickets_read_as_discarded_and_reconciliation_leaves_them_out(
        adapter: GorgiasAdapter, gorgias: FakeGorgias) -> None:
    since = time.time() - 60
    question(gorgias, 1)
    question(gorgias, 2, spam=True)
    question(gorgias, 3)
    gorgias.trash(3)
    assert [t for t, _ in adapter.updated_since(since)] == ["1"]
    assert adapter.fetch_ticket("1").status == "open" and not adapter.fetch_ticket("1").discarded
    assert adapter.fetch_ticket("2").status == "spam" and adapter.fetch_ticket("2").discarded
    assert adapter.fetch_ticket("3").status == "deleted" and adapter.fetch_ticket("3").discarded


def test_find_agent_skips_inactive_users_and_customers(adapter: GorgiasAdapter, gorgias: FakeGorgias) -> None:
    gorgias.add_user(id=502, name="Old Agent", email="old@example.com", active=False)
    for i in range(120):  # a second page of users
        gorgias.add_user(id=1000 + i, name=f"Zed {i:03}", email=f"zed{i}@example.com")
    assert adapter.find_agent("old@example.com") is None
    assert adapter.find_agent("ana@example.com") is None
    assert adapter.find_agent("ZED119@example.com").id == "1119"


# -- writing -------------------------------------------------------------------------------------------------

def test_a_reply_goes_back_on_the_customers_channel_and_integration(adapter: GorgiasAdapter,
                                                                     gorgias: FakeGorgias) -> None:
    question(gorgias)
    adapter.reply("42", "It ships tomorrow.\n\nThanks for waiting")
    [message] = sent(gorgias, "create_message")
    assert message["channel"] == "email" and message["via"] == "api" and message["from_agent"] is True
    assert message["sender"] == {"id": FakeGorgias.API_USER_ID} and message["receiver"] == {"id": CUSTOMER}
    assert message["source"] == {"type": "email", "to": [{"address": "ana@example.com"}],
                                 "from": {"address": "support@acme-store.example"}}
    assert message["integration_id"] == 77 and message["subject"] == "Re: Where is my order?"
    assert message["body_html"] == "<p>It ships tomorrow.</p><p>Thanks for waiting</p>"
    gorgias.add_ticket(id=43, subject="Chat", customer_id=CUSTOMER, channel="chat",
                       messages=[{"from_agent": False, "body_text": "hi", "channel": "chat"}])
    adapter.reply("43", "Hello!")
    assert sent(gorgias, "create_message")[-1]["channel"] == "chat" and "subject" not in sent(
        gorgias, "create_message")[-1]


def test_a_note_is_an_internal_note_and_tags_are_added(adapter: GorgiasAdapter, gorgias: FakeGorgias) -> None:
    question(gorgias, tags=["vip"])
    adapter.add_note("42", "Rejected: wrong article")
    [note] = sent(gorgias, "create_message")
    assert (note["channel"], note["public"], note["from_agent"]) == ("internal-note", False, True)
    adapter.add_tags("42", ["seam_seen", "vip", "seam_seen"])
    assert sent(gorgias, "add_tags") == [{"names": ["seam_seen", "vip"]}]
    assert [t["name"] for t in gorgias.ticket(42)["tags"]] == ["vip", "seam_seen"]
    adapter.add_tags("42", [])
    assert len(gorgias.calls_to("add_tags")) == 1


# -- webhooks ------------------------------------------------------------------------------------------------

def body(**fields) -> bytes:
    return json.dumps(fields).encode()


def test_the_secret_in_a_header_or_as_the_basic_auth_password(adapter: GorgiasAdapter) -> None:
    payload = body(ticket_id=42)
    adapter.verify_webhook(headers={"x-seam-webhook-secret": SECRET}, body=payload)
    basic = "Basic " + base64.b64encode(f"gorgias:{SECRET}".encode()).decode()
    adapter.verify_webhook(headers={"authorization": basic}, body=payload)
    for headers in ({}, {"x-seam-webhook-secret": "guess"}, {"authorization": "Basic bm9wZQ=="}):
        with pytest.raises(WebhookAuthError):
            adapter.verify_webhook(headers=headers, body=payload)
    unset = GorgiasAdapter(httpx.Client(), email="x@example.com", webhook_secret="", agent_url="https://a")
    with pytest.raises(WebhookAuthError, match="not configured"):
        unset.verify_webhook(headers={"x-seam-webhook-secret": ""}, body=payload)


def test_the_event_time_must_be_inside_the_window(client: httpx.Client) -> None:
    now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC).timestamp()
    adapter = make_adapter(client, "seam@example.com", clock=lambda: now, tolerance_seconds=300)
    headers = {"x-seam-webhook-secret": SECRET}
    for fresh in ("2026-11-20T09:56:00.123456+00:00", "2026-11-20T10:04:00", {"updated_datetime": None}):
        payload = body(ticket={"id": 1, "updated_datetime": fresh}) if isinstance(fresh, str) else body(**fresh)
        adapter.verify_webhook(headers=headers, body=payload)
    for stale in ("2026-11-20T09:54:59+00:00", "2026-11-20T10:05:01Z"):
        with pytest.raises(WebhookAuthError, match="outside the allowed window"):
            adapter.verify_webhook(headers=headers, body=body(ticket_id=1, updated_datetime=stale))


def test_ticket_ids_and_delivery_keys(adapter: GorgiasAdapter) -> None:
    first = body(ticket_id="42", updated_datetime="2026-11-20T10:00:00.000001+00:00")
    assert adapter.parse_webhook(headers={}, body=first).ticket_id == "42"
    assert adapter.parse_webhook(headers={}, body=body(ticket={"id": 42})).ticket_id == "42"
    again = adapter.parse_webhook(headers={}, body=bytes(first)).delivery_key
    assert again == adapter.parse_webhook(headers={}, body=first).delivery_key
    later = body(ticket_id="42", updated_datetime="2026-11-20T10:00:03.000001+00:00")
    assert adapter.parse_webhook(headers={}, body=later).delivery_key != again
    for bad in (body(ticket_id="{{ticket.id}}"), body(ticket_id=True), body(ticket={"id": None}), b"[1]"):
        with pytest.raises(WebhookPayloadError):
            adapter.parse_webhook(headers={}, body=bad)


# -- knowledge -----------------------------------------------------------------------------------------------

def test_knowledge_is_macros_as_clean_text(adapter: GorgiasAdapter, gorgias: FakeGorgias) -> None:
    gorgias.add_macro(id=11, name="Where is my order",
                      body_html="<p>Hi {{ticket.customer.firstname}},</p><ul><li>Track it here</li></ul>"
                                "<p>Thanks &amp; bye</p>")
    gorgias.add_macro(id=12, name="Plain", body_text="Returns are free for 30 days.")
    gorgias.add_macro(id=13, name="Tag only")  # no reply text: nothing to answer with
    gorgias.add_macro(id=14, name="Old", body_text="Archived answer", archived=True)
    for i in range(105):
        gorgias.add_macro(id=100 + i, name=f"Zz {i:03}", body_text=f"answer {i}")
    articles = {a.id: a for a in adapter.knowledge()}
    assert articles["macro-11"].body == "Hi {{ticket.customer.firstname}},\n\n• Track it here\n\nThanks & bye"
    assert (articles["macro-12"].title, articles["macro-12"].body) == ("Plain", "Returns are free for 30 days.")
    assert "macro-13" not in articles and "macro-14" not in articles
    assert len(articles) == 107 and len(gorgias.calls_to("list_macros")) == 2


def test_a_macro_listing_longer_than_max_pages_is_refused_and_the_sync_keeps_what_it_had(
        adapter: GorgiasAdapter, gorgias: FakeGorgias, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(201):  # three pages of 100
        gorgias.add_macro(id=100 + i, name=f"Macro {i:03}", body_text=f"answer {i}")
    store = Store(":memory:")
    assert sync_knowledge(store, adapter).added == 201
    monkeypatch.setattr(gorgias_adapter, "MAX_PAGES", 2)
    with pytest.raises(HelpdeskError, match="more than 2 pages"):
        adapter.knowledge()
    with pytest.raises(HelpdeskError):
        sync_knowledge(store, adapter)
    assert len(store.synced_articles("gorgias")) == 201, "nothing beyond page 2 is retired"


def test_a_macro_listing_that_is_not_a_page_is_refused_not_taken_for_an_empty_one(
        adapter: GorgiasAdapter, gorgias: FakeGorgias) -> None:
    gorgias.add_macro(id=100, name="Refunds", body_text="Refunds take 5 days.")
    store = Store(":memory:")
    assert sync_knowledge(store, adapter).added == 1
    gorgias.fail("list_macros", status=200, body=["not", "a", "page"])
    with pytest.raises(HelpdeskError, match="not a page"):
        sync_knowledge(store, adapter)
    assert len(store.synced_articles("gorgias")) == 1, "the macro is not retired"


# -- pacing and Retry-after ----------------------------------------------------------------------------------

def test_paced_to_the_bucket_no_request_is_refused(client: httpx.Client, gorgias: FakeGorgias) -> None:
    question(gorgias)
    gorgias.rate_limit(capacity=4, per_second=4)
    # Like the default (a burst of 20 against Gorgias's 40), the pacer leaves the bucket headroom for jitter.
    paced = make_adapter(client, gorgias.email, pacer=ChannelPacer(rate=3, burst=2))
    started = time.monotonic()
    for _ in range(10):
        paced._ticket("42")
    assert time.monotonic() - started >= 2.5  # 10 requests at 3 a second after a burst of 2
    assert all(c.status == 200 for c in gorgias.calls_to("get_ticket"))


def test_unpaced_the_429_retry_after_is_honoured(client: httpx.Client, gorgias: FakeGorgias) -> None:
    question(gorgias)
    gorgias.rate_limit(capacity=2, per_second=0.5)
    unpaced = make_adapter(client, gorgias.email)
    started = time.monotonic()
    for _ in range(3):
        unpaced._ticket("42")
    statuses = [c.status for c in gorgias.calls_to("get_ticket")]
    assert statuses == [200, 200, 429, 200]
    assert time.monotonic() - started >= 1.9  # waited the Retry-after of 2 s


def test_from_settings_paces_to_the_documented_default_and_0_turns_it_off() -> None:
    own = GorgiasSettings(domain="acme", email="seam@acme.example", api_key="k", webhook_secret="s")

    def built(limits: HelpdeskTable) -> GorgiasAdapter:
        settings = SimpleNamespace(helpdesk_settings=own, helpdesk_limits=limits, webhook_tolerance_seconds=120)
        return GorgiasAdapter.from_settings(settings, client=httpx.Client())

    default = built(HelpdeskTable())
    assert default._pacer._interval == pytest.approx(0.5) and default._write_pacer is None
    assert default._tolerance == 120 and default.ticket_link("5") == "https://acme.gorgias.com/app/ticket/5"
    off = built(HelpdeskTable(requests_per_minute=0, updates_per_minute=0))
    assert off._pacer is None and off._write_pacer is None
    assert built(HelpdeskTable(updates_per_minute=30))._write_pacer._interval == pytest.approx(2.0)


def test_settings_from_the_environment() -> None:
    env = {"GORGIAS_DOMAIN": "https://acme.gorgias.com/app", "GORGIAS_EMAIL": "seam@acme.example"}
    settings = GorgiasSettings.from_env(env.get)
    assert (settings.domain, settings.base_url, settings.agent_url) == (
        "acme", "https://acme.gorgias.com", "https://acme.gorgias.com")
    assert settings.missing() == ["GORGIAS_API_KEY", "GORGIAS_WEBHOOK_SECRET"]
    tests = GorgiasSettings.from_env({**env, "GORGIAS_API_URL": "http://127.0.0.1:9/"}.get)
    assert (tests.base_url, tests.agent_url) == ("http://127.0.0.1:9", "https://acme.gorgias.com")


# -- the importer ----------------------------------------------------------------------------------------------

def message(mid: int, ticket_id: int, from_agent: bool, text: str, *, at: str, public: bool = True, **extra) -> dict:
    return {"id": mid, "ticket_id": ticket_id, "from_agent": from_agent, "public": public,
            "channel": "email" if public else "internal-note", "via": "email", "body_text": text,
            "body_html": f"<div>{text}</div>", "stripped_text": text, "created_datetime": at,
            "sender": {"id": 1 if from_agent else CUSTOMER}, "attachments": [], **extra}


def gticket(ticket_id: int, status: str = "closed", *, updated: str = "2026-11-02T00:00:00.000000+00:00",
            **extra) -> dict:
    return {"id": ticket_id, "uri": f"/api/tickets/{ticket_id}/", "subject": f"Question {ticket_id}",
            "status": status, "priority": "high", "channel": "email", "via": "email", "spam": False,
            "customer": {"id": CUSTOMER, "email": "ana@example.com", "name": None, "firstname": "Ana",
                         "lastname": "Customer"},
            "tags": [{"id": 1, "name": "shipping"}], "created_datetime": "2026-11-01T09:00:00.000000+00:00",
            "updated_datetime": updated, "snooze_datetime": None, "trashed_datetime": None, **extra}


@pytest.fixture
def gorgias_dump(tmp_path: Path) -> Path:
    folder = tmp_path / "dump"
    (folder / "messages").mkdir(parents=True)
    older = gticket(1, "open", updated="2026-11-01T10:00:00.000000+00:00")
    tickets = {"data": [older, gticket(1), gticket(2, "open"), gticket(3, trashed_datetime="2026-11-03T00:00:00"),
                        {"id": None, "subject": "x"}, "junk"],
               "object": "list", "uri": "/api/tickets", "meta": {"next_cursor": None, "prev_cursor": None}}
    (folder / "tickets.json").write_text(json.dumps(tickets), encoding="utf-8")
    page = {"data": [message(10, 1, False, "Where is order 77?", at="2026-11-01T09:00:00+00:00"),
                     message(11, 1, True, "Checking", at="2026-11-01T09:05:00+00:00", public=False),
                     message(12, 1, True, "It left today.", at="2026-11-01T09:10:00+00:00",
                             macros=[{"id": 31}]),
                     {"id": 13, "from_agent": False, "body_text": "orphan"}],
            "object": "list", "uri": "/api/messages", "meta": {"next_cursor": None}}
    (folder / "messages" / "1.jsonl").write_text(json.dumps(page) + "\n", encoding="utf-8")
    full = {**gticket(4), "messages": [
        message(40, 4, False, "", at="2026-11-01T08:00:00+00:00", stripped_text="",
                body_html="<p>Can I <b>return</b> a gift?</p>"),
        message(41, 4, True, "Yes, within 30 days.", at="2026-11-01T08:30:00+00:00")]}
    (folder / "ticket-4.json").write_text(json.dumps(full), encoding="utf-8")
    (folder / "users.json").write_text(json.dumps({"data": [{"id": 1, "email": "a@b"}], "uri": "/api/users"}))
    (folder / "open-2.json").write_text(json.dumps(message(20, 2, False, "Is it in stock?",
                                                           at="2026-11-01T07:00:00+00:00")))
    return folder


def test_importer_builds_contract_tickets_with_resolutions(gorgias_dump: Path) -> None:
    result = import_gorgias([gorgias_dump], domain="acme", now=0)
    by_id = {t["id"]: t for t in result.tickets}
    assert sorted(by_id) == ["1", "2", "4"]  # 3 is trashed
    closed = by_id["1"]
    assert closed["status"] == "solved" and closed["priority"] == "high" and closed["tags"] == ["shipping"]
    assert closed["requester"] == {"name": "Ana Customer", "email": "ana@example.com"}
    assert [(m["author"], m["body"], m["public"]) for m in closed["messages"]] == [
        ("customer", "Where is order 77?", True), ("agent", "Checking", False)]
    assert closed["resolution"] == {"answer_id": "macro-31", "answer": "It left today."}
    assert closed["url"] == "https://acme.gorgias.com/app/ticket/1"
    assert by_id["4"]["messages"][0]["body"] == "Can I return a gift?"
    assert by_id["4"]["resolution"] == {"answer_id": None, "answer": "Yes, within 30 days."}
    assert "resolution" not in by_id["2"] and by_id["2"]["status"] == "open"
    assert any("record 5: ticket has no id" in p for p in result.problems)
    assert any("record 6: not a JSON object" in p for p in result.problems)
    assert any("record 4: neither a ticket nor a message" in p for p in result.problems)
    assert any("trashed or spam" in n for n in result.notes)
    assert [t["id"] for t in import_gorgias([gorgias_dump], resolved_only=True).tickets] == ["1", "4"]


def test_importer_output_loads_and_bad_input_is_one_error(gorgias_dump: Path, tmp_path: Path) -> None:
    write_jsonl(import_gorgias([gorgias_dump]).tickets, tmp_path / "tickets.jsonl")
    tickets, problems = read_tickets(tmp_path / "tickets.jsonl")
    assert (len(tickets), problems) == (3, [])
    (tmp_path / "only-open.json").write_text(json.dumps({"data": [gticket(9, "open")], "uri": "/api/tickets"}))
    with pytest.raises(InputError, match="no ticket is closed"):
        import_gorgias([tmp_path / "only-open.json"], resolved_only=True)
    (tmp_path / "other.json").write_text(json.dumps({"tickets": []}))
    with pytest.raises(InputError, match="not a Gorgias API page"):
        import_gorgias([tmp_path / "other.json"])


def test_cli_import_gorgias(gorgias_dump: Path, tmp_path: Path) -> None:
    done = run_bot("import", "gorgias", str(gorgias_dump), "--out", str(tmp_path / "out.jsonl"), "--resolved-only",
                   "--domain", "acme.gorgias.com", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "wrote 2 ticket(s) (2 with a resolution)" in done.stderr
    assert "left out 1 open ticket (--resolved-only)" in done.stderr
    tickets, problems = read_tickets(tmp_path / "out.jsonl")
    assert (len(tickets), problems) == (2, []) and tickets[0].url == "https://acme.gorgias.com/app/ticket/1"
