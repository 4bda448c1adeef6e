"""Knowledge the engine answers from: Markdown articles and JSONL articles/macros (CONTRACT.md, *Knowledge*) under
KNOWLEDGE_PATH, beside the articles and macros synced from the helpdesk (`with_synced`); and the rule for text that
still holds a template placeholder (`{{ticket.id}}`, `{% if … %}`): it may be evidence and a draft, never an
answer sent on its own (`hold_placeholders`, `PlaceholdersDrafted`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from bot.errors import ConfigError
from bot.models import Article
from bot.text import has_placeholder, jsonl_lines

log = logging.getLogger(__name__)


class KnowledgeError(ConfigError):
    """The knowledge path cannot be read; the message names the file and line."""


def _read(path: Path) -> str:
    """A knowledge file's text: UTF-8, a BOM (Windows editors write one) dropped; KnowledgeError naming the file
    when it is not UTF-8 or cannot be read, rather than a traceback."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise KnowledgeError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise KnowledgeError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _markdown_article(path: Path) -> Article:
    text = _read(path)
    lines = text.strip().splitlines()
    if lines and lines[0].startswith("# "):
        title, body = lines[0][2:].strip(), "\n".join(lines[1:]).strip()
    else:
        title, body = path.stem.replace("-", " ").replace("_", " "), text.strip()
    return Article(id=path.stem, title=title, body=body)


def _jsonl_articles(path: Path) -> list[Article]:
    articles = []
    for number, line in enumerate(jsonl_lines(_read(path)), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise KnowledgeError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not row.get("id") or not isinstance(row.get("body"), str):
            raise KnowledgeError(f"{path}:{number}: an article needs 'id' and a string 'body'")
        articles.append(Article(id=str(row["id"]), title=str(row.get("title") or ""), body=row["body"].strip()))
    return articles


def load_knowledge(path: str | Path | None) -> list[Article]:
    """Every article under `path` (a folder, or one .md/.jsonl file), sorted by id; [] when path is None."""
    if path is None:
        return []
    root = Path(path)
    if not root.exists():
        raise KnowledgeError(f"knowledge path not found: {root}")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    articles: dict[str, Article] = {}
    for file in files:
        if file.suffix.lower() in (".md", ".markdown"):
            found = [_markdown_article(file)]
        elif file.suffix.lower() == ".jsonl":
            found = _jsonl_articles(file)
        else:
            continue
        for article in found:
            if article.body:
                articles[article.id] = article
    return sorted(articles.values(), key=lambda a: a.id)


def with_synced(files: Sequence[Article], synced: Sequence[Article]) -> list[Article]:
    """The knowledge files and the synced articles together, by id; where both have an id, the file's wins (a
    file is the operator's own word, and may stand in for a helpdesk article on purpose)."""
    merged = {a.id: a for a in synced}
    merged.update((a.id, a) for a in files)
    return sorted(merged.values(), key=lambda a: a.id)


def needs_person(article: Article) -> bool:
    """An article or macro whose text still holds a template placeholder: a person must fill it in, so an answer
    from it is at most drafted (`bot.policy.decide` caps any answer holding one)."""
    return has_placeholder(article.body)
