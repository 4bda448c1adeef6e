"""What Seam posts and whom it obeys (issue 14, items 6–8): card numbers and IBANs from tickets are masked in
everything posted to Slack (the last four kept; `[slack] mask_payment = false` turns it off), text a manager
typed is shown in announcements, never parsed as a mention or a link, and a click or a form acts only when the
message it came from is the escalation's own card. Each test failed before its fix."""

from __future__ import annotations

import json

import pytest

from bot.config import SlackTable
from tests.support.constants import CHANNEL, CUSTOMER_ID
from tests.support.payloads import block_action, view_submission
from tests.support.posts import posts_for
from tests.support.services import build_services, drain, web_client
from tests.support.signing import signed_form
from tests.support.waiting import wait_until

MANAGER = "UBOSS"
AGENT = "UAGENT"
CARD = "4111 1111 1111 1111"
IBAN = "DE89 3704 0044 0532 0130 00"
WORDS = (f"I want to talk to a person. You charged my card {CARD} twice; refund it to my IBAN {IBAN} "
         "or call me, my email is ana@example.com")


def _services(fake_slack, fake_zendesk, tmp_path, **overrides):
    fake_slack.add_user(AGENT, email="agent@acme.example", name="agent")
    fake_zendesk.add_user(id=801, name="Agent", email="agent@acme.example", role="agent")
    return build_services(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path, manager_user_ids=(MANAGER,),
                          **overrides)


@pytest.fixture
def services(fake_slack, fake_zendesk, tmp_path):
    return _services(fake_slack, fake_zendesk, tmp_path)


def escalate(services, fake_zendesk, ticket_id: int, *, subject: str = "Double charge", body: str = WORDS) -> None:
    fake_zendesk.add_ticket(id=ticket_id, subject=subject, requester_id=CUSTOMER_ID,
                            comments=[{"author_id": CUSTOMER_ID, "body": body}])
    services.store.record_event(helpdesk="zendesk", dedupe_key=f"k{ticket_id}", ticket_id=str(ticket_id), body="{}")
    drain(services)


def everything_sent_to_slack(fake_slack) -> str:
    return json.dumps([c.params for c in fake_slack.calls], ensure_ascii=False)


# -- 6. card numbers and IBANs --------------------------------------------------------------------------------

def test_card_numbers_and_ibans_are_masked_in_the_card_and_its_thread_keeping_the_last_four(
        services, fake_slack, fake_zendesk):
    escalate(services, fake_zendesk, 601, subject=f"Charged twice on {CARD}")
    [post] = posts_for(fake_slack, 601)
    thread = fake_slack.replies(CHANNEL, post["ts"])
    assert thread, "the transcript was posted"
    shown = json.dumps([post, *thread], ensure_ascii=False)
    assert "[card ••••1111]" in shown and "[iban ••••3000]" in shown
    sent = everything_sent_to_slack(fake_slack)
    for number in (CARD, CARD.replace(" ", ""), IBAN, IBAN.replace(" ", ""), "1111 1111 1111"):
        assert number not in sent
    # The agent still sees who wrote and how to reach them: only payment numbers are hidden.
    assert "ana@example.com" in shown


def test_an_edit_form_and_a_direct_message_are_masked_too(services, fake_slack, fake_zendesk):
    """The last line of defence is the Slack client itself: whatever Seam sends, a card number leaves masked."""
    services.poster.direct_message(AGENT, {"text": f"The customer's card is {CARD.replace(' ', '-')}"})
    services.slack.views_open(trigger_id="1.2.3", view={"type": "modal", "title": {"type": "plain_text",
                              "text": "Edit"}, "blocks": [{"type": "section", "text": {"type": "mrkdwn",
                                                                                       "text": f"IBAN {IBAN}"}}]})
    sent = everything_sent_to_slack(fake_slack)
    assert "4111-1111-1111-1111" not in sent and IBAN not in sent
    assert "[card ••••1111]" in sent and "[iban ••••3000]" in sent


def test_masking_can_be_turned_off(fake_slack, fake_zendesk, tmp_path):
    services = _services(fake_slack, fake_zendesk, tmp_path, slack_table=SlackTable(mask_payment=False))
    escalate(services, fake_zendesk, 602)
    [post] = posts_for(fake_slack, 602)
    shown = json.dumps([post, *fake_slack.replies(CHANNEL, post["ts"])], ensure_ascii=False)
    assert CARD in shown and IBAN in shown


