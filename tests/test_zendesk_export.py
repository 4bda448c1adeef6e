"""`python -m bot import zendesk --from-api`: the dump fetched from the (fake) Zendesk API on loopback, written as
the importer reads it, resumable, and converted by the existing importer."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bot.helpdesk.export import since_time, write_atomically
from tests.support.cli import (
    BAD_PACES,
    FAST,
    FROM_API_USAGE_MISTAKES,
    UNPACED,
    assert_bad_config_refused,
    assert_missing_variable,
    assert_refused,
    assert_says_how_to_resume,
    built_adapters,
    pace_config,
    run_in_process,
    run_with,
    seconds_apart,
)
from tests.support.fakes import FakeZendesk

CUSTOMER, AGENT = 501, 601
TOKEN = "zd-secret-token-4f9a"


@pytest.fixture
def zendesk():
    with FakeZendesk(token=TOKEN) as fake:
        fake.add_user(id=CUSTOMER, name="Ana Customer", email="ana@example.com")
        fake.add_user(id=AGENT, name="Bo Agent", email="bo@example.com", role="agent")
        fake.incremental_page_size = 2  # five tickets: three pages
        fake.add_ticket(id=11, subject="Refund", requester_id=CUSTOMER, status="solved", tags=["macro_refund"],
                        comments=[{"author_id": CUSTOMER, "body": "Where is my refund?"},
                                  {"author_id": AGENT, "body": "Internal: checked Stripe", "public": False},
                                  {"author_id": AGENT, "body": "Refunds take 5 days."}])
        fake.add_ticket(id=12, subject="Login", requester_id=CUSTOMER, status="open",
                        comments=[{"author_id": CUSTOMER, "body": "I cannot log in."}])
        fake.add_ticket(id=13, subject="Spam", requester_id=CUSTOMER, status="deleted",
                        comments=[{"author_id": CUSTOMER, "body": "Buy now"}])
        fake.add_ticket(id=14, subject="Invoice", requester_id=CUSTOMER, status="closed",
                        comments=[{"author_id": CUSTOMER, "body": "Send me the invoice."},
                                  {"author_id": AGENT, "body": "Attached it here."},
                                  {"author_id": CUSTOMER, "body": "Thanks!"}])
        fake.add_ticket(id=15, subject="Shipping", requester_id=CUSTOMER, status="pending",
                        comments=[{"author_id": CUSTOMER, "body": "When does it ship?"},
                                  {"author_id": AGENT, "body": "Which order?"}])
        yield fake


def env_for(fake: FakeZendesk, **changes: str) -> dict[str, str]:
    env = {"ZENDESK_SUBDOMAIN": "acme", "ZENDESK_EMAIL": fake.email, "ZENDESK_API_TOKEN": fake.token,
           "ZENDESK_API_URL": fake.url}
    return {k: v for k, v in {**env, **changes}.items() if v}


def export(fake: FakeZendesk, tmp_path: Path, *extra: str, out: str = "tickets.jsonl",
           **env: str) -> subprocess.CompletedProcess:
    return run_with("import", "zendesk", "--from-api", "--since", "1d", "--dump-dir", "dump", "--out", out, *extra,
               env=env_for(fake, **env), cwd=tmp_path)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_export_over_several_pages_round_trips_through_the_importer(zendesk: FakeZendesk, tmp_path: Path):
    done = export(zendesk, tmp_path)
    assert done.returncode == 0, done.stderr
    dump = tmp_path / "dump"
    assert sorted(p.name for p in dump.glob("tickets-*.json")) == ["tickets-0001.json", "tickets-0002.json",
                                                                   "tickets-0003.json"]
    first = json.loads((dump / "tickets-0001.json").read_text())
    assert [t["id"] for t in first["tickets"]] == [11, 12] and first["end_of_stream"] is False
    assert {u["id"] for u in first["users"]} == {CUSTOMER}  # include=users: sideloaded as Zendesk returns them
    assert sorted(p.name for p in (dump / "comments").iterdir()) == ["11.json", "12.json", "14.json", "15.json"]
    kept = json.loads((dump / "comments" / "11.json").read_text())
    assert kept["ticket_id"] == 11 and [c["body"] for c in kept["comments"]] == [
        "Where is my refund?", "Internal: checked Stripe", "Refunds take 5 days."]
    assert len(zendesk.calls_to("incremental_tickets")) == 3 and len(zendesk.calls_to("list_comments")) == 4

    tickets = {t["id"]: t for t in read_jsonl(tmp_path / "tickets.jsonl")}
    assert sorted(tickets) == ["11", "12", "14", "15"]  # the deleted one is left out
    refund = tickets["11"]
    assert refund["requester"] == {"name": "Ana Customer", "email": "ana@example.com"}
    assert [(m["author"], m["body"], m["public"]) for m in refund["messages"]] == [
        ("customer", "Where is my refund?", True), ("agent", "Internal: checked Stripe", False)]
    assert refund["resolution"] == {"answer_id": "refund", "answer": "Refunds take 5 days."}
    assert tickets["14"]["resolution"]["answer"] == "Attached it here."
    assert "resolution" not in tickets["15"] and len(tickets["15"]["messages"]) == 2

    # The same JSONL as the importer writes from the folder by hand.
    by_hand = run_with("import", "zendesk", "dump", "--out", "by-hand.jsonl", env={}, cwd=tmp_path)
    assert by_hand.returncode == 0, by_hand.stderr
    assert (tmp_path / "by-hand.jsonl").read_text() == (tmp_path / "tickets.jsonl").read_text()
    assert "5 ticket(s) listed" in done.stderr
    assert "4 comments file(s) written" in done.stderr and "1 deleted" in done.stderr
    assert TOKEN not in done.stdout + done.stderr


def test_resolved_only_fetches_the_comments_of_solved_and_closed_tickets_only(zendesk: FakeZendesk,
                                                                              tmp_path: Path):
    done = export(zendesk, tmp_path, "--resolved-only")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "dump" / "comments").iterdir()) == ["11.json", "14.json"]
    assert sorted(c.path for c in zendesk.calls_to("list_comments")) == ["/api/v2/tickets/11/comments.json",
                                                                         "/api/v2/tickets/14/comments.json"]
    assert [t["id"] for t in read_jsonl(tmp_path / "tickets.jsonl")] == ["11", "14"]
    assert "2 not solved or closed (--resolved-only)" in done.stderr


def test_a_second_run_fetches_only_what_the_first_did_not(zendesk: FakeZendesk, tmp_path: Path):
    first = export(zendesk, tmp_path, "--limit", "2")
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in (tmp_path / "dump" / "comments").iterdir()) == ["11.json", "12.json"]
    assert [t["id"] for t in read_jsonl(tmp_path / "tickets.jsonl")] == ["11", "12"]  # only those with comments
    assert "2 past --limit" in first.stderr
    zendesk.clear_calls()

    second = export(zendesk, tmp_path)
    assert second.returncode == 0, second.stderr
    assert sorted(c.path for c in zendesk.calls_to("list_comments")) == ["/api/v2/tickets/14/comments.json",
                                                                         "/api/v2/tickets/15/comments.json"]
    assert "2 comments file(s) written" in second.stderr and "2 already present" in second.stderr
    assert len(read_jsonl(tmp_path / "tickets.jsonl")) == 4
    zendesk.clear_calls()

    # A ticket that changed since its comments were fetched is fetched again; the others are not.
    reply = httpx.put(f"{zendesk.url}/api/v2/tickets/12.json", auth=zendesk.auth,
                      json={"ticket": {"comment": {"body": "Reset your password here.", "public": True,
                                                   "author_id": AGENT}, "status": "solved"}})
    assert reply.status_code == 200
    third = export(zendesk, tmp_path)
    assert third.returncode == 0, third.stderr
    assert [c.path for c in zendesk.calls_to("list_comments")] == ["/api/v2/tickets/12/comments.json"]
    assert "1 refreshed" in third.stderr
    login = {t["id"]: t for t in read_jsonl(tmp_path / "tickets.jsonl")}["12"]
    assert login["resolution"]["answer"] == "Reset your password here."


def test_pages_of_an_earlier_longer_export_do_not_linger(zendesk: FakeZendesk, tmp_path: Path):
    stale = tmp_path / "dump" / "tickets-0009.json"
    stale.parent.mkdir()
    stale.write_text(json.dumps({"tickets": [{"id": 99, "subject": "Old", "status": "open"}]}))
    (tmp_path / "dump" / ".tickets-0001.json.x.tmp").write_text('{"tickets": [')  # an interrupted write
    done = export(zendesk, tmp_path)
    assert done.returncode == 0, done.stderr
    assert not stale.exists()
    assert "99" not in {t["id"] for t in read_jsonl(tmp_path / "tickets.jsonl")}


def test_a_missing_variable_is_one_line_and_exit_code_2(zendesk: FakeZendesk, tmp_path: Path):
    done = export(zendesk, tmp_path, ZENDESK_API_TOKEN="")
    assert_missing_variable(done, "ZENDESK_API_TOKEN", zendesk.calls)


def test_a_refused_token_is_one_line_without_the_token(zendesk: FakeZendesk, tmp_path: Path):
    wrong = "zd-wrong-token-77c1"
    done = export(zendesk, tmp_path, ZENDESK_API_TOKEN=wrong)
    assert_refused(done, "Error: Zendesk refused ZENDESK_EMAIL and ZENDESK_API_TOKEN (401): nothing was exported",
                   wrong, tmp_path / "tickets.jsonl")


def test_a_failure_mid_export_says_how_to_resume(zendesk: FakeZendesk, tmp_path: Path):
    zendesk.fail("list_comments", status=404, times=1)
    done = export(zendesk, tmp_path)
    assert_says_how_to_resume(done, "Zendesk")
    again = export(zendesk, tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(read_jsonl(tmp_path / "tickets.jsonl")) == 4


@pytest.mark.parametrize(("args", "message"), FROM_API_USAGE_MISTAKES)
def test_usage_mistakes_are_usage_errors(tmp_path: Path, args: tuple[str, ...], message: str):
    done = run_with("import", "zendesk", *args, "--out", "t.jsonl", env={}, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr


# -- the pace: `[helpdesk] requests_per_minute`, as serve reads it ---------------------------------------------

@pytest.mark.parametrize(("toml", "apart"), [
    (None, 60 / 400),  # no seam.toml: Zendesk's documented account-wide limit, as before
    (FAST, 60 / 700),
    (UNPACED, None),
])
def test_the_export_paces_itself_by_helpdesk_requests_per_minute_as_serve_does(
        zendesk: FakeZendesk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str | None, apart: float | None):
    from bot.config import load_settings
    from bot.helpdesk.zendesk import export as zendesk_export
    from bot.helpdesk.zendesk.adapter import ZendeskAdapter

    config = pace_config(tmp_path, toml)
    built = built_adapters(monkeypatch, zendesk_export)
    done = run_in_process("import", "zendesk", "--from-api", "--since", "1d", "--dump-dir", "dump", "--out",
                          "tickets.jsonl", env={**env_for(zendesk), **config}, cwd=tmp_path)
    assert done.exit_code == 0, done.stderr
    assert len(read_jsonl(tmp_path / "tickets.jsonl")) == 4
    [adapter] = built
    assert seconds_apart(adapter._pacer) == pytest.approx(apart)
    serve = ZendeskAdapter.from_settings(load_settings(env={**env_for(zendesk), **config}, cwd=tmp_path))
    assert seconds_apart(adapter._pacer) == seconds_apart(serve._pacer)


def test_the_export_pages_keep_their_own_limit_unless_pacing_is_off():
    from bot.helpdesk.zendesk.export import EXPORT_PAGES_PER_MINUTE, export_pages_pacer

    for requests_per_minute in (None, 700.0):  # [helpdesk] has no key for this sub-limit
        assert seconds_apart(export_pages_pacer(requests_per_minute)) == pytest.approx(60 / EXPORT_PAGES_PER_MINUTE)
    assert export_pages_pacer(0.0) is None


@pytest.mark.parametrize(("toml", "message"), BAD_PACES)
def test_a_pace_serve_would_refuse_is_one_line_and_nothing_is_fetched(zendesk: FakeZendesk, tmp_path: Path,
                                                                       toml: str, message: str):
    done = export(zendesk, tmp_path, **pace_config(tmp_path, toml))
    assert_bad_config_refused(done, message, zendesk.calls, tmp_path / "dump")


def test_since_reads_a_date_or_a_duration_ago():
    now = datetime(2026, 10, 1, 12, tzinfo=UTC).timestamp()
    assert since_time("2026-09-01", now=now) == datetime(2026, 9, 1, tzinfo=UTC).timestamp()
    assert since_time("2026-09-01T08:00:00+02:00", now=now) == datetime(2026, 9, 1, 6, tzinfo=UTC).timestamp()
    assert since_time("90d", now=now) == now - 90 * 86400
    assert since_time(" 12h ", now=now) == now - 12 * 3600
    for bad in ("soon", "90", "-3d", "2026-13-01", "2026-10-02", ""):
        with pytest.raises(ValueError):
            since_time(bad, now=now)


def test_an_atomic_write_that_fails_leaves_nothing(tmp_path: Path):
    target = tmp_path / "1.json"
    with pytest.raises(TypeError):
        write_atomically(target, {"comments": [object()]})
    assert list(tmp_path.iterdir()) == []
    write_atomically(target, {"comments": []})
    assert json.loads(target.read_text()) == {"comments": []} and list(tmp_path.iterdir()) == [target]
