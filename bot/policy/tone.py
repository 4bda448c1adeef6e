"""Reading how upset a customer sounds: a score from 0 (calm) to 1 (furious) with the signals behind it.

VADER's sentiment of the wording, plus what it under-reads in support tickets: shouting, repeated "!!" and
"?!", profanity (obfuscated spellings included), threats to leave or to take it further, and the customer saying
they are upset. The angry-tone trigger (`bot.policy.triggers.angry_tone`) compares the score with its threshold.

On the Twitter US airline sentiment set (14,640 tweets, "negative" vs the rest, 62.7% negative), at the default
threshold 0.5: precision 0.96, recall 0.12 (0.4: 0.96 / 0.19; 0.2: 0.93 / 0.39; read before the self-report was
added, which lifted recall at 0.5 from 11.5% to 11.8%). That set's "negative" covers
every complaint, polite ones included; the trigger is meant for the upset few.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from bot.models import Ticket
from bot.policy.keywords import STRAIGHTEN, keyword_pattern
from bot.policy.needles import Guarded

# Built-in profanity, as config keywords (`word*` matches any ending). `[triggers.angry_tone] profanity` adds
# to it. Obfuscated spellings ("f***", "sh!t", "a$$", "f**king") are matched against the same list.
DEFAULT_PROFANITY: tuple[str, ...] = (
    "fuck*", "motherfuck*", "fck*", "fuk*", "fcuk*", "effing", "wtf", "stfu", "ffs", "omfg", "shit*", "bullshit*",
    "horseshit", "crap", "crappy", "damn*", "goddamn*", "dammit", "ass", "asshole*", "arse", "arsehole*",
    "bastard*", "bitch*", "dick", "dickhead*", "piss", "pissed", "pissing", "bollocks", "bloody hell", "prick*",
    "screw you", "screw this", "jackass*", "dumbass*", "douche*", "wanker*", "twat*", "cunt*", "scumbag*",
)

# Threats to leave or to take it further. Strong ones are upset on their own; weak ones ("cancel my
# subscription") are ordinary requests unless the wording around them is negative too.
_STRONG_THREATS = (
    r"\b(switch|switching|switched|move|moving|go|going|take|taking)\b[\w\s']{0,25}\b(competitor|competition|elsewhere|somewhere else|another (company|provider|airline|bank|store|shop|service))\b",
    r"\bnever\b[\w\s']{0,30}\b(buy|buying|order|ordering|use|using|fly|flying|shop|shopping|book|booking|recommend|come|coming|deal)\w*\b[\w\s']{0,30}\bagain\b",
    r"\b(not|won't|will not|wont)\s+(be\s+)?(buying|ordering|using|flying|shopping|booking|recommending|coming back|renewing)\b",
    r"\b(worst|terrible|horrible|awful|pathetic|disgraceful|appalling|useless|shocking)\s+(\w+\s+)?(service|support|company|experience|customer service|airline|business|store|shop|app|product)\b",
    r"\b(contact|contacting|call|calling|tell|telling|report|reporting|going to)\b[\w\s']{0,15}\bmy\s+(bank|credit card company|card issuer|lawyer|attorney)\b",
    r"\b(dispute|disputing|reverse|reversing)\b[\w\s']{0,15}\b(charge|payment|transaction)\b",
    r"\b(post|posting|share|sharing|put|putting|write|writing|leave|leaving|tweet|tweeting)\b[\w\s']{0,25}\b(twitter|facebook|instagram|tiktok|reddit|social media|online|trustpilot|yelp|google|reviews?)\b",
    r"\b(bad|negative|terrible|1[- ]star|one[- ]star|zero[- ]star)\s+reviews?\b",
    r"\breport(ing)?\s+(you|this|your company)\b",
    r"\b(bbb|better business bureau|trading standards|consumer protection|ombudsman)\b",
)
# Exasperation VADER under-reads ("fed up" scores neutral).
_EXASPERATION = (
    r"\b(fed up|sick and tired|had enough|last straw|unacceptable|ridiculous|what a joke|a joke|scam|scammers|"
    r"scammed|rip[- ]?off|ripped off|incompetent|incompetence|disgusting|disgraceful|outrageous|furious|livid|"
    r"beyond frustrated|pathetic|worthless|useless|worst|shameful|unbelievable|insane)\b",
    r"\b(nobody|no one|no-one)\s+(has\s+)?(cares|cared|answers|answered|responds|responded|replies|replied|"
    r"helps|helped|calls|called|picks up|picked up|gets back|got back)\b",
    r"\b(hung|hang|hangs|hanging)\s+up\s+on\s+(me|us|customers)\b",
    r"\b(how many (more )?times|(third|3rd|fourth|4th|fifth|5th|tenth) time|again and again|over and over)\b",
)

# The customer saying how they feel: "I am extremely upset", "I'm so frustrated", "we're fed up". VADER reads
# "upset" or "frustrated" as mildly negative, but a person who says they are angry is, whatever the other words.
# Said with an intensifier it is upset on its own; said plainly it counts with the wording around it. A negation
# ("I'm not upset") never matches: nothing may stand between the verb and the feeling but an intensifier.
_FEELINGS = (r"(angry|mad|furious|livid|irate|fuming|outraged|enraged|disgusted|appalled|upset|frustrated|"
             r"infuriated|exasperated|fed up|pissed( off)?|sick and tired)")
_INTENSIFIER = (r"(so|very|really|extremely|incredibly|beyond|absolutely|completely|totally|utterly|truly|deeply|"
                r"seriously|super|quite|more than a (little|bit))")
_SELF = r"\b(i am|i'm|im|i was|i feel|i'm feeling|i am feeling|we are|we're|we were|we feel)\s+((getting|becoming)\s+)?"
_STRONG_FEELING = Guarded(re.compile(_SELF + rf"(?:{_INTENSIFIER}\s+)+{_FEELINGS}\b"))
_FEELING = Guarded(re.compile(_SELF + rf"{_FEELINGS}\b|(?:{_INTENSIFIER})\s+(frustrating|infuriating|maddening)\b"))

_WEAK_THREATS = (
    r"\bcancel\w*\b[\w\s']{0,20}\b(subscription|account|membership|plan|contract|service)\b",
    r"\b(refund|money back)\b[\w\s']{0,20}\b(now|immediately|right now|asap)\b",
    r"\b(close|closing|delete|deleting)\s+my\s+account\b",
)

# Weights of the tone score (0 calm … 1 furious, clipped). Wording alone fires only when VADER reads it as very
# negative (compound <= -0.84 at the 0.5 threshold): polite complaints use negative words too ("damaged",
# "late", "unfortunately") without being upset. Shouting, exclamations and profanity are intensifiers that
# count only when the text is not clearly positive ("I love it!!!").
_W_NEGATIVE = 0.6
_W_SHOUTING = 0.25
_W_PUNCTUATION = 0.15
_W_PROFANITY = 0.5
_W_STRONG_THREAT = 0.5
_W_WEAK_THREAT = 0.25
_W_EXASPERATION = 0.25
_W_STRONG_FEELING = 0.5
_W_FEELING = 0.3
_POSITIVE = 0.5

# Short words that are capitals by nature, not shouting.
_ACRONYMS = frozenset("""
OK ID PIN ATM SMS FAQ USA UK EU US TV PC AM PM API URL PDF VAT UPS DHL USPS FEDEX ETA ASAP CEO CFO GDPR IBAN BIC
SWIFT IT HR CS VIP NY LA SF CA TX FL NYC DC CC BCC IOS MAC IMEI SIM VPN DNS SSL WIFI USB HDMI GPS QR SKU EUR USD
GBP CAD AUD INR MXN JPY PO FYI PS AKA TBD TBA NA EST PST CET UTC GMT AA UA DL WN AS B6 VX NB
""".split())
_CAPS_WORD = re.compile(r"(?<![\w-])[A-Z][A-Z']*[A-Z](?![\w-])")
_CAPS_RUN = re.compile(r"(?<![\w-])[A-Z']{2,}(?:[ ,.!?]+[A-Z']{2,}){3,}(?![\w-])")
_REPEATED_PUNCTUATION = re.compile(r"!{2,}|\?{2,}|\?!|!\?")
_MASKS = set("*#@$%!?")
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
_TOKEN = re.compile(r"[A-Za-z0-9*#@$%!?]+")
# Only a token holding a mask character or a digit can be masked profanity: the rest skip the per-word check.
_MAYBE_MASKED = re.compile(r"[*#@$%!?0-9]")
# Compiled once, each list as one alternation behind a literal pre-check (bot.policy.needles): read_tone runs on
# every ticket, thousands of times in a simulation, and most texts hold none of the words these need.
_STRONG_THREAT = Guarded(re.compile("|".join(f"(?:{p})" for p in _STRONG_THREATS)))
_WEAK_THREAT = Guarded(re.compile("|".join(f"(?:{p})" for p in _WEAK_THREATS)))
_EXASPERATED = Guarded(re.compile("|".join(f"(?:{p})" for p in _EXASPERATION)))
_ADDRESSES = re.compile(r"https?://\S+|\S+@\S+\.\w+|(?<!\w)@\w+")
_NON_SPACE = re.compile(r"\S+")


def _without_addresses(text: str) -> str:
    """`text` with its URLs, email addresses and @handles blanked. No address spans a space, so each run of
    non-space characters is read alone, and only one holding "@" or "http": over a long run without either (a
    pasted base64 blob) the email pattern would otherwise be tried from every position to its end: quadratic time."""
    return _NON_SPACE.sub(lambda m: _ADDRESSES.sub(" ", m[0]) if "@" in m[0] or "http" in m[0] else m[0], text)


@dataclass(frozen=True)
class ToneReading:
    """What angry_tone read in the text: the score and the signals behind it, in words."""

    score: float
    compound: float
    signals: tuple[str, ...]


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def _compound(text: str) -> float:
    """VADER's compound score. VADER gives valence only to words of its lexicon (every other rule modifies those),
    so a text without one scores 0 and is not handed to it: about half of support tickets, at a third of a
    millisecond each. Text beyond ASCII always goes to VADER, which reads emoji as words."""
    lexicon = _vader().lexicon
    if text.isascii() and not any(word.lower() in lexicon or word.strip(string.punctuation).lower() in lexicon
                                  for word in text.split()):
        return 0.0
    return float(_vader().polarity_scores(text)["compound"])


def tone_text(ticket: Ticket) -> str:
    """The customer's latest message(s): everything they wrote since the last reply (`Message.is_reply`: not an
    internal note nor Seam's notice), with the subject while nobody has replied yet."""
    tail, replied = ticket.since_last_reply()
    parts = ([] if replied else [ticket.subject]) + tail
    return "\n".join(p for p in parts if p and p.strip())


