"""Property tests of the two inbound endpoints, in-process (Flask's test client, no workers started).

Contract (../shared/CONTRACT.md): `POST /webhooks/zendesk` and `POST /slack/events` never answer 5xx for bad
input; a request without a valid signature gets 401 and changes nothing; a signed webhook that is not usable
gets 400 with a JSON `error` and records nothing; a body over 1 MB gets 413.

Each bug these tests found has its own explicit test below as well (a Unicode-digit timestamp, bodies too deep
or with too long a number for the JSON parser, unsigned bodies Bolt could not parse, signed payloads missing
fields Slack always sends).
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.config import Settings
from bot.helpdesk.zendesk.settings import ZendeskSettings
from bot.services import Services
from handlers.app import build_bolt_app
from handlers.web import create_web_app
from tests.support.constants import CHANNEL, SLACK_SECRET, ZENDESK_SECRET
from tests.support.fakes import FakeSlack, FakeZendesk
from tests.support.payloads import block_action, edit_values, reject_values, view_submission
from tests.support.signing import slack_headers, zendesk_headers

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MANAGER = "UMANAGER"
ROW_TABLES = ("events", "escalations", "feedback", "settings", "audit_log")
ONE_MB = 1024 * 1024


# -- the app under test ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fakes():
    with FakeSlack() as slack, FakeZendesk() as zendesk:
        yield slack, zendesk


@pytest.fixture(scope="module")
def services(fakes, tmp_path_factory):
    slack, zendesk = fakes
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    config = Settings(
        host="127.0.0.1", port=0,
        slack_bot_token=slack.token, slack_signing_secret=SLACK_SECRET, slack_api_url=slack.url + "/",
        escalation_channel=CHANNEL, manager_user_ids=(MANAGER,),
        helpdesk_settings=ZendeskSettings(subdomain=zendesk.subdomain, email=zendesk.email, api_token=zendesk.token,
                                          api_url=zendesk.url, webhook_secret=ZENDESK_SECRET),
        database_path=str(tmp / "seam.db"),
    )
    return Services.build(config)  # the workers are never started: nothing but the endpoints runs


@pytest.fixture(scope="module")
def client(services):
    app = create_web_app(services, build_bolt_app(services))
    return app.test_client()


def counts(services: Services) -> dict[str, int]:
    return {table: services.store.db.execute(f"select count(*) from {table}").fetchone()[0] for table in ROW_TABLES}


# -- Zendesk webhook bodies ----------------------------------------------------------------------------------

VALID_PAYLOADS = [
    {"ticket_id": 123},
    {"ticket_id": "456"},
    {"ticket": {"id": 789, "subject": "Help", "status": "open"}},
    {"ticket_id": 42, "ticket": {"id": 42, "latest_comment": "hi"}, "requester": {"email": "a@b.example"}},
]

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=50),
    st.sampled_from(["", "\x00", "\u0000abc", "{{ticket.id}}", "12\n", " 7 ", "0", "-1", "1e3", "١٢٣",
                     "\ud800", "𝟙𝟚𝟛", "1" * 25, "x" * 10_000]),
)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)


def nest(value: object, depth: int) -> object:
    for _ in range(depth):
        value = {"ticket": value} if depth % 2 else [value]
    return value


@st.composite
def mutated_payloads(draw) -> bytes:
    payload = json.loads(json.dumps(draw(st.sampled_from(VALID_PAYLOADS))))
    mutation = draw(st.sampled_from(["drop", "wrong_type", "huge", "deep", "nan", "unicode", "null_bytes",
                                     "flip", "truncate", "extra"]))
    if mutation == "drop":
        for key in draw(st.lists(st.sampled_from(["ticket_id", "ticket"]), max_size=2)):
            payload.pop(key, None)
        if isinstance(payload.get("ticket"), dict) and draw(st.booleans()):
            payload["ticket"].pop("id", None)
    elif mutation == "wrong_type":
        key = draw(st.sampled_from(["ticket_id", "ticket"]))
        payload[key] = draw(json_values)
    elif mutation == "huge":
        payload[draw(st.sampled_from(["ticket_id", "subject", "x"]))] = "9" * draw(st.integers(1000, 200_000))
    elif mutation == "deep":
        payload["ticket"] = nest({"id": 1}, draw(st.integers(1, 200)))
    elif mutation == "nan":
        return json.dumps({**payload, "ticket_id": draw(st.sampled_from([float("nan"), float("inf"), -0.0]))}
                          ).encode()
    elif mutation == "unicode":
        payload["ticket_id"] = draw(st.text(min_size=1, max_size=20))
    elif mutation == "null_bytes":
        raw = json.dumps(payload).encode()
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + b"\x00" * draw(st.integers(1, 4)) + raw[at:]
    elif mutation == "extra":
        payload.update(draw(st.dictionaries(st.text(max_size=10), json_values, max_size=5)))
    raw = bytearray(json.dumps(payload, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass"))
    if mutation == "flip" and raw:
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(raw) - 1))
            raw[at] ^= 1 << draw(st.integers(0, 7))
    if mutation == "truncate":
        raw = raw[:draw(st.integers(0, len(raw)))]
    return bytes(raw)


webhook_bodies = st.one_of(
    st.binary(max_size=2000),
    json_values.map(lambda v: json.dumps(v).encode()),
    mutated_payloads(),
    st.sampled_from([b"", b"null", b"[]", b"{}", b"\xff\xfe\x00", b'{"ticket_id": 1',
                     b"\xef\xbb\xbf{\"ticket_id\": 1}"]),
)


def now_iso(offset: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%SZ")


@st.composite
def bad_zendesk_headers(draw, body: bytes) -> dict[str, str]:
    """Unsigned, or signed wrongly: wrong secret, tampered signature, stale, future or unreadable timestamp."""
    kind = draw(st.sampled_from(["none", "no_timestamp", "no_signature", "wrong_secret", "garbage_signature",
                                 "stale", "future", "bad_timestamp", "other_body"]))
    headers = zendesk_headers(body)
    if kind == "none":
        return {"Content-Type": "application/json"}
    if kind == "no_timestamp":
        del headers["X-Zendesk-Webhook-Signature-Timestamp"]
    elif kind == "no_signature":
        del headers["X-Zendesk-Webhook-Signature"]
    elif kind == "wrong_secret":
        wrong = draw(st.text(min_size=1, max_size=40).filter(lambda s: s != ZENDESK_SECRET))
        headers = zendesk_headers(body, secret=wrong)
    elif kind == "garbage_signature":
        printable = st.characters(min_codepoint=33, max_codepoint=126)
        headers["X-Zendesk-Webhook-Signature"] = draw(st.text(alphabet=printable,
                                                              min_size=1, max_size=60))
    elif kind == "stale":
        headers = zendesk_headers(body, timestamp=now_iso(-draw(st.integers(301, 10**8))))
    elif kind == "future":
        headers = zendesk_headers(body, timestamp=str(int(time.time()) + draw(st.integers(301, 10**8))))
    elif kind == "bad_timestamp":
        # Header values travel as Latin-1: any of its printable characters may arrive ("²" once gave a 500).
        stamp = draw(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255, blacklist_categories=("Cc",)),
                             min_size=1, max_size=30))
        headers = zendesk_headers(body, timestamp=stamp.strip() or "x")
    elif kind == "other_body":
        headers = zendesk_headers(body + b" ")
    return headers


@FUZZ
@given(data=st.data(), body=webhook_bodies)
def test_unsigned_or_badly_signed_webhooks_get_401_and_record_nothing(client, services, data, body):
    headers = data.draw(bad_zendesk_headers(body))
    before = counts(services)
    response = client.post("/webhooks/zendesk", data=body, headers=headers)
    assert response.status_code == 401, (response.status_code, response.get_data()[:300])
    assert "error" in response.get_json()
    assert counts(services) == before


@FUZZ
@given(body=webhook_bodies)
def test_signed_webhooks_are_never_5xx_and_invalid_ones_get_400_and_record_nothing(client, services, body):
    before = counts(services)
    response = client.post("/webhooks/zendesk", data=body, headers=zendesk_headers(body))
    assert response.status_code < 500, (response.status_code, response.get_data()[:300])
    assert response.status_code in (200, 202, 400), (response.status_code, response.get_data()[:300])
    payload = response.get_json()
    if response.status_code == 400:
        assert isinstance(payload.get("error"), str) and payload["error"]
        assert counts(services) == before
    else:
        after = counts(services)
        assert after["events"] - before["events"] == (1 if response.status_code == 202 else 0)
        assert {k: v for k, v in after.items() if k != "events"} == {k: v for k, v in before.items() if k != "events"}


# -- Slack bodies ----------------------------------------------------------------------------------------------

def slack_shapes(escalation: str = "1") -> list[dict]:
    return [
        block_action(user="UAGENT1", action_id="seam_claim", value=escalation, message_ts="1700000000.000100"),
        block_action(user="UAGENT2", action_id="seam_approve", value=escalation, message_ts="1700000000.000100"),
        block_action(user=MANAGER, action_id="seam_reject", value=escalation, message_ts="1700000000.000100"),
        block_action(user="UAGENT3", action_id="seam_edit", value=escalation, message_ts="1700000000.000100"),
        view_submission(user="UAGENT1", callback_id="seam_edit_submit",
                        private_metadata=json.dumps({"escalation_id": int(escalation)}), values=edit_values("Hi!")),
        view_submission(user=MANAGER, callback_id="seam_reject_submit",
                        private_metadata=json.dumps({"escalation_id": int(escalation)}),
                        values=reject_values("other", "wrong")),
    ]


COMMAND_TEXTS = ["help", "thresholds", "set auto 0.95", "set draft 0.2", "set auto 2", "pause", "resume", "stats", ""]


def command_form(user: str, text: str) -> dict:
    return {"token": "legacy", "team_id": "T1", "team_domain": "acme", "channel_id": CHANNEL, "channel_name": "esc",
            "user_id": user, "user_name": user.lower(), "command": "/escalation", "text": text,
            "api_app_id": "A1", "response_url": "https://hooks.slack.invalid/commands/1",
            "trigger_id": "1.2.abc"}


def drop_or_retype(draw, node: object, depth: int = 0) -> object:
    """Walk a payload and, at random, drop keys or replace values with values of other types."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            roll = draw(st.integers(0, 9))
            if roll == 0:
                continue
            out[key] = draw(json_values) if roll == 1 else drop_or_retype(draw, value, depth + 1)
        return out
    if isinstance(node, list):
        return [drop_or_retype(draw, item, depth + 1) for item in node]
    return node


