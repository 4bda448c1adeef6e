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

from bot.errors import ConfigError
from bot.policy import thresholds

# The sweep default is shown in --help; the module that uses it loads only when the command runs.
DEFAULT_SWEEP_TEXT = "0.50…0.95 and 0.99"


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
    if not isinstance(logging.getLevelName(log_level.strip().upper()), int):
        raise click.ClickException(f"LOG_LEVEL (or --log-level) must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, "
                                   f"got {log_level!r}")
    logging.basicConfig(level=log_level.strip().upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from bot.pii import install_log_filter

    # Card numbers, emails, phone numbers and secrets in ticket text never reach the logs.
    install_log_filter()


def _thresholds(raw: str | None) -> tuple[float, ...] | None:
    if not raw:
        return None
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
@click.option("--thresholds", "sweep",
              help=f"Auto thresholds to sweep, comma-separated (default {DEFAULT_SWEEP_TEXT}).")
@click.option("--limit", type=click.IntRange(min=1), help="Replay at most this many tickets.")
@click.option("--split-newest", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Without --history: replay only this share of TICKETS, the newest by created_at, and learn "
                   "from the older rest (e.g. 0.2).")
@click.option("--target", type=click.FloatRange(0, 1), default=thresholds.DEFAULT_TARGET, show_default=True,
              help="Wrong share of automatic answers (wrong / graded automatic answers) the recommended auto "
                   "threshold may give at the top of its 95% interval.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--synced-knowledge/--no-synced-knowledge", default=True, show_default=True,
              help="Answer from the articles and macros `knowledge sync` stored in DATABASE_PATH too (when that "
                   "file exists), beside the knowledge files, as serve does.")
def simulate(tickets: Path, history: Path | None, knowledge: Path | None, out: Path, sweep: str | None,
             limit: int | None, split_newest: float | None, target: float, fmt: str,
             synced_knowledge: bool) -> None:
    """Replay TICKETS (JSONL) offline and show what Seam would have resolved, drafted and escalated.

    A replayed ticket never answers itself: any history ticket with the same id is left out, and so is one whose
    customer wrote the same words (subject and public messages, ignoring case and spacing; at least 8 words)."""
    from bot.config import load_settings
    from bot.engine import build_engine
    from bot.engine.knowledge import load_knowledge, with_synced
    from bot.flows.lifecycle import before_acknowledgements, mark_acknowledgements
    from bot.models import read_tickets
    from bot.offline.report import format_table, unknown_expected_note, write_outputs
    from bot.offline.simulate import (
        DEFAULT_SWEEP,
        skipped_by_reason,
        split_by_time,
        unknown_expected,
        without_replayed,
        without_same_text,
    )
    from bot.offline.simulate import simulate as run_simulation
    from bot.policy.decide import Policy

    settings = load_settings()
    if split_newest is not None and history is not None:
        raise click.UsageError("--split-newest splits TICKETS into history and replay: drop --history")
    # Made now, not after a replay that may take minutes, so that a bad --out fails before the wait.
    _writable_folder(out)
    replay, problems = read_tickets(tickets)
    past, past_problems = read_tickets(history) if history else ([], [])
    if split_newest is not None:
        past, replay = split_by_time(replay, newest=split_newest)
    # Seam's notices and keep-warm updates in an export of a helpdesk Seam served are marked as serve marks them
    # (they answer nothing: the SLA clock, the repeat rule and what the customer asks run on through them); the
    # ones after the customer's last message were the outcome of deciding it, and are left out.
    replay = [before_acknowledgements(mark_acknowledgements(t, settings))
              for t in (replay[:limit] if limit else replay)]
    past, left_out = without_replayed(past, replay)
    past, same_text = without_same_text(past, replay)
    for problem in problems + past_problems:
        click.echo(f"skipped: {problem}", err=True)
    if left_out:
        click.echo(f"left {left_out} replayed tickets out of the history (a ticket may not answer itself)", err=True)
    if same_text:
        click.echo(f"left {same_text} history tickets out whose customer text is the same as a replayed ticket's "
                   f"(copies of it under other ids: a ticket may not answer itself)", err=True)
    # The engine learns only from past tickets that say how a person resolved them (CONTRACT.md, *Formats*).
    resolved = sum(t.resolution is not None for t in past)
    if past and not resolved:
        click.echo(f"none of the {len(past):,} history tickets carries a 'resolution' (answer_id or answer): the "
                   f"engine learns nothing from them", err=True)
    elif resolved < len(past):
        click.echo(f"{len(past) - resolved:,} of the {len(past):,} history tickets carry no 'resolution' and teach "
                   f"the engine nothing", err=True)
    articles = load_knowledge(knowledge or settings.knowledge_path)
    if (knowledge or settings.knowledge_path) and not articles:
        click.echo(f"{knowledge or settings.knowledge_path} holds no article: the knowledge is read from Markdown "
                   f"(.md) and .jsonl files (README, *Knowledge*)", err=True)
    if synced_knowledge:
        synced = _synced_articles(settings)
        if synced:
            click.echo(f"with {len(synced):,} articles and macros synced from {settings.helpdesk} into "
                       f"{settings.database_path} (--no-synced-knowledge leaves them out)", err=True)
            articles = with_synced(articles, synced)
    bar = _progress_bar()
    if bar:  # the fit has no progress of its own: say what the wait is for
        click.echo(f"learning from {len(past):,} history tickets and {len(articles):,} articles…", err=True)
    # As in serve, an answer still holding a template placeholder ({{ticket.id}}) is drafted at most.
    # A simulation is this process alone: the fit may fork workers onto every core.
    engine = build_engine(settings, articles=articles, history=past, processes=True)
    policy = Policy(settings=settings.policy)
    decisions, summary = run_simulation(replay, engine=engine, policy=policy, sweep=_thresholds(sweep) or DEFAULT_SWEEP,
                                        target=target, progress=bar)
    summary.update(skipped_rows=len(problems), history_tickets=len(past), history_resolved=resolved,
                   left_out_of_history=left_out, left_out_of_history_by_text=same_text,
                   history_skipped_rows=len(past_problems), history_skipped_by_reason=skipped_by_reason(past_problems),
                   unknown_expected_answers=unknown_expected(replay, article_ids=(a.id for a in articles),
                                                             history=past))
    if note := unknown_expected_note(summary):
        click.echo(note, err=True)
    if summary["sla_not_judged"]:
        click.echo(f"{summary['sla_not_judged']} replayed tickets have no readable time (created_at, or the customer's "
                   f"message's created_at, in ISO 8601): their SLA was not judged", err=True)
    try:
        write_outputs(decisions, summary, out)
    except OSError as exc:
        raise click.ClickException(f"--out {out}: cannot write {exc.filename or 'the outputs'} "
                                   f"({exc.strerror or exc})") from None
    if fmt == "json":
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(f"{len(replay)} tickets, {len(articles)} articles, {len(past)} history tickets "
                   f"(thresholds auto {policy.thresholds.auto:.2f}, draft {policy.thresholds.draft:.2f})")
        click.echo(format_table(summary))
        click.echo(f"wrote {out}/decisions.jsonl, summary.json, sweep.png, report.html")


def _writable_folder(out: Path) -> None:
    """Create the --out folder (and its parents), or fail with one line saying why."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"--out {out}: cannot create the folder ({exc.strerror or exc})") from None


def _synced_articles(settings) -> list:
    """The helpdesk's articles and macros synced into DATABASE_PATH; [] when there is no such file (or it is not a
    database Seam can read, said on stderr)."""
    import sqlite3

    from bot.store import Store

    if not Path(settings.database_path).is_file():
        return []
    try:
        return Store(settings.database_path).synced_articles(settings.helpdesk)
    except sqlite3.DatabaseError as exc:
        click.echo(f"not using synced knowledge: {settings.database_path} cannot be read ({exc})", err=True)
        return []


def _progress_bar():
    """A progress bar on stderr when it is a terminal; None (no output at all) in CI and pipes."""
    if not sys.stderr.isatty():
        return None

    def bar(length: int, label: str):
        return click.progressbar(length=length, label=f"{label:<9}", file=sys.stderr, show_pos=True, show_eta=True)

    return bar


def _open_store(settings=None):
    """The store at DATABASE_PATH for the commands that read an existing deployment's database (`settings`: those
    the command already read, else read now)."""
    from bot.config import load_settings
    from bot.store import open_store

    settings = settings or load_settings()
    if not Path(settings.database_path).exists():
        raise click.ClickException(f"no database at {settings.database_path} (set DATABASE_PATH)")
    return open_store(settings.database_path)


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

    from bot.store import FEEDBACK_COLUMNS

    rows = _open_store().feedback_rows()
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    writer = csv.DictWriter(out, fieldnames=FEEDBACK_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)


@cli.group()
def knowledge() -> None:
    """Help-centre articles and macros synced from the helpdesk into DATABASE_PATH, which serve and simulate
    answer from beside the KNOWLEDGE_PATH files."""


@knowledge.command("sync")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def knowledge_sync(fmt: str) -> None:
    """Read the help-centre articles and macros of the helpdesk serve uses (HELPDESK and its variables) into
    DATABASE_PATH: add new ones, update changed ones, retire the ones it no longer lists. Nothing changes when
    the helpdesk fails; a running serve answers from the new knowledge after its next sync round."""
    from bot.config import load_settings
    from bot.helpdesk import registry
    from bot.helpdesk.base import HelpdeskError, explained
    from bot.jobs.knowledge import sync_knowledge
    from bot.store import open_store

    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request page is noise here
    settings = load_settings()
    own = settings.helpdesk_settings
    missing = [name for name in (own.missing() if own is not None else []) if "WEBHOOK" not in name]
    if missing:
        raise click.ClickException(f"missing required environment variable {missing[0]}")
    helpdesk = registry.plugin(settings.helpdesk).build(settings)
    store = open_store(settings.database_path)
    try:
        result = sync_knowledge(store, helpdesk)
    except HelpdeskError as exc:
        raise click.ClickException(f"knowledge sync from {settings.helpdesk} failed, nothing was changed: "
                                   + " ".join(explained(exc).split())) from None
    store.audit(actor="cli", action="knowledge_sync", detail={"helpdesk": settings.helpdesk, **vars(result)})
    if fmt == "json":
        click.echo(json.dumps({"helpdesk": settings.helpdesk, **vars(result)}))
    else:
        click.echo(f"{settings.helpdesk}: {result.summary()}")


@knowledge.command("list")
@click.option("--retired", is_flag=True, help="Show retired articles too.")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
def knowledge_list(retired: bool, fmt: str) -> None:
    """The articles and macros synced from HELPDESK into DATABASE_PATH. "needs person": the text still holds a
    template placeholder, so Seam drafts from it and never sends it on its own."""
    from bot.config import load_settings

    settings = load_settings()
    rows = _open_store(settings).knowledge_rows(settings.helpdesk, retired=retired)
    for row in rows:
        if fmt == "jsonl":
            click.echo(json.dumps(row, ensure_ascii=False))
            continue
        flags = ", ".join(f for f, on in (("needs person", row["needs_person"]),
                                          (f"retired {(row['retired_at'] or '')[:10]}", row["retired_at"])) if on)
        click.echo(f"{row['article_id']:<24} {row['chars']:>6} chars  {row['title'][:60]}"
                   + (f"  [{flags}]" if flags else ""))
    if fmt == "table":
        click.echo(f"{len(rows)} {'synced' if retired else 'active'} from {settings.helpdesk}")


class ImportGroup(click.Group):
    """`import csv`, plus one command per helpdesk that has an importer (bot.helpdesk.registry), loaded lazily."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from bot.helpdesk import registry

        helpdesks = [name for name in registry.names() if registry.plugin(name).import_command]
        return sorted(set(super().list_commands(ctx)) | set(helpdesks))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None:
            from bot.helpdesk import registry

            if name in registry.names() and (factory := registry.plugin(name).import_command):
                command = factory()
        return command


