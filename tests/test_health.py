"""Seam says when it cannot do its job (issue 14): every outside call is bounded and a hung helpdesk stalls only
its own tickets, with the stuck jobs named in `/healthz`; credentials that are refused stop `serve` at start with
one line, and while serving a refused token, a channel Seam may not post in, a refused helpdesk credential or
jobs dying make `/healthz` answer 503 with the reason and put one alert in the managers' App Home."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

from bot.engine import embeddings
from bot.engine import openai as openai_engine
from bot.helpdesk import registry
from bot.helpdesk.base import HelpdeskError
from bot.jobs.worker import LEASE_SECONDS, Worker
from bot.slack.client import slack_client
from bot.store import Store
from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.helpdesks import HARNESSES
from tests.support.posts import posts_for
from tests.support.server import UNPACED, SeamServer, seam_env
from tests.support.signing import slack_headers
from tests.support.waiting import wait_until

MANAGER = "UBOSS"


def wants_a_person(zendesk, *ticket_ids: int) -> None:
    for ticket_id in ticket_ids:
        zendesk.add_ticket(id=ticket_id, subject=f"Order {ticket_id}", requester_id=CUSTOMER_ID,
                           comments=[{"author_id": CUSTOMER_ID, "body": "Please put me through to a real person."}])


def start(slack, zendesk, tmp: Path, config: str = "", **env) -> SeamServer:
    path = tmp / "seam.toml"
    path.write_text(UNPACED + config)
    return SeamServer(seam_env(slack=slack, zendesk=zendesk, tmp=tmp, SEAM_CONFIG=str(path), MANAGER_USER_IDS=MANAGER,
                               **env), tmp / "serve.log").start()


def serve_once(slack, zendesk, tmp: Path, **env) -> subprocess.CompletedProcess:
    """`python -m bot serve` that is expected to refuse to start."""
    return subprocess.run([sys.executable, "-m", "bot", "serve"], env=seam_env(slack=slack, zendesk=zendesk, tmp=tmp,
                                                                                **env),
                          capture_output=True, text=True, timeout=60, cwd=tmp)


# -- 3. bounded calls, hung tickets, stuck work ------------------------------------------------------------------

# The five production HTTP clients and the adapters' default retry deadline.
CLIENTS = {
    "zendesk": ("bot.helpdesk.zendesk.adapter", "zendesk_client", "ZendeskAdapter"),
    "freshdesk": ("bot.helpdesk.freshdesk.adapter", "freshdesk_client", "FreshdeskAdapter"),
    "gorgias": ("bot.helpdesk.gorgias.adapter", "gorgias_client", "GorgiasAdapter"),
    "front": ("bot.helpdesk.front.adapter", "front_client", "FrontAdapter"),
    "helpscout": ("bot.helpdesk.helpscout.adapter", "helpscout_client", "HelpScoutAdapter"),
}


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_every_helpdesk_call_is_bounded_well_under_the_lease(name):
    import importlib

    module_name, client_name, adapter_name = CLIENTS[name]
    module = importlib.import_module(module_name)
    settings = registry.plugin(name).read_settings(lambda _name: "x")
    timeout = getattr(module, client_name)(settings).timeout
    assert timeout.connect is not None and timeout.connect <= 5
    assert timeout.read is not None and timeout.read <= 10
    deadline = inspect.signature(getattr(module, adapter_name)).parameters["retry_deadline"].default
    # A hung GET: attempts until the deadline, the last one running its whole read timeout.
    assert deadline + timeout.read <= 30 <= LEASE_SECONDS / 10


def test_slack_and_the_engines_are_bounded_well_under_the_lease():
    client = slack_client(token="x", base_url="http://127.0.0.1:9/")
    assert client.timeout <= 10
    connection_retries = max(h.max_retry_count for h in client.retry_handlers
                             if isinstance(h, ConnectionErrorRetryHandler))
    assert client.timeout * (1 + connection_retries) <= LEASE_SECONDS / 5
    assert openai_engine.TIME_BUDGET <= LEASE_SECONDS / 5 and openai_engine.REQUEST_TIMEOUT <= 30
    assert embeddings.REQUEST_TIMEOUT.read <= LEASE_SECONDS / 5


def test_retries_never_take_the_last_free_worker(tmp_path):
    store = Store(tmp_path / "seam.db")
    for n in range(3):
        store.record_event(helpdesk="zendesk", dedupe_key=f"old{n}", ticket_id=str(n), body="{}")
        store.db.execute("update events set attempts = 2 where dedupe_key = ?", [f"old{n}"])  # failed before
    worker = Worker(store=store, handlers={"ticket": lambda event: "done"})
    # One retry is running already: with a limit of one, the next thread takes only a first attempt.
    retry = store.claim_event(lease_seconds=60)
    worker._running[-1] = (retry, 0.0)
    assert worker.run_once(max_retrying=1) is False, "no new work, and the retries wait for a free slot"
    store.record_event(helpdesk="zendesk", dedupe_key="new", ticket_id="9", body="{}")
    assert worker.run_once(max_retrying=1) is True
    assert store.db.execute("select state from events where dedupe_key = 'new'").fetchone()[0] == "done"
    del worker._running[-1]
    assert worker.run_once(max_retrying=1) is True, "with the slot free, a retry runs"


def test_tickets_whose_helpdesk_read_hangs_do_not_stall_the_others_and_show_as_stuck(
        fake_slack, fake_zendesk, tmp_path):
    hanging, flowing = [9101, 9102], [9103, 9104, 9105, 9106, 9107]
    wants_a_person(fake_zendesk, *hanging, *flowing)
    server = start(fake_slack, fake_zendesk, tmp_path, '\n[server]\nstuck_after = "2s"\n')
    try:
        for ticket_id in hanging:
            fake_zendesk.set_ticket_delay(ticket_id, 60)
            assert server.post_webhook({"ticket_id": ticket_id}).status_code == 202
        wait_until(lambda: {c.path for c in fake_zendesk.calls_to("get_ticket")} >=
                   {f"/api/v2/tickets/{t}.json" for t in hanging}, what="both hung reads to start")
        started = time.monotonic()
        for ticket_id in flowing:
            assert server.post_webhook({"ticket_id": ticket_id}).status_code == 202
        wait_until(lambda: all(posts_for(fake_slack, t) for t in flowing), timeout=15,
                   what="the other tickets, posted while two reads hang")
        assert time.monotonic() - started < 15
        assert not any(posts_for(fake_slack, t) for t in hanging)
        health = wait_until(lambda: (h := server.http.get("/healthz").json()) and len(h["stuck"]) == 2 and h,
                            what="the hung jobs named as stuck")
        assert {job["ticket_id"] for job in health["stuck"]} == {str(t) for t in hanging}
        assert all(job["seconds"] >= 2 and job["id"] and job["kind"] == "ticket" for job in health["stuck"])
    finally:
        for ticket_id in hanging:
            fake_zendesk.set_ticket_delay(ticket_id, 0)
        assert server.stop() == 0, server.log()


# -- 4. refused credentials at start -------------------------------------------------------------------------------

def last_line(result: subprocess.CompletedProcess) -> str:
    """The one line serve's refusal leaves on stderr (its log goes to stdout), checked to be the only one."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_serve_refuses_to_start_with_a_revoked_slack_token(fake_slack, fake_zendesk, tmp_path):
    result = serve_once(fake_slack, fake_zendesk, tmp_path, SLACK_BOT_TOKEN="xoxb-revoked")
    assert result.returncode != 0
    assert last_line(result).startswith("Error: Slack refused SLACK_BOT_TOKEN (invalid_auth)"), result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_to_start_outside_its_channel(fake_slack, fake_zendesk, tmp_path):
    result = serve_once(fake_slack, fake_zendesk, tmp_path, ESCALATION_CHANNEL="C0NOWHERE")
    assert result.returncode != 0
    assert "ESCALATION_CHANNEL C0NOWHERE is not a channel Slack knows" in last_line(result), result.stderr
    fake_slack.add_channel("C0OUTSIDE", name="support", is_member=False)
    result = serve_once(fake_slack, fake_zendesk, tmp_path, ESCALATION_CHANNEL="C0OUTSIDE")
    assert result.returncode != 0
    assert "the app is not a member of ESCALATION_CHANNEL #support (C0OUTSIDE)" in last_line(result), result.stderr


