"""Benchmark: the decision engine against two baselines on every dataset in ../shared/data, dev and test.

    python -m bench.decisions [--split dev|test] [--datasets banking77_oos,bitext,...] [--variants] [--rotations 0-4]

Per dataset (bench/_splits.py: a history of resolved tickets, and replays in which each ticket expects an
answer id or none), each system answers every replayed ticket with a confidence:
- Seam: `LocalEngine` over the history (and `--variants` adds the engine with single choices switched back, to
  see what each is worth);
- TF-IDF + LR: word 1–2-gram TF-IDF, multinomial logistic regression (scikit-learn's default C=1, and C=10);
  confidence = top probability;
- kNN: the same TF-IDF, the 10 nearest past tickets vote with their cosine similarity; confidence = the winning
  answer's share of the vote × the nearest similarity.
Figures (higher is better unless said): coverage of answerable tickets answered right at a threshold whose wrong
automatic answers stay ≤ 1 / 2 / 5 % of all tickets; AURC (lower is better; bench/engine_quality.py defines
it); top-1 (answerable tickets whose top answer is right); and, at the default auto threshold 0.9, the wrong
share of automatic answers (lower is better), the share of tickets answered automatically, and the wrong share
of automatic answers when the answerable tickets are replayed alone (in-scope traffic: Seam estimates the share of
uncovered questions from the tickets it is given, so it re-assesses them; a baseline's confidences do not change).

A second table sets Seam beside the stronger baseline, TF-IDF + LR (C=10), figure by figure, with a paired bootstrap
over the replayed tickets (`--resamples`, 2,000 by default): the difference, its 95 % interval, and the share of
resamples in which Seam is ahead. A replay of a few hundred tickets decides "coverage at ≤1 %" with a handful of
them; the interval says which differences are more than that.

`--rotations 0-4` draws the splits again (bench/_splits.py, *Rotations*: other held-out intents, other NLU++
folds) and adds a table of each figure's mean over the rotations, per system, and Seam − TF-IDF + LR (C=10) on
it: the mean difference, a bootstrap interval of that mean (each rotation's tickets resampled on their own), and
in how many rotations Seam is ahead, level and behind. One split's coverage at ≤1 % is a handful of tickets; five
draws of them say whether a difference is the engine's or the draw's.

A third table replays the live half of item 3 (`after_verdicts`): the verdicts on Seam's first automatic answers
(reopened = wrong) set the share of uncovered questions for the rest of the replay, as serve does.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import _datasets as data
from bench._common import machine
from bench._splits import ROTATING, ROTATIONS, SPLITS, Split
from bench.engine_quality import risk_coverage
from bot.config import QualityGuardTable
from bot.engine.base import Verdict
from bot.engine.local import DEFAULT_UNCOVERED_SHARE, Calibrator, EngineOptions, LocalEngine, share_from_feedback
from bot.models import Message, Resolution, Ticket
from bot.policy.settings import DEFAULT_AUTO_THRESHOLD

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BOUNDS = (0.01, 0.02, 0.05)
KNN_NEIGHBOURS = 10
RESAMPLES = 2000
# (name, higher is better) of each figure `_ranked` returns, in order.
RANKED = (*((f"coverage @ wrong ≤{b:.0%}", True) for b in BOUNDS), ("AURC", False), ("top-1", True))


@dataclass(frozen=True)
class Answers:
    system: str
    confidences: np.ndarray
    answers: list[str | None]
    seconds: float
    # The answerable tickets replayed on their own (in-scope traffic), when that changes the confidences: Seam
    # estimates the share of uncovered questions from the tickets it is given. None: the same as in the mix.
    alone: tuple[np.ndarray, list[str | None]] | None = None
    # Seam's calibrated parts of each confidence (Assessment.calibration), for `after_verdicts`.
    calibration: list[tuple[float, float] | None] | None = None


@dataclass(frozen=True)
class Figures:
    dataset: str
    system: str
    coverage: tuple[float, ...]
    aurc: float
    top1: float
    default_wrong_share: float | None
    default_answered: float
    in_scope_wrong_share: float | None
    seconds: float

    def row(self) -> str:
        def share(value: float | None) -> str:
            return "–" if value is None else f"{value:.2%}"

        cells = " | ".join(f"{c:.1%}" for c in self.coverage)
        return (f"| {self.dataset} | {self.system} | {cells} | {self.aurc:.4f} | {self.top1:.1%} "
                f"| {share(self.default_wrong_share)} | {self.default_answered:.1%} "
                f"| {share(self.in_scope_wrong_share)} | {self.seconds:.1f} s |")


def _ticket(ticket_id: str, text: str, resolution: Resolution | None = None) -> Ticket:
    return Ticket(id=ticket_id, messages=(Message(author="customer", body=text),), resolution=resolution)


def seam(options: EngineOptions | None = None, name: str = "Seam", *,
         embeddings_url: str | None = None) -> Callable[[Split, data.Labelled], Answers]:
    def run(split: Split, replay: data.Labelled) -> Answers:
        started = time.perf_counter()
        history = [_ticket(f"h{i}", text, Resolution(answer_id=label, answer=f"[macro {label}]"))
                   for i, (text, label) in enumerate(zip(split.history.texts, split.history.labels, strict=True))]
        embedder = None
        if embeddings_url:
            import httpx

            from bot.engine.embeddings import Embedder, InMemoryEmbeddingCache

            embedder = Embedder(model="all-MiniLM-L6-v2", base_url=embeddings_url, client=httpx.Client(timeout=600),
                                cache=InMemoryEmbeddingCache())
        # Fitted in processes, as the simulate command fits: the same figures every run.
        engine = LocalEngine(history=history, options=options or EngineOptions(), embedder=embedder,
                             processes=embedder is None)
        found = engine.assess_many([_ticket(f"r{i}", text) for i, text in enumerate(replay.texts)])
        seconds = time.perf_counter() - started
        alone = engine.assess_many([_ticket(f"r{i}", text) for i, (text, expected)
                                    in enumerate(zip(replay.texts, replay.labels, strict=True)) if expected])
        return Answers(name, np.array([a.confidence for a in found]), [a.answer_source for a in found], seconds,
                       alone=(np.array([a.confidence for a in alone]), [a.answer_source for a in alone]),
                       calibration=[a.calibration for a in found])

    return run


def _tfidf():
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)


def logistic(c: float) -> Callable[[Split, data.Labelled], Answers]:
    def run(split: Split, replay: data.Labelled) -> Answers:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        started = time.perf_counter()
        model = make_pipeline(_tfidf(), LogisticRegression(C=c, max_iter=3000))
        model.fit(split.history.texts, split.history.labels)
        probabilities = model.predict_proba(replay.texts)
        answers = [str(model.classes_[i]) for i in probabilities.argmax(axis=1)]
        return Answers(f"TF-IDF + LR (C={c:g})", probabilities.max(axis=1), answers, time.perf_counter() - started)

    return run


def knn(split: Split, replay: data.Labelled) -> Answers:
    started = time.perf_counter()
    vectorizer = _tfidf()
    matrix = vectorizer.fit_transform(split.history.texts)
    labels = np.array(split.history.labels, dtype=object)
    similarities = (vectorizer.transform(replay.texts) @ matrix.T).toarray()
    confidences, answers = [], []
    for row in similarities:
        top = np.argsort(-row)[:KNN_NEIGHBOURS]
        votes: dict[str, float] = {}
        for position in top:
            votes[labels[position]] = votes.get(labels[position], 0.0) + float(row[position])
        total = sum(votes.values())
        if total <= 0:
            confidences.append(0.0)
            answers.append(None)
            continue
        best = max(votes, key=votes.get)
        confidences.append(votes[best] / total * float(row[top[0]]))
        answers.append(best)
    return Answers("kNN", np.array(confidences), answers, time.perf_counter() - started)


def _right(answers: Answers, expected: Sequence[str | None]) -> np.ndarray:
    """Per ticket: the system's top answer is the expected one (never, for a ticket that expects none)."""
    return np.array([e is not None and a == e for a, e in zip(answers.answers, expected, strict=True)])


