"""Benchmark: deciding from knowledge articles alone, with no history to calibrate on — serve's first day with
KNOWLEDGE_PATH (or the helpdesk's synced articles) and no HISTORY_PATH.

    python -m bench.knowledge_only [--split dev|test] [--datasets bitext,sample,...] [--resamples N]

Per dataset (bench/_knowledge_splits.py: an article per answer, and replays in which each ticket expects an
article id or none), three systems answer every replayed ticket with a confidence:
- Seam: `LocalEngine(articles=...)` as shipped: closeness × agreement × the share of the question's content words
  the answer explains (bot.engine.wording);
- Seam, closeness × agreement: the plain score before the explained share (`EngineOptions(explain_content=False)`);
- TF-IDF cosine: the article of the nearest passage (word 1–2-grams), confidence = that cosine.
The figures are bench.decisions' (coverage at ≤1/2/5 % wrong, AURC, top-1, wrong share and share answered at the
default auto threshold 0.9); then Seam − the plain score with a paired bootstrap. The question here is mostly
the last columns: how often an uncalibrated engine is sure and wrong.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench import _datasets as data
from bench._knowledge_splits import SPLITS, KnowledgeSplit
from bench.decisions import DEFAULT_DATA, RESAMPLES, Answers, answer_all, compare, print_comparisons, print_header
from bot.engine.local import EngineOptions, LocalEngine
from bot.models import Message, Ticket
from bot.policy.settings import DEFAULT_AUTO_THRESHOLD

PLAIN = "Seam, closeness × agreement"


def seam(options: EngineOptions, name: str) -> Callable[[KnowledgeSplit, data.Labelled], Answers]:
    def run(split: KnowledgeSplit, replay: data.Labelled) -> Answers:
        started = time.perf_counter()
        engine = LocalEngine(articles=split.articles, options=options)
        found = engine.assess_many([Ticket(id=f"r{i}", messages=(Message(author="customer", body=text),))
                                    for i, text in enumerate(replay.texts)])
        return Answers(name, np.array([a.confidence for a in found]), [a.answer_source for a in found],
                       time.perf_counter() - started)

    return run


def cosine(split: KnowledgeSplit, replay: data.Labelled) -> Answers:
    from sklearn.feature_extraction.text import TfidfVectorizer

    started = time.perf_counter()
    passages = [(a.id, text) for a in split.articles for text in (a.title, f"{a.title}\n{a.body}")]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    matrix = vectorizer.fit_transform([text for _, text in passages])
    similarities = (vectorizer.transform(replay.texts) @ matrix.T).toarray()
    best = similarities.argmax(axis=1)
    confidences = similarities[np.arange(len(best)), best]
    answers = [passages[b][0] if c > 0 else None for b, c in zip(best, confidences, strict=True)]
    return Answers("TF-IDF cosine", confidences, answers, time.perf_counter() - started)


def at_default(dataset: str, answers: Answers, expected: list[str | None]) -> str:
    """The automatic answers at the default auto threshold, counted: a share of a handful hides how few."""
    automatic = answers.confidences >= DEFAULT_AUTO_THRESHOLD
    right = sum(1 for auto, a, e in zip(automatic, answers.answers, expected, strict=True) if auto and e is not None
                and a == e)
    return f"| {dataset} | {answers.system} | {int(automatic.sum())} | {right} | {int(automatic.sum()) - right} |"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.knowledge_only", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--datasets", default=",".join(SPLITS))
    parser.add_argument("--resamples", type=int, default=RESAMPLES,
                        help="bootstrap resamples for Seam against its plain score; 0: no comparison")
    args = parser.parse_args()
    systems = [seam(EngineOptions(), "Seam"), seam(EngineOptions(explain_content=False), PLAIN), cosine]
    print_header(f"Knowledge only, {args.split} replays")
    comparisons, counts = [], []
    for name in args.datasets.split(","):
        split = SPLITS[name](args.data)
        replay = split.replay(args.split)
        answerable = sum(label is not None for label in replay.labels)
        label = f"{name} ({len(split.articles)} articles; {len(replay.texts)} tickets, {answerable} answerable)"
        by_system = answer_all(label, systems, split, replay)
        counts += [at_default(name, answers, replay.labels) for answers in by_system.values()]
        if args.resamples:
            comparisons.append(compare(name, by_system["Seam"], by_system[PLAIN], replay.labels,
                                       resamples=args.resamples))
    print(f"\n## Automatic answers at the default auto threshold {DEFAULT_AUTO_THRESHOLD}\n")
    print("| dataset | system | answered automatically | right | wrong |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(counts))
    print_comparisons(comparisons, against=PLAIN, resamples=args.resamples)


if __name__ == "__main__":
    main()
