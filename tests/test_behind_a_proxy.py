"""An adapter pointed at a proxy (`ZENDESK_API_URL`, `FRESHDESK_API_URL`, `HELPSCOUT_API_URL`: "tests, proxies"): the
helpdesk's own next-page links name its own host, not the proxy's. Only their path and query go on, to the host
Seam was configured with — so every page is read, and the credentials still never travel to a host an answer names.
The proxy is the fake itself reached by another name (`localhost` for `127.0.0.1`)."""

from __future__ import annotations

import httpx

from bot.helpdesk.freshdesk.adapter import FreshdeskAdapter
from bot.helpdesk.helpscout.adapter import HelpScoutAdapter
from bot.helpdesk.zendesk.adapter import ZendeskAdapter
from tests.support.fakes import FakeFreshdesk, FakeHelpScout, FakeZendesk


def proxied(url: str) -> str:
    assert "127.0.0.1" in url
    return url.replace("127.0.0.1", "localhost")


def test_zendesk_reads_every_page_of_a_thread_and_of_the_knowledge_through_a_proxy() -> None:
    with FakeZendesk() as fake, httpx.Client(base_url=proxied(fake.url), auth=fake.auth, timeout=5) as client:
        fake.add_user(id=1, name="Ana", email="ana@example.com", role="end-user")
        fake.add_ticket(id=5, subject="Long", requester_id=1,
                        comments=[{"author_id": 1, "body": f"message {n}"} for n in range(150)])
        for n in range(120):
            fake.add_article(title=f"Article {n}", body=f"<p>Body {n}</p>")
        adapter = ZendeskAdapter(client, webhook_secret="s", agent_url="https://acme.zendesk.com", retry_deadline=2)
        ticket = adapter.fetch_ticket("5")
        assert [m.body for m in ticket.messages] == [f"message {n}" for n in range(150)] and ticket.problems == ()
        assert len([a for a in adapter.knowledge() if a.id.startswith("article-")]) == 120


def test_freshdesk_reads_every_page_of_a_thread_through_a_proxy() -> None:
    with FakeFreshdesk() as fake, httpx.Client(base_url=proxied(fake.url), auth=fake.auth, timeout=5) as client:
        fake.add_contact(id=1001, name="Ana", email="ana@example.com")
        fake.add_ticket(id=20, subject="Long", requester_id=1001, description="start",
                        conversations=[{"user_id": 1001, "body": f"m{n}", "incoming": True} for n in range(150)])
        adapter = FreshdeskAdapter(client, webhook_secret="s", agent_url="https://acme.freshdesk.com",
                                   retry_deadline=2)
        ticket = adapter.fetch_ticket("20")
        assert [m.body for m in ticket.messages][1:] == [f"m{n}" for n in range(150)] and ticket.problems == ()


def test_helpscout_reads_every_page_of_a_thread_through_a_proxy() -> None:
    with FakeHelpScout(page_size=10) as fake, httpx.Client(base_url=proxied(fake.url), timeout=5) as client:
        customer = fake.add_customer("Ana", "Customer", "ana@example.com")
        conversation = fake.add_conversation(customer_id=customer, subject="Long",
                                             threads=[{"body": f"message {n}"} for n in range(35)])
        adapter = HelpScoutAdapter(client, app_id=fake.app_id, app_secret=fake.app_secret, webhook_secret="s",
                                   retry_deadline=2)
        ticket = adapter.fetch_ticket(str(conversation))
        assert [m.body for m in ticket.messages] == [f"message {n}" for n in range(35)] and ticket.problems == ()


class MergedHelpScout(FakeHelpScout):
    """Conversation 424242 was merged into `new`: a read of it answers 301 with Help Scout's own address."""

    new = 0

    def _h_get_conversation(self, req, params):
        if int(self._ids(req)[0]) == 424242:
            return 301, {"Location": f"{self.url}/v2/conversations/{self.new}"}, b""
        return super()._h_get_conversation(req, params)


def test_helpscout_reads_a_merged_conversation_at_its_new_address_through_a_proxy() -> None:
    with MergedHelpScout() as fake, httpx.Client(base_url=proxied(fake.url), timeout=5) as client:
        customer = fake.add_customer("Ana", "Customer", "ana@example.com")
        fake.new = fake.add_conversation(customer_id=customer, subject="Merged", threads=[{"body": "Merged question"}])
        adapter = HelpScoutAdapter(client, app_id=fake.app_id, app_secret=fake.app_secret, webhook_secret="s",
                                   retry_deadline=2)
        ticket = adapter.fetch_ticket("424242")
        assert ticket.id == str(fake.new) and [m.body for m in ticket.messages] == ["Merged question"]


def requested(link: str, base_url: str) -> str:
    """The URL the client sends for a next-page link, as the adapters follow one."""
    from bot.helpdesk.http import on_configured_host

    with httpx.Client(base_url=base_url) as client:
        return str(client.build_request("GET", on_configured_host(link, base_url=base_url)).url)


def test_a_link_on_the_configured_host_is_followed_whole_and_the_helpdesks_own_under_the_proxy_path() -> None:
    proxy = "http://proxy.internal:8080/zendesk"
    # A server mounted under a path names that path in its own links: followed as given, not doubled.
    own = f"{proxy}/api/v2/tickets/5/comments.json?page=2"
    assert requested(own, proxy) == own
    # The helpdesk's link, through the proxy: its path under the proxy's.
    vendor = "https://acme.zendesk.com/api/v2/tickets/5/comments.json?page=2"
    assert requested(vendor, proxy) == f"{proxy}/api/v2/tickets/5/comments.json?page=2"
    # Never another scheme or port of the configured host: the credentials go where Seam was told.
    assert requested("http://proxy.internal:9999/api/v2/x.json", proxy) == f"{proxy}/api/v2/x.json"
