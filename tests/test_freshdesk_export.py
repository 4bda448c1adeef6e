"""`python -m bot import freshdesk --from-api`: the dump fetched from the (fake) Freshdesk API on loopback, written as
the importer reads it, resumable, read past the list's page cap, and converted by the existing importer."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support import cli
from tests.support.fakes import FakeFreshdesk

KEY = "fd-secret-key-8c2e"
CUSTOMER, AGENT = 1001, 2001


def with_customer(fake: FakeFreshdesk) -> FakeFreshdesk:
    fake.add_contact(id=CUSTOMER, name="Ana Customer", email="ana@example.com")
    return fake


@pytest.fixture
def freshdesk() -> Iterator[FakeFreshdesk]:
    """Five tickets updated in the past day: resolved, open, spam, closed and pending."""
    with FakeFreshdesk(api_key=KEY) as started:
        fake = with_customer(started)
        fake.add_agent(id=AGENT, name="Bo Agent", email="bo@example.com")
        fake.add_ticket(id=11, subject="Refund", requester_id=CUSTOMER, status=4, tags=["canned_refund"],
                        description="Where is my refund?",
                        conversations=[{"user_id": AGENT, "body": "Internal: checked Stripe", "private": True},
                                       {"user_id": AGENT, "body": "Refunds take 5 days."}])
        fake.add_ticket(id=12, subject="Login", requester_id=CUSTOMER, status=2, description="I cannot log in.")
        fake.add_ticket(id=13, subject="Buy now", requester_id=CUSTOMER, status=2, description="Cheap pills",
                        spam=True)
        fake.add_ticket(id=14, subject="Invoice", requester_id=CUSTOMER, status=5,
                        description="Send me the invoice.",
                        conversations=[{"user_id": AGENT, "body": "Attached it here."},
                                       {"user_id": CUSTOMER, "body": "Thanks!", "incoming": True}])
        fake.add_ticket(id=15, subject="Shipping", requester_id=CUSTOMER, status=3, description="When does it ship?",
                        conversations=[{"user_id": AGENT, "body": "Which order?"}])
        yield fake


def env_for(fake: FakeFreshdesk, **changes: str) -> dict[str, str]:
    env = {"FRESHDESK_DOMAIN": "acme", "FRESHDESK_API_KEY": fake.api_key, "FRESHDESK_API_URL": fake.url}
    return {k: v for k, v in {**env, **changes}.items() if v}


def export(fake: FakeFreshdesk, tmp_path: Path, *extra: str, since: str = "1d", out: str = "tickets.jsonl",
           **env: str) -> subprocess.CompletedProcess:
    return cli.run_with("import", "freshdesk", "--from-api", "--since", since, "--dump-dir", "dump", "--out", out,
                        *extra, env=env_for(fake, **env), cwd=tmp_path)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def conversation_files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "dump" / "conversations").glob("*.json"))


def save_by_hand(fake: FakeFreshdesk, folder: Path) -> None:
    """The dump as a person saves it with curl: the tickets list and each ticket's conversations, as answered."""
    (folder / "conversations").mkdir(parents=True)
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    tickets = httpx.get(f"{fake.url}/api/v2/tickets", auth=fake.auth,
                        params={"updated_since": since, "include": "requester,description", "per_page": 100}).json()
    (folder / "tickets.json").write_text(json.dumps(tickets))
    for ticket in tickets:
        listed = httpx.get(f"{fake.url}/api/v2/tickets/{ticket['id']}/conversations", auth=fake.auth,
                           params={"per_page": 100}).json()
        (folder / "conversations" / f"{ticket['id']}.json").write_text(json.dumps(listed))


def test_an_export_round_trips_to_the_jsonl_of_a_dump_saved_by_hand(freshdesk: FakeFreshdesk, tmp_path: Path):
    done = export(freshdesk, tmp_path)
    assert done.returncode == 0 and KEY not in done.stdout + done.stderr, done.stderr
    dump = tmp_path / "dump"
    page = json.loads((dump / "tickets-0001.json").read_text())
    assert [t["id"] for t in page] == [11, 12, 14, 15]  # a bare array, as the API answers; spam is not listed
    assert page[0]["description_text"] == "Where is my refund?" and page[0]["requester"]["name"] == "Ana Customer"
    assert conversation_files(tmp_path) == ["11.json", "12.json", "14.json", "15.json"]
    assert [c["body_text"] for c in json.loads((dump / "conversations" / "11.json").read_text())] == [
        "Internal: checked Stripe", "Refunds take 5 days."]
    assert len(freshdesk.calls_to("list_tickets")) == 1 and len(freshdesk.calls_to("list_conversations")) == 4
    assert freshdesk.calls_to("list_tickets")[0].params["include"] == "requester,description"

    tickets = {t["id"]: t for t in read_jsonl(tmp_path / "tickets.jsonl")}
    assert sorted(tickets) == ["11", "12", "14", "15"]
    refund = tickets["11"]
    assert refund["requester"] == {"name": "Ana Customer", "email": "ana@example.com"}
    assert [(m["author"], m["body"], m["public"]) for m in refund["messages"]] == [
        ("customer", "Where is my refund?", True), ("agent", "Internal: checked Stripe", False)]
    assert refund["resolution"] == {"answer_id": None, "answer": "Refunds take 5 days."}
    assert refund["url"] == "https://acme.freshdesk.com/a/tickets/11"
    assert tickets["14"]["resolution"]["answer"] == "Attached it here."
    assert "resolution" not in tickets["15"] and len(tickets["15"]["messages"]) == 2

    # The same JSONL as the unchanged importer writes from a dump saved by hand, and from the export's folder.
    save_by_hand(freshdesk, tmp_path / "by-hand")
    cli.assert_converts_alike("freshdesk", "--domain", "acme", cwd=tmp_path)
    assert "4 ticket(s) listed" in done.stderr and "4 conversations file(s) written" in done.stderr


