"""What every `python -m bot import HELPDESK --from-api` shares: reading `--since`, the `--from-api` options and
their usage errors, owner-only files written whole or not at all, the loop that fetches each listed ticket's thread
(skipping what a re-run already has), the result summary, and the command's one-line errors.

Each helpdesk's own `export.py` (bot/helpdesk/zendesk, freshdesk, front, helpscout, gorgias) lists the tickets its
own way and writes the files its importer reads; the HTTP calls stay in its adapter.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from bot.helpdesk.base import HelpdeskError, explained
from bot.schema import seconds

PROGRESS_EVERY = 100
_PAGE_NAME = re.compile(r"^([a-z]+)-(\d{4,})\.json$")
# The `ctx.meta` key under which `python -m bot import` (bot/cli.py) leaves how to read `[helpdesk]
# requests_per_minute`: a helpdesk folder does not read seam.toml (bot.config sits above it).
REQUESTS_PER_MINUTE = "bot.helpdesk.export.requests_per_minute"
# How long an export's call may keep retrying: a batch can wait out a 429's Retry-After where a webhook job should
# not (bot.retry.CALL_DEADLINE).
EXPORT_RETRY_DEADLINE = 120.0


@dataclass
class ExportResult:
    """What an export did: pages written, tickets listed (latest versions), and what became of each. `thread` and
    `unresolved_why` are the helpdesk's words for a ticket's messages and for what --resolved-only leaves out."""

    thread: str = "comments"
    unresolved_why: str = "not solved or closed"
    gone_why: str = "deleted"
    pages: int = 0
    listed: int = 0
    deleted: int = 0  # deleted (or spam) tickets left out
    unresolved: int = 0  # left out with resolved_only
    beyond_limit: int = 0  # left out past `limit`
    written: int = 0  # thread files fetched and written (new or refreshed)
    refreshed: int = 0  # of those, files that were there but whose ticket changed since
    present: int = 0  # thread files already there, not fetched again
    unreadable: int = 0  # thread entries that could not be read, and tickets without a usable id
    cut: bool = False  # the listing stopped before its end (too many pages, or a link to another host)
    exported: list[str] = field(default_factory=list)  # ids of the tickets whose thread is in the folder

    def summary(self) -> str:
        parts = [f"{self.pages} ticket page(s), {self.listed} ticket(s) listed", f"{self.written} {self.thread} "
                 f"file(s) written" + (f" ({self.refreshed} refreshed: the ticket changed)" if self.refreshed else ""),
                 f"{self.present} already present (not fetched again)"]
        for count, why in ((self.deleted, self.gone_why), (self.unresolved, f"{self.unresolved_why} "
                                                                            "(--resolved-only)"),
                           (self.beyond_limit, "past --limit"),
                           (self.unreadable, f"unreadable {self.thread[:-1]}(s) or id(s)")):
            if count:
                parts.append(f"{count} {why}")
        return "; ".join(parts)


def since_time(text: str, *, now: float | None = None) -> float:
    """`--since` as Unix seconds: an ISO date or time (`2026-09-01`, `2026-09-01T08:00:00Z`; UTC unless it says
    otherwise) or a duration ago with its unit (`90d`, `12h`, `30m`, as seam.toml writes durations); ValueError
    when it is neither, or in the future."""
    now = time.time() if now is None else now
    raw = text.strip()
    if raw[-1:].isalpha() and not raw[:1].isalpha():
        try:
            return now - seconds(raw)
        except ValueError:
            pass
    try:
        moment = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{text!r} is neither a date (2026-09-01) nor a duration ago (90d, 12h)") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment.timestamp() > now:
        raise ValueError(f"{text!r} is in the future")
    return moment.timestamp()


class Since(click.ParamType):
    name = "DATE|DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        try:
            return since_time(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def write_atomically(path: Path, document: Any) -> None:
    """`document` as JSON at `path`, through a hidden temporary file in the same folder renamed into place: the
    file is either whole or not there (the importers skip hidden files, so a leftover temporary is harmless).
    mkstemp creates it readable by its owner only: a dump holds customers' messages."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as fh:
            json.dump(document, fh, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class VersionedThreads:
    """Thread files kept exactly as the helpdesk answered them (`{folder}/{id}.json`, a JSON array), with the
    version each was fetched for beside them in `{folder}/.versions/{id}.json`: the importers read no hidden
    folder, so the version needs no wrapper the importer would not know. The thread is written first and its
    version second, so a crash between the two leaves a thread that is fetched again."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._versions = folder / ".versions"
        self._versions.mkdir(parents=True, exist_ok=True)

    def kept(self, thread_id: str) -> str | None:
        """The version the thread was fetched for; None when the thread or its version is missing or unreadable
        (fetched again: it may be from an interrupted run)."""
        try:
            version = json.loads((self._versions / f"{thread_id}.json").read_text(encoding="utf-8"))
            thread = json.loads((self.folder / f"{thread_id}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return version if isinstance(version, str) and version and isinstance(thread, list) else None

    def write(self, thread_id: str, thread: list, version: str) -> None:
        write_atomically(self.folder / f"{thread_id}.json", thread)
        write_atomically(self._versions / f"{thread_id}.json", version)


def remove_stale_pages(out: Path, pages: int, *, name: str = "tickets") -> None:
    """Ticket pages (`{name}-NNNN.json`) past `pages` left by an earlier, longer export: they would add tickets
    this one did not list."""
    for stale in out.iterdir():
        match = _PAGE_NAME.match(stale.name)
        if match and match.group(1) == name and int(match.group(2)) > pages:
            stale.unlink()


def fetch_threads(latest: dict[str, dict], result: ExportResult, *, gone: Callable[[dict], bool],
                  resolved: Callable[[dict], bool], resolved_only: bool, limit: int | None,
                  kept: Callable[[str], str | None], fetch: Callable[[str, str], int],
                  say: Callable[[str], None],
                  version_of: Callable[[dict], str] = lambda ticket: str(ticket.get("updated_at") or "")) -> None:
    """Each listed ticket's thread, in listing order: gone tickets (and unresolved ones with `resolved_only`, and
    those past `limit`) left out; a thread file already there kept when `kept(id)` is "" (it does not say which
    version it was written for: saved by hand) or the ticket's `updated_at`, else `fetch(id, updated_at)` writes
    it and says how many entries were unreadable. None from `kept` means there is no usable file. `version_of`
    reads the version from a ticket that has no `updated_at`."""
    result.listed = len(latest)
    taken = 0
    for ticket_id, ticket in latest.items():
        if gone(ticket):
            result.deleted += 1
            continue
        if resolved_only and not resolved(ticket):
            result.unresolved += 1
            continue
        if limit is not None and taken >= limit:
            result.beyond_limit += 1
            continue
        taken += 1
        version = version_of(ticket)
        before = kept(ticket_id)
        if before is not None and before in ("", version):
            result.present += 1
        else:
            result.unreadable += fetch(ticket_id, version)
            result.written += 1
            result.refreshed += before is not None
        result.exported.append(ticket_id)
        if taken % PROGRESS_EVERY == 0:
            say(f"{result.thread}: {taken} ticket(s) done ({result.written} fetched, {result.present} already "
                "present)")


class MissingVariable(click.ClickException):
    """A setting the command cannot run without: one line, and exit code 2 like click's own usage errors."""

    exit_code = 2


