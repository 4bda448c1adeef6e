"""The simulation's report: `sweep.png` (the sweep as a chart, current and recommended thresholds marked),
`report.html` (one self-contained page that fetches nothing), the table `simulate` prints, and writing every
output file. Pure rendering of `summary.json`'s data: nothing here decides anything.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import BinaryIO

from bot.offline.files import replacing
from bot.text import percent


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


def render_chart(summary: dict, path: Path | BinaryIO) -> None:
    """The sweep as a PNG image, written to `path` (a file name or a file open for writing bytes)."""
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
        judged = [r for r in rows if r.get("wrong_share") is not None]
        ax2 = ax.twinx()
        if judged:
            xs = [r["auto_threshold"] for r in judged]
            lines.append(ax2.fill_between(xs, [r["wrong_share_low"] * 100 for r in judged],
                                          [r["wrong_share_high"] * 100 for r in judged], color="crimson", alpha=0.15,
                                          label="its 95% interval (right axis)"))
            lines.insert(-1, ax2.plot(xs, [r["wrong_share"] * 100 for r in judged], marker="x", color="crimson",
                                      lw=2, label="wrong share of automatic answers (right axis)")[0])
        target = recommended.get("target")
        highs = [r["wrong_share_high"] * 100 for r in judged]
        top = min(100.0, max([5.0, *(h * 1.1 for h in highs), *([target * 150] if target else [])]))
        ax2.set_ylim(0, top)
        ax2.set_ylabel("wrong, % of graded automatic answers", color="crimson", fontsize=11)
        ax2.tick_params(axis="y", colors="crimson")
        if target is not None:
            lines.append(ax2.axhline(target * 100, color="crimson", linestyle=":", lw=1.2,
                                     label=f"target {percent(target)} (right axis)"))
    current = summary["thresholds"]["auto"]
    lines.append(ax.axvline(current, color="black", linestyle="--", lw=1.3,
                            label=f"current auto threshold {current:.2f}"))
    if recommended.get("auto_threshold") is not None:
        chosen = recommended["auto_threshold"]
        lines.append(ax.axvline(chosen, color="#1a9850", linestyle="-.", lw=2,
                                label=f"recommended auto threshold {_thr(chosen)} "
                                      f"(resolves {percent(recommended['resolve_rate'])})"))
    ax.set_title(_title(summary), fontsize=13)
    ax.legend(handles=lines, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=9.5, frameon=False)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def _uncovered(summary: dict) -> str:
    if summary.get("calibrated") is False:
        return " " + plain_score(summary)
    share = summary.get("uncovered_share_estimate")
    if share is None:
        return ""
    from bot.engine.local import UNCOVERED_SHARE_BOUNDS
    return (f" The engine estimates that {percent(share)} of these tickets ask something the knowledge and history "
            f"do not cover (it never assumes fewer than {percent(UNCOVERED_SHARE_BOUNDS[0])}), and scores its "
            f"confidence for that mix.")


def _share(row: dict) -> str:
    """A sweep row's wrong share of automatic answers with its 95% interval: "0.3% (0.1–1.5%)"."""
    if row.get("wrong_share") is None:
        return "–"
    return (f"{percent(row['wrong_share'])} ({row['wrong_share_low'] * 100:.1f}–"
            f"{percent(row['wrong_share_high'])})")


def _thr(value: float) -> str:
    """A threshold with two decimals, or more when it has them (0.50, 0.801)."""
    text = f"{value:.4f}".rstrip("0")
    return text + "0" * max(0, 2 - len(text.split(".")[1]))


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
                f'<td>{r["resolve"]:,} ({percent(r["resolve_rate"])})</td>'
                f'<td>{r["draft"]:,} ({percent(r["draft_rate"])})'
                f'</td><td>{r["escalate"]:,} ({percent(r["escalate_rate"])})</td><td>{r["auto_right"]:,}</td>'
                f'<td>{r["auto_wrong"]:,}</td><td>{percent(r["accuracy"])}</td>'
                f'<td>{_share(r)}</td></tr>')

    sweep = "".join(sweep_row(r) for r in table_rows)
    topics = "".join(
        f'<tr><td class="l"><code>{_e(name)}</code></td><td>{t["tickets"]:,}</td><td>{t["resolve"]:,}</td>'
        f'<td>{t["draft"]:,}</td><td>{t["escalate"]:,}</td><td>{t["graded"]:,}</td><td>{t["auto_right"]:,}</td>'
        f'<td>{t["auto_wrong"]:,}</td><td>{percent(t["accuracy"])}</td></tr>'
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
               f'(current {thresholds["auto"]:.2f}). At it Seam would answer {percent(recommended["resolve_rate"])} '
               f'of tickets itself, draft {percent(recommended["draft_rate"])} and escalate '
               f'{percent(recommended["escalate_rate"])}; {_share(recommended)} of its graded automatic answers '
               f'would be wrong.</p>'
               f'<p class="muted">How it was chosen: {_e(recommended["reason"])}. The wrong share is wrong automatic '
               f'answers divided by graded automatic answers (tickets with a known expected answer that the AI would '
               f'answer on its own), the same measure as <code>/escalation advise</code>; thresholds were searched '
               f'in steps of 0.01 from the draft threshold up, not only the sweep points below.</p></div>')
    else:
        rec = (f'<div class="callout none"><p><b>No recommended threshold</b> for a {percent(recommended.get("target"))} '
               f'target: {_e(recommended.get("reason", "not computed"))}.</p></div>')

    history = summary.get("history_tickets")
    unknown = unknown_expected_note(summary)
    warning = f'<div class="callout none"><p>{_e(unknown)}.</p></div>' if unknown else ""
    notes = "".join(f"<li>{_e(note)}.</li>" for note in input_notes(summary))
    inputs = f'<section id="inputs"><h2>Left out</h2><ul>{notes}</ul></section>\n' if notes else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Seam simulation report</title><style>{_CSS}</style></head><body>
