"""What every engine is and shares: the `Engine` interface, a retrieved `Passage`, a `Verdict` on an automatic
answer, and the extractive summary.

An engine reads a ticket and says what answer it would give, from what evidence, and how likely that answer is
to be right (`bot.models.Assessment`); the policy (`bot.policy`) decides what to do with that. Two engines
exist: the local one (local.py, scikit-learn, no network) and the OpenAI one (openai.py, grounded in the
local one's retrieval). `build_engine` in bot/engine/__init__.py picks one from the settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from bot.models import Assessment, Ticket
from bot.text import clip, details

SUMMARY_CHARS = 280


class Engine(Protocol):
    def assess(self, ticket: Ticket) -> Assessment: ...


@dataclass(frozen=True)
class Passage:
    """A retrieved answer: the article or past reply it comes from, its text, and how close it is."""

    source: str
    text: str
    similarity: float


@dataclass(frozen=True)
class Verdict:
    """A judged automatic answer: the local engine's calibrated parts of its confidence when it was made
    (`Assessment.calibration`), and whether the customer reopened it — a wrong answer, for the quality guard
    (bot.flows.quality). The local engine fits its share of uncovered questions to these
    (bot.engine.local.share_from_feedback)."""

    right: float
    balanced: float
    reopened: bool


def own_details(ticket: Ticket, *also: str) -> frozenset[str]:
    """The case details (`bot.text.details`) the ticket itself holds — in its subject, its messages, its
    requester's email — and in `also` (texts the answer may quote): a reply naming any other is for another case."""
    return details("\n".join([ticket.subject or "", *(m.body for m in ticket.messages), ticket.requester_email or "",
                               *also]))


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


def _clip(text: str, limit: int) -> str:
    return clip(" ".join(text.split()), limit)


def summarize(ticket: Ticket, *, limit: int = SUMMARY_CHARS) -> str:
    """An extractive summary: what the customer first asked and what they say now, cut to `limit`."""
    customer = ticket.customer_messages
    if not customer:
        return _clip(ticket.subject, limit)
    first = " ".join(sentences(customer[0].body)[:2])
    parts = [first]
    if len(customer) > 1:
        parts.append("Latest: " + " ".join(sentences(customer[-1].body)[:2]))
    others = len(ticket.messages) - len(customer)
    lead = f"{len(customer)} customer message{'s' if len(customer) != 1 else ''}"
    if others:
        lead += f", {others} repl{'ies' if others != 1 else 'y'}"
    return _clip(f"{lead}. " + " ".join(parts), limit)
