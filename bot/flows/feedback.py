"""What a reply people wrote teaches: how far it is from the draft (the feedback log's `edit_distance`) and the
answer source the engine files it under (`learned_label`, `reply_label`) — shared by the replies sent from Slack
(`bot.flows.actions`), the replies agents wrote in the helpdesk itself (`bot.flows.answered`) and the engine's
refit after a restart (`bot.services.learned_tickets`), so all three file a reply the same way.
"""

from __future__ import annotations

import hashlib
import re
from difflib import SequenceMatcher
from typing import Protocol

from bot.text import addressed_to, encodable, name_words, without_sign_off

# The feedback action of an agent's reply written in the helpdesk, outside Seam, that resolved an escalated ticket.
HELPDESK_REPLY = "helpdesk_reply"


class Learn(Protocol):
    """The engine's `learn`, as the flows call it: the customer's words, the answer source the reply is filed
    under, the reply, and the name of the customer it was written for (another customer's detail to anyone else)."""

    def __call__(self, customer_text: str, answer_source: str, answer: str, *,
                 requester_name: str | None = None) -> None: ...


def same_words(a: str, b: str) -> bool:
    """The same text but for spacing (helpdesks that store HTML give replies back with other spacing)."""
    return " ".join(a.split()) == " ".join(b.split())


def edit_distance(draft: str | None, final: str | None) -> float:
    """0.0 when the reply went out as drafted, 1.0 when nothing of the draft survived."""
    return round(1.0 - SequenceMatcher(None, draft or "", final or "", autojunk=False).ratio(), 4)


def reply_label(text: str, *, name: str | None = None) -> str:
    """The answer a reply people wrote is filed under: one per wording, whoever sent it and to whom. A macro sent
    to twenty customers is one answer with twenty examples, which the engine can grow sure of, not twenty answers
    of one example that split every vote. The wording is read with the greeting naming nobody ("Hi Ana," and "Hi
    Bo," are "Hi there,"), the name of the customer it was written for (`name`) wherever it is ("Thanks for
    waiting, Ana"), the sign-off aside ("Best, Sam" and "Kind regards, Maria": which agent signed says nothing
    about the answer), each case's number written alike (four digits or more: "order 77812" and "order 55501"; "9
    to 12 days" stays), case and spacing aside. Which case a number belonged to is the reply check's business
    (`bot.engine.local._reply`), not the answer's."""
    wording = without_sign_off(addressed_to(text.strip(), None))
    for word in name_words(name):
        wording = re.sub(rf"\b{re.escape(word)}\b", "<name>", wording)
    normalised = " ".join(re.sub(r"\d{4,}", "0", wording).casefold().split())
    # encodable: a reply may hold a lone surrogate (test_hardening), which UTF-8 cannot carry as it is.
    return "seam-reply-" + hashlib.sha256(encodable(normalised).encode("utf-8")).hexdigest()[:12]


def learned_label(*, action: str, answer_source: str | None, escalation_id: int, draft: str | None = None,
                  final_text: str | None = None, requester_name: str | None = None) -> str:
    """The answer source a sent reply teaches the engine: the same article or macro when approved as drafted (a
    reply edited or written in the helpdesk counts as drafted when its words are the draft's but for the customer's
    name and the agent's sign-off), else the answer of its wording (`reply_label`)."""
    as_drafted = action == "approve" or (
        bool((draft or "").strip()) and reply_label(draft or "", name=requester_name) == reply_label(
            final_text or "", name=requester_name))
    if as_drafted and answer_source:
        return answer_source
    return reply_label(final_text or draft or "", name=requester_name) if (final_text or draft or "").strip() else \
        f"seam-reply-{escalation_id}"