<h1>Seam simulation report</h1>
<p class="sub">{summary['tickets']:,} tickets replayed offline, {summary['graded_tickets']:,} of them graded (with a
known expected answer){f", learning from {history:,} history tickets" if history is not None else ""}. Current
thresholds: auto <b>{thresholds['auto']:.2f}</b>, draft <b>{thresholds['draft']:.2f}</b>.{_uncovered(summary)}</p>
{warning}
{inputs}<section id="headline"><h2>At the current thresholds</h2>
<div class="cards">
<div class="card"><b>{summary['tickets']:,}</b><span>tickets ({summary['graded_tickets']:,} graded)</span></div>
<div class="card good"><b>{percent(current['resolve_rate'])}</b><span>resolved by AI ({current['resolve']:,})</span></div>
<div class="card"><b>{percent(current['draft_rate'])}</b><span>drafted for approval ({current['draft']:,})</span></div>
<div class="card"><b>{percent(current['escalate_rate'])}</b><span>escalated to a person
({current['escalate']:,})</span></div>
<div class="card"><b>{percent(current['accuracy'])}</b><span>accuracy of automatic answers</span></div>
<div class="card bad"><b>{percent(current.get('wrong_share'))}</b><span>of graded automatic answers wrong
({current['auto_wrong']:,}; 95% interval {percent(current.get('wrong_share_low'))}–{percent(current.get('wrong_share_high'))})</span></div>
</div></section>
<section id="recommended"><h2>Recommended threshold</h2>{rec}</section>
<section id="chart"><h2>Threshold sweep</h2>
<figure><img id="sweep-chart" alt="Resolution, draft, escalation and wrong-answer rates against the auto threshold"
 src="data:image/png;base64,{image}"><figcaption>Rates against the auto-resolve threshold; the wrong share of
