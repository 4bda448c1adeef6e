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
