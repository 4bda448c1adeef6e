"""Agent actions' helpdesk writes survive a crash and are never made twice (issue 14, item 5): Reject's internal
note, Claim's assignment and Approve's reply are durable jobs of the queue, run again after a restart; and Retry
waits out an earlier attempt's own time limit before looking for it on the ticket, so a reply the helpdesk applied
late is not sent twice. Each test failed before its fix.

A crash is simulated in-process: the helpdesk call raises a BaseException (which nothing in Seam catches), then
the "restart" does what `serve` does at start (`Services.start` and the runner: interrupted sends marked failed,
interrupted jobs back in the queue) and the queue is drained."""

from __future__ import annotations

import threading
import time

import pytest

from bot.helpdesk.base import HelpdeskError
from tests.support.constants import CUSTOMER_ID
from tests.support.posts import posts_for
from tests.support.services import build_services, drain

AGENT = "UAGENT"
ZENDESK_AGENT = 801
ASKS_FOR_A_PERSON = "I forgot my password and need to reset it. Can I talk to a person?"


class Crash(BaseException):
    """The process dying mid-call: escapes every `except Exception`."""


class Helpdesk:
    """The real adapter, with some calls replaced (the first time each is made)."""

    def __init__(self, real, **once):
        self._real = real
        self._once = dict(once)

    def __getattr__(self, name):
        if name in self._once:
            return self._once.pop(name)
        return getattr(self._real, name)


@pytest.fixture
def services(fake_slack, fake_zendesk, tmp_path):
    fake_slack.add_user(AGENT, email="agent@acme.example", name="agent")
    fake_zendesk.add_user(id=ZENDESK_AGENT, name="Agent", email="agent@acme.example", role="agent")
    services = build_services(slack=fake_slack, zendesk=fake_zendesk, tmp=tmp_path)
    services.actions.write_timeout = 0.3
    return services


def escalate(services, fake_slack, fake_zendesk, ticket_id: int) -> int:
    fake_zendesk.add_ticket(id=ticket_id, subject="Password", requester_id=CUSTOMER_ID,
                            comments=[{"author_id": CUSTOMER_ID, "body": ASKS_FOR_A_PERSON}])
    services.store.record_event(helpdesk="zendesk", dedupe_key=f"k{ticket_id}", ticket_id=str(ticket_id), body="{}")
    drain(services)
    [post] = posts_for(fake_slack, ticket_id)
    return int(post["metadata"]["event_payload"]["escalation_id"])


def restart(services) -> None:
    """What the next `serve` does at start, then its workers' work, on this thread."""
    services.poster.refresh_interrupted()
    services.store.recover_interrupted()
    drain(services)


def crash(*_args, **_kwargs):
    raise Crash("killed")


def after(call):
    """The helpdesk applies the call, then the process dies before hearing back."""

    def applied_then_crash(*args, **kwargs):
        call(*args, **kwargs)
        raise Crash("killed")

    return applied_then_crash


def notes(fake_zendesk, ticket_id: int) -> list[dict]:
    return [c for c in fake_zendesk.comments(ticket_id) if not c["public"]]


def public_replies(fake_zendesk, ticket_id: int) -> list[dict]:
    return [c for c in fake_zendesk.comments(ticket_id) if c["public"] and c["author_id"] != CUSTOMER_ID]


@pytest.mark.parametrize("landed", [False, True], ids=["before-the-note", "after-the-note"])
def test_a_crash_while_rejects_note_is_in_flight_writes_it_exactly_once_after_restart(
        services, fake_slack, fake_zendesk, landed):
    escalation_id = escalate(services, fake_slack, fake_zendesk, 9101)
    assert services.actions.claim(escalation_id, AGENT).ok
    real = services.actions.helpdesk
    services.actions.helpdesk = Helpdesk(real, add_note=after(real.add_note) if landed else crash)
    with pytest.raises(Crash):
        services.actions.reject(escalation_id, AGENT, reason="wrong_answer", note="Not our policy")
    assert services.store.escalation(escalation_id).state == "rejected"
    assert len(notes(fake_zendesk, 9101)) == (1 if landed else 0)
    restart(services)
    [note] = notes(fake_zendesk, 9101)
    assert "Not our policy" in note["body"]
    assert services.store.escalation(escalation_id).last_error is None
    assert public_replies(fake_zendesk, 9101) == []


def test_a_crash_while_claims_assignment_is_in_flight_assigns_the_ticket_after_restart(
        services, fake_slack, fake_zendesk):
    escalation_id = escalate(services, fake_slack, fake_zendesk, 9102)
    services.actions.helpdesk = Helpdesk(services.actions.helpdesk, assign=crash)
    with pytest.raises(Crash):
        services.actions.claim(escalation_id, AGENT)
    assert services.store.escalation(escalation_id).owner == AGENT
    assert fake_zendesk.ticket(9102)["assignee_id"] is None
    restart(services)
    assert fake_zendesk.ticket(9102)["assignee_id"] == ZENDESK_AGENT


