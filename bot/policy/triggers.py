"""The escalation triggers: each one's settings (its table under `[triggers]` in seam.toml), its defaults and
its rule, and `TRIGGERS`, the list `bot.policy.decide` runs.

A rule returns a readable Reason when it fires and None otherwise. The rules look only at what the customer
wrote; text by agents or the bot never fires a trigger (the repeat rule counts the bot's replies, but fires only
when the customer writes again). The SLA rule reads the ticket's times against a `now` given by the caller.
Messages the flows marked as Seam's acknowledgements (`Message.acknowledgement`: the notice that a person will
follow up, keep-warm updates) are no answer: the SLA clock runs on through them and the repeat rule skips them.

To add a trigger: write its settings table (a `Table` with `enabled`) and its rule here, add the table to
`TriggerSettings` and one `Trigger` line to `TRIGGERS` (docs/architecture.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationInfo, field_validator

from bot.models import Assessment, Reason, Ticket
from bot.policy import spelling
from bot.policy.keywords import keyword_pattern
from bot.policy.needles import Guarded
from bot.policy.tone import read_tone, tone_text
from bot.schema import Table
from bot.text import parse_time

# -- settings ------------------------------------------------------------------------------------------------

# Keywords: whole words; `word*` matches any ending; a lone `*` stands for any one word (bot.policy.keywords).
DEFAULT_HIGH_RISK_TOPICS: dict[str, tuple[str, ...]] = {
    "refund": (
        "refund*", "reimburs*", "money back", "restitution*", "rebate*", "compensation*",
        "reembolso*", "rembours*", "rückerstattung*", "give me back my money", "return an item",
        "return * item*", "return it", "returned * item*", "cancel* * payment*", "faulty",
        "damaged", "broken on arrival", "wrong size", "wrong colo*",
    ),
    "billing dispute": (
        "chargeback*", "charge back", "disput*", "charged twice", "double charged", "overcharg*",
        "unauthori* charge*", "did not authori*", "didn't authori*", "fraud*", "payment error*", "payment issue*",
        "payment problem*", "error* with * payment*", "issue* with * payment*", "problem* with * payment*",
        "trouble* with * payment*", "charged * twice", "duplicate* charge*", "duplicate* transaction*",
        "extra charge*", "wrong amount", "more than one charge", "* * twice", "two times", "doubled",
        "charged * again", "extra * charge*", "on my statement", "in my statement",
        "disagree with * charge*", "don't recall making", "do not recall making",
    ),
    # "sue" only with a modal, "to" or its object: alone it is also a first name ("this is Sue from accounts").
    "legal": ("lawyer*", "attorney*", "solicitor*", "legal action", "sue you", "sue your*", "will sue", "ll sue",
              "to sue", "gonna sue", "sued", "suing", "lawsuit*", "court", "gdpr", "small claims"),
    "account security": (
        "hacked", "hacker*", "hacking", "compromised", "someone logged in*", "somebody logged in*",
        "someone * logged in*", "somebody * logged in*", "stolen account", "account takeover", "phishing",
        "unauthori* access", "2fa", "two-factor", "identity theft", "stolen", "stole", "lost * * card",
        "lost * * wallet", "lost * * phone", "can't find my card", "cant find my card", "without * permission",
        "someone * using my", "someone * used my", "not mine", "isn't mine", "don't recogni*", "do not recogni*",
        "didn't recogni*", "did not recogni*",
        "didn't make", "did not make", "strange payment*", "strange charge*", "unknown charge*", "unknown payment*",
        "someone * * using my", "someone * * used my", "someone * * * access", "gained access", "besides me",
        "wasn't me", "was not me", "not me", "didn't do", "didnt do", "did not do", "didnt make", "did not perform",
        "didn't perform", "without my consent", "unknown * payment*", "unknown * charge*", "strange transaction*",
        "unfamiliar", "freez* * card", "freez* * * * card", "card * frozen", "card * missing", "card * * missing",
        "phone * gone", "phone * * taken", "phone * stolen", "mugged", "no longer have my phone", "left my phone",
    ),
    "account deletion": (
        "delet* * * account*", "clos* * * account*", "remov* * * account*", "terminat* * * account*",
        "cancel* * * account*", "removal of * * account*", "termination of * * account*",
        "deletion of * * account*", "cancellation of * * account*", "account cancel*", "account remov*",
        "account delet*", "account terminat*", "delete my data", "erase my data", "account * * deleted",
        "get rid of my account", "deactivat* * * account*", "inactivat* * * account*", "invalidat* * * account*",
        "account * * terminated", "finish* * with * account",
        "right to be forgotten",
    ),
}

# Angry tone: the tone score runs from 0 (calm) to 1 (furious); above this it fires. Chosen on the Twitter US
# airline sentiment set (negative vs the rest): see bot/policy/tone.py.
DEFAULT_TONE_THRESHOLD = 0.5
# SLA: hours from when the customer started waiting (`waiting_since`) to the due time, per priority, when the
# ticket carries no `sla_due_at` of its own; a missing priority counts as normal.
DEFAULT_SLA_HOURS: dict[str, float] = {"urgent": 1.0, "high": 4.0, "normal": 24.0, "low": 48.0}
DEFAULT_SLA_MARGIN_MINUTES = 30.0
# The AI answers at most this many times in a thread before a person takes over.
DEFAULT_REPEAT_LIMIT = 2


def _words(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(v for v in values if v.strip())


class HumanSettings(Table):
    """`[triggers.asks_for_human]`: phrases added to the built-in ones; `near_miss` turns on the near-miss check
    (words that look like wanting a person, or a request read only through a doubtful correction: a draft at
    most). `enabled = false` turns both off."""

    enabled: StrictBool = True
    near_miss: StrictBool = True
    phrases: tuple[StrictStr, ...] = ()

    _phrases = field_validator("phrases")(_words)


class HighRiskSettings(Table):
    """`[triggers.high_risk]`: `topics` adds keywords to a built-in topic or defines a new one; `defaults = false`
    starts from none. After reading, `topics` holds every topic in force."""

    enabled: StrictBool = True
    defaults: StrictBool = True
    topics: dict[str, tuple[StrictStr, ...]] = Field(default_factory=dict, validate_default=True)

    @field_validator("topics")
    @classmethod
    def _with_defaults(cls, topics: dict[str, tuple[str, ...]], info: ValidationInfo) -> dict[str, tuple[str, ...]]:
        # Additions extend a default topic rather than replace it: removing a safety net takes `defaults = false`.
        merged = dict(DEFAULT_HIGH_RISK_TOPICS) if info.data.get("defaults", True) else {}
        for topic, words in topics.items():
            merged[topic] = tuple(dict.fromkeys(merged.get(topic, ()) + _words(words)))
        return merged


class ToneSettings(Table):
    """`[triggers.angry_tone]`: the score above which it fires (0 < threshold <= 1), profanity added."""

    enabled: StrictBool = True
    threshold: Annotated[StrictFloat, Field(gt=0, le=1)] = DEFAULT_TONE_THRESHOLD
    profanity: tuple[StrictStr, ...] = ()

    @field_validator("profanity")
    @classmethod
    def _lowercase(cls, words: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(w.strip().lower() for w in _words(words))


class SlaSettings(Table):
    """`[triggers.sla]`: fires when the due time is at most `margin_minutes` away (or past); `hours` per priority
    (names are lower-cased; the built-in ones stay unless overridden)."""

    enabled: StrictBool = True
    margin_minutes: Annotated[StrictFloat, Field(ge=0)] = DEFAULT_SLA_MARGIN_MINUTES
    hours: dict[str, Annotated[StrictFloat, Field(gt=0)]] = Field(default_factory=dict, validate_default=True)

    @field_validator("hours")
    @classmethod
    def _with_defaults(cls, hours: dict[str, float]) -> dict[str, float]:
        return {**DEFAULT_SLA_HOURS, **{priority.strip().lower(): value for priority, value in hours.items()}}


class RepeatSettings(Table):
    """`[triggers.repeat]`: how many AI replies in a thread (1 to 20) before a person takes over."""

    enabled: StrictBool = True
    limit: Annotated[StrictInt, Field(ge=1, le=20)] = DEFAULT_REPEAT_LIMIT


class TriggerSettings(Table):
    """`[triggers]`: one table per trigger; every trigger is on by default."""

    asks_for_human: HumanSettings = HumanSettings()
    high_risk: HighRiskSettings = HighRiskSettings()
    angry_tone: ToneSettings = ToneSettings()
    sla: SlaSettings = SlaSettings()
    repeat: RepeatSettings = RepeatSettings()


# -- the customer asks for a person --------------------------------------------------------------------------

# What a person is asked to do, in a request for one ("a human to look at this", "someone to call me").
_HELP = (r"(help|assist|check|look|explain|tell|call|phone|contact|get\s+back|reply|respond|answer|sort|fix|handle|"
         r"deal|review|advise|confirm|talk|speak|chat|get\s+in\s+touch|reach\s+out)\b")

# Phrasings of "let me talk to a person", and the common forms in a few other languages. They are matched on the
# customer's text as written (normalised: `bot.policy.spelling`), then on the same text with misspelt words of
# the trigger's vocabulary corrected ("spaek to somone" reads as "speak to someone").
_HUMAN_PATTERNS = (
    r"(?<!was\s)(?<!were\s)\b(speak|talk|chat|connect)(?!ed\b|ted\b)\w*\b[\w\s,']{0,40}?\b(hum(?:an|na|man|en)s?|persons?|persn|peson|people|someone|somebody|agents?|representatives?|reprsentative|reps?|operators?|associate|staff|supervisor|manager|employee)\b",
    # "transfer" alone is often money: "transfer 50 to a new person" is not a request.
    r"\btransfer\w*\b[\w\s,']{0,20}?\b(to|with)\s+(a|an|the|your|one\s+of\s+your)\s+((real|live|human|actual)\s+)?(human|person|agent|representative|operator|supervisor|manager|someone|somebody)\b",
    r"\b(real|live|actual|human)\s+(person|human|agent|being|support|representative|rep|operator|people)\b",
    r"\bhum(?:an|na|man)\s+(please|pls|plz|now)\b",
    r"\b(agent|operator|representative|hum(?:an|na|man))\s*(please|pls|plz)?\s*[!.?]*\s*$",
    r"\bis\s+there\s+(a|an|any)\s+(real\s+)?(person|human|someone|agent|representative)\b",
    r"\b(get|need|want)\s+(me\s+)?(a|an)\s+(real\s+)?(human|person|agent|representative)\b",
    r"\b(are|r)\s+(you|u)\s+a\s+(bot|robot|machine)\b",
    r"\b(not|no)\s+(a\s+|another\s+)?(bot|robot|machine|ai|automated)\b",
    r"\b(stop|quit)\b.{0,30}\b(bot|robot|automated|ai)\b",
    r"\bcustomer\s+(service|support|care)\s+(rep|representative|agent|person)\b",
    r"\bescalat(e|es|ed|ing|ion)\b",
    # A person asked to act: "have a person contact me", "like a human to look at this", "can a human reply".
    r"\b(want|need|like|have|get|ask|can|could|would|will|may|please|let)\s+(a|an|some)\s+((real|live|actual)\s+)?"
    r"(human|person|agent|representative|operator)\s+(to\s+)?(please\s+)?" + _HELP,
    r"\bhuman\s+(help|assistance|contact)\b",
    r"\b(contact|reach|call)\w*\s+(with\s+|to\s+)?((an?|your|another|one\s+of\s+your)\s+)?((other|real|live|human|actual)\s+)?(operator|assistant|somebody|someone|somneone|person|human|agent|representative)s?\b",
    r"\b(cat|chat)\w*\s+(with|to)\s+((an?|your|another|one\s+of\s+your)\s+)?((other|real|live|human|actual)\s+)?(operator|assistant|somebody|someone|somneone|person|human|agent|representative)s?\b",
    r"\b(speak|talk)\w*\s+(with|to)\s+an?\s+assistant\b",
    # Indirect: a call back, "is anyone there", "transfer me to billing", "your manager", "not to you".
    r"\b(can|could|would)\s+(you|someone|somebody|anyone|anybody|one\s+of\s+you|a\s+person|an\s+agent)\s+(please\s+)?(call|phone|ring)\s+me\b",
    r"\b(please|pls|plz)\s+(call|phone|ring)\s+me\b",
    r"\b(call|phone|ring)\s+me\s+(back|asap|today|now)\b",
    r"(?<!n't\s)(?<!not\s)(?<!dont\s)(?<!never\s)\b(call|phone|ring)\s+me\s+(please|pls|plz)\b",
    r"\b(have|get|ask)\s+(someone|somebody|a\s+person|an\s+agent|a\s+representative)\s+(to\s+)?(call|phone|ring|contact)\s+me\b",
    r"\bgive\s+me\s+a\s+(call|ring)\b",
    r"\b(want|need|like|request|requesting|arrange|schedule|book|(can|could|may)\s+i\s+(have|get))\s+(a|an)\s+(urgent\s+|quick\s+)?(call\s*back|phone\s+call|call\s+from)\b",
    r"\b(is|are)\s+(there\s+)?(anyone|anybody|someone|somebody)\s+(there|here|out\s+there|available|real|reading|listening|alive)\b",
    r"^[\s.,!?]*((hello|hi|hey)[\s.,!?]+)?(anyone|anybody)(\s+(there|here|home|available))?[\s.,!?]*$",
    r"\b(transfer|put|pass|connect)\s+me\s+(through\s+|over\s+|back\s+)?(to|with)\b",
    r"\bput\s+me\s+through\b",
    r"\b(let\s+me|can\s+i|could\s+i|may\s+i|wanna|like\s+to|want\s+to|need\s+to|have\s+to|wish\s+to)\s+(please\s+)?(speak|talk|chat)\s+(directly\s+)?(to|with)\s+(the|your)\s+\w+",
    r"\b(get|put)\s+(me\s+)?((a|an|the|your|some)\s+)?(real\s+|live\s+)?(someone|somebody|anyone|human|person|agent|representative|manager|supervisor|operator|boss)(\s+[\w']+)?\s+on\s+the\s+(line|phone)\b",
    r"\b(get|give)\s+me\s+(to\s+)?(a|an|the|your|some)?\s*(real\s+|live\s+)?(someone|somebody|human|person|agent|representative|manager|supervisor|operator)\b",
    r"^[\s.,!?]*(the\s+)?([\w']+\s+){0,2}(team|department|dept|desk)\s+(please|pls|plz)[\s.,!?]*$",
    r"\b(don't|dont|do\s+not)\s+want\s+to\s+(talk|speak|chat)\s+(to|with)\s+(you|a\s+bot|a\s+machine|a\s+robot|the\s+bot|this\s+bot)\b",
    # Spanish, French, German, Portuguese, Italian, Dutch: the article, at most one word describing the person
    # ("einem echten Mitarbeiter", "un vrai conseiller"), the noun; German and Dutch put the verb last.
    r"\bhablar\s+con\s+(alguien|(una?|el|la)\s+(\w+\s+)?(persona|humano|agente|representante|operador|asesor)\b)",
    r"\bparler\s+(à|a|avec)\s+(quelqu'un|(un|une)\s+(\w+\s+)?(humain|personne|conseill(er|ère)|agent|opérat(eur|rice))\b)",
    r"\b(mit\s+)?(einem|einer)\s+(menschen|mitarbeiter|mitarbeiterin|person)\s+sprechen\b",
    r"\bmit\s+(jemandem|(einem|einer|dem|der)\s+(\w+\s+)?(menschen|mitarbeiter(in)?|person|berater(in)?))\s+(\w+\s+)?"
    r"(sprechen|reden)\b",
    r"\bfalar\s+com\s+(algu[eé]m|(um|uma|o|a)\s+(\w+\s+)?(atendente|pessoa|humano|agente|operador)\b)",
    r"\bparlare\s+con\s+(qualcuno|(un|una)\s+(\w+\s+)?(operatore|operatrice|persona|umano|agente)\b)",
    r"\b(spreken|praten)\s+met\s+(iemand|een\s+(\w+\s+)?(medewerker|mens|persoon)\b)",
    r"\bmet\s+(iemand|een\s+(\w+\s+)?(medewerker|mens|persoon))\s+(\w+\s+)?(spreken|praten)\b",
)

# Near misses: what looks like wanting a person without saying so clearly. They cap the ticket at a draft.
_MAYBE_HUMAN_PATTERNS = (
    r"\b(can|could|would|will)\s+(someone|somebody|anyone|anybody)\s+(else\s+)?(please\s+)?" + _HELP,
    r"(?<!n't\s)(?<!not\s)(?<!dont\s)\b(need|want|get|find)\s+(someone|somebody|anyone|anybody)\s+(else\s+)?to\s+" + _HELP,
    r"\bis\s+there\s+(anyone|anybody|someone|somebody)\b",
    r"(?<!talked\s)(?<!spoke\s)(?<!spoken\s)(?<!chatted\s)(?<!was\s)\b(to|with)\s+(a|an)\s+((real|live|actual)\s+)?(human|person|agent|representative|operator)\b",
    r"\b(this|stupid|useless|dumb|silly)\s+(bot|robot|chatbot|machine)s?\b",
    r"\bwith\s+(a|the)\s+(bot|robot|machine)\b",
    r"\b(bots|chatbots?)\b",
    r"\b(this|the)\s+(conversation|chat)\s+(is\s+)?(not|isn't|isnt)\s+(working|helping|going|leading)\b",
    r"\byou\s+(are\s+not|aren't|arent|r\s+not)\s+(helpful|helping|understanding|listening)\b",
    r"\byou\s+(don't|dont|do\s+not)\s+understand\b",
)

_FLAGS = re.IGNORECASE | re.MULTILINE


@lru_cache(maxsize=32)
def _compile_human(extra: tuple[str, ...]) -> Guarded:
    parts = list(_HUMAN_PATTERNS) + [r"\b" + re.escape(spelling.normalise(p).lower()) + r"\b" for p in extra]
    return Guarded(re.compile("|".join(f"(?:{p})" for p in parts), _FLAGS))


_MAYBE_HUMAN = Guarded(re.compile("|".join(f"(?:{p})" for p in _MAYBE_HUMAN_PATTERNS), _FLAGS))


@lru_cache(maxsize=32)
def _compile_topics(topics: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[tuple[str, Guarded], ...]:
    # Behind the literal pre-check: most tickets hold none of a topic's words (20,000 tickets: 1.7 s → 0.7 s).
    compiled = []
    for topic, words in topics:
        words = [w.strip() for w in words if w.strip()]
        if words:
            pattern = "|".join(keyword_pattern(w) for w in words)
            compiled.append((topic, Guarded(re.compile(pattern, re.IGNORECASE))))
    return tuple(compiled)


def _quote(match: re.Match[str]) -> str:
    return _quoted(match.group(0))


def _quoted(words: str) -> str:
    return "“" + " ".join(words.split())[:60] + "”"


@dataclass(frozen=True)
class HumanRequest:
    """How a text asks for a person: clearly (`clear`: escalate) or not (a near miss: a draft at most), with the
    words as written and, when reading them took a spelling correction, as read."""

    clear: bool
    words: str
    corrected: str = ""  # the words as read, when a misspelling was corrected

    @property
    def detail(self) -> str:
        return _quoted(self.words) + (f" (read as {_quoted(self.corrected)})" if self.corrected else "")


@lru_cache(maxsize=1024)
def read_request(text: str, extra_phrases: tuple[str, ...] = ()) -> HumanRequest | None:
    """Whether `text` asks for a person: clearly (a pattern matches as written, or once misspellings are
    corrected), maybe (only a near-miss pattern matches), or not (None)."""
    sure = spelling.read(text)
    clear = _compile_human(extra_phrases)
    if match := clear.search(sure.source):
        return HumanRequest(True, match.group(0))
    if sure.corrections and (found := _search(clear, sure)):
        return HumanRequest(True, *found)
    # Doubtful corrections ("aent": agent or sent?) and the near-miss patterns: a near miss at most.
    doubtful = spelling.read(text, doubtful=True)
    if doubtful.text != sure.text and (found := _search(clear, doubtful)):
        return HumanRequest(False, *found)
    if match := _MAYBE_HUMAN.search(sure.source):
        return HumanRequest(False, match.group(0))
    if doubtful.corrections and (found := _search(_MAYBE_HUMAN, doubtful)):
        return HumanRequest(False, *found)
    return None


def _search(pattern: Guarded, reading: spelling.Reading) -> tuple[str, str] | None:
    """(as written, as read) for the first match in the corrected text."""
    if match := pattern.search(reading.text):
        start, end = reading.source_span(*match.span())
        return reading.source[start:end], match.group(0)
    return None


def _request_text(ticket: Ticket) -> str:
    # What the customer has said since the last real reply (`Message.is_reply`): a request a person answered is
    # settled, one Seam only acknowledged ("a person will follow up") or an internal note passed over stands. The
    # subject counts until somebody replies, however many messages the customer sent meanwhile.
    tail, replied = ticket.since_last_reply()
    return "\n".join(p for p in ([] if replied else [ticket.subject]) + tail if p)


def asks_for_human(ticket: Ticket, *, extra_phrases: Iterable[str] = ()) -> Reason | None:
    """The customer clearly asks to deal with a person rather than the bot (misspelt or not)."""
    request = read_request(_request_text(ticket), tuple(extra_phrases))
    if request and request.clear:
        return Reason(code="asks_for_human", label="Customer asked for a human", detail=request.detail)
    return None


def maybe_asks_for_human(ticket: Ticket, *, extra_phrases: Iterable[str] = ()) -> Reason | None:
    """A near miss: the customer's words look like wanting a person ("can someone check my order") without
    clearly asking for one. None when the request is clear (`asks_for_human` fires instead)."""
    request = read_request(_request_text(ticket), tuple(extra_phrases))
    if request and not request.clear:
        return Reason(code="maybe_asks_for_human", label="May want a person", detail=request.detail)
    return None


def risk_topics(ticket: Ticket, *, topics: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
    """Each high-risk topic the customer's text touches, with the words that show it."""
    key = tuple((topic, tuple(words)) for topic, words in topics.items())
    return list(_risk_hits(ticket.everything_customer_wrote(), key))