def test_the_helpdesk_still_gets_what_the_agent_wrote(services, fake_slack, fake_zendesk):
    """Masking is for Slack only: an agent's reply that quotes a reference number reaches the customer whole."""
    escalate(services, fake_zendesk, 603)
    [post] = posts_for(fake_slack, 603)
    escalation_id = post["metadata"]["event_payload"]["escalation_id"]
    outcome = services.actions.send_edited(escalation_id, AGENT, text=f"We refunded the charge on {CARD}.")
    assert outcome.ok, outcome.notice
    assert any(CARD in c["body"] for c in fake_zendesk.comments(603) if c["public"])


# -- 7. what a manager typed ------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    'exclude "anything about <!here> <https://evil.example|click me>"',
    "set auto 0.95 for <!channel>",
])
def test_what_a_manager_typed_is_shown_not_parsed_in_the_announcement(services, fake_slack, command):
    reply = services.controls.handle(MANAGER, command)
    assert reply.announce, reply.text
    for text in (reply.announce, reply.text):
        assert "<!here>" not in text and "<!channel>" not in text and "<https://" not in text
        assert "&lt;!" in text
    services.poster.announce(CHANNEL, reply.announce)
    [line] = [m["text"] for m in fake_slack.messages(CHANNEL)]
    assert "<!" not in line and "&lt;!" in line


def test_the_exclusion_list_shows_a_rule_as_typed(services):
    services.controls.handle(MANAGER, 'exclude "tickets mentioning <!channel>"')
    listing = services.controls.handle(MANAGER, "exclusions").text
    assert "&lt;!channel&gt;" in listing and "<!channel>" not in listing


# -- 8. a click or a form from another message -------------------------------------------------------------------

def _two_cards(services, fake_slack, fake_zendesk):
    escalate(services, fake_zendesk, 801, body="Please let me talk to a person about my order.")
    escalate(services, fake_zendesk, 802, body="I want a human to look at my account.")
    [first] = posts_for(fake_slack, 801)
    [second] = posts_for(fake_slack, 802)
    return first, second


def test_a_click_naming_another_escalation_than_its_message_is_refused(services, fake_slack, fake_zendesk):
    first, second = _two_cards(services, fake_slack, fake_zendesk)
    other_id = second["metadata"]["event_payload"]["escalation_id"]
    client = web_client(services)
    # The button on the first card, its value changed to name the second escalation.
    body, headers = signed_form(block_action(user=AGENT, action_id="seam_claim", value=str(other_id),
                                             message_ts=first["ts"]))
    assert client.post("/slack/events", data=body, headers=headers).status_code == 200
    [notice] = wait_until(lambda: fake_slack.ephemerals(CHANNEL), what="a refusal to the agent")
    assert "nothing was done" in notice["text"]
    assert services.store.escalation(other_id).state == "open"
    assert any(r["action"] == "action_refused" for r in services.store.audit_rows(limit=20, actor=AGENT))


def test_a_click_on_the_escalations_own_card_acts(services, fake_slack, fake_zendesk):
    first, _ = _two_cards(services, fake_slack, fake_zendesk)
    escalation_id = first["metadata"]["event_payload"]["escalation_id"]
    client = web_client(services)
    body, headers = signed_form(block_action(user=AGENT, action_id="seam_claim", value=str(escalation_id),
                                             message_ts=first["ts"]))
    assert client.post("/slack/events", data=body, headers=headers).status_code == 200
    wait_until(lambda: services.store.escalation(escalation_id).state == "claimed", what="the claim")


def test_a_click_from_another_channel_is_refused(services, fake_slack, fake_zendesk):
    first, _ = _two_cards(services, fake_slack, fake_zendesk)
    escalation_id = first["metadata"]["event_payload"]["escalation_id"]
    client = web_client(services)
    body, headers = signed_form(block_action(user=AGENT, action_id="seam_claim", value=str(escalation_id),
                                             message_ts=first["ts"], channel="C0ELSEWHERE"))
    assert client.post("/slack/events", data=body, headers=headers).status_code == 200
    wait_until(lambda: fake_slack.ephemerals("C0ELSEWHERE"), what="a refusal to the agent")
    assert services.store.escalation(escalation_id).state == "open"