def test_resolved_only_fetches_the_conversations_of_resolved_and_closed_ones(freshdesk: FakeFreshdesk, tmp_path):
    done = export(freshdesk, tmp_path, "--resolved-only")
    assert done.returncode == 0 and KEY not in done.stdout + done.stderr, done.stderr
    assert conversation_files(tmp_path) == ["11.json", "14.json"]
    assert sorted(c.path for c in freshdesk.calls_to("list_conversations")) == [
        "/api/v2/tickets/11/conversations", "/api/v2/tickets/14/conversations"]
    assert [t["id"] for t in read_jsonl(tmp_path / "tickets.jsonl")] == ["11", "14"]
    assert "2 not resolved or closed (--resolved-only)" in done.stderr


def test_a_second_run_fetches_only_what_changed_or_was_not_fetched(freshdesk: FakeFreshdesk, tmp_path: Path):
    first = export(freshdesk, tmp_path, "--limit", "2")
    assert first.returncode == 0, first.stderr
    assert conversation_files(tmp_path) == ["11.json", "12.json"]
    assert [t["id"] for t in read_jsonl(tmp_path / "tickets.jsonl")] == ["11", "12"]  # only those fetched
    assert "2 past --limit" in first.stderr
    freshdesk.clear_calls()

    second = export(freshdesk, tmp_path)
    assert second.returncode == 0, second.stderr
    assert sorted(c.path for c in freshdesk.calls_to("list_conversations")) == [
        "/api/v2/tickets/14/conversations", "/api/v2/tickets/15/conversations"]
    assert "2 conversations file(s) written" in second.stderr and "2 already present" in second.stderr
    assert len(read_jsonl(tmp_path / "tickets.jsonl")) == 4
    freshdesk.clear_calls()

    # A ticket that changed since its conversations were fetched is fetched again; so is one whose version file
    # an interrupted run did not write. The others are not.
    reply = httpx.post(f"{freshdesk.url}/api/v2/tickets/12/reply", auth=freshdesk.auth,
                       json={"body": "<p>Reset your password here.</p>", "user_id": AGENT})
    assert reply.status_code == 201
    assert httpx.put(f"{freshdesk.url}/api/v2/tickets/12", auth=freshdesk.auth, json={"status": 4}).status_code == 200
    (tmp_path / "dump" / "conversations" / ".versions" / "15.json").unlink()
    third = export(freshdesk, tmp_path)
    assert third.returncode == 0, third.stderr
    assert sorted(c.path for c in freshdesk.calls_to("list_conversations")) == [
        "/api/v2/tickets/12/conversations", "/api/v2/tickets/15/conversations"]
    assert "2 conversations file(s) written (1 refreshed: the ticket changed)" in third.stderr
    login = {t["id"]: t for t in read_jsonl(tmp_path / "tickets.jsonl")}["12"]
    assert login["resolution"]["answer"] == "Reset your password here."