@lru_cache(maxsize=32)
def _compile_profanity(extra: tuple[str, ...]) -> tuple[Guarded, tuple[tuple[str, bool], ...]]:
    words = tuple(dict.fromkeys(w.strip().lower() for w in DEFAULT_PROFANITY + extra if w.strip()))
    pattern = Guarded(re.compile("|".join(f"(?:{keyword_pattern(w)})" for w in words), re.IGNORECASE))
    single = tuple((w.rstrip("*"), w.endswith("*")) for w in words if " " not in w.strip())
    return pattern, single


def _masked_profanity(token: str, words: tuple[tuple[str, bool], ...]) -> bool:
    """An obfuscated token ("f***", "sh!t", "a$$", "f**king") stands for one of `words`."""
    token = token.lower().rstrip("!?")
    if not re.search(r"[a-z]", token) or not any(c in _MASKS or c.isdigit() for c in token):
        return False
    for word, open_ended in words:
        if len(token) < len(word) or (len(token) > len(word) and not open_ended):
            continue
        if all(c == w or c in _MASKS or _LEET.get(c) == w for c, w in zip(token, word, strict=False)):
            return True
    return False


def _is_shouting(text: str) -> bool:
    """Several long ALL-CAPS words, a run of capitals ("WHERE IS MY ORDER"), or mostly capitals in a long text.
    Codes and acronyms (PIN, ATM, DEN-PHL, A1B2) are not shouting."""
    caps = [w for w in _CAPS_WORD.findall(text) if w.replace("'", "") not in _ACRONYMS]
    if sum(len(w) >= 4 for w in caps) >= 3 or _CAPS_RUN.search(text):
        return True
    if len(caps) < 2:  # most texts: no need to count their letters
        return False
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 20 and sum(c.isupper() for c in letters) / len(letters) >= 0.7