def _ranked(confidences: np.ndarray, right: np.ndarray, answerable: np.ndarray) -> np.ndarray:
    """The figures that depend on how a system ranks its answers (RANKED), for one set of tickets."""
    curve = risk_coverage(confidences, right, answerable)
    return np.array([*(curve.coverage_at(b) for b in BOUNDS), curve.aurc, right.sum() / max(1, answerable.sum())])


def figures(dataset: str, answers: Answers, expected: Sequence[str | None]) -> Figures:
    answerable = np.array([e is not None for e in expected])
    right = _right(answers, expected)
    *coverage, aurc, top1 = _ranked(answers.confidences, right, answerable)
    automatic = answers.confidences >= DEFAULT_AUTO_THRESHOLD
    share = int((automatic & ~right).sum()) / automatic.sum() if automatic.sum() else None
    if answers.alone is not None:  # the answerable tickets replayed alone
        confidences, found = answers.alone
        expected_alone = [e for e in expected if e is not None]
        in_scope = list(confidences >= DEFAULT_AUTO_THRESHOLD)
        in_scope_right = [a == e for a, e in zip(found, expected_alone, strict=True)]
    else:
        in_scope = list(automatic & answerable)
        in_scope_right = list(right)
    in_scope_wrong = sum(1 for auto, ok in zip(in_scope, in_scope_right, strict=True) if auto and not ok)
    in_scope_share = in_scope_wrong / sum(in_scope) if sum(in_scope) else None
    return Figures(dataset, answers.system, tuple(float(c) for c in coverage), float(aurc), float(top1), share,
                   float(automatic.mean()), in_scope_share, answers.seconds)


