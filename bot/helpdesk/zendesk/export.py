"""`python -m bot import zendesk --from-api`: fetching the Zendesk API dump that importer.py reads, from the API.

`export_dump` writes into a folder what an operator would otherwise save by hand (README, *Importing tickets*):

- `tickets-0001.json`, `tickets-0002.json`, … — each page of the cursor-based incremental ticket export from the
  start time, users sideloaded, as Zendesk returned it;
- `comments/{id}.json` — `{"ticket_id": id, "comments": [...], "ticket_updated_at": …}`: every comment of each
  ticket listed (its latest version; deleted tickets left out, and unsolved ones with `resolved_only`).

Re-running resumes: the ticket pages are read again (a page holds 1,000 tickets), but a comments file already
there is kept unless its ticket changed since it was written. Every file is written to a temporary name and
renamed into place, so an interrupted export never leaves half a file. The HTTP calls are the adapter's own
(`ZendeskAdapter.export_pages`, `ticket_comments`): the same credentials, pacing and retries as `serve`.

`export_from_env` is the command's side: the API variables as `serve` reads them, errors as one line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot.helpdesk.base import HelpdeskError
from bot.pacing import ChannelPacer
from bot.schema import seconds

if TYPE_CHECKING:
    from bot.helpdesk.zendesk.adapter import ZendeskAdapter

RESOLVED = ("solved", "closed")
# Zendesk allows 10 incremental export requests a minute (30 with the High Volume add-on); the comments are
# paced by the adapter's account-wide limit.
EXPORT_PAGES_PER_MINUTE = 10.0
# A batch can wait out a 429's Retry-After (up to a minute on the export) where a webhook job should not.
EXPORT_RETRY_DEADLINE = 120.0
PROGRESS_EVERY = 100
_TICKET_ID = re.compile(r"^[1-9][0-9]{0,19}$")
_PAGE_NAME = re.compile(r"^tickets-(\d{4,})\.json$")


@dataclass
class ExportResult:
    """What `export_dump` did: pages written, tickets listed (latest versions), and what became of each."""

    pages: int = 0
    listed: int = 0
    deleted: int = 0
    unresolved: int = 0  # left out with resolved_only
    beyond_limit: int = 0  # left out past `limit`
    written: int = 0  # comments files fetched and written (new or refreshed)
    refreshed: int = 0  # of those, files that were there but whose ticket changed since
    present: int = 0  # comments files already there, not fetched again
    unreadable: int = 0  # comments Zendesk listed that could not be read, and tickets without a usable id
    cut: bool = False  # the export stopped before its end (too many pages, or an after_url to another host)
    exported: list[str] = field(default_factory=list)  # ids of the tickets whose comments are in the folder

    def summary(self) -> str:
        parts = [f"{self.pages} ticket page(s), {self.listed} ticket(s) listed", f"{self.written} comments file(s) "
                 f"written" + (f" ({self.refreshed} refreshed: the ticket changed)" if self.refreshed else ""),
                 f"{self.present} already present (not fetched again)"]
        for count, why in ((self.deleted, "deleted"), (self.unresolved, "not solved or closed (--resolved-only)"),
                           (self.beyond_limit, "past --limit"), (self.unreadable, "unreadable comment(s) or id(s)")):
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
    file is either whole or not there (the importer skips hidden files, so a leftover temporary is harmless)."""
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


def _paced(pages: Iterator[dict], pacer: ChannelPacer | None) -> Iterator[dict]:
    """The pages, each request waiting for its turn (the generator sends the next request when asked for it)."""
    while True:
        if pacer is not None:
            pacer.wait("zendesk-export")
        page = next(pages, None)
        if page is None:
            return
        yield page