def read_tone(text: str, *, profanity: Iterable[str] = ()) -> ToneReading:
    """Score how angry or upset `text` reads, 0 (calm) … 1 (furious), with the signals that made the score."""
    text = _without_addresses(text)
    if not text.strip():
        return ToneReading(0.0, 0.0, ())
    compound = _compound(text)
    positive = compound >= _POSITIVE
    score, signals = 0.0, []
    if compound < 0:
        score += _W_NEGATIVE * -compound
        if compound <= -0.5:
            signals.append(f"{'very ' if compound <= -0.75 else ''}negative wording ({compound:.2f})")
    if not positive and _is_shouting(text):
        score += _W_SHOUTING
        signals.append("shouting")
    if not positive and _REPEATED_PUNCTUATION.search(text):
        score += _W_PUNCTUATION
        signals.append("repeated punctuation")
    pattern, words = _compile_profanity(tuple(profanity))
    if not positive and (pattern.search(text) or any(_masked_profanity(t, words) for t in _TOKEN.findall(text)
                                                     if _MAYBE_MASKED.search(t))):
        score += _W_PROFANITY
        signals.append("profanity")
    lowered = text.lower().translate(STRAIGHTEN)  # the patterns spell "i'm", "won't" with a straight apostrophe
    if _STRONG_THREAT.search(lowered):
        score += _W_STRONG_THREAT
        signals.append("threat to leave or escalate")
    elif _WEAK_THREAT.search(lowered):
        score += _W_WEAK_THREAT
        signals.append("threat to leave")
    if _EXASPERATED.search(lowered):
        score += _W_EXASPERATION
        signals.append("exasperation")
    if not positive and _STRONG_FEELING.search(lowered):
        score += _W_STRONG_FEELING
        signals.append("says they are upset")
    elif not positive and _FEELING.search(lowered):
        score += _W_FEELING
        signals.append("says they are upset")
    if signals == [] and compound < 0:
        signals.append(f"negative wording ({compound:.2f})")
    return ToneReading(score=min(1.0, round(score, 4)), compound=compound, signals=tuple(signals))