@dataclass(frozen=True)
class Comparison:
    """System a − system b on each ranked figure over the same tickets, with a paired bootstrap."""

    dataset: str
    observed: np.ndarray  # a − b, per figure
    low: np.ndarray  # 2.5th percentile of the resampled differences
    high: np.ndarray  # 97.5th
    ahead: np.ndarray  # share of resamples in which a is strictly better than b
    differences: np.ndarray  # per resample and figure, a − b (for pooling rotations)

    def rows(self) -> list[str]:
        def value(name: str, x: float) -> str:
            return f"{x:+.4f}" if name == "AURC" else f"{x * 100:+.1f}"

        return [f"| {self.dataset} | {name} | {value(name, d)} | {value(name, lo)} to {value(name, hi)} "
                f"| {share:.0%} |"
                for (name, _), d, lo, hi, share in zip(RANKED, self.observed, self.low, self.high, self.ahead,
                                                       strict=True)]


def compare(dataset: str, a: Answers, b: Answers, expected: Sequence[str | None], *,
            resamples: int = RESAMPLES, seed: int = 0) -> Comparison:
    """Paired bootstrap: resample the tickets with replacement, score both systems on the same resample."""
    answerable = np.array([e is not None for e in expected])
    right_a, right_b = _right(a, expected), _right(b, expected)
    observed = _ranked(a.confidences, right_a, answerable) - _ranked(b.confidences, right_b, answerable)
    rng = np.random.default_rng(seed)
    differences = np.empty((resamples, len(RANKED)))
    for k in range(resamples):
        pick = rng.integers(0, len(expected), len(expected))
        differences[k] = (_ranked(a.confidences[pick], right_a[pick], answerable[pick])
                          - _ranked(b.confidences[pick], right_b[pick], answerable[pick]))
    return _summarised(dataset, observed, differences)


def _summarised(dataset: str, observed: np.ndarray, differences: np.ndarray) -> Comparison:
    better = np.array([1.0 if higher else -1.0 for _, higher in RANKED])
    low, high = np.percentile(differences, [2.5, 97.5], axis=0)
    return Comparison(dataset, observed, low, high, ((differences * better) > 1e-12).mean(axis=0), differences)


