"""Help Scout knowledge for the engine, as clean text: the saved replies of every inbox (`macro-<id>`), and the
published articles of public Help Scout Docs collections (`article-<id>`) when Seam has a Docs API key.

The adapter hands in its own paced, retried `get(path, …)` and `pages(path, params, …)` so these calls obey the
same limits as every other.

- Saved replies: `GET /v2/mailboxes/{id}/saved-replies` lists {id, name, preview}; `…/saved-replies/{id}` gives
  the HTML `text` (https://developer.helpscout.com/mailbox-api/endpoints/inboxes/saved_Replies/saved-replies-list).
  Chat-only saved replies are left out, as Help Scout does by default.
- Docs: `GET /v1/collections`, `/v1/collections/{id}/articles?status=published`, `/v1/articles/{id}`
  (https://developer.helpscout.com/docs-api/); an article's `status` is published or notpublished, a collection's
  `visibility` public or private.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from bot.helpdesk.base import HelpdeskError
from bot.helpdesk.helpscout.shapes import clean_id, items
from bot.models import Article
from bot.text import html_to_text

Get = Callable[..., Any]
Pages = Callable[..., Iterator[Any]]
# Docs ids are hex strings; anything else never goes into a path.
_DOCS_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")


def saved_replies(get: Get, pages: Pages, *, limit: int) -> Iterator[Article]:
    """Every inbox's saved replies in full, each once (one request each, so at most `limit` of them): more than
    that raises HelpdeskError rather than give a part — a sync retires what the listing leaves out."""
    seen: set[str] = set()
    for page in pages("/v2/mailboxes", None):
        for mailbox in items(page, "mailboxes"):
            mailbox_id = clean_id(mailbox.get("id"))
            listed = get(f"/v2/mailboxes/{mailbox_id}/saved-replies") if mailbox_id else []
            for item in listed if isinstance(listed, list) else []:
                reply_id = clean_id(item.get("id")) if isinstance(item, dict) else None
                if reply_id is None or reply_id in seen:
                    continue
                if len(seen) >= limit:
                    raise HelpdeskError(f"Help Scout has more than {limit} saved replies: not syncing a part of them")
                seen.add(reply_id)
                full = get(f"/v2/mailboxes/{mailbox_id}/saved-replies/{reply_id}")
                body = html_to_text(str(full.get("text") or "")) if isinstance(full, dict) else ""
                if body:
                    yield Article(id=f"macro-{reply_id}", title=str(full.get("name") or item.get("name") or ""),
                                  body=body)


def docs_articles(get: Get, pages: Pages) -> Iterator[Article]:
    """The published articles of every public Docs collection, in full."""
    for page in pages("/v1/collections", None, docs=True):
        for collection in items(page, "collections"):
            collection_id = str(collection.get("id") or "")
            if collection.get("visibility") == "private" or not _DOCS_ID.match(collection_id):
                continue  # a private collection is for agents, not an answer to send a customer
            listing = pages(f"/v1/collections/{collection_id}/articles", {"status": "published"}, docs=True)
            for ref in (r for p in listing for r in items(p, "articles")):
                article_id = str(ref.get("id") or "")
                if not _DOCS_ID.match(article_id):
                    continue
                answer = get(f"/v1/articles/{article_id}", docs=True)
                full = answer.get("article") if isinstance(answer, dict) else None
                body = html_to_text(str(full.get("text") or "")) if isinstance(full, dict) else ""
                if body and full.get("status") == "published":
                    yield Article(id=f"article-{article_id}", title=str(full.get("name") or ""), body=body)