@st.composite
def mutated_slack_bodies(draw) -> tuple[bytes, str]:
    """(body, content type): interactivity payloads and slash commands with fields dropped or of the wrong type."""
    kind = draw(st.sampled_from(["interactive", "command", "json_event"]))
    if kind == "interactive":
        payload = drop_or_retype(draw, draw(st.sampled_from(slack_shapes(str(draw(st.integers(1, 5)))))))
        return urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"
    if kind == "command":
        return draw(command_bodies())
    event = {"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": "Ev1", "event_time": 1,
             "event": {"type": "app_home_opened", "user": "UAGENT1", "tab": "home"}}
    return json.dumps(drop_or_retype(draw, event)).encode(), "application/json"


@st.composite
def command_bodies(draw) -> tuple[bytes, str]:
    form = command_form(draw(st.sampled_from(["UAGENT1", MANAGER])), draw(st.sampled_from(COMMAND_TEXTS)))
    for key in draw(st.lists(st.sampled_from(sorted(form)), max_size=3, unique=True)):
        if draw(st.booleans()):
            del form[key]
        else:
            form[key] = draw(st.sampled_from(["", "x" * 3000, "\x00", "💥", "%zz"]))
    return urlencode(form).encode(), "application/x-www-form-urlencoded"


# Slash commands (any fields), other forms, and interactivity payloads in Slack's own shapes; the explicit
# tests below add bodies Bolt itself cannot parse.
verifiable_slack_bodies = st.one_of(
    command_bodies(),
    st.dictionaries(st.text(max_size=10).filter(lambda k: "payload" not in k), st.text(max_size=30), max_size=5)
    .map(lambda form: (urlencode(form).encode(), "application/x-www-form-urlencoded")),
    st.binary(max_size=300).filter(lambda b: b"payload" not in b and not b.lstrip().startswith(b"{"))
    .map(lambda b: (b, "application/x-www-form-urlencoded")),
    st.sampled_from(slack_shapes()).map(
        lambda p: (urlencode({"payload": json.dumps(p)}).encode(), "application/x-www-form-urlencoded")),
)

