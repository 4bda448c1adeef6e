"""`python -m bot import helpscout --from-api`: fetching the Help Scout Mailbox API dump that importer.py reads,
from the API.

`export_dump` writes into a folder what an operator would otherwise save by hand (README, *Importing tickets*):

- `conversations-0001.json`, `conversations-0002.json`, … — each page of `GET /v2/conversations?status=all&
  modifiedSince=…&sortField=modifiedAt&sortOrder=asc` as Help Scout returned it (`{"_embedded": {"conversations":
  [...]}, "page": {...}, "_links": {...}}`);
- `threads/{id}.json` — `{"conversationId": id, "conversationVersion": …, "_embedded": {"threads": [...]}}`: every
  thread of each conversation listed, all pages of `GET /v2/conversations/{id}/threads` in one list, newest first
  as answered (its latest version; spam, draft and deleted conversations left out, and those not closed with
  `resolved_only`). The importer takes the conversation from `conversationId` and ignores the version.

The conversation object shows no modification time, so the version a threads file was fetched for is what
reconciliation compares (`conversation_version`: the newest time the conversation shows, and its thread count).

The adapter reads the list by modification time (`HelpScoutAdapter.conversation_pages`): each page is the first of
a new list from the newest time the page before showed, so a conversation modified while the export lists cannot
push another off the pages, and pages overlap by a conversation or two. It reads MAX_PAGES pages at a time: a
listing stopped there goes on with a new one from the newest time read, which is never after the last modification
listed, so nothing is skipped; a conversation listed twice counts once, in the version read last.

Re-running resumes: the conversation pages are read again, but a threads file already there is kept unless its
conversation changed since it was written. Every file is written to a temporary name and renamed into place. The
HTTP calls are the adapter's own (`HelpScoutAdapter.conversation_pages`, `conversation_threads`): the same OAuth2
token, pacing and retries as `serve`. What this shares with the other exports is in bot/helpdesk/export.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.helpdesk import export as common
from bot.helpdesk.base import ListingCut
from bot.helpdesk.helpscout.settings import LEFT_OUT_STATES, RESOLVED
from bot.helpdesk.helpscout.shapes import clean_id, items, newest_time
from bot.pacing import per_minute

if TYPE_CHECKING:
    from bot.helpdesk.helpscout.adapter import HelpScoutAdapter
    from bot.helpdesk.helpscout.settings import HelpScoutSettings

PAGE_NAME = "conversations"


def _kept_version(path: Path) -> str | None:
    """The `conversationVersion` a threads file was written for ("" when it does not say: saved by hand); None
    when there is no readable threads file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    embedded = document.get("_embedded") if isinstance(document, dict) else None
    if not isinstance(embedded, dict) or not isinstance(embedded.get("threads"), list):
        return None
    return str(document.get("conversationVersion") or "")


def _gone(conversation: dict) -> bool:
    return conversation.get("status") == "spam" or conversation.get("state") in LEFT_OUT_STATES


def _listing(adapter: HelpScoutAdapter, since: float, result: common.ExportResult,
             say: Callable[[str], None]) -> Iterator[Any]:
    """Every page of the conversations list from `since`, over as many listings as the page cap takes: each new
    one starts at the newest time read so far. `result.cut` when a listing stopped and no new one can get
    further (a whole listing's worth of conversations showing no newer time) or a page linked elsewhere."""
    from bot.helpdesk.helpscout.adapter import MAX_PAGES, PageCap

    start = since
    while True:
        reached = start
        try:
            for page in adapter.conversation_pages(start):
                for conversation in items(page, "conversations"):
                    moment = newest_time(conversation)
                    reached = max(reached, moment.timestamp() if moment else reached)
                yield page
            return
        except PageCap:
            if reached <= start:
                result.cut = True
                return
            start = reached
            say(f"the conversations list goes deeper than one listing reads ({MAX_PAGES} pages): going on with "
                f"conversations modified since {datetime.fromtimestamp(start, UTC):%Y-%m-%dT%H:%M:%SZ}")
        except ListingCut:
            result.cut = True
            return


