"""`python -m bot import gorgias --from-api`: the dump fetched from the (fake) Gorgias API on loopback, written as
the importer reads it, bounded by --since on a newest-first listing, resumable, read past the adapter's page cap,
and converted by the existing importer."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support import cli
from tests.support.fakes import FakeGorgias
from tests.support.jsonl import read_jsonl

KEY = "gorgias-secret-key-61f3"
CUSTOMER, AGENT = 7001, 501
REFUND, LOGIN, SPAM, INVOICE, SHIPPING, TRASHED = 1, 2, 3, 4, 5, 6


def close(fake: FakeGorgias, ticket_id: int) -> None:
    answer = httpx.put(f"{fake.url}/api/tickets/{ticket_id}", auth=fake.auth, json={"status": "closed"})
    assert answer.status_code == 202


def reply(fake: FakeGorgias, ticket_id: int, body: str) -> None:
    """An agent's public reply, through the API as a person's helpdesk would post it."""
    answer = httpx.post(f"{fake.url}/api/tickets/{ticket_id}/messages", auth=fake.auth, json={
        "channel": "email", "via": "helpdesk", "from_agent": True, "public": True, "body_text": body,
        "sender": {"id": AGENT}, "receiver": {"id": CUSTOMER}, "source": {"to": [{"address": "ana@example.com"}]}})
    assert answer.status_code == 201


@pytest.fixture
def gorgias() -> Iterator[FakeGorgias]:
    """Six tickets, two a page: closed with a macro reply, open, spam, closed, open with a reply, trashed. Least
    recently updated first: Login, Buy now (spam), Shipping, Junk (trashed), Refund, Invoice."""
    with FakeGorgias(api_key=KEY, max_page_size=2) as fake:
        fake.add_customer(id=CUSTOMER, name="Ana Customer", email="ana@example.com")
        fake.add_user(id=AGENT, name="Bob Agent", email="bob@example.com")
        customer, agent = {"from_agent": False}, {"from_agent": True, "sender_id": AGENT}
        fake.add_ticket(id=REFUND, subject="Refund", customer_id=CUSTOMER, tags=["refund"], messages=[
            {**customer, "body_text": "Where is my refund?"},
            {**agent, "body_text": "Checked Stripe", "public": False},
            {**agent, "body_text": "Refunds take 5 days.", "macros": [{"id": 12}]}])
        fake.add_ticket(id=LOGIN, subject="Login", customer_id=CUSTOMER,
                        messages=[{**customer, "body_text": "I cannot log in."}])
        fake.add_ticket(id=SPAM, subject="Buy now", customer_id=CUSTOMER, spam=True,
                        messages=[{**customer, "body_text": "Cheap pills"}])
        fake.add_ticket(id=INVOICE, subject="Invoice", customer_id=CUSTOMER, messages=[
            {**customer, "body_text": "Send me the invoice."}, {**agent, "body_text": "Attached it here."},
            {**customer, "body_text": "Thanks!"}])
        fake.add_ticket(id=SHIPPING, subject="Shipping", customer_id=CUSTOMER, messages=[
            {**customer, "body_text": "When does it ship?"}, {**agent, "body_text": "Which order?"}])
        fake.add_ticket(id=TRASHED, subject="Junk", customer_id=CUSTOMER,
                        messages=[{**customer, "body_text": "asdf"}])
        fake.trash(TRASHED)
        for closed in (REFUND, INVOICE):  # after their messages: a customer's message reopens a ticket
            close(fake, closed)
        fake.clear_calls()
        yield fake


def env_for(fake: FakeGorgias, **changes: str) -> dict[str, str]:
    env = {"GORGIAS_DOMAIN": fake.domain, "GORGIAS_EMAIL": fake.email, "GORGIAS_API_KEY": fake.api_key,
           "GORGIAS_API_URL": fake.url}
    return {k: v for k, v in {**env, **changes}.items() if v}


def export_args(*extra: str, since: str = "1d") -> tuple[str, ...]:
    return ("import", "gorgias", "--from-api", "--since", since, "--dump-dir", "dump", "--out", "tickets.jsonl",
            *extra)


def export(fake: FakeGorgias, tmp_path: Path, *extra: str, since: str = "1d",
           **env: str) -> subprocess.CompletedProcess:
    return cli.run_with(*export_args(*extra, since=since), env=env_for(fake, **env), cwd=tmp_path)


def messages_asked(fake: FakeGorgias) -> list[int]:
    """The tickets whose messages were asked for (each once, whatever the pages)."""
    return sorted({int(c.params["ticket_id"]) for c in fake.calls_to("list_messages")})


def message_files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "dump" / "messages").glob("*.json"))


def subjects(path: Path) -> list[str]:
    return sorted(t["subject"] for t in read_jsonl(path))


def every_page(fake: FakeGorgias, path: str, params: dict) -> list[dict]:
    pages = [httpx.get(f"{fake.url}{path}", auth=fake.auth, params=params).json()]
    while pages[-1]["meta"]["next_cursor"]:
        pages.append(httpx.get(f"{fake.url}{path}", auth=fake.auth,
                               params={**params, "cursor": pages[-1]["meta"]["next_cursor"]}).json())
    return pages


def save_by_hand(fake: FakeGorgias, folder: Path) -> None:
    """The dump as a person saves it with curl: the ticket list's pages in one file, and each ticket's messages
    pages (one a line) in a file of its own."""
    (folder / "messages").mkdir(parents=True)
    pages = every_page(fake, "/api/tickets", {"limit": 100})
    (folder / "tickets.json").write_text(json.dumps(pages))
    for ticket in (t for page in pages for t in page["data"]):
        lines = every_page(fake, "/api/messages", {"ticket_id": ticket["id"], "limit": 100})
        (folder / "messages" / f"{ticket['id']}.jsonl").write_text("".join(json.dumps(p) + "\n" for p in lines))


def test_an_export_round_trips_to_the_jsonl_of_a_dump_saved_by_hand(gorgias: FakeGorgias, tmp_path: Path):
    done = export(gorgias, tmp_path)
    assert done.returncode == 0 and KEY not in done.stdout + done.stderr, done.stderr
    dump = tmp_path / "dump"
    assert sorted(p.name for p in dump.glob("tickets-*.json")) == [f"tickets-000{n}.json" for n in (1, 2, 3)]
    pages = [json.loads((dump / f"tickets-000{n}.json").read_text()) for n in (1, 2, 3)]
    # As Gorgias answered them: most recently updated first, with their cursors.
    assert [[t["id"] for t in page["data"]] for page in pages] == [[INVOICE, REFUND], [TRASHED, SHIPPING],
                                                                    [SPAM, LOGIN]]
    assert pages[0]["meta"]["next_cursor"] and pages[0]["uri"] == "/api/tickets"
    assert {c.params["order_by"] for c in gorgias.calls_to("list_tickets")} == {"updated_datetime:desc"}
    # The spam and trashed tickets' messages are not fetched; each other one's are, every page.
    assert messages_asked(gorgias) == [REFUND, LOGIN, INVOICE, SHIPPING]
    assert message_files(tmp_path) == [f"{i}.json" for i in (REFUND, LOGIN, INVOICE, SHIPPING)]
    refund = json.loads((dump / "messages" / f"{REFUND}.json").read_text())
    assert [[m["body_text"] for m in page["data"]] for page in refund] == [
        ["Refunds take 5 days.", "Checked Stripe"], ["Where is my refund?"]]  # two pages, newest first
    version = json.loads((dump / "messages" / ".versions" / f"{REFUND}.json").read_text())
    assert version == gorgias.ticket(REFUND)["updated_datetime"]

    tickets = {t["subject"]: t for t in read_jsonl(tmp_path / "tickets.jsonl")}
    assert sorted(tickets) == ["Invoice", "Login", "Refund", "Shipping"]
    refund_ticket = tickets["Refund"]
    assert refund_ticket["requester"] == {"name": "Ana Customer", "email": "ana@example.com"}
    assert refund_ticket["url"] == "https://acme.gorgias.com/app/ticket/1" and refund_ticket["tags"] == ["refund"]
    assert [(m["author"], m["body"], m["public"]) for m in refund_ticket["messages"]] == [
        ("customer", "Where is my refund?", True), ("agent", "Checked Stripe", False)]
    assert refund_ticket["resolution"] == {"answer_id": "macro-12", "answer": "Refunds take 5 days."}
    assert tickets["Invoice"]["resolution"] == {"answer_id": None, "answer": "Attached it here."}
    assert "resolution" not in tickets["Shipping"] and len(tickets["Shipping"]["messages"]) == 2

    # The same JSONL as the unchanged importer writes from a dump saved by hand, and from the export's folder.
    save_by_hand(gorgias, tmp_path / "by-hand")
    cli.assert_converts_alike("gorgias", "--domain", "acme", cwd=tmp_path)
    assert "6 ticket(s) listed" in done.stderr and "4 messages file(s) written" in done.stderr
    assert "2 trashed or spam" in done.stderr


def test_since_stops_the_newest_first_listing_at_the_first_older_ticket(gorgias: FakeGorgias, tmp_path: Path):
    for old in (SHIPPING, SPAM, LOGIN):
        gorgias.backdate(old, days=10)
    first = export(gorgias, tmp_path, since="30d")
    assert first.returncode == 0, first.stderr
    assert len(gorgias.calls_to("list_tickets")) == 3 and (tmp_path / "dump" / "tickets-0003.json").exists()
    gorgias.clear_calls()

    day = (datetime.now(UTC) - timedelta(days=5)).strftime("%Y-%m-%d")
    done = export(gorgias, tmp_path, since=day)
    assert done.returncode == 0, done.stderr
    # The second page already holds a ticket updated before then: the third is never asked for.
    assert len(gorgias.calls_to("list_tickets")) == 2
    dump = tmp_path / "dump"
    assert sorted(p.name for p in dump.glob("tickets-*.json")) == ["tickets-0001.json", "tickets-0002.json"]
    cut = json.loads((dump / "tickets-0002.json").read_text())
    assert [t["id"] for t in cut["data"]] == [TRASHED] and cut["meta"]["next_cursor"]  # the older one left out
    assert subjects(tmp_path / "tickets.jsonl") == ["Invoice", "Refund"]
    assert "3 ticket(s) listed" in done.stderr and "2 already present" in done.stderr
    assert messages_asked(gorgias) == []  # fetched by the first run, unchanged since


def test_resolved_only_fetches_the_messages_of_closed_tickets(gorgias: FakeGorgias, tmp_path: Path):
    done = export(gorgias, tmp_path, "--resolved-only")
    assert done.returncode == 0, done.stderr
    assert messages_asked(gorgias) == [REFUND, INVOICE] and message_files(tmp_path) == ["1.json", "4.json"]
    assert subjects(tmp_path / "tickets.jsonl") == ["Invoice", "Refund"]
    assert "2 not closed (--resolved-only)" in done.stderr


def test_a_second_run_fetches_only_what_changed_or_was_not_fetched(gorgias: FakeGorgias, tmp_path: Path):
    first = export(gorgias, tmp_path, "--limit", "2")
    assert first.returncode == 0, first.stderr
    # The least recently updated first: Login and Shipping (spam between them is left out).
    assert messages_asked(gorgias) == [LOGIN, SHIPPING]
    assert subjects(tmp_path / "tickets.jsonl") == ["Login", "Shipping"] and "2 past --limit" in first.stderr
    gorgias.clear_calls()

    second = export(gorgias, tmp_path)
    assert second.returncode == 0, second.stderr
    assert messages_asked(gorgias) == [REFUND, INVOICE]
    assert "2 messages file(s) written" in second.stderr and "2 already present" in second.stderr
    assert len(read_jsonl(tmp_path / "tickets.jsonl")) == 4
    gorgias.clear_calls()

    unchanged = export(gorgias, tmp_path)
    assert unchanged.returncode == 0, unchanged.stderr
    assert gorgias.calls_to("list_messages") == [] and "4 already present" in unchanged.stderr

    # A ticket answered since its messages were fetched is fetched again, and so is one whose version file an
    # interrupted run did not write; the others are not.
    reply(gorgias, LOGIN, "Reset your password here.")
    close(gorgias, LOGIN)
    (tmp_path / "dump" / "messages" / ".versions" / f"{REFUND}.json").unlink()
    gorgias.clear_calls()
    third = export(gorgias, tmp_path)
    assert third.returncode == 0, third.stderr
    assert messages_asked(gorgias) == [REFUND, LOGIN]
    assert "2 messages file(s) written (1 refreshed: the ticket changed)" in third.stderr
    login = {t["subject"]: t for t in read_jsonl(tmp_path / "tickets.jsonl")}["Login"]
    assert login["resolution"] == {"answer_id": None, "answer": "Reset your password here."}


def test_a_killed_export_resumes_where_it_stopped(gorgias: FakeGorgias, tmp_path: Path):
    gorgias.set_delay("list_messages", 0.4)
    versions = tmp_path / "dump" / "messages" / ".versions"
    started = cli.start_with(*export_args(), env=env_for(gorgias), cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not list(versions.glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        started.kill()
        started.wait(timeout=10)
    done = [p.stem for p in versions.glob("*.json")]
    assert done and len(done) < 4, done  # killed half-way through the messages
    assert not (tmp_path / "tickets.jsonl").exists()
    gorgias.set_delay("list_messages", 0)
    gorgias.clear_calls()

    again = export(gorgias, tmp_path)
    assert again.returncode == 0, again.stderr
    assert not set(map(int, done)) & set(messages_asked(gorgias))  # what was written is not fetched again
    assert len(messages_asked(gorgias)) == 4 - len(done)
    assert subjects(tmp_path / "tickets.jsonl") == ["Invoice", "Login", "Refund", "Shipping"]
    assert not [p for p in (tmp_path / "dump").rglob("*") if p.name.endswith(".tmp")]


def test_a_failure_mid_export_says_how_to_resume(gorgias: FakeGorgias, tmp_path: Path):
    gorgias.fail("list_messages", status=404, times=1)
    done = export(gorgias, tmp_path)
    cli.assert_says_how_to_resume(done, "Gorgias")
    again = export(gorgias, tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(read_jsonl(tmp_path / "tickets.jsonl")) == 4


def test_a_429_is_waited_out_for_its_retry_after(gorgias: FakeGorgias, tmp_path: Path):
    gorgias.fail("list_messages", status=429, headers={"Retry-after": "2"})
    started = time.monotonic()
    done = export(gorgias, tmp_path)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started >= 2
    statuses = [c.status for c in gorgias.calls_to("list_messages")]
    assert statuses[0] == 429 and statuses[1:] == [200] * (len(statuses) - 1)
    assert len(read_jsonl(tmp_path / "tickets.jsonl")) == 4


def test_a_missing_variable_is_one_line_and_exit_code_2(gorgias: FakeGorgias, tmp_path: Path):
    done = export(gorgias, tmp_path, GORGIAS_API_KEY="")
    cli.assert_missing_variable(done, "GORGIAS_API_KEY", gorgias.calls)
    assert not (tmp_path / "dump").exists()


def test_the_webhook_secret_is_not_needed_to_export(gorgias: FakeGorgias, tmp_path: Path):
    done = export(gorgias, tmp_path, "--limit", "1")
    assert done.returncode == 0 and "GORGIAS_WEBHOOK_SECRET" not in done.stderr, done.stderr


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_is_one_line_without_the_key(gorgias: FakeGorgias, tmp_path: Path, status: int):
    key = "gorgias-wrong-key-2a9d" if status == 401 else KEY
    if status == 403:  # a key whose user may not read the account
        gorgias.fail("list_users", status=403)
    done = export(gorgias, tmp_path, GORGIAS_API_KEY=key)
    cli.assert_refused(done, f"Error: Gorgias refused GORGIAS_EMAIL and GORGIAS_API_KEY ({status}): nothing was "
                       "exported", key, tmp_path / "tickets.jsonl")
    assert not (tmp_path / "dump").exists() and [c.method for c in gorgias.calls] == ["list_users"]


@pytest.mark.parametrize(("args", "message"), cli.FROM_API_USAGE_MISTAKES)
def test_usage_mistakes_are_usage_errors(tmp_path: Path, args: tuple[str, ...], message: str):
    done = cli.run_with("import", "gorgias", *args, "--out", "t.jsonl", env={}, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr


# -- the pace: `[helpdesk] requests_per_minute`, as serve reads it ---------------------------------------------

@pytest.mark.parametrize(("toml", "apart"), [
    (None, 60 / 120),  # no seam.toml: the API-key limit Gorgias documents, as serve paces
    (cli.FAST, 60 / 700),
    (cli.UNPACED, None),
])
def test_the_export_paces_itself_by_helpdesk_requests_per_minute_as_serve_does(
        gorgias: FakeGorgias, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str | None, apart: float | None):
    from bot.helpdesk.export import EXPORT_RETRY_DEADLINE
    from bot.helpdesk.gorgias import export as gorgias_export
    from bot.retry import CALL_DEADLINE

    done, adapter, serve = cli.paced_export(monkeypatch, gorgias_export, *export_args(), env=env_for(gorgias),
                                            cwd=tmp_path, toml=toml)
    assert "4 messages file(s) written" in done.stderr
    assert cli.seconds_apart(adapter._pacer) == pytest.approx(apart) == cli.seconds_apart(serve._pacer)
    # A batch waits out a longer Retry-after than serve's webhook jobs do.
    assert adapter._retry_deadline == EXPORT_RETRY_DEADLINE > CALL_DEADLINE == serve._retry_deadline


@pytest.mark.parametrize(("toml", "message"), cli.BAD_PACES)
def test_a_pace_serve_would_refuse_is_one_line_and_nothing_is_fetched(gorgias: FakeGorgias, tmp_path: Path,
                                                                       toml: str, message: str):
    done = export(gorgias, tmp_path, **cli.pace_config(tmp_path, toml))
    cli.assert_bad_config_refused(done, message, gorgias.calls, tmp_path / "dump")


# -- past the adapter's page cap, in process (MAX_PAGES made small) ----------------------------------------------

def test_a_list_deeper_than_the_page_cap_goes_on_from_its_cursor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from bot.helpdesk.gorgias import adapter as gorgias_adapter
    from bot.helpdesk.gorgias.export import export_dump

    monkeypatch.setattr(gorgias_adapter, "MAX_PAGES", 2)
    with FakeGorgias(api_key=KEY, max_page_size=1) as fake, \
            httpx.Client(base_url=fake.url, auth=fake.auth) as client:
        fake.add_customer(id=CUSTOMER, name="Ana Customer", email="ana@example.com")
        for n in range(1, 6):
            fake.add_ticket(id=n, subject=f"Question {n}", customer_id=CUSTOMER,
                            messages=[{"from_agent": False, "body_text": f"Help {n}"}])
        fake.backdate(1, days=10)
        adapter = gorgias_adapter.GorgiasAdapter(client, email=fake.email, webhook_secret="", agent_url=fake.url)
        lines: list[str] = []
        result = export_dump(adapter, time.time() - 86400, tmp_path, say=lines.append)
        listed = fake.calls_to("list_tickets")
    # Two pages a listing; each new listing starts at the cursor the last one stopped at, down to the old ticket.
    assert len(listed) == 5 and "cursor" not in listed[0].params
    assert listed[2].params["cursor"] == listed[1].response["meta"]["next_cursor"]
    assert result.pages == 4 and result.listed == 4 and result.exported == ["2", "3", "4", "5"]
    assert sum("goes deeper than one listing reads (2 pages)" in line for line in lines) == 2
    assert not any(line.startswith("warning") for line in lines)


def test_a_list_that_gets_no_further_back_stops_with_a_warning(tmp_path: Path):
    """A listing whose next one starts where it did (a cursor that comes back) would go round for ever."""
    from bot.helpdesk.base import ListingCut
    from bot.helpdesk.gorgias.export import export_dump

    now = datetime.now(UTC)

    class Listing:
        asked: list[str | None] = []

        def ticket_pages(self, *, cursor: str | None = None):
            self.asked.append(cursor)
            assert len(self.asked) < 5, "the export goes round and round"
            yield {"data": [{"id": 9, "subject": "Loop", "status": "open",
                             "updated_datetime": now.isoformat()}], "meta": {"next_cursor": "again"}}
            raise ListingCut("deep")

        def message_pages(self, ticket_id: str) -> tuple[list[dict], int]:
            return [{"data": [], "meta": {"next_cursor": None}}], 0

    lines: list[str] = []
    result = export_dump(Listing(), (now - timedelta(days=1)).timestamp(), tmp_path,  # type: ignore[arg-type]
                         say=lines.append)
    assert Listing.asked == [None, "again"]
    assert result.listed == 1 and result.exported == ["9"]
    assert any(line.startswith("warning: the ticket list stopped before its end") for line in lines)
