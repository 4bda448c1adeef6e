"""The command line: a thin click layer over the library. `python -m bot` and the `seam` script both land here.

Commands that need the Slack wiring (`serve`) live in `handlers/` and are found through the `seam.commands`
entry-point group declared in pyproject.toml, so the core never imports the web layer.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

import click

from bot.config import ConfigError, load_settings
from bot.decide import Policy
from bot.pii import install_log_filter
from bot.services import build_engine
from bot.knowledge import load_knowledge
from bot.simulate import (
    DEFAULT_SWEEP,
    format_table,
    read_tickets,
    simulate as run_simulation,
    split_by_time,
    without_replayed,
    write_outputs,
)


class SeamGroup(click.Group):
    """Adds the commands other packages register, and turns configuration errors into one-line errors."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | {ep.name for ep in entry_points(group="seam.commands")})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None:
            for ep in entry_points(group="seam.commands", name=name):
                command = ep.load()
        return command

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=SeamGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", default=lambda: os.environ.get("LOG_LEVEL", "INFO"), show_default="INFO",
              help="Logging level (also LOG_LEVEL).")
def cli(log_level: str) -> None:
    """Seam: decide, per support ticket, whether the AI answers, drafts for approval, or hands it to a person."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Card numbers, emails, phone numbers and secrets in ticket text never reach the logs.
    install_log_filter()


def _thresholds(raw: str | None) -> tuple[float, ...]:
    if not raw:
        return DEFAULT_SWEEP
    try:
        values = tuple(sorted({float(v) for v in raw.split(",") if v.strip()}))
    except ValueError:
        raise click.BadParameter("a comma-separated list of numbers, e.g. 0.6,0.7,0.8") from None
    if not values or not all(0 <= v <= 1 for v in values):
        raise click.BadParameter("thresholds must lie in [0, 1]")
    return values


@cli.command()
@click.argument("tickets", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--history", type=click.Path(dir_okay=False, path_type=Path),
              help="Resolved past tickets (JSONL) the engine learns answers from.")
@click.option("--knowledge", type=click.Path(path_type=Path),
              help="Knowledge folder or file (default: KNOWLEDGE_PATH).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("sim-out"), show_default=True,
              help="Folder for decisions.jsonl, summary.json, report.html and sweep.png.")
@click.option("--thresholds", "sweep", help="Auto thresholds to sweep, comma-separated (default 0.50…0.99).")
@click.option("--limit", type=click.IntRange(min=1), help="Replay at most this many tickets.")
@click.option("--split-newest", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Without --history: replay only this share of TICKETS, the newest by created_at, and learn "
                   "from the older rest (e.g. 0.2).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def simulate(tickets: Path, history: Path | None, knowledge: Path | None, out: Path, sweep: str | None,
             limit: int | None, split_newest: float | None, fmt: str) -> None:
    """Replay TICKETS (JSONL) offline and show what Seam would have resolved, drafted and escalated.

    A replayed ticket never answers itself: any history ticket with the same id is left out."""
    settings = load_settings()
    if split_newest is not None and history is not None:
        raise click.UsageError("--split-newest splits TICKETS into history and replay: drop --history")
    replay, problems = read_tickets(tickets)
    past, past_problems = read_tickets(history) if history else ([], [])
    if split_newest is not None:
        past, replay = split_by_time(replay, newest=split_newest)
    replay = replay[:limit] if limit else replay
    past, left_out = without_replayed(past, replay)
    for problem in problems + past_problems:
        click.echo(f"skipped: {problem}", err=True)
    if left_out:
        click.echo(f"left {left_out} replayed tickets out of the history (a ticket may not answer itself)", err=True)
    articles = load_knowledge(knowledge or settings.knowledge_path)
    engine = build_engine(settings, articles=articles, history=past)
    policy = Policy.from_settings(settings)
    decisions, summary = run_simulation(replay, engine=engine, policy=policy, sweep=_thresholds(sweep))
    summary.update(skipped_rows=len(problems), history_tickets=len(past), left_out_of_history=left_out)
    write_outputs(decisions, summary, out)
    if fmt == "json":
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(f"{len(replay)} tickets, {len(articles)} articles, {len(past)} history tickets "
                   f"(thresholds auto {policy.thresholds.auto:.2f}, draft {policy.thresholds.draft:.2f})")
        click.echo(format_table(summary))
        click.echo(f"wrote {out}/decisions.jsonl, summary.json, sweep.png, report.html")


FEEDBACK_COLUMNS = ("id", "created_at", "user_id", "action", "escalation_id", "ticket_key", "confidence",
                    "answer_source", "draft", "final_text", "edit_distance", "reason")


@cli.group()
def feedback() -> None:
    """The log of agents' actions on escalations."""


@feedback.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option("--out", type=click.File("w", encoding="utf-8"), default="-", show_default="stdout")
def feedback_export(fmt: str, out) -> None:
    """Write every logged action (who, when, the ticket, the confidence, the draft, the final text, the edit
    distance between them, the reject reason) from DATABASE_PATH."""
    import csv

    from bot.store import Store

    settings = load_settings()
    if not Path(settings.database_path).exists():
        raise click.ClickException(f"no database at {settings.database_path} (set DATABASE_PATH)")
    store = Store(settings.database_path)
    rows = store.db.query(f"select {', '.join(FEEDBACK_COLUMNS)} from feedback order by id")
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    writer = csv.DictWriter(out, fieldnames=FEEDBACK_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)


def main() -> None:
    cli(prog_name="python -m bot")