@dataclass(frozen=True)
class Pooled:
    """One dataset's rotations: each system's mean figures, and Seam − the baseline over them."""

    dataset: str
    rotations: int
    means: dict[str, np.ndarray]  # per system, the mean of each RANKED figure
    comparison: Comparison | None  # the mean difference; its bootstrap resamples each rotation on its own
    tally: np.ndarray | None  # per figure: rotations in which Seam is ahead, level, behind

    def rows(self) -> list[str]:
        rows = []
        for system, mean in self.means.items():
            *coverage, aurc, top1 = mean
            cells = " | ".join(f"{c:.1%}" for c in coverage)
            rows.append(f"| {self.dataset} ({self.rotations} rotations) | {system} | {cells} | {aurc:.4f} "
                        f"| {top1:.1%} |")
        return rows


def pooled(dataset: str, by_rotation: Sequence[tuple[dict[str, Answers], Sequence[str | None]]], *,
           against: str, resamples: int) -> Pooled:
    """The rotations of one dataset as one figure each: the mean over the rotations. Seam against `against`:
    the mean of the per-rotation differences, and for its interval each rotation's tickets are resampled on their
    own (the same resample for both systems) and the differences averaged, resample by resample."""
    systems = list(by_rotation[0][0])
    means = {}
    for system in systems:
        values = [_ranked(found[system].confidences, _right(found[system], expected),
                          np.array([e is not None for e in expected])) for found, expected in by_rotation]
        means[system] = np.mean(values, axis=0)
    if not resamples or not {"Seam", against} <= set(systems):
        return Pooled(dataset, len(by_rotation), means, None, None)
    each = [compare(dataset, found["Seam"], found[against], expected, resamples=resamples, seed=k)
            for k, (found, expected) in enumerate(by_rotation)]
    better = np.array([1.0 if higher else -1.0 for _, higher in RANKED])
    signed = np.array([c.observed * better for c in each])
    tally = np.array([(signed > 1e-12).sum(axis=0), (np.abs(signed) <= 1e-12).sum(axis=0),
                      (signed < -1e-12).sum(axis=0)])
    comparison = _summarised(dataset, np.mean([c.observed for c in each], axis=0),
                             np.mean([c.differences for c in each], axis=0))
    return Pooled(dataset, len(by_rotation), means, comparison, tally)


@dataclass(frozen=True)
class AfterVerdicts:
    dataset: str
    verdicts: int
    wrong: int
    share: float
    tickets: int  # the second half
    before: tuple[float, float]  # (answered, wrong share of automatic answers) at 0.9, at the default share
    after: tuple[float, float]  # the same at the share the verdicts set

    def row(self) -> str:
        return (f"| {self.dataset} | {self.verdicts} ({self.wrong} wrong) | {DEFAULT_UNCOVERED_SHARE:.0%} → "
                f"{self.share:.0%} | {self.tickets:,} | {self.before[0]:.1%}, {self.before[1]:.2%} "
                f"| {self.after[0]:.1%}, {self.after[1]:.2%} |")


def after_verdicts(dataset: str, answers: Answers, expected: Sequence[str | None], *, seed: int = 0) -> AfterVerdicts:
    """Item 3 live, replayed: the tickets arrive in a random order; the first half is answered at the default
    share of uncovered questions, as serve does before it has verdicts; the verdicts on the last `last` of those
    automatic answers (reopened = wrong: a perfect reopen signal) set the share for the second half
    (`share_from_feedback`, with the quality guard's defaults), as serve does once `min_answers` are judged."""
    table = QualityGuardTable()
    order = np.random.default_rng(seed).permutation(len(expected))
    half = len(order) // 2
    parts = answers.calibration or [None] * len(expected)

    def confidence(i: int, share: float) -> float:
        if parts[i] is None:
            return 0.0
        right, balanced = parts[i]
        return float(Calibrator.combine(np.array([right]), np.array([balanced]), share)[0])

    right = _right(answers, expected)

    def wrong(i: int) -> bool:
        return not right[i]

    first = [i for i in order[:half] if confidence(i, DEFAULT_UNCOVERED_SHARE) >= DEFAULT_AUTO_THRESHOLD]
    verdicts = [Verdict(*parts[i], reopened=wrong(i)) for i in first[-table.last:]]
    share = share_from_feedback(verdicts) if len(verdicts) >= table.min_answers else DEFAULT_UNCOVERED_SHARE

    def at(share: float) -> tuple[float, float]:
        auto = [i for i in order[half:] if confidence(i, share) >= DEFAULT_AUTO_THRESHOLD]
        return len(auto) / (len(order) - half), sum(map(wrong, auto)) / max(1, len(auto))

    return AfterVerdicts(dataset, len(verdicts), sum(v.reopened for v in verdicts), share, len(order) - half,
                         at(DEFAULT_UNCOVERED_SHARE), at(share))


