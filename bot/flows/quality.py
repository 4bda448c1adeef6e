"""The live quality guard: an automatically answered ticket that the customer reopens within a window counts as a
wrong automatic answer, and when too many of the recent ones are wrong, automation pauses itself.

What reopens the ticket's latest automatic answer (`reopen_shown`), within `[quality_guard] window_hours` of it:
- a customer message after Seam's public reply in the thread (up to the next public reply by anyone), unless
  every such message is a plain thank-you (`is_thanks`): "thanks, that worked!" is not a complaint;
- with nothing public after the reply, the helpdesk showing the ticket open again (`new` or `open`) after Seam
  set another status (`[resolve] status`, e.g. solved): the customer or an agent reopened it without a word.
A reply's time is the message's own (never later than now: a helpdesk clock running ahead of ours cannot push a
reply out of the window); a status change's is the moment Seam sees it. Each answer is reopened once, by the
first event that shows it, whatever route that event's message then takes.

After each reopen the guard reads two rates over answers made since automation was last switched on — so a
manager's resume restarts the count and the reopens that tripped the guard cannot trip it again at once: the
last `last` judged answers' (`bot.store`: their window passed, so whether they were reopened is known), the true
rate a window late; and the last `last` answers', judged or not, whose reopens so far are a floor under their
rate, known at once. Never reopens against only the answers nobody could reopen yet: counting an answer the moment
it is reopened but the others only once their window passes would read a steady 10% as 30% or more once a
window holds more answers than `last`. When either has at least `min_answers` answers and more than
`max_reopen_rate` reopened, it pauses automation through the switch
`/escalation pause` uses, audited as "seam" with the figures, and queues one announcement for the escalation
channel (a job of kind `announce`, retried until Slack takes it, and posted once: a retry after a crash finds the
post by its metadata); while automation stays paused it says nothing more. `enabled = false` keeps the counting
and never pauses.

The same verdicts tune the local engine (`verdicts`): the share of uncovered questions its confidences assume is
raised until the last judged automatic answers would have been expected to hold as many wrong ones as were
reopened (bot.engine.local `share_from_feedback`), so a deployment whose customers reopen more than the confidences
foretold gets fewer automatic answers before the guard has to pause them all.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import QualityGuardTable, Settings
from bot.engine.base import Verdict
from bot.flows.controls import PAUSED_KEY, QUALITY_PAUSE_KEY, quality_sentence, window_text
from bot.models import Event, Message, Ticket
from bot.slack.poster import Poster
from bot.store import Store, ticket_key
from bot.text import iso, parse_time, utcnow

log = logging.getLogger(__name__)

# Statuses that mean "open again" after Seam set another one, in each helpdesk's word as its adapter reports it:
# Zendesk's, Freshdesk's and Gorgias's "new" and "open", Help Scout's native "active", Front's conversation
# statuses "unassigned" and "assigned" (an archived conversation moved back to the inbox). Any other status
# (pending, on hold, snoozed) never counts.
REOPEN_STATUSES = frozenset({"new", "open", "active", "unassigned", "assigned"})
# A thank-you is short: a longer message almost always says more than thanks.
MAX_THANKS_WORDS = 15
# Thanks, or that the answer worked — in English, with the thank-you words of the languages Seam's triggers read.
# Not "I'd appreciate…" or "I'd be grateful if…": those ask for something.
_THANKS = re.compile(
    r"\b(thanks?|thank\s*(you|u)|thx|tysm|cheers|appreciated|got it|"
    r"(that|it|this)\s+(worked|works|helped|did it|did the trick|fixed it)|works now|working now|"
    r"all (good|sorted|set)|(problem|issue) (solved|fixed|resolved)|"
    r"gracias|merci|danke|obrigad[oa]|grazie|bedankt)\b|👍|🙏", re.I)
# A whole message that only acknowledges.
_ACKNOWLEDGED = re.compile(r"(ok(ay)?|great|perfect|awesome|cool|brilliant|excellent|nice|sorted|done)[\s.!]*", re.I)
# Anything that denies or qualifies the thanks ("thanks, but…", "still broken", "thanks for nothing").
_NOT_THANKS = re.compile(
    r"\b(not|no|never|nothing|nope|still|but|however|though|unfortunately|useless|wrong|anymore|cannot|"
    r"\w+n['’]t|(ca|do|does|did|is|was|were|wo|could|would|has|have|had)nt|pero|mais|aber|pas|nicht)\b", re.I)
# Polite phrases with a "no" in them that are not a denial.
_NO_WORRIES = re.compile(r"\bno (worries|problem|problems)\b", re.I)


def is_thanks(text: str) -> bool:
    """Is this customer message a plain thank-you (not a complaint)? Short (at most MAX_THANKS_WORDS words), asks
    nothing (no "?"), says thanks or that it worked — or only acknowledges ("ok", "perfect") — and has no
    negation or "but". Deliberately narrow: a message it is unsure of counts as the customer coming back."""
    words = text.split()
    if not words or len(words) > MAX_THANKS_WORDS or "?" in text:
        return False
    plain = _NO_WORRIES.sub(" ", text.strip())
    if _NOT_THANKS.search(plain):
        return False
    return bool(_THANKS.search(plain) or _ACKNOWLEDGED.fullmatch(plain))


def asking_index(ticket: Ticket) -> int | None:
    """The position of the customer's latest message that asks something: a plain thank-you after an agent's reply
    ("Thanks, that worked!", `is_thanks`) asks nothing, and the reply before it is still the answer. What the
    helpdesk-answered rule (bot.flows.answered) and the wait on a person (bot.flows.lifecycle) both read from."""
    latest = None
    for i in range(len(ticket.messages) - 1, -1, -1):
        message = ticket.messages[i]
        if message.author != "customer":
            continue
        if latest is None:
            latest = i
        if not is_thanks(message.body):
            return i
        if not any(m.author == "agent" and m.public for m in ticket.messages[:i]):
            return latest  # thanks for nothing an agent wrote: the latest message is the question
    return latest


def _normal(text: str) -> str:
    return " ".join(text.split())


def _reply_index(ticket: Ticket, answer: str | None) -> int | None:
    """Where Seam's automatic reply is in the thread: the last public message not by the customer with the
    answer's text (a helpdesk may reflow it, so spacing is ignored), else the last public reply by the bot (not
    its notice that a person will follow up: `Message.is_reply`)."""
    wanted = _normal(answer or "")
    for index in range(len(ticket.messages) - 1, -1, -1):
        message = ticket.messages[index]
        if message.author != "customer" and message.public and wanted and _normal(message.body) == wanted:
            return index
    for index in range(len(ticket.messages) - 1, -1, -1):
        if ticket.messages[index].author == "bot" and ticket.messages[index].is_reply:
            return index
    return None


def _when(message: Message, now: datetime) -> datetime:
    moment = parse_time(message.created_at)
    return now if moment is None else min(moment, now)


def reopen_shown(ticket: Ticket, *, answer: str | None, resolve_status: str | None,
                 now: datetime) -> tuple[datetime, str] | None:
    """What the ticket shows after Seam's automatic reply `answer`: (when, how) the customer came back — "customer
    replied" or "ticket reopened" — or None (nothing yet, only thanks, or someone else has answered since)."""
    index = _reply_index(ticket, answer)
    if index is None:
        return None
    replies: list[Message] = []
    answered_since = False
    for message in ticket.messages[index + 1:]:
        if message.author == "customer":
            replies.append(message)
        elif message.is_reply:
            answered_since = True  # an agent (or Seam again) answered: what follows is about that reply
            break
    unsatisfied = [m for m in replies if not is_thanks(m.body)]
    if unsatisfied:
        return _when(unsatisfied[0], now), "customer replied"
    if replies or answered_since:
        # Only thanks (a helpdesk reopens a solved ticket on any reply, thanks included), or another reply since.
        return None
    status = (ticket.status or "").lower()
    if resolve_status and resolve_status.lower() not in REOPEN_STATUSES and status in REOPEN_STATUSES:
        return now, "ticket reopened"
    return None


