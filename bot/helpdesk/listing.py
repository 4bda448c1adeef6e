"""Reading a listing sorted by update time, oldest first, that pages by page number (Freshdesk's tickets list, Help
Scout's conversations list) so that no record is skipped while the listing changes under the reader.

Paged by number, such a listing moves as it is read: a record on a page already read that is updated meanwhile
leaves its place for the end, every record after that place moves one place earlier, and the first record of the
next page slides onto the page already read — never seen, and if its webhook was lost too, lost for good, since the
next check starts after its update. So `by_update_time` asks each page as page 1 of a new listing from the latest
update time the page before showed (a keyset): every record updated before that time was on a page already read,
and a record updated since sorts after it. The records at that very time come again; the caller drops what it has
already read.

When a whole page shows no later time than the one it was asked from (more records at one instant than a page
holds, or, on Help Scout, records that show no time after it), a new listing would answer the same page: the walk
goes on by page number within that listing until a page shows a later time. Only there can a record still slide
past unseen — when a record on those pages is updated between two of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bot.helpdesk.base import ListingCut


@dataclass(frozen=True)
class Page:
    """One page as the helpdesk answered it (`body`), its records (`rows`), and whether the listing goes on."""

    body: Any
    rows: list[dict]
    more: bool


def by_update_time(fetch: Callable[[int, int], Page], since: float, *, time_of: Callable[[dict], float | None],
                   max_requests: int | None, deepest: int | None = None,
                   cut: Callable[[str], ListingCut] = ListingCut, name: str = "the listing") -> Iterator[Page]:
    """Each page of the listing of records updated at or after `since` (Unix seconds), oldest update first.
    `fetch(since, page)` asks for one page (`since` in whole seconds: both APIs take times to the second; a record
    updated at exactly `since` is taken to be listed, as the rest of Seam takes it — neither vendor says); `time_of`
    is a row's update time, or a time never after it (Help Scout shows no modification time), None when it shows
    none.
    Records may come more than once. Raises `cut` once `max_requests` pages are read with more to come, or when the
    walk would need a page past `deepest` (Freshdesk refuses them); everything updated before the latest time read
    was read by then."""
    cursor, number, requests = math.floor(since), 1, 0
    while True:
        if max_requests is not None and requests >= max_requests:
            raise cut(f"{name} goes on past {max_requests} pages")
        page = fetch(cursor, number)
        requests += 1
        yield page
        if not page.more:
            return
        times = [t for t in (time_of(row) for row in page.rows) if t is not None]
        reached = math.floor(max([cursor, *times]))
        if reached > cursor:
            cursor, number = reached, 1  # a new listing from the latest time this page showed
        elif deepest is not None and number >= deepest:
            raise cut(f"{name} holds more than {deepest} pages of records at one update time")
        else:
            number += 1  # a page's worth at one instant: page on within this listing
