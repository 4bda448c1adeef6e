"""The Freshdesk adapter and importer against a loopback FakeFreshdesk: the shared-secret webhook and its body,
status and priority codes, who wrote what, pagination, knowledge cleaning, pacing and retries, and API dumps."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from bot.config import HelpdeskTable, Settings, load_settings
from bot.errors import InputError
from bot.helpdesk import registry
from bot.helpdesk.base import THREAD_CUT, Agent, HelpdeskError, WebhookAuthError, WebhookPayloadError
from bot.helpdesk.freshdesk import adapter as freshdesk_adapter
from bot.helpdesk.freshdesk.adapter import FreshdeskAdapter, text_to_html
from bot.helpdesk.freshdesk.importer import import_freshdesk
from bot.helpdesk.freshdesk.settings import FreshdeskSettings
from bot.jobs.knowledge import sync_knowledge
from bot.models import Ticket
from bot.pacing import ChannelPacer
from bot.store import Store
from tests.support.cli import run_bot
from tests.support.fakes import FakeFreshdesk

SECRET = "fd-webhook-secret"
CUSTOMER = 1001
CC_CONTACT = 1002
AGENT = 77
API = FakeFreshdesk.API_AGENT_ID


@pytest.fixture
def freshdesk() -> Iterator[FakeFreshdesk]:
    with FakeFreshdesk() as fake:
        fake.add_contact(id=CUSTOMER, name="Ana Customer", email="ana@example.com")
        fake.add_contact(id=CC_CONTACT, name="Ben Colleague", email="ben@example.com")
        fake.add_agent(id=AGENT, name="Bob Agent", email="Bob.Agent@example.com")
        yield fake


@pytest.fixture
def client(freshdesk: FakeFreshdesk) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=freshdesk.url, auth=freshdesk.auth, timeout=2) as c:
        yield c


def make_adapter(client: httpx.Client, **kwargs) -> FreshdeskAdapter:
    return FreshdeskAdapter(client, webhook_secret=SECRET, agent_url="https://acme.freshdesk.com/",
                            retry_deadline=kwargs.pop("retry_deadline", 3.0), **kwargs)


@pytest.fixture
def adapter(client: httpx.Client) -> FreshdeskAdapter:
    return make_adapter(client)


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


BODY = json.dumps({"ticket_id": "42", "latest_public_comment": "<div>Where is my parcel?</div>"}).encode()


# -- webhooks ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [basic("seam", SECRET), basic("", SECRET), {"x-seam-webhook-secret": SECRET}],
                         ids=["basic-password", "basic-no-user", "header"])
def test_the_secret_is_accepted_as_basic_auth_password_or_header(adapter: FreshdeskAdapter, headers: dict) -> None:
    adapter.verify_webhook(headers=headers, body=BODY)


@pytest.mark.parametrize("headers", [{}, basic(SECRET, "X"), basic("seam", "wrong"), {"x-seam-webhook-secret": ""},
                                     {"authorization": "Bearer " + SECRET}],
                         ids=["none", "api-key-style", "wrong-password", "empty-header", "bearer"])
def test_anything_but_the_secret_is_refused(adapter: FreshdeskAdapter, headers: dict) -> None:
    # "I have an API key" in the rule sends `key:X`: the password is X, not the secret.
    with pytest.raises(WebhookAuthError):
        adapter.verify_webhook(headers=headers, body=BODY)


def test_an_adapter_without_a_secret_refuses_every_webhook(client: httpx.Client) -> None:
    adapter = FreshdeskAdapter(client, webhook_secret="", agent_url="https://acme.freshdesk.com")
    with pytest.raises(WebhookAuthError):
        adapter.verify_webhook(headers=basic("seam", ""), body=BODY)


@pytest.mark.parametrize("payload", [{"ticket_id": "42"}, {"ticket_id": 42}, {"ticket": {"id": 42}},
                                     {"freshdesk_webhook": {"ticket_id": "42", "ticket_subject": "Help"}}],
                         ids=["string", "number", "ticket.id", "zulip-style"])
def test_the_ticket_id_is_read_from_the_documented_places(adapter: FreshdeskAdapter, payload: dict) -> None:
    body = json.dumps(payload).encode()
    assert adapter.parse_webhook(headers={}, body=body).ticket_id == "42"


@pytest.mark.parametrize("ticket_id", ["{{ticket.id}}", "#42", "0", -3, "", True, None, 4.2])
def test_a_ticket_id_that_is_not_a_positive_integer_is_refused(adapter: FreshdeskAdapter, ticket_id: object) -> None:
    # An unrendered placeholder means the rule's content is not the Advanced JSON template.
    body = json.dumps({"ticket_id": ticket_id}).encode()
    with pytest.raises(WebhookPayloadError):
        adapter.parse_webhook(headers={}, body=body)


def test_the_delivery_key_follows_the_body_and_its_per_event_fields(adapter: FreshdeskAdapter) -> None:
    again = adapter.parse_webhook(headers=basic("seam", SECRET), body=bytes(BODY))
    first = adapter.parse_webhook(headers={}, body=BODY)
    later = json.dumps({"ticket_id": "42", "latest_public_comment": "<div>Any news?</div>"}).encode()
    assert first.delivery_key == again.delivery_key  # headers play no part: a redelivery is the same bytes
    assert adapter.parse_webhook(headers={}, body=later).delivery_key != first.delivery_key


# -- reading a ticket --------------------------------------------------------------------------------------


def test_fetch_ticket_tells_customer_agent_and_bot_apart_and_reads_html(freshdesk: FakeFreshdesk,
                                                                        adapter: FreshdeskAdapter) -> None:
    freshdesk.add_ticket(
        id=7, subject="Cannot log in", requester_id=CUSTOMER, description="I cannot log in", priority=3,
        tags=["login", "vip"], attachments=["screenshot.png"], fr_due_by="2026-11-20T12:00:00Z",
        due_by="2026-11-22T10:00:00Z",
        conversations=[{"user_id": API, "body": "Try resetting your password."},
                       {"user_id": AGENT, "html": "<div>Checking the <b>SSO</b> logs&nbsp;&amp; more</div>",
                        "private": True},
                       {"user_id": CC_CONTACT, "body": "Same here on my account.", "incoming": True},
                       {"user_id": CUSTOMER, "html": "<p>Still broken.<br>See log.</p>", "incoming": True,
                        "attachments": ["error.log"]},
                       {"user_id": AGENT, "body": "Fixed on our side."}])
    ticket = adapter.fetch_ticket("7")
    assert [(m.author, m.public) for m in ticket.messages] == [
        ("customer", True), ("bot", True), ("agent", False), ("customer", True), ("customer", True),
        ("agent", True)]
    assert [m.body for m in ticket.messages][2:5] == ["Checking the SSO logs & more", "Same here on my account.",
                                                      "Still broken.\nSee log."]
    assert ticket.messages[0].attachments == ("screenshot.png",) and ticket.messages[4].attachments == ("error.log",)
    assert (ticket.requester_name, ticket.requester_email) == ("Ana Customer", "ana@example.com")
    assert (ticket.priority, ticket.status, ticket.tags) == ("high", "open", ("login", "vip"))
    assert ticket.url == "https://acme.freshdesk.com/a/tickets/7" == adapter.ticket_link("7")
    assert ticket.sla_due_at == "2026-11-22T10:00:00Z", "answered: the resolution due time applies"
    assert ticket.messages[0].id == "description" and len({m.id for m in ticket.messages}) == 6


def test_an_unanswered_ticket_is_due_at_its_first_response_time(freshdesk: FakeFreshdesk,
                                                                 adapter: FreshdeskAdapter) -> None:
    freshdesk.add_ticket(id=8, subject="Refund", requester_id=CUSTOMER, description="Refund please",
                         fr_due_by="2026-11-20T12:00:00Z", due_by="2026-11-22T10:00:00Z")
    assert adapter.fetch_ticket("8").sla_due_at == "2026-11-20T12:00:00Z"


@pytest.mark.parametrize("code, word", [(2, "open"), (3, "pending"), (4, "solved"), (5, "closed"), (6, "status-6")])
def test_status_codes_read_as_seam_words(freshdesk: FakeFreshdesk, adapter: FreshdeskAdapter, code: int,
                                         word: str) -> None:
    freshdesk.add_ticket(id=9, subject="s", requester_id=CUSTOMER, description="d", status=code)
    assert adapter.fetch_ticket("9").status == word


@pytest.mark.parametrize("code, word", [(1, "low"), (2, "normal"), (3, "high"), (4, "urgent")])
def test_priority_codes_read_as_seam_words(freshdesk: FakeFreshdesk, adapter: FreshdeskAdapter, code: int,
                                           word: str) -> None:
    freshdesk.add_ticket(id=10, subject="s", requester_id=CUSTOMER, description="d", priority=code)
    assert adapter.fetch_ticket("10").priority == word


def test_an_outbound_email_opens_with_the_agent(freshdesk: FakeFreshdesk, adapter: FreshdeskAdapter) -> None:
    freshdesk.add_ticket(id=11, subject="Your renewal", requester_id=CUSTOMER, description="Your plan renews soon.",
                         source=10, conversations=[{"user_id": CUSTOMER, "body": "Thanks!", "incoming": True}])
    assert [m.author for m in adapter.fetch_ticket("11").messages] == ["agent", "customer"]


def test_a_ticket_marked_spam_reads_as_discarded(freshdesk: FakeFreshdesk, adapter: FreshdeskAdapter) -> None:
    freshdesk.add_ticket(id=31, subject="WIN A PRIZE", requester_id=CUSTOMER, description="Click here", spam=True)
    freshdesk.add_ticket(id=32, subject="Order", requester_id=CUSTOMER, description="Where is it?")
    assert adapter.fetch_ticket("31").status == "spam" and adapter.fetch_ticket("31").discarded
    assert adapter.fetch_ticket("32").status == "open" and not adapter.fetch_ticket("32").discarded


def test_fetch_ticket_follows_conversation_pages(freshdesk: FakeFreshdesk, adapter: FreshdeskAdapter) -> None:
    freshdesk.add_ticket(id=12, subject="Long", requester_id=CUSTOMER, description="start",
                         conversations=[{"user_id": AGENT if i % 2 else CUSTOMER, "body": f"message {i}",
                                         "incoming": not i % 2} for i in range(250)])
    ticket = adapter.fetch_ticket("12")
    assert [m.body for m in ticket.messages] == ["start", *(f"message {i}" for i in range(250))]
    calls = freshdesk.calls_to("list_conversations")
    assert len(calls) == 3 and calls[0].params["per_page"] == "100"


class ElsewhereFreshdesk(FakeFreshdesk):
    """Freshdesk whose next-page links name another host (as behind a proxy, or a forged answer): the adapter must
    not take its key there, and reads the link's path and query from the host it was configured with."""

    def _paged(self, req, items, **kwargs):
        status, headers, page = super()._paged(req, items, **kwargs)
        if "Link" in headers:
            headers["Link"] = headers["Link"].replace(self.url, "https://attacker.example")
        return status, headers, page