@cli.group("import", cls=ImportGroup)
@click.pass_context
def import_group(ctx: click.Context) -> None:
    """Convert helpdesk dumps and spreadsheet exports into Seam's ticket JSONL (for `simulate`)."""
    from bot.helpdesk.export import REQUESTS_PER_MINUTE

    def requests_per_minute() -> float | None:
        from bot.config import helpdesk_limits

        return helpdesk_limits().requests_per_minute

    # --from-api paces its calls as serve does, and a helpdesk folder does not read seam.toml: the reading is
    # handed down, and done only by an export (converting files needs no seam.toml).
    ctx.meta[REQUESTS_PER_MINUTE] = requests_per_minute


@import_group.command("csv")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--out", required=True, help="The ticket JSONL to write ('-' for stdout).")
@click.option("--id-col", default="id", show_default=True, help="Ticket id column; without it ids are row-1, row-2…")
@click.option("--subject-col", default="subject", show_default=True, help="Subject column.")
@click.option("--body-col", default="body", show_default=True, help="The customer's message column.")
@click.option("--answer-col", default="answer", show_default=True, help="The reply that resolved the ticket.")
@click.option("--answer-id-col", default="answer_id", show_default=True,
              help="The macro or article id of that reply. Where it is empty and there is an answer, answer_id is "
                   "a short hash of the answer text (ignoring case and spacing), so tickets resolved with the same "
                   "reply share an id; the cell 'null' means the ticket should not be answered automatically.")
