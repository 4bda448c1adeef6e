"""Offline simulation: replay tickets through the engine and the routing policy, and sweep the auto threshold.

Writes the contract's files (CONTRACT.md, *Simulation*): `decisions.jsonl` (routes at the current thresholds),
`summary.json` (the sweep, plus `by_topic`, `by_trigger`, `wrong_answers` at the current thresholds and the
`recommended` auto threshold for a target wrong-answer rate), `sweep.png` (the sweep as a chart, current and
recommended thresholds marked) and `report.html` (one self-contained page that fetches nothing).
Where tickets carry `resolution.answer_id`, an automatic answer is right when its source is that id, and wrong
when it differs or when the id is null (the ticket should not have been answered automatically).
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from bot.config import ConfigError, Thresholds
from bot.policy.decide import Findings, Policy, examine, route
from bot.engine.local import Engine
from bot.models import Assessment, Decision, Route, Ticket
from bot.pii import mask
from bot.policy.triggers import parse_time

DEFAULT_SWEEP = tuple(round(0.5 + 0.05 * i, 2) for i in range(10)) + (0.99,)
DEFAULT_TARGET = 0.01  # wrong automatic answers per graded ticket the recommended threshold may give
ASSESS_STEP = 2048  # tickets per engine call: a multiple of the engine's block, so a progress bar can move
WRONG_TEXT_CHARS = 300
NO_TOPIC = "(none)"


class InputError(ConfigError):
    """An input file that cannot be used at all (as opposed to a bad row, which is reported and skipped)."""


def read_tickets(path: str | Path, *, limit: int | None = None) -> tuple[list[Ticket], list[str]]:
    """Tickets from a JSONL file, and the problems found in rows that were skipped (`line N: why`)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"file not found: {path}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None
    tickets: list[Ticket] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            ticket = Ticket.from_dict(json.loads(line))
        except json.JSONDecodeError as exc:
            problems.append(f"{path.name} line {number}: not valid JSON ({exc.msg})")
            continue
        except ValueError as exc:
            problems.append(f"{path.name} line {number}: {exc}")
            continue
        if ticket.id in seen:
            problems.append(f"{path.name} line {number}: duplicate id {ticket.id!r}")
            continue
        seen.add(ticket.id)
        tickets.append(ticket)
        if limit is not None and len(tickets) >= limit:
            break
    if not tickets:
        raise InputError(f"{path} has no usable ticket" + (f" ({problems[0]})" if problems else ""))
    return tickets, problems


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


def split_by_time(tickets: Sequence[Ticket], *, newest: float) -> tuple[list[Ticket], list[Ticket]]:
    """One file as (history, replay): the oldest tickets are the past the engine learns from, the newest
    `newest` share are replayed, as if Seam had gone live at that moment. Tickets without a time count as old."""
    if not 0 < newest < 1:
        raise InputError(f"the share of newest tickets to replay must be between 0 and 1, got {newest}")
    dated = sorted(tickets, key=lambda t: (parse_time(t.created_at) is not None, t.created_at or ""))
    cut = len(dated) - max(1, round(len(dated) * newest))
    if cut < 1:
        raise InputError("too few tickets to split: nothing would be left as history")
    return dated[:cut], dated[cut:]


def arrival(ticket: Ticket) -> datetime | None:
    """When the replayed ticket reached the queue: the time its SLA is judged at, not today."""
    latest = ticket.latest_customer_message
    return parse_time(latest.created_at if latest and latest.created_at else ticket.created_at)


