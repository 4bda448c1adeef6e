"""Exclusions: ticket types the AI never answers, written in plain language in the config.

```toml
[exclusions]
rules = ["anything about chargebacks", "tickets tagged vip", "legal threats", "priority urgent"]
```

Three forms are understood (case-insensitive):

- **a tag**: `tickets tagged X`, `tagged X`, `tagged with X`, `tickets with tag X`, `tag X` — the ticket carries
  tag X (`tagged vip or enterprise` lists several);
- **a priority**: `priority X`, `tickets with priority X`, `priority is X`, `X priority` — the ticket's
  priority is X (`priority high or urgent` lists several);
- **a topic**: `anything about X`, `tickets about X`, `about X`, or a bare topic such as `legal threats`.

A topic matches when the words of X appear in the customer's text (every content word of X, anywhere), or
when X and one of the topics handed to `match` (the high-risk topics the triggers found, the engine's
`answer_source`) share all the words of the shorter of the two (`legal threats` matches the topic `legal`;
`refunds` matches the answer source `macro-refund-status`).

Words are compared by a small suffix-stripping stemmer rather than TF-IDF over character n-grams or prefix
matching: it is deterministic, needs no corpus to fit, and can be explained to an operator in one sentence
("refunds", "refunded" and "refunding" are the same word). Character n-grams and prefixes both rate "charge"
close to "chargeback", which is exactly the confusion an exclusion must not make: "How do I charge my device"
is not about chargebacks. A compound written in two words or with a hyphen ("charged back", "charge-back")
still matches the one-word form ("chargeback").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.errors import ConfigError
from bot.models import Reason, Ticket

TAG, PRIORITY, TOPIC = "tag", "priority", "topic"

_STOPWORDS = frozenset("""
a an the and or of to for in on at by with from about any anything everything something all some every
ticket tickets message messages customer customers mention mentions mentioning involving regarding related
that which who is are be it its this these those my your their our me we i you they
""".split())

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_VOWELS = set("aeiouy")


@dataclass(frozen=True)
class Exclusion:
    """One parsed rule: `text` as written (shown in Slack), `kind` (tag, priority or topic) and its values."""

    text: str
    kind: str
    values: tuple[str, ...]

    @property
    def stems(self) -> tuple[str, ...]:
        """For a topic rule, the stems of its content words."""
        return _content_stems(self.values[0]) if self.kind == TOPIC else ()


def stem(word: str) -> str:
    """A light English stemmer: plural, -ed and -ing endings, doubled consonants and a final silent e."""
    word = word.lower().replace("'", "")
    if word.endswith("ies") and len(word) > 4 or word.endswith("ied") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        word = word[:-1]
    for suffix in ("ing", "ed"):
        root = word[: -len(suffix)]
        if word.endswith(suffix) and len(root) >= 3 and _VOWELS & set(root):
            word = root
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeioulsz":
                word = word[:-1]  # shipped -> ship
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _content_stems(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(stem(w) for w in _words(text) if w not in _STOPWORDS))


PRIORITIES = ("low", "normal", "high", "urgent")

_LEAD = r"^(?:(?:all|any)\s+)?(?:tickets?\s+)?"
_TAG_FORM = re.compile(_LEAD + r"(?:tagged(?:\s+with)?|with\s+(?:the\s+)?tags?|tags?)(?:\s+(.*)|$)")
_PRIORITY_FORMS = (
    re.compile(_LEAD + r"(?:(?:with|of)\s+)?(?:an?\s+)?priority(?:\s+(?:is\s+|=\s*|:\s*)?(.*)|$)"),
    re.compile(_LEAD + r"(?:(?:with|of)\s+)?(?:an?\s+)?(\w+(?:\s+or\s+\w+)*)\s+priority(?:\s+tickets?)?$"),
)
_TOPIC_FORM = re.compile(
    r"^(?:(?:anything|everything|tickets?|messages?|questions?|requests?)\s+)?"
    r"(?:about|regarding|concerning|mentioning|involving|related\s+to)\s+(.*)$")


def _alternatives(value: str) -> tuple[str, ...]:
    parts = re.split(r"\s*(?:,|\bor\b|\band\b)\s*", value.strip().strip("\"'“”"))
    return tuple(p.strip().strip("\"'“”").lower() for p in parts if p.strip().strip("\"'“”"))


def parse_rule(text: str, *, position: int | None = None, where: str | None = None) -> Exclusion:
    """One rule in plain language; ConfigError (one line, naming the rule) when it cannot be understood. `where`
    names the rule in that error (a route's rules are read here too: `bot.policy.routing`)."""
    where = where or (f"exclusions.rules[{position}]" if position is not None else "exclusion rule")
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where} is empty: write e.g. \"tickets tagged vip\" or \"anything about chargebacks\"")
    rule = " ".join(text.split())
    lowered = rule.lower().rstrip(".")
    if m := _TAG_FORM.match(lowered):
        tags = _alternatives(m.group(1) or "")
        if not tags:
            raise ConfigError(f"{where} {rule!r} names no tag")
        return Exclusion(text=rule, kind=TAG, values=tags)
    for explicit, form in zip((True, False), _PRIORITY_FORMS, strict=True):
        if m := form.match(lowered):
            priorities = _alternatives(m.group(1) or "")
            unknown = [p for p in priorities if p not in PRIORITIES]
            if priorities and not unknown:
                return Exclusion(text=rule, kind=PRIORITY, values=priorities)
            if explicit:
                raise ConfigError(f"{where} {rule!r}: the priority must be one of {', '.join(PRIORITIES)}")
    topic = m.group(1) if (m := _TOPIC_FORM.match(lowered)) else lowered
    if not _content_stems(topic):
        raise ConfigError(f"{where} {rule!r} names no topic")
    return Exclusion(text=rule, kind=TOPIC, values=(topic.strip(),))