def _selftest() -> None:
    expected = ["a", "b", None, "a"]
    ranked = Answers("ranked", np.array([0.9, 0.8, 0.1, 0.7]), ["a", "b", "x", "a"], 0.0)
    shuffled = Answers("shuffled", np.array([0.1, 0.8, 0.9, 0.7]), ["a", "b", "x", "b"], 0.0)
    same = compare("t", ranked, ranked, expected, resamples=50)
    assert not same.observed.any() and not same.ahead.any() and not same.low.any() and not same.high.any()
    better = compare("t", ranked, shuffled, expected, resamples=200)
    # ranked answers all three answerable tickets right before anything wrong; shuffled puts a wrong one first.
    assert np.allclose(better.observed[:3], 1.0) and better.observed[3] < 0 and better.observed[4] > 0
    assert (better.low[:3] >= 0).all() and better.ahead[0] > 0.5
    seam_first = [({"Seam": ranked, "other": shuffled}, expected), ({"Seam": ranked, "other": ranked}, expected)]
    both = pooled("t", seam_first, against="other", resamples=50)
    # One rotation ahead, one level: the mean difference is half the first's, and the tally says so.
    assert np.allclose(both.comparison.observed, better.observed / 2)
    assert both.tally[:, 0].tolist() == [1, 1, 0] and both.tally[:, 3].tolist() == [1, 1, 0]
    assert np.allclose(both.means["other"], (_ranked(shuffled.confidences, _right(shuffled, expected),
                                                     np.array([e is not None for e in expected]))
                                             + _ranked(ranked.confidences, _right(ranked, expected),
                                                       np.array([e is not None for e in expected]))) / 2)


HEADER = ("| dataset | system | " + " | ".join(f"coverage @ wrong ≤{b:.0%}" for b in BOUNDS)
          + " | AURC | top-1 | wrong share of automatic answers @0.9 | answered @0.9 "
          "| the same, answerable tickets replayed alone | time |")


_selftest()


def print_header(title: str) -> None:
    print(f"# {title} — {machine()}\n")
    print(HEADER)
    print("| --- " * (HEADER.count("|") - 1) + "|")


def print_comparisons(comparisons: Sequence[Comparison], *, against: str, resamples: int) -> None:
    if not comparisons:
        return
    print(f"\n## Seam − {against}, paired bootstrap over the replayed tickets ({resamples:,} resamples; coverage "
          "and top-1 in points, AURC lower is better)\n")
    print("| dataset | figure | difference | 95% interval | Seam ahead in |")
    print("| --- | --- | --- | --- | --- |")
    for comparison in comparisons:
        print("\n".join(comparison.rows()), flush=True)


def print_pooled(found: Sequence[Pooled], *, against: str, resamples: int) -> None:
    if not found:
        return
    print("\n## The mean over the rotations (bench/_splits.py, *Rotations*)\n")
    print("| dataset | system | " + " | ".join(f"coverage @ wrong ≤{b:.0%}" for b in BOUNDS) + " | AURC | top-1 |")
    print("| --- " * (len(BOUNDS) + 4) + "|")
    for each in found:
        print("\n".join(each.rows()))
    compared = [each for each in found if each.comparison is not None]
    if not compared:
        return
    print(f"\n## Seam − {against}, the mean over the rotations ({resamples:,} resamples of each rotation's tickets; "
          "coverage and top-1 in points, AURC lower is better; rotations ahead / level / behind)\n")
    print("| dataset | figure | mean difference | 95% interval | Seam ahead in | rotations ahead / level / behind |")
    print("| --- | --- | --- | --- | --- | --- |")
    for each in compared:
        for row, (ahead, level, behind) in zip(each.comparison.rows(), each.tally.T, strict=True):
            print(f"{row} {ahead} / {level} / {behind} |")


