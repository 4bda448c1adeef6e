"""Offline simulation: replay tickets through the engine and the routing policy, and sweep the auto threshold.

`simulate()` gives the contract's data (CONTRACT.md, *Simulation*): one decision per ticket at the current
thresholds, and a summary with the sweep, `by_topic`, `by_trigger`, `wrong_answers` at the current thresholds and
the `recommended` auto threshold for a target wrong-answer rate; `bot.offline.report` writes them as
decisions.jsonl, summary.json, sweep.png and report.html.
A replayed ticket's SLA is judged at its arrival (`arrival`), never at the time of the run: one without a readable
time is not judged, and `sla_not_judged` counts those that had a due time.
Where tickets carry `resolution.answer_id`, an automatic answer is right when its source is that id, and wrong
when it differs or when the id is null (the ticket should not have been answered automatically).
A replayed ticket may not answer itself: the history loses the tickets with its id (`without_replayed`) and its
copies under other ids, known by the customer's identical text (`without_same_text`); `skipped_by_reason` counts
the rows of a ticket file that could not be read, by why.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import datetime

from bot.engine.base import Engine
from bot.errors import InputError
from bot.models import Assessment, Decision, Route, Ticket
from bot.pii import mask
from bot.policy import thresholds, triggers
from bot.policy.decide import Findings, Policy, examine, route, route_of
from bot.policy.settings import Thresholds
from bot.text import parse_time
from bot.workers import forked_pool, forking_helps

DEFAULT_SWEEP = tuple(round(0.5 + 0.05 * i, 2) for i in range(10)) + (0.99,)
WRONG_TEXT_CHARS = 300
NO_TOPIC = "(none)"


def _grade(ticket: Ticket, answer_source: str | None) -> bool | None:
    """True/False for an automatic answer to a ticket with a known expected answer; None when unknown."""
    if ticket.resolution is None:
        return None
    expected = ticket.resolution.answer_id
    return expected is not None and answer_source == expected


def without_replayed(history: Sequence[Ticket], replay: Sequence[Ticket]) -> tuple[list[Ticket], int]:
    """History minus the replayed tickets themselves: a ticket may not answer itself. Returns the rest and how
    many were left out."""
    replayed = {t.id for t in replay}
    kept = [t for t in history if t.id not in replayed]
    return kept, len(history) - len(kept)


# A history ticket is taken for another copy of a replayed ticket (exported twice, re-imported under other ids,
# merged) when the customer wrote the same words in both: the same subject and the same public messages, in the
# same order, ignoring case and runs of whitespace. Two safeguards keep different tickets apart. Short texts are
# never compared: "Thanks!", "Hi" or "Where is my order?" are written word for word by many customers, and eight
# words are more than such lines hold but fewer than almost any question that says what it is about. And two
# tickets whose requesters' email addresses are both known and differ are different tickets, however alike their
# words (a form that fills in the same text for everyone). What is left errs towards leaving out: a history
# ticket wrongly taken for a copy costs the replay one example to learn from, and is counted in the summary; a
# copy kept would answer its own ticket and make the replay look better than Seam would do.
MIN_SAME_TEXT_WORDS = 8


def customer_words(ticket: Ticket) -> tuple[str, ...]:
    """What is compared between a replayed ticket and a history one: the subject and each of the customer's public
    messages, in order, case-folded and with every run of whitespace made one space; empty ones left out."""
    parts = [ticket.subject, *(m.body for m in ticket.customer_messages if m.public)]
    return tuple(words for words in (" ".join(part.casefold().split()) for part in parts) if words)


def without_same_text(history: Sequence[Ticket], replay: Sequence[Ticket]) -> tuple[list[Ticket], int]:
    """History minus the copies of replayed tickets under other ids: the same customer's text (`customer_words`,
    at least MIN_SAME_TEXT_WORDS words) and no two different requester addresses. Returns the rest and how many
    were left out."""
    requesters: dict[tuple[str, ...], set[str | None]] = {}
    for ticket in replay:
        words = customer_words(ticket)
        if sum(len(part.split()) for part in words) >= MIN_SAME_TEXT_WORDS:
            requesters.setdefault(words, set()).add(_address(ticket))

    def copy(ticket: Ticket) -> bool:
        replayed = requesters.get(customer_words(ticket))
        if replayed is None:
            return False
        address = _address(ticket)
        return address is None or None in replayed or address in replayed

    kept = [t for t in history if not copy(t)]
    return kept, len(history) - len(kept)


def _address(ticket: Ticket) -> str | None:
    return (ticket.requester_email or "").strip().casefold() or None


# Why `bot.models.read_tickets` skipped a row, from the words it says it in (`FILE line N: why`).
_WHERE = re.compile(r" line \d+: ")
_SKIP_REASONS = (("not UTF-8", "not_utf8"), ("not valid JSON", "not_json"), ("duplicate id", "duplicate_id"),
                 ("needs an 'id'", "no_id"), ("needs a 'subject' or a customer message", "no_customer_text"))


def skipped_by_reason(problems: Iterable[str]) -> dict[str, int]:
    """How many skipped rows per reason: `not_utf8`, `not_json`, `duplicate_id`, `no_id`, `no_customer_text`, and
    `malformed` for a field of the wrong shape (a message without a body, tags that are not a list...)."""
    counts: Counter = Counter()
    for problem in problems:
        why = _WHERE.split(problem, maxsplit=1)[-1]
        counts[next((reason for words, reason in _SKIP_REASONS if words in why), "malformed")] += 1
    return dict(sorted(counts.items()))


def unknown_expected(replay: Sequence[Ticket], *, article_ids: Iterable[str], history: Sequence[Ticket]) -> dict:
    """The replayed tickets whose expected `answer_id` names no article and no history ticket's answer: no
    automatic answer can be graded right for them. A few are questions the knowledge does not cover; many
    usually mean the ids come from another system than the knowledge (macro numbers against article slugs)."""
    known = set(article_ids) | {t.resolution.answer_id for t in history if t.resolution and t.resolution.answer_id}
    unknown = [t.resolution.answer_id for t in replay
               if t.resolution and t.resolution.answer_id is not None and t.resolution.answer_id not in known]
    return {"tickets": len(unknown), "ids": sorted(set(unknown))[:10]}


def split_by_time(tickets: Sequence[Ticket], *, newest: float) -> tuple[list[Ticket], list[Ticket]]:
    """One file as (history, replay): the oldest tickets are the past the engine learns from, the newest
    `newest` share are replayed, as if Seam had gone live at that moment. Tickets without a readable time count
    as old, in file order. Ordered by the moment, not the text: "…+05:30" and "2026-11-20 10:00" sort wrongly."""
    if not 0 < newest < 1:
        raise InputError(f"the share of newest tickets to replay must be between 0 and 1, got {newest}")
    def moment(ticket: Ticket) -> tuple[bool, float]:
        created = parse_time(ticket.created_at)
        return created is not None, created.timestamp() if created else 0.0

    dated = sorted(tickets, key=moment)
    cut = len(dated) - max(1, round(len(dated) * newest))
    if cut < 1:
        raise InputError("too few tickets to split: nothing would be left as history")
    return dated[:cut], dated[cut:]


def arrival(ticket: Ticket) -> datetime | None:
    """When the replayed ticket reached the queue: the time its SLA is judged at, not today."""
    latest = ticket.latest_customer_message
    return parse_time(latest.created_at if latest and latest.created_at else ticket.created_at)


def simulate(tickets: Sequence[Ticket], *, engine: Engine, policy: Policy,
             sweep: Iterable[float] = DEFAULT_SWEEP, target: float = thresholds.DEFAULT_TARGET,
             progress: Progress | None = None) -> tuple[list[dict], dict]:
    """Return (decisions at the current thresholds, summary with the sweep, the per-topic and per-trigger
    breakdowns, the wrongly answered tickets and the recommended auto threshold for a `target` wrong-answer
    rate). `progress(length, label)` is a context manager with `update(n)` (click.progressbar fits)."""
    progress = progress or _no_progress
    many = getattr(engine, "assess_many", None)
    with progress(len(tickets), "assessing") as bar:
        if many:
            # The local engine assesses the whole file at once: one estimate of the share of uncovered questions
            # for all of it (matched on every core when it was fitted in processes).
            assessments = many(tickets, progress=bar.update)
        else:  # one call per ticket (OpenAI)
            assessments = []
            for ticket in tickets:
                assessments.append(engine.assess(ticket))
                bar.update(1)
    findings = _examine_all(tickets, assessments, policy=policy)
    chosen = [route(found, assessment, policy=policy) for found, assessment in zip(findings, assessments, strict=True)]
    decisions = [{"id": ticket.id, **decision.to_record()} for ticket, decision in zip(tickets, chosen, strict=True)]

    current = policy.thresholds
    points = sorted(set(sweep) | {current.auto})
    graded = _graded(tickets)
    with progress(len(points) + 1, "sweeping") as bar:
        rows = []
        for auto in points:
            rows.append(_sweep_at(auto, tickets, findings, assessments, policy=policy, graded=graded))
            bar.update(1)
        recommended = _recommend(tickets, findings, assessments, policy=policy, target=target, graded=graded)
        bar.update(1)

    reasons = Counter(code for d in decisions for code in d["reasons"])
    summary = {
        "tickets": len(tickets),
        "graded_tickets": graded,
        "thresholds": {"auto": current.auto, "draft": current.draft},
        "current": next(r for r in rows if r["auto_threshold"] == current.auto),
        "sweep": rows,
        "reasons": dict(sorted(reasons.items())),
        "by_topic": _by_topic(tickets, assessments, chosen),
        "by_trigger": _by_trigger(findings, assessments, chosen, policy=policy),
        "wrong_answers": _wrong_answers(tickets, assessments, chosen),
        "recommended": recommended,
        "sla_not_judged": _sla_not_judged(tickets, policy),
        # A local engine with history to calibrate on scores confidence for the share of uncovered questions it
        # estimates in these tickets; without, its confidence is a plain score (bot.engine.wording) and the share
        # is none of its business. None from an engine that is neither (OpenAI).
        "calibrated": getattr(engine, "calibrated", None),
        "uncovered_share_estimate": getattr(engine, "uncovered_share", None)
        if getattr(engine, "calibrated", False) else None,
    }
    return decisions, summary


Progress = Callable[[int, str], AbstractContextManager]

# Below this many tickets the triggers run in this process; above it, on every core (they are pure functions of
# the ticket and the engine's assessment, and the regular expressions and VADER hold the GIL).
PARALLEL_EXAMINE = 2000
EXAMINE_CHUNK = 500


def _examine_chunk(args: tuple[Sequence[Ticket], Sequence[Assessment], Policy]) -> list[Findings]:
    tickets, assessments, policy = args
    blind = _without_sla(policy)
    return [examine(t, a, policy=policy, now=moment) if (moment := arrival(t)) else examine(t, a, policy=blind)
            for t, a in zip(tickets, assessments, strict=True)]


def _without_sla(policy: Policy) -> Policy:
    """The policy with the SLA rule off: for a replayed ticket with no readable time of arrival, whether it was
    near its due time cannot be known, and judging it against the clock of the run would make the result depend
    on the day the simulation ran."""
    rules = policy.settings.triggers
    off = rules.model_copy(update={"sla": rules.sla.model_copy(update={"enabled": False})})
    return replace(policy, settings=policy.settings.model_copy(update={"triggers": off}))


def _sla_not_judged(tickets: Sequence[Ticket], policy: Policy) -> int:
    """Replayed tickets with an SLA due time (their own, or from their priority) but no readable arrival time."""
    sla = policy.settings.triggers.sla
    if not sla.enabled:
        return 0
    return sum(arrival(t) is None and triggers.due_at(t, settings=sla) is not None for t in tickets)


def _examine_all(tickets: Sequence[Ticket], assessments: Sequence[Assessment], *, policy: Policy) -> list[Findings]:
    if len(tickets) < PARALLEL_EXAMINE or not forking_helps():
        return _examine_chunk((tickets, assessments, policy))
    chunks = [(tickets[i:i + EXAMINE_CHUNK], assessments[i:i + EXAMINE_CHUNK], policy)
              for i in range(0, len(tickets), EXAMINE_CHUNK)]
    with forked_pool() as pool:
        return [found for chunk in pool.map(_examine_chunk, chunks) for found in chunk]


class _NoBar:
    def update(self, n: int) -> None:
        pass


@contextmanager
def _no_progress(length: int, label: str) -> Iterator[_NoBar]:
    yield _NoBar()


def _at(policy: Policy, auto: float) -> Thresholds:
    """The global thresholds with auto moved (and draft lowered with it when needed)."""
    return Thresholds(auto=auto, draft=min(policy.thresholds.draft, auto))


def _route_at(found: Findings, assessment: Assessment, *, policy: Policy, base: Thresholds) -> Route:
    """The ticket's route with the global thresholds at `base` (a topic's own thresholds still apply)."""
    thresholds = policy.settings.thresholds_for(found.topics, base=base, tighten_only=found.tighten_only)
    return route_of(found, assessment.confidence, thresholds=thresholds, paused=policy.paused)


def _sweep_at(auto: float, tickets: Sequence[Ticket], findings: Sequence[Findings],
              assessments: Sequence[Assessment], *, policy: Policy, graded: int) -> dict:
    at = _at(policy, auto)
    routes: Counter = Counter()
    right = wrong = 0
    for ticket, found, assessment in zip(tickets, findings, assessments, strict=True):
        chosen = _route_at(found, assessment, policy=policy, base=at)
        routes[chosen] += 1
        if chosen == Route.RESOLVE:
            grade = _grade(ticket, assessment.answer_source)
            right += grade is True
            wrong += grade is False
    return _sweep_row(auto, routes, right, wrong, len(tickets), graded=graded)


def _recommend(tickets: Sequence[Ticket], findings: Sequence[Findings], assessments: Sequence[Assessment], *,
               policy: Policy, target: float, graded: int) -> dict:
    """The threshold `bot.policy.thresholds.recommend` chooses on these tickets (the lowest, in steps of 0.01
    from the draft threshold up, whose wrong share of automatic answers stays within `target` at the top of its
    95% interval, with enough answers behind it), replayed like any sweep point.

    Below the draft threshold the policy calls confidence low, and draft <= auto could not be set anyway. A
    graded ticket resolves either at every threshold (a per-topic threshold overrides the global one), or
    exactly when the threshold is at most its confidence, or never: two routings per ticket (at 1.0 and at its
    own confidence) give its whole curve, so the grid costs a sort instead of one replay per point."""
    base = {"target": target, "auto_threshold": None, "candidates": 0, "points": []}
    if not graded:
        return {**base, "reason": "no replayed ticket carries resolution.answer_id, so the wrong-answer rate "
                                  "cannot be measured"}
    top = _at(policy, 1.0)
    always: list[bool] = []  # wrong?, for graded answers made at every threshold
    varying: list[tuple[float, bool]] = []  # (confidence, wrong?) for those made once the threshold is at most it
    for ticket, found, assessment in zip(tickets, findings, assessments, strict=True):
        grade = _grade(ticket, assessment.answer_source)
        if grade is None:
            continue
        confidence = assessment.confidence
        if _route_at(found, assessment, policy=policy, base=top) == Route.RESOLVE:
            always.append(not grade)
        elif 0.0 <= confidence <= 1.0 and _route_at(found, assessment, policy=policy,
                                                    base=_at(policy, confidence)) == Route.RESOLVE:
            varying.append((confidence, not grade))
    candidates = thresholds.grid(policy.thresholds.draft)
    points = thresholds.points_from(varying, candidates, always=always)
    chosen = thresholds.recommend(points, target=target)
    base.update(candidates=len(candidates), points=[p.as_dict() for p in points])
    if chosen.point is None:
        return {**base, "reason": chosen.reason}
    row = _sweep_at(chosen.point.threshold, tickets, findings, assessments, policy=policy, graded=graded)
    return {**base, **row, "reason": chosen.reason}


def _by_topic(tickets: Sequence[Ticket], assessments: Sequence[Assessment], chosen: Sequence[Decision]) -> dict:
    """Per answer source (the topic the engine matched; `(none)` when it found no answer) at the current
    thresholds, most tickets first."""
    topics: dict[str, Counter] = {}
    for ticket, assessment, decision in zip(tickets, assessments, chosen, strict=True):
        name = assessment.answer_source or assessment.topic or NO_TOPIC
        counts = topics.setdefault(name, Counter())
        counts["tickets"] += 1
        counts[str(decision.route)] += 1
        counts["graded"] += ticket.resolution is not None
        if decision.route == Route.RESOLVE:
            grade = _grade(ticket, assessment.answer_source)
            counts["auto_right"] += grade is True
            counts["auto_wrong"] += grade is False
    out = {}
    for name, c in sorted(topics.items(), key=lambda item: (-item[1]["tickets"], item[0])):
        answered = c["auto_right"] + c["auto_wrong"]
        out[name] = {"tickets": c["tickets"], "resolve": c["resolve"], "draft": c["draft"],
                     "escalate": c["escalate"], "graded": c["graded"], "auto_right": c["auto_right"],
                     "auto_wrong": c["auto_wrong"], "resolve_rate": round(c["resolve"] / c["tickets"], 4),
                     "accuracy": round(c["auto_right"] / answered, 4) if answered else None}
    return out


def _by_trigger(findings: Sequence[Findings], assessments: Sequence[Assessment], chosen: Sequence[Decision], *,
                policy: Policy) -> dict:
    """Per reason code at the current thresholds: `fired` (tickets it fired on), `took_away` (of those, tickets
    that would otherwise have been answered automatically: for a trigger, the ticket resolves once every
    trigger is removed; for the confidence reasons, always) and `sole` (of those, tickets it alone kept from
    automatic answering)."""
    counts: dict[str, Counter] = {}
    for found, assessment, decision in zip(findings, assessments, chosen, strict=True):
        if decision.route == Route.RESOLVE and not decision.reasons:
            continue
        triggered = {r.code for r in (*found.forcing, *found.capping)}
        bare = replace(found, forcing=(), capping=(), excluded=False)
        confident = route(bare, assessment, policy=policy).route == Route.RESOLVE
        for code in dict.fromkeys(r.code for r in decision.reasons):
            c = counts.setdefault(code, Counter())
            c["fired"] += 1
            if decision.route == Route.RESOLVE:
                continue
            if code in triggered:
                if confident:
                    c["took_away"] += 1
                    without = replace(found, forcing=tuple(r for r in found.forcing if r.code != code),
                                      capping=tuple(r for r in found.capping if r.code != code),
                                      excluded=found.excluded and code != "excluded")
                    c["sole"] += route(without, assessment, policy=policy).route == Route.RESOLVE
            else:  # low or medium confidence, or paused: the confidence itself kept it from the AI
                c["took_away"] += 1
                c["sole"] += not triggered
    return {code: {"fired": c["fired"], "took_away": c["took_away"], "sole": c["sole"]}
            for code, c in sorted(counts.items(), key=lambda item: (-item[1]["fired"], item[0]))}


def _customer_words(ticket: Ticket) -> str:
    text = "\n".join(m.body for m in ticket.customer_messages).strip() or ticket.subject
    return mask(text)[:WRONG_TEXT_CHARS]


def _wrong_answers(tickets: Sequence[Ticket], assessments: Sequence[Assessment], chosen: Sequence[Decision]) -> list:
    """The tickets answered automatically at the current thresholds with an answer other than the expected one
    (or when a person was expected to answer), in replay order."""
    wrong = []
    for ticket, assessment, decision in zip(tickets, assessments, chosen, strict=True):
        if decision.route == Route.RESOLVE and _grade(ticket, assessment.answer_source) is False:
            wrong.append({"id": ticket.id, "subject": ticket.subject, "text": _customer_words(ticket),
                          "confidence": round(decision.confidence, 4), "answer_source": assessment.answer_source,
                          "expected_answer_source": ticket.resolution.answer_id})
    return wrong


def _graded(tickets: Sequence[Ticket]) -> int:
    return sum(t.resolution is not None for t in tickets)


def _sweep_row(auto: float, routes: Counter, right: int, wrong: int, total: int, *, graded: int) -> dict:
    def rate(n: int) -> float:
        return round(n / total, 4) if total else 0.0

    answered = right + wrong
    evidence = thresholds.Point(auto, answered, wrong).as_dict()
    return {
        "auto_threshold": auto,
        "resolve": routes[Route.RESOLVE], "draft": routes[Route.DRAFT], "escalate": routes[Route.ESCALATE],
        "resolve_rate": rate(routes[Route.RESOLVE]), "draft_rate": rate(routes[Route.DRAFT]),
        "escalate_rate": rate(routes[Route.ESCALATE]),
        "auto_right": right, "auto_wrong": wrong,
        "accuracy": round(right / answered, 4) if answered else None,
        "wrong_answer_rate": round(wrong / graded, 4) if graded else None,
        # The recommendation's measure (bot.policy.thresholds): wrong share of graded automatic answers, 95% CI.
        "wrong_share": evidence["wrong_share"], "wrong_share_low": evidence["wrong_share_low"],
        "wrong_share_high": evidence["wrong_share_high"],
    }
