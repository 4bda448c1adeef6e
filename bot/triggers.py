"""Escalation triggers: small rules, each returning a readable Reason when it fires and None otherwise.

The rules look only at what the customer wrote; text by agents or the bot never fires a trigger.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

from bot.models import Reason, Ticket

# Phrasings of "let me talk to a person", typos included, and the common forms in a few other languages.
_HUMAN_PATTERNS = (
    r"\b(speak|talk|chat|connect|transfer)\w*\b[\w\s,']{0,40}?\b(hum(?:an|na|man|en)s?|persons?|persn|peson|people|someone|somebody|agents?|representatives?|reprsentative|reps?|operators?|associate|staff|supervisor|manager|employee)\b",
    r"\b(real|live|actual|human)\s+(person|human|agent|being|support|representative|rep|operator|people)\b",
    r"\bhum(?:an|na|man)\s+(please|pls|plz|now)\b",
    r"\b(agent|operator|representative|hum(?:an|na|man))\s*(please|pls|plz)?\s*[!.?]*\s*$",
    r"\bis\s+there\s+(a|an|any)\s+(real\s+)?(person|human|someone|agent|representative)\b",
    r"\b(get|need|want)\s+(me\s+)?(a|an)\s+(real\s+)?(human|person|agent|representative)\b",
    r"\b(are|r)\s+(you|u)\s+a\s+(bot|robot|machine)\b",
    r"\b(not|no)\s+(a\s+|another\s+)?(bot|robot|machine|ai|automated)\b",
    r"\b(stop|quit)\b.{0,30}\b(bot|robot|automated|ai)\b",
    r"\bcustomer\s+(service|support|care)\s+(rep|representative|agent|person)\b",
    r"\bescalate\b",
    r"\b(contact|reach|call|cat|chat)\w*\s+(with\s+|to\s+)?(an?\s+)?(operator|assistant|somebody|someone|somneone|person|human|agent)\b",
    r"\b(speak|talk)\w*\s+(with|to)\s+an?\s+assistant\b",
    # Spanish, French, German, Portuguese, Italian, Dutch.
    r"\bhablar\s+con\s+(una\s+persona|un\s+humano|un\s+agente|alguien|un\s+representante|un\s+operador)\b",
    r"\bparler\s+(à|a)\s+(un\s+humain|une\s+personne|un\s+conseiller|quelqu'un|un\s+agent)\b",
    r"\b(mit\s+)?(einem|einer)\s+(menschen|mitarbeiter|mitarbeiterin|person)\s+sprechen\b",
    r"\bfalar\s+com\s+(um\s+atendente|uma\s+pessoa|um\s+humano|algu[eé]m)\b",
    r"\bparlare\s+con\s+(un\s+operatore|una\s+persona|un\s+umano|qualcuno)\b",
    r"\bspreken\s+met\s+(een\s+medewerker|een\s+mens|iemand)\b",
)


@lru_cache(maxsize=32)
def _compile_human(extra: tuple[str, ...]) -> re.Pattern[str]:
    parts = list(_HUMAN_PATTERNS) + [r"\b" + re.escape(p.lower()) + r"\b" for p in extra]
    return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE | re.MULTILINE)


def keyword_pattern(keyword: str) -> str:
    """A config keyword as a regex: words match whole; `refund*` matches any ending; a lone `*` is any one word."""
    tokens = keyword.lower().split()
    pattern = r"\b"
    for position, token in enumerate(tokens):
        last = position == len(tokens) - 1
        if token == "*":
            pattern += "" if last else r"(?:[\w'-]+\s+)?"
            continue
        pattern += re.escape(token.rstrip("*")) + (r"\w*" if token.endswith("*") else r"\b")
        pattern += "" if last else r"\s+"
    return pattern


@lru_cache(maxsize=32)
def _compile_topics(topics: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    compiled = []
    for topic, words in topics:
        words = [w.strip() for w in words if w.strip()]
        if words:
            pattern = "|".join(keyword_pattern(w) for w in words)
            compiled.append((topic, re.compile(pattern, re.IGNORECASE)))
    return tuple(compiled)


def _customer_text(ticket: Ticket) -> str:
    parts = [ticket.subject] + [m.body for m in ticket.customer_messages]
    return "\n".join(p for p in parts if p)


def _quote(match: re.Match[str]) -> str:
    return "“" + " ".join(match.group(0).split())[:60] + "”"


def asks_for_human(ticket: Ticket, *, extra_phrases: Iterable[str] = ()) -> Reason | None:
    """The customer asks to deal with a person rather than the bot."""
    latest = ticket.latest_customer_message
    # Only what the customer says now counts: an old request a person already answered is settled.
    text = "\n".join(p for p in ([ticket.subject] if len(ticket.customer_messages) <= 1 else []) +
                     ([latest.body] if latest else []) if p)
    match = _compile_human(tuple(extra_phrases)).search(text)
    if match:
        return Reason(code="asks_for_human", label="Customer asked for a human", detail=_quote(match))
    return None


def high_risk_topic(ticket: Ticket, *, topics: Mapping[str, Iterable[str]]) -> Reason | None:
    """The ticket touches a topic where a wrong answer costs money, trust or legal exposure."""
    text = _customer_text(ticket)
    key = tuple((topic, tuple(words)) for topic, words in topics.items())
    hits = [(topic, match) for topic, pattern in _compile_topics(key) if (match := pattern.search(text))]
    if not hits:
        return None
    names = ", ".join(topic for topic, _ in hits)
    return Reason(code="high_risk_topic", label=f"High-risk topic: {names}", detail=_quote(hits[0][1]))


def low_confidence(confidence: float, *, draft_threshold: float) -> Reason | None:
    if confidence < draft_threshold:
        return Reason(code="low_confidence", label="Low confidence",
                      detail=f"{confidence:.2f} is below the draft threshold {draft_threshold:.2f}")
    return None
