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

`export_from_env` is the command's side: the API variables as `serve` reads them, the pace `[helpdesk]
requests_per_minute` sets (read by the command line, bot/cli.py), errors as one line. What the Freshdesk export
shares with this one (`--since`, the atomic writes, the thread loop, the summary) is in bot/helpdesk/export.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from bot.helpdesk.export import (
    EXPORT_RETRY_DEADLINE,
    ExportResult,
    export_with,
    fetch_threads,
    remove_stale_pages,
    write_atomically,
)
from bot.pacing import ChannelPacer, per_minute

if TYPE_CHECKING:
    from bot.helpdesk.zendesk.adapter import ZendeskAdapter
    from bot.helpdesk.zendesk.settings import ZendeskSettings

RESOLVED = ("solved", "closed")
# Zendesk allows 10 incremental export requests a minute (30 with the High Volume add-on); the comments are
# paced by the adapter's account-wide limit.
EXPORT_PAGES_PER_MINUTE = 10.0
_TICKET_ID = re.compile(r"^[1-9][0-9]{0,19}$")


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
    remove_stale_pages(out, result.pages)

    def fetch(ticket_id: str, version: str) -> int:
        comments, unreadable = adapter.ticket_comments(ticket_id)
        write_atomically(comments_dir / f"{ticket_id}.json", {"ticket_id": int(ticket_id),
                                                               "ticket_updated_at": version, "comments": comments})
        return unreadable

    fetch_threads(latest, result, gone=lambda ticket: ticket.get("status") == "deleted",
                  resolved=lambda ticket: ticket.get("status") in RESOLVED, resolved_only=resolved_only, limit=limit,
                  kept=lambda ticket_id: _kept_version(comments_dir / f"{ticket_id}.json"), fetch=fetch, say=say)
    return result


def export_adapter(own: ZendeskSettings, *, requests_per_minute: float | None) -> ZendeskAdapter:
    """The adapter the export calls through, paced as serve paces it by `[helpdesk] requests_per_minute` (None:
    Zendesk's documented account-wide limit; 0: no pacing)."""
    from bot.helpdesk.zendesk.adapter import PACING_BURST, ZendeskAdapter, zendesk_client
    from bot.helpdesk.zendesk.settings import REQUESTS_PER_MINUTE

    # Built here rather than by from_settings, which takes serve's whole Settings (bot.config, above this folder);
    # the longer retry deadline waits out a 429 on a smaller plan.
    return ZendeskAdapter(zendesk_client(own), webhook_secret="", agent_url=own.agent_url,
                          retry_deadline=EXPORT_RETRY_DEADLINE,
                          pacer=per_minute(requests_per_minute, default=REQUESTS_PER_MINUTE, burst=PACING_BURST))


def export_pages_pacer(requests_per_minute: float | None) -> ChannelPacer | None:
    """The pacer of the incremental export's pages. [helpdesk] has no key for this sub-limit: it follows the
    documented one unless `requests_per_minute` is 0 (pacing off), as serve treats the sub-limits it has."""
    if requests_per_minute == 0:
        return None
    return ChannelPacer(rate=EXPORT_PAGES_PER_MINUTE / 60, burst=int(EXPORT_PAGES_PER_MINUTE))


def export_from_env(since: float, out: Path, *, resolved_only: bool, limit: int | None, say: Callable[[str], None],
                    requests_per_minute: float | None) -> ExportResult:
    """`export_dump` with the Zendesk API variables `serve` reads, through `export_adapter` and
    `export_pages_pacer`; the token is never shown."""
    from bot.helpdesk.zendesk.settings import ZendeskSettings

    pacer = export_pages_pacer(requests_per_minute)
    return export_with(
        "Zendesk", ZendeskSettings.from_env, credentials="ZENDESK_EMAIL and ZENDESK_API_TOKEN", since=since,
        out=out, say=say, forbidden_hint=" (the incremental export needs an admin's API token)",
        adapter=lambda own: export_adapter(own, requests_per_minute=requests_per_minute),
        dump=lambda adapter: export_dump(adapter, since, out, resolved_only=resolved_only, limit=limit, say=say,
                                         pacer=pacer))