def test_pagination_never_follows_a_link_to_another_host() -> None:
    with ElsewhereFreshdesk() as fake, httpx.Client(base_url=fake.url, auth=fake.auth, timeout=2) as c:
        fake.add_contact(id=CUSTOMER, name="Ana", email="ana@example.com")
        fake.add_ticket(id=13, subject="s", requester_id=CUSTOMER, description="d",
                        conversations=[{"user_id": CUSTOMER, "body": f"m{i}", "incoming": True} for i in range(150)])
        ticket = make_adapter(c).fetch_ticket("13")
        second = fake.calls_to("list_conversations")[1]
    assert len(ticket.messages) == 151 and ticket.problems == ()  # every page, from the configured host
    assert second.params["page"] == "2" and second.ok


def test_the_api_agent_is_looked_up_once(freshdesk: FakeFreshdesk, adapter: FreshdeskAdapter) -> None:
    freshdesk.add_ticket(id=14, subject="s", requester_id=CUSTOMER, description="d")
    adapter.fetch_ticket("14")
    adapter.fetch_ticket("14")
    assert len(freshdesk.calls_to("me")) == 1


def test_updated_since_pages_through_tickets_updated_at_or_after_the_time(freshdesk: FakeFreshdesk,
                                                                         adapter: FreshdeskAdapter) -> None:
    for ticket_id in range(1, 131):
        freshdesk.add_ticket(id=ticket_id, subject="s", requester_id=CUSTOMER, description="d")
    since = time.time() - 3600
    listed = adapter.updated_since(since)
    assert [t for t, _ in listed] == [str(i) for i in range(1, 131)]
    first = freshdesk.calls_to("list_tickets")[0].params
    assert (first["order_by"], first["order_type"], first["per_page"]) == ("updated_at", "asc", "100")
    assert first["updated_since"].endswith("Z") and len(freshdesk.calls_to("list_tickets")) == 2
    assert adapter.updated_since(time.time() + 3600) == []