def _kept_version(path: Path) -> str | None:
    """The `ticket_updated_at` a comments file was written for ("" when it does not say); None when there is no
    readable file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("comments"), list):
        return None
    return str(document.get("ticket_updated_at") or "")


def export_dump(adapter: ZendeskAdapter, since: float, out: Path, *, resolved_only: bool = False,
                limit: int | None = None, say: Callable[[str], None] = lambda line: None,
                pacer: ChannelPacer | None = None) -> ExportResult:
    """Write the incremental export from `since` (Unix seconds) and each listed ticket's comments into `out` (the
    module docstring says how). `limit`: fetch comments for at most that many tickets, the first ones listed
    (oldest update first). `say` gets progress lines. HelpdeskError when Zendesk fails for good; what was written
    until then stays, and a re-run goes on from there."""
    comments_dir = out / "comments"
    comments_dir.mkdir(parents=True, exist_ok=True)
    result = ExportResult()
    latest: dict[str, dict] = {}  # id -> latest version, in the order of the latest versions (oldest update first)
    last: dict = {}
    for last in _paced(adapter.export_pages(since), pacer):
        result.pages += 1
        write_atomically(out / f"tickets-{result.pages:04d}.json", last)
        for ticket in last.get("tickets") or []:
            ticket_id = str(ticket.get("id")) if isinstance(ticket, dict) else ""
            if not _TICKET_ID.match(ticket_id):
                result.unreadable += 1
                continue
            latest.pop(ticket_id, None)
            latest[ticket_id] = ticket
        say(f"ticket page {result.pages}: {len(latest)} ticket(s) so far")
    result.cut = not last.get("end_of_stream", True)
    for stale in out.iterdir():  # pages of an earlier, longer export would add tickets this one did not list
        match = _PAGE_NAME.match(stale.name)
        if match and int(match.group(1)) > result.pages:
            stale.unlink()
    result.listed = len(latest)

    taken = 0
    for ticket_id, ticket in latest.items():
        status = ticket.get("status")
        if status == "deleted":
            result.deleted += 1
            continue
        if resolved_only and status not in RESOLVED:
            result.unresolved += 1
            continue
        if limit is not None and taken >= limit:
            result.beyond_limit += 1
            continue
        taken += 1
        path = comments_dir / f"{ticket_id}.json"
        version = str(ticket.get("updated_at") or "")
        kept = _kept_version(path)
        if kept is not None and kept in ("", version):
            result.present += 1
        else:
            comments, unreadable = adapter.ticket_comments(ticket_id)
            write_atomically(path, {"ticket_id": int(ticket_id), "ticket_updated_at": version,
                                    "comments": comments})
            result.written += 1
            result.refreshed += kept is not None
            result.unreadable += unreadable
        result.exported.append(ticket_id)
        if taken % PROGRESS_EVERY == 0:
            say(f"comments: {taken} ticket(s) done ({result.written} fetched, {result.present} already present)")
    return result


def export_from_env(since: float, out: Path, *, resolved_only: bool, limit: int | None,
                    say: Callable[[str], None]) -> ExportResult:
    """`export_dump` with the Zendesk API variables `serve` reads and Zendesk's documented request limit; a missing
    variable, refused credentials or a failed export is a one-line click error. The token is never shown."""
    from bot.helpdesk.zendesk.adapter import PACING_BURST, ZendeskAdapter, zendesk_client
    from bot.helpdesk.zendesk.settings import REQUESTS_PER_MINUTE, ZendeskSettings

    own = ZendeskSettings.from_env(lambda name: (os.environ.get(name) or "").strip() or None)
    missing = [name for name in own.missing() if "WEBHOOK" not in name]  # exporting needs API access only
    if missing:
        raise MissingVariable(f"missing required environment variable {missing[0]}"
                              + (f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""))
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request is noise here
    # Built here rather than by from_settings: a helpdesk folder does not read seam.toml (bot.config sits above
    # it), so the account-wide pace is Zendesk's documented default and a 429 on a smaller plan is waited out.
    adapter = ZendeskAdapter(zendesk_client(own), webhook_secret="", agent_url=own.agent_url,
                             retry_deadline=EXPORT_RETRY_DEADLINE,
                             pacer=ChannelPacer(rate=REQUESTS_PER_MINUTE / 60, burst=PACING_BURST))
    try:
        say(f"exporting from {own.base_url} as {adapter.check()}, tickets updated since "
            f"{datetime.fromtimestamp(since, UTC):%Y-%m-%d %H:%M} UTC, into {out}")
    except HelpdeskError as exc:
        if exc.status in (401, 403):
            raise click.ClickException(f"Zendesk refused ZENDESK_EMAIL and ZENDESK_API_TOKEN ({exc.status}): "
                                       "nothing was exported") from None
        raise click.ClickException(f"Zendesk could not be reached: {_one_line(exc)}") from None
    pacer = ChannelPacer(rate=EXPORT_PAGES_PER_MINUTE / 60, burst=int(EXPORT_PAGES_PER_MINUTE))
    try:
        result = export_dump(adapter, since, out, resolved_only=resolved_only, limit=limit, say=say, pacer=pacer)
    except HelpdeskError as exc:
        hint = " (the incremental export needs an admin's API token)" if exc.status == 403 else ""
        raise click.ClickException(f"the export from Zendesk stopped: {_one_line(exc)}{hint}; what was fetched is "
                                   f"in {out}, and running the same command again goes on from there") from None
    say(f"exported: {result.summary()}")
    if result.cut:
        say(f"warning: the export stopped after {result.pages} pages before its end: tickets updated later are "
            "missing; run again with a later --since for the rest")
    return result


class MissingVariable(click.ClickException):
    """A setting the command cannot run without: one line, and exit code 2 like click's own usage errors."""

    exit_code = 2


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