def test_a_list_deeper_than_freshdesk_pages_is_read_by_update_time(tmp_path: Path):
    with FakeFreshdesk(api_key=KEY) as started:
        fake = with_customer(started)
        for i in range(250):
            fake.add_ticket(id=100 + i, subject=f"Question {i}", requester_id=CUSTOMER, description=f"Help {i}")
        fake.max_list_page = 1  # the real cap is page 300 (30,000 tickets): the same thing, smaller
        # Updated once its page is read: paged by number, the next ticket would slide onto that page unseen.
        fake.after_answer("list_tickets", lambda: fake.update_ticket(120, status=3))
        done = export(fake, tmp_path, "--limit", "2")
        assert done.returncode == 0, done.stderr
        listed = fake.calls_to("list_tickets")
        assert [c.params.get("page", "1") for c in listed] == ["1", "1", "1"]  # each page a new list's first
        assert [c.params["updated_since"] for c in listed[1:]] == [fake.ticket(199)["updated_at"],
                                                                   fake.ticket(298)["updated_at"]]
    assert sorted(p.name for p in (tmp_path / "dump").glob("tickets-*.json")) == [
        "tickets-0001.json", "tickets-0002.json", "tickets-0003.json"]
    assert "250 ticket(s) listed" in done.stderr and "warning" not in done.stderr
    everything = cli.run_with("import", "freshdesk", "dump", "--out", "all.jsonl", env={}, cwd=tmp_path)
    assert everything.returncode == 0, everything.stderr
    assert len(read_jsonl(tmp_path / "all.jsonl")) == 250  # a ticket on two pages: once, in its latest version


def test_a_list_that_cannot_go_deeper_stops_with_a_warning(tmp_path: Path):
    with FakeFreshdesk(api_key=KEY) as started:
        fake = with_customer(started)
        moment = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for i in range(150):  # one update time for more tickets than a page holds: paged by number within it
            fake.add_ticket(id=100 + i, subject=f"Question {i}", requester_id=CUSTOMER, description="Help",
                            created_at=moment)
        fake.max_list_page = 1
        done = export(fake, tmp_path, "--limit", "1")
        assert done.returncode == 0, done.stderr
        asked = [(c.params["updated_since"], c.params.get("page", "1")) for c in fake.calls_to("list_tickets")]
        assert asked[1:] == [(moment, "1"), (moment, "2")]  # a new list from that second; its page 2 refused
    assert "warning: the export stopped after 2 pages before its end" in done.stderr
    assert "100 ticket(s) listed" in done.stderr


def test_a_missing_variable_is_one_line_and_exit_code_2(freshdesk: FakeFreshdesk, tmp_path: Path):
    done = export(freshdesk, tmp_path, FRESHDESK_API_KEY="")
    cli.assert_missing_variable(done, "FRESHDESK_API_KEY", freshdesk.calls)


def test_a_refused_key_is_one_line_without_the_key(freshdesk: FakeFreshdesk, tmp_path: Path):
    wrong = "fd-wrong-key-51d0"
    done = export(freshdesk, tmp_path, FRESHDESK_API_KEY=wrong)
    cli.assert_refused(done, "Error: Freshdesk refused FRESHDESK_API_KEY (401): nothing was exported", wrong,
                   tmp_path / "tickets.jsonl")