automatic answers and its 95% interval (shaded) use the right axis. Dashed: current threshold; dash-dot:
recommended.</figcaption></figure>
<div class="scroll"><table id="sweep-table"><thead><tr><th class="l">auto threshold</th><th>resolved</th>
<th>drafted</th><th>escalated</th><th>right</th><th>wrong</th><th>accuracy of automatic answers</th>
<th>wrong share of automatic answers (95% interval)</th></tr></thead><tbody>{sweep}</tbody></table></div></section>
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
    """Write the four output files into `out`, each replaced whole (`bot.offline.files`). summary.json goes first
    and comes back last: while it is there, the folder holds one finished run, all four files from it; a run that
    fails half-way leaves none, rather than the previous run's summary beside this run's decisions."""
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "summary.json"
    try:
        summary_path.unlink(missing_ok=True)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(summary_path)) from exc
    with replacing(out / "decisions.jsonl") as fh:
        for decision in decisions:
            fh.write(json.dumps(decision, ensure_ascii=False) + "\n")
    with replacing(out / "sweep.png", binary=True) as fh:
        render_chart(summary, fh)
    page = render_html(summary, out / "sweep.png")
    with replacing(out / "report.html") as fh:
        fh.write(page)
    with replacing(summary_path) as fh:
        fh.write(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")


def format_table(summary: dict) -> str:
    lines = [f"{'auto':>6}  {'resolved':>9}  {'drafted':>8}  {'escalated':>9}  {'accuracy':>8}  "
             f"{'wrong (95% interval)':>21}"]
    for r in _chart_rows(summary):
        marks = _marks(r["auto_threshold"], summary)
        mark = f" ← {' and '.join(marks)}" if marks else ""
        lines.append(f"{_thr(r['auto_threshold']):>6}  {percent(r['resolve_rate']):>9}  {percent(r['draft_rate']):>8}  "
                     f"{percent(r['escalate_rate']):>9}  {percent(r['accuracy']):>8}  "
                     f"{_share(r):>21}{mark}")
    lines.append(recommendation_line(summary))
    if summary.get("calibrated") is False:
        lines.append(plain_score(summary))
    return "\n".join(lines)


PLAIN_SCORE = ("With fewer than 50 resolved history tickets there is nothing to calibrate on: confidence is a plain "
               "score, not a probability, and a ticket reaches the auto threshold only when an article covers all it "
               "asks. Simulate with --history to choose thresholds on calibrated confidence.")


def unknown_expected_note(summary: dict) -> str | None:
    """The warning about `unknown_expected_answers`, in words; None when every expected id names something."""
    unknown = summary.get("unknown_expected_answers") or {}
    if not unknown.get("tickets"):
        return None
    shown = ", ".join(repr(i) for i in unknown["ids"][:3]) + (", …" if len(unknown["ids"]) > 3 else "")
    return (f"{unknown['tickets']} of {summary['graded_tickets']} graded tickets expect an answer_id that no article "
            f"and no history ticket has ({shown}): an automatic answer to them always counts as wrong. If the ids "
            f"come from another system, use the knowledge's article and macro ids")


_SKIP_WORDS = {"not_utf8": "not UTF-8 text", "not_json": "not valid JSON", "duplicate_id": "duplicate id",
               "no_id": "without an id", "no_customer_text": "without customer text", "malformed": "malformed"}


def _many(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def input_notes(summary: dict) -> list[str]:
    """What was left out of the replay and of the history, in words: rows that could not be read, history tickets
    that teach nothing, and those left out because they are the replayed tickets themselves (by id or by text)."""
    from bot.offline.simulate import MIN_SAME_TEXT_WORDS

    notes = []
    if summary.get("skipped_rows"):
        notes.append(f"{_many(summary['skipped_rows'], 'row', 'rows')} of the tickets file could not be read and "
                     f"{'was' if summary['skipped_rows'] == 1 else 'were'} skipped")
    if summary.get("history_skipped_rows"):
        reasons = ", ".join(f"{n:,} {_SKIP_WORDS.get(reason, reason)}"
                            for reason, n in (summary.get("history_skipped_by_reason") or {}).items())
        notes.append(f"{_many(summary['history_skipped_rows'], 'row', 'rows')} of the history file could not be read "
                     f"and {'was' if summary['history_skipped_rows'] == 1 else 'were'} skipped ({reasons})")
    history, resolved = summary.get("history_tickets") or 0, summary.get("history_resolved")
    if history and resolved is not None and resolved < history:
        bare = history - resolved
        notes.append(f"{bare:,} of the {_many(history, 'history ticket', 'history tickets')} "
                     f"{'carries' if bare == 1 else 'carry'} no resolution and {'teaches' if bare == 1 else 'teach'} "
                     f"the engine nothing")
    if summary.get("left_out_of_history"):
        count = summary["left_out_of_history"]
        notes.append(f"{_many(count, 'history ticket was', 'history tickets were')} left out because "
                     f"{'it has' if count == 1 else 'they have'} the id of a replayed ticket: a ticket may not answer "
                     f"itself")
    if summary.get("left_out_of_history_by_text"):
        count = summary["left_out_of_history_by_text"]
        notes.append(f"{_many(count, 'history ticket was', 'history tickets were')} left out because their "
                     f"customer's text is the same as a replayed ticket's (the subject and the customer's public "
                     f"messages, ignoring case and spacing, at least {MIN_SAME_TEXT_WORDS} words, not from two "
                     f"different requesters): a copy of a ticket under another id would give its own answer away")
    return notes


def plain_score(summary: dict) -> str:
    """Why confidence is a plain score: PLAIN_SCORE without a history; with one, how little of it was resolved."""
    history, resolved = summary.get("history_tickets") or 0, summary.get("history_resolved")
    if not history or resolved is None:
        return PLAIN_SCORE
    why = (f"only {resolved:,} of the {history:,} history tickets carry a resolution (how a person resolved it), "
           f"and calibrating needs 50" if resolved < 50 else
           f"the {resolved:,} resolved history tickets could not be calibrated on (too few different answers)")
    return (f"Confidence is a plain score, not a probability: {why}. A ticket reaches the auto threshold only when an "
            f"article covers all it asks.")


def recommendation_line(summary: dict) -> str:
    rec = summary.get("recommended") or {}
    if rec.get("auto_threshold") is None:
        return f"no recommended auto threshold for a {percent(rec.get('target'))} target: " \
               f"{rec.get('reason', 'not computed')}"
    return (f"recommended auto threshold {_thr(rec['auto_threshold'])} for a {percent(rec['target'])} target: "
            f"resolves {percent(rec['resolve_rate'])}, wrong {_share(rec)} of its automatic answers "
            f"(current {summary['thresholds']['auto']:.2f}: resolves {percent(summary['current']['resolve_rate'])}, "
            f"wrong {_share(summary['current'])})")