def test_an_assignment_superseded_by_an_unclaim_is_not_made_after_restart(services, fake_slack, fake_zendesk):
    escalation_id = escalate(services, fake_slack, fake_zendesk, 9103)
    services.actions.helpdesk = Helpdesk(services.actions.helpdesk, assign=crash)
    with pytest.raises(Crash):
        services.actions.claim(escalation_id, AGENT)
    assert services.actions.unclaim(escalation_id, AGENT).ok
    restart(services)
    assert fake_zendesk.ticket(9103)["assignee_id"] is None
    assert services.store.escalation(escalation_id).owner is None


@pytest.mark.parametrize("landed", [False, True], ids=["before-the-reply", "after-the-reply"])
def test_a_crash_mid_send_of_approve_lands_the_reply_exactly_once_with_no_agent_action(
        services, fake_slack, fake_zendesk, landed):
    escalation_id = escalate(services, fake_slack, fake_zendesk, 9104)
    assert services.actions.claim(escalation_id, AGENT).ok
    real = services.actions.helpdesk
    services.actions.helpdesk = Helpdesk(real, reply=after(real.reply) if landed else crash)
    with pytest.raises(Crash):
        services.actions.approve(escalation_id, AGENT)
    assert services.store.escalation(escalation_id).state == "sending"
    restart(services)
    escalation = services.store.escalation(escalation_id)
    assert escalation.state == "sent" and escalation.sent_by == AGENT
    [reply] = public_replies(fake_zendesk, 9104)
    assert reply["body"] == escalation.draft


def replies_time_out_then_land(services) -> list[threading.Timer]:
    """The helpdesk's reply call times out, and the helpdesk applies the reply 0.6 s later anyway; the returned
    list holds the timer of that late write once a reply was tried."""
    real = services.actions.helpdesk
    services.actions.write_timeout = 1.5
    late: list[threading.Timer] = []

    def times_out_then_applied_late(ticket_id, text, **kwargs):
        late.append(threading.Timer(0.6, real.reply, args=(ticket_id, text), kwargs=kwargs))
        late[0].start()
        raise HelpdeskError("zendesk: the request timed out")

    services.actions.helpdesk = Helpdesk(real, reply=times_out_then_applied_late)
    return late


def test_retry_does_not_resend_a_reply_the_helpdesk_applied_after_the_write_timed_out(
        services, fake_slack, fake_zendesk):
    escalation_id = escalate(services, fake_slack, fake_zendesk, 9105)
    assert services.actions.claim(escalation_id, AGENT).ok
    late = replies_time_out_then_land(services)
    outcome = services.actions.approve(escalation_id, AGENT)
    assert not outcome.ok and "Retry" in outcome.notice
    assert services.store.escalation(escalation_id).state == "failed"
    assert services.actions.retry(escalation_id, AGENT).ok  # clicked at once, before the late write lands
    late[0].join()
    time.sleep(0.2)
    assert len(public_replies(fake_zendesk, 9105)) == 1
    assert services.store.escalation(escalation_id).state == "sent"


def test_retry_after_a_refusal_sends_at_once(services, fake_slack, fake_zendesk):
    escalation_id = escalate(services, fake_slack, fake_zendesk, 9106)
    assert services.actions.claim(escalation_id, AGENT).ok
    services.actions.write_timeout = 30.0  # a refused write never landed: nothing to wait for
    fake_zendesk.fail("update_ticket", status=422, times=1, body={"error": "RecordInvalid"})
    assert not services.actions.approve(escalation_id, AGENT).ok
    started = time.monotonic()
    assert services.actions.retry(escalation_id, AGENT).ok
    assert time.monotonic() - started < 5
    assert len(public_replies(fake_zendesk, 9106)) == 1


def due_now(services) -> None:
    """Skip the queue's backoff: every pending job is due now."""
    services.store.db.execute("update events set next_attempt_at = '2000-01-01T00:00:00.000000Z' "
                              "where state = 'pending'")


def test_a_failed_note_is_retried_by_the_queue_with_no_agent_action(services, fake_slack, fake_zendesk):
    escalation_id = escalate(services, fake_slack, fake_zendesk, 9107)
    assert services.actions.claim(escalation_id, AGENT).ok
    fake_zendesk.fail("update_ticket", status=422, times=1, body={"error": "RecordInvalid"})
    assert services.actions.reject(escalation_id, AGENT, reason="wrong_answer").ok  # the rejection stands
    assert notes(fake_zendesk, 9107) == []
    assert "internal note not written" in services.store.escalation(escalation_id).last_error
    due_now(services)
    drain(services)
    assert len(notes(fake_zendesk, 9107)) == 1
    assert services.store.escalation(escalation_id).last_error is None