def require_api_variables(missing: Iterable[str]) -> None:
    """MissingVariable for the first API variable not set; webhook variables do not count (exporting reads)."""
    missing = [name for name in missing if "WEBHOOK" not in name]
    if missing:
        raise MissingVariable(f"missing required environment variable {missing[0]}"
                              + (f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""))


def one_line(exc: Exception) -> str:
    """The failure in one line, with the helpdesk's own words: the command's user reads it, not a log."""
    return " ".join(explained(exc).split())


def export_with(helpdesk: str, read_settings: Callable[[Callable[[str], str | None]], Any], *, credentials: str,
                adapter: Callable[[Any], Any], dump: Callable[[Any], ExportResult], since: float, out: Path,
                say: Callable[[str], None], forbidden_hint: str = "") -> ExportResult:
    """A helpdesk's `export_from_env`: its settings as serve reads them from the environment (`read_settings`,
    blank values unset; MissingVariable for an API variable missing), the adapter `adapter(settings)` builds, and
    `run_export` of `dump(adapter)`, `credentials` naming the variables a refusal is about."""
    own = read_settings(lambda name: (os.environ.get(name) or "").strip() or None)
    require_api_variables(own.missing())
    built = adapter(own)
    return run_export(helpdesk, base_url=own.base_url, credentials=credentials, check=built.check, since=since,
                      out=out, say=say, forbidden_hint=forbidden_hint, dump=lambda: dump(built))