any_slack_bodies = st.one_of(
    verifiable_slack_bodies,
    mutated_slack_bodies(),
    st.binary(max_size=500).map(lambda b: (b, "application/x-www-form-urlencoded")),
    st.binary(max_size=500).map(lambda b: (b, "application/json")),
    json_values.map(lambda v: (json.dumps(v).encode(), "application/json")),
    json_values.map(lambda v: (urlencode({"payload": json.dumps(v)}).encode(), "application/x-www-form-urlencoded")),
)

BROKEN_PAYLOAD = (b"payload=%7Bnot+json", "application/x-www-form-urlencoded")
LIST_PAYLOAD = (urlencode({"payload": "[1, 2]"}).encode(), "application/x-www-form-urlencoded")
NULL_RESPONSE_URLS = (urlencode({"payload": json.dumps({"type": "view_submission", "response_urls": None})}).encode(),
                      "application/x-www-form-urlencoded")


def post_slack(client, body: bytes, content_type: str, *, signed: bool, secret: str = SLACK_SECRET):
    headers = (slack_headers(body, secret=secret, content_type=content_type) if signed
               else {"Content-Type": content_type})
    return client.post("/slack/events", data=body, headers=headers)


@FUZZ
@given(body=verifiable_slack_bodies, forged=st.booleans())
def test_unsigned_or_forged_slack_requests_get_401_and_change_nothing(client, services, body, forged):
    before = counts(services)
    response = post_slack(client, *body, signed=forged, secret="not-the-signing-secret")
    assert response.status_code == 401, (response.status_code, response.get_data()[:300])
    assert counts(services) == before