@lru_cache(maxsize=4096)
def _risk_hits(text: str, key: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[tuple[str, str], ...]:
    # Cached: the trigger and the routing (exclusions' topics) both ask, and the regular expressions are slow.
    return tuple((topic, _quote(match)) for topic, pattern in _compile_topics(key) if (match := pattern.search(text)))


def high_risk_topic(ticket: Ticket, *, topics: Mapping[str, Iterable[str]]) -> Reason | None:
    """The ticket touches a topic where a wrong answer costs money, trust or legal exposure."""
    return risk_reason(risk_topics(ticket, topics=topics))


def risk_reason(hits: list[tuple[str, str]]) -> Reason | None:
    if not hits:
        return None
    names = ", ".join(topic for topic, _ in hits)
    return Reason(code="high_risk_topic", label=f"High-risk topic: {names}", detail=hits[0][1])


def is_low_confidence(confidence: float, *, draft_threshold: float) -> bool:
    """Too unsure even to draft: the rule both the trigger and the route (bot.policy.decide.route_of) follow."""
    return confidence < draft_threshold


def low_confidence(confidence: float, *, draft_threshold: float) -> Reason | None:
    if is_low_confidence(confidence, draft_threshold=draft_threshold):
        return Reason(code="low_confidence", label="Low confidence",
                      detail=f"{confidence:.2f} is below the draft threshold {draft_threshold:.2f}")
    return None


# -- angry or upset tone ---------------------------------------------------------------------------------------


def angry_tone(ticket: Ticket, *, settings: ToneSettings) -> Reason | None:
    """The customer's latest message(s) read as angry or upset (`bot.policy.tone`), at the threshold or above."""
    if not settings.enabled:
        return None
    reading = read_tone(tone_text(ticket), profanity=settings.profanity)
    if reading.score < settings.threshold:
        return None
    return Reason(code="angry_tone", label="Angry or upset tone", detail=", ".join(reading.signals))


# -- SLA about to breach ---------------------------------------------------------------------------------------


def waiting_since(ticket: Ticket) -> datetime | None:
    """Since when the customer has waited for an answer: their first public message after the last public reply
    (by an agent or the AI: `Message.is_reply`, so Seam's notice and keep-warm updates stop nothing), else the ticket's
    creation when its messages carry no times — a helpdesk's first and next reply times. Counted from creation
    alone, every follow-up on a ticket older than its target, long since answered, was an SLA breach at once and
    never answered automatically. None when no customer message follows the last reply: nobody is waiting."""
    public = [m for m in ticket.messages if m.public]
    last_reply = max((i for i, m in enumerate(public) if m.is_reply), default=-1)
    waiting = [m for m in public[last_reply + 1:] if m.author == "customer"]
    if public and not waiting:
        return None
    return next((t for m in waiting if (t := parse_time(m.created_at)) is not None), None) or parse_time(
        ticket.created_at)


def due_at(ticket: Ticket, *, settings: SlaSettings) -> datetime | None:
    """When the ticket is due: its own `sla_due_at`, else the hours for its priority from when the customer
    started waiting (`waiting_since`)."""
    if ticket.sla_due_at:
        return parse_time(ticket.sla_due_at)
    since = waiting_since(ticket)
    hours = settings.hours.get((ticket.priority or "normal").strip().lower())
    if since is None or hours is None:
        return None
    try:
        return since + timedelta(hours=hours)
    except OverflowError:
        return None


def _duration(delta: timedelta) -> str:
    minutes = int(abs(delta).total_seconds() // 60)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days >= 2:
        return f"{days} d {hours} h"
    hours += days * 24
    return f"{hours} h {mins} min" if hours else f"{mins} min"


def sla_breach(ticket: Ticket, *, now: datetime, settings: SlaSettings) -> Reason | None:
    """The ticket is due within the margin, or already overdue. Finished tickets (solved, closed, and the
    platforms' own words: archived, resolved) are left alone."""
    if not settings.enabled or ticket.finished:
        return None
    due = due_at(ticket, settings=settings)
    if due is None:
        return None
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    left = due - now
    if left > timedelta(minutes=settings.margin_minutes):
        return None
    detail = f"overdue by {_duration(left)}" if left < timedelta(0) else f"due in {_duration(left)}"
    return Reason(code="sla_breach", label="SLA about to breach", detail=detail)


# -- the AI already answered -----------------------------------------------------------------------------------

_TIMES = {1: "once", 2: "twice"}


def ai_answered_twice(ticket: Ticket, *, limit: int = 2) -> Reason | None:
    """The bot has replied `limit` times or more and the customer is still writing: a person takes over. Only
    its public answers count: not its notes, its acknowledgements that a person will follow up, nor the replies
    people sent through it from Slack."""
    latest = ticket.latest_message
    if latest is None or latest.author != "customer":
        return None
    replies = sum(1 for m in ticket.messages if m.author == "bot" and m.is_reply and not m.from_person)
    if replies < max(1, limit):
        return None
    times = _TIMES.get(limit, f"{limit} times")
    return Reason(code="ai_retry_limit", label=f"AI already answered {times}",
                  detail=f"{replies} AI {'reply' if replies == 1 else 'replies'} and the customer wrote again")


# -- the list decide runs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trigger:
    """One trigger as the policy runs it: its table under [triggers], its rule, and what firing does."""

    key: str
    check: Callable[..., Reason | None]  # (ticket, *, assessment, settings, now) -> Reason | None
    escalates: bool  # True: a person takes the ticket; False: a draft at most


def _asks_for_human(ticket: Ticket, *, assessment: Assessment, settings: HumanSettings, now: datetime) -> Reason | None:
    reason = asks_for_human(ticket, extra_phrases=settings.phrases)
    if reason is None and assessment.wants_human:
        reason = Reason(code="asks_for_human", label="Customer asked for a human", detail="as read by the AI")
    return reason


def _maybe_asks_for_human(ticket: Ticket, *, assessment: Assessment, settings: HumanSettings,
                          now: datetime) -> Reason | None:
    if not settings.near_miss or assessment.wants_human:
        return None
    return maybe_asks_for_human(ticket, extra_phrases=settings.phrases)


def _high_risk(ticket: Ticket, *, assessment: Assessment, settings: HighRiskSettings, now: datetime) -> Reason | None:
    return high_risk_topic(ticket, topics=settings.topics)


def _angry(ticket: Ticket, *, assessment: Assessment, settings: ToneSettings, now: datetime) -> Reason | None:
    reason = angry_tone(ticket, settings=settings)
    # The engine's reading (an LLM's, in any language: VADER reads English only), -1 furious … 1 delighted, on the
    # same scale as the score: like its reading of a request for a person, it may add the escalation, never remove it.
    if reason is None and assessment.tone is not None and -assessment.tone >= settings.threshold:
        reason = Reason(code="angry_tone", label="Angry or upset tone",
                        detail=f"as read by the AI (tone {assessment.tone:.2f})")
    return reason


def _sla(ticket: Ticket, *, assessment: Assessment, settings: SlaSettings, now: datetime) -> Reason | None:
    return sla_breach(ticket, now=now, settings=settings)


def _repeat(ticket: Ticket, *, assessment: Assessment, settings: RepeatSettings, now: datetime) -> Reason | None:
    return ai_answered_twice(ticket, limit=settings.limit)


# In the order their reasons are listed on the card.
TRIGGERS: tuple[Trigger, ...] = (
    Trigger("asks_for_human", _asks_for_human, escalates=True),
    Trigger("angry_tone", _angry, escalates=True),
    Trigger("sla", _sla, escalates=True),
    Trigger("repeat", _repeat, escalates=True),
    Trigger("high_risk", _high_risk, escalates=False),
    Trigger("asks_for_human", _maybe_asks_for_human, escalates=False),  # the near miss, same table
)


def fired(ticket: Ticket, assessment: Assessment, *, settings: TriggerSettings,
          now: datetime) -> list[tuple[Trigger, Reason]]:
    """Every enabled trigger that fires on the ticket, with its reason, in `TRIGGERS` order."""
    found = []
    for trigger in TRIGGERS:
        config: Any = getattr(settings, trigger.key)
        if config.enabled and (reason := trigger.check(ticket, assessment=assessment, settings=config, now=now)):
            found.append((trigger, reason))
    return found
