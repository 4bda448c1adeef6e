"""After HELPDESK changes on the same database (a team moving from Freshdesk to Zendesk keeps Seam's history,
feedback and settings), what was recorded for the old helpdesk names tickets by ids that, on the new one, belong to
other customers. Nothing recorded there may write to the new helpdesk: a card's Claim, Approve, Edit or Reject,
a queued write, a keep-warm update. Each test failed before the fix (the ticket event's own check, in the pipeline,
is tests/test_pipeline.py)."""

from __future__ import annotations

import json

import pytest

from bot.config import KeepWarmTable
from tests.support.constants import CUSTOMER_ID
from tests.support.posts import posts_for
from tests.support.services import AGENT, ZENDESK_AGENT, drain, staffed

ASKS_FOR_A_PERSON = "I forgot my password and need to reset it. Can I talk to a person?"
TICKET = 401


@pytest.fixture
def moved(fake_slack, fake_zendesk, tmp_path):
    """Services on Zendesk, with one escalation recorded as if by the Freshdesk deployment before the move; ticket
    401 on Zendesk is another customer's."""
    services = staffed(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path, keep_warm=KeepWarmTable(enabled=True))
    services.actions.write_timeout = 0.3
    fake_zendesk.add_ticket(id=TICKET, subject="Password", requester_id=CUSTOMER_ID,
                            comments=[{"author_id": CUSTOMER_ID, "body": ASKS_FOR_A_PERSON}])
    services.store.record_event(helpdesk="zendesk", dedupe_key="k", ticket_id=str(TICKET), body="{}")
    drain(services)
    [post] = posts_for(fake_slack, TICKET)
    escalation_id = int(post["metadata"]["event_payload"]["escalation_id"])
    with services.store.db.conn:
        services.store.db.execute("update escalations set ticket_key = ? where id = ?",
                                  [f"freshdesk:{TICKET}", escalation_id])
        services.store.db.execute("update escalations set draft = 'Use Forgot password on the sign-in page.'"
                                  " where id = ?", [escalation_id])
    return services, escalation_id


def writes(fake_zendesk) -> list:
    return [c for c in fake_zendesk.calls if c.method in ("PUT", "POST")]


def test_no_card_action_writes_to_the_new_helpdesk(moved, fake_zendesk):
    services, escalation_id = moved
    before = len(writes(fake_zendesk))
    actions = services.actions
    for outcome in (actions.claim(escalation_id, AGENT), actions.approve(escalation_id, AGENT),
                    actions.send_edited(escalation_id, AGENT, "Here is how to reset it."),
                    actions.reject(escalation_id, AGENT, reason="wrong_answer", note=""),
                    actions.reassign(escalation_id, AGENT, AGENT)):
        assert not outcome.ok
        assert "Freshdesk" in outcome.notice and "Zendesk" in outcome.notice, outcome.notice
    drain(services)
    assert writes(fake_zendesk)[before:] == []
    assert fake_zendesk.ticket(TICKET)["assignee_id"] != ZENDESK_AGENT
    assert services.store.escalation(escalation_id).state == "open"


def test_a_write_queued_before_the_move_is_skipped(moved, fake_zendesk):
    services, escalation_id = moved
    with services.store.db.conn:  # claimed before the move; the assignment's write still queued
        services.store.db.execute("update escalations set state = 'claimed', owner = ? where id = ?",
                                  [AGENT, escalation_id])
    before = len(writes(fake_zendesk))
    event_id, _ = services.store.record_event(
        kind="helpdesk_write", helpdesk="freshdesk", ticket_id=str(TICKET), dedupe_key="w",
        body=json.dumps({"escalation_id": escalation_id, "op": "assign", "user_id": AGENT, "to_user": AGENT,
                         "for_someone_else": False}))
    drain(services)
    assert writes(fake_zendesk)[before:] == []
    event = services.store.event(event_id)
    assert event.state == "done" and "freshdesk" in event.outcome, event.outcome


def test_a_keep_warm_update_scheduled_before_the_move_is_skipped(moved, fake_zendesk):
    services, escalation_id = moved
    before = len(writes(fake_zendesk))
    event_id, _ = services.store.record_event(
        kind="keep_warm", helpdesk="freshdesk", ticket_id=str(TICKET), dedupe_key="kw",
        body=json.dumps({"escalation_id": escalation_id, "step": "1", "n": 1}))
    drain(services)
    assert writes(fake_zendesk)[before:] == []
    event = services.store.event(event_id)
    assert event.state == "done" and "freshdesk" in event.outcome, event.outcome
