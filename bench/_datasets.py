"""Loaders for the public datasets under ../shared/data that `bench.engine_quality` and `bench.simulate_speed`
read at run time.

Each loader returns plain lists (texts and labels); nothing is copied into the repository. See each dataset's
SOURCE.md for its origin and licence (the Twitter airline set is non-commercial: read here, never copied).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

OOS = "oos"


@dataclass(frozen=True)
class Labelled:
    """Texts with one label each (an intent, or a yes/no for a trigger)."""

    texts: list[str]
    labels: list

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def every(self, step: int) -> Labelled:
        """Every `step`-th example: a deterministic subsample for --quick."""
        return Labelled(self.texts[::step], self.labels[::step])

    def __len__(self) -> int:
        return len(self.texts)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def banking77_oos(root: Path, split: str) -> Labelled:
    """A BANKING77-OOS split folder (`train`, `test`, `id-oos/test`, `ood-oos/valid`, ...): seq.in + label."""
    folder = root / "banking77_oos_zhang2022" / "BANKING77-OOS" / split
    return Labelled(_lines(folder / "seq.in"), _lines(folder / "label"))


def nlupp_handoff(root: Path, domain: str) -> Labelled:
    """NLU++ (`banking` or `hotels`), all folds; label True when the example's intents include `handoff`."""
    texts, labels = [], []
    for fold in sorted((root / "nlupp" / "data" / domain).glob("fold*.json"), key=lambda p: int(p.stem[4:])):
        for example in json.loads(fold.read_text(encoding="utf-8")):
            texts.append(example["text"])
            labels.append("handoff" in (example.get("intents") or []))
    return Labelled(texts, labels)


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def bitext_human_agent(root: Path) -> Labelled:
    """Bitext customer-support sample: the customer's `instruction`; True for intent contact_human_agent."""
    rows = _csv_rows(root / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv")
    return Labelled([r["instruction"] for r in rows], [r["intent"] == "contact_human_agent" for r in rows])


def banking77_test(root: Path) -> Labelled:
    """BANKING77 test.csv: text and its intent (category)."""
    rows = _csv_rows(root / "banking77" / "test.csv")
    return Labelled([r["text"] for r in rows], [r["category"] for r in rows])


def airline_tweets_negative(root: Path) -> Labelled:
    """Twitter US airline sentiment: tweet text; True when airline_sentiment is negative."""
    rows = _csv_rows(root / "twitter_us_airline_sentiment" / "Tweets.csv")
    return Labelled([r["text"] for r in rows], [r["airline_sentiment"] == "negative" for r in rows])
