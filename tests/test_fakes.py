"""Smoke tests for the fake Slack and Zendesk servers, driven by real clients."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.support.fakes import FakeSlack, FakeZendesk


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.url + "/", timeout=5)


@pytest.fixture
def zendesk() -> Iterator[FakeZendesk]:
    with FakeZendesk() as fake:
        yield fake


@pytest.fixture
def zd_client(zendesk: FakeZendesk) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=zendesk.url, auth=zendesk.auth, timeout=5) as c:
        yield c


# --------------------------------------------------------------------- Slack
def test_slack_auth_test_and_invalid_token(slack: FakeSlack, client: WebClient) -> None:
    assert client.auth_test()["user_id"] == "UBOT"
    bad = WebClient(token="xoxb-wrong", base_url=slack.url + "/")
    with pytest.raises(SlackApiError) as exc:
        bad.auth_test()
    assert exc.value.response.status_code == 200
    assert exc.value.response["error"] == "invalid_auth"


def test_slack_post_and_read_back_with_metadata(slack: FakeSlack, client: WebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Ticket #7*"}}]
    metadata = {"event_type": "seam_escalation", "event_payload": {"ticket_id": 7}}
    first = client.chat_postMessage(channel="C1", text="first", blocks=blocks, metadata=metadata)
    second = client.chat_postMessage(channel="C1", text="second")
    assert first["ts"] < second["ts"]
    reply = client.chat_postMessage(channel="C1", text="in thread", thread_ts=first["ts"])
    assert reply["message"]["thread_ts"] == first["ts"]

    history = client.conversations_history(channel="C1", include_all_metadata=True)
    assert [m["text"] for m in history["messages"]] == ["second", "first"]
    top = history["messages"][1]
    assert top["metadata"] == metadata
    assert top["blocks"] == blocks
    assert top["reply_count"] == 1
    plain = client.conversations_history(channel="C1")
    assert all("metadata" not in m for m in plain["messages"])

    thread = client.conversations_replies(channel="C1", ts=first["ts"])
    assert [m["text"] for m in thread["messages"]] == ["first", "in thread"]
    assert [r["text"] for r in slack.replies("C1", first["ts"])] == ["in thread"]
    assert slack.messages("C1")[0]["metadata"] == metadata

    call = slack.wait_for("chat.postMessage", 3)[0]
    assert call.params["blocks"] == blocks
    assert call.headers["authorization"] == "Bearer xoxb-test"


def test_slack_form_encoded_json_fields(slack: FakeSlack) -> None:
    blocks = [{"type": "section", "text": {"type": "plain_text", "text": "hi"}}]
    r = httpx.post(
        f"{slack.url}/chat.postMessage",
        data={"channel": "C2", "blocks": json.dumps(blocks)},
        headers={"Authorization": "Bearer xoxb-test"},
    )
    assert r.json()["ok"] is True
    assert slack.messages("C2")[0]["blocks"] == blocks


def test_slack_history_pagination(slack: FakeSlack, client: WebClient) -> None:
    for i in range(5):
        client.chat_postMessage(channel="C3", text=f"m{i}")
    # SlackResponse iteration mutates one object in place: copy each page's data.
    pages = [dict(p.data) for p in client.conversations_history(channel="C3", limit=2)]
    assert [len(p["messages"]) for p in pages] == [2, 2, 1]
    assert [m["text"] for p in pages for m in p["messages"]] == ["m4", "m3", "m2", "m1", "m0"]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"channel": "C1", "text": "x" * 40_001}, "msg_too_long"),
        ({"channel": "C1", "blocks": [{"type": "divider"}] * 51}, "invalid_blocks"),
        (
            {"channel": "C1", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}]},
            "invalid_blocks",
        ),
        ({"channel": "C1"}, "no_text"),
        ({"channel": "", "text": "hi"}, "channel_not_found"),
    ],
)
def test_slack_post_validation(slack: FakeSlack, client: WebClient, kwargs: dict, error: str) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(**kwargs)
    assert exc.value.response["error"] == error
    assert slack.messages("C1") == []


def test_slack_429_injection(slack: FakeSlack, client: WebClient) -> None:
    slack.fail("chat.postMessage", status=429, headers={"Retry-After": "1"})
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="hi")
    assert exc.value.response.status_code == 429
    assert exc.value.response.headers["retry-after"] in ("1", ["1"])
    assert exc.value.response["error"] == "ratelimited"
    assert client.chat_postMessage(channel="C1", text="hi")["ok"]  # resumes
    calls = slack.calls_to("chat.postMessage")
    assert [c.failed for c in calls] == [True, False]
    assert len(slack.wait_for("chat.postMessage", 1)) == 1


def test_slack_update_users_views_and_unknown(slack: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C1", text="old")["ts"]
    client.chat_update(channel="C1", ts=ts, text="new")
    assert slack.messages("C1")[0]["text"] == "new"
    with pytest.raises(SlackApiError, match="message_not_found"):
        client.chat_update(channel="C1", ts="1.000000", text="x")

    slack.add_user("U1", email="ann@example.com", name="ann")
    assert client.users_info(user="U1")["user"]["profile"]["email"] == "ann@example.com"
    with pytest.raises(SlackApiError, match="user_not_found"):
        client.users_info(user="U404")
    assert client.conversations_open(users="U1")["channel"]["id"] == "DU1"
    slack.add_usergroup("S1", ["U1", "U2"])
    assert client.usergroups_users_list(usergroup="S1")["users"] == ["U1", "U2"]
    assert client.chat_postEphemeral(channel="C1", user="U1", text="psst")["message_ts"]

    view = {"type": "modal", "title": {"type": "plain_text", "text": "T"}, "blocks": []}
    opened = client.views_open(trigger_id="t1", view=view)["view"]
    with pytest.raises(SlackApiError, match="exchanged_trigger_id"):
        client.views_open(trigger_id="t1", view=view)
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        client.views_open(trigger_id="t2", view={**view, "blocks": [{"type": "divider"}] * 101})
    updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view=view)["view"]
    assert updated["hash"] != opened["hash"]
    client.views_publish(user_id="U1", view={"type": "home", "blocks": []})
    assert slack.home_view("U1")["type"] == "home"

    assert client.api_call("reactions.add", params={"channel": "C1", "name": "eyes"})["ok"]
    assert len(slack.calls_to("reactions.add")) == 1


def test_slack_delay_and_wait_for_timeout(slack: FakeSlack, client: WebClient) -> None:
    slack.set_delay("auth.test", 0.2)
    start = time.monotonic()
    client.auth_test()
    assert time.monotonic() - start >= 0.2
    with pytest.raises(AssertionError, match="chat.postMessage"):
        slack.wait_for("chat.postMessage", 1, timeout=0.05)
    threading.Timer(0.05, lambda: client.chat_postMessage(channel="C1", text="late")).start()
    assert slack.wait_for("chat.postMessage", 1, timeout=2)[0].params["text"] == "late"


# ------------------------------------------------------------------- Zendesk
def _seed(zendesk: FakeZendesk, *, comments: int = 250) -> None:
    zendesk.add_user(id=1, name="Ann", email="Ann@Example.com")
    zendesk.add_user(id=2, name="Agent Bob", email="bob@acme.test", role="agent")
    zendesk.add_ticket(
        id=7,
        subject="Printer on fire",
        requester_id=1,
        comments=[{"author_id": 1, "body": f"comment {i}"} for i in range(comments)],
        tags=["vip"],
    )


def test_zendesk_auth_failure(zendesk: FakeZendesk) -> None:
    r = httpx.get(f"{zendesk.url}/api/v2/users/me.json", auth=("bot@example.com/token", "nope"))
    assert r.status_code == 401
    assert r.json() == {"error": "Couldn't authenticate you"}
    r = httpx.get(f"{zendesk.url}/api/v2/users/me.json")
    assert r.status_code == 401
    assert zendesk.calls_to("me")[0].ok is False


def test_zendesk_ticket_and_paginated_comments(zendesk: FakeZendesk, zd_client: httpx.Client) -> None:
    _seed(zendesk)
    r = zd_client.get("/api/v2/tickets/7.json", params={"include": "users"})
    assert r.status_code == 200
    body = r.json()
    assert body["ticket"]["description"] == "comment 0"
    assert [u["id"] for u in body["users"]] == [1]
    assert zd_client.get("/api/v2/tickets/8").status_code == 404

    url: str | None = "/api/v2/tickets/7/comments.json?per_page=100"
    seen: list[dict] = []
    while url:
        page = zd_client.get(url).json()
        seen.extend(page["comments"])
        url = page["next_page"]
    assert len(seen) == 250
    assert [c["body"] for c in seen[:2]] == ["comment 0", "comment 1"]
    assert [c["id"] for c in seen] == sorted(c["id"] for c in seen)
    assert seen[0]["created_at"] < seen[-1]["created_at"]
    assert len(zendesk.wait_for("list_comments", 3)) == 3


def test_zendesk_reply_tags_and_validation(zendesk: FakeZendesk, zd_client: httpx.Client) -> None:
    _seed(zendesk, comments=1)
    r = zd_client.put(
        "/api/v2/tickets/7.json",
        json={"ticket": {"comment": {"body": "We're on it"}, "status": "pending"}},
    )
    assert r.status_code == 200
    assert r.json()["audit"]["events"][0]["type"] == "Comment"
    last = zendesk.comments(7)[-1]
    assert (last["body"], last["public"], last["author_id"]) == ("We're on it", True, 900)
    assert zendesk.ticket(7)["status"] == "pending"

    r = zd_client.put("/api/v2/tickets/7", json={"ticket": {"assignee_id": 1}})
    assert r.status_code == 422 and r.json()["error"] == "RecordInvalid"
    assert zd_client.put("/api/v2/tickets/7", json={"ticket": {"assignee_id": 2}}).status_code == 200
    assert zendesk.ticket(7)["assignee_id"] == 2
    r = zd_client.put("/api/v2/tickets/7", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400

    r = zd_client.put("/api/v2/tickets/7/tags.json", json={"tags": ["vip", "escalated"]})
    assert r.json() == {"tags": ["vip", "escalated"]}


def test_zendesk_search_users_and_failure_injection(zendesk: FakeZendesk, zd_client: httpx.Client) -> None:
    _seed(zendesk, comments=1)
    r = zd_client.get("/api/v2/users/search.json", params={"query": "email:ann@example.COM"})
    assert r.json()["count"] == 1 and r.json()["users"][0]["id"] == 1
    assert zd_client.get("/api/v2/users/search", params={"query": "email:x@y.z"}).json()["users"] == []
    assert zd_client.get("/api/v2/users/me").json()["user"]["id"] == 900
    assert zd_client.get("/api/v2/users/2.json").json()["user"]["role"] == "agent"

    zendesk.fail("get_ticket", status=503, times=2)
    assert [zd_client.get("/api/v2/tickets/7").status_code for _ in range(3)] == [503, 503, 200]
    assert [c.failed for c in zendesk.calls_to("get_ticket")] == [True, True, False]