def simulate(tickets: Sequence[Ticket], *, engine: Engine, policy: Policy,
             sweep: Iterable[float] = DEFAULT_SWEEP, target: float = DEFAULT_TARGET,
             progress: Progress | None = None) -> tuple[list[dict], dict]:
    """Return (decisions at the current thresholds, summary with the sweep, the per-topic and per-trigger
    breakdowns, the wrongly answered tickets and the recommended auto threshold for a `target` wrong-answer
    rate). `progress(length, label)` is a context manager with `update(n)` (click.progressbar fits)."""
    progress = progress or _no_progress
    # The local engine assesses thousands at once; others (OpenAI) one call per ticket. Blocks of the engine's
    # own block size leave the figures unchanged and let a progress bar move.
    many = getattr(engine, "assess_many", None)
    assessments = []
    with progress(len(tickets), "assessing") as bar:
        step = ASSESS_STEP if many else 1
        for start in range(0, len(tickets), step):
            chunk = tickets[start:start + step]
            assessments += many(chunk) if many else [engine.assess(t) for t in chunk]
            bar.update(len(chunk))
    findings = [examine(t, a, policy=policy, now=arrival(t)) for t, a in zip(tickets, assessments, strict=True)]
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
    }
    return decisions, summary


Progress = Callable[[int, str], AbstractContextManager]


class _NoBar:
    def update(self, n: int) -> None:
        pass


@contextmanager
def _no_progress(length: int, label: str) -> Iterator[_NoBar]:
    yield _NoBar()


def _at(policy: Policy, auto: float) -> Policy:
    """The policy with the auto threshold moved (and the draft threshold lowered with it when needed)."""
    return replace(policy, thresholds=Thresholds(auto=auto, draft=min(policy.thresholds.draft, auto)))


def _sweep_at(auto: float, tickets: Sequence[Ticket], findings: Sequence[Findings],
              assessments: Sequence[Assessment], *, policy: Policy, graded: int) -> dict:
    at = _at(policy, auto)
    routes: Counter = Counter()
    right = wrong = 0
    for ticket, found, assessment in zip(tickets, findings, assessments, strict=True):
        chosen = route(found, assessment, policy=at).route
        routes[chosen] += 1
        if chosen == Route.RESOLVE:
            grade = _grade(ticket, assessment.answer_source)
            right += grade is True
            wrong += grade is False
    return _sweep_row(auto, routes, right, wrong, len(tickets), graded=graded)


def _recommend(tickets: Sequence[Ticket], findings: Sequence[Findings], assessments: Sequence[Assessment], *,
               policy: Policy, target: float, graded: int) -> dict:
    """The lowest auto threshold, among every distinct confidence (and 1.0) no lower than the current draft
    threshold, whose wrong-answer rate (wrong automatic answers / graded tickets) is at most `target`. Below
    the draft threshold the policy calls confidence low, and draft <= auto could not be set anyway: a sample
    where triggers happen to catch every bad low-confidence answer must not talk anyone into auto 0.24.

    A ticket resolves at threshold t either at every t (a per-topic threshold overrides the global one) or
    exactly when t <= its confidence, or never: so two routings per ticket (at 1.0 and at its own confidence)
    give its whole curve, and the grid costs a sort instead of one replay per point. The chosen point is then
    replayed like any sweep point, so its figures are the routing policy's own."""
    base = {"target": target, "auto_threshold": None, "candidates": 0}
    if not graded:
        return {**base, "reason": "no replayed ticket carries resolution.answer_id, so the wrong-answer rate "
                                  "cannot be measured"}
    top = _at(policy, 1.0)
    always_wrong = 0
    wrong_from: list[float] = []  # confidences of the wrong answers that stop once the threshold passes them
    confidences: set[float] = {1.0}
    for ticket, found, assessment in zip(tickets, findings, assessments, strict=True):
        confidence = assessment.confidence
        if 0.0 <= confidence <= 1.0:
            confidences.add(confidence)
        if _grade(ticket, assessment.answer_source) is not False:
            continue
        if route(found, assessment, policy=top).route == Route.RESOLVE:
            always_wrong += 1
        elif 0.0 <= confidence <= 1.0:
            if route(found, assessment, policy=_at(policy, confidence)).route == Route.RESOLVE:
                wrong_from.append(confidence)
    floor = policy.thresholds.draft
    grid = sorted(c for c in confidences if c >= floor)
    wrong_from.sort()
    base["candidates"] = len(grid)
    allowed = target * graded + 1e-9
    passed = 0  # wrong answers whose confidence lies below the candidate threshold
    for auto in grid:
        while passed < len(wrong_from) and wrong_from[passed] < auto:
            passed += 1
        if always_wrong + len(wrong_from) - passed <= allowed:
            row = _sweep_at(auto, tickets, findings, assessments, policy=policy, graded=graded)
            return {**base, "auto_threshold": auto, **{k: v for k, v in row.items() if k != "auto_threshold"},
                    "reason": f"the lowest of {len(grid)} candidate thresholds (every distinct confidence from the "
                              f"draft threshold {floor:.2f} up, and 1.00) whose wrong automatic answers stay within "
                              f"{_pct(target)} of the {graded} graded tickets"}
    worst = always_wrong / graded
    return {**base, "reason": f"no threshold meets the target: even at 1.00, {_pct(worst)} of the graded tickets "
                              f"would be answered wrongly (above {_pct(target)})"}


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
    return {
        "auto_threshold": auto,
        "resolve": routes[Route.RESOLVE], "draft": routes[Route.DRAFT], "escalate": routes[Route.ESCALATE],
        "resolve_rate": rate(routes[Route.RESOLVE]), "draft_rate": rate(routes[Route.DRAFT]),
        "escalate_rate": rate(routes[Route.ESCALATE]),
        "auto_right": right, "auto_wrong": wrong,
        "accuracy": round(right / answered, 4) if answered else None,
        "wrong_answer_rate": round(wrong / graded, 4) if graded else None,
    }


