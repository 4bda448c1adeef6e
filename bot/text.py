"""Small helpers for text and time that every layer uses: cutting text to a limit, text that can always be
encoded, reading and writing ISO 8601 times, saying a duration or a rate the way people do, clean text from
HTML, and how far apart two words are (a misspelling is within `allowed_edits`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in "…" when it was cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def encodable(text: str) -> str:
    """`text` as UTF-8 can carry it: a lone UTF-16 surrogate (`\\ud800`, which JSON from outside may hold) becomes
    U+FFFD, and a split pair is joined into its character. Everything else is left exactly as it was."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def encodable_all(value: Any) -> Any:
    """`encodable` applied to every string inside `value` (dicts, lists and tuples, keys too); other values as
    they are. What leaves Seam for a database, Slack or a helpdesk goes through this."""
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, dict):
        return {encodable_all(k): encodable_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [encodable_all(v) for v in value]
    if isinstance(value, tuple):
        return tuple(encodable_all(v) for v in value)
    return value


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """The form the store keeps times in: UTC, microseconds, `Z` (sorts as text in time order)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 time as an aware datetime (UTC when no offset is given); None when missing or unreadable."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def seconds_since(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from an ISO time to `now` (default: this moment); None when the time is missing or unreadable."""
    moment = parse_time(value)
    return None if moment is None else ((now or utcnow()) - moment).total_seconds()


def duration(seconds: float) -> str:
    """A waiting time as people say it: minutes, then hours, then days."""
    if seconds < 3600:
        return f"{max(0.0, seconds) / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def percent(value: float | None) -> str:
    """A rate as a percentage with one decimal; "–" when there is none."""
    return "–" if value is None else f"{value * 100:.1f}%"


class _TextOf(HTMLParser):
    """Collects the text of an HTML fragment: blocks and <br> become line breaks, list items bullets, and
    scripts, styles and comments vanish."""

    BLOCKS = frozenset("p div section article header footer blockquote pre table tr h1 h2 h3 h4 h5 h6 ul ol".split())

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("script", "style", "head", "title"):
            self._hidden += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n• ")
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self._hidden = max(0, self._hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Clean text from HTML (help-centre articles, macros, HTML comments): entities decoded, tags gone,
    paragraphs kept apart by one blank line."""
    parser = _TextOf()
    parser.feed(markup)
    parser.close()
    text = "".join(parser.parts).replace("\xa0", " ")
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# Template placeholders, which a helpdesk fills in when an agent uses a macro or canned reply: `{{…}}` (Zendesk,
# Freshdesk, Gorgias and Front, with Liquid filters after `|`), Liquid tags `{% if … %}`, and Help Scout's
# `{%customer.firstName,fallback=there%}`. Text still holding one is never sent to a customer as it stands.
_PLACEHOLDER = re.compile(r"\{\{|\{%")
# The people a reply names: the customer (Zendesk and Freshdesk `ticket.requester`, Gorgias `ticket.customer`, Front
# `recipient`) and the agent who signs (Zendesk `current_user`, Front `user`, Freshdesk `ticket.agent`).
_NAME_PLACEHOLDER = re.compile(
    r"\{\{\s*(?:ticket\.requester|ticket\.customer|recipient|customer|contact|current_user|user|ticket\.agent"
    r"|ticket\.assignee)\.(?:first_?name|name|full_?name)\s*(?:\|[^{}]*)?\}\}"
    r"|\{%\s*customer\.(?:first_?name|full_?name)\s*(?:,\s*fallback\s*=\s*(?P<fallback>[^%{}]*))?%\}",
    re.IGNORECASE)
_GREETING = re.compile(r"\b(hi|hello|hey)[ \t]*$", re.IGNORECASE)


def has_placeholder(text: str) -> bool:
    """Does `text` still hold a template placeholder (`{{…}}` or `{%…%}`) a helpdesk would have filled in?"""
    return bool(_PLACEHOLDER.search(text))


def without_name_placeholders(text: str) -> str:
    """`text` with the placeholders that only name someone taken out, so a macro can read well without them:
    "Hi {{ticket.requester.first_name}}," becomes "Hi there,", "Thanks {{recipient.first_name}}!" becomes
    "Thanks!", a signature's `{{current_user.name}}` goes, and Help Scout's own fallback is used where it gives
    one. Every other placeholder (`{{ticket.id}}`, a Liquid `{% if %}`) stays as written: see `has_placeholder`."""
    found = False

    def replace(match: re.Match) -> str:
        nonlocal found
        found = True
        fallback = (match.group("fallback") or "").strip()
        if fallback:
            return fallback
        return "there" if _GREETING.search(match.string[:match.start()]) else ""

    cleaned = _NAME_PLACEHOLDER.sub(replace, text)
    if not found:
        return text
    cleaned = re.sub(r"[ \t]+([,.!?;:])", r"\1", cleaned)  # "Thanks !" → "Thanks!"
    cleaned = re.sub(r"[ \t]{2,}", " ", cleaned)
    return re.sub(r"[ \t]+$", "", cleaned, flags=re.M).strip()


# Words of this many letters or more may be misspelt by two edits, shorter ones by one (bot.policy.spelling,
# bot.engine.wording).
LONG_WORD = 8


def distance(a: str, b: str, limit: int) -> int:
    """The optimal-string-alignment Damerau–Levenshtein distance of a and b, or limit + 1 once it exceeds limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, before[j - 2] + 1)
            current[j] = value
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return min(previous[-1], limit + 1)


def allowed_edits(word: str) -> int:
    return 2 if len(word) >= LONG_WORD else 1