@pytest.mark.parametrize("message", [{"channel": CHANNEL}, {"channel": "C0ELSEWHERE"}, {}])
def test_a_form_whose_metadata_names_another_escalation_than_its_message_is_refused(
        services, fake_slack, fake_zendesk, message):
    first, second = _two_cards(services, fake_slack, fake_zendesk)
    other_id = second["metadata"]["event_payload"]["escalation_id"]
    client = web_client(services)
    metadata = {"escalation_id": other_id, "channel": CHANNEL, "ts": first["ts"], **message}
    payload = view_submission(user=AGENT, callback_id="seam_edit_submit", private_metadata=json.dumps(metadata),
                              values={"reply": {"text": {"type": "plain_text_input", "value": "Hello"}}})
    body, headers = signed_form(payload)
    response = client.post("/slack/events", data=body, headers=headers)
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["response_action"] == "errors" and "nothing was done" in answer["errors"]["reply"]
    assert not [c for c in fake_zendesk.comments(802) if c["public"] and c["body"] == "Hello"]


def test_a_form_opened_from_the_card_carries_its_message_and_is_accepted(services, fake_slack, fake_zendesk):
    first, _ = _two_cards(services, fake_slack, fake_zendesk)
    escalation_id = first["metadata"]["event_payload"]["escalation_id"]
    client = web_client(services)
    body, headers = signed_form(block_action(user=AGENT, action_id="seam_edit", value=str(escalation_id),
                                             message_ts=first["ts"]))
    assert client.post("/slack/events", data=body, headers=headers).status_code == 200
    opened = wait_until(lambda: fake_slack.calls_to("views.open"), what="the Edit form")
    view = opened[-1].params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    metadata = json.loads(view["private_metadata"])
    assert metadata == {"escalation_id": escalation_id, "channel": CHANNEL, "ts": first["ts"]}
    payload = view_submission(user=AGENT, callback_id="seam_edit_submit", private_metadata=view["private_metadata"],
                              values={"reply": {"text": {"type": "plain_text_input", "value": "We are on it."}}})
    body, headers = signed_form(payload)
    assert client.post("/slack/events", data=body, headers=headers).status_code == 200
    wait_until(lambda: any(c["body"] == "We are on it." for c in fake_zendesk.comments(801)), what="the reply")


def test_a_click_naming_no_message_is_found_by_its_value_as_the_contract_says(services, fake_slack, fake_zendesk):
    """The boundary contract finds the escalation by the button's value alone: a payload without a container or a
    message (a driver of the API, not Slack's client) still acts — only a message that is not the card refuses."""
    first, _ = _two_cards(services, fake_slack, fake_zendesk)
    escalation_id = first["metadata"]["event_payload"]["escalation_id"]
    payload = block_action(user=AGENT, action_id="seam_claim", value=str(escalation_id), message_ts=first["ts"])
    for key in ("container", "message"):
        payload.pop(key)
    body, headers = signed_form(payload)
    assert web_client(services).post("/slack/events", data=body, headers=headers).status_code == 200
    wait_until(lambda: services.store.escalation(escalation_id).state == "claimed", what="the claim")


def test_a_click_racing_the_record_of_its_card_waits_for_it_and_acts(services, fake_slack, fake_zendesk):
    """Slack shows the card as soon as chat.postMessage answers; the store records it a moment later. A click in
    between waits for the record instead of being refused as "not ready"."""
    import threading

    first, _ = _two_cards(services, fake_slack, fake_zendesk)
    escalation_id = first["metadata"]["event_payload"]["escalation_id"]
    services.store.update_escalation(escalation_id, state="posting", ts=None)
    later = threading.Timer(0.5, services.store.mark_escalation_posted, args=(escalation_id,),
                            kwargs={"channel": CHANNEL, "ts": first["ts"]})
    later.start()
    body, headers = signed_form(block_action(user=AGENT, action_id="seam_claim", value=str(escalation_id),
                                             message_ts=first["ts"]))
    assert web_client(services).post("/slack/events", data=body, headers=headers).status_code == 200
    later.join()
    wait_until(lambda: services.store.escalation(escalation_id).state == "claimed", what="the claim")
    assert not fake_slack.ephemerals(CHANNEL) or all("nothing was done" not in e["text"]
                                                     for e in fake_slack.ephemerals(CHANNEL))