def test_serve_refuses_to_start_when_the_helpdesk_refuses_its_credentials(fake_slack, fake_zendesk, tmp_path):
    result = serve_once(fake_slack, fake_zendesk, tmp_path, ZENDESK_API_TOKEN="not-the-token")
    assert result.returncode != 0
    line = last_line(result)
    assert line.startswith("Error: HELPDESK=zendesk refused Seam's API credentials") and "401" in line, result.stderr


def test_serve_starts_when_an_api_answers_less_than_slack_or_the_helpdesk_do(fake_slack, fake_zendesk, tmp_path):
    """Only a definite refusal stops serve: a channel answer without `is_member`, a conversations.info Slack's
    API does not serve, or a helpdesk whose "me" endpoint is missing (404) is logged, and Seam starts."""
    fake_slack.fail("conversations.info", status=200, body={"ok": True, "channel": {"id": CHANNEL,
                                                                                    "name": "escalations"}})
    server = start(fake_slack, fake_zendesk, tmp_path)
    assert server.stop() == 0
    assert "membership not reported" in server.log()
    fake_slack.fail("conversations.info", status=200, body={"ok": False, "error": "unknown_method"})
    fake_zendesk.fail("me", status=404, body={"error": "InvalidEndpoint"})
    (tmp_path / "again").mkdir()
    server = start(fake_slack, fake_zendesk, tmp_path / "again")
    assert server.stop() == 0
    log = server.log()
    assert "could not check ESCALATION_CHANNEL" in log and "could not check the zendesk credentials" in log


