"""Routes: which Slack channel an escalation goes to, and whom it mentions, chosen by rules in plain language.

```toml
[[routes]]
name = "vip"
when = "tagged vip"
channel = "C0VIP"
mention = "<!subteam^S0VIPTEAM>"
page_manager = true
```

A route's `when` is one rule, or a list of rules that must all hold. Every form of an exclusion rule
(`bot.policy.exclusions`: a tag, a priority, a topic) is understood, and three more:

- **the requester**: `from acme.com`, `from acme.com or globex.com`, `requester domain acme.com`,
  `customers from acme.com` — the requester's email is at that domain or one under it (`eu.acme.com`); a
  whole address (`from ceo@acme.com`) matches that address only;
- **a trigger**: `when the customer asks for a person`, `when the customer is angry`, `when the SLA is about
  to breach`, `trigger asks_for_human` — the decision's reasons hold that trigger (its code, or words naming
  it: see `TRIGGER_WORDS`);
- **words**: `mentioning "invoice"`, `mentioning 'invoice' or 'receipt'`, `containing "wire transfer"` — the
  customer wrote those words, in that order, whatever their endings ("invoices" matches "invoice").

The first route whose rules all hold wins (`choose`); a ticket no route takes goes to ESCALATION_CHANNEL.
Everything here is pure: parsing raises `ConfigError` with one line naming the route, matching reads only the
ticket, its reasons and its topics.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.errors import ConfigError
from bot.models import Reason, Ticket
from bot.policy import exclusions

DOMAIN, TRIGGER, WORDS = "domain", "trigger", "words"

# The reason codes a trigger rule can name, and the words that name each (any one of the groups, all its words).
TRIGGER_WORDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "maybe_asks_for_human": (("may", "person"), ("may", "human"), ("might", "person"), ("maybe", "person"),
                             ("near", "miss")),
    "asks_for_human": (("ask", "person"), ("ask", "human"), ("ask", "agent"), ("ask", "someone"),
                       ("want", "person"), ("want", "human"), ("speak", "person"), ("talk", "person"),
                       ("speak", "human"), ("talk", "human"), ("request", "person"), ("request", "human")),
    "angry_tone": (("angry",), ("upset",), ("furious",), ("tone",)),
    "sla_breach": (("sla",), ("breach",), ("overdue",)),
    "ai_retry_limit": (("answer", "twice"), ("already", "answer"), ("repeat",), ("retry", "limit")),
    "high_risk_topic": (("high", "risk"), ("risky",)),
    "low_confidence": (("low", "confidence"), ("unsure",), ("not", "confident")),
    "ai_unavailable": (("ai", "unavailable"), ("engine", "fail"), ("ai", "fail"), ("ai", "down")),
    "excluded": (("exclu",),),
}
# How each trigger is shown in `/escalation routes`.
TRIGGER_NAMES = {
    "asks_for_human": "the customer asks for a person", "maybe_asks_for_human": "the customer may want a person",
    "angry_tone": "the customer is angry or upset", "sla_breach": "the SLA is about to breach",
    "ai_retry_limit": "the AI already answered twice", "high_risk_topic": "a high-risk topic",
    "low_confidence": "low confidence", "ai_unavailable": "the AI is unavailable", "excluded": "an excluded ticket",
}

_DOMAIN_NAME = r"@?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+"
_ADDRESS = re.compile(rf"^(?:[a-z0-9._%+-]+)?{_DOMAIN_NAME}$")
_DOMAIN_FORM = re.compile(
    r"^(?:(?:all|any)\s+)?(?:(?:tickets?|customers?|requesters?|emails?|messages?|people|users?)\s+)?"
    r"(?:(?:from|at)(?:\s+(?:the\s+)?domains?)?|(?:requester|email|customer)\s+domains?(?:\s+is)?|domains?)"
    r"\s+(.+)$")
_TRIGGER_FORM = re.compile(r"^(?:(?:when|if|whenever)\s+|(?:triggers?|triggered\s+by|trigger\s+is)\s+)(.+)$")
_WORDS_FORM = re.compile(r"^(?:(?:tickets?|messages?|anything)\s+)?"
                         r"(?:mentioning|mentions?|containing|contains?|saying|says|with\s+the\s+words?)\s+(.+)$")
_QUOTED = re.compile(r"[\"'“”‘’]([^\"'“”‘’]+)[\"'“”‘’]")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_LEAD_WORDS = frozenset("the a an customer customers requester requesters ticket tickets it they".split())


@dataclass(frozen=True)
class Condition:
    """One rule of a route, as written (`text`) and as understood: `kind` (domain, trigger, words, or an
    exclusion's tag, priority, topic) and its values (any one of them holds)."""

    text: str
    kind: str
    values: tuple[str, ...]

    def describe(self) -> str:
        """The rule in words, for `/escalation routes`."""
        if self.kind == TRIGGER:
            return "when " + " or ".join(TRIGGER_NAMES.get(v, v) for v in self.values)
        return self.text


@dataclass(frozen=True)
class Route:
    """A `[[routes]]` table, understood: where matching escalations go and what happens there."""

    name: str
    when: tuple[Condition, ...]
    channel: str
    mention: str | None = None  # `<@U…>` and/or `<!subteam^S…>`, space-separated
    page_manager: bool = False  # mention the managers in the post too
    notify_customer: bool | None = None  # None: `[customer_notice] enabled` decides
    response_time: float | None = None  # seconds the customer is told to expect, over the priority's
    keep_warm: bool | None = None  # False: no `[keep_warm]` updates for this route's escalations

    def describe(self) -> str:
        return " and ".join(c.describe() for c in self.when)


@dataclass(frozen=True)
class Match:
    route: Route
    detail: str  # what in the ticket made each rule hold, for the audit log


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _stems(text: str) -> tuple[str, ...]:
    return tuple(exclusions.stem(w) for w in _words(text))


def _alternatives(value: str) -> tuple[str, ...]:
    parts = re.split(r"\s*(?:,|\bor\b)\s*", value.strip())
    return tuple(p.strip().strip("\"'“”‘’").strip() for p in parts if p.strip().strip("\"'“”‘’").strip())


def _trigger_codes(phrase: str) -> tuple[str, ...] | None:
    """The trigger codes a phrase names ("the customer asks for a person", "asks_for_human", "angry or upset")."""
    codes: list[str] = []
    for part in re.split(r"\s*(?:,|\bor\b)\s*", phrase.strip()):
        part = part.strip().strip("\"'“”").replace("-", " ")
        if not part:
            continue
        if part.replace(" ", "_") in TRIGGER_WORDS:
            codes.append(part.replace(" ", "_"))
            continue
        stems = {exclusions.stem(w) for w in _words(part) if w not in _LEAD_WORDS}
        found = next((code for code, groups in TRIGGER_WORDS.items()
                      if any(all(any(s.startswith(exclusions.stem(g)) for s in stems) for g in group)
                             for group in groups)), None)
        if found is None:
            return None
        codes.append(found)
    return tuple(dict.fromkeys(codes)) or None


def parse_condition(text: str, *, where: str = "route rule") -> Condition:
    """One rule in plain language; ConfigError (one line, starting with `where`) when it cannot be understood."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where} is empty: write e.g. \"tagged vip\", \"from acme.com\" or "
                          "\"when the customer asks for a person\"")
    rule = " ".join(text.split())
    lowered = rule.lower().rstrip(".")
    if m := _DOMAIN_FORM.match(lowered):
        domains = tuple(d.lstrip("@") for d in _alternatives(m.group(1)))
        bad = [d for d in domains if not _ADDRESS.match(d)]
        if not domains or bad:
            raise ConfigError(f"{where} {rule!r}: {bad[0] if bad else 'nothing'!r} is not an email domain "
                              "(write e.g. \"from acme.com\")")
        return Condition(text=rule, kind=DOMAIN, values=domains)
    if m := _TRIGGER_FORM.match(lowered):
        codes = _trigger_codes(m.group(1))
        if codes is not None:
            return Condition(text=rule, kind=TRIGGER, values=codes)
        # "when tagged vip", "if from acme.com": another form behind the "when" (never a bare topic, which
        # would quietly turn a misspelt trigger into words to look for).
        try:
            inner = parse_condition(m.group(1), where=where)
        except ConfigError:
            inner = None
        if inner is None or inner.kind == exclusions.TOPIC:
            raise ConfigError(f"{where} {rule!r} names no trigger Seam knows (e.g. \"when the customer asks for a "
                              f"person\"; codes: {', '.join(TRIGGER_WORDS)})")
        return Condition(text=rule, kind=inner.kind, values=inner.values)
    if m := _WORDS_FORM.match(lowered):
        quoted = _QUOTED.findall(m.group(1))
        phrases = tuple(q.strip() for q in quoted if _words(q)) if quoted else _alternatives(m.group(1))
        phrases = tuple(p for p in phrases if _words(p))
        if not phrases:
            raise ConfigError(f"{where} {rule!r} names no words (write e.g. \"mentioning 'invoice'\")")
        return Condition(text=rule, kind=WORDS, values=phrases)
    try:
        parsed = exclusions.parse_rule(rule, where=where)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (routes also understand \"from acme.com\", \"when the customer asks for a "
                          "person\" and \"mentioning 'invoice'\")") from None
    return Condition(text=parsed.text, kind=parsed.kind, values=parsed.values)


def parse_when(when: str | Sequence[str], *, where: str) -> tuple[Condition, ...]:
    """A route's `when`: one rule, or a list of rules that must all hold."""
    rules = [when] if isinstance(when, str) else list(when)
    if not rules:
        raise ConfigError(f"{where} is an empty list: give at least one rule")
    return tuple(parse_condition(rule, where=where if len(rules) == 1 else f"{where}[{index}]")
                 for index, rule in enumerate(rules))


def _phrase_at(stems: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    width = len(phrase)
    return any(stems[i:i + width] == phrase for i in range(len(stems) - width + 1))


def holds(condition: Condition, ticket: Ticket, *, reasons: Iterable[Reason] = (),
          topics: Iterable[str] = ()) -> str | None:
    """What in the ticket makes `condition` hold (a short detail), or None when it does not."""
    if condition.kind == DOMAIN:
        email = (ticket.requester_email or "").strip().lower()
        domain = email.rpartition("@")[2]
        for value in condition.values:
            if "@" in value and email == value:
                return f"from {email}"
            if "@" not in value and domain and (domain == value or domain.endswith("." + value)):
                return f"from {domain}"
        return None
    if condition.kind == TRIGGER:
        codes = {r.code for r in reasons}
        hit = next((code for code in condition.values if code in codes), None)
        return f"trigger {hit}" if hit else None
    if condition.kind == WORDS:
        stems = _stems(ticket.everything_customer_wrote())
        hit = next((p for p in condition.values if _phrase_at(stems, _stems(p))), None)
        return f"mentions “{hit}”" if hit else None
    rule = exclusions.Exclusion(text=condition.text, kind=condition.kind, values=condition.values)
    reason = exclusions.match(ticket, rules=(rule,), topics=topics)
    return reason.detail if reason else None


def choose(routes: Sequence[Route], ticket: Ticket, *, reasons: Iterable[Reason] = (),
           topics: Iterable[str] = ()) -> Match | None:
    """The first route all of whose rules hold for this ticket, or None (ESCALATION_CHANNEL)."""
    reasons, topics = tuple(reasons), tuple(topics)
    for route in routes:
        details = []
        for condition in route.when:
            detail = holds(condition, ticket, reasons=reasons, topics=topics)
            if detail is None:
                break
            details.append(detail)
        else:
            return Match(route=route, detail="; ".join(details))
    return None