@click.option("--created-col", default="created_at", show_default=True, help="Creation time column (ISO 8601).")
@click.option("--tags-col", default="tags", show_default=True,
              help="Tags column (comma, semicolon or space separated).")
@click.option("--delimiter", default=",", show_default=True, help="Field delimiter ('\\t' for tab).")
@click.option("--encoding", default="utf-8-sig", show_default=True, help="File encoding (a UTF-8 BOM is fine).")
@click.pass_context
def import_csv_command(ctx: click.Context, file: Path, out: str, id_col: str, subject_col: str, body_col: str,
                       answer_col: str, answer_id_col: str, created_col: str, tags_col: str, delimiter: str,
                       encoding: str) -> None:
    """Convert a spreadsheet export (one ticket per row, a header row) into ticket JSONL.

    Column names match case-insensitively; a subject or a body column is required, the others are optional
    unless named on the command line. Cells may span lines when quoted."""
    from click.core import ParameterSource

    from bot.offline.importers import CsvColumns, import_csv, write_result

    roles = {"id": "id_col", "subject": "subject_col", "body": "body_col", "answer": "answer_col",
             "answer_id": "answer_id_col", "created_at": "created_col", "tags": "tags_col"}
    explicit = frozenset(role for role, param in roles.items()
                         if ctx.get_parameter_source(param) is ParameterSource.COMMANDLINE)
    columns = CsvColumns(id=id_col, subject=subject_col, body=body_col, answer=answer_col, answer_id=answer_id_col,
                         created_at=created_col, tags=tags_col, explicit=explicit)
    delimiter = "\t" if delimiter in ("\\t", "tab") else delimiter
    result = import_csv(file, columns=columns, delimiter=delimiter, encoding=encoding)
    write_result(result, out, say=lambda line: click.echo(line, err=True))