@FUZZ
@example(body=BROKEN_PAYLOAD)
@example(body=LIST_PAYLOAD)
@example(body=NULL_RESPONSE_URLS)
@given(body=any_slack_bodies)
def test_any_unsigned_slack_request_gets_401(client, services, body):
    before = counts(services)
    response = post_slack(client, *body, signed=False)
    assert response.status_code == 401, (response.status_code, response.get_data()[:300])
    assert counts(services) == before


@FUZZ
@example(body=BROKEN_PAYLOAD)
@given(body=any_slack_bodies)
def test_signed_slack_requests_are_never_5xx(client, body):
    response = post_slack(client, *body, signed=True)
    assert response.status_code < 500, (response.status_code, response.get_data()[:300])


# -- explicit cases --------------------------------------------------------------------------------------------

def test_replayed_slack_request_six_minutes_old_gets_401(client, services):
    body = urlencode(command_form(MANAGER, "pause")).encode()
    before = counts(services)
    headers = slack_headers(body, timestamp=int(time.time()) - 360)
    response = client.post("/slack/events", data=body, headers=headers)
    assert response.status_code == 401
    assert counts(services) == before
    # The same request, fresh, is accepted: the window is what refused it.
    fresh = client.post("/slack/events", data=body, headers=slack_headers(body))
    assert fresh.status_code == 200


def test_zendesk_webhook_six_minutes_old_gets_401(client, services):
    body = json.dumps({"ticket_id": 31337}).encode()
    before = counts(services)
    for stamp in (now_iso(-360), str(int(time.time()) - 360), now_iso(+360)):
        response = client.post("/webhooks/zendesk", data=body, headers=zendesk_headers(body, timestamp=stamp))
        assert response.status_code == 401, stamp
    assert counts(services) == before
    assert client.post("/webhooks/zendesk", data=body, headers=zendesk_headers(body)).status_code == 202


@pytest.mark.parametrize("name", ["freshdesk", "gorgias", "Zendesk", "zendesk2"])
def test_webhooks_for_a_helpdesk_this_deployment_does_not_use_get_404_and_record_nothing(client, services, name):
    body = json.dumps({"ticket_id": 4242}).encode()
    before = counts(services)
    response = client.post(f"/webhooks/{name}", data=body, headers=zendesk_headers(body))
    assert response.status_code == 404 and "zendesk" in response.get_json()["error"]
    assert counts(services) == before


@pytest.mark.parametrize("signed", [True, False])
def test_bodies_over_1_mb_get_413_on_both_endpoints(client, services, signed):
    before = counts(services)
    webhook = json.dumps({"ticket_id": 1, "padding": "x" * ONE_MB}).encode()
    headers = zendesk_headers(webhook) if signed else {"Content-Type": "application/json"}
    assert client.post("/webhooks/zendesk", data=webhook, headers=headers).status_code == 413
    slack_body = urlencode({"payload": json.dumps({"type": "block_actions", "padding": "x" * ONE_MB})}).encode()
    response = post_slack(client, slack_body, "application/x-www-form-urlencoded", signed=signed)
    assert response.status_code == 413
    assert counts(services) == before


