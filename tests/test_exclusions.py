"""Exclusions (bot.policy.exclusions): plain-language rules for tickets the AI never answers."""

from __future__ import annotations

import pytest

from bot.config import ConfigError
from bot.models import Message, Ticket
from bot.policy.exclusions import PRIORITY, TAG, TOPIC, match, parse_rule, parse_rules, stem

RULES = parse_rules(["anything about chargebacks", "tickets tagged vip", "legal threats", "priority urgent"])


def ticket(*bodies: str, authors: tuple[str, ...] | None = None, subject: str = "", **fields) -> Ticket:
    authors = authors or ("customer",) * len(bodies)
    return Ticket(id="1", subject=subject, **fields,
                  messages=tuple(Message(author=a, body=b) for a, b in zip(authors, bodies, strict=True)))


# -- parsing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind", "values"), [
    ("tickets tagged vip", TAG, ("vip",)),
    ("tagged VIP", TAG, ("vip",)),
    ("Tickets tagged with enterprise or partner", TAG, ("enterprise", "partner")),
    ("tickets with tag press", TAG, ("press",)),
    ("priority urgent", PRIORITY, ("urgent",)),
    ("tickets with priority high or urgent", PRIORITY, ("high", "urgent")),
    ("Urgent priority", PRIORITY, ("urgent",)),
    ("anything about chargebacks", TOPIC, ("chargebacks",)),
    ("about refunds", TOPIC, ("refunds",)),
    ("legal threats", TOPIC, ("legal threats",)),
    ("tagging problems", TOPIC, ("tagging problems",)),
])
def test_rules_are_understood_in_plain_language(text: str, kind: str, values: tuple) -> None:
    rule = parse_rule(text)
    assert (rule.kind, rule.values) == (kind, values)
    assert rule.text == text


@pytest.mark.parametrize(("rules", "named"), [
    (["tagged vip", ""], "exclusions.rules[1]"),
    (["   "], "exclusions.rules[0]"),
    (["tagged"], "'tagged'"),
    (["priority"], "'priority'"),
    (["priority shipping"], "'priority shipping'"),
    (["anything about the"], "'anything about the'"),
])
def test_an_empty_or_meaningless_rule_is_a_one_line_error_naming_it(rules: list, named: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_rules(rules)
    message = str(error.value)
    assert named in message and "\n" not in message


# -- matching ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "I want to do a chargeback on my card",
    "My bank says they'll process the charge-back next week",
    "I already charged back the payment through Visa",
    "Are chargebacks handled by you or by the bank?",
])
def test_a_chargeback_in_any_form_is_excluded(text: str) -> None:
    reason = match(ticket(text), rules=RULES)
    assert reason is not None
    assert (reason.code, reason.label) == ("excluded", "Excluded: anything about chargebacks")
    assert reason.detail.startswith("“charg")


@pytest.mark.parametrize("text", [
    "How do I charge my device?",
    "The charger stopped working after a week",
    "Why was I charged a delivery fee?",
    "Can I get a refund for my order?",
    "Where is my parcel?",
])
def test_ordinary_tickets_are_not_excluded(text: str) -> None:
    assert match(ticket(text), rules=RULES) is None


def test_tags_match_case_insensitively() -> None:
    reason = match(ticket("Where is my parcel?", tags=("shipping", "VIP")), rules=RULES)
    assert reason is not None
    assert (reason.label, reason.detail) == ("Excluded: tickets tagged vip", "tagged vip")
    assert match(ticket("Where is my parcel?", tags=("vip-candidate",)), rules=RULES) is None


def test_priority_matches_the_ticket_priority() -> None:
    assert match(ticket("hello", priority="Urgent"), rules=RULES).label == "Excluded: priority urgent"
    assert match(ticket("hello", priority="high"), rules=RULES) is None
    assert match(ticket("hello"), rules=RULES) is None


def test_a_multi_word_topic_needs_all_its_words_in_the_text() -> None:
    assert match(ticket("I am sending you a legal threat: pay or I sue."), rules=RULES) is not None
    assert match(ticket("Is this product legal in Germany?"), rules=RULES) is None


def test_topics_found_by_the_triggers_or_the_engine_match_topic_rules() -> None:
    assert match(ticket("I will see you in court"), rules=RULES, topics=["legal"]).detail == "topic legal"
    refunds = parse_rules(["about refunds"])
    assert match(ticket("Where is my money?"), rules=refunds, topics=["macro-refund-status"]) is not None
    assert match(ticket("Where is my money?"), rules=refunds, topics=["account security", None]) is None


def test_only_the_customer_text_counts() -> None:
    t = ticket("My card was charged, what is this?", "If you don't recognise it you could request a chargeback.",
               authors=("customer", "agent"))
    assert match(t, rules=RULES) is None


def test_the_subject_counts() -> None:
    assert match(ticket("see title", subject="Chargeback on order 7781"), rules=RULES) is not None


def test_the_first_matching_rule_wins_and_no_rules_match_nothing() -> None:
    t = ticket("I want to do a chargeback", tags=("vip",), priority="urgent")
    assert match(t, rules=RULES).label == "Excluded: anything about chargebacks"
    assert match(t, rules=()) is None


@pytest.mark.parametrize(("a", "b"), [
    ("chargebacks", "chargeback"), ("refunded", "refund"), ("refunding", "refunds"), ("disputes", "disputed"),
    ("shipped", "shipping"), ("billing", "billed"), ("applies", "applied"),
])
def test_the_stemmer_folds_inflections(a: str, b: str) -> None:
    assert stem(a) == stem(b)


@pytest.mark.parametrize(("a", "b"), [("charge", "chargeback"), ("account", "accountant"), ("status", "state")])
def test_the_stemmer_keeps_different_words_apart(a: str, b: str) -> None:
    assert stem(a) != stem(b)