@cli.command()
@click.option("--retry", "retry_id", type=int, help="Put this dead job back in the queue.")
@click.option("--retry-dead", is_flag=True, help="Put every dead job back in the queue.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def jobs(retry_id: int | None, retry_dead: bool, fmt: str) -> None:
    """The work queue in DATABASE_PATH: pending jobs (and how many of them wait to be retried after a failure),
    the oldest one's age, and dead jobs — failed five times, or for a day while Slack or the helpdesk was down —
    which wait for a person. A running `serve` picks retried jobs up within a second."""
    store = _open_store()
    if retry_id is not None or retry_dead:
        count = store.retry_dead(None if retry_dead else retry_id)
        if retry_id is not None and not count:
            raise click.ClickException(f"job {retry_id} is not dead (or does not exist)")
        store.audit(actor="cli", action="retry_dead_jobs", detail={"job": retry_id, "count": count})
        click.echo(f"put {count} dead job(s) back in the queue")
        return
    stats = store.queue_stats()
    dead = store.dead_events()
    if fmt == "json":
        fields = ("id", "kind", "ticket_id", "attempts", "transient_failures", "received_at", "last_error")
        click.echo(json.dumps({**stats, "dead_jobs": [{f: getattr(e, f) for f in fields} for e in dead]}, indent=2))
        return
    age = stats["oldest_pending_seconds"]
    click.echo(f"pending {stats['pending']} ({stats['retrying']} retrying, oldest "
               f"{'–' if age is None else f'{age:.0f} s'}), done {stats['done']}, dead {stats['dead']}")
    for event in dead:
        down = f" ({event.transient_failures} while a service was down)" if event.transient_failures else ""
        click.echo(f"  dead job {event.id}: ticket {event.ticket_id}, {event.attempts} attempts{down}, "
                   f"received {event.received_at[:19]}: {(event.last_error or '')[:120]}")


@cli.command()
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="How many entries, newest first.")
@click.option("--actor", help="Only this Slack user ID (or 'seam' for the bot's own actions).")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
def audit(limit: int, actor: str | None, fmt: str) -> None:
    """The audit log in DATABASE_PATH: every settings change and agent action, with who and when."""
    for row in _open_store().audit_rows(limit=limit, actor=actor):
        if fmt == "jsonl":
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            detail = json.dumps(row["detail"], ensure_ascii=False)
            click.echo(f"{row['at'][:19].replace('T', ' ')}  {row['actor']:<12} {row['action']:<24} {detail}")