def test_a_body_of_exactly_1_mb_is_not_refused_for_its_size(client):
    padding = ONE_MB - len(json.dumps({"ticket_id": 7, "p": ""}).encode())
    body = json.dumps({"ticket_id": 7, "p": "x" * padding}).encode()
    assert len(body) == ONE_MB
    assert client.post("/webhooks/zendesk", data=body, headers=zendesk_headers(body)).status_code == 202


def test_signed_deeply_nested_webhook_gets_400(client, services):
    body = b"[" * 100_000 + b"]" * 100_000
    before = counts(services)
    response = client.post("/webhooks/zendesk", data=body, headers=zendesk_headers(body))
    assert response.status_code == 400
    assert counts(services) == before


def test_signed_webhook_with_a_5000_digit_number_gets_400(client, services):
    body = b'{"ticket_id": ' + b"1" * 5000 + b"}"
    before = counts(services)
    response = client.post("/webhooks/zendesk", data=body, headers=zendesk_headers(body))
    assert response.status_code == 400
    assert counts(services) == before


@pytest.mark.parametrize("stamp", ["\u00b2", "1\u00b9", "\u00b3\u00b3"])
def test_webhook_with_a_superscript_digit_timestamp_gets_401(client, services, stamp):
    body = b'{"ticket_id": 1}'
    headers = zendesk_headers(body)
    headers["X-Zendesk-Webhook-Signature-Timestamp"] = stamp
    response = client.post("/webhooks/zendesk", data=body, headers=headers)
    assert response.status_code == 401


@pytest.mark.parametrize("body, content_type", [
    BROKEN_PAYLOAD, LIST_PAYLOAD, NULL_RESPONSE_URLS, (b"{not json", "application/json"),
    (b"[1, 2]", "application/json"),
])
def test_unsigned_slack_bodies_bolt_cannot_parse_get_401(client, services, body, content_type):
    before = counts(services)
    response = post_slack(client, body, content_type, signed=False)
    assert response.status_code == 401
    assert counts(services) == before


SIGNED_CRASHES = {
    "view without user": ({"type": "view_submission", "view": {
        "type": "modal", "callback_id": "seam_edit_submit", "private_metadata": "{\"escalation_id\": 1}",
        "state": {"values": edit_values("hi")}}}, "handlers/actions.py submit_edit: body['user']['id'] before ack"),
    "view without view.type": ({"type": "view_submission", "user": {"id": "U1"}, "view": {
        "callback_id": "seam_edit_submit", "private_metadata": "{}"}},
        "slack_bolt payload_utils.is_workflow_step_save: body['view']['type'] in the custom middleware"),
    "private_metadata not a string": ({"type": "view_submission", "user": {"id": "U1"}, "view": {
        "type": "modal", "callback_id": "seam_edit_submit", "private_metadata": 5,
        "state": {"values": edit_values("hi")}}}, "handlers/actions.py _from_view: json.loads(5) TypeError"),
    "actions not a list": ({"type": "block_actions", "user": {"id": "U1"}, "actions": "x"},
                           "slack_bolt action matcher indexes body['actions'][0]['action_id']"),
    "command without user_id": (None, "handlers/commands.py escalation: command['user_id'] before ack"),
}


@pytest.mark.parametrize("case", sorted(SIGNED_CRASHES))
def test_signed_malformed_slack_payloads_are_not_5xx(client, case):
    payload, _where = SIGNED_CRASHES[case]
    if payload is None:
        body = urlencode({"command": "/escalation", "text": "help"}).encode()
    else:
        body = urlencode({"payload": json.dumps(payload)}).encode()
    response = post_slack(client, body, "application/x-www-form-urlencoded", signed=True)
    assert response.status_code < 500


def test_signed_well_formed_clicks_on_unknown_escalations_are_acked_and_change_nothing(client, services):
    rng = random.Random(3)
    before = counts(services)
    for shape in slack_shapes(str(rng.randint(10_000, 20_000)))[:4]:
        body = urlencode({"payload": json.dumps(shape)}).encode()
        response = post_slack(client, body, "application/x-www-form-urlencoded", signed=True)
        assert response.status_code == 200
    time.sleep(0.3)  # the work after the ack runs on Bolt's threads
    after = counts(services)
    assert after["escalations"] == before["escalations"] and after["feedback"] == before["feedback"]
