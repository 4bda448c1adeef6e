"""Knowledge-only deployments for `bench.knowledge_only`: per dataset, help articles (one per answer) and a dev
and a test replay, each ticket with the id of the article that answers it or None (no article does: it must not
be answered automatically). No resolved past tickets: the engine has nothing to calibrate on, as serve on its
first day with KNOWLEDGE_PATH and no history.

Every choice is made on the dev replays; the test replays are reported once. Read from ../shared/data (and the
repository's own bundled sample) at run time; nothing is copied.

- bitext: an article per intent, titled with the intent's name ("Track order"), its body the dataset's own
  assistant response to the intent's first history row; every 5th intent has no article. The replays are those
  of `bench._splits.bitext`.
- banking77: articles that are titles only (the intent's name, "Card arrival"), every 5th intent none; the
  replays of `bench._splits.banking77`. Hard on purpose: a title is all the evidence.
- nlupp_banking, nlupp_hotels: an article per intent of the domain, titled with the ontology's description
  ("is the intent to ask about loans?" → "Ask about loans"); every 5th intent, and the general intents (greet,
  affirm, …), none. Its single-intent examples are turns of a dialogue more than tickets ("It's international",
  "both balances please"), and its titles describe intents rather than answer them: the least like a help
  centre of the five. Replays: folds 12–15 (dev) and 16–19 (test), examples with one intent or
  none (with two or more, which one article answers is a matter of opinion).
- sample: the repository's examples/knowledge (26 articles written for Seam) and examples/tickets.jsonl, even
  lines dev, odd lines test; a ticket expects its `resolution.answer_id` when an article has that id.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from bench import _datasets as data
from bench import _splits
from bot.engine.knowledge import load_knowledge
from bot.models import Article, read_tickets

REPOSITORY = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class KnowledgeSplit:
    name: str
    articles: list[Article]
    dev: data.Labelled  # texts and the id of the article that answers each, or None
    test: data.Labelled

    def replay(self, which: str) -> data.Labelled:
        return self.dev if which == "dev" else self.test


def _title(name: str) -> str:
    return name.replace("_", " ").replace("-", " ").strip().capitalize()


def bitext(root: Path) -> KnowledgeSplit:
    split = _splits.bitext(root)
    path = root / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    first = dict(zip(split.history.texts, split.history.labels, strict=True))
    responses: dict[str, str] = {}
    for row in rows:
        if first.get(row["instruction"]) == row["intent"]:
            responses.setdefault(row["intent"], row["response"])
    articles = [Article(id=intent, title=_title(intent), body=body) for intent, body in sorted(responses.items())]
    return KnowledgeSplit("bitext", articles, split.dev, split.test)


def banking77(root: Path) -> KnowledgeSplit:
    split = _splits.banking77(root)
    articles = [Article(id=intent, title=_title(intent), body="") for intent in sorted(set(split.history.labels))]
    return KnowledgeSplit("banking77", articles, split.dev, split.test)


def _nlupp(root: Path, domain: str) -> KnowledgeSplit:
    ontology = json.loads((root / "nlupp" / "data" / "ontology.json").read_text(encoding="utf-8"))["intents"]
    own = sorted(name for name, intent in ontology.items() if domain in intent["domain"])
    hidden = set(own[::_splits.HELD_OUT_EVERY])
    articles = []
    for name in own:
        if name in hidden:
            continue
        description = ontology[name]["description"].strip().rstrip("?").strip()
        for prefix in ("is the intent asking about ", "is the intent to ", "is the user "):
            if description.lower().startswith(prefix):
                description = description[len(prefix):]
        articles.append(Article(id=name, title=description[:1].upper() + description[1:], body=""))
    covered = {a.id for a in articles}
    folds: dict[int, list[dict]] = {int(p.stem[4:]): json.loads(p.read_text(encoding="utf-8"))
                                    for p in (root / "nlupp" / "data" / domain).glob("fold*.json")}

    def replay(numbers: range) -> data.Labelled:
        pairs = [(e["text"], (e.get("intents") or [None])[0]) for f in numbers for e in folds[f]
                 if len(e.get("intents") or []) <= 1]
        return data.Labelled([t for t, _ in pairs], [i if i in covered else None for _, i in pairs])

    return KnowledgeSplit(f"nlupp_{domain}", articles, replay(range(12, 16)), replay(range(16, 20)))


def nlupp_banking(root: Path) -> KnowledgeSplit:
    return _nlupp(root, "banking")


def nlupp_hotels(root: Path) -> KnowledgeSplit:
    return _nlupp(root, "hotels")


def sample(_root: Path) -> KnowledgeSplit:
    articles = load_knowledge(REPOSITORY / "examples" / "knowledge")
    ids = {a.id for a in articles}
    tickets, _ = read_tickets(REPOSITORY / "examples" / "tickets.jsonl")
    texts = [t.customer_text() for t in tickets]
    labels = [t.resolution.answer_id if t.resolution and t.resolution.answer_id in ids else None for t in tickets]
    return KnowledgeSplit("sample", articles, data.Labelled(texts[0::2], labels[0::2]),
                          data.Labelled(texts[1::2], labels[1::2]))


SPLITS = {"bitext": bitext, "banking77": banking77, "nlupp_banking": nlupp_banking,
          "nlupp_hotels": nlupp_hotels, "sample": sample}
