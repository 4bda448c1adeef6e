"""The calibrated confidence is the lower bound of what its covered examples support (bot.engine.local
CALIBRATION_Z): an estimate backed by a few dozen examples is not trusted as one backed by thousands."""

from __future__ import annotations

import numpy as np

from bot.engine.local import _GRID, _lower_bounds


def bound(seen: np.ndarray, estimate: float) -> float:
    return float(np.interp(estimate, _GRID, _lower_bounds(seen)))


def test_few_examples_pull_a_high_estimate_under_the_automatic_threshold():
    few = np.r_[np.full(30, 0.95), np.linspace(0.1, 0.8, 200)]
    assert bound(few, 0.95) < 0.9


def test_thousands_of_examples_leave_it_nearly_as_it_was():
    many = np.r_[np.full(3000, 0.95), np.linspace(0.1, 0.8, 200)]
    assert 0.935 < bound(many, 0.95) < 0.95


def test_never_above_the_estimate_and_never_lower_for_a_higher_one():
    rng = np.random.default_rng(3)
    bounds = _lower_bounds(rng.beta(5, 1, 500))
    assert (bounds <= _GRID + 1e-12).all()
    assert (np.diff(bounds) >= 0).all()
    assert bounds[0] == 0.0


def test_the_covered_factor_is_bounded_by_its_examples_too():
    """P(covered | evidence) from a model fitted on a few hundred examples (a small history) is lowered where few
    examples back it, so the same evidence gives a lower confidence than the model alone says; the confidence
    never rises above the unbounded one."""
    from sklearn.linear_model import LogisticRegression

    from bot.engine.local import Calibrator

    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 2))
    right = LogisticRegression().fit(x, (x[:, 0] + rng.normal(scale=0.3, size=300)) > -1.0)
    uncovered = LogisticRegression().fit(x, (x[:, 1] + rng.normal(scale=0.3, size=300)) > 0.5)
    seen = right.predict_proba(x)[:, 1]
    seen_covered = 1 - uncovered.predict_proba(x)[:, 1]
    queries = rng.normal(size=(200, 2))
    unbounded = Calibrator(right, uncovered, seen).predict(queries)
    bounded = Calibrator(right, uncovered, seen, seen_covered).predict(queries)
    assert (bounded <= unbounded + 1e-9).all()
    assert (unbounded - bounded).max() > 0.01
    # Ordered as before wherever the bound is not flat.
    assert np.corrcoef(bounded, unbounded)[0, 1] > 0.95
