"""`python -m bot import helpscout --from-api`: the dump fetched from the (fake) Help Scout API on loopback with an
OAuth2 token, written as the importer reads it, resumable, read past the adapter's page cap in new listings, and
converted by the existing importer."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import cli
from tests.support.fakes import FakeHelpScout
from tests.support.jsonl import read_jsonl

APP_ID, SECRET = "hs-app-7d21", "hs-secret-value-93be"


class Desk:
    """The fake with its people and conversation ids, in the order they were created (and modified)."""

    def __init__(self, fake: FakeHelpScout) -> None:
        self.fake = fake
        self.customer = fake.add_customer("Ana", "Customer", "ana@example.com")
        self.agent = fake.add_user("Bo", "Agent", "bo@example.com")
        self.ids: dict[str, int] = {}

    def add(self, name: str, *threads: tuple[str, str], **options) -> int:
        """A conversation whose threads are (type, body): customer threads the customer's, others the agent's."""
        made = [{"type": kind, "body": body, **({} if kind == "customer" else {"user_id": self.agent}),
                 **({"saved_reply_id": 77} if body.startswith("Refunds") else {})} for kind, body in threads]
        self.ids[name] = self.fake.add_conversation(subject=name, customer_id=self.customer, threads=made, **options)
        return self.ids[name]


@pytest.fixture
def desk() -> Iterator[Desk]:
    """Six conversations: closed, active, spam, closed, pending and a draft; two a page (spam is not listed), and
    the longest thread on two."""
    with FakeHelpScout(app_id=APP_ID, app_secret=SECRET, page_size=2) as fake:
        desk = Desk(fake)
        desk.add("Refund", ("customer", "Where is my refund?"), ("note", "Internal: checked Stripe"),
                 ("message", "Refunds take 5 days."), status="closed")
        desk.add("Login", ("customer", "I cannot log in."))
        desk.add("Buy now", ("customer", "Cheap pills"), status="spam")
        desk.add("Invoice", ("customer", "Send me the invoice."), ("message", "Attached it here."),
                 ("customer", "Thanks!"), status="closed")
        desk.add("Shipping", ("customer", "When does it ship?"), ("message", "Which order?"), status="pending")
        desk.add("Unsent", ("message", "Hello there"), state="draft")
        yield desk


def env_for(fake: FakeHelpScout, **changes: str) -> dict[str, str]:
    env = {"HELPSCOUT_APP_ID": fake.app_id, "HELPSCOUT_APP_SECRET": fake.app_secret, "HELPSCOUT_API_URL": fake.url}
    return {k: v for k, v in {**env, **changes}.items() if v}


def export(fake: FakeHelpScout, tmp_path: Path, *extra: str, since: str = "1d",
           **env: str) -> subprocess.CompletedProcess:
    return cli.run_with("import", "helpscout", "--from-api", "--since", since, "--dump-dir", "dump", "--out",
                        "tickets.jsonl", *extra, env=env_for(fake, **env), cwd=tmp_path)


def thread_files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "dump" / "threads").glob("*.json"))


def threads_asked(fake: FakeHelpScout) -> list[int]:
    """The conversations whose threads were asked for (each once, whatever the pages)."""
    return sorted({int(c.path.split("/")[3]) for c in fake.calls_to("list_threads")})


def token(fake: FakeHelpScout) -> dict[str, str]:
    answer = httpx.post(f"{fake.url}/v2/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": fake.app_id, "client_secret": fake.app_secret})
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def every_page(url: str, headers: dict[str, str], params: dict) -> list[dict]:
    pages = [httpx.get(url, headers=headers, params=params).json()]
    while pages[-1]["page"]["number"] < pages[-1]["page"]["totalPages"]:
        pages.append(httpx.get(url, headers=headers, params={**params, "page": pages[-1]["page"]["number"] + 1})
                     .json())
    return pages


def save_by_hand(fake: FakeHelpScout, folder: Path) -> None:
    """The dump as a person saves it with curl: each page of the conversations list, and each conversation's
    threads pages (an array of pages, named after the conversation), as answered."""
    (folder / "threads").mkdir(parents=True)
    headers = token(fake)
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    pages = every_page(f"{fake.url}/v2/conversations", headers, {
        "status": "all", "modifiedSince": since, "sortField": "modifiedAt", "sortOrder": "asc"})
    (folder / "conversations.json").write_text(json.dumps(pages))
    for page in pages:
        for conversation in page["_embedded"]["conversations"]:
            threads = every_page(f"{fake.url}/v2/conversations/{conversation['id']}/threads", headers, {})
            (folder / "threads" / f"{conversation['id']}.json").write_text(json.dumps(threads))


def test_an_export_round_trips_to_the_jsonl_of_a_dump_saved_by_hand(desk: Desk, tmp_path: Path):
    done = export(desk.fake, tmp_path)
    assert done.returncode == 0 and SECRET not in done.stdout + done.stderr, done.stderr
    dump, ids = tmp_path / "dump", desk.ids
    # Each page after the first is a new list from the newest time the page before showed, which repeats the
    # conversation modified then: five conversations two a page are four pages.
    assert sorted(p.name for p in dump.glob("conversations-*.json")) == [
        f"conversations-000{n}.json" for n in (1, 2, 3, 4)]
    first = json.loads((dump / "conversations-0001.json").read_text())
    assert [c["id"] for c in first["_embedded"]["conversations"]] == [ids["Refund"], ids["Login"]]
    assert first["page"]["totalPages"] == 3  # the page as Help Scout answered it
    assert [c.params for c in desk.fake.calls_to("list_conversations")][0] == {
        "status": "all", "modifiedSince": desk.fake.calls_to("list_conversations")[0].params["modifiedSince"],
        "sortField": "modifiedAt", "sortOrder": "asc"}
    # Spam is not listed; the draft is, and is left out like the importer leaves it out.
    assert thread_files(tmp_path) == sorted(f"{ids[n]}.json" for n in ("Refund", "Login", "Invoice", "Shipping"))
    refund = json.loads((dump / "threads" / f"{ids['Refund']}.json").read_text())
    assert [t["body"] for t in refund["_embedded"]["threads"]] == [
        "Refunds take 5 days.", "Internal: checked Stripe", "Where is my refund?"]  # both pages, newest first
    assert len(desk.fake.calls_to("list_threads")) == 6  # three threads are two pages (the refund, the invoice)

    tickets = {t["id"]: t for t in read_jsonl(tmp_path / "tickets.jsonl")}
    assert sorted(tickets) == sorted(str(ids[n]) for n in ("Refund", "Login", "Invoice", "Shipping"))
    converted = tickets[str(ids["Refund"])]
    assert converted["requester"] == {"name": "Ana Customer", "email": "ana@example.com"}
    assert [(m["author"], m["body"], m["public"]) for m in converted["messages"]] == [
        ("customer", "Where is my refund?", True), ("agent", "Internal: checked Stripe", False)]
    assert converted["resolution"] == {"answer_id": "macro-77", "answer": "Refunds take 5 days."}
    assert "resolution" not in tickets[str(ids["Shipping"])]

    # The same JSONL as the unchanged importer writes from a dump saved by hand, and from the export's folder.
    save_by_hand(desk.fake, tmp_path / "by-hand")
    cli.assert_converts_alike("helpscout", cwd=tmp_path)
    assert "5 ticket(s) listed" in done.stderr and "4 threads file(s) written" in done.stderr
    assert "1 spam, draft or deleted" in done.stderr


def test_resolved_only_fetches_the_threads_of_closed_conversations(desk: Desk, tmp_path: Path):
    done = export(desk.fake, tmp_path, "--resolved-only")
    assert done.returncode == 0, done.stderr
    closed = sorted(desk.ids[n] for n in ("Refund", "Invoice"))
    assert thread_files(tmp_path) == [f"{i}.json" for i in closed] and threads_asked(desk.fake) == closed
    assert sorted(int(t["id"]) for t in read_jsonl(tmp_path / "tickets.jsonl")) == closed
    assert "2 not closed (--resolved-only)" in done.stderr


def test_a_second_run_fetches_only_what_changed_or_was_not_fetched(desk: Desk, tmp_path: Path):
    ids = desk.ids
    first = export(desk.fake, tmp_path, "--limit", "2")
    assert first.returncode == 0, first.stderr
    assert threads_asked(desk.fake) == sorted([ids["Refund"], ids["Login"]])
    assert [int(t["id"]) for t in read_jsonl(tmp_path / "tickets.jsonl")] == [ids["Refund"], ids["Login"]]
    assert "2 past --limit" in first.stderr and "had no threads" not in first.stderr  # not fetched: not missing
    desk.fake.clear_calls()

    second = export(desk.fake, tmp_path)
    assert second.returncode == 0, second.stderr
    assert threads_asked(desk.fake) == sorted([ids["Invoice"], ids["Shipping"]])
    assert "2 threads file(s) written" in second.stderr and "2 already present" in second.stderr
    assert len(read_jsonl(tmp_path / "tickets.jsonl")) == 4
    desk.fake.clear_calls()

    # A conversation answered since its threads were fetched is fetched again; the others are not.
    login = ids["Login"]
    reply = httpx.post(f"{desk.fake.url}/v2/conversations/{login}/reply", headers=token(desk.fake),
                       json={"customer": {"id": desk.customer}, "text": "Reset your password here.",
                             "status": "closed"})
    assert reply.status_code == 201
    desk.fake.clear_calls()
    third = export(desk.fake, tmp_path)
    assert third.returncode == 0, third.stderr
    assert threads_asked(desk.fake) == [login]
    assert "1 threads file(s) written (1 refreshed: the ticket changed)" in third.stderr
    answered = {int(t["id"]): t for t in read_jsonl(tmp_path / "tickets.jsonl")}[login]
    assert answered["resolution"]["answer"] == "Reset your password here."


def test_a_threads_file_saved_by_hand_is_kept_and_a_broken_one_fetched_again(desk: Desk, tmp_path: Path):
    ids = desk.ids
    threads = tmp_path / "dump" / "threads"
    threads.mkdir(parents=True)
    (threads / f"{ids['Refund']}.json").write_text(json.dumps({"_embedded": {"threads": [
        {"id": 1, "type": "customer", "body": "Saved by hand", "createdAt": "2026-11-01T00:00:00Z",
         "createdBy": {"type": "customer"}}]}}))
    (threads / f"{ids['Login']}.json").write_text('{"_embedded": {"threads": [')  # an interrupted copy
    done = export(desk.fake, tmp_path)
    assert done.returncode == 0, done.stderr
    assert threads_asked(desk.fake) == sorted(ids[n] for n in ("Login", "Invoice", "Shipping"))
    assert "1 already present" in done.stderr


def test_a_missing_variable_is_one_line_and_exit_code_2(desk: Desk, tmp_path: Path):
    done = export(desk.fake, tmp_path, HELPSCOUT_APP_SECRET="")
    cli.assert_missing_variable(done, "HELPSCOUT_APP_SECRET", desk.fake.calls)


def test_refused_credentials_are_one_line_without_the_secret(desk: Desk, tmp_path: Path):
    wrong = "hs-wrong-secret-5e0c"
    done = export(desk.fake, tmp_path, HELPSCOUT_APP_SECRET=wrong)
    cli.assert_refused(done, "Error: Help Scout refused HELPSCOUT_APP_ID and HELPSCOUT_APP_SECRET (401): nothing "
                       "was exported", wrong, tmp_path / "tickets.jsonl")
    assert [c.method for c in desk.fake.calls] == ["token"]


def test_a_failure_mid_export_says_how_to_resume(desk: Desk, tmp_path: Path):
    desk.fake.fail("list_threads", status=404, times=1)
    done = export(desk.fake, tmp_path)
    cli.assert_says_how_to_resume(done, "Help Scout")
    again = export(desk.fake, tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(read_jsonl(tmp_path / "tickets.jsonl")) == 4


def test_since_is_the_modified_since_help_scout_is_asked_for(desk: Desk, tmp_path: Path):
    day = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d")
    assert export(desk.fake, tmp_path, since=day).returncode == 0
    assert desk.fake.calls_to("list_conversations")[0].params["modifiedSince"] == f"{day}T00:00:00Z"
    desk.fake.clear_calls()
    assert export(desk.fake, tmp_path, since="12h").returncode == 0
    asked = datetime.strptime(desk.fake.calls_to("list_conversations")[0].params["modifiedSince"],
                              "%Y-%m-%dT%H:%M:%SZ")
    assert abs(asked.replace(tzinfo=UTC) - (datetime.now(UTC) - timedelta(hours=12))) < timedelta(minutes=2)


@pytest.mark.parametrize(("args", "message"), cli.FROM_API_USAGE_MISTAKES)
def test_usage_mistakes_are_usage_errors(tmp_path: Path, args: tuple[str, ...], message: str):
    done = cli.run_with("import", "helpscout", *args, "--out", "t.jsonl", env={}, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr


# -- the pace: `[helpdesk] requests_per_minute`, as serve reads it ---------------------------------------------

@pytest.mark.parametrize(("toml", "apart"), [
    (None, 60 / 200),  # no seam.toml: the lowest limit Help Scout has published, as before
    (cli.FAST, 60 / 700),
    (cli.UNPACED, None),
])
def test_the_export_paces_itself_by_helpdesk_requests_per_minute_as_serve_does(
        desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str | None, apart: float | None):
    from bot.helpdesk.helpscout import export as helpscout_export

    done, adapter, serve = cli.paced_export(monkeypatch, helpscout_export, "import", "helpscout", "--from-api",
                                            "--since", "1d", "--dump-dir", "dump", "--out", "tickets.jsonl",
                                            env=env_for(desk.fake), cwd=tmp_path, toml=toml)
    assert "4 threads file(s) written" in done.stderr
    assert cli.seconds_apart(adapter._pacer) == pytest.approx(apart) == cli.seconds_apart(serve._pacer)


@pytest.mark.parametrize(("toml", "message"), cli.BAD_PACES)
def test_a_pace_serve_would_refuse_is_one_line_and_nothing_is_fetched(desk: Desk, tmp_path: Path, toml: str,
                                                                       message: str):
    done = export(desk.fake, tmp_path, **cli.pace_config(tmp_path, toml))
    cli.assert_bad_config_refused(done, message, desk.fake.calls, tmp_path / "dump")


# -- past the adapter's page cap, in process (MAX_PAGES made small) ----------------------------------------------

@contextmanager
def capped(monkeypatch: pytest.MonkeyPatch, *, max_pages: int, page_size: int,
           conversations: int) -> Iterator[tuple[FakeHelpScout, Any, list[int]]]:
    """A fake holding `conversations` one-thread conversations, `page_size` a page, and an adapter that reads
    `max_pages` pages a listing (the fake, the adapter, the conversation ids oldest first)."""
    from bot.helpdesk.helpscout import adapter as helpscout_adapter

    monkeypatch.setattr(helpscout_adapter, "MAX_PAGES", max_pages)
    with FakeHelpScout(app_id=APP_ID, app_secret=SECRET, page_size=page_size) as fake, \
            httpx.Client(base_url=fake.url) as client:
        desk = Desk(fake)
        made = [desk.add(f"Question {i}", ("customer", f"Help {i}")) for i in range(conversations)]
        yield fake, helpscout_adapter.HelpScoutAdapter(client, app_id=APP_ID, app_secret=SECRET, webhook_secret=""), \
            made


def test_a_list_deeper_than_the_page_cap_goes_on_from_the_newest_time_read(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch):
    from bot.helpdesk.helpscout.export import export_dump
    from bot.helpdesk.helpscout.shapes import newest_time

    with capped(monkeypatch, max_pages=2, page_size=2, conversations=7) as (fake, adapter, made):
        lines: list[str] = []
        result = export_dump(adapter, fake.modified_at(made[0]) - 60, tmp_path, say=lines.append)
        listed = fake.calls_to("list_conversations")
        # Each page a new list from the newest time the page before showed (repeating the conversation of that
        # time); two pages a listing, then the export starts a new one from the newest time read.
        assert [c.params.get("page", "1") for c in listed] == ["1"] * 6
        third = newest_time(fake.conversation(made[2]))
        assert listed[2].params["modifiedSince"] == f"{third:%Y-%m-%dT%H:%M:%SZ}"
    assert result.pages == 6 and result.listed == 7 and not result.cut
    assert result.exported == [str(i) for i in made]  # each listed twice counts once
    assert sum("going on with conversations modified since" in line for line in lines) == 2
    assert sorted(p.name for p in tmp_path.glob("conversations-*.json")) == [
        f"conversations-000{n}.json" for n in range(1, 7)]


def test_a_list_that_cannot_go_further_is_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A listing whose conversations show no time after where it started: a new one would list them again."""
    from bot.helpdesk.helpscout.export import export_dump

    with capped(monkeypatch, max_pages=1, page_size=1, conversations=2) as (fake, adapter, made):
        lines: list[str] = []

        def say(line: str) -> None:  # a listing that went round and round would say so every time
            lines.append(line)
            assert len(lines) < 10, lines

        # Modified a second after the last time it shows (the fake's add_conversation touches it last).
        result = export_dump(adapter, fake.modified_at(made[0]), tmp_path, say=say)
        assert len(fake.calls_to("list_conversations")) == 1
    assert result.cut and result.pages == 1 and result.exported == [str(made[0])]