def run_export(helpdesk: str, *, base_url: str, credentials: str, check: Callable[[], str], since: float, out: Path,
               dump: Callable[[], ExportResult], say: Callable[[str], None],
               forbidden_hint: str = "") -> ExportResult:
    """The command's side of an export: `check()` names who the credentials belong to (a refusal is one line that
    names the variables, never their values), then `dump()`; its failure is one line saying how to resume."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request is noise here
    try:
        say(f"exporting from {base_url} as {check()}, tickets updated since "
            f"{datetime.fromtimestamp(since, UTC):%Y-%m-%d %H:%M} UTC, into {out}")
    except HelpdeskError as exc:
        if exc.status in (401, 403):
            raise click.ClickException(f"{helpdesk} refused {credentials} ({exc.status}): nothing was exported"
                                       ) from None
        raise click.ClickException(f"{helpdesk} could not be reached: {one_line(exc)}") from None
    try:
        result = dump()
    except HelpdeskError as exc:
        hint = forbidden_hint if exc.status == 403 else ""
        raise click.ClickException(f"the export from {helpdesk} stopped: {one_line(exc)}{hint}; what was fetched "
                                   f"is in {out}, and running the same command again goes on from there") from None
    say(f"exported: {result.summary()}")
    if result.cut:
        say(f"warning: the export stopped after {result.pages} pages before its end: tickets updated later are "
            "missing; run again with a later --since for the rest")
    return result


# -- the command line ---------------------------------------------------------------------------------------------

def from_api_options(helpdesk: str, variables: str, dump_dir: str, thread: str) -> Callable:
    """The `--from-api`, `--since`, `--dump-dir` and `--limit` options of `import HELPDESK`."""
    def decorate(command: Callable) -> Callable:
        for option in reversed((
            click.option("--from-api", is_flag=True,
                         help=f"Fetch the dump from the {helpdesk} API into --dump-dir first ({variables}, as serve "
                              "reads them), then convert it. Instead of DUMPS."),
            click.option("--since", type=Since(),
                         help="With --from-api: tickets updated since this date (2026-09-01) or this long ago "
                              "(90d, 12h)."),
            click.option("--dump-dir", type=click.Path(file_okay=False, path_type=Path), default=Path(dump_dir),
                         show_default=True,
                         help=f"With --from-api: where the dump goes. Running the command again resumes: {thread} "
                              "already fetched are not fetched again (unless their ticket changed)."),
            click.option("--limit", type=click.IntRange(min=1),
                         help=f"With --from-api: fetch the {thread} of at most N tickets, the first listed (oldest "
                              "update first), and convert only those."),
        )):
            command = option(command)
        return command
    return decorate


def dumps_to_read(ctx: click.Context, dumps: tuple[Path, ...], *, helpdesk: str, export: str, from_api: bool,
                  since: float | None, dump_dir: Path, resolved_only: bool, limit: int | None,
                  say: Callable[[str], None]) -> tuple[tuple[Path, ...], ExportResult | None]:
    """The DUMPS an import command converts, and what --from-api fetched (None without it): with --from-api, the
    helpdesk's `export` module (its `export_from_env`, imported only then) fills `dump_dir` first, and that is
    what is read. Usage mistakes are click's UsageError (`check_usage`).

    The export keeps to `[helpdesk] requests_per_minute` as serve does, read through what bot/cli.py left under
    `ctx.meta[REQUESTS_PER_MINUTE]` (its ConfigError goes up as the command's one-line error); a command run
    without it (outside `python -m bot import`) keeps the helpdesk's documented limits."""
    check_usage(ctx, dumps, from_api=from_api, since=since, helpdesk=helpdesk)
    if not from_api:
        return dumps, None
    read_pace: Callable[[], float | None] | None = ctx.meta.get(REQUESTS_PER_MINUTE)
    exported = importlib.import_module(export).export_from_env(
        since, dump_dir, resolved_only=resolved_only, limit=limit, say=say,
        requests_per_minute=read_pace() if read_pace else None)
    return (dump_dir,), exported


def check_usage(ctx: click.Context, dumps: tuple[Path, ...], *, from_api: bool, since: float | None,
                helpdesk: str) -> None:
    """UsageError when DUMPS and --from-api are mixed, or an option of one goes without it."""
    from click.core import ParameterSource

    api_only = [f"--{name.replace('_', '-')}" for name in ("since", "dump_dir", "limit")
                if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE]
    if not from_api:
        if api_only:
            raise click.UsageError(f"{api_only[0]} goes with --from-api")
        if not dumps:
            raise click.UsageError(f"pass the DUMPS to convert, or --from-api --since … to fetch them from {helpdesk}")
        return
    if dumps:
        raise click.UsageError("--from-api fetches the dump into --dump-dir: pass no DUMPS with it")
    if since is None:
        raise click.UsageError("--from-api needs --since (a date such as 2026-09-01, or 90d)")


def keep_fetched(tickets: list[dict], notes: list[str], exported: ExportResult | None,
                 limit: int | None) -> list[dict]:
    """With --limit, the converted tickets whose threads were fetched (the listing's pages hold all of them)."""
    if exported is None or not exported.beyond_limit:
        return tickets
    fetched = set(exported.exported)
    kept = [t for t in tickets if t["id"] in fetched]
    notes.append(f"left out {len(tickets) - len(kept)} ticket(s) whose {exported.thread} were not fetched "
                 f"(--limit {limit})")
    return kept
