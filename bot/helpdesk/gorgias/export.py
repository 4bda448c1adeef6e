"""`python -m bot import gorgias --from-api`: fetching the Gorgias API dump that importer.py reads, from the API.

`export_dump` writes into a folder what an operator would otherwise save by hand (README, *Importing tickets*):

- `tickets-0001.json`, `tickets-0002.json`, … — each page of `GET /api/tickets?order_by=updated_datetime:desc`
  (most recently updated first) as Gorgias answered it (`{"data": [...], "object", "uri", "meta"}`), read until a
  ticket updated before the start time; the page holding that one keeps only the tickets updated since, so the
  folder holds no ticket whose messages were not meant to be fetched;
- `messages/{id}.json` — every page of `GET /api/messages?ticket_id={id}` for each ticket listed, in one JSON
  array as answered (each message names its `ticket_id`); trashed and spam tickets left out, and those not
  closed with `resolved_only`;
- `messages/.versions/{id}.json` — the ticket's `updated_datetime` the messages were fetched for. The importer
  reads no hidden folder, so the messages file stays exactly what the API returned.

The ticket listing takes no time filter (its documented parameters are `order_by`, `cursor`, `limit` and filters
by customer, view, rule, external id, trash and ids), so reading it newest first and stopping at the first ticket
updated before the start time is how it is bounded. The adapter reads MAX_PAGES pages of a listing: one cut there
goes on with a new listing from the last page's `next_cursor` (a documented parameter, sent back to the same path),
until the start time is reached. A listing cut without a next cursor, or one that got no further back in time
than the one before, stops the export with a warning that the least recently updated tickets may be missing.

Re-running resumes: the listing is read again, but a messages file already there is kept unless its ticket was
updated since it was written (or its version file is missing: an interrupted run). Every file is written to a
temporary name and renamed into place. The HTTP calls are the adapter's own (`GorgiasAdapter.ticket_pages`,
`message_pages`): the same API key, pacing and retries as `serve`. What this shares with the other exports is in
bot/helpdesk/export.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot.helpdesk import export as common
from bot.helpdesk.base import ListingCut, iso_seconds
from bot.helpdesk.gorgias.adapter import TICKET_ID
from bot.pacing import per_minute

if TYPE_CHECKING:
    from bot.helpdesk.gorgias.adapter import GorgiasAdapter
    from bot.helpdesk.gorgias.settings import GorgiasSettings

PAGE_NAME = "tickets"


def _result() -> common.ExportResult:
    return common.ExportResult(thread="messages", unresolved_why="not closed", gone_why="trashed or spam")


def _version(ticket: dict) -> str:
    return str(ticket.get("updated_datetime") or "")


def _updated(ticket: dict, *, unknown: float) -> float:
    """When the ticket was last updated (Unix seconds); `unknown` when it does not say."""
    moment = iso_seconds(_version(ticket))
    return unknown if moment is None else moment


def _gone(ticket: dict) -> bool:
    return bool(ticket.get("trashed_datetime") or ticket.get("spam"))


def _stamp(moment: float) -> str:
    return f"{datetime.fromtimestamp(moment, UTC):%Y-%m-%d %H:%M:%S} UTC"


def _listing(adapter: GorgiasAdapter, since: float, say: Callable[[str], None]) -> Iterator[dict]:
    """The pages of the ticket list down to `since`, each holding only the tickets updated since then (so the last
    one read may hold fewer than Gorgias answered), over as many listings as the page cap takes. A listing that
    got no further back in time than the one before ends it with a warning."""
    from bot.helpdesk.gorgias.adapter import MAX_PAGES

    cursor: str | None = None
    reached = math.inf  # the oldest update read so far
    while True:
        before, last = reached, None
        try:
            for page in adapter.ticket_pages(cursor=cursor):
                last = page
                tickets = [t for t in page.get("data") or [] if isinstance(t, dict)]
                recent = [t for t in tickets if _updated(t, unknown=since) >= since]
                reached = min([reached, *(_updated(t, unknown=reached) for t in recent)])
                if recent:
                    yield page if len(recent) == len(page.get("data") or []) else {**page, "data": recent}
                if len(recent) < len(tickets):
                    return  # newest first: the rest is older still
            return
        except ListingCut:
            following = ((last or {}).get("meta") or {}).get("next_cursor")
            if not isinstance(following, str) or not following or reached >= before:
                # Not result.cut: its warning tells to run again with a later --since, right for an oldest-first
                # listing; here what is missing is the least recently updated.
                say(f"warning: the ticket list stopped before its end: tickets last updated before "
                    f"{_stamp(min(reached, time.time()))} may be missing")
                return
            cursor = following
            say(f"the ticket list goes deeper than one listing reads ({MAX_PAGES} pages): going on from where it "
                f"stopped, tickets last updated before {_stamp(reached)}")


def export_dump(adapter: GorgiasAdapter, since: float, out: Path, *, resolved_only: bool = False,
                limit: int | None = None, say: Callable[[str], None] = lambda line: None) -> common.ExportResult:
    """Write the tickets updated since `since` (Unix seconds) and each listed ticket's messages into `out` (the
    module docstring says how). `limit`: fetch messages for at most that many tickets, the least recently updated
    first. `say` gets progress lines. HelpdeskError when Gorgias fails for good; what was written until then stays,
    and a re-run goes on from there."""
    threads = common.VersionedThreads(out / "messages")
    result = _result()
    listed: dict[str, dict] = {}  # id -> its latest version read
    for page in _listing(adapter, since, say):
        result.pages += 1
        common.write_atomically(out / f"{PAGE_NAME}-{result.pages:04d}.json", page)
        for ticket in page["data"]:
            ticket_id = str(ticket.get("id"))
            if not TICKET_ID.match(ticket_id):
                result.unreadable += 1
            elif ticket_id not in listed or _updated(ticket, unknown=0.0) > _updated(listed[ticket_id],
                                                                                     unknown=0.0):
                listed[ticket_id] = ticket
        say(f"ticket page {result.pages}: {len(listed)} ticket(s) so far")
    common.remove_stale_pages(out, result.pages, name=PAGE_NAME)

    # Least recently updated first, as --limit promises (the listing is the other way round).
    latest = dict(sorted(listed.items(), key=lambda item: _updated(item[1], unknown=0.0)))

    def fetch(ticket_id: str, version: str) -> int:
        pages, cut = adapter.message_pages(ticket_id)
        threads.write(ticket_id, pages, version)
        return cut

    common.fetch_threads(latest, result, gone=_gone, resolved=lambda ticket: ticket.get("status") == "closed",
                         resolved_only=resolved_only, limit=limit, fetch=fetch, say=say, kept=threads.kept,
                         version_of=_version)
    return result


def export_adapter(own: GorgiasSettings, *, requests_per_minute: float | None) -> GorgiasAdapter:
    """The adapter the export calls through, paced as serve paces it by `[helpdesk] requests_per_minute` (None:
    the API-key limit Gorgias documents, 120 a minute in bursts of half its bucket; 0: no pacing)."""
    from bot.helpdesk.gorgias.adapter import PACING_BURST, GorgiasAdapter, gorgias_client
    from bot.helpdesk.gorgias.settings import REQUESTS_PER_MINUTE

    # Built here rather than by from_settings, which takes serve's whole Settings (bot.config, above this folder).
    # The bucket is the account's, drawn on by serve and other apps too: the longer deadline waits out a 429.
    return GorgiasAdapter(gorgias_client(own), email=own.email or "", webhook_secret="", agent_url=own.agent_url,
                          retry_deadline=common.EXPORT_RETRY_DEADLINE,
                          pacer=per_minute(requests_per_minute, default=REQUESTS_PER_MINUTE, burst=PACING_BURST))


def export_from_env(since: float, out: Path, *, resolved_only: bool, limit: int | None, say: Callable[[str], None],
                    requests_per_minute: float | None) -> common.ExportResult:
    """`export_dump` with the Gorgias API variables `serve` reads, through `export_adapter`; the key is never shown."""
    from bot.helpdesk.gorgias.settings import GorgiasSettings

    return common.export_with(
        "Gorgias", GorgiasSettings.from_env, credentials="GORGIAS_EMAIL and GORGIAS_API_KEY", since=since, out=out,
        say=say, adapter=lambda own: export_adapter(own, requests_per_minute=requests_per_minute),
        dump=lambda adapter: export_dump(adapter, since, out, resolved_only=resolved_only, limit=limit, say=say))