def export_dump(adapter: HelpScoutAdapter, since: float, out: Path, *, resolved_only: bool = False,
                limit: int | None = None, say: Callable[[str], None] = lambda line: None) -> common.ExportResult:
    """Write the conversations modified since `since` (Unix seconds) and each listed conversation's threads into
    `out` (the module docstring says how). `limit`: fetch threads for at most that many conversations, the first
    ones listed (oldest modification first). `say` gets progress lines. HelpdeskError when Help Scout fails for
    good; what was written until then stays, and a re-run goes on from there."""
    from bot.helpdesk.helpscout.adapter import conversation_version

    threads_dir = out / "threads"
    threads_dir.mkdir(parents=True, exist_ok=True)
    result = common.ExportResult(thread="threads", unresolved_why="not closed",
                                 gone_why="spam, draft or deleted")
    latest: dict[str, dict] = {}  # id -> the version read last, in the order of those (oldest modification first)
    for page in _listing(adapter, since, result, say):
        result.pages += 1
        common.write_atomically(out / f"{PAGE_NAME}-{result.pages:04d}.json", page)
        for conversation in items(page, "conversations"):
            conversation_id = clean_id(conversation.get("id"))
            if conversation_id is None:
                result.unreadable += 1
                continue
            latest.pop(conversation_id, None)
            latest[conversation_id] = conversation
        say(f"conversation page {result.pages}: {len(latest)} conversation(s) so far")
    common.remove_stale_pages(out, result.pages, name=PAGE_NAME)

    def fetch(conversation_id: str, version: str) -> int:
        threads, unreadable = adapter.conversation_threads(conversation_id)
        common.write_atomically(threads_dir / f"{conversation_id}.json", {
            "conversationId": int(conversation_id), "conversationVersion": version,
            "_embedded": {"threads": threads}})
        return unreadable

    common.fetch_threads(latest, result, gone=_gone, resolved=lambda conversation: conversation.get("status")
                         == RESOLVED, resolved_only=resolved_only, limit=limit, fetch=fetch, say=say,
                         kept=lambda conversation_id: _kept_version(threads_dir / f"{conversation_id}.json"),
                         version_of=conversation_version)
    return result


def export_adapter(own: HelpScoutSettings, *, requests_per_minute: float | None) -> HelpScoutAdapter:
    """The adapter the export calls through, paced as serve paces it by `[helpdesk] requests_per_minute` (None:
    the lowest limit Help Scout has published; 0: no pacing)."""
    from bot.helpdesk.helpscout.adapter import PACING_BURST, HelpScoutAdapter, helpscout_client
    from bot.helpdesk.helpscout.settings import REQUESTS_PER_MINUTE

    requests = REQUESTS_PER_MINUTE if requests_per_minute is None else requests_per_minute
    # Built here rather than by from_settings, which takes serve's whole Settings (bot.config, above this folder);
    # the longer retry deadline waits out a 429 on a smaller plan.
    return HelpScoutAdapter(helpscout_client(own), app_id=own.app_id or "", app_secret=own.app_secret or "",
                            webhook_secret="", retry_deadline=common.EXPORT_RETRY_DEADLINE,
                            pacer=per_minute(requests, burst=PACING_BURST))


def export_from_env(since: float, out: Path, *, resolved_only: bool, limit: int | None, say: Callable[[str], None],
                    requests_per_minute: float | None) -> common.ExportResult:
    """`export_dump` with the Help Scout OAuth2 app `serve` reads, through `export_adapter`; the secret and the
    token are never shown."""
    from bot.helpdesk.helpscout.settings import HelpScoutSettings

    return common.export_with(
        "Help Scout", HelpScoutSettings.from_env, credentials="HELPSCOUT_APP_ID and HELPSCOUT_APP_SECRET",
        since=since, out=out, say=say, adapter=lambda own: export_adapter(own, requests_per_minute=requests_per_minute),
        dump=lambda adapter: export_dump(adapter, since, out, resolved_only=resolved_only, limit=limit, say=say))
