"""`python -m bot import freshdesk --from-api`: fetching the Freshdesk API dump that importer.py reads, from the API.

`export_dump` writes into a folder what an operator would otherwise save by hand (README, *Importing tickets*):

- `tickets-0001.json`, `tickets-0002.json`, … — each page of `GET /api/v2/tickets` updated since the start time,
  oldest update first, requester and description included, as Freshdesk returned it (a bare JSON array). The
  adapter reads the list by update time (`FreshdeskAdapter.ticket_pages`): each page is the first of a new list
  from the last `updated_at` the page before showed, so pages overlap by the tickets of that second;
- `conversations/{id}.json` — every conversation of each ticket listed, all pages in one JSON array as
  `GET /api/v2/tickets/{id}/conversations` returns them (its latest version; spam and deleted tickets left out,
  and unresolved ones with `resolved_only`);
- `conversations/.versions/{id}.json` — the ticket's `updated_at` the conversations were fetched for. The importer
  reads no hidden folder, so the conversations file stays exactly what the API returned.

Read that way, a ticket updated while the export lists cannot push another off the pages, and Freshdesk's 300-page
limit on a list is reached only by more than 30,000 tickets updated in one second (the export then stops with a
warning). A ticket listed twice (on a boundary, or updated meanwhile) counts once, in its latest version.

Re-running resumes: the ticket pages are read again, but a conversations file already there is kept unless its
ticket changed since it was written (or its version file is missing: an interrupted run). Every file is written to
a temporary name and renamed into place. The HTTP calls are the adapter's own (`FreshdeskAdapter.ticket_pages`,
`ticket_conversations`): the same credentials, pacing and retries as `serve`. What this shares with the Zendesk
export is in bot/helpdesk/export.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bot.helpdesk import export as common
from bot.helpdesk.base import ListingCut
from bot.helpdesk.freshdesk.settings import RESOLVED_CODES
from bot.pacing import per_minute

if TYPE_CHECKING:
    from bot.helpdesk.freshdesk.adapter import FreshdeskAdapter
    from bot.helpdesk.freshdesk.settings import FreshdeskSettings

_TICKET_ID = re.compile(r"^[1-9][0-9]{0,19}$")


def _result() -> common.ExportResult:
    return common.ExportResult(thread="conversations", unresolved_why="not resolved or closed",
                               gone_why="deleted or spam")


def _newer(ticket: dict, than: dict | None) -> bool:
    return than is None or str(ticket.get("updated_at") or "") >= str(than.get("updated_at") or "")


def export_dump(adapter: FreshdeskAdapter, since: float, out: Path, *, resolved_only: bool = False,
                limit: int | None = None, say: Callable[[str], None] = lambda line: None) -> common.ExportResult:
    """Write the tickets updated since `since` (Unix seconds) and each listed ticket's conversations into `out`
    (the module docstring says how). `limit`: fetch conversations for at most that many tickets, the first ones
    listed (oldest update first). `say` gets progress lines. HelpdeskError when Freshdesk fails for good; what
    was written until then stays, and a re-run goes on from there."""
    threads = common.VersionedThreads(out / "conversations")
    result = _result()
    latest: dict[str, dict] = {}  # id -> latest version, in the order of the latest versions (oldest update first)
    try:
        for page in adapter.ticket_pages(since):
            result.pages += 1
            common.write_atomically(out / f"tickets-{result.pages:04d}.json", page)
            for ticket in page:
                ticket_id = str(ticket.get("id")) if isinstance(ticket, dict) else ""
                if not _TICKET_ID.match(ticket_id):
                    result.unreadable += 1
                    continue
                if _newer(ticket, latest.get(ticket_id)):
                    latest.pop(ticket_id, None)
                    latest[ticket_id] = ticket
            say(f"ticket page {result.pages}: {len(latest)} ticket(s) so far")
    except ListingCut:
        # The list reads on by update time by itself: it stops short only where more tickets share one update
        # second than Freshdesk pages (PageCap).
        result.cut = True
    common.remove_stale_pages(out, result.pages)

    def fetch(ticket_id: str, version: str) -> int:
        conversations, unreadable = adapter.ticket_conversations(ticket_id)
        threads.write(ticket_id, conversations, version)
        return unreadable

    common.fetch_threads(latest, result, gone=lambda ticket: bool(ticket.get("deleted") or ticket.get("spam")),
                         resolved=lambda ticket: ticket.get("status") in RESOLVED_CODES,
                         resolved_only=resolved_only, limit=limit, fetch=fetch, say=say,
                         kept=threads.kept)
    return result


def export_adapter(own: FreshdeskSettings, *, requests_per_minute: float | None) -> FreshdeskAdapter:
    """The adapter the export calls through, paced as serve paces it by `[helpdesk] requests_per_minute` (None:
    Freshdesk's documented Growth limits, 200 calls a minute and 20 of them on the tickets list; 0: no pacing)."""
    from bot.helpdesk.freshdesk.adapter import PACING_BURST, FreshdeskAdapter, freshdesk_client, list_pacer
    from bot.helpdesk.freshdesk.settings import REQUESTS_PER_MINUTE

    # Built here rather than by from_settings, which takes serve's whole Settings (bot.config, above this folder);
    # the longer retry deadline waits out a 429 on a trial account.
    return FreshdeskAdapter(freshdesk_client(own), webhook_secret="", agent_url=own.agent_url,
                            retry_deadline=common.EXPORT_RETRY_DEADLINE,
                            pacer=per_minute(requests_per_minute, default=REQUESTS_PER_MINUTE, burst=PACING_BURST),
                            list_pacer=list_pacer(requests_per_minute))


def export_from_env(since: float, out: Path, *, resolved_only: bool, limit: int | None, say: Callable[[str], None],
                    requests_per_minute: float | None) -> common.ExportResult:
    """`export_dump` with the Freshdesk API variables `serve` reads, through `export_adapter`; the key is never
    shown."""
    from bot.helpdesk.freshdesk.settings import FreshdeskSettings

    return common.export_with(
        "Freshdesk", FreshdeskSettings.from_env, credentials="FRESHDESK_API_KEY", since=since, out=out, say=say,
        adapter=lambda own: export_adapter(own, requests_per_minute=requests_per_minute),
        dump=lambda adapter: export_dump(adapter, since, out, resolved_only=resolved_only, limit=limit, say=say))