@cli.command()
@click.option("--ticket", "ticket_ids", multiple=True, metavar="ID",
              help="A ticket id in the helpdesk HELPDESK names (repeat for more).")
@click.option("--email", metavar="ADDRESS",
              help="Every ticket whose requester has this email address (any case), of whichever helpdesk the "
                   "database holds.")
@click.option("--dry-run", is_flag=True, help="Only list the tickets that would be erased.")
@click.option("--yes", is_flag=True, help="Erase without asking first (for scripts).")
def forget(ticket_ids: tuple[str, ...], email: str | None, dry_run: bool, yes: bool) -> None:
    """Erase what Seam kept of tickets' conversations in DATABASE_PATH: a customer's erasure request.

    The subject, requester, what was asked, drafts, replies and agents' notes go; the rows stay, so counts, stats
    and the audit log are kept (docs/agent-flow.md, "Erasure on request"). A running serve re-renders the Slack
    cards without the conversation and refits its engine without the erased replies at its next knowledge sync.
    Nothing is erased while one of the tickets is still being worked on."""
    from bot.config import load_settings
    from bot.flows import erasure

    email = (email or "").strip() or None
    ticket_ids = tuple(t.strip() for t in ticket_ids if t.strip())
    if not ticket_ids and not email:
        raise click.UsageError("name the tickets: --ticket ID (repeatable) or --email ADDRESS")
    settings = load_settings()
    helpdesk, store = settings.helpdesk, _open_store(settings)
    found = erasure.find(store, helpdesk=helpdesk, ticket_ids=ticket_ids, email=email)
    if not found.tickets:
        click.echo(f"nothing to erase: no {helpdesk} ticket in the database matches")
        return
    # "zendesk ticket(s)" when all are the current helpdesk's; an address may find a helpdesk's used before too.
    kind = f"{helpdesk} " if all(key.startswith(f"{helpdesk}:") for key in found.keys) else ""
    listed = ", ".join(found.tickets)
    if found.busy:
        raise click.ClickException(f"not erased: {kind}ticket(s) {', '.join(found.busy)} still being worked on "
                                   "(an escalation not finished, or a job still to run); try again once finished")
    if dry_run:
        click.echo(f"would erase {len(found.tickets)} {kind}ticket(s): {listed}")
        return
    if not yes:
        click.confirm(f"Erase what Seam kept of {len(found.tickets)} {kind}ticket(s) ({listed})?", abort=True)
    done = erasure.erase(store, helpdesk=helpdesk, ticket_ids=ticket_ids, email=email, actor="cli")
    if done.busy:  # started while we asked
        raise click.ClickException(f"not erased: {kind}ticket(s) {', '.join(done.busy)} still being worked on")
    changed = ", ".join(f"{table} {count}" for table, count in done.changed.items())
    click.echo(f"erased {len(done.tickets)} {kind}ticket(s): {', '.join(done.tickets)} (rows changed: {changed})")


def main() -> None:
    cli(prog_name="python -m bot")
