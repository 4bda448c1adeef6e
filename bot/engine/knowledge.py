"""Knowledge the engine answers from: Markdown articles and JSONL articles/macros (CONTRACT.md, *Knowledge*)."""

from __future__ import annotations

import json
from pathlib import Path

from bot.errors import ConfigError
from bot.models import Article


class KnowledgeError(ConfigError):
    """The knowledge path cannot be read; the message names the file and line."""


def _markdown_article(path: Path) -> Article:
    text = path.read_text(encoding="utf-8")
    lines = text.strip().splitlines()
    if lines and lines[0].startswith("# "):
        title, body = lines[0][2:].strip(), "\n".join(lines[1:]).strip()
    else:
        title, body = path.stem.replace("-", " ").replace("_", " "), text.strip()
    return Article(id=path.stem, title=title, body=body)


def _jsonl_articles(path: Path) -> list[Article]:
    articles = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
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