def test_a_listing_past_the_page_limit_says_where_to_go_on(freshdesk: FakeFreshdesk, adapter: FreshdeskAdapter,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for ticket_id in range(1, 131):
        freshdesk.add_ticket(id=ticket_id, subject="s", requester_id=CUSTOMER, description="d")
    since = time.time() - 3600
    monkeypatch.setattr(freshdesk_adapter, "MAX_PAGES", 1)
    listed = adapter.updated_since(since)
    assert [t for t, _ in listed] == [str(i) for i in range(1, 101)]
    # Oldest first: everything updated before the last update read was read.
    last = datetime.fromisoformat(listed[-1][1].replace("Z", "+00:00")).timestamp()
    assert listed.resume_from == last >= since
    monkeypatch.setattr(freshdesk_adapter, "MAX_PAGES", 50)
    assert adapter.updated_since(since).resume_from is None


def test_a_ticket_updated_while_the_list_is_read_pushes_none_past_the_reader(freshdesk: FakeFreshdesk,
                                                                            adapter: FreshdeskAdapter) -> None:
    """Paged by number, ticket 50 updated once page 1 is read moves to the end, and ticket 101, first on page 2,
    slides onto page 1, never to be seen (an update on a page not read yet, ticket 150's, moves nothing read). The
    list is read by update time instead."""
    for ticket_id in range(1, 251):
        freshdesk.add_ticket(id=ticket_id, subject="s", requester_id=CUSTOMER, description="d")
    freshdesk.after_answer("list_tickets", lambda: (freshdesk.update_ticket(50, status=3),
                                                    freshdesk.update_ticket(150, status=3)))
    listed = adapter.updated_since(time.time() - 3600)
    assert {t for t, _ in listed} == {str(i) for i in range(1, 251)}, "ticket 101 is not skipped"
    assert {("50", freshdesk.ticket(50)["updated_at"]), ("150", freshdesk.ticket(150)["updated_at"])} <= set(listed)
    assert len(listed) == len(set(listed)) and listed.resume_from is None
    asked = freshdesk.calls_to("list_tickets")
    assert all(c.params.get("page", "1") == "1" for c in asked) and len(asked) == 3
    assert asked[1].params["updated_since"] == freshdesk.ticket(100)["updated_at"]


def test_more_tickets_at_one_second_than_a_page_holds_are_paged_within_that_second(freshdesk: FakeFreshdesk,
                                                                                  adapter: FreshdeskAdapter,
                                                                                  monkeypatch: pytest.MonkeyPatch):
    moment = "2026-01-05T10:00:00Z"
    for ticket_id in range(1, 251):  # a bulk update: 250 tickets, one second
        freshdesk.add_ticket(id=ticket_id, subject="s", requester_id=CUSTOMER, description="d", created_at=moment)
    for ticket_id in range(251, 371):
        freshdesk.add_ticket(id=ticket_id, subject="s", requester_id=CUSTOMER, description="d")
    since = datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp() - 60
    listed = adapter.updated_since(since)
    assert [t for t, _ in listed] == [str(i) for i in range(1, 371)] and listed.resume_from is None
    asked = [(c.params["updated_since"], c.params.get("page", "1")) for c in freshdesk.calls_to("list_tickets")]
    assert asked[:4] == [(freshdesk_adapter.iso_stamp(since), "1"), (moment, "1"), (moment, "2"), (moment, "3")]
    assert len(asked) == 5  # page 3 goes past the second: a new list from the last update it shows
    # Deeper than Freshdesk pages: cut, and the next check asks from that second again.
    freshdesk.clear_calls()
    monkeypatch.setattr(freshdesk_adapter, "LIST_PAGE_CAP", 2)
    cut = adapter.updated_since(since)
    assert len(cut) == 200 and cut.resume_from == since + 60
    assert len(freshdesk.calls_to("list_tickets")) == 3


@pytest.mark.parametrize("spelling", [str.lower, str.upper, str], ids=["lower", "upper", "as-stored"])
def test_find_agent_matches_email_in_any_case(adapter: FreshdeskAdapter, spelling) -> None:
    assert adapter.find_agent(spelling("Bob.Agent@example.com")) == Agent(id=str(AGENT), name="Bob Agent",
                                                                          email="Bob.Agent@example.com")


def test_find_agent_skips_agents_who_never_activated_and_customers(freshdesk: FakeFreshdesk,
                                                                  adapter: FreshdeskAdapter) -> None:
    freshdesk.add_agent(id=78, name="New Hire", email="new@example.com", active=False)
    assert adapter.find_agent("new@example.com") is None
    assert adapter.find_agent("ana@example.com") is None


# -- writes and status mapping -----------------------------------------------------------------------------


def write_calls(fake: FakeFreshdesk) -> list[tuple[str, dict]]:
    return [(c.method, json.loads(c.body)) for c in fake.calls if c.http_method in ("POST", "PUT")]


def test_plugin_offers_the_statuses_freshdesk_has() -> None:
    assert registry.plugin("freshdesk").statuses == ("open", "pending", "solved")


@pytest.mark.parametrize("word, code", [("solved", 4), ("pending", 3), ("open", 2)])
def test_reply_with_a_status_posts_the_reply_then_sets_the_code(freshdesk: FakeFreshdesk, adapter: FreshdeskAdapter,
                                                                word: str, code: int) -> None:
    freshdesk.add_ticket(id=20, subject="s", requester_id=CUSTOMER, description="d", status=2 if code != 2 else 3)
    adapter.reply("20", "Use <the> reset link.\nThanks!", status=word)
    assert write_calls(freshdesk) == [("reply", {"body": "<p>Use &lt;the&gt; reset link.<br>Thanks!</p>"}),
                                      ("update_ticket", {"status": code})]
    latest = adapter.fetch_ticket("20").messages[-1]
    assert (latest.author, latest.body, latest.public) == ("bot", "Use <the> reset link.\nThanks!", True)
    assert freshdesk.ticket(20)["status"] == code


def test_a_status_freshdesk_has_no_code_for_is_refused_before_anything_is_written(freshdesk: FakeFreshdesk,
                                                                                  adapter: FreshdeskAdapter) -> None:
    freshdesk.add_ticket(id=21, subject="s", requester_id=CUSTOMER, description="d")
    with pytest.raises(HelpdeskError):
        adapter.reply("21", "Answer", status="hold")
    assert write_calls(freshdesk) == []


def test_note_assign_status_and_tags_use_the_documented_fields(freshdesk: FakeFreshdesk,
                                                               adapter: FreshdeskAdapter) -> None:
    freshdesk.add_ticket(id=22, subject="s", requester_id=CUSTOMER, description="d", tags=["vip"])
    adapter.add_note("22", "Rejected: wrong article")
    adapter.assign("22", str(AGENT))
    adapter.set_status("22", "pending")
    adapter.add_tags("22", ["vip", "seam_escalated"])
    adapter.add_tags("22", ["seam_escalated"])  # nothing new: no write
    assert write_calls(freshdesk) == [("add_note", {"body": "<p>Rejected: wrong article</p>", "private": True}),
                                      ("update_ticket", {"responder_id": AGENT}),
                                      ("update_ticket", {"status": 3}),
                                      ("update_ticket", {"tags": ["vip", "seam_escalated"]})]
    with pytest.raises(HelpdeskError):
        adapter.assign("22", "bob@example.com")


def test_text_to_html_keeps_paragraphs_and_reads_back_the_same() -> None:
    from bot.text import html_to_text

    text = "Hello Ana,\n\nStep 1: open <Settings> & reset.\nStep 2: sign in.\n\nThanks"
    assert html_to_text(text_to_html(text)) == text


# -- knowledge ---------------------------------------------------------------------------------------------


def test_knowledge_is_published_customer_facing_articles_and_canned_responses_as_text(
        freshdesk: FakeFreshdesk, adapter: FreshdeskAdapter) -> None:
    freshdesk.add_category(id=1, name="General")
    freshdesk.add_folder(id=10, category_id=1, name="FAQ")
    freshdesk.add_folder(id=11, category_id=1, name="Internal", visibility=3)
    freshdesk.add_article(id=100, folder_id=10, title="Reset your password",
                          html_body="<h2>Steps</h2><ol><li>Open <b>Settings</b></li><li>Click &quot;Reset&quot;</li>"
                                    "</ol><script>track()</script>")
    freshdesk.add_article(id=101, folder_id=10, title="Draft", html_body="<p>Not yet</p>", status=1)
    freshdesk.add_article(id=102, folder_id=11, title="Escalation matrix", html_body="<p>Call Bob</p>")
    for i in range(35):  # more than one page of 30
        freshdesk.add_article(id=200 + i, folder_id=10, title=f"Article {i}", html_body=f"<p>Body {i}</p>")
    freshdesk.add_canned_folder(id=5, name="General")
    freshdesk.add_canned_response(id=50, folder_id=5, title="Refund status",
                                  html_body="<div>Refunds take 5&ndash;7 days.<br>Thanks</div>")
    articles = {a.id: a for a in adapter.knowledge()}
    assert articles["article-100"].title == "Reset your password"
    assert articles["article-100"].body == "Steps\n\n• Open Settings\n• Click \"Reset\""
    assert "article-101" not in articles and "article-102" not in articles
    assert {f"article-{200 + i}" for i in range(35)} <= set(articles)
    assert articles["macro-50"].body == "Refunds take 5–7 days.\nThanks"


def knowledge_pages(freshdesk: FakeFreshdesk, kind: str, count: int) -> None:
    """`count` published articles in one folder, or `count` canned responses in one folder (30 a page)."""
    freshdesk.add_category(id=1, name="General")
    freshdesk.add_folder(id=10, category_id=1, name="FAQ")
    freshdesk.add_canned_folder(id=5, name="General")
    for i in range(count):
        if kind == "article":
            freshdesk.add_article(id=100 + i, folder_id=10, title=f"Article {i}", html_body=f"<p>Body {i}</p>")
        else:
            freshdesk.add_canned_response(id=100 + i, folder_id=5, title=f"Reply {i}", html_body=f"<p>Body {i}</p>")


@pytest.mark.parametrize("kind", ["article", "macro"])
def test_a_knowledge_listing_longer_than_max_pages_is_refused_and_the_sync_keeps_what_it_had(
        freshdesk: FakeFreshdesk, adapter: FreshdeskAdapter, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    knowledge_pages(freshdesk, kind, 61)  # three pages of 30
    store = Store(":memory:")
    assert sync_knowledge(store, adapter).added == 61
    monkeypatch.setattr(freshdesk_adapter, "MAX_PAGES", 2)
    with pytest.raises(HelpdeskError, match="more than 2 pages"):
        adapter.knowledge()
    with pytest.raises(HelpdeskError):
        sync_knowledge(store, adapter)
    assert len(store.synced_articles("freshdesk")) == 61, "nothing beyond page 2 is retired"
    # A ticket's thread stops at MAX_PAGES too, and says so: the ticket escalates rather than be decided on part.
    freshdesk.add_ticket(id=12, subject="Long", requester_id=CUSTOMER, description="start",
                         conversations=[{"user_id": CUSTOMER, "body": f"m{i}", "incoming": True} for i in range(250)])
    ticket = adapter.fetch_ticket("12")
    assert len(ticket.messages) == 201 and ticket.problems == (THREAD_CUT,)


def test_a_knowledge_listing_linking_to_another_host_is_read_from_the_configured_one() -> None:
    with ElsewhereFreshdesk() as fake, httpx.Client(base_url=fake.url, auth=fake.auth, timeout=2) as c:
        knowledge_pages(fake, "article", 31)
        assert len(make_adapter(c).knowledge()) == 31


# -- pacing and retries ------------------------------------------------------------------------------------


def recording_pacer(waits: list[float], *, per_minute: float, burst: int = 1) -> ChannelPacer:
    return ChannelPacer(rate=per_minute / 60, burst=burst, clock=lambda: 0.0, sleep=waits.append)


def test_ticket_writes_and_ticket_listing_each_keep_their_own_pace(freshdesk: FakeFreshdesk,
                                                                   client: httpx.Client) -> None:
    updates: list[float] = []
    listing: list[float] = []
    adapter = make_adapter(client, update_pacer=recording_pacer(updates, per_minute=60),
                           list_pacer=recording_pacer(listing, per_minute=20))
    freshdesk.add_ticket(id=30, subject="s", requester_id=CUSTOMER, description="d")
    adapter.fetch_ticket("30")
    assert updates == [] and listing == [], "reads of a ticket are neither writes nor listings"
    adapter.set_status("30", "pending")
    adapter.reply("30", "Hi")
    assert updates == [pytest.approx(1.0)], "the second write in the same second waits a slot"
    adapter.updated_since(0)
    adapter.updated_since(0)
    assert listing == [pytest.approx(3.0)], "20 lists a minute: the second waits three seconds"


def test_from_settings_paces_to_growth_limits_by_default_and_not_at_all_at_zero(tmp_path: Path) -> None:
    env = {"HELPDESK": "freshdesk", "FRESHDESK_DOMAIN": "acme", "FRESHDESK_API_KEY": "k",
           "FRESHDESK_WEBHOOK_SECRET": "s"}
    settings = load_settings(env, cwd=tmp_path)
    assert settings.helpdesk_settings == FreshdeskSettings(domain="acme", api_key="k", webhook_secret="s")
    adapter = registry.plugin("freshdesk").build(settings)
    assert adapter.ticket_link("5") == "https://acme.freshdesk.com/a/tickets/5"
    assert all(p is not None for p in (adapter._pacer, adapter._update_pacer, adapter._list_pacer))
    off = FreshdeskAdapter.from_settings(Settings(helpdesk="freshdesk", helpdesk_settings=settings.helpdesk_settings,
                                                  helpdesk_limits=HelpdeskTable(requests_per_minute=0,
                                                                                updates_per_minute=0)))
    assert (off._pacer, off._update_pacer, off._list_pacer) == (None, None, None)


def test_a_429_is_retried_after_retry_after(freshdesk: FakeFreshdesk, adapter: FreshdeskAdapter) -> None:
    freshdesk.add_ticket(id=31, subject="s", requester_id=CUSTOMER, description="d")
    freshdesk.fail("reply", status=429, headers={"Retry-After": "1"})
    started = time.monotonic()
    adapter.reply("31", "Answer")
    assert time.monotonic() - started >= 0.9
    assert [c["body_text"] for c in freshdesk.conversations(31)] == ["Answer"]


def test_a_gateway_error_on_a_reply_is_not_repeated_but_on_a_read_it_is(freshdesk: FakeFreshdesk,
                                                                        adapter: FreshdeskAdapter) -> None:
    freshdesk.add_ticket(id=32, subject="s", requester_id=CUSTOMER, description="d")
    freshdesk.fail("reply", status=504)
    with pytest.raises(HelpdeskError) as error:
        adapter.reply("32", "Answer")
    assert error.value.status == 504 and len(freshdesk.calls_to("reply")) == 1
    freshdesk.fail("view_ticket", status=502)
    assert adapter.fetch_ticket("32").id == "32"
    assert len(freshdesk.calls_to("view_ticket")) == 2


def test_wrong_credentials_are_a_helpdesk_error_401(freshdesk: FakeFreshdesk) -> None:
    with httpx.Client(base_url=freshdesk.url, auth=("not-the-key", "X"), timeout=2) as c, \
            pytest.raises(HelpdeskError) as error:
        make_adapter(c).fetch_ticket("1")
    assert error.value.status == 401


# -- settings ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("domain, host", [("acme", "acme.freshdesk.com"), ("acme.freshdesk.com", "acme.freshdesk.com"),
                                          ("https://acme.freshdesk.com/", "acme.freshdesk.com")])
