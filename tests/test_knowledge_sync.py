"""Knowledge synced from the helpdesk (bot.jobs.knowledge): every helpdesk's articles and macros, read through its
fake, stored as clean text under the ids simulation grades against; changed ones updated, deleted ones retired,
nothing touched by a sync that failed; macros with template placeholders never sent on their own; the
`knowledge sync` command against the fake Zendesk; and `serve` answering from what it synced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.engine.knowledge import needs_person, with_synced
from bot.errors import ConfigError
from bot.helpdesk.base import HelpdeskError
from bot.jobs.knowledge import KnowledgeSync, sync_knowledge
from bot.models import Article, Assessment, Message, Route, Ticket
from bot.policy.decide import Policy, decide
from bot.services import LiveEngine
from bot.store import Store
from bot.text import without_name_placeholders
from tests.support.constants import CUSTOMER_ID
from tests.support.fakes import FakeSlack, FakeZendesk
from tests.support.helpdesks import HARNESSES, HelpdeskHarness
from tests.support.server import HELPDESK_PREFIXES, SeamServer, seam_env
from tests.support.waiting import wait_until

ARTICLE_HTML = ("<h2>Before you start</h2><p>Returns are free within <b>60&nbsp;days</b> &amp; easy.</p>"
                "<ul><li>Open <a href='https://acme.example/orders'>your orders</a></li><li>Print the label</li></ul>"
                "<script>track()</script>")
ARTICLE_TEXT = ("Before you start\n\nReturns are free within 60 days & easy.\n\n• Open your orders\n"
                "• Print the label")
# The customer's-name placeholder each platform's macros use.
NAME_PLACEHOLDER = {
    "zendesk": "{{ticket.requester.first_name}}",
    "freshdesk": "{{ticket.requester.firstname}}",
    "gorgias": "{{ticket.customer.firstname}}",
    "front": "{{recipient.first_name}}",
    "helpscout": "{%customer.firstName,fallback=there%}",
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest) -> Iterator[HelpdeskHarness]:
    harness = HARNESSES[request.param]()
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def store() -> Store:
    return Store(":memory:")


def scene(harness: HelpdeskHarness) -> dict[str, str]:
    """An article (where the platform has a help centre) and two macros on the platform: their Seam ids."""
    ids = {}
    if "article" in harness.knowledge_kinds:
        ids["article"] = harness.add_knowledge_article("Returning an order", ARTICLE_HTML)
    ids["macro"] = harness.add_knowledge_macro("Refund timing", "<p>Refunds reach your card within 5 days.</p>")
    ids["other"] = harness.add_knowledge_macro("Opening hours", "<p>We answer <i>Monday to Friday</i>.</p>")
    return ids


def stored(store: Store, harness: HelpdeskHarness) -> dict[str, Article]:
    return {a.id: a for a in store.synced_articles(harness.adapter.name)}


# -- every helpdesk --------------------------------------------------------------------------------------------


def test_a_sync_stores_articles_and_macros_as_clean_text_under_their_ids(harness: HelpdeskHarness,
                                                                         store: Store) -> None:
    ids = scene(harness)
    result = sync_knowledge(store, harness.adapter)
    assert (result.added, result.updated, result.unchanged, result.retired) == (len(ids), 0, 0, 0)
    found = stored(store, harness)
    assert set(found) == set(ids.values())
    assert found[ids["macro"]].body == "Refunds reach your card within 5 days."
    assert found[ids["other"]].title == "Opening hours" and found[ids["other"]].body == "We answer Monday to Friday."
    assert all(a.id.startswith("macro-") for a in (found[ids["macro"]], found[ids["other"]]))
    if "article" in ids:
        assert ids["article"].startswith("article-")
        assert found[ids["article"]].body == ARTICLE_TEXT
        assert found[ids["article"]].title == "Returning an order"
    kinds = {row["article_id"]: row["kind"] for row in store.knowledge_rows(harness.adapter.name)}
    assert kinds == {seam_id: seam_id.partition("-")[0] for seam_id in ids.values()}
    # A second round with nothing changed changes nothing.
    again = sync_knowledge(store, harness.adapter)
    assert (again.added, again.updated, again.unchanged, again.retired) == (0, 0, len(ids), 0)
    assert not again.changed


def test_a_changed_article_is_updated_and_a_deleted_one_retired(harness: HelpdeskHarness, store: Store) -> None:
    ids = scene(harness)
    sync_knowledge(store, harness.adapter)
    before = store.knowledge_revision(harness.adapter.name)
    changed = ids.get("article", ids["macro"])
    harness.edit_knowledge(changed, title="Returns, updated", html="<p>Returns are free within <b>90</b> days.</p>")
    harness.remove_knowledge(ids["other"])
    result = sync_knowledge(store, harness.adapter)
    assert (result.added, result.updated, result.retired) == (0, 1, 1) and result.changed
    found = stored(store, harness)
    assert ids["other"] not in found
    assert (found[changed].title, found[changed].body) == ("Returns, updated", "Returns are free within 90 days.")
    assert store.knowledge_revision(harness.adapter.name) != before
    retired = {r["article_id"]: r["retired_at"] for r in store.knowledge_rows(harness.adapter.name, retired=True)}
    assert retired[ids["other"]] is not None and retired[changed] is None


@pytest.mark.parametrize("kind", ["article", "macro"])
def test_a_sync_that_fails_half_way_changes_and_retires_nothing(harness: HelpdeskHarness, store: Store,
                                                                kind: str) -> None:
    if kind not in harness.knowledge_kinds:
        pytest.skip(f"{harness.name} has no {kind}s")
    ids = scene(harness)
    sync_knowledge(store, harness.adapter)
    before = (store.synced_articles(harness.adapter.name), store.knowledge_revision(harness.adapter.name))
    harness.remove_knowledge(ids["other"])
    harness.edit_knowledge(ids["macro"], title="Refund timing", html="<p>Refunds take 10 days now.</p>")
    harness.fail_knowledge(kind, 403)
    with pytest.raises(HelpdeskError):
        sync_knowledge(store, harness.adapter)
    assert (store.synced_articles(harness.adapter.name), store.knowledge_revision(harness.adapter.name)) == before
    # The next round that reads everything catches up.
    result = sync_knowledge(store, harness.adapter)
    assert (result.updated, result.retired) == (1, 1)


def test_placeholders_naming_the_customer_go_and_a_macro_still_holding_one_needs_a_person(
        harness: HelpdeskHarness, store: Store) -> None:
    greeting = harness.add_knowledge_macro(
        "Refund timing", f"<p>Hi {NAME_PLACEHOLDER[harness.name]},</p><p>Refunds take 5 days.</p>")
    templated = harness.add_knowledge_macro("Order status", "<p>Your order {{ticket.id}} is on its way.</p>")
    result = sync_knowledge(store, harness.adapter)
    assert result.needs_person == 1
    found = stored(store, harness)
    assert found[greeting].body == "Hi there,\n\nRefunds take 5 days."
    assert found[templated].body == "Your order {{ticket.id}} is on its way."
    flags = {r["article_id"]: r["needs_person"] for r in store.knowledge_rows(harness.adapter.name)}
    assert flags == {greeting: 0, templated: 1}
    assert not needs_person(found[greeting]) and needs_person(found[templated])


# -- the placeholder rule --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("Hi {{ticket.requester.first_name}},\n\nRefunds take 5 days.", "Hi there,\n\nRefunds take 5 days."),
    ("Hello {{ recipient.first_name | capitalize }}, here it is.", "Hello there, here it is."),
    ("Thanks {{ticket.customer.firstname}}!", "Thanks!"),
    ("Dear {{ticket.requester.name}}, your refund is on its way.", "Dear, your refund is on its way."),
    ("Hey {%customer.firstName,fallback=friend%}, done.", "Hey friend, done."),
    ("Hey {%customer.firstName,fallback=%}, done.", "Hey there, done."),
    ("Done.\n\nBest,\n{{current_user.first_name}}", "Done.\n\nBest,"),
    ("Your ticket {{ticket.id}} is solved.", "Your ticket {{ticket.id}} is solved."),
    ("{% if ticket.priority == 'urgent' %}Soon{% endif %}", "{% if ticket.priority == 'urgent' %}Soon{% endif %}"),
    ("No placeholder : spacing kept .", "No placeholder : spacing kept ."),
])
def test_name_placeholders_are_taken_out_and_others_kept(text: str, expected: str) -> None:
    assert without_name_placeholders(text) == expected


def assessment(answer: str, *, source: str = "macro-1", confidence: float = 0.99) -> Assessment:
    return Assessment(confidence=confidence, answer=answer, answer_source=source, summary="s")


def ticket(text: str = "When does my parcel arrive?") -> Ticket:
    return Ticket(id="1", subject="Parcel", messages=(Message("customer", text),))


def test_an_answer_holding_a_placeholder_is_drafted_never_resolved() -> None:
    policy = Policy()
    plain = decide(ticket(), assessment("Parcels arrive within 5 days."), policy=policy)
    assert plain.route == Route.RESOLVE
    held = decide(ticket(), assessment("Your order {{ticket.id}} ships today."), policy=policy)
    assert held.route == Route.DRAFT
    assert held.answer == "Your order {{ticket.id}} ships today." and held.answer_source == "macro-1"
    assert [r.code for r in held.reasons] == ["placeholders"], "one plain reason, not 'unsupported'"
    liquid = decide(ticket(), assessment("{% if x %}Yes{% endif %}"), policy=policy)
    assert liquid.route == Route.DRAFT


class Answering:
    """An engine that answers every ticket with one text, and records what it is taught."""

    def __init__(self, answer: str, source: str = "macro-1") -> None:
        self.answer, self.source, self.learnt = answer, source, []

    def assess(self, ticket: Ticket) -> Assessment:
        return assessment(self.answer, source=self.source)

    def learn(self, customer_text: str, answer_source: str, answer: str, *,
              requester_name: str | None = None) -> None:
        self.learnt.append(answer_source)


def test_serve_drafts_an_answer_holding_a_placeholder_as_the_policy_says() -> None:
    found = LiveEngine(Answering("See {{ticket.id}}")).assess(ticket())
    assert decide(ticket(), found, policy=Policy()).route == Route.DRAFT


# -- the store -------------------------------------------------------------------------------------------------


def test_an_article_that_comes_back_is_restored_and_the_revision_follows_every_change(store: Store) -> None:
    first, second = Article("article-1", "One", "one"), Article("macro-2", "Two", "two")
    revisions = [store.knowledge_revision("zendesk")]
    assert store.upsert_knowledge(helpdesk="zendesk", articles=[first, second, first]) == {
        "added": 2, "updated": 0, "unchanged": 0}
    revisions.append(store.knowledge_revision("zendesk"))
    assert store.retire_knowledge(helpdesk="zendesk", keep={"article-1"}) == 1
    revisions.append(store.knowledge_revision("zendesk"))
    assert store.upsert_knowledge(helpdesk="zendesk", articles=[first, second]) == {
        "added": 1, "updated": 0, "unchanged": 1}
    revisions.append(store.knowledge_revision("zendesk"))
    assert len(set(revisions)) == 4
    # Another helpdesk's knowledge is its own.
    assert store.synced_articles("front") == [] and store.retire_knowledge(helpdesk="front", keep=set()) == 0
    assert [a.id for a in store.synced_articles("zendesk")] == ["article-1", "macro-2"]


def test_knowledge_files_win_over_a_synced_article_with_the_same_id() -> None:
    merged = with_synced([Article("article-1", "File", "from the file")],
                         [Article("article-1", "Synced", "synced"), Article("macro-2", "M", "m")])
    assert [(a.id, a.title) for a in merged] == [("article-1", "File"), ("macro-2", "M")]


# -- the engine follows the knowledge --------------------------------------------------------------------------


def test_the_live_engine_refits_when_the_knowledge_revision_moves_and_keeps_replies_learnt_meanwhile() -> None:
    revision = ["r1"]
    engines: list[Answering] = []
    fitting, release = threading.Event(), threading.Event()

    def fit() -> tuple[Answering, str]:
        seen = revision[0]
        if engines:  # not the first fit: let the test teach a reply while this one runs
            fitting.set()
            release.wait(5)
        engines.append(Answering(f"answer {len(engines)}"))
        return engines[-1], seen

    live = LiveEngine.fitted(fit, revision=lambda: revision[0])
    assert not live.refresh() and len(engines) == 1  # nothing changed: no refit
    revision[0] = "r2"
    refitting = threading.Thread(target=live.refresh)
    refitting.start()
    assert fitting.wait(5)
    live.learn("customer text", "seam-feedback-7", "the reply")  # while the new engine is being fitted
    release.set()
    refitting.join(5)
    assert live.current is engines[1] and live.fitted_at == "r2"
    assert live.assess(ticket()).answer == "answer 1"
    assert engines[0].learnt == ["seam-feedback-7"] and engines[1].learnt == ["seam-feedback-7"]


def test_serve_listens_while_its_first_fit_runs_and_tickets_wait_for_it() -> None:
    release = threading.Event()
    first = Answering("first")

    def slow_first_fit() -> tuple[Answering, str]:
        assert release.wait(10)
        return first, "r1"

    live = LiveEngine.fitting(slow_first_fit, fit=lambda: (Answering("later"), "r2"), revision=lambda: "r2")
    assert not live.ready and live.current is None and live.uncovered_share() is None
    answers: list[str] = []
    waiting = threading.Thread(target=lambda: answers.append(live.assess(ticket()).answer))
    waiting.start()
    live.learn("customer text", "seam-feedback-3", "the reply")  # taught before the engine exists
    assert not live.refresh(), "no refit while the first fit runs"
    assert answers == []
    release.set()
    waiting.join(10)
    assert answers == ["first"] and live.ready and live.fitted_at == "r1"
    assert first.learnt == ["seam-feedback-3"], "replayed into the engine once it was fitted"


def test_a_first_fit_that_fails_fails_tickets_at_once_until_a_refresh_fits() -> None:
    def broken() -> tuple[Answering, str]:
        raise OSError("the knowledge folder is gone")

    live = LiveEngine.fitting(broken, fit=lambda: (Answering("back"), "r1"), revision=lambda: "r1")
    with pytest.raises(RuntimeError, match="the fit failed .*knowledge folder is gone"):
        live.assess(ticket())
    assert live.refresh() and live.assess(ticket()).answer == "back" and live.fit_error is None


def test_a_failed_refit_keeps_the_engine_answering() -> None:
    revision = ["r1"]
    calls = []

    def fit():
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("the knowledge folder is gone")
        return Answering("old"), revision[0]

    live = LiveEngine.fitted(fit, revision=lambda: revision[0])
    revision[0] = "r2"
    with pytest.raises(RuntimeError):
        live.refresh()
    assert live.assess(ticket()).answer == "old" and live.fitted_at == "r1"
    live.learn("text", "seam-feedback-1", "reply")
    assert live.current.learnt == ["seam-feedback-1"]


def test_the_periodic_job_refreshes_the_engine_after_each_round(store: Store) -> None:
    from tests.support.helpdesks import ZendeskHarness

    with ZendeskHarness() as harness:
        refreshed = []
        job = KnowledgeSync(store=store, helpdesk=harness.adapter, interval=600, refresh=lambda: refreshed.append(1))
        # The runner runs it every `interval` seconds, the first round at start.
        assert (job.name, job.interval, job.first_round_after) == ("knowledge", 600, 0.0)
        harness.add_knowledge_article("Returns", "<p>Free within 60 days.</p>")
        assert job.run_once().added == 1 and refreshed == [1]
        assert job.run_once().unchanged == 1 and refreshed == [1, 1]  # the engine decides by the revision


# -- Zendesk's own rules ---------------------------------------------------------------------------------------


def test_zendesk_leaves_out_drafts_agents_only_articles_personal_macros_and_notes(store: Store) -> None:
    from tests.support.helpdesks import ZendeskHarness

    with ZendeskHarness() as harness:
        fake = harness.fake
        everyone = fake.add_article(title="Public", body="<p>For everyone</p>")["id"]
        signed_in = fake.add_user_segment(name="Signed-in users")
        agents = fake.add_user_segment(name="Agents and admins", user_type="staff")
        vip = fake.add_user_segment(name="VIP customers", tags=["vip"])
        members = fake.add_article(title="Members", body="<p>Signed in</p>", user_segment_id=signed_in)["id"]
        fake.add_article(title="Internal", body="<p>Runbook</p>", user_segment_id=agents)
        fake.add_article(title="VIP only", body="<p>Special terms</p>", user_segment_id=vip)
        fake.add_article(title="Unpublished", body="<p>Draft</p>", draft=True)
        shared = fake.add_macro(title="Shared", html_body="<p>Shared reply</p>",
                                restriction={"type": "Group", "ids": [1]})["id"]
        plain = fake.add_macro(title="Plain text", actions=[
            {"field": "comment_value", "value": ["channel:all", "Plain reply"]}])["id"]
        fake.add_macro(title="Mine", html_body="<p>Personal</p>", restriction={"type": "User", "id": 7})
        fake.add_macro(title="Note", html_body="<p>Internal note</p>", public=False)
        fake.add_macro(title="Inactive", html_body="<p>Old</p>", active=False)
        fake.add_macro(title="Status only", actions=[{"field": "status", "value": "solved"}])
        sync_knowledge(store, harness.adapter)
        assert {a.id: a.body for a in store.synced_articles("zendesk")} == {
            f"article-{everyone}": "For everyone", f"article-{members}": "Signed in",
            f"macro-{shared}": "Shared reply", f"macro-{plain}": "Plain reply"}
        assert [c.params.get("active") for c in fake.calls_to("list_macros")] == ["true"]
        # If the segments cannot be read, no article behind one is kept.
        fake.fail("list_user_segments", status=403)
        sync_knowledge(store, harness.adapter)
        assert f"article-{members}" not in {a.id for a in store.synced_articles("zendesk")}


def test_zendesk_follows_cursor_pages_and_refuses_a_listing_it_cannot_finish(store: Store) -> None:
    from bot.helpdesk.zendesk import adapter as zendesk_adapter
    from tests.support.helpdesks import ZendeskHarness

    with ZendeskHarness() as harness:
        for number in range(230):
            harness.fake.add_article(title=f"Article {number}", body=f"<p>Text {number}</p>")
        assert sync_knowledge(store, harness.adapter).added == 230
        assert len(harness.fake.calls_to("list_articles")) == 3
        original = zendesk_adapter.MAX_PAGES
        zendesk_adapter.MAX_PAGES = 2
        try:
            harness.remove_knowledge(f"article-{harness.fake.add_article(title='x', body='<p>y</p>')['id']}")
            with pytest.raises(HelpdeskError, match="more than 2 pages"):
                sync_knowledge(store, harness.adapter)
        finally:
            zendesk_adapter.MAX_PAGES = original
        assert len(store.synced_articles("zendesk")) == 230


# -- configuration ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [
    ("", 3600.0), ("sync_interval = 0", 0.0), ("sync_interval = 900", 900.0), ('sync_interval = "30m"', 1800.0),
    ('sync_interval = "6h"', 21600.0), ('sync_interval = "1d"', 86400.0), ('sync_interval = "45s"', 45.0),
])
def test_the_sync_interval_is_seconds_or_a_duration(tmp_path: Path, value: str, seconds: float) -> None:
    (tmp_path / "seam.toml").write_text(f"[knowledge]\n{value}\n")
    assert load_settings(env={}, cwd=tmp_path).knowledge_sync_seconds == seconds


@pytest.mark.parametrize(("value", "message"), [
    ("sync_interval = 5", "between 10 seconds and 7 days"), ('sync_interval = "8d"', "between 10 seconds"),
    ('sync_interval = "hourly"', 'duration such as "30s"'), ("sync_interval = true", "duration"),
    ("interval = 60", "unknown key 'interval' (known: sync_interval)"),
])
def test_a_bad_sync_interval_is_a_one_line_error(tmp_path: Path, value: str, message: str) -> None:
    (tmp_path / "seam.toml").write_text(f"[knowledge]\n{value}\n")
    with pytest.raises(ConfigError) as error:
        load_settings(env={}, cwd=tmp_path)
    assert message in str(error.value) and "\n" not in str(error.value)


# -- the command line ------------------------------------------------------------------------------------------


def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SEAM_", "OPENAI_", "SLACK_", "EMBEDDINGS_", *HELPDESK_PREFIXES))
             and k not in ("KNOWLEDGE_PATH", "DATABASE_PATH")}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env={**clean, **env}, capture_output=True,
                          text=True, timeout=120)


def test_the_sync_command_against_zendesk_end_to_end(tmp_path: Path) -> None:
    from tests.support.helpdesks import ZendeskHarness

    with ZendeskHarness() as harness:
        env = {**harness.serve_env(), "DATABASE_PATH": str(tmp_path / "seam.db")}
        del env["ZENDESK_WEBHOOK_SECRET"]  # syncing needs API access only
        article = harness.add_knowledge_article("Returning an order", ARTICLE_HTML)
        macro = harness.add_knowledge_macro("Order status", "<p>Order {{ticket.id}} ships today.</p>")
        done = run("knowledge", "sync", env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == ("zendesk: 2 added, 0 updated, 0 unchanged, 0 retired "
                                       "(1 with placeholders: drafted at most)")
        listed = run("knowledge", "list", env=env, cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert article in listed.stdout and macro in listed.stdout and "[needs person]" in listed.stdout

        harness.remove_knowledge(macro)
        harness.edit_knowledge(article, title="Returning an order", html="<p>Returns: 90 days.</p>")
        as_json = run("knowledge", "sync", "--format", "json", env=env, cwd=tmp_path)
        assert json.loads(as_json.stdout) == {"helpdesk": "zendesk", "added": 0, "updated": 1, "unchanged": 0,
                                              "retired": 1, "needs_person": 0}

        harness.add_knowledge_macro("New", "<p>New reply</p>")
        harness.remove_knowledge(article)
        harness.fail_knowledge("macro", 403)  # the articles are read, then the macros fail
        failed = run("knowledge", "sync", env=env, cwd=tmp_path)
        assert failed.returncode != 0
        [line] = failed.stderr.strip().splitlines()
        assert line.startswith("Error: knowledge sync from zendesk failed, nothing was changed: ") and "403" in line
        store = Store(tmp_path / "seam.db")
        assert [a.id for a in store.synced_articles("zendesk")] == [article]

        missing = run("knowledge", "sync", env={**env, "ZENDESK_API_TOKEN": ""}, cwd=tmp_path)
        assert missing.returncode != 0 and "ZENDESK_API_TOKEN" in missing.stderr


def test_simulate_answers_from_synced_knowledge_unless_told_not_to(tmp_path: Path) -> None:
    store = Store(tmp_path / "seam.db")
    store.upsert_knowledge(helpdesk="zendesk", articles=[
        Article("article-77", "Returning an order", "Returns are free within 60 days: print the prepaid label from "
                                                    "your orders page and drop the parcel at any post office.")])
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text(json.dumps({"id": "t1", "subject": "Return", "messages": [
        {"author": "customer", "body": "How do I return an order? Do I need to print a prepaid label?"}],
        "resolution": {"answer_id": "article-77"}}) + "\n")
    env = {"DATABASE_PATH": str(tmp_path / "seam.db"), "HELPDESK": "zendesk"}
    with_synced_run = run("simulate", str(tickets), "--out", str(tmp_path / "with"), env=env, cwd=tmp_path)
    assert with_synced_run.returncode == 0, with_synced_run.stderr
    assert "1 articles and macros synced from zendesk" in with_synced_run.stderr
    [decision] = [json.loads(line) for line in (tmp_path / "with" / "decisions.jsonl").read_text().splitlines()]
    assert decision["answer_source"] == "article-77"
    without = run("simulate", str(tickets), "--out", str(tmp_path / "without"), "--no-synced-knowledge", env=env,
                  cwd=tmp_path)
    assert without.returncode == 0, without.stderr
    [decision] = [json.loads(line) for line in (tmp_path / "without" / "decisions.jsonl").read_text().splitlines()]
    assert decision["answer_source"] is None


# -- serve -----------------------------------------------------------------------------------------------------


def topics(db: Path) -> dict[str, dict]:
    return {row["topic"]: row for row in Store(db).activity(since="")["topics"]}


def test_serve_syncs_at_start_and_every_interval_and_answers_from_what_it_synced(tmp_path: Path) -> None:
    with FakeSlack() as slack, FakeZendesk() as zendesk:
        zendesk.add_user(id=CUSTOMER_ID, name="Ana Customer", email="ana@example.com")
        returns = zendesk.add_article(title="Returning an order", body=(
            "<p>Returns are free within 60 days: print the prepaid return label from your orders page and drop "
            "the parcel at any post office.</p>"))["id"]
        status = zendesk.add_macro(title="Order status", html_body=(
            "<p>Your order {{ticket.id}} is packed; the courier collects it this afternoon.</p>"))["id"]
        config = tmp_path / "seam.toml"
        config.write_text("[knowledge]\nsync_interval = 10\n\n[reconcile]\ninterval_seconds = 0\n")
        env = seam_env(slack=slack, zendesk=zendesk, tmp=tmp_path, SEAM_CONFIG=str(config))
        db = Path(env["DATABASE_PATH"])
        seam = SeamServer(env, tmp_path / "serve.log").start()
        try:
            wait_until(lambda: seam.log().count("engine refitted") >= 1, timeout=20, what="the first sync's refit")

            def ask(ticket_id: int, text: str) -> None:
                zendesk.add_ticket(id=ticket_id, subject="Question", requester_id=CUSTOMER_ID,
                                   comments=[{"author_id": CUSTOMER_ID, "body": text}])
                assert seam.post_webhook({"ticket_id": str(ticket_id)}).status_code == 202

            ask(701, "How do I return my order? Where do I get the prepaid return label?")
            row = wait_until(lambda: topics(db).get(f"article-{returns}"), timeout=20, what="the answer")
            assert row["tickets"] == 1

            # A macro still holding a placeholder answers as a draft, never on its own.
            ask(702, "Is my order packed? When does the courier collect my order?")
            row = wait_until(lambda: topics(db).get(f"macro-{status}"), timeout=20, what="the draft")
            assert row["resolved"] == 0
            assert not [c for c in zendesk.comments(702) if "{{" in c["body"]]

            # Added after start: the next round (10 s) syncs it and the engine answers from it.
            gift = zendesk.add_article(title="Wrapping a gift", body=(
                "<p>Gift wrapping costs 3 euros: tick the gift wrap box at checkout and add a card message.</p>"))["id"]
            wait_until(lambda: seam.log().count("engine refitted") >= 2, timeout=30, what="the second refit")
            ask(703, "Can you gift wrap my order? Where is the gift wrap box at checkout?")
            wait_until(lambda: topics(db).get(f"article-{gift}"), timeout=20, what="the answer from the new article")
        finally:
            assert seam.stop() == 0, seam.log()
