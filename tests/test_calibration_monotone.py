"""The calibrator's models are monotone in each feature whose meaning fixes a direction (bot.engine.monotone):
stronger evidence for an answer never gets a lower confidence, however the examples of a small history scatter."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from bot.engine.local import FEATURE_DIRECTIONS, FEATURES, Calibrator
from bot.engine.monotone import MonotoneLogistic, monotone_spline_model


def bumpy(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two features: the first raises P(y) overall but with a dip in the middle a free spline would follow; the
    second has no direction at all (P(y) peaks in its middle)."""
    x = rng.uniform(-2, 2, size=(n, 2))
    logit = 1.5 * x[:, 0] - 5.0 * np.exp(-(x[:, 0] - 0.5) ** 2 / 0.3) + 2.0 * (1 - x[:, 1] ** 2)
    return x, (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)


def along(feature: int, other: float = 0.0) -> np.ndarray:
    grid = np.linspace(-1.9, 1.9, 400)
    points = np.full((len(grid), 2), other)
    points[:, feature] = grid
    return points


def test_a_feature_marked_rising_never_lowers_the_probability_where_a_free_model_dips():
    rng = np.random.default_rng(0)
    x, y = bumpy(rng, 600)
    free = monotone_spline_model([0, 0]).fit(x, y).predict_proba(along(0))[:, 1]
    rising = monotone_spline_model([1, 0]).fit(x, y).predict_proba(along(0))[:, 1]
    assert np.diff(free).min() < -1e-3  # the dip is in the data, and a free model follows it
    assert np.diff(rising).min() >= -1e-9
    falling = monotone_spline_model([-1, 0]).fit(x, 1 - y).predict_proba(along(0))[:, 1]
    assert np.diff(falling).max() <= 1e-9


def test_a_free_feature_keeps_its_shape():
    rng = np.random.default_rng(1)
    x, y = bumpy(rng, 2000)
    curve = monotone_spline_model([1, 0]).fit(x, y).predict_proba(along(1, other=1.5))[:, 1]
    middle = len(curve) // 2
    assert curve[middle] > curve[0] + 0.2 and curve[middle] > curve[-1] + 0.2


def test_unconstrained_it_fits_as_well_as_a_logistic_regression_on_the_same_splines():
    rng = np.random.default_rng(2)
    x, y = bumpy(rng, 1500)
    ours = monotone_spline_model([0, 0]).fit(x, y)
    basis = ours[:-1].transform(x)
    theirs = LogisticRegression(C=1.0, max_iter=3000).fit(basis, y)
    assert log_loss(y, ours.predict_proba(x)[:, 1]) <= log_loss(y, theirs.predict_proba(basis)[:, 1]) + 0.01


def test_sample_weights_count_like_repeated_examples():
    rng = np.random.default_rng(3)
    x, y = bumpy(rng, 300)
    weighted = monotone_spline_model([1, 0]).fit(x, y, logistic__sample_weight=np.where(y == 1, 2.0, 1.0))
    repeated = monotone_spline_model([1, 0]).fit(np.r_[x, x[y == 1]], np.r_[y, y[y == 1]])
    # The scaler and knots see the repeated rows as well, so the two agree closely, not exactly.
    assert np.abs(weighted.predict_proba(along(0))[:, 1] - repeated.predict_proba(along(0))[:, 1]).max() < 0.05


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="0/1"):
        MonotoneLogistic((1,), per_feature=2).fit(np.ones((4, 2)), [0, 1, 2, 1])
    with pytest.raises(ValueError, match="columns"):
        MonotoneLogistic((1, 0), per_feature=7).fit(np.ones((4, 7)), [0, 1, 0, 1])


def test_every_feature_of_the_evidence_has_a_direction():
    assert len(FEATURE_DIRECTIONS) == len(FEATURES)
    assert set(FEATURE_DIRECTIONS) <= {-1, 0, 1}


def test_the_calibrator_confidence_rises_with_the_answers_relevance_whatever_else_holds():
    """Fitted on a small, noisy set of examples, the whole confidence (both factors, at any uncovered share) is
    non-decreasing in each feature marked rising."""
    rng = np.random.default_rng(4)
    n = len(FEATURES)
    x = rng.normal(size=(300, n))
    signal = x @ np.array(FEATURE_DIRECTIONS, dtype=float)
    right_model = Calibrator._model().fit(x, (signal + rng.normal(scale=3.0, size=300)) > 0)
    both = np.r_[x, rng.normal(loc=-0.5, size=(300, n))]
    kinds = np.r_[np.zeros(300), np.ones(300)].astype(int)
    uncovered = Calibrator._model([-d for d in FEATURE_DIRECTIONS]).fit(both, kinds)
    calibrator = Calibrator(right_model, uncovered)
    for feature, direction in enumerate(FEATURE_DIRECTIONS):
        if direction == 0:
            continue
        points = np.tile(rng.normal(size=n), (200, 1))
        points[:, feature] = np.linspace(-3, 3, 200)
        for share in (0.2, 0.6):
            steps = np.diff(calibrator.predict(points, uncovered_share=share)) * direction
            assert steps.min() >= -1e-9, FEATURES[feature]
