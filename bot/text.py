"""Small helpers for text and time that every layer uses: cutting text to a limit, text that can always be
encoded, text that shows nothing (`blank`), the lines of a JSONL text (`jsonl_lines`), reading and writing ISO
8601 times, saying a duration or a rate the way people do, clean text from HTML, how far apart two words are (a
misspelling is within `allowed_edits`), and what in a reply belongs to one customer (`details`, `addressed_to`): a
reply written for one ticket must not carry its customer's order number or name to the next.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in "…" when it was cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def blank(text: str) -> bool:
    """Does `text` show nothing? Whitespace, and the invisible format and control characters `str.strip` keeps
    (a zero-width space, a soft hyphen, a byte-order mark), are all it holds."""
    return all(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in text)


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


_LINE_END = re.compile(r"\r\n|\r|\n")


def jsonl_lines(text: str) -> list[str]:
    """The lines of a JSONL text, split at CR and LF only: str.splitlines() also splits at U+2028 and U+0085,
    which JSON allows raw inside a string (`json.dumps(..., ensure_ascii=False)` writes them)."""
    return _LINE_END.split(text)


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


# What in a reply identifies one customer's case: an email address, or a run of four or more digits (an order,
# ticket, account or phone number) that is not a year. Numbers are compared as their digits alone, so "#77812",
# "ORD-77812" and "77812" are one detail.
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DIGITS = re.compile(r"\d{4,}")
# "Hi Ana," / "Dear Mr Smith," / "Hello Ana!" at the start of a reply: the one place a reply is sure to name its
# customer. The name is one to three capitalised words; "Hi there," and "Dear customer," name nobody.
_ADDRESS = re.compile(r"^(?P<lead>[ \t]*(?i:hi|hello|hey|dear|good (?:morning|afternoon|evening))[ \t]+)"
                      r"(?P<name>[A-Z][\w'’.-]*(?:[ \t]+[A-Z][\w'’.-]*){0,2})(?=[ \t]*[,!.:;\n]|[ \t]*$)")
_NOBODY = frozenset("there team all everyone everybody folks friend friends customer customers sir madam "
                    "support valued".split())


def details(text: str) -> frozenset[str]:
    """The case details `text` names: email addresses (lower case) and numbers of four or more digits (not
    years 1900–2099), each as its digits."""
    found = {m.group(0).lower().rstrip(".") for m in _EMAIL.finditer(text)}
    without_emails = _EMAIL.sub(" ", text)
    found.update(n for n in _DIGITS.findall(without_emails) if not (len(n) == 4 and 1900 <= int(n) <= 2099))
    return frozenset(found)


def name_words(name: str | None) -> tuple[str, ...]:
    """The capitalised words of a person's name ("Ana", "Lopez"): what of it a reply may carry."""
    return tuple(w for w in re.findall(r"[^\W\d_]{2,}", name or "") if w[0].isupper())


def first_name(name: str | None) -> str | None:
    """The first word of a person's name as a helpdesk gives it, or None when it does not read as a name (empty,
    an email address, digits)."""
    words = (name or "").split()
    if not words or "@" in words[0] or not words[0].replace("-", "").replace("'", "").isalpha():
        return None
    return words[0]


def addressed_to(reply: str, name: str | None) -> str:
    """`reply` with the name its greeting addresses ("Hi Ana,") replaced by this customer's first name, or by
    "there" ("customer" after "Dear") when theirs is not known: a reply learnt from one ticket greets the next
    customer by their own name or none. A greeting that names nobody, or this customer, is left as it is."""
    match = _ADDRESS.match(reply)
    if match is None or match.group("name").split()[0].lower() in _NOBODY:
        return reply
    own = first_name(name)
    if own is not None and own.lower() in {w.lower().rstrip(".") for w in match.group("name").split()}:
        return reply
    fallback = "customer" if match.group("lead").strip().lower() == "dear" else "there"
    return reply[:match.start("name")] + (own or fallback) + reply[match.end("name"):]


# The sign-off that ends a reply: a closing ("Best,", "Kind regards", "Thanks!") alone on its line or followed by a
# name ("Best, Sam"; "Cheers, Sam from Acme"), then at most three short lines of name, role or team ("Sam Lee",
# "Customer Support", "Acme") — or a dash and a name ("— Sam"). Which agent signed says nothing about the answer.
_NAME_WORD = r"(?:[A-Z][\w'’.&-]*|from|the|at|of|and|&)"
_NAME_LINE = rf"[ \t]*{_NAME_WORD}(?:[ \t]+{_NAME_WORD}){{0,5}}[ \t]*[.!]?[ \t]*"
_CLOSING = (r"(?i:best(?: regards| wishes)?|(?:kind|warm|warmest|many|with) regards|regards|many thanks|thanks"
            r"(?: again| so much)?|thank you(?: again)?|cheers|sincerely|yours(?: sincerely| truly)?|all the best"
            r"|take care|speak soon|talk soon)")
_SIGN_OFF = re.compile(rf"(?:^|\n)(?:[ \t]*{_CLOSING}[ \t]*[,.!]*(?:{_NAME_LINE})?|[ \t]*[-–—]+{_NAME_LINE})"
                       rf"(?:\n{_NAME_LINE}){{0,3}}\s*$")


def without_sign_off(reply: str) -> str:
    """`reply` without the sign-off that ends it ("Best,\nSam", "Kind regards, Maria from Acme Support",
    "— Sam"); a closing that says more ("Thanks for your patience, the refund is on its way.") is kept."""
    match = _SIGN_OFF.search(reply.rstrip())
    return reply.rstrip()[:match.start()].rstrip() if match and match.start() > 0 else reply


def masked(text: str, found: tuple[str, ...] | frozenset[str]) -> str:
    """`text` with each of the details `found` (`details`' emails and digit runs, or names) written "[…]"."""
    for detail in found:
        if "@" in detail:
            text = re.sub(re.escape(detail), "[…]", text, flags=re.IGNORECASE)
        elif detail.isdigit():
            text = re.sub(r"\d{4,}", lambda m, d=detail: "[…]" if m.group(0) == d else m.group(0), text)
        else:
            text = re.sub(rf"\b{re.escape(detail)}\b", "[…]", text)
    return text
