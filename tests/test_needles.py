"""The pre-check in front of long alternations (bot/policy/needles.py): it must never change a result."""

from __future__ import annotations

import re

import pytest

from bot.policy import triggers
from bot.policy.needles import Guarded, needles

TEXTS = [
    "Can I speak to a human please", "SPEAK TO AN AGENT", "I want to talk with someone", "escalate this now",
    "is there anyone there?", "anyone?", "  anybody  ", "you are not a bot right", "not an ai, a person",
    "Transfer me to billing", "transfer 50 to a new person", "call me back", "give me a ring", "this stupid bot",
    "Where is my card?", "how do I reset my password", "no", "not now", "I was talking to someone earlier",
    "hablar con una persona", "parler à un humain", "Ich möchte mit einem Menschen sprechen", "Talk to a hümän",
    "ＳＰＥＡＫ to a human", "spaek to somone in customer servce", "get me a real persn", "the billing team please",
    "", "\n\n", "stop the bot", "can someone help me", "with a machine", "Customer service rep please",
]


@pytest.mark.parametrize("guarded", [triggers._compile_human(()), triggers._MAYBE_HUMAN,
                                     triggers._compile_human(("speak to the boss", "@human"))],
                         ids=["asks for a person", "near misses", "with configured phrases"])
def test_the_guarded_search_finds_exactly_what_the_pattern_finds(guarded: Guarded) -> None:
    for text in TEXTS + [t.upper() for t in TEXTS] + [f"Hello.\n{t}\nThanks" for t in TEXTS]:
        plain, quick = guarded.pattern.search(text), guarded.search(text)
        assert (plain and (plain.span(), plain.group(0))) == (quick and (quick.span(), quick.group(0))), text


def test_the_asks_for_a_person_patterns_take_the_quick_path() -> None:
    # A phrasing added without a literal run of two letters would silently turn the pre-check off.
    assert triggers._compile_human(()).needles is not None
    assert triggers._MAYBE_HUMAN.needles is not None
    assert triggers._compile_human(()).search("What is the fee for a card top-up?") is None


@pytest.mark.parametrize(("pattern", "expected"), [
    (r"\bescalate\b", {"escalate"}),
    (r"\b(speak|talk)\s+to\b", {"speak", "talk"}),
    (r"(someone|somebody)\s+help", {"some"}),  # `re` takes the shared start out of the branches
    (r"\b(are|r)\s+(you|u)\s+a\s+(bot|robot)\b", {"bot", "robot"}),
    (r"x?(ab)+cde", {"cde"}),
    (r"Escalate", {"escalate"}),
])
def test_needles_are_the_most_telling_required_run(pattern: str, expected: set[str]) -> None:
    assert needles(pattern, re.IGNORECASE) == expected


@pytest.mark.parametrize("pattern", [r"\w+", r"a|b", r"(spam)?eggs?|x", r"[abc]{3}", r"(?:hello)*"])
def test_patterns_any_text_could_match_without_a_needle_get_none(pattern: str) -> None:
    assert needles(pattern) is None
    guarded = Guarded(re.compile(pattern))
    assert [bool(guarded.search(t)) for t in TEXTS] == [bool(re.search(pattern, t)) for t in TEXTS]