def test_the_domain_may_be_given_short_or_in_full(domain: str, host: str) -> None:
    own = FreshdeskSettings(domain=domain, api_url="http://127.0.0.1:9/")
    assert (own.base_url, own.agent_url) == ("http://127.0.0.1:9", f"https://{host}")
    assert FreshdeskSettings(domain=domain).base_url == f"https://{host}"


def test_missing_names_the_variables_serve_needs() -> None:
    assert FreshdeskSettings(api_url="http://x").missing() == ["FRESHDESK_DOMAIN", "FRESHDESK_API_KEY",
                                                              "FRESHDESK_WEBHOOK_SECRET"]


# -- importer ----------------------------------------------------------------------------------------------


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def ticket_json(id: int, *, status: int, updated: str = "2026-11-20T10:30:00Z", **extra) -> dict:
    """A ticket as `GET /api/v2/tickets?include=requester` lists it (fields of the documented Ticket object)."""
    return {"id": id, "subject": f"Subject {id}", "description": f"<div>Question {id}?</div>",
            "description_text": f"Question {id}?", "status": status, "priority": 2, "source": 1, "spam": False,
            "requester_id": CUSTOMER, "responder_id": AGENT, "tags": ["billing"], "created_at": "2026-11-20T10:00:00Z",
            "updated_at": updated, "due_by": "2026-11-23T10:00:00Z", "fr_due_by": "2026-11-21T10:00:00Z",
            "requester": {"id": CUSTOMER, "name": "Ana Customer", "email": "ana@example.com"}, **extra}