def _chart_rows(summary: dict) -> list[dict]:
    """The sweep points, with the recommended threshold's point among them when it is not one already."""
    rows = list(summary["sweep"])
    recommended = (summary.get("recommended") or {}).get("auto_threshold")
    if recommended is not None and all(r["auto_threshold"] != recommended for r in rows):
        rows.append({"auto_threshold": recommended,
                     **{k: v for k, v in summary["recommended"].items() if k in rows[0]}})
    return sorted(rows, key=lambda r: r["auto_threshold"])


def _title(summary: dict) -> str:
    parts = [f"{summary['tickets']:,} tickets replayed", f"{summary['graded_tickets']:,} graded"]
    if summary.get("history_tickets") is not None:
        parts.append(f"{summary['history_tickets']:,} history")
    return "Seam simulation: " + ", ".join(parts)


def render_chart(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _chart_rows(summary)
    x = [r["auto_threshold"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 5.4), dpi=120)
    lines = [
        ax.plot(x, [r["resolve_rate"] * 100 for r in rows], marker="o", color="#2a7de1", lw=2,
                label="resolved by AI")[0],
        ax.plot(x, [r["draft_rate"] * 100 for r in rows], marker="s", color="#f0a202", lw=2,
                label="drafted for approval")[0],
        ax.plot(x, [r["escalate_rate"] * 100 for r in rows], marker="^", color="#6b6b6b", lw=2,
                label="escalated to a person")[0],
    ]
    ax.set_xlabel("auto-resolve threshold (confidence needed to answer automatically)", fontsize=11)
    ax.set_ylabel("% of all replayed tickets", fontsize=11)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    recommended = summary.get("recommended") or {}
    if summary["graded_tickets"]:
        wrong = [(r["wrong_answer_rate"] or 0) * 100 for r in rows]
        ax2 = ax.twinx()
        lines.append(ax2.plot(x, wrong, marker="x", color="crimson", lw=2, linestyle="-",
                              label="wrong automatic answers (right axis)")[0])
        target = recommended.get("target")
        top = max([5.0, *(w * 1.15 for w in wrong), *([target * 150] if target else [])])
        ax2.set_ylim(0, top)
        ax2.set_ylabel("wrong automatic answers, % of graded tickets", color="crimson", fontsize=11)
        ax2.tick_params(axis="y", colors="crimson")
        if target is not None:
            lines.append(ax2.axhline(target * 100, color="crimson", linestyle=":", lw=1.2,
                                     label=f"target wrong-answer rate {_pct(target)} (right axis)"))
    current = summary["thresholds"]["auto"]
    lines.append(ax.axvline(current, color="black", linestyle="--", lw=1.3,
                            label=f"current auto threshold {current:.2f}"))
    if recommended.get("auto_threshold") is not None:
        chosen = recommended["auto_threshold"]
        lines.append(ax.axvline(chosen, color="#1a9850", linestyle="-.", lw=2,
                                label=f"recommended auto threshold {_thr(chosen)} "
                                      f"(resolves {_pct(recommended['resolve_rate'])})"))
    ax.set_title(_title(summary), fontsize=13)
    ax.legend(handles=lines, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=9.5, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _thr(value: float) -> str:
    """A threshold with two decimals, or more when it has them (0.50, 0.801)."""
    text = f"{value:.4f}".rstrip("0")
    return text + "0" * max(0, 2 - len(text.split(".")[1]))


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _marks(auto: float, summary: dict) -> list[str]:
    marks = []
    if auto == summary["thresholds"]["auto"]:
        marks.append("current")
    if auto == (summary.get("recommended") or {}).get("auto_threshold"):
        marks.append("recommended")
    return marks


_CSS = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#d9e2ec;--soft:#f5f7fa;--accent:#2a7de1;--good:#1a9850;--bad:#c62828}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);max-width:72rem;
margin:0 auto;padding:2rem 1.5rem 4rem;background:#fff}
h1{font-size:1.7rem;margin:0 0 .2rem}h2{font-size:1.25rem;margin:2.4rem 0 .6rem;border-bottom:1px solid var(--line);
padding-bottom:.3rem}
.sub{color:var(--muted);margin:0 0 1.2rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(9.5rem,1fr));gap:.8rem;margin:1rem 0}
.card{background:var(--soft);border:1px solid var(--line);border-radius:8px;padding:.7rem .9rem}
.card b{display:block;font-size:1.45rem;line-height:1.2}.card span{color:var(--muted);font-size:.85rem}
.card.bad b{color:var(--bad)}.card.good b{color:var(--good)}
.callout{border-left:4px solid var(--good);background:#eef8f1;padding:.8rem 1rem;border-radius:0 8px 8px 0}
.callout.none{border-color:var(--bad);background:#fdeeee}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid var(--line);border-radius:8px}
figcaption{color:var(--muted);font-size:.85rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.4rem 0}
th,td{border-bottom:1px solid var(--line);padding:.35rem .6rem;text-align:right;vertical-align:top}
th{background:var(--soft);font-weight:600;position:sticky;top:0}
td{white-space:nowrap}td.l,th.l{text-align:left}
tr.current td{background:#fff6d5}tr.recommended td{background:#e3f4e8}tr.current.recommended td{background:#e9f1d6}
.tag{display:inline-block;font-size:.72rem;font-weight:600;padding:0 .4rem;border-radius:4px;margin-left:.3rem;
color:#fff;background:var(--ink)}.tag.recommended{background:var(--good)}
td.text{text-align:left;white-space:pre-wrap;max-width:32rem;color:#323f4b}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;background:var(--soft);padding:0 .25rem;
border-radius:3px}
.muted{color:var(--muted)}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def render_html(summary: dict, chart: Path) -> str:
    """One self-contained page (inline CSS, the chart as a data: URI): nothing is fetched when it opens."""
    image = base64.b64encode(chart.read_bytes()).decode()
    current = summary["current"]
    thresholds = summary["thresholds"]
    recommended = summary.get("recommended") or {}
    table_rows = _chart_rows(summary)

    def sweep_row(r: dict) -> str:
        marks = _marks(r["auto_threshold"], summary)
        tags = "".join(f'<span class="tag {m}">{m}</span>' for m in marks)
        return (f'<tr class="{" ".join(marks)}"><td class="l">{_thr(r["auto_threshold"])}{tags}</td>'
                f'<td>{r["resolve"]:,} ({_pct(r["resolve_rate"])})</td><td>{r["draft"]:,} ({_pct(r["draft_rate"])})'
                f'</td><td>{r["escalate"]:,} ({_pct(r["escalate_rate"])})</td><td>{r["auto_right"]:,}</td>'
                f'<td>{r["auto_wrong"]:,}</td><td>{_pct(r["accuracy"])}</td>'
                f'<td>{_pct(r["wrong_answer_rate"])}</td></tr>')

    sweep = "".join(sweep_row(r) for r in table_rows)
    topics = "".join(
        f'<tr><td class="l"><code>{_e(name)}</code></td><td>{t["tickets"]:,}</td><td>{t["resolve"]:,}</td>'
        f'<td>{t["draft"]:,}</td><td>{t["escalate"]:,}</td><td>{t["graded"]:,}</td><td>{t["auto_right"]:,}</td>'
        f'<td>{t["auto_wrong"]:,}</td><td>{_pct(t["accuracy"])}</td></tr>'
        for name, t in summary.get("by_topic", {}).items())
    triggers = "".join(
        f'<tr><td class="l"><code>{_e(code)}</code></td><td>{t["fired"]:,}</td><td>{t["took_away"]:,}</td>'
        f'<td>{t["sole"]:,}</td></tr>' for code, t in summary.get("by_trigger", {}).items())
    wrong = summary.get("wrong_answers", [])
    wrong_rows = "".join(
        f'<tr><td class="l">{_e(w["id"])}</td><td class="l">{_e(w["subject"])}</td><td class="text">{_e(w["text"])}'
        f'</td><td>{w["confidence"]:.2f}</td><td class="l"><code>{_e(w["answer_source"] or "(none)")}</code></td>'
        f'<td class="l"><code>{_e(w["expected_answer_source"] or "(a person)")}</code></td></tr>' for w in wrong)

    if recommended.get("auto_threshold") is not None:
        rec = (f'<div class="callout"><p><b>Recommended auto threshold: {_thr(recommended["auto_threshold"])}</b> '
               f'(current {thresholds["auto"]:.2f}). At it Seam would answer {_pct(recommended["resolve_rate"])} '
               f'of tickets itself, draft {_pct(recommended["draft_rate"])} and escalate '
               f'{_pct(recommended["escalate_rate"])}, with {_pct(recommended["wrong_answer_rate"])} of graded '
               f'tickets answered wrongly (accuracy {_pct(recommended["accuracy"])}).</p>'
               f'<p class="muted">How it was chosen: {_e(recommended["reason"])}. The wrong-answer rate is wrong '
               f'automatic answers divided by graded tickets (those with a known expected answer); the threshold '
               f'was searched over every distinct confidence, not only the sweep points below.</p></div>')
    else:
        rec = (f'<div class="callout none"><p><b>No recommended threshold</b> for a target wrong-answer rate of '
               f'{_pct(recommended.get("target"))}: {_e(recommended.get("reason", "not computed"))}.</p></div>')

    history = summary.get("history_tickets")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Seam simulation report</title><style>{_CSS}</style></head><body>
<h1>Seam simulation report</h1>
<p class="sub">{summary['tickets']:,} tickets replayed offline, {summary['graded_tickets']:,} of them graded (with a
known expected answer){f", learning from {history:,} history tickets" if history is not None else ""}. Current
thresholds: auto <b>{thresholds['auto']:.2f}</b>, draft <b>{thresholds['draft']:.2f}</b>.</p>
<section id="headline"><h2>At the current thresholds</h2>
<div class="cards">
<div class="card"><b>{summary['tickets']:,}</b><span>tickets ({summary['graded_tickets']:,} graded)</span></div>
<div class="card good"><b>{_pct(current['resolve_rate'])}</b><span>resolved by AI ({current['resolve']:,})</span></div>
<div class="card"><b>{_pct(current['draft_rate'])}</b><span>drafted for approval ({current['draft']:,})</span></div>
<div class="card"><b>{_pct(current['escalate_rate'])}</b><span>escalated to a person
({current['escalate']:,})</span></div>
<div class="card"><b>{_pct(current['accuracy'])}</b><span>accuracy of automatic answers</span></div>
<div class="card bad"><b>{_pct(current['wrong_answer_rate'])}</b><span>wrong automatic answers
({current['auto_wrong']:,} of graded)</span></div>
</div></section>
<section id="recommended"><h2>Recommended threshold</h2>{rec}</section>
<section id="chart"><h2>Threshold sweep</h2>
<figure><img id="sweep-chart" alt="Resolution, draft, escalation and wrong-answer rates against the auto threshold"
 src="data:image/png;base64,{image}"><figcaption>Rates against the auto-resolve threshold; the wrong-answer rate
uses the right axis. Dashed: current threshold; dash-dot: recommended.</figcaption></figure>
<div class="scroll"><table id="sweep-table"><thead><tr><th class="l">auto threshold</th><th>resolved</th>
<th>drafted</th><th>escalated</th><th>right</th><th>wrong</th><th>accuracy of automatic answers</th>
<th>wrong answers (of graded)</th></tr></thead><tbody>{sweep}</tbody></table></div></section>
<section id="topics"><h2>By topic (answer source) at the current thresholds</h2>
<div class="scroll"><table id="topic-table"><thead><tr><th class="l">topic</th><th>tickets</th><th>resolved</th>
<th>drafted</th><th>escalated</th><th>graded</th><th>right</th><th>wrong</th><th>accuracy</th></tr></thead>
<tbody>{topics}</tbody></table></div></section>
<section id="triggers"><h2>By trigger at the current thresholds</h2>
<p class="muted"><i>Fired</i>: tickets the reason was given for. <i>Took away</i>: of those, tickets the AI would
otherwise have answered automatically (confidence at or above the auto threshold; for the confidence reasons,
every one). <i>Alone</i>: tickets this reason alone kept from automatic answering.</p>
<div class="scroll"><table id="trigger-table"><thead><tr><th class="l">reason</th><th>fired</th><th>took away</th>
<th>alone</th></tr></thead><tbody>{triggers}</tbody></table></div></section>
<section id="wrong"><h2>Wrongly answered tickets at the current thresholds ({len(wrong):,})</h2>
{'<p class="muted">None.</p>' if not wrong else ''}
<div class="scroll"><table id="wrong-table"><thead><tr><th class="l">ticket</th><th class="l">subject</th>
<th class="l">customer's text (first 300 characters, personal data masked)</th><th>confidence</th>
<th class="l">answered from</th><th class="l">expected</th></tr></thead><tbody>{wrong_rows}</tbody></table></div>
</section>
</body></html>
"""


def write_outputs(decisions: list[dict], summary: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "decisions.jsonl").open("w", encoding="utf-8") as fh:
        for decision in decisions:
            fh.write(json.dumps(decision, ensure_ascii=False) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    render_chart(summary, out / "sweep.png")
    (out / "report.html").write_text(render_html(summary, out / "sweep.png"), encoding="utf-8")


def format_table(summary: dict) -> str:
    lines = [f"{'auto':>6}  {'resolved':>9}  {'drafted':>8}  {'escalated':>9}  {'accuracy':>8}  {'wrong':>6}"]
    for r in _chart_rows(summary):
        marks = _marks(r["auto_threshold"], summary)
        mark = f" ← {' and '.join(marks)}" if marks else ""
        lines.append(f"{_thr(r['auto_threshold']):>6}  {_pct(r['resolve_rate']):>9}  {_pct(r['draft_rate']):>8}  "
                     f"{_pct(r['escalate_rate']):>9}  {_pct(r['accuracy']):>8}  {_pct(r['wrong_answer_rate']):>6}"
                     f"{mark}")
    lines.append(recommendation_line(summary))
    return "\n".join(lines)


def recommendation_line(summary: dict) -> str:
    rec = summary.get("recommended") or {}
    if rec.get("auto_threshold") is None:
        return f"no recommended auto threshold for a {_pct(rec.get('target'))} wrong-answer target: " \
               f"{rec.get('reason', 'not computed')}"
    return (f"recommended auto threshold {_thr(rec['auto_threshold'])} for a {_pct(rec['target'])} wrong-answer "
            f"target: resolves {_pct(rec['resolve_rate'])}, wrong {_pct(rec['wrong_answer_rate'])} of graded "
            f"(current {summary['thresholds']['auto']:.2f}: resolves {_pct(summary['current']['resolve_rate'])}, "
            f"wrong {_pct(summary['current']['wrong_answer_rate'])})")