def verdicts(store: Store, table: QualityGuardTable) -> list[Verdict]:
    """The verdicts on the last `last` judged automatic answers that the local engine made (reopened or not), or
    none while there are fewer than `min_answers` of them: a few answers say little about a share."""
    judged = store.judged_automatic_answers(last=table.last, window_seconds=table.window_seconds)
    found = [Verdict(right=a["p_right"], balanced=a["p_uncovered"], reopened=a["reopened_at"] is not None)
             for a in judged if a["p_right"] is not None and a["p_uncovered"] is not None]
    return found if len(found) >= table.min_answers else []


@dataclass
class QualityGuard:
    """Records reopens of automatic answers and pauses automation when too many are reopened (module docstring)."""

    store: Store
    settings: Settings
    poster: Poster

    @property
    def table(self) -> QualityGuardTable:
        return self.settings.quality_guard

    def check(self, event: Event, ticket: Ticket, *, helpdesk: str) -> str | None:
        """Record a reopen of the ticket's latest automatic answer if the ticket shows one within the window (once,
        however often the event is retried), then judge the rate. The reopen's reason when this event made it."""
        key = ticket_key(helpdesk, ticket.id)
        answer = self.store.latest_automatic_answer(key)
        if answer is None or answer["event_id"] == event.id:
            return None
        if answer["reopened_at"] is not None and answer["reopen_event_id"] != event.id:
            return None  # reopened already, by an earlier event
        now = utcnow()
        shown = reopen_shown(ticket, answer=answer["answer"], resolve_status=self.settings.resolve_status, now=now)
        if shown is None:
            return None
        moment, how = shown
        window = timedelta(seconds=self.table.window_seconds)
        answered_at = parse_time(answer["answered_at"])
        if answered_at is None or moment - answered_at > window:
            return None  # a message days later is a new conversation, not a verdict on the answer
        reason = f"{how} within {window_text(self.table.window_hours)}"
        marked = self.store.mark_reopened(ticket_key=key, event_id=event.id, reason=reason,
                                          answered_after=iso(moment - window))
        if marked is None:
            return None
        log.info("automatic answer on ticket %s reopened: %s", ticket.id, marked["reopen_reason"])
        self.judge(helpdesk=helpdesk, ticket_id=ticket.id)
        return marked["reopen_reason"]

    def figures(self) -> dict | None:
        """The reopen rate since automation was last switched on, or None while it is paused: the higher of the
        last `last` judged answers' rate and the floor the reopens set under the last `last` answers' (module
        docstring), with enough answers when either has them — reopened, judged (the answers counted), rate,
        limit, window_hours and the reopened tickets' ids."""
        switch = self.store.setting_record(PAUSED_KEY)
        if switch is not None and switch["value"]:
            return None
        table = self.table
        since = switch["updated_at"] if switch else None
        # The judged answers' rate is the true one, known a window late; the reopens already in among the latest
        # answers are a floor under theirs (the others may still be reopened), so over the limit they are over it
        # for certain — at once. Neither reads reopens against only part of the answers they came from.
        found = [self._tally(rows) for rows in (
            self.store.latest_automatic_answers(last=table.last, since=since),
            self.store.judged_automatic_answers(last=table.last, window_seconds=table.window_seconds, since=since))]
        return max(found, key=lambda f: (f["judged"] >= table.min_answers, f["rate"], f["judged"]))

    def _tally(self, answers: list[dict]) -> dict:
        reopened = [a for a in answers if a["reopened_at"]]
        return {"reopened": len(reopened), "judged": len(answers),
                "rate": len(reopened) / len(answers) if answers else 0.0, "limit": self.table.max_reopen_rate,
                "window_hours": self.table.window_hours, "tickets": [a["ticket_id"] for a in reopened]}

    def judge(self, *, helpdesk: str, ticket_id: str) -> bool:
        """Pause automation when the reopen rate exceeds the limit with enough answers judged; True if it did."""
        figures = self.figures() if self.table.enabled else None
        if figures is None or figures["judged"] < self.table.min_answers or figures["rate"] <= figures["limit"]:
            return False
        announcement = (f"Seam paused automatic replies: {quality_sentence(figures)}. A manager can "
                        "`/escalation resume` after checking them.")
        paused = self.store.pause_for_quality(paused_key=PAUSED_KEY, record_key=QUALITY_PAUSE_KEY, figures=figures,
                                              announcement=announcement, helpdesk=helpdesk, ticket_id=ticket_id)
        if paused:
            log.warning("quality guard: %s", announcement)
        return paused

    def announce(self, event: Event) -> str:
        """The `announce` job: post the queued text in the escalation channel, once (a retry after a crash finds
        the post by its metadata); a failure raises, to be retried."""
        text = json.loads(event.body or "{}").get("text")
        if not text:
            return "skipped: nothing to announce"
        posted = self.poster.announce_once(self.settings.escalation_channel, text, key=f"announce-{event.id}",
                                           since=parse_time(event.received_at) or utcnow())
        return "announced" if posted else "announced before"
