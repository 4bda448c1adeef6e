"""Offline simulation: replay tickets through the engine and the routing policy, and sweep the auto threshold.

Writes the contract's files (CONTRACT.md, *Simulation*): `decisions.jsonl` (routes at the current thresholds),
`summary.json` (the sweep), `sweep.png` (the sweep as a chart) and `report.html` (one self-contained page).
Where tickets carry `resolution.answer_id`, an automatic answer is right when its source is that id, and wrong
when it differs or when the id is null (the ticket should not have been answered automatically).
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from bot.config import ConfigError, Thresholds
from bot.decide import Policy, examine, route
from bot.engine import Engine
from bot.models import Route, Ticket
from bot.triggers import parse_time

DEFAULT_SWEEP = tuple(round(0.5 + 0.05 * i, 2) for i in range(10)) + (0.99,)


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
             sweep: Iterable[float] = DEFAULT_SWEEP) -> tuple[list[dict], dict]:
    """Return (decisions at the current thresholds, summary with the sweep)."""
    # The local engine assesses thousands at once; others (OpenAI) one call per ticket.
    many = getattr(engine, "assess_many", None)
    assessments = many(tickets) if many else [engine.assess(t) for t in tickets]
    findings = [examine(t, a, policy=policy, now=arrival(t)) for t, a in zip(tickets, assessments, strict=True)]
    decisions = []
    for ticket, found, assessment in zip(tickets, findings, assessments, strict=True):
        decision = route(found, assessment, policy=policy)
        decisions.append({"id": ticket.id, **decision.to_record()})

    current = policy.thresholds
    points = sorted(set(sweep) | {current.auto})
    rows = []
    for auto in points:
        at = replace(policy, thresholds=Thresholds(auto=auto, draft=min(current.draft, auto)))
        routes = Counter()
        right = wrong = 0
        for ticket, found, assessment in zip(tickets, findings, assessments, strict=True):
            chosen = route(found, assessment, policy=at).route
            routes[chosen] += 1
            if chosen == Route.RESOLVE:
                grade = _grade(ticket, assessment.answer_source)
                right += grade is True
                wrong += grade is False
        rows.append(_sweep_row(auto, routes, right, wrong, len(tickets), graded=_graded(tickets)))

    reasons = Counter(code for d in decisions for code in d["reasons"])
    summary = {
        "tickets": len(tickets),
        "graded_tickets": _graded(tickets),
        "thresholds": {"auto": current.auto, "draft": current.draft},
        "current": next(r for r in rows if r["auto_threshold"] == current.auto),
        "sweep": rows,
        "reasons": dict(sorted(reasons.items())),
    }
    return decisions, summary


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


def render_chart(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["sweep"]
    x = [r["auto_threshold"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ax.plot(x, [r["resolve_rate"] * 100 for r in rows], marker="o", label="resolved by AI")
    ax.plot(x, [r["draft_rate"] * 100 for r in rows], marker="o", label="drafted for approval")
    ax.plot(x, [r["escalate_rate"] * 100 for r in rows], marker="o", label="escalated to a person")
    if summary["graded_tickets"]:
        ax.plot(x, [(r["wrong_answer_rate"] or 0) * 100 for r in rows], marker="x", color="crimson",
                label="wrong automatic answers")
    ax.axvline(summary["thresholds"]["auto"], color="grey", linestyle="--", label="current auto threshold")
    ax.set_xlabel("auto-resolve threshold (confidence)")
    ax.set_ylabel("% of tickets")
    ax.set_ylim(0, 100)
    ax.set_title(f"Seam simulation: {summary['tickets']} tickets")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def render_html(summary: dict, chart: Path) -> str:
    image = base64.b64encode(chart.read_bytes()).decode()
    current = summary["thresholds"]["auto"]
    rows = "".join(
        f"<tr{' class=current' if r['auto_threshold'] == current else ''}><td>{r['auto_threshold']:.2f}</td>"
        f"<td>{r['resolve']} ({_pct(r['resolve_rate'])})</td><td>{r['draft']} ({_pct(r['draft_rate'])})</td>"
        f"<td>{r['escalate']} ({_pct(r['escalate_rate'])})</td><td>{_pct(r['accuracy'])}</td>"
        f"<td>{_pct(r['wrong_answer_rate'])}</td></tr>" for r in summary["sweep"])
    reasons = "".join(f"<li>{html.escape(code)}: {count}</li>" for code, count in summary["reasons"].items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Seam simulation</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}}
tr.current{{background:#fff3c4;font-weight:600}}img{{max-width:100%}}</style></head><body>
<h1>Seam simulation</h1>
<p>{summary['tickets']} tickets replayed ({summary['graded_tickets']} with a known answer). Current thresholds:
auto {current:.2f}, draft {summary['thresholds']['draft']:.2f}.</p>
<img alt="Resolution, draft, escalation and wrong-answer rates against the auto threshold"
 src="data:image/png;base64,{image}">
<h2>Threshold sweep</h2>
<table><tr><th>auto threshold</th><th>resolved</th><th>drafted</th><th>escalated</th>
<th>accuracy of automatic answers</th><th>wrong automatic answers (of graded tickets)</th></tr>{rows}</table>
<h2>Reasons at the current thresholds</h2><ul>{reasons}</ul>
</body></html>
"""


def write_outputs(decisions: list[dict], summary: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "decisions.jsonl").open("w", encoding="utf-8") as fh:
        for decision in decisions:
            fh.write(json.dumps(decision, ensure_ascii=False) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    render_chart(summary, out / "sweep.png")
    (out / "report.html").write_text(render_html(summary, out / "sweep.png"), encoding="utf-8")


def format_table(summary: dict) -> str:
    lines = [f"{'auto':>5}  {'resolved':>9}  {'drafted':>8}  {'escalated':>9}  {'accuracy':>8}  {'wrong':>6}"]
    for r in summary["sweep"]:
        mark = " ← current" if r["auto_threshold"] == summary["thresholds"]["auto"] else ""
        lines.append(f"{r['auto_threshold']:>5.2f}  {_pct(r['resolve_rate']):>9}  {_pct(r['draft_rate']):>8}  "
                     f"{_pct(r['escalate_rate']):>9}  {_pct(r['accuracy']):>8}  {_pct(r['wrong_answer_rate']):>6}"
                     f"{mark}")
    return "\n".join(lines)
