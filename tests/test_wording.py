"""The explained share of a question (bot.engine.wording), and what it does to a knowledge-only engine's
confidence: a question whose key word the article never uses is not answered on its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.engine.knowledge import load_knowledge
from bot.engine.local import EngineOptions, LocalEngine
from bot.engine.wording import content_words, explained_share
from bot.models import Message, Ticket
from bot.policy.settings import DEFAULT_AUTO_THRESHOLD
from tests.support.knowledge import write_knowledge

WEIGHTS = {"shipping": 2.0, "take": 1.5, "long": 1.5, "refund": 2.5}


def test_content_words_leave_out_function_words_courtesies_and_numbers() -> None:
    found = content_words("Hi! How long does shipping take for order 4471? Thanks")
    assert found == ["long", "shipping", "take", "order"]
    assert content_words("Can you help me with this, please?") == []
    assert content_words("Can I talk to a person?") == []  # who should answer: the trigger's business


@pytest.mark.parametrize(("question", "known", "share"), [
    ("How long does shipping take?", {"long", "shipping", "takes"}, 1.0),  # an inflection
    ("how long does shiping take", {"long", "shipping", "take"}, 1.0),  # a misspelling
    ("How long does a refund take?", {"long", "shipping", "take"}, 3.0 / 5.5),
    ("How long does a rebate take?", {"long", "shipping", "take"}, 3.0 / 6.0),  # unknown: the most weight
    ("Can you help me?", {"long", "shipping", "take"}, 0.0),  # nothing asked
])
def test_the_explained_share_weighs_each_content_word(question: str, known: set[str], share: float) -> None:
    assert explained_share(question, known, WEIGHTS, unknown_weight=3.0) == pytest.approx(share)


def test_short_words_are_not_read_as_one_another() -> None:
    assert explained_share("my pin", {"pen"}, {"pin": 1.0, "pen": 1.0}, unknown_weight=2.0) == 0.0


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory: pytest.TempPathFactory) -> list:
    return load_knowledge(write_knowledge(Path(tmp_path_factory.mktemp("knowledge"))))


def confidence(engine: LocalEngine, text: str) -> tuple[float, str | None]:
    found = engine.assess(Ticket(id="1", messages=(Message(author="customer", body=text),)))
    return found.confidence, found.answer_source


@pytest.mark.parametrize("question", ["How long does shipping take?", "I forgot my password, how do I reset it?",
                                      "Do gift cards expire?"])
def test_a_question_the_article_answers_is_still_confident(knowledge: list, question: str) -> None:
    score, _ = confidence(LocalEngine(articles=knowledge), question)
    assert score >= DEFAULT_AUTO_THRESHOLD


@pytest.mark.parametrize(("question", "near"), [("How long does a refund take?", "shipping-times"),
                                                ("How do I reset my router?", "reset-password")])
def test_a_question_whose_key_word_no_article_uses_is_not_answered_alone(knowledge: list, question: str,
                                                                        near: str) -> None:
    plain = LocalEngine(articles=knowledge, options=EngineOptions(explain_content=False))
    explained = LocalEngine(articles=knowledge)
    assert confidence(explained, question)[1] == near
    assert confidence(explained, question)[0] < DEFAULT_AUTO_THRESHOLD
    # What the plain score said of the refund question: sure of the shipping article.
    if question.startswith("How long"):
        assert confidence(plain, question)[0] >= DEFAULT_AUTO_THRESHOLD


def test_a_generic_subject_line_does_not_keep_a_clear_question_from_being_answered(knowledge: list) -> None:
    engine = LocalEngine(articles=knowledge)
    found = engine.assess(Ticket(id="1", subject="Password problem",
                                 messages=(Message(author="customer", body="How do I reset my password?"),)))
    assert found.answer_source == "reset-password" and found.confidence >= DEFAULT_AUTO_THRESHOLD


def test_a_reply_an_agent_approved_teaches_the_words_of_its_question(knowledge: list) -> None:
    from tests.support.knowledge import ARTICLES

    engine = LocalEngine(articles=knowledge)
    question = "How long does shipping take to Canada?"
    assert confidence(engine, question)[0] < DEFAULT_AUTO_THRESHOLD, "no article names Canada"
    engine.learn(question, "shipping-times", ARTICLES["shipping-times"][1])
    score, source = confidence(engine, "shipping to Canada, how long?")
    assert score >= DEFAULT_AUTO_THRESHOLD and source == "shipping-times"
    assert confidence(engine, "How long does a refund take?")[0] < DEFAULT_AUTO_THRESHOLD


@pytest.mark.parametrize(("word", "known", "same"), [
    ("take", "takes", True), ("expire", "expired", True), ("shipping", "shipped", True),
    ("cancel", "cancellation", True), ("refund", "refurbished", False), ("card", "care", False),
])
def test_inflections_share_a_stem_and_lookalikes_do_not(word: str, known: str, same: bool) -> None:
    assert (explained_share(f"{word} {word}", {known}, {}, unknown_weight=1.0) == 1.0) is same
