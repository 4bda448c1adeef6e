"""`python -m bot import front --from-api`: the dump fetched from the (fake) Front API on loopback, written as the
importer reads it, resumable, read past the adapter's page cap, and converted by the existing importer."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import pytest

from tests.support import cli
from tests.support.fakes import FakeFront

TOKEN = "front-secret-token-4b7d"


@pytest.fixture
def front() -> Iterator[FakeFront]:
    """Five conversations active in the past minutes: archived, open, deleted, archived with a note, open."""
    with FakeFront(token=TOKEN) as fake:
        sam = fake.add_teammate(email="sam@acme.example", first_name="Sam")
        customer = {"recipient_name": "Ana Customer", "recipient_handle": "ana@example.com"}
        refund = fake.add_conversation(subject="Refund", tags=["refund"], **customer, messages=[
            {"inbound": True, "body": "Where is my refund?"},
            {"comment": True, "body": "Checked Stripe", "author_id": sam},
            {"inbound": False, "body": "Refunds take 5 days.", "author_id": sam}])
        fake.add_conversation(subject="Login", **customer, messages=[{"inbound": True, "body": "I cannot log in."}])
        fake.add_conversation(subject="Buy now", status="deleted", **customer,
                              messages=[{"inbound": True, "body": "Cheap pills"}])
        invoice = fake.add_conversation(subject="Invoice", **customer, messages=[
            {"inbound": True, "body": "Send me the invoice."},
            {"inbound": False, "body": "Attached it here.", "author_id": sam},
            {"inbound": False, "body": "a draft nobody sent", "author_id": sam, "draft": True}])
        fake.add_conversation(subject="Shipping", **customer, messages=[
            {"inbound": True, "body": "When does it ship?"}, {"inbound": False, "body": "Which order?",
                                                               "author_id": sam}])
        for archived in (refund, invoice):  # after their threads: a customer's message reopens a conversation
            assert httpx.patch(f"{fake.url}/conversations/{archived}", headers=fake.headers,
                               json={"status": "archived"}).status_code == 204
        fake.clear_calls()
        yield fake


def conversation_id(fake: FakeFront, subject: str) -> str:
    return next(c["id"] for c in search(fake, 0) if c["subject"] == subject)


def search(fake: FakeFront, after: float) -> list[dict]:
    answer = httpx.get(f"{fake.url}/conversations/search/{quote(f'after:{int(after)}', safe='')}",
                       headers=fake.headers, params={"limit": 100})
    return answer.json()["_results"]


def env_for(fake: FakeFront, **changes: str) -> dict[str, str]:
    env = {"FRONT_API_TOKEN": fake.token, "FRONT_API_URL": fake.url}
    return {k: v for k, v in {**env, **changes}.items() if v}


def export(fake: FakeFront, tmp_path: Path, *extra: str, since: str = "1d", out: str = "tickets.jsonl",
           **env: str) -> subprocess.CompletedProcess:
    return cli.run_with("import", "front", "--from-api", "--since", since, "--dump-dir", "dump", "--out", out,
                        *extra, env=env_for(fake, **env), cwd=tmp_path)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def thread_files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "dump" / "threads").glob("*.json"))


def thread_calls(fake: FakeFront) -> list[str]:
    return sorted(c.path for c in fake.calls_to("list_messages") + fake.calls_to("list_comments"))


def threads_of(fake: FakeFront, *subjects: str) -> list[str]:
    return sorted(f"/conversations/{conversation_id(fake, s)}/{kind}" for s in subjects
                  for kind in ("messages", "comments"))


def save_by_hand(fake: FakeFront, folder: Path) -> None:
    """The dump as a person saves it with curl: a search page, and each conversation's messages and comments."""
    (folder / "messages").mkdir(parents=True)
    (folder / "comments").mkdir()
    since = (datetime.now(UTC) - timedelta(days=1)).timestamp()
    answer = httpx.get(f"{fake.url}/conversations/search/after:{int(since)}", headers=fake.headers,
                       params={"limit": 100}).json()
    (folder / "conversations.json").write_text(json.dumps(answer))
    for conversation in answer["_results"]:
        for kind in ("messages", "comments"):
            page = httpx.get(f"{fake.url}/conversations/{conversation['id']}/{kind}", headers=fake.headers,
                             params={"limit": 100}).json()
            (folder / kind / f"{conversation['id']}.json").write_text(json.dumps(page))