def test_stale_pages_of_a_longer_export_are_removed(desk: Desk, tmp_path: Path):
    stale = tmp_path / "dump" / "conversations-0009.json"
    stale.parent.mkdir()
    stale.write_text(json.dumps({"_embedded": {"conversations": [{"id": 99, "subject": "Old", "status": "closed"}]}}))
    other = tmp_path / "dump" / "tickets-0009.json"
    other.write_text("[]")
    done = export(desk.fake, tmp_path)
    assert done.returncode == 0, done.stderr
    assert not stale.exists() and other.exists()  # only this export's own pages


def test_a_conversation_on_two_listings_counts_once_in_the_version_read_last(tmp_path: Path):
    """In process: a conversation answered while the list is read shows up again in the next listing."""
    from bot.helpdesk.base import iso_seconds
    from bot.helpdesk.helpscout.adapter import PageCap
    from bot.helpdesk.helpscout.export import export_dump

    def page(*conversations: tuple[int, str, int]) -> dict:
        return {"_embedded": {"conversations": [
            {"id": id, "subject": f"C{id}", "status": "active", "createdAt": "2026-11-01T00:00:00Z",
             "userUpdatedAt": updated, "threads": threads} for id, updated, threads in conversations]}}

    class Listing:
        asked: list[float] = []

        def conversation_pages(self, since: float):
            self.asked.append(since)
            if len(self.asked) == 1:
                yield page((1, "2026-11-01T00:00:01Z", 1), (2, "2026-11-01T00:00:05Z", 1))
                raise PageCap("deep")
            yield page((2, "2026-11-01T00:00:05Z", 1), (1, "2026-11-01T00:00:09Z", 2))

        def conversation_threads(self, conversation_id: str) -> tuple[list[dict], int]:
            return [], 0

    result = export_dump(Listing(), iso_seconds("2026-10-01T00:00:00Z"), tmp_path)  # type: ignore[arg-type]
    assert Listing.asked[1] == iso_seconds("2026-11-01T00:00:05Z")
    assert result.pages == 2 and result.listed == 2 and result.exported == ["2", "1"] and not result.cut
    kept = json.loads((tmp_path / "threads" / "1.json").read_text())
    assert kept["conversationId"] == 1 and kept["conversationVersion"] == "2026-11-01T00:00:09Z#2"