def _rotations(text: str) -> list[int]:
    """`0`, `0-4`, `1,3`: which rotations to run (bench/_splits.py)."""
    found: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        found += range(int(first), int(last or first) + 1)
    if not found or any(not 0 <= r < ROTATIONS for r in found):
        raise argparse.ArgumentTypeError(f"rotations are 0 to {ROTATIONS - 1}: {text!r}")
    return sorted(set(found))


def answer_all(label: str, systems: Sequence[Callable], split: object, replay: data.Labelled) -> dict[str, Answers]:
    """Every system's answers to the replay, by system; each printed as a row of the table as it comes."""
    by_system = {}
    for system in systems:
        answers = system(split, replay)
        by_system[answers.system] = answers
        print(figures(label, answers, replay.labels).row(), flush=True)
    return by_system


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.decisions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--datasets", default=",".join(SPLITS))
    parser.add_argument("--variants", action="store_true", help="also the engine with single choices reverted")
    parser.add_argument("--embeddings", metavar="URL",
                        help="also Seam with sentence embeddings from this OpenAI-compatible server "
                             "(bench/embeddings_server.py, e.g. http://127.0.0.1:8089/v1)")
    parser.add_argument("--only-embeddings", action="store_true", help="with --embeddings: that system alone")
    parser.add_argument("--resamples", type=int, default=RESAMPLES,
                        help="bootstrap resamples for Seam against TF-IDF + LR (C=10); 0: no comparison")
    parser.add_argument("--rotations", type=_rotations, default=[0],
                        help="draw the splits again: 0 (the split every choice was made on), 0-4, 1,3; "
                             "with more than one, the mean over them is reported too (BANKING77-OOS does not rotate)")
    args = parser.parse_args()
    systems: list[Callable[[Split, data.Labelled], Answers]] = [seam(), logistic(1.0), logistic(10.0), knn]
    if args.variants:
        systems[1:1] = [seam(options, name) for name, options in EngineOptions.variants().items()]
    if args.embeddings:
        with_embeddings = seam(name="Seam + MiniLM embeddings", embeddings_url=args.embeddings)
        systems = [with_embeddings] if args.only_embeddings else [systems[0], with_embeddings, *systems[1:]]
    print_header(f"Decision quality, {args.split} replays")
    against = "TF-IDF + LR (C=10)"
    comparisons, verdicts, pools = [], [], []
    for name in args.datasets.split(","):
        rotations = args.rotations if name in ROTATING else [0]
        by_rotation = []
        for rotation in rotations:
            split = SPLITS[name](args.data, rotation) if rotation else SPLITS[name](args.data)
            replay = split.replay(args.split)
            label = f"{name} r{rotation}" if rotation else name
            by_system = answer_all(label, systems, split, replay)
            by_rotation.append((by_system, replay.labels))
            if "Seam" in by_system:
                verdicts.append(after_verdicts(label, by_system["Seam"], replay.labels))
            if args.resamples and {"Seam", against} <= by_system.keys():
                comparisons.append(compare(label, by_system["Seam"], by_system[against], replay.labels,
                                           resamples=args.resamples))
        if len(by_rotation) > 1:
            pools.append(pooled(name, by_rotation, against=against, resamples=args.resamples))
    print_comparisons(comparisons, against=against, resamples=args.resamples)
    print_pooled(pools, against=against, resamples=args.resamples)
    if verdicts:
        print("\n## Seam after verdicts on its automatic answers (reopened = wrong; the quality guard's defaults: "
              "the last 50, at least 20)\n")
        print("| dataset | verdicts | share of uncovered questions | second half, tickets "
              "| answered, wrong share @0.9 before | after |")
        print("| --- | --- | --- | --- | --- | --- |")
        for found in verdicts:
            print(found.row())


if __name__ == "__main__":
    main()