def test_serve_logs_no_warning_about_an_unused_token(fake_slack, fake_zendesk, tmp_path):
    server = start(fake_slack, fake_zendesk, tmp_path)
    assert server.stop() == 0
    log = server.log()
    assert "will be unused" not in log and "checked Slack: signed in as" in log and "checked zendesk: API user" in log


# The variable holding each helpdesk's secret credential, as `serve_env()` sets it.
SECRETS = {"zendesk": "ZENDESK_API_TOKEN", "freshdesk": "FRESHDESK_API_KEY", "gorgias": "GORGIAS_API_KEY",
           "front": "FRONT_API_TOKEN", "helpscout": "HELPSCOUT_APP_SECRET"}


@pytest.mark.parametrize("name", sorted(HARNESSES))
def test_every_helpdesk_checks_its_credentials_with_its_cheapest_authenticated_call(name):
    from bot.config import load_settings

    with HARNESSES[name]() as harness:
        assert harness.adapter.check(), "says who Seam is there"
        env = {**harness.serve_env(), SECRETS[name]: "not-the-secret"}
        refused = registry.plugin(name).build(load_settings(env=env, cwd=Path.cwd()))
        with pytest.raises(HelpdeskError) as error:
            refused.check()
        assert error.value.status in (401, 403)


# -- 4. degraded while serving ----------------------------------------------------------------------------------------

def home_alert(server: SeamServer, slack) -> str:
    body = json.dumps({"token": "t", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
                       "event_id": f"Ev{time.monotonic_ns()}", "event_time": int(time.time()),
                       "event": {"type": "app_home_opened", "user": MANAGER, "channel": "D1", "tab": "home"}}).encode()
    before = len(slack.calls_to("views.publish"))
    assert server.http.post("/slack/events", content=body,
                            headers=slack_headers(body, content_type="application/json")).status_code == 200
    slack.wait_for("views.publish", before + 1)
    blocks = slack.home_view(MANAGER)["blocks"]
    alerts = [b["text"]["text"] for b in blocks if b["type"] == "section" and "Seam is not doing its job"
              in b["text"]["text"]]
    assert len(alerts) <= 1, "one alert"
    return alerts[0] if alerts else ""


def degraded(server: SeamServer, words: str) -> dict:
    """Wait for /healthz to answer 503 with a problem holding `words`; its body."""
    def found():
        response = server.http.get("/healthz")
        body = response.json()
        return response.status_code == 503 and any(words in p for p in body.get("problems", [])) and body

    return wait_until(found, timeout=30, what=f"/healthz degraded: {words}")


