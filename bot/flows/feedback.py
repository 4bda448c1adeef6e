"""What a reply people wrote teaches: how far it is from the draft (the feedback log's `edit_distance`) and the
answer source the engine files it under (`learned_label`) — shared by the replies sent from Slack
(`bot.flows.actions`), the replies agents wrote in the helpdesk itself (`bot.flows.answered`) and the engine's
refit after a restart (`bot.services.learned_tickets`), so all three file a reply the same way.
"""

from __future__ import annotations

from difflib import SequenceMatcher

# The feedback action of an agent's reply written in the helpdesk, outside Seam, that resolved an escalated ticket.
HELPDESK_REPLY = "helpdesk_reply"


def same_words(a: str, b: str) -> bool:
    """The same text but for spacing (helpdesks that store HTML give replies back with other spacing)."""
    return " ".join(a.split()) == " ".join(b.split())


def edit_distance(draft: str | None, final: str | None) -> float:
    """0.0 when the reply went out as drafted, 1.0 when nothing of the draft survived."""
    return round(1.0 - SequenceMatcher(None, draft or "", final or "", autojunk=False).ratio(), 4)


def learned_label(*, action: str, answer_source: str | None, escalation_id: int, draft: str | None = None,
                  final_text: str | None = None) -> str:
    """The answer source a sent reply teaches the engine: the same article or macro when approved as drafted (a
    reply written in the helpdesk counts as approved when its words are the draft's), else a new answer of its
    own."""
    as_drafted = action == "approve" or (
        action == HELPDESK_REPLY and bool((draft or "").strip()) and same_words(draft or "", final_text or ""))
    return answer_source if as_drafted and answer_source else f"seam-reply-{escalation_id}"
