"""What a reply people wrote teaches: how far it is from the draft (the feedback log's `edit_distance`) and the
answer source the engine files it under (`learned_label`) — shared by the replies sent from Slack
(`bot.flows.actions`) and the engine's refit after a restart (`bot.services.learned_tickets`), so both file a
reply the same way.
"""

from __future__ import annotations

from difflib import SequenceMatcher


def same_words(a: str, b: str) -> bool:
    """The same text but for spacing (helpdesks that store HTML give replies back with other spacing)."""
    return " ".join(a.split()) == " ".join(b.split())


def edit_distance(draft: str | None, final: str | None) -> float:
    """0.0 when the reply went out as drafted, 1.0 when nothing of the draft survived."""
    return round(1.0 - SequenceMatcher(None, draft or "", final or "", autojunk=False).ratio(), 4)


def learned_label(*, action: str, answer_source: str | None, escalation_id: int) -> str:
    """The answer source a sent reply teaches the engine: the same article or macro when approved as drafted,
    else a new answer of its own."""
    return answer_source if action == "approve" and answer_source else f"seam-reply-{escalation_id}"