def test_a_failed_assignment_is_retried_by_the_queue_with_no_agent_action(services, fake_slack, fake_zendesk):
    escalation_id = escalate(services, fake_slack, fake_zendesk, 9108)
    fake_zendesk.fail("update_ticket", status=422, times=1, body={"error": "RecordInvalid"})
    outcome = services.actions.claim(escalation_id, AGENT)
    assert outcome.ok and "assigning the ticket failed" in outcome.notice
    assert fake_zendesk.ticket(9108)["assignee_id"] is None
    due_now(services)
    drain(services)
    assert fake_zendesk.ticket(9108)["assignee_id"] == ZENDESK_AGENT
    assert services.store.escalation(escalation_id).last_error is None


def test_an_edit_after_a_reply_that_timed_out_and_landed_late_does_not_send_a_second_reply(
        services, fake_slack, fake_zendesk):
    # The Failed card offers Edit besides Retry: an edited reply after an attempt the helpdesk applied late must
    # not reach the customer as a second answer.
    escalation_id = escalate(services, fake_slack, fake_zendesk, 9109)
    assert services.actions.claim(escalation_id, AGENT).ok
    late = replies_time_out_then_land(services)
    draft = services.store.escalation(escalation_id).draft
    assert not services.actions.approve(escalation_id, AGENT).ok
    outcome = services.actions.send_edited(escalation_id, AGENT, text="Hello again, here is how to reset it.")
    late[0].join()
    time.sleep(0.2)
    assert [r["body"] for r in public_replies(fake_zendesk, 9109)] == [draft]
    escalation = services.store.escalation(escalation_id)
    assert (escalation.state, escalation.sent_text) == ("sent", draft)
    assert not outcome.ok and "earlier" in outcome.notice


def test_a_reject_after_a_reply_that_timed_out_and_landed_late_says_the_reply_went_out(
        services, fake_slack, fake_zendesk):
    escalation_id = escalate(services, fake_slack, fake_zendesk, 9110)
    assert services.actions.claim(escalation_id, AGENT).ok
    real = services.actions.helpdesk
    services.actions.write_timeout = 1.5

    def applied_but_timed_out(ticket_id, text, **kwargs):
        real.reply(ticket_id, text, **kwargs)
        raise HelpdeskError("zendesk: the request timed out")

    services.actions.helpdesk = Helpdesk(real, reply=applied_but_timed_out)
    assert not services.actions.approve(escalation_id, AGENT).ok
    outcome = services.actions.reject(escalation_id, AGENT, reason="wrong_tone")
    assert len(public_replies(fake_zendesk, 9110)) == 1
    escalation = services.store.escalation(escalation_id)
    assert escalation.state == "sent", "the customer got the reply: the card must not say it was rejected"
    assert not outcome.ok and "earlier" in outcome.notice


def test_a_click_that_lost_to_a_reply_being_sent_is_told_so_not_that_someone_else_acted(
        services, fake_slack, fake_zendesk):
    # A form delivered twice (or a double click) passes the permission check twice; the second loses the
    # compare-and-set to the first, its own. Losing to a send, it is told what is happening.
    escalation_id = escalate(services, fake_slack, fake_zendesk, 9111)
    assert services.actions.claim(escalation_id, AGENT).ok
    services.store.update_escalation(escalation_id, state="sending", sent_by=AGENT)
    told = services.actions._beaten(escalation_id)
    assert not told.ok and told.notice == "Nothing changed: the reply is being sent right now."
    services.store.update_escalation(escalation_id, state="sent")
    assert f"already sent by <@{AGENT}>" in services.actions._beaten(escalation_id).notice


def test_a_reply_that_went_out_before_its_status_change_failed_is_sent_not_failed(services, fake_slack, fake_zendesk):
    # Freshdesk, Gorgias and Front set a reply's status with a second call (bot.helpdesk.base.status_after_reply):
    # when only that call fails, the customer has the reply. The card must say so, and Retry must not be offered.
    from bot.helpdesk.base import status_after_reply

    escalation_id = escalate(services, fake_slack, fake_zendesk, 9120)
    real = services.actions.helpdesk

    def reply_then_refused_status(ticket_id, text, *, status=None):
        real.reply(ticket_id, text)

        def refused():
            raise HelpdeskError("Freshdesk PUT /api/v2/tickets/9120 answered 400 (invalid_value)", status=400,
                                detail="Mandatory field missing on resolve")
        status_after_reply(refused, ticket=f"ticket {ticket_id}")

    services.actions.helpdesk = Helpdesk(real, reply=reply_then_refused_status)
    outcome = services.actions.approve(escalation_id, AGENT)
    escalation = services.store.escalation(escalation_id)
    assert escalation.state == "sent", (escalation.state, outcome.notice)
    assert outcome.ok and "status" in (outcome.notice or "") and "Mandatory field" in outcome.notice
    assert "status" in (escalation.last_error or "")
    assert len(public_replies(fake_zendesk, 9120)) == 1