def conversation_json(id: int, ticket_id: int, *, user_id: int, text: str, private: bool = False,
                      incoming: bool = False, at: str = "2026-11-20T11:00:00Z") -> dict:
    return {"id": id, "ticket_id": ticket_id, "user_id": user_id, "body": f"<div>{text}</div>", "body_text": text,
            "private": private, "incoming": incoming, "source": 2 if private else 0, "created_at": at,
            "updated_at": at, "attachments": []}


@pytest.fixture
def dump(tmp_path: Path) -> Path:
    root = tmp_path / "freshdesk"
    write(root / "tickets-1.json", [ticket_json(1, status=4, updated="2026-11-20T09:00:00Z", tags=["canned_refund"]),
                                    ticket_json(2, status=2), ticket_json(3, status=5),
                                    ticket_json(4, status=2, deleted=True), {"subject": "no id", "status": 2,
                                                                             "requester_id": 1}])
    # Ticket 1 again, later: the latest version wins.
    write(root / "tickets-2.json", [ticket_json(1, status=4, updated="2026-11-21T09:00:00Z",
                                                tags=["canned_refund"])])
    write(root / "conversations" / "1.json", [
        conversation_json(11, 1, user_id=AGENT, text="Checked the order.", private=True,
                          at="2026-11-20T10:05:00Z"),
        conversation_json(12, 1, user_id=AGENT, text="Your refund is on its way.", at="2026-11-20T10:10:00Z"),
        conversation_json(13, 1, user_id=CUSTOMER, text="Thanks!", incoming=True, at="2026-11-20T10:20:00Z"),
        conversation_json(14, 1, user_id=AGENT, text="Glad to help, closing this.", at="2026-11-20T10:30:00Z")])
    write(root / "conversations" / "3.json", [
        conversation_json(31, 3, user_id=CC_CONTACT, text="Me too", incoming=True)])
    write(root / "agents.json", [{"id": AGENT, "contact": {"name": "Bob Agent", "email": "bob@example.com"}}])
    write(root / "search.json", {"results": [ticket_json(5, status=2)], "total": 1})
    write(root / "solutions.json", [{"id": 9, "title": "An article", "folder_id": 1}])
    return root


