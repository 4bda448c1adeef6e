"""Choosing the auto threshold with error bars (bot.policy.thresholds): the Wilson interval, the grid, and the
rule simulate and /escalation advise share."""

from __future__ import annotations

import pytest

from bot.policy.thresholds import MIN_ANSWERS, Point, grid, points_from, recommend, wilson_interval


@pytest.mark.parametrize(("wrong", "answered", "low", "high"), [
    (0, 10, 0.0, 0.2775),      # nothing wrong in 10 is still up to 28% wrong
    (1, 100, 0.0018, 0.0545),
    (0, 380, 0.0, 0.0100),     # about 380 right answers and none wrong for a 1% bound
    (50, 100, 0.4038, 0.5962),
])
def test_the_wilson_interval_matches_known_values(wrong: int, answered: int, low: float, high: float) -> None:
    assert wilson_interval(wrong, answered) == pytest.approx((low, high), abs=1e-4)


def test_no_answers_say_nothing_about_the_rate() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0) and Point(0.9, 0, 0).share is None


def test_the_grid_runs_in_hundredths_from_the_draft_threshold_to_one() -> None:
    assert grid(0.5)[:3] == [0.5, 0.51, 0.52] and grid(0.5)[-1] == 1.0 and len(grid(0.5)) == 51
    assert grid(0.905)[0] == 0.91 and grid(1.0) == [1.0]


def test_points_count_what_each_threshold_would_answer() -> None:
    points = points_from([(0.95, False), (0.8, True), (0.6, False)], [0.5, 0.8, 0.81, 1.0], always=[True])
    assert [(p.threshold, p.answered, p.wrong) for p in points] == [
        (0.5, 4, 2), (0.8, 3, 2), (0.81, 2, 1), (1.0, 1, 1)]


def test_the_lowest_threshold_whose_upper_bound_meets_the_target_is_chosen() -> None:
    points = [Point(0.6, 400, 12), Point(0.7, 300, 1), Point(0.8, 200, 0)]
    chosen = recommend(points, target=0.02)  # 1 of 300 is at most 1.9% wrong; 12 of 400 up to 5.2%
    assert chosen.point == Point(0.7, 300, 1) and "1 of 300" in chosen.reason
    assert recommend(points, target=0.06).point.threshold == 0.6
    assert recommend(points, target=0.015).point is None  # 0 of 200 is still up to 1.9%


def test_too_little_evidence_recommends_nothing_and_says_so() -> None:
    few = [Point(0.6, MIN_ANSWERS - 1, 0), Point(0.9, 5, 0)]
    chosen = recommend(few, target=0.5)
    assert chosen.point is None and "too little evidence" in chosen.reason and str(MIN_ANSWERS) in chosen.reason
    none_sure = recommend([Point(0.9, 100, 3)], target=0.01)
    assert none_sure.point is None and "no threshold keeps the wrong share within 1.0%" in none_sure.reason