def parse_rules(texts: Sequence[str]) -> tuple[Exclusion, ...]:
    """Parse `[exclusions] rules`; a blank or meaningless rule is a ConfigError naming it."""
    return tuple(parse_rule(text, position=index) for index, text in enumerate(texts))


def _find_in_text(stems: tuple[str, ...], text: str) -> str | None:
    """The first words of `text` that make up the topic `stems` (all of them must occur), else None."""
    words = _words(text)
    word_stems = [stem(w) for w in words]
    found: dict[str, str] = {}
    for index, current in enumerate(word_stems):
        if current in stems:
            found.setdefault(current, words[index])
        if index + 1 < len(words):
            nxt = word_stems[index + 1]
            for joined in (current + nxt, current + "e" + nxt):  # charged back / charge-back -> chargeback
                if joined in stems:
                    found.setdefault(joined, f"{words[index]} {words[index + 1]}")
    if all(s in found for s in stems):
        return "”, “".join(found[s] for s in stems)
    return None


def _topic_matches(stems: tuple[str, ...], topic: str) -> bool:
    other = _content_stems(topic.replace("-", " ").replace("_", " "))
    if not stems or not other:
        return False
    return set(stems) <= set(other) or set(other) <= set(stems)


def match(ticket: Ticket, *, rules: Iterable[Exclusion], topics: Iterable[str] = ()) -> Reason | None:
    """The first exclusion rule the ticket falls under, as a Reason (code "excluded"), or None."""
    topics = tuple(t for t in topics if t)
    tags = {t.strip().lower() for t in ticket.tags}
    priority = (ticket.priority or "").strip().lower()
    text = None
    for rule in rules:
        detail = None
        if rule.kind == TAG:
            hit = next((t for t in rule.values if t in tags), None)
            detail = f"tagged {hit}" if hit else None
        elif rule.kind == PRIORITY:
            detail = f"priority {priority}" if priority and priority in rule.values else None
        else:
            stems = rule.stems
            topic = next((t for t in topics if _topic_matches(stems, t)), None)
            if topic:
                detail = f"topic {topic}"
            else:
                text = ticket.everything_customer_wrote() if text is None else text
                words = _find_in_text(stems, text)
                detail = f"“{words}”" if words else None
        if detail:
            return Reason(code="excluded", label=f"Excluded: {rule.text}", detail=detail)
    return None
