"""The angry-tone, SLA and repeated-answer triggers (bot.policy.triggers), with realistic customer text and a
fixed clock."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.models import Message, Ticket
from bot.policy.tone import read_tone
from bot.policy.triggers import (
    SlaSettings,
    ToneSettings,
    ai_answered_twice,
    angry_tone,
    due_at,
    sla_breach,
    waiting_since,
)

TONE = ToneSettings()
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SLA = SlaSettings()


def ticket(*bodies: str, authors: tuple[str, ...] | None = None, subject: str = "", **fields) -> Ticket:
    authors = authors or ("customer",) * len(bodies)
    return Ticket(id="1", subject=subject, **fields,
                  messages=tuple(Message(author=a, body=b) for a, b in zip(authors, bodies, strict=True)))


def angry(*bodies: str, settings: ToneSettings = TONE, **kwargs):
    return angry_tone(ticket(*bodies, **kwargs), settings=settings)


# -- angry or upset tone -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "This is the worst service I have ever had. Absolutely disgusting, I'm furious.",
    "WHY HAS NOBODY ANSWERED MY EMAILS? I HAVE BEEN WAITING FOR THREE WEEKS",
    "Where the f*** is my order?!",
    "Your app is sh!t and I want my money back",
    "What a f**king joke. Third time I'm asking for the invoice.",
    "I was charged twice and nobody replies. I will contact my bank and post this on twitter.",
    "Forget it. I'm switching to a competitor, you've lost a customer.",
    "My order is late AGAIN. I will never buy from you again.",
    "This is ridiculous!!! I paid for express delivery and it's been 10 days!!!",
    "Unacceptable. Cancel my subscription today, I'm done with this useless company.",
])
def test_an_angry_customer_fires_angry_tone_naming_the_signals(text: str) -> None:
    reason = angry(text)
    assert reason is not None, read_tone(text)
    assert (reason.code, reason.label) == ("angry_tone", "Angry or upset tone")
    assert reason.detail


@pytest.mark.parametrize("text", [
    "Hi, my parcel was supposed to arrive on Monday and it still hasn't come. Could you check where it is? Thanks",
    "I'm a bit disappointed that my parcel is late again. Unfortunately I needed it for a birthday. Can you help?",
    "The package arrived damaged and the box was crushed. What are my options?",
    "How do I change the shipping address on my order?",
    "I love it!!!",
    "I AM SO HAPPY WITH THE NEW VERSION, THANK YOU!!!",
    "Please cancel my subscription at the end of the month, thanks.",
    "My ATM PIN and the SMS code from the app do not work for order A1B2C3.",
    "Is the DEN-PHL flight on Saturday still on time?",
    "Could you send me a copy of my last invoice?",
])
def test_calm_questions_polite_complaints_and_happy_customers_do_not_fire(text: str) -> None:
    assert angry(text) is None, read_tone(text)


@pytest.mark.parametrize("text", [
    "I'm upset, my order still hasn't arrived.",
    "I am extremely upset with how this was handled.",
    "Im very upset as my top-up was canceled and I have no idea why.",
    "We're fed up with waiting for the refund.",
    "I'm getting really frustrated with your app.",
    # the typographic apostrophe phones and Macs type by default
    "I’m extremely upset with this order.",
    "We’re so frustrated.",
])
def test_a_customer_who_says_they_are_upset_fires_angry_tone(text: str) -> None:
    assert angry(text) is not None, read_tone(text)
    assert "says they are upset" in read_tone(text).signals


@pytest.mark.parametrize("text", [
    "I'm not upset, just curious when it ships.",
    "I was frustrated at first but you fixed it, thank you so much, you're great!",
    "My son is upset that the toy is missing a part, can you send one?",
])
def test_saying_one_is_not_upset_or_was_but_is_happy_now_does_not_fire(text: str) -> None:
    assert angry(text) is None, read_tone(text)


def test_the_detail_names_each_signal_that_fired() -> None:
    reason = angry("THIS IS THE WORST SERVICE EVER!!! I'm cancelling my subscription and switching to a competitor.")
    assert reason is not None
    assert re.search(r"negative wording \(-0\.\d\d\)", reason.detail)
    for signal in ("shouting", "repeated punctuation", "threat to leave"):
        assert signal in reason.detail


@pytest.mark.parametrize(("text", "signal"), [
    ("where the f*** is it", "profanity"),
    ("this is bull$hit", "profanity"),
    ("f**king useless", "profanity"),
    ("what the fuck", "profanity"),
    ("WHERE IS MY ORDER", "shouting"),
    ("where is my order?!?!", "repeated punctuation"),
    ("I will post this on reviews", "threat to leave or escalate"),
    ("I'll be contacting my bank about this", "threat to leave or escalate"),
    ("never buying from this shop again", "threat to leave or escalate"),
])
def test_each_signal_is_recognised(text: str, signal: str) -> None:
    assert signal in read_tone(text).signals


@pytest.mark.parametrize("text", [
    "Shipping to Essex, Scunthorpe or Middlesex?", "My class assignment got lost", "I need a new SIM card",
    "The item costs $5 and the tracking code is A11", "Email me at dick.smith@example.com", "Hello @support team",
])
def test_ordinary_words_are_not_taken_for_profanity(text: str) -> None:
    assert "profanity" not in read_tone(text).signals


def test_configured_profanity_extends_the_built_in_list_with_obfuscations() -> None:
    text = "honestly this is frakking broken"
    assert "profanity" not in read_tone(text).signals
    assert "profanity" in read_tone(text, profanity=("frak*",)).signals
    assert "profanity" in read_tone("honestly this is fr@kking broken", profanity=("frak*",)).signals


def test_only_the_customer_counts_not_agents_or_the_bot() -> None:
    t = ticket("Where is my order?", "SORRY!!! THIS IS THE WORST DELAY EVER, DAMN COURIER!!!",
               authors=("customer", "agent"))
    assert angry_tone(t, settings=TONE) is None


def test_the_latest_messages_count_not_an_old_outburst_already_answered() -> None:
    t = ticket("WORST SERVICE EVER!!! WHERE IS MY F***ING PARCEL", "So sorry, it arrives tomorrow.",
               "Thanks, that's great news.", authors=("customer", "agent", "customer"))
    assert angry_tone(t, settings=TONE) is None
    follow_up = ticket("Where is my parcel?", "It arrives tomorrow.", "It did NOT arrive.",
                       "This is a joke, I'm done, I'll post this on Trustpilot!!",
                       authors=("customer", "agent", "customer", "customer"))
    assert angry_tone(follow_up, settings=TONE) is not None


def test_an_angry_subject_counts_while_nobody_has_replied() -> None:
    assert angry("Order 7781", subject="WORST SERVICE EVER, I WANT MY MONEY BACK!!!") is not None


def test_the_threshold_and_the_switch_are_honoured() -> None:
    text = "The package arrived damaged and the box was crushed. What are my options?"
    assert angry(text) is None
    assert angry(text, settings=ToneSettings(threshold=0.3)) is not None
    assert angry("Worst service ever!!! F*** you", settings=ToneSettings(enabled=False)) is None


@pytest.mark.parametrize("text", [
    "Where is my card?", "I can't log in", "my card is not working", "not bad at all", "no", "No thanks.",
    "kind of slow", "The app is kind of broken", ":( still waiting", "where is it :)", "WHY!!!", "refund?!",
    "terrible service", "great, thanks", "I'm upset", "this is a joke", "card 😡 blocked", "café closed",
    "bank transfer pending since Tuesday", "abc-def ghi", "   ", "...", "ok", "good-bye", "(awful)",
])
def test_the_vader_shortcut_agrees_with_vader(text: str) -> None:
    from bot.policy.tone import _compound, _vader

    # Texts without a lexicon word skip VADER: the score must be the one VADER itself gives.
    assert _compound(text) == float(_vader().polarity_scores(text)["compound"])


def test_an_empty_thread_reads_calm() -> None:
    assert angry_tone(Ticket(id="1"), settings=TONE) is None
    assert read_tone("   ").score == 0.0


# -- SLA ---------------------------------------------------------------------------------------------------


def iso(delta: timedelta) -> str:
    return (NOW + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def sla(settings: SlaSettings = SLA, **fields):
    return sla_breach(ticket("Where is my refund?", **fields), now=NOW, settings=settings)


def test_a_due_time_within_the_margin_fires_with_minutes_left() -> None:
    reason = sla(sla_due_at=iso(timedelta(minutes=12, seconds=30)))
    assert reason is not None
    assert (reason.code, reason.label, reason.detail) == ("sla_breach", "SLA about to breach", "due in 12 min")


def test_an_overdue_ticket_fires_with_how_late_it_is() -> None:
    assert sla(sla_due_at=iso(-timedelta(hours=3, minutes=5))).detail == "overdue by 3 h 5 min"
    assert sla(sla_due_at=iso(-timedelta(days=3, hours=4))).detail == "overdue by 3 d 4 h"


@pytest.mark.parametrize(("minutes", "fires"), [(29, True), (30, True), (31, False), (240, False), (0, True)])
def test_the_margin_is_inclusive(minutes: int, fires: bool) -> None:
    assert (sla(sla_due_at=iso(timedelta(minutes=minutes))) is not None) is fires


@pytest.mark.parametrize("status", ["solved", "closed", "resolved", "archived", "Archived", "spam"])
def test_a_finished_ticket_in_any_platforms_words_is_left_alone(status: str) -> None:
    """Front archives, Freshdesk resolves: an overdue ticket nobody waits on any more is not an SLA breach."""
    assert sla(sla_due_at=iso(-timedelta(hours=1)), status=status) is None
    assert sla(sla_due_at=iso(-timedelta(hours=1)), status="open") is not None


def test_the_margin_is_configurable() -> None:
    assert sla(sla_due_at=iso(timedelta(minutes=50))) is None
    assert sla(SlaSettings(margin_minutes=60), sla_due_at=iso(timedelta(minutes=50))).detail == "due in 50 min"


@pytest.mark.parametrize(("priority", "age", "fires"), [
    ("urgent", timedelta(minutes=40), True),     # 1 h policy: due in 20 min
    ("urgent", timedelta(minutes=10), False),
    ("high", timedelta(hours=3, minutes=45), True),
    ("high", timedelta(hours=2), False),
    ("normal", timedelta(hours=23, minutes=40), True),
    (None, timedelta(hours=23, minutes=40), True),  # no priority counts as normal
    ("low", timedelta(hours=30), False),
    ("Low", timedelta(hours=49), True),
])
def test_without_a_due_time_the_priority_policy_applies_from_creation(priority, age, fires) -> None:
    assert (sla(priority=priority, created_at=iso(-age)) is not None) is fires


def conversation(*turns: tuple[str, timedelta, bool], **fields) -> Ticket:
    """A ticket from (author, how long ago, public) turns, oldest first."""
    return Ticket(id="1", subject="", **fields, messages=tuple(
        Message(author=author, body="…", created_at=iso(-ago), public=public) for author, ago, public in turns))


def test_the_policy_counts_from_the_customers_first_message_since_the_last_reply() -> None:
    # Three days old, answered yesterday, and the customer wrote again ten minutes ago: 23 h 50 min left, not
    # overdue by two days.
    followed_up = conversation(("customer", timedelta(days=3), True), ("agent", timedelta(days=1), True),
                               ("customer", timedelta(minutes=10), True), created_at=iso(-timedelta(days=3)))
    assert sla_breach(followed_up, now=NOW, settings=SLA) is None
    assert waiting_since(followed_up) == NOW - timedelta(minutes=10)
    # Written twice since the AI's answer, the first time nearly a day ago: the wait counts from the first.
    twice = conversation(("customer", timedelta(days=2), True), ("bot", timedelta(days=2), True),
                         ("customer", timedelta(hours=23, minutes=40), True), ("customer", timedelta(minutes=1), True),
                         created_at=iso(-timedelta(days=2)))
    assert sla_breach(twice, now=NOW, settings=SLA).detail == "due in 20 min"
    # An internal note is no answer to the customer.
    noted = conversation(("customer", timedelta(hours=23, minutes=40), True), ("agent", timedelta(hours=1), False),
                         created_at=iso(-timedelta(hours=23, minutes=40)))
    assert sla_breach(noted, now=NOW, settings=SLA).detail == "due in 20 min"


def test_nobody_waits_after_a_reply_and_messages_without_times_count_from_creation() -> None:
    replied = conversation(("customer", timedelta(days=3), True), ("agent", timedelta(days=2), True),
                           created_at=iso(-timedelta(days=3)))
    assert waiting_since(replied) is None and sla_breach(replied, now=NOW, settings=SLA) is None
    untimed = ticket("Where is my refund?", "Hello?", created_at=iso(-timedelta(hours=23, minutes=45)))
    assert waiting_since(untimed) == NOW - timedelta(hours=23, minutes=45)
    assert sla_breach(untimed, now=NOW, settings=SLA).detail == "due in 15 min"


def acknowledged(*turns: tuple[str, timedelta], **fields) -> Ticket:
    """A conversation of public (author, how long ago) turns where author "ack" is Seam's own notice or keep-warm
    update, marked as the flows mark it (bot.flows.lifecycle `mark_acknowledgements`)."""
    return Ticket(id="1", subject="", **fields, messages=tuple(
        Message(author="bot" if author == "ack" else author, body="…", created_at=iso(-ago),
                acknowledgement=author == "ack") for author, ago in turns))


def test_seams_notice_and_keep_warm_updates_do_not_stop_the_sla_clock() -> None:
    # Escalated 50 minutes ago; Seam told the customer a person will follow up: they still wait, since then.
    told = acknowledged(("customer", timedelta(minutes=50)), ("ack", timedelta(minutes=50)), priority="urgent",
                        created_at=iso(-timedelta(minutes=50)))
    assert waiting_since(told) == NOW - timedelta(minutes=50)
    assert due_at(told, settings=SLA) == NOW + timedelta(minutes=10)
    assert sla_breach(told, now=NOW, settings=SLA).detail == "due in 10 min"
    # Writing again after the notice and a keep-warm update does not restart the clock.
    again = acknowledged(("customer", timedelta(minutes=50)), ("ack", timedelta(minutes=50)),
                         ("ack", timedelta(minutes=20)), ("customer", timedelta(minutes=5)), priority="urgent",
                         created_at=iso(-timedelta(minutes=50)))
    assert waiting_since(again) == NOW - timedelta(minutes=50)
    # A real answer after the notice does stop it, and the wait starts again from the customer's next message.
    answered = acknowledged(("customer", timedelta(minutes=50)), ("ack", timedelta(minutes=50)),
                            ("agent", timedelta(minutes=30)), priority="urgent")
    assert waiting_since(answered) is None and sla_breach(answered, now=NOW, settings=SLA) is None
    answered_again = acknowledged(("customer", timedelta(minutes=50)), ("ack", timedelta(minutes=50)),
                                  ("bot", timedelta(minutes=30)), ("ack", timedelta(minutes=20)),
                                  ("customer", timedelta(minutes=10)))
    assert waiting_since(answered_again) == NOW - timedelta(minutes=10)


def test_the_ticket_due_time_wins_over_the_policy_and_hours_are_configurable() -> None:
    assert sla(priority="urgent", created_at=iso(-timedelta(hours=5)), sla_due_at=iso(timedelta(hours=2))) is None
    custom = SlaSettings(hours={"urgent": 0.5, "high": 4, "normal": 24, "low": 48})
    assert sla(custom, priority="urgent", created_at=iso(-timedelta(minutes=10))).detail == "due in 20 min"


@pytest.mark.parametrize("fields", [
    {}, {"sla_due_at": "tomorrow"}, {"sla_due_at": ""}, {"created_at": "20/11/2026"},
    {"created_at": iso(-timedelta(hours=30)), "priority": "p1"}, {"sla_due_at": "2026-13-45T99:00:00Z"},
])
def test_missing_or_unparseable_times_never_fire_and_never_crash(fields) -> None:
    assert sla(**fields) is None


def test_offsets_and_naive_times_are_understood() -> None:
    due = (NOW + timedelta(minutes=10)).astimezone(timezone(timedelta(hours=-5))).isoformat()
    assert sla(sla_due_at=due).detail == "due in 10 min"
    naive = (NOW + timedelta(minutes=5)).replace(tzinfo=None).isoformat()
    found = sla_breach(ticket("hi", sla_due_at=naive), now=NOW.replace(tzinfo=None), settings=SLA)
    assert found.detail == "due in 5 min"


def test_solved_tickets_and_a_disabled_trigger_do_not_fire() -> None:
    assert sla(sla_due_at=iso(-timedelta(hours=1)), status="solved") is None
    assert sla(SlaSettings(enabled=False), sla_due_at=iso(-timedelta(hours=1))) is None


# -- the AI already answered twice -------------------------------------------------------------------------


def test_two_bot_replies_and_the_customer_still_writing_fires() -> None:
    t = ticket("How do I reset my password?", "Use the link on the login page.", "The link doesn't arrive.",
               "Check your spam folder.", "Nothing there either.",
               authors=("customer", "bot", "customer", "bot", "customer"))
    reason = ai_answered_twice(t)
    assert reason is not None
    assert (reason.code, reason.label) == ("ai_retry_limit", "AI already answered twice")
    assert "2" in reason.detail


def test_one_bot_reply_or_the_bot_speaking_last_does_not_fire() -> None:
    once = ticket("Where is my order?", "It ships tomorrow.", "Thanks, and the invoice?",
                  authors=("customer", "bot", "customer"))
    assert ai_answered_twice(once) is None
    bot_last = ticket("a", "b", "c", "d", authors=("customer", "bot", "customer", "bot"))
    assert ai_answered_twice(bot_last) is None
    agent_last = ticket("a", "b", "c", "d", "e", authors=("customer", "bot", "customer", "bot", "agent"))
    assert ai_answered_twice(agent_last) is None


def test_agent_replies_do_not_count_as_ai_answers() -> None:
    t = ticket("a", "b", "c", "d", "e", authors=("customer", "agent", "customer", "bot", "customer"))
    assert ai_answered_twice(t) is None


def test_seams_acknowledgements_and_internal_notes_are_not_ai_answers() -> None:
    # One AI answer, then the escalation's notice and a keep-warm update, and Seam's internal note of a rejected
    # draft: still one answer, so the customer writing again is not "answered twice".
    t = Ticket(id="1", subject="", messages=(
        Message(author="customer", body="Where is my order?"), Message(author="bot", body="It ships tomorrow."),
        Message(author="customer", body="It did not. I want a person."),
        Message(author="bot", body="Hi Ana, a member of our team will get back to you.", acknowledgement=True),
        Message(author="bot", body="Seam: agent rejected the AI draft.", public=False),
        Message(author="bot", body="We're still on it.", acknowledgement=True),
        Message(author="customer", body="Hello?")))
    assert ai_answered_twice(t) is None
    assert ai_answered_twice(t, limit=1).detail == "1 AI reply and the customer wrote again"


def test_the_limit_is_in_the_label_when_it_is_not_two() -> None:
    t = ticket("a", "b", "c", "d", "e", "f", "g", authors=("customer", "bot", "customer", "bot", "customer", "bot",
                                                             "customer"))
    assert ai_answered_twice(t, limit=3).label == "AI already answered 3 times"
    assert ai_answered_twice(t, limit=4) is None
    assert ai_answered_twice(t, limit=1).label == "AI already answered once"


def test_what_the_customer_asks_runs_on_through_a_note_and_seams_notice_until_a_real_reply() -> None:
    from bot.policy.tone import tone_text

    messages = (
        Message(author="customer", body="I want a refund for order 7781, it arrived broken."),
        Message(author="agent", body="Refund case, needs a person.", public=False),
        Message(author="bot", body="Hi Ana, a member of our team will get back to you.", acknowledgement=True),
        Message(author="customer", body="Any news?"),
    )
    ticket = Ticket(id="1", subject="Broken", messages=messages)
    # The refund question is still what they are waiting on: a short "any news?" alone could be matched to
    # anything, and the high-risk and tone rules would not see the refund.
    assert "refund for order 7781" in ticket.customer_text() and "Any news?" in ticket.customer_text()
    assert "refund for order 7781" in tone_text(ticket)
    answered = Ticket(id="1", subject="Broken", messages=(
        *messages[:2], Message(author="agent", body="Your refund is on its way."), messages[3]))
    assert answered.customer_text() == "Broken\nAny news?"
    assert tone_text(answered) == "Any news?"


def test_a_reply_a_person_sent_marks_one_message_and_never_the_ais_same_words_before_it() -> None:
    from bot.flows.pipeline import mark_sent_for_people
    from bot.policy.triggers import ai_answered_twice

    # Found by review: the AI may send the words a person sent (an approved draft is the engine's answer, and a
    # written reply is learnt); only the person's own delivery is theirs.
    x = "To reset your password, open Settings > Security and click Reset password."
    at = "2026-12-04T10:{:02d}:00Z".format
    ticket = Ticket(id="1", subject="Password", messages=(
        Message("customer", "How do I reset my password?", created_at=at(0)),
        Message("bot", x, created_at=at(1)),  # the AI's answer
        Message("customer", "It did not work", created_at=at(2)),
        Message("bot", x, created_at=at(4)),  # a person approved the same words in Slack (escalated at :03)
        Message("customer", "Still nothing", created_at=at(5)),
        Message("bot", x, created_at=at(6)),  # the AI again
        Message("customer", "Hello??", created_at=at(7)),
    ))
    marked = mark_sent_for_people(ticket, [(x, at(3))])
    assert [m.from_person for m in marked.messages] == [False, False, False, True, False, False, False]
    assert ai_answered_twice(marked) is not None
    # Without times, still one message for one reply.
    untimed = Ticket(id="1", subject="Password", messages=tuple(replace(m, created_at=None) for m in ticket.messages))
    assert sum(m.from_person for m in mark_sent_for_people(untimed, [(x, at(3))]).messages) == 1