def test_healthz_degrades_on_a_revoked_token_a_lost_channel_a_refused_helpdesk_and_dying_jobs(
        fake_slack, fake_zendesk, tmp_path):
    wants_a_person(fake_zendesk, *range(9201, 9207))
    server = start(fake_slack, fake_zendesk, tmp_path)
    try:
        assert server.http.get("/healthz").json()["ok"] is True
        assert home_alert(server, fake_slack) == ""

        # Slack revokes the token: every post fails with invalid_auth.
        fake_slack.fail("chat.postMessage", status=200, times=1000, body={"ok": False, "error": "invalid_auth"})
        assert server.post_webhook({"ticket_id": 9201}).status_code == 202
        body = degraded(server, "invalid_auth on chat.postMessage")
        assert body["ok"] is False and "SLACK_BOT_TOKEN" in body["problems"][0]
        assert "SLACK_BOT_TOKEN" in home_alert(server, fake_slack)

        # The app is removed from the channel: posts there fail with not_in_channel.
        fake_slack.clear_failures()
        fake_slack.fail("chat.postMessage", status=200, times=1000, body={"ok": False, "error": "not_in_channel"})
        assert server.post_webhook({"ticket_id": 9202}).status_code == 202
        body = degraded(server, f"Slack will not let Seam post in {CHANNEL} (not_in_channel")
        assert not any("invalid_auth" in p for p in body["problems"]), "the calls that worked since cleared it"
        assert f"post in {CHANNEL}" in home_alert(server, fake_slack)
        fake_slack.clear_failures()
        assert server.post_webhook({"ticket_id": 9203}).status_code == 202
        wait_until(lambda: posts_for(fake_slack, 9203), what="a post that works again")
        # The fake holds the post before Seam has read Slack's answer to it: wait for that answer to count.
        wait_until(lambda: server.http.get("/healthz").status_code == 200, what="/healthz healthy again")

        # Zendesk refuses the API token.
        fake_zendesk.fail("get_ticket", status=401, times=1000, body={"error": "Couldn't authenticate you"})
        assert server.post_webhook({"ticket_id": 9204}).status_code == 202
        body = degraded(server, "zendesk refused Seam's credentials")
        assert "401" in body["problems"][0]
        assert "zendesk refused Seam's credentials" in home_alert(server, fake_slack)
        fake_zendesk.clear_failures()
        assert server.post_webhook({"ticket_id": 9205}).status_code == 202
        wait_until(lambda: posts_for(fake_slack, 9205), what="a helpdesk read that works again")
        wait_until(lambda: server.http.get("/healthz").status_code == 200, what="/healthz healthy again")

        # A job dies: the dead count grows past what it was at start.
        store = Store(server.env["DATABASE_PATH"])
        store.record_event(helpdesk="zendesk", dedupe_key="doomed", ticket_id="9206", body="{}", kind="nothing")
        store.db.execute("update events set state = 'dead', attempts = 5 where dedupe_key = 'doomed'")
        body = degraded(server, "1 more job failed five times")
        assert "python -m bot jobs" in body["problems"][0]
        store.db.execute("update events set state = 'done' where dedupe_key = 'doomed'")  # a person dealt with it
        assert server.http.get("/healthz").status_code == 200
    finally:
        assert server.stop() == 0, server.log()


def test_a_card_left_in_a_channel_that_is_gone_does_not_make_healthz_fail(fake_slack, tmp_path):
    # A route's old channel was archived or deleted: the card sweep's chat.update of a card there (or an erasure's
    # chat.delete) fails for good, and the poster stops trying. Seam still posts everything new: it is healthy.
    from bot.flows.health import Health

    store = Store(tmp_path / "seam.db")
    health = Health(store=store, helpdesk="zendesk")
    health.start()
    client = slack_client(token="xoxb-test", base_url=fake_slack.url + "/api/", observer=health.slack_call)
    posted = client.chat_postMessage(channel=CHANNEL, text="a card")
    fake_slack.fail("chat.update", status=200, times=1000, body={"ok": False, "error": "channel_not_found"})
    fake_slack.fail("chat.delete", status=200, times=1000, body={"ok": False, "error": "channel_not_found"})
    for method, call in (("chat.update", client.chat_update), ("chat.delete", client.chat_delete)):
        with pytest.raises(Exception, match="channel_not_found"):
            call(channel="C0GONE", ts=posted["ts"], **({"text": "x"} if method == "chat.update" else {}))
    assert health.problems() == []
    # A post Slack refuses is the problem /healthz is for.
    fake_slack.fail("chat.postMessage", status=200, times=1, body={"ok": False, "error": "not_in_channel"})
    with pytest.raises(Exception, match="not_in_channel"):
        client.chat_postMessage(channel=CHANNEL, text="another card")
    assert [p for p in health.problems() if CHANNEL in p and "not_in_channel" in p]
    store.close()