def test_an_export_round_trips_to_the_jsonl_of_a_dump_saved_by_hand(front: FakeFront, tmp_path: Path):
    done = export(front, tmp_path)
    assert done.returncode == 0 and TOKEN not in done.stdout + done.stderr, done.stderr
    dump = tmp_path / "dump"
    page = json.loads((dump / "conversations-0001.json").read_text())
    assert [c["subject"] for c in page["_results"]] == ["Invoice", "Refund", "Shipping", "Buy now", "Login"]
    assert page["_total"] == 5 and "_pagination" in page  # as Front answered it, most recently active first
    [searched] = front.calls_to("search_conversations")
    since = (datetime.now(UTC) - timedelta(days=1)).timestamp()
    assert abs(float(unquote(searched.path).rpartition("after:")[2]) - since) < 120
    # The deleted conversation's thread is not fetched; each other one's messages and comments are, all pages.
    listed = {c["subject"]: c["id"] for c in page["_results"]}
    assert thread_files(tmp_path) == sorted(f"{listed[s]}.json" for s in ("Refund", "Login", "Invoice", "Shipping"))
    refund = json.loads((dump / "threads" / f"{listed['Refund']}.json").read_text())
    assert [[item["id"][:4] for item in p["_results"]] for p in refund] == [["msg_", "msg_"], ["com_"]]
    assert thread_calls(front) == threads_of(front, "Refund", "Login", "Invoice", "Shipping")
    assert (dump / "threads" / ".versions" / f"{listed['Refund']}.json").exists()

    tickets = {t["subject"]: t for t in read_jsonl(tmp_path / "tickets.jsonl")}
    assert sorted(tickets) == ["Invoice", "Login", "Refund", "Shipping"]
    assert tickets["Refund"]["requester"] == {"name": "Ana Customer", "email": "ana@example.com"}
    assert [(m["author"], m["body"], m["public"]) for m in tickets["Refund"]["messages"]] == [
        ("customer", "Where is my refund?", True), ("agent", "Checked Stripe", False)]
    assert tickets["Refund"]["resolution"] == {"answer_id": None, "answer": "Refunds take 5 days."}
    assert tickets["Invoice"]["resolution"]["answer"] == "Attached it here."  # the draft is left out
    assert "resolution" not in tickets["Shipping"] and len(tickets["Shipping"]["messages"]) == 2

    # The same JSONL as the unchanged importer writes from a dump saved by hand, and from the export's folder.
    save_by_hand(front, tmp_path / "by-hand")
    for folder, name in (("by-hand", "by-hand.jsonl"), ("dump", "again.jsonl")):
        again = cli.run_with("import", "front", folder, "--out", name, env={}, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert (tmp_path / name).read_text() == (tmp_path / "tickets.jsonl").read_text()
        assert "problem" not in again.stderr.lower() and "ignored" not in again.stderr, again.stderr
    assert "5 ticket(s) listed" in done.stderr and "4 threads file(s) written" in done.stderr
    assert "1 deleted" in done.stderr


def test_resolved_only_fetches_the_threads_of_archived_ones(front: FakeFront, tmp_path: Path):
    done = export(front, tmp_path, "--resolved-only")
    assert done.returncode == 0 and TOKEN not in done.stdout + done.stderr, done.stderr
    assert thread_calls(front) == threads_of(front, "Refund", "Invoice")
    assert len(thread_files(tmp_path)) == 2
    assert sorted(t["subject"] for t in read_jsonl(tmp_path / "tickets.jsonl")) == ["Invoice", "Refund"]
    assert "2 not archived or resolved (--resolved-only)" in done.stderr


def test_a_second_run_fetches_only_what_changed_or_was_not_fetched(front: FakeFront, tmp_path: Path):
    first = export(front, tmp_path, "--limit", "2")
    assert first.returncode == 0, first.stderr
    # The least recently active first: Login and Shipping (Buy now, between them, is deleted).
    assert thread_calls(front) == threads_of(front, "Login", "Shipping")
    assert sorted(t["subject"] for t in read_jsonl(tmp_path / "tickets.jsonl")) == ["Login", "Shipping"]
    assert "2 past --limit" in first.stderr
    front.clear_calls()

    second = export(front, tmp_path)
    assert second.returncode == 0, second.stderr
    assert thread_calls(front) == threads_of(front, "Invoice", "Refund")
    assert "2 threads file(s) written" in second.stderr and "2 already present" in second.stderr
    assert len(read_jsonl(tmp_path / "tickets.jsonl")) == 4
    front.clear_calls()

    unchanged = export(front, tmp_path)
    assert unchanged.returncode == 0, unchanged.stderr
    assert thread_calls(front) == [] and "4 already present" in unchanged.stderr

    # A conversation active since its thread was fetched is fetched again (a comment changes nothing on the
    # conversation itself: its latest event says so); so is one whose version file an interrupted run did not
    # write. The others are not.
    login = conversation_id(front, "Login")
    answer = httpx.post(f"{front.url}/conversations/{login}/messages", headers=front.headers,
                        json={"body": "<p>Reset your password here.</p>", "text": "Reset your password here."})
    assert answer.status_code == 202  # and archived: a reply archives by default
    note = httpx.post(f"{front.url}/conversations/{conversation_id(front, 'Shipping')}/comments",
                      headers=front.headers, json={"body": "Asked for the order number"})
    assert note.status_code == 201
    (tmp_path / "dump" / "threads" / ".versions" / f"{conversation_id(front, 'Refund')}.json").unlink()
    front.clear_calls()
    third = export(front, tmp_path)
    assert third.returncode == 0, third.stderr
    assert thread_calls(front) == threads_of(front, "Login", "Refund", "Shipping")
    assert "3 threads file(s) written (2 refreshed: the ticket changed)" in third.stderr
    tickets = {t["subject"]: t for t in read_jsonl(tmp_path / "tickets.jsonl")}
    assert tickets["Login"]["resolution"]["answer"] == "Reset your password here."
    assert tickets["Shipping"]["messages"][-1]["body"] == "Asked for the order number"


def test_a_missing_variable_is_one_line_and_exit_code_2(front: FakeFront, tmp_path: Path):
    done = export(front, tmp_path, FRONT_API_TOKEN="")
    cli.assert_missing_variable(done, "FRONT_API_TOKEN", front.calls)


def test_the_webhook_secret_is_not_needed_to_export(front: FakeFront, tmp_path: Path):
    done = export(front, tmp_path, "--limit", "1")
    assert done.returncode == 0 and "FRONT_WEBHOOK_SECRET" not in done.stderr, done.stderr


def test_a_refused_token_is_one_line_without_the_token(front: FakeFront, tmp_path: Path):
    wrong = "front-wrong-token-93ce"
    done = export(front, tmp_path, FRONT_API_TOKEN=wrong)
    cli.assert_refused(done, "Error: Front refused FRONT_API_TOKEN (401): nothing was exported", wrong,
                       tmp_path / "tickets.jsonl")


def test_a_failure_mid_export_says_how_to_resume(front: FakeFront, tmp_path: Path):
    front.fail("list_comments", status=404, times=1)
    done = export(front, tmp_path)
    cli.assert_says_how_to_resume(done, "Front")
    again = export(front, tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(read_jsonl(tmp_path / "tickets.jsonl")) == 4


def test_since_is_the_time_front_is_asked_from(front: FakeFront, tmp_path: Path):
    day = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d")
    midnight = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    assert export(front, tmp_path, "--limit", "1", since=day).returncode == 0
    [searched] = front.calls_to("search_conversations")
    assert unquote(searched.path) == f"/conversations/search/after:{int(midnight) - 1}"
    assert float(front.calls_to("list_events")[0].params["q[after]"]) == pytest.approx(midnight, abs=0.01)
    front.clear_calls()
    assert export(front, tmp_path, "--limit", "1", since="12h").returncode == 0
    asked = float(unquote(front.calls_to("search_conversations")[0].path).rpartition("after:")[2])
    assert abs(asked - (time.time() - 12 * 3600)) < 120


@pytest.mark.parametrize(("args", "message"), cli.FROM_API_USAGE_MISTAKES)
def test_usage_mistakes_are_usage_errors(tmp_path: Path, args: tuple[str, ...], message: str):
    done = cli.run_with("import", "front", *args, "--out", "t.jsonl", env={}, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr


# -- the pace: `[helpdesk] requests_per_minute`, as serve reads it ---------------------------------------------

@pytest.mark.parametrize(("toml", "apart"), [
    (None, 60 / 50),  # no seam.toml: Front's lowest plan, as before
    (cli.FAST, 60 / 700),
    (cli.UNPACED, None),
])
def test_the_export_paces_itself_by_helpdesk_requests_per_minute_as_serve_does(
        front: FakeFront, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str | None, apart: float | None):
    from bot.helpdesk.front import export as front_export

    _, adapter, serve = cli.paced_export(monkeypatch, front_export, "import", "front", "--from-api", "--since", "1d",
                                         "--dump-dir", "dump", "--out", "tickets.jsonl", env=env_for(front),
                                         cwd=tmp_path, toml=toml)
    assert len(read_jsonl(tmp_path / "tickets.jsonl")) == 4
    assert cli.seconds_apart(adapter._pacer) == pytest.approx(apart) == cli.seconds_apart(serve._pacer)


@pytest.mark.parametrize(("toml", "message"), cli.BAD_PACES)
def test_a_pace_serve_would_refuse_is_one_line_and_nothing_is_fetched(front: FakeFront, tmp_path: Path, toml: str,
                                                                       message: str):
    done = export(front, tmp_path, **cli.pace_config(tmp_path, toml))
    cli.assert_bad_config_refused(done, message, front.calls, tmp_path / "dump")


# -- past the adapter's page cap, in process --------------------------------------------------------------------

def conversation(number: int) -> dict:
    return {"id": f"cnv_{number}", "subject": f"C{number}", "status": "unassigned", "created_at": 1_700_000_000,
            "recipient": {"name": "Ana", "handle": "ana@example.com"}}


class Listing:
    """A Front adapter whose search is cut after its first page, the events of conversations cnv_1..cnv_3 at
    seconds 10, 20 and 30."""

    def __init__(self, *, same_second: bool = False) -> None:
        self.searched: list[float | None] = []
        self.same_second = same_second

    def updated_since(self, since: float, *, before: float | None = None):
        from bot.helpdesk.base import Updates
        from bot.helpdesk.front.adapter import when

        return Updates([(f"cnv_{n}", when(30.0 if self.same_second else n * 10.0) or "") for n in (3, 2, 1)])

    def conversation_pages(self, since: float, *, before: float | None = None):
        from bot.helpdesk.base import ListingCut

        self.searched.append(before)
        if before is None or self.same_second:
            yield {"_results": [conversation(3), conversation(2)], "_pagination": {"next": "…"}}
            raise ListingCut("deep")
        yield {"_results": [conversation(2), conversation(1)], "_pagination": {"next": None}}

    def conversation_thread(self, conversation_id: str) -> tuple[list[dict], int]:
        return [{"_links": {"self": f"https://acme.api.frontapp.com/conversations/{conversation_id}/messages"},
                 "_results": []}], 0


def test_a_search_cut_at_the_page_cap_goes_on_before_the_oldest_activity_read(tmp_path: Path):
    from bot.helpdesk.front.export import export_dump

    said: list[str] = []
    listing = Listing()
    result = export_dump(listing, 0.0, tmp_path, say=said.append)  # type: ignore[arg-type]
    assert listing.searched == [None, 20.0]
    assert result.pages == 2 and result.listed == 3 and result.exported == ["cnv_1", "cnv_2", "cnv_3"]
    assert not any("warning" in line for line in said)
    assert json.loads((tmp_path / "threads" / ".versions" / "cnv_3.json").read_text()) == "1970-01-01T00:00:30.000000Z"
    (tmp_path / "conversations-0003.json").write_text("{}")  # left by an earlier, longer export
    export_dump(Listing(), 0.0, tmp_path)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.glob("conversations-*.json")) == [
        "conversations-0001.json", "conversations-0002.json"]


def test_a_search_that_cannot_go_further_back_stops_with_a_warning(tmp_path: Path):
    from bot.helpdesk.front.export import export_dump

    said: list[str] = []
    listing = Listing(same_second=True)
    result = export_dump(listing, 0.0, tmp_path, say=said.append)  # type: ignore[arg-type]
    assert listing.searched == [None, 30.0]
    assert result.pages == 2 and result.listed == 2
    assert any(line.startswith("warning: the export stopped after 2 pages before its end") for line in said)


def test_the_adapter_reads_a_thread_and_a_search_the_way_front_pages_them():
    """The adapter's own calls: the search by last activity, a thread's messages and comments pages."""
    from bot.helpdesk.front.adapter import FrontAdapter

    with FakeFront(token=TOKEN, max_page_size=1) as fake:
        for n in range(3):
            fake.add_conversation(subject=f"Q{n}", recipient_name=None, recipient_handle="a@example.com",
                                  messages=[{"inbound": True, "body": "Hi"}, {"inbound": True, "body": "Hello?"}])
        with httpx.Client(base_url=fake.url, headers=fake.headers) as client:
            adapter = FrontAdapter(client, webhook_secret="")
            pages = list(adapter.conversation_pages(time.time() - 3600))
            assert [p["_results"][0]["subject"] for p in pages] == ["Q2", "Q1", "Q0"]
            thread, cut = adapter.conversation_thread(pages[0]["_results"][0]["id"])
            assert cut == 0 and [len(p["_results"]) for p in thread] == [1, 1, 0]  # two messages pages, comments
