"""A logistic regression whose fitted probability moves in a fixed direction with each feature that has one.

The local engine's calibrator (bot.engine.local.Calibrator) learns P(right | evidence) from a few hundred to a few
thousand examples. A free model of a spline expansion bends wherever its examples happen to: on a small history
a stronger piece of evidence (a closer past ticket, a wider margin) could get a lower confidence than a weaker
one, which no agent would believe and which misorders the most confident answers. Here each feature with a known
direction enters as a sum of cumulative spline bases whose coefficients are bounded to that sign, so the fitted
function of that feature is non-decreasing (+1) or non-increasing (-1) everywhere; a feature marked 0 stays free.
The penalty is on the steps between neighbouring bases, so a feature with little to say stays flat.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler


class MonotoneLogistic(ClassifierMixin, BaseEstimator):
    """Binary logistic regression over a per-feature B-spline basis (`per_feature` columns each, as
    SplineTransformer writes them), shape-constrained by `directions` (one of +1, -1, 0 per feature)."""

    def __init__(self, directions: Sequence[int] = (), per_feature: int = 7, C: float = 1.0) -> None:
        self.directions = directions
        self.per_feature = per_feature
        self.C = C

    def _steps(self, basis: np.ndarray) -> np.ndarray:
        """Each feature's B-splines B_0..B_m as the cumulative sums S_j = B_j + … + B_m for j ≥ 1: within the
        knots the B-splines sum to one, so S_j rises from 0 to 1 as the feature grows past basis j, and a
        function Σ c_j S_j is monotone exactly when its c_j share one sign (the constant S_0 is the intercept)."""
        basis = np.asarray(basis, dtype=float)
        if basis.shape[1] != len(self.directions) * self.per_feature:
            raise ValueError(f"expected {len(self.directions)} features × {self.per_feature} splines, "
                             f"got {basis.shape[1]} columns")
        blocks = basis.reshape(len(basis), len(self.directions), self.per_feature)
        return np.cumsum(blocks[:, :, ::-1], axis=2)[:, :, ::-1][:, :, 1:].reshape(len(basis), -1)

    def fit(self, basis, y, sample_weight=None) -> MonotoneLogistic:
        steps = self._steps(basis)
        y = np.asarray(y, dtype=float)
        if set(np.unique(y)) - {0.0, 1.0}:
            raise ValueError("MonotoneLogistic fits 0/1 targets only")
        weights = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        bound = {1: (0.0, None), -1: (None, 0.0), 0: (None, None)}
        bounds = [(None, None)] + [bound[int(np.sign(d))] for d in self.directions
                                   for _ in range(self.per_feature - 1)]

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            z = theta[0] + steps @ theta[1:]
            value = float(weights @ (np.logaddexp(0.0, z) - y * z)) + 0.5 / self.C * float(theta[1:] @ theta[1:])
            residual = weights * (expit(z) - y)
            return value, np.r_[residual.sum(), steps.T @ residual + theta[1:] / self.C]

        result = minimize(loss, np.zeros(steps.shape[1] + 1), jac=True, method="L-BFGS-B", bounds=bounds,
                          options={"maxiter": 3000})
        self.coef_ = result.x[1:]
        self.intercept_ = result.x[0]
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, basis) -> np.ndarray:
        return self.intercept_ + self._steps(basis) @ self.coef_

    def predict_proba(self, basis) -> np.ndarray:
        p = expit(self.decision_function(basis))
        return np.c_[1.0 - p, p]

    def predict(self, basis) -> np.ndarray:
        return (self.decision_function(basis) > 0).astype(int)


def monotone_spline_model(directions: Sequence[int], *, n_knots: int = 5, degree: int = 3,
                          C: float = 1.0) -> Pipeline:
    """Standardise, expand each feature in cubic B-splines, and fit `MonotoneLogistic` (its step is named
    "logistic": pass `logistic__sample_weight` to `fit`)."""
    return Pipeline([("scale", StandardScaler()), ("splines", SplineTransformer(n_knots=n_knots, degree=degree)),
                     ("logistic", MonotoneLogistic(tuple(directions), per_feature=n_knots + degree - 1, C=C))])
