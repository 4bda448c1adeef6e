"""The customer asks for a person, robustly (bot.policy.triggers, bot.policy.spelling): misspelt and indirect
requests fire `asks_for_human`; near misses fire `maybe_asks_for_human` and cap the ticket at a draft; ordinary
questions that mention people fire neither."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.models import Assessment, Message, Route, Ticket
from bot.policy import spelling
from bot.policy.decide import Policy, decide
from bot.policy.settings import PolicySettings, Thresholds
from bot.policy.triggers import (
    DEFAULT_HIGH_RISK_TOPICS,
    TRIGGERS,
    HumanSettings,
    TriggerSettings,
    asks_for_human,
    high_risk_topic,
    maybe_asks_for_human,
    read_request,
)
from bot.schema import validate


def ticket(*bodies: str, subject: str = "") -> Ticket:
    return Ticket(id="1", subject=subject, messages=tuple(Message(author="customer", body=b) for b in bodies))


# -- clear requests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "spaek to somone in customer servce",
    "get me a real persn",
    "i want to tlak to a persn",
    "wnat to tlak to an agnet",
    "i neeed to spek wiht a humen",
    "Can I speak to a reprsentative?",
    "how to speak tosomebody",
    "I need to talk to an agentt",
])
def test_a_misspelt_request_for_a_person_fires(text: str) -> None:
    reason = asks_for_human(ticket("Order 5531 is late.\n" + text))
    assert reason is not None and reason.code == "asks_for_human"


@pytest.mark.parametrize("text", [
    "can someone call me",
    "Could you call me back about this?",
    "I want a callback",
    "I'd like a call back from a member of staff",
    "is anyone there",
    "Hello? Anybody there?",
    "transfer me to billing",
    "put me through to sales please",
    "let me talk to your manager",
    "Can I speak directly with the reception?",
    "get me your manager on the line",
    "I need a human, not a bot",
    "I don't want to talk to a bot",
    "spa team please",
])
def test_an_indirect_request_for_a_person_fires(text: str) -> None:
    reason = asks_for_human(ticket(text))
    assert reason is not None and reason.code == "asks_for_human"


def test_the_detail_quotes_what_the_customer_wrote_and_how_it_was_read() -> None:
    reason = asks_for_human(ticket("spaek to somone in customer servce"))
    assert reason is not None
    assert reason.detail == "“spaek to somone” (read as “speak to someone”)"
    assert asks_for_human(ticket("Let me talk to a human")).detail == "“talk to a human”"


@pytest.mark.parametrize("text", [
    "Quiero hablar con una persona", "Je voudrais parler à quelqu'un", "Kann ich mit einem Mitarbeiter sprechen?",
    "Quero falar com um atendente", "Vorrei parlare con un operatore", "Ik wil spreken met een medewerker",
])
def test_the_other_languages_still_fire(text: str) -> None:
    assert asks_for_human(ticket(text)) is not None


@pytest.mark.parametrize("text", [
    # A word describing the person ("echten", "vrai", "real") between the article and the noun.
    "Kann ich bitte mit einem echten Mitarbeiter sprechen?", "Quiero hablar con un agente humano",
    "Je veux parler à un vrai conseiller", "Vorrei parlare con un operatore umano",
    # The verb's other usual preposition, and Dutch's verb-last order.
    "Je voudrais parler avec un conseiller", "Ik wil graag met een medewerker spreken",
    "Kann ich mit jemandem sprechen?", "Ich möchte mit einem Mitarbeiter reden",
])
def test_the_other_languages_fire_with_a_describing_word_or_their_usual_word_order(text: str) -> None:
    assert asks_for_human(ticket(text)) is not None


@pytest.mark.parametrize("text", [
    # A person as the one who should act: "a human to look at this", "can a human reply".
    "Please have a person contact me", "I would like a human to look at this", "Can a human reply?",
    "I need a real person to check this", "I need human help", "Need human assistance",
    # Every form of "escalate", and a call asked for with "please" or through someone.
    "escalation please", "I want this escalated", "Escalating this, please", "have someone call me",
    "phone me please",
])
def test_a_person_asked_to_act_any_form_of_escalate_and_a_call_through_someone_fire(text: str) -> None:
    reason = asks_for_human(ticket("Order 5531 is late.\n" + text))
    assert reason is not None and reason.code == "asks_for_human"


def test_the_subject_counts_until_somebody_replies_however_often_the_customer_wrote() -> None:
    # Two messages before anyone answered: the request in the subject is still unanswered.
    waiting = ticket("My order is late.", "It is order 5531.", subject="I want to speak to a human")
    assert asks_for_human(waiting) is not None
    answered = Ticket(id="1", subject="I want to speak to a human", messages=(
        Message(author="customer", body="My order is late."),
        Message(author="agent", body="Hi, I'm Bob. It ships today."),
        Message(author="customer", body="Thanks, and how do I reset my password?"),
    ))
    assert asks_for_human(answered) is None


# -- near misses -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "words"), [
    ("can someone check my order", "can someone check"),
    ("Could somebody please look at my refund claim?", "Could somebody please look"),
    ("I need someone to explain this charge", "need someone to explain"),
    ("this bot is useless", "this bot"),
    ("you don't understand", "you don't understand"),
    ("the card I was aent?", "aent?"),  # "sent" or "agent"? a doubtful correction is a near miss at most
])
def test_a_near_miss_fires_maybe_asks_for_human_and_not_the_clear_trigger(text: str, words: str) -> None:
    assert asks_for_human(ticket(text)) is None
    reason = maybe_asks_for_human(ticket(text))
    assert reason is not None
    assert (reason.code, reason.label) == ("maybe_asks_for_human", "May want a person")
    assert reason.detail.startswith(f"“{words}”")


def test_a_clear_request_is_not_also_a_near_miss() -> None:
    assert maybe_asks_for_human(ticket("can someone call me, I want to talk to a person")) is None


POLICY = Policy(PolicySettings(thresholds=Thresholds(auto=0.85, draft=0.5)))


def assessment(confidence: float, **fields) -> Assessment:
    return Assessment(confidence=confidence, answer="Your order ships in 2 days.", answer_source="shipping-times",
                      summary="summary", **fields)


@pytest.mark.parametrize("confidence", [0.85, 0.95, 1.0])
def test_a_near_miss_caps_a_confident_ticket_at_a_draft(confidence: float) -> None:
    decision = decide(ticket("Can someone check my order 5531?"), assessment(confidence), policy=POLICY)
    assert decision.route == Route.DRAFT
    [reason] = decision.reasons
    assert reason.code == "maybe_asks_for_human" and "can someone check" in reason.detail.lower()
    assert decision.answer == "Your order ships in 2 days."  # the draft an agent approves


def test_a_near_miss_with_low_confidence_still_escalates() -> None:
    decision = decide(ticket("Can someone check my order 5531?"), assessment(0.2), policy=POLICY)
    assert decision.route == Route.ESCALATE
    assert {r.code for r in decision.reasons} == {"maybe_asks_for_human", "low_confidence"}


def test_a_clear_misspelt_request_escalates_even_at_full_confidence() -> None:
    decision = decide(ticket("spaek to somone in customer servce"), assessment(1.0), policy=POLICY)
    assert decision.route == Route.ESCALATE
    assert [r.code for r in decision.reasons] == ["asks_for_human"]


def test_when_the_engine_reads_a_request_the_near_miss_gives_way_to_the_clear_reason() -> None:
    decision = decide(ticket("Can someone check my order?"), assessment(1.0, wants_human=True), policy=POLICY)
    assert decision.route == Route.ESCALATE
    assert [r.code for r in decision.reasons] == ["asks_for_human"]


def test_near_miss_false_turns_the_near_miss_off_and_enabled_false_both() -> None:
    def routed(human: HumanSettings, text: str) -> Route:
        policy = Policy(PolicySettings(thresholds=Thresholds(auto=0.85, draft=0.5),
                                       triggers=TriggerSettings(asks_for_human=human)))
        return decide(ticket(text), assessment(0.95), policy=policy).route

    assert routed(HumanSettings(near_miss=False), "can someone check my order") == Route.RESOLVE
    assert routed(HumanSettings(near_miss=False), "let me talk to a person") == Route.ESCALATE
    assert routed(HumanSettings(enabled=False), "can someone check my order") == Route.RESOLVE
    assert routed(HumanSettings(enabled=False), "let me talk to a person") == Route.RESOLVE


def test_the_near_miss_is_its_own_capping_entry_in_triggers() -> None:
    [near] = [t for t in TRIGGERS if t.check.__name__ == "_maybe_asks_for_human"]
    assert near.key == "asks_for_human" and near.escalates is False


def test_near_miss_is_a_strict_documented_key() -> None:
    assert validate(TriggerSettings, {"asks_for_human": {"near_miss": False}}, where="seam.toml"
                    ).asks_for_human.near_miss is False
    with pytest.raises(ConfigError, match="triggers.asks_for_human.near_miss must be true or false|near_miss"):
        validate(TriggerSettings, {"asks_for_human": {"near_miss": 1}}, where="seam.toml")
    with pytest.raises(ConfigError, match="near_mis"):
        validate(TriggerSettings, {"asks_for_human": {"near_mis": True}}, where="seam.toml")


# -- not a request for a person ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "my husband made the payment",
    "someone stole my card",
    "the agent said it would arrive monday",
    "can you tell me the status",
    "I talked to my bank",
    "I talked to an agent yesterday and she said it would ship",
    "The courier will call me when he arrives?",
    "Please don't call me, email is fine",
    "I want to transfer 50 pounds to a new person",
    "Can someone else use my account if they have my phone?",
    "Is this a real leather wallet?",
    "How do I contact customer service hours",
    "It is tall enough and the cell is fine",
])
def test_an_ordinary_question_that_mentions_people_fires_neither(text: str) -> None:
    assert asks_for_human(ticket(text)) is None
    assert maybe_asks_for_human(ticket(text)) is None


def test_someone_stole_my_card_is_a_high_risk_topic_not_a_request_for_a_person() -> None:
    reason = high_risk_topic(ticket("someone stole my card"), topics=DEFAULT_HIGH_RISK_TOPICS)
    assert reason is not None and "account security" in reason.label
    decision = decide(ticket("someone stole my card"), assessment(1.0), policy=POLICY)
    assert decision.route == Route.DRAFT
    assert [r.code for r in decision.reasons] == ["high_risk_topic"]


def test_only_the_latest_customer_words_count_for_the_near_miss_too() -> None:
    conversation = Ticket(id="1", messages=(
        Message(author="customer", body="Can someone check my order?"),
        Message(author="agent", body="Hi, I'm Bob. It ships today."),
        Message(author="customer", body="Thanks, and how do I reset my password?"),
    ))
    assert maybe_asks_for_human(conversation) is None


# -- reading misspellings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("word", "read"), [
    ("somone", "someone"), ("persn", "person"), ("humna", "human"), ("tlak", "talk"), ("spaek", "speak"),
    ("reprsentative", "representative"), ("custmer", "customer"), ("agentt", "agent"), ("wiht", "with"),
    ("tosomebody", "to somebody"),
])
def test_misspellings_of_the_vocabulary_are_read_as_the_word(word: str, read: str) -> None:
    assert spelling.correction(word) == (read, True)


@pytest.mark.parametrize("word", ["tall", "cell", "walk", "all", "wait", "went", "urgent", "account", "xyzzy"])
def test_real_words_and_unrelated_words_are_left_alone(word: str) -> None:
    assert spelling.correction(word) is None


def test_a_correction_a_common_word_competes_with_is_doubtful() -> None:
    assert spelling.correction("hhat") == ("chat", False)  # "that"?
    assert spelling.read("I think hhat someone has my card").text == "I think hhat someone has my card"
    assert spelling.read("I think hhat someone", doubtful=True).text == "I think chat someone"


def test_a_reading_maps_corrected_words_back_to_what_was_written() -> None:
    reading = spelling.read("Pls, spaek tosomebody—now!")
    assert reading.source == "Pls, spaek tosomebody now!"  # same length, symbols as spaces
    assert reading.text == "Pls, speak to somebody now!"
    start = reading.text.index("speak")
    end = reading.text.index(" now")
    assert reading.source[slice(*reading.source_span(start, end))] == "spaek tosomebody"
    assert reading.corrected_in(start, end) == [("spaek", "speak"), ("tosomebody", "to somebody")]


def test_distance_counts_an_adjacent_swap_as_one_edit() -> None:
    assert spelling.distance("talk", "tlak", 2) == 1
    assert spelling.distance("someone", "somone", 2) == 1
    assert spelling.distance("agent", "xyzzy", 2) == 3  # past the limit: limit + 1


def test_read_request_is_cached_per_text_and_phrases() -> None:
    assert read_request("let me talk to a human") is read_request("let me talk to a human")