def test_importer_reads_documented_dumps_into_contract_tickets(dump: Path) -> None:
    result = import_freshdesk([dump], answer_tag_prefix="canned_", domain="acme")
    tickets = {t["id"]: t for t in result.tickets}
    assert sorted(tickets) == ["1", "2", "3", "5"]
    one = tickets["1"]
    assert [(m["author"], m["body"], m["public"]) for m in one["messages"]] == [
        ("customer", "Question 1?", True), ("agent", "Checked the order.", False),
        ("agent", "Your refund is on its way.", True), ("customer", "Thanks!", True)]
    assert one["resolution"] == {"answer_id": "refund", "answer": "Glad to help, closing this."}
    assert (one["status"], one["priority"], one["url"]) == ("solved", "normal", "https://acme.freshdesk.com/a/tickets/1")
    assert one["requester"] == {"name": "Ana Customer", "email": "ana@example.com"}
    assert one["sla_due_at"] == "2026-11-23T10:00:00Z"
    assert tickets["3"]["resolution"] == {"answer_id": None, "answer": None}, "closed without an agent reply"
    assert tickets["2"]["sla_due_at"] == "2026-11-21T10:00:00Z" and "resolution" not in tickets["2"]
    assert any("record 5: ticket has no id" in p for p in result.problems)
    assert any("solutions.json record 1: not a Freshdesk ticket" in p for p in result.problems)
    assert "left out 1 deleted or spam ticket" in result.notes
    for ticket in result.tickets:
        Ticket.from_dict(ticket)


def test_importer_resolved_only_and_unusable_input(dump: Path, tmp_path: Path) -> None:
    assert sorted(t["id"] for t in import_freshdesk([dump], resolved_only=True).tickets) == ["1", "3"]
    with pytest.raises(InputError, match="no tickets found"):
        import_freshdesk([dump / "conversations"])
    with pytest.raises(InputError, match="file not found"):
        import_freshdesk([tmp_path / "missing.json"])


def test_cli_import_freshdesk_writes_jsonl(dump: Path, tmp_path: Path) -> None:
    out = tmp_path / "tickets.jsonl"
    done = run_bot("import", "freshdesk", str(dump), "--out", str(out), "--resolved-only", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "wrote 2 ticket(s) (2 with a resolution)" in done.stderr
    assert [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()] == ["1", "3"]
