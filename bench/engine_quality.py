"""Benchmark: how well Seam's decision engine knows when to answer by itself, and how good its triggers are.

Reads public datasets from ../shared/data at run time (see each dataset's SOURCE.md); nothing is copied.

1. Automatic answers (BANKING77-OOS, Zhang et al. 2022). History = `train`: each line a resolved past ticket
   whose answer_id is its intent and whose answer is "[macro for <intent>]". Replay:
   - run A: in-scope `test` (expected answer: its intent) + `ood-oos/valid` (off-domain questions; expected:
     no automatic answer);
   - run B: run A + `id-oos/test` (banking questions from 27 held-out intents the history never saw; expected:
     no automatic answer) — the hard case of a bank's own customers asking something the macros don't cover.
   A ticket is answered automatically when confidence >= threshold; the answer is right when answer_source is
   the expected intent and wrong otherwise (including any answer to a ticket that expects none). Sweeping the
   threshold over every distinct confidence gives the risk–coverage curve, summarised as:
   - coverage at wrong-answer rate <= 1 %, 2 %, 5 %: the highest share of *answerable* tickets answered
     correctly at a threshold whose wrong automatic answers / *all* replayed tickets stays within the bound;
   - AURC: selective risk (wrong among the tickets answered automatically) averaged over coverage (tickets
     answered automatically / all tickets), from the most confident ticket to all of them; tickets with equal
     confidence enter together. Lower is better. A ticket the engine gives no answer counts as an error when
     (at full coverage) it is "accepted".
   Baseline, same history and replay, same run: scikit-learn TfidfVectorizer (word 1–2-grams) +
   LogisticRegression (multinomial, lbfgs, C=1), confidence = highest predicted probability, answer = argmax.
2. Trigger quality (precision, recall, F1, support = positives): asks-for-human on NLU++ (`handoff` intent) and
   Bitext (`contact_human_agent`); high-risk topic with the default topics on BANKING77 test (the risk intents
   listed in RISK_INTENTS); angry tone, when bot.policy.triggers has it, on Twitter US airline sentiment (negative).
3. Throughput: tickets per second through LocalEngine.assess_many over the run-B replay (fit time reported
   apart), and the baseline's predict_proba over the same texts.

    python -m bench.engine_quality [--data ../shared/data] [--quick] [--selftest]
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
from bot.engine.local import LocalEngine
from bot.models import Message, Resolution, Ticket
from bot.policy import triggers
from bot.policy.settings import DEFAULT_AUTO_THRESHOLD
from bot.policy.triggers import DEFAULT_HIGH_RISK_TOPICS, ToneSettings

WRONG_RATE_BOUNDS = (0.01, 0.02, 0.05)
RISK_INTENTS = (
    "compromised_card", "lost_or_stolen_card", "lost_or_stolen_phone", "card_payment_not_recognised",
    "cash_withdrawal_not_recognised", "direct_debit_payment_not_recognised", "transaction_charged_twice",
    "request_refund", "Refund_not_showing_up", "extra_charge_on_statement", "terminate_account",
)
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
QUICK_STEP = 5  # --quick keeps every 5th replayed ticket and every 5th tweet


# --- risk–coverage -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Curve:
    """The risk–coverage curve: one point per threshold, from +inf (nothing answered) down to the lowest
    confidence (everything answered)."""

    thresholds: np.ndarray
    coverage: np.ndarray  # correct automatic answers / answerable tickets
    wrong_rate: np.ndarray  # wrong automatic answers / all tickets
    aurc: float

    def coverage_at(self, max_wrong_rate: float) -> float:
        return float(self.coverage[self.wrong_rate <= max_wrong_rate + 1e-12].max())

    def at_threshold(self, threshold: float) -> tuple[float, float]:
        """(coverage, wrong rate) when answering every ticket with confidence >= threshold."""
        index = int(np.flatnonzero(self.thresholds >= threshold)[-1])
        return float(self.coverage[index]), float(self.wrong_rate[index])


def risk_coverage(confidences: Sequence[float], correct: Sequence[bool], answerable: Sequence[bool]) -> Curve:
    """The curve for tickets with these confidences; `correct` = its automatic answer would be right (only an
    answerable ticket can be), `answerable` = the ticket has an expected answer."""
    conf = np.asarray(confidences, dtype=float)
    right = np.asarray(correct, dtype=bool)
    can = np.asarray(answerable, dtype=bool)
    if not len(conf) == len(right) == len(can) > 0:
        raise ValueError("need the same, non-zero number of confidences, correct flags and answerable flags")
    if (right & ~can).any():
        raise ValueError("a ticket with no expected answer cannot be answered correctly")
    order = np.argsort(-conf, kind="stable")
    conf, right = conf[order], right[order]
    group_ends = np.flatnonzero(np.r_[conf[1:] != conf[:-1], True])  # last index of each equal-confidence run
    accepted = group_ends + 1
    correct_n = np.cumsum(right)[group_ends]
    wrong_n = np.cumsum(~right)[group_ends]
    risk = wrong_n / accepted
    widths = np.diff(np.r_[0, accepted]) / len(conf)
    return Curve(thresholds=np.r_[np.inf, conf[group_ends]],
                 coverage=np.r_[0, correct_n] / max(int(can.sum()), 1),
                 wrong_rate=np.r_[0, wrong_n] / len(conf),
                 aurc=float((risk * widths).sum()))


def _selftest() -> None:
    # 4 tickets; the last expects no answer. Thresholds inf, .9, .8 (two tickets, one wrong), .1.
    curve = risk_coverage([0.8, 0.9, 0.1, 0.8], [False, True, False, True], [True, True, False, True])
    assert np.allclose(curve.thresholds, [np.inf, 0.9, 0.8, 0.1])
    assert np.allclose(curve.coverage, [0, 1 / 3, 2 / 3, 2 / 3])
    assert np.allclose(curve.wrong_rate, [0, 0, 1 / 4, 2 / 4])
    # risk 0 over the first quarter of coverage, 1/3 over the next half, 1/2 over the last quarter.
    assert abs(curve.aurc - (0 * 1 / 4 + 1 / 3 * 2 / 4 + 1 / 2 * 1 / 4)) < 1e-12
    assert curve.coverage_at(0.01) == 1 / 3 and curve.coverage_at(0.25) == 2 / 3
    assert curve.at_threshold(0.85) == (1 / 3, 0.0) and curve.at_threshold(0.8) == (2 / 3, 0.25)
    assert risk_coverage([0.5, 0.5], [True, True], [True, True]).aurc == 0.0


_selftest()


# --- systems under test ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Predictions:
    system: str
    confidences: np.ndarray
    answers: list[str | None]
    fit_seconds: float
    assess_seconds: float

    def head(self, n: int) -> Predictions:
        return Predictions(self.system, self.confidences[:n], self.answers[:n], self.fit_seconds, self.assess_seconds)


def customer_ticket(ticket_id: str, text: str, resolution: Resolution | None = None) -> Ticket:
    return Ticket(id=ticket_id, messages=(Message(author="customer", body=text),), resolution=resolution)


def run_engine(history: data.Labelled, replay: Sequence[str]) -> Predictions:
    past = [customer_ticket(f"h{i}", text, Resolution(answer_id=intent, answer=f"[macro for {intent}]"))
            for i, (text, intent) in enumerate(zip(history.texts, history.labels, strict=True))]
    tickets = [customer_ticket(f"r{i}", text) for i, text in enumerate(replay)]
    started = time.perf_counter()
    engine = LocalEngine(history=past)
    fitted = time.perf_counter()
    assessments = engine.assess_many(tickets)
    done = time.perf_counter()
    return Predictions("Seam LocalEngine", np.array([a.confidence for a in assessments], dtype=float),
                       [a.answer_source for a in assessments], fitted - started, done - fitted)


def run_baseline(history: data.Labelled, replay: Sequence[str]) -> Predictions:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    started = time.perf_counter()
    # lbfgs fits the multinomial model for more than two classes (scikit-learn >= 1.5 has no multi_class).
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression(C=1.0, max_iter=2000))
    model.fit(history.texts, history.labels)
    fitted = time.perf_counter()
    probabilities = model.predict_proba(list(replay))
    done = time.perf_counter()
    classes = model.classes_
    return Predictions("baseline TF-IDF + LogReg", probabilities.max(axis=1),
                       [str(classes[i]) for i in probabilities.argmax(axis=1)], fitted - started, done - fitted)


# --- runs --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunResult:
    run: str
    system: str
    tickets: int
    answerable: int
    curve: Curve

    @property
    def figures(self) -> tuple[float, ...]:
        return (*(self.curve.coverage_at(b) for b in WRONG_RATE_BOUNDS), self.curve.aurc)


def score(run: str, predictions: Predictions, expected: Sequence[str | None]) -> RunResult:
    answerable = [e is not None for e in expected]
    correct = [e is not None and a == e for a, e in zip(predictions.answers, expected, strict=True)]
    return RunResult(run, predictions.system, len(expected), sum(answerable),
                     risk_coverage(predictions.confidences, correct, answerable))


def print_run(title: str, results: Sequence[RunResult], parts: str) -> None:
    first = results[0]
    print(f"\n## {title}: {first.tickets} tickets ({first.answerable} answerable, "
          f"{first.tickets - first.answerable} expecting no automatic answer) — {parts}\n")
    bounds = " | ".join(f"coverage @ wrong ≤{b:.0%}" for b in WRONG_RATE_BOUNDS)
    print(f"| system | {bounds} | AURC (lower is better) | best possible coverage |")
    print("| --- |" + " --- |" * (len(WRONG_RATE_BOUNDS) + 2))
    for r in results:
        cells = " | ".join(f"{v:.1%}" for v in r.figures[:-1])
        print(f"| {r.system} | {cells} | {r.curve.aurc:.4f} | {r.curve.coverage[-1]:.1%} |")
    engine, baseline = results
    winners = []
    for position, (e, b) in enumerate(zip(engine.figures, baseline.figures, strict=True)):
        lower_wins = position == len(WRONG_RATE_BOUNDS)
        if abs(e - b) < 1e-12:
            winners.append("tie")
        else:
            winners.append("engine" if (e < b) == lower_wins else "baseline")
    aurc_change = (engine.curve.aurc - baseline.curve.aurc) / baseline.curve.aurc
    print(f"| wins | {' | '.join(winners)} (engine {aurc_change:+.0%} vs baseline) | |")
    cov, wrong = engine.curve.at_threshold(DEFAULT_AUTO_THRESHOLD)
    print(f"\nEngine at its default auto threshold {DEFAULT_AUTO_THRESHOLD}: coverage {cov:.1%}, "
          f"wrong-answer rate {wrong:.2%}.")


# --- triggers ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TriggerResult:
    trigger: str
    dataset: str
    examples: int
    support: int
    precision: float
    recall: float
    f1: float


def trigger_quality(trigger: str, dataset: str, fires: Callable[[Ticket], object], examples: data.Labelled,
                    ) -> TriggerResult:
    predicted = np.array([_fired(fires(customer_ticket(f"t{i}", text))) for i, text in enumerate(examples.texts)])
    actual = np.array(examples.labels, dtype=bool)
    true_pos = int((predicted & actual).sum())
    precision = true_pos / predicted.sum() if predicted.sum() else 0.0
    recall = true_pos / actual.sum() if actual.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return TriggerResult(trigger, dataset, len(actual), int(actual.sum()), precision, recall, f1)


def _fired(result: object) -> bool:
    return result is not None and result is not False


def trigger_results(root: Path, quick: bool) -> list[TriggerResult]:
    human = triggers.asks_for_human
    risky = lambda ticket: triggers.high_risk_topic(ticket, topics=DEFAULT_HIGH_RISK_TOPICS)  # noqa: E731
    banking, hotels = data.nlupp_handoff(root, "banking"), data.nlupp_handoff(root, "hotels")
    banking77 = data.banking77_test(root)
    risk_labels = data.Labelled(banking77.texts, [c in RISK_INTENTS for c in banking77.labels])
    results = [
        trigger_quality("asks for human", "NLU++ banking (handoff)", human, banking),
        trigger_quality("asks for human", "NLU++ hotels (handoff)", human, hotels),
        trigger_quality("asks for human", "NLU++ both", human,
                        data.Labelled(banking.texts + hotels.texts, banking.labels + hotels.labels)),
        trigger_quality("asks for human", "Bitext (contact_human_agent)", human, data.bitext_human_agent(root)),
        trigger_quality("high-risk topic", "BANKING77 test (risk intents)", risky, risk_labels),
    ]
    tweets = data.airline_tweets_negative(root)
    if quick:
        tweets = tweets.every(QUICK_STEP)
    results.append(trigger_quality("angry tone", "Twitter US airline (negative)", _angry_tone(), tweets))
    return results


def _angry_tone() -> Callable[[Ticket], object]:
    """bot.policy.triggers.angry_tone with the default ToneSettings."""
    settings = ToneSettings()
    return lambda ticket: triggers.angry_tone(ticket, settings=settings)


def print_triggers(results: Sequence[TriggerResult]) -> None:
    print("\n## Trigger quality (support = positive examples)\n")
    print("| trigger | dataset | examples | support | precision | recall | F1 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r.trigger} | {r.dataset} | {r.examples} | {r.support} | {r.precision:.1%} | {r.recall:.1%} "
              f"| {r.f1:.3f} |")
    print(f"\nHigh-risk positives (BANKING77 intents): {', '.join(RISK_INTENTS)}.")


# --- calibration -------------------------------------------------------------------------------------------

def print_calibration(predictions: Predictions, expected: Sequence[str | None]) -> None:
    """Reliability of the confidence: among answers scored in a band, the share that were right."""
    print("\n## Calibration (run B, every automatic answer the system would give, by confidence band)\n")
    print(f"| {predictions.system}: confidence | answers | mean confidence | right |")
    print("| --- | --- | --- | --- |")
    confidences = predictions.confidences
    right = np.array([e is not None and a == e for a, e in zip(predictions.answers, expected, strict=True)])
    answered = np.array([a is not None for a in predictions.answers])
    for low in np.arange(0.0, 1.0, 0.1):
        band = answered & (confidences >= low) & ((confidences < low + 0.1) | (low >= 0.9))
        if band.any():
            print(f"| {low:.1f}–{min(low + 0.1, 1.0):.1f} | {band.sum()} | {confidences[band].mean():.2f} | "
                  f"{right[band].mean():.1%} |")


# --- main --------------------------------------------------------------------------------------------------

def print_throughput(predictions: Sequence[Predictions], history_size: int, replay_size: int) -> None:
    print(f"\n## Throughput (fit on {history_size} history tickets; assess {replay_size} run-B tickets in one "
          f"batch)\n")
    print("| system | fit | assess | tickets/s |")
    print("| --- | --- | --- | --- |")
    for p in predictions:
        print(f"| {p.system} | {p.fit_seconds:.2f} s | {p.assess_seconds:.2f} s | "
              f"{replay_size / p.assess_seconds:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_quality", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--quick", action="store_true", help=f"replay every {QUICK_STEP}th ticket, for a fast check")
    parser.add_argument("--selftest", action="store_true", help="check risk_coverage on a tiny case and exit")
    args = parser.parse_args()
    if args.selftest:
        _selftest()
        print("risk_coverage self-check passed")
        return

    print(f"machine: {machine()}")
    started = time.perf_counter()
    root = args.data
    train = data.banking77_oos(root, "train")
    in_train_oos = sum(label == data.OOS for label in train.labels)
    history = data.Labelled(*map(list, zip(*[(t, label) for t, label in zip(train.texts, train.labels, strict=True)
                                              if label != data.OOS], strict=True)))
    in_scope, off_domain = data.banking77_oos(root, "test"), data.banking77_oos(root, "ood-oos/valid")
    held_out = data.banking77_oos(root, "id-oos/test")
    if args.quick:
        in_scope, off_domain, held_out = (s.every(QUICK_STEP) for s in (in_scope, off_domain, held_out))
    run_a = in_scope.texts + off_domain.texts
    replay = run_a + held_out.texts
    expected = list(in_scope.labels) + [None] * (len(off_domain) + len(held_out))

    print(f"\nhistory: BANKING77-OOS train, {len(history)} resolved tickets over {len(set(history.labels))} "
          f"intents ({in_train_oos} 'oos' lines skipped){' — QUICK subsample of the replay' if args.quick else ''}")
    print("wrong-answer rate = wrong automatic answers / all replayed tickets (an automatic answer to a ticket "
          "that expects none is wrong); coverage = correct automatic answers / answerable tickets; AURC = "
          "wrong / answered automatically, averaged over coverage (answered / all), ties entering together.")

    predictions = [run_engine(history, replay), run_baseline(history, replay)]
    for title, n, parts in (
        ("Run A", len(run_a), f"BANKING77-OOS test ({len(in_scope)}) + ood-oos/valid ({len(off_domain)})"),
        ("Run B", len(replay), f"run A + id-oos/test ({len(held_out)}, held-out banking intents)"),
    ):
        print_run(title, [score(title, p.head(n), expected[:n]) for p in predictions], parts)

    for p in predictions:
        print_calibration(p, expected)
    print_triggers(trigger_results(root, args.quick))
    print_throughput(predictions, len(history), len(replay))
    print(f"\ntotal time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
