"""Choosing the auto threshold on evidence, with error bars: the one definition of the wrong-answer rate that the
simulation (`python -m bot simulate`) and `/escalation advise` share.

The wrong-answer rate at a threshold is the share of automatic answers that would be wrong: among the graded
tickets the AI would answer on its own at that threshold (a past ticket whose right answer is known, or a draft
an agent reviewed), those whose answer is not the right one (in advise: not approved as drafted). A rate seen on
a few hundred tickets is uncertain, so the recommendation uses its Wilson score interval (95 %): the lowest
threshold, in steps of 0.01 from the draft threshold up, whose *upper* bound stays within the target, and only
where at least `MIN_ANSWERS` graded automatic answers back it. With 0 wrong in n answers the upper bound is about
3.84 / (n + 3.84): a 1 % target needs about 380 right automatic answers and no wrong one, which is the point —
too little evidence recommends nothing and says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Z_95 = 1.959964
MIN_ANSWERS = 30
# The wrong share of automatic answers a recommended threshold may have at the top of its interval: then the share
# itself is usually near 1 %.
DEFAULT_TARGET = 0.02
STEP = 0.01


def wilson_interval(wrong: int, answered: int, *, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of the proportion wrong / answered; (0, 1) when nothing was answered."""
    if answered <= 0:
        return 0.0, 1.0
    p = wrong / answered
    denominator = 1 + z * z / answered
    centre = (p + z * z / (2 * answered)) / denominator
    spread = z * math.sqrt(p * (1 - p) / answered + z * z / (4 * answered * answered)) / denominator
    return max(0.0, centre - spread), min(1.0, centre + spread)


@dataclass(frozen=True)
class Point:
    """At one auto threshold: how many graded tickets would be answered automatically, and how many wrongly."""

    threshold: float
    answered: int
    wrong: int

    @property
    def share(self) -> float | None:
        return self.wrong / self.answered if self.answered else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.wrong, self.answered)

    def as_dict(self) -> dict:
        low, high = self.interval
        share = self.share
        return {"auto_threshold": self.threshold, "graded_automatic_answers": self.answered, "wrong": self.wrong,
                "wrong_share": None if share is None else round(share, 4), "wrong_share_low": round(low, 4),
                "wrong_share_high": round(high, 4)}


@dataclass(frozen=True)
class Recommendation:
    point: Point | None  # None: no threshold has the evidence to keep the target
    reason: str


def grid(floor: float) -> list[float]:
    """Candidate thresholds: every 0.01 from `floor` (rounded up to the grid) to 1.00."""
    start = math.ceil(round(floor / STEP, 6))
    return [round(step * STEP, 2) for step in range(start, round(1 / STEP) + 1)]


def recommend(points: Sequence[Point], *, target: float, min_answers: int = MIN_ANSWERS) -> Recommendation:
    """The lowest threshold whose wrong share's upper 95 % bound is within `target`, backed by at least
    `min_answers` graded automatic answers; or None, with the reason in words."""
    ordered = sorted(points, key=lambda p: p.threshold)
    for point in ordered:
        if point.answered >= min_answers and point.interval[1] <= target + 1e-12:
            low, high = point.interval
            return Recommendation(point, f"the lowest threshold (in steps of 0.01) whose wrong share of automatic "
                                         f"answers is within {target:.1%} even at the top of its 95% interval "
                                         f"({point.wrong} of {point.answered} graded automatic answers wrong: "
                                         f"{low:.1%}–{high:.1%})")
    backed = [p for p in ordered if p.answered >= min_answers]
    if not backed:
        most = max((p.answered for p in ordered), default=0)
        return Recommendation(None, f"too little evidence: no threshold has {min_answers} graded automatic answers "
                                    f"behind it (at most {most}); replay more tickets with known answers")
    best = min(backed, key=lambda p: p.interval[1])
    return Recommendation(None, f"no threshold keeps the wrong share within {target:.1%} with 95% confidence: the "
                                f"best, {best.threshold:.2f}, has {best.wrong} wrong of {best.answered} "
                                f"(up to {best.interval[1]:.1%}); keep auto where it is or higher, or get more "
                                f"evidence")


def points_from(confidences_and_wrong: Iterable[tuple[float, bool]], thresholds: Sequence[float], *,
                always: Iterable[bool] = ()) -> list[Point]:
    """Points for `thresholds` from (confidence, wrong?) pairs of graded answers that are automatic exactly when
    the threshold is at most their confidence, plus `always` (wrong?) answers automatic at every threshold."""
    pairs = sorted(confidences_and_wrong)
    always = list(always)
    fixed_wrong = sum(always)
    out = []
    position = 0
    total, total_wrong = len(pairs), sum(w for _, w in pairs)
    below = below_wrong = 0
    for threshold in sorted(thresholds):
        while position < total and pairs[position][0] < threshold:
            below += 1
            below_wrong += pairs[position][1]
            position += 1
        out.append(Point(threshold, len(always) + total - below, fixed_wrong + total_wrong - below_wrong))
    return out