def test_a_failure_mid_export_says_how_to_resume(freshdesk: FakeFreshdesk, tmp_path: Path):
    freshdesk.fail("list_conversations", status=404, times=1)
    done = export(freshdesk, tmp_path)
    cli.assert_says_how_to_resume(done, "Freshdesk")
    again = export(freshdesk, tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(read_jsonl(tmp_path / "tickets.jsonl")) == 4


def test_since_is_the_updated_since_freshdesk_is_asked_for(freshdesk: FakeFreshdesk, tmp_path: Path):
    day = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d")
    assert export(freshdesk, tmp_path, since=day).returncode == 0
    assert freshdesk.calls_to("list_tickets")[0].params["updated_since"] == f"{day}T00:00:00Z"
    freshdesk.clear_calls()
    assert export(freshdesk, tmp_path, since="12h").returncode == 0
    asked = datetime.strptime(freshdesk.calls_to("list_tickets")[0].params["updated_since"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(asked.replace(tzinfo=UTC) - (datetime.now(UTC) - timedelta(hours=12))) < timedelta(minutes=2)


@pytest.mark.parametrize(("args", "message"), cli.FROM_API_USAGE_MISTAKES)
def test_usage_mistakes_are_usage_errors(tmp_path: Path, args: tuple[str, ...], message: str):
    done = cli.run_with("import", "freshdesk", *args, "--out", "t.jsonl", env={}, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr


# -- the pace: `[helpdesk] requests_per_minute`, as serve reads it ---------------------------------------------

@pytest.mark.parametrize(("toml", "apart", "list_apart"), [
    (None, 60 / 200, 60 / 20),  # no seam.toml: Freshdesk's documented Growth limits, as before
    (cli.FAST, 60 / 700, 60 / 20),  # [helpdesk] has no key for the list's sub-limit: it stays
    (cli.UNPACED, None, None),  # pacing off, the list's too
])
def test_the_export_paces_itself_by_helpdesk_requests_per_minute_as_serve_does(
        freshdesk: FakeFreshdesk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str | None,
        apart: float | None, list_apart: float | None):
    from bot.config import load_settings
    from bot.helpdesk.freshdesk import export as freshdesk_export
    from bot.helpdesk.freshdesk.adapter import FreshdeskAdapter

    config = cli.pace_config(tmp_path, toml)
    built = cli.built_adapters(monkeypatch, freshdesk_export)
    done = cli.run_in_process("import", "freshdesk", "--from-api", "--since", "1d", "--dump-dir", "dump", "--out",
                              "tickets.jsonl", env={**env_for(freshdesk), **config}, cwd=tmp_path)
    assert done.exit_code == 0, done.stderr
    assert len(read_jsonl(tmp_path / "tickets.jsonl")) == 4
    [adapter] = built
    paces = (cli.seconds_apart(adapter._pacer), cli.seconds_apart(adapter._list_pacer))
    assert paces == pytest.approx((apart, list_apart))
    serve = FreshdeskAdapter.from_settings(load_settings(env={"HELPDESK": "freshdesk", **config}, cwd=tmp_path))
    assert paces == (cli.seconds_apart(serve._pacer), cli.seconds_apart(serve._list_pacer))


@pytest.mark.parametrize(("toml", "message"), cli.BAD_PACES)
def test_a_pace_serve_would_refuse_is_one_line_and_nothing_is_fetched(freshdesk: FakeFreshdesk, tmp_path: Path,
                                                                       toml: str, message: str):
    done = export(freshdesk, tmp_path, **cli.pace_config(tmp_path, toml))
    cli.assert_bad_config_refused(done, message, freshdesk.calls, tmp_path / "dump")


def test_converting_files_reads_no_seam_toml(freshdesk: FakeFreshdesk, tmp_path: Path):
    assert export(freshdesk, tmp_path).returncode == 0
    [(toml, _)] = cli.BAD_PACES[:1]
    done = cli.run_with("import", "freshdesk", "dump", "--domain", "acme", "--out", "again.jsonl",
                        env=cli.pace_config(tmp_path, toml), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "again.jsonl").read_text() == (tmp_path / "tickets.jsonl").read_text()


def test_a_ticket_on_two_pages_counts_once_in_its_latest_version(tmp_path: Path):
    """In process: a ticket updated while the list is read shows up again on a later page."""
    from bot.helpdesk.base import iso_seconds
    from bot.helpdesk.freshdesk.export import export_dump

    def ticket(id: int, updated_at: str) -> dict:
        return {"id": id, "subject": f"T{id}", "requester_id": CUSTOMER, "status": 2, "description_text": "Hi",
                "created_at": "2026-11-01T00:00:00Z", "updated_at": updated_at}

    class Listing:
        def ticket_pages(self, since: float):
            yield [ticket(1, "2026-11-01T00:00:01Z"), ticket(2, "2026-11-01T00:00:05Z")]
            yield [ticket(2, "2026-11-01T00:00:05Z"), ticket(1, "2026-11-01T00:00:09Z")]

        def ticket_conversations(self, ticket_id: str) -> tuple[list[dict], int]:
            return [], 0

    result = export_dump(Listing(), iso_seconds("2026-10-01T00:00:00Z"), tmp_path)  # type: ignore[arg-type]
    assert result.pages == 2 and result.listed == 2 and result.exported == ["2", "1"] and not result.cut
    versions = tmp_path / "conversations" / ".versions"
    assert json.loads((versions / "1.json").read_text()) == "2026-11-01T00:00:09Z"


def test_the_adapter_stops_a_listing_at_the_page_cap_within_one_second(monkeypatch: pytest.MonkeyPatch):
    """The cap Freshdesk documents, reached by tickets sharing one update second while the Link still points on:
    PageCap, without asking for more."""
    from bot.helpdesk.base import HelpdeskError
    from bot.helpdesk.freshdesk import adapter as freshdesk_adapter
    from bot.helpdesk.freshdesk.adapter import FreshdeskAdapter, PageCap

    with FakeFreshdesk(api_key=KEY) as started:
        fake = with_customer(started)
        for i in range(201):
            fake.add_ticket(id=100 + i, subject=f"Question {i}", requester_id=CUSTOMER, description="Help",
                            created_at="2026-11-01T00:00:00Z")
        monkeypatch.setattr(freshdesk_adapter, "LIST_PAGE_CAP", 2)
        with httpx.Client(base_url=fake.url, auth=fake.auth) as client:
            adapter = FreshdeskAdapter(client, webhook_secret="", agent_url="https://acme.freshdesk.com")
            pages: list[list] = []
            with pytest.raises(PageCap):
                pages.extend(adapter.ticket_pages(0))
            assert [len(p) for p in pages] == [100, 100, 100]  # the first, then pages 1 and 2 of that second
            assert [c.params.get("page", "1") for c in fake.calls_to("list_tickets")] == ["1", "1", "2"]
            fake.fail("list_tickets", status=400, times=1)  # a 400 that is not about the page is an error
            with pytest.raises(HelpdeskError) as raised:
                list(adapter.ticket_pages(0))
            assert not isinstance(raised.value, PageCap)
