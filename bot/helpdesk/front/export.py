"""`python -m bot import front --from-api`: fetching the Front API dump that importer.py reads, from the API.

`export_dump` writes into a folder what an operator would otherwise save by hand (README, *Importing tickets*):

- `conversations-0001.json`, `conversations-0002.json`, … — each page of `GET /conversations/search/after:<start>`
  (the conversations active since the start time, most recently active first, the only order a search has), as
  Front answered it (`{"_pagination", "_links", "_total", "_results"}`);
- `threads/{cnv_id}.json` — every page of `GET /conversations/{id}/messages` and of `…/comments` for each
  conversation listed, in one JSON array as answered (each message and comment names its conversation in
  `_links.related`); deleted conversations left out, and those neither archived nor resolved with `resolved_only`;
- `threads/.versions/{cnv_id}.json` — the conversation's last activity the thread was fetched for. The importer
  reads no hidden folder, so the threads file stays exactly what the API returned.

A Front conversation carries no time of its last activity (ConversationResponse in core-api.json has `created_at`
only), so each conversation's version is the time of its latest event, from `GET /events?q[after]=` (the adapter's
`updated_since`, as reconciliation reads it, every window of it).

The adapter reads MAX_PAGES pages of a listing: a search cut there goes on with a new one `before:` the oldest last
activity read (a conversation on both counts once, as last read); when that cannot get further (a whole search's
worth of conversations last active in one second) the export stops with a warning.

Re-running resumes: the search and the events are read again, but a threads file already there is kept unless its
conversation was active since it was written (or its version file is missing: an interrupted run). Every file is
written to a temporary name and renamed into place. The HTTP calls are the adapter's own (`FrontAdapter.
conversation_pages`, `conversation_thread`, `updated_since`): the same token, pacing and retries as `serve`, and
never a request to a host a response names. What this shares with the other exports is in bot/helpdesk/export.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot.helpdesk import export as common
from bot.helpdesk.base import ListingCut, iso_seconds
from bot.helpdesk.front.adapter import CONVERSATION_ID
from bot.helpdesk.front.settings import resolved
from bot.pacing import per_minute

if TYPE_CHECKING:
    from bot.helpdesk.front.adapter import FrontAdapter
    from bot.helpdesk.front.settings import FrontSettings


def _result() -> common.ExportResult:
    return common.ExportResult(thread="threads", unresolved_why="not archived or resolved", gone_why="deleted")


def _last_activity(adapter: FrontAdapter, since: float) -> dict[str, str]:
    """Each conversation's latest event since `since` (ISO 8601), every window of the events listing read; a window
    that cannot go further back ends it, and conversations it leaves out have no version (always fetched)."""
    latest: dict[str, str] = {}
    before: float | None = None
    while True:
        found = adapter.updated_since(since, before=before)
        for conversation_id, at in found:
            latest[conversation_id] = max(latest.get(conversation_id, ""), at)
        if found.unread_before is None or (before is not None and found.unread_before >= before):
            return latest
        before = found.unread_before


def _stamp(moment: float) -> str:
    return f"{datetime.fromtimestamp(moment, UTC):%Y-%m-%d %H:%M:%S} UTC"


def export_dump(adapter: FrontAdapter, since: float, out: Path, *, resolved_only: bool = False,
                limit: int | None = None, say: Callable[[str], None] = lambda line: None) -> common.ExportResult:
    """Write the conversations active since `since` (Unix seconds) and each listed conversation's messages and
    comments into `out` (the module docstring says how). `limit`: fetch threads for at most that many
    conversations, the least recently active first. `say` gets progress lines. HelpdeskError when Front fails for
    good; what was written until then stays, and a re-run goes on from there."""
    threads = common.VersionedThreads(out / "threads")
    result = _result()
    activity = _last_activity(adapter, since)
    say(f"events: {len(activity)} conversation(s) active since {_stamp(since)}")
    listed: dict[str, dict] = {}  # id -> the conversation as last read (what the importer keeps too)
    before: float | None = None
    while True:
        try:
            for page in adapter.conversation_pages(since, before=before):
                result.pages += 1
                common.write_atomically(out / f"conversations-{result.pages:04d}.json", page)
                for conversation in page.get("_results") or [] if isinstance(page, dict) else []:
                    conversation_id = conversation.get("id") if isinstance(conversation, dict) else None
                    if not isinstance(conversation_id, str) or not CONVERSATION_ID.match(conversation_id):
                        result.unreadable += 1
                        continue
                    listed[conversation_id] = conversation
                say(f"conversation page {result.pages}: {len(listed)} conversation(s) so far")
        except ListingCut:
            # Newest first: a new search ending at the oldest last activity read goes on, unless that is where
            # this one ended already (a whole search's worth active in one second).
            read = [iso_seconds(activity[c]) for c in listed if c in activity]
            oldest = min((moment for moment in read if moment is not None), default=None)
            if oldest is None or (before is not None and oldest >= before):
                # Not result.cut: its warning tells to run again with a later --since, right for an oldest-first
                # listing; here what is missing is the least recently active.
                say(f"warning: the export stopped after {result.pages} pages before its end: conversations last "
                    f"active before {_stamp(oldest or since)} may be missing")
                break
            say(f"the conversation search goes deeper than one listing: going on with conversations last active "
                f"before {_stamp(oldest)}")
            before = oldest
            continue
        break
    common.remove_stale_pages(out, result.pages, name="conversations")

    # Least recently active first, as --limit promises; the version rides along in memory only (the pages on
    # disk stay as Front answered them).
    latest = {conversation_id: {**conversation, "updated_at": activity.get(conversation_id, "")}
              for conversation_id, conversation in sorted(listed.items(),
                                                          key=lambda item: activity.get(item[0], ""))}

    def fetch(conversation_id: str, version: str) -> int:
        pages, cut = adapter.conversation_thread(conversation_id)
        threads.write(conversation_id, pages, version)
        return cut

    common.fetch_threads(latest, result, gone=lambda conversation: conversation.get("status") == "deleted",
                         resolved=resolved, resolved_only=resolved_only, limit=limit, fetch=fetch, say=say,
                         kept=threads.kept)
    return result


def export_adapter(own: FrontSettings, *, requests_per_minute: float | None) -> FrontAdapter:
    """The adapter the export calls through, paced as serve paces it by `[helpdesk] requests_per_minute` (None:
    Front's lowest plan, 50 requests a minute; 0: no pacing)."""
    from bot.helpdesk.front.adapter import PACING_BURST, FrontAdapter, front_client
    from bot.helpdesk.front.settings import REQUESTS_PER_MINUTE

    requests = REQUESTS_PER_MINUTE if requests_per_minute is None else requests_per_minute
    # Built here rather than by from_settings, which takes serve's whole Settings (bot.config, above this folder).
    # Front counts requests per company, the ones serve makes too: the longer retry deadline waits out a 429 on a
    # busy minute.
    return FrontAdapter(front_client(own), webhook_secret="", author_id=own.author_id,
                        retry_deadline=common.EXPORT_RETRY_DEADLINE, pacer=per_minute(requests, burst=PACING_BURST))


def export_from_env(since: float, out: Path, *, resolved_only: bool, limit: int | None, say: Callable[[str], None],
                    requests_per_minute: float | None) -> common.ExportResult:
    """`export_dump` with the Front API variables `serve` reads, through `export_adapter`; the token is never
    shown."""
    from bot.helpdesk.front.settings import FrontSettings

    return common.export_with(
        "Front", FrontSettings.from_env, credentials="FRONT_API_TOKEN", since=since, out=out, say=say,
        adapter=lambda own: export_adapter(own, requests_per_minute=requests_per_minute),
        dump=lambda adapter: export_dump(adapter, since, out, resolved_only=resolved_only, limit=limit, say=say))
