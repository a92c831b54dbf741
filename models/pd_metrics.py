"""Accuracy and calibration of predicted PDs against 0/1 outcomes (research mode).

All PDs are one-year probabilities as fractions in (0, 1); outcomes are 0/1 with 1 = default.

* ``brier``: mean of ``(p - y)^2``;
* ``log_loss``: mean of ``-(y ln p + (1 - y) ln(1 - p))``, ``p`` clipped to [1e-15, 1 - 1e-15];
* ``calibration_intercept`` (calibration in the large): ``a`` in
  ``logit P(y = 1) = a + logit(p)`` (the model's logit as an offset, maximum likelihood);
  0 when the PDs are right on average, > 0 when they underestimate default;
* ``calibration_slope``: ``b`` in ``logit P(y = 1) = a' + b logit(p)`` (maximum likelihood);
  1 when the PDs spread as the outcomes do, < 1 when they are too extreme (overfitting);
* ``mean_pd`` against ``default_rate`` (the observed share of defaults).

Reference: E. W. Steyerberg, *Clinical Prediction Models* (2nd ed., 2019), ch. 15; the
intercept and slope are those of R's ``rms::val.prob`` / statsmodels' GLM with offset.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import brentq, minimize

EPS = 1e-15


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, EPS, 1 - EPS)
    return np.log(q) - np.log1p(-q)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def calibration_intercept(pd_: Any, default: Any) -> float:
    """Calibration in the large: ``a`` solving ``sum(y - sigmoid(a + logit p)) = 0``."""
    p = np.asarray(pd_, dtype="float64")
    y = np.asarray(default, dtype="float64")
    lp = _logit(p)
    if y.min() == y.max():
        return float("nan")
    return float(brentq(lambda a: float(np.sum(y - _sigmoid(a + lp))), -50.0, 50.0, xtol=1e-12))


def calibration_slope(pd_: Any, default: Any) -> tuple[float, float]:
    """``(a', b)``: maximum-likelihood logistic regression of ``y`` on ``logit(p)``."""
    p = np.asarray(pd_, dtype="float64")
    y = np.asarray(default, dtype="float64")
    if y.min() == y.max():
        return float("nan"), float("nan")
    lp = _logit(p)

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] + theta[1] * lp
        # log(1 + e^z) - y z, stable
        ll = np.logaddexp(0.0, z) - y * z
        r = _sigmoid(z) - y
        return float(ll.sum()), np.array([r.sum(), (r * lp).sum()])

    res = minimize(nll, np.array([0.0, 1.0]), jac=True, method="BFGS", options={"gtol": 1e-10, "maxiter": 500})
    return float(res.x[0]), float(res.x[1])


def pd_metrics(pd_: Any, default: Any) -> dict[str, float]:
    """Brier score, log loss, calibration intercept and slope, mean PD and default rate."""
    p = np.asarray(pd_, dtype="float64")
    y = np.asarray(default, dtype="float64")
    if p.shape != y.shape or p.ndim != 1:
        raise ValueError("pd and default must be 1-D of the same length")
    q = np.clip(p, EPS, 1 - EPS)
    _, slope = calibration_slope(p, y)
    return {
        "brier": float(np.mean((p - y) ** 2)),
        "log_loss": float(-np.mean(y * np.log(q) + (1 - y) * np.log1p(-q))),
        "calibration_intercept": calibration_intercept(p, y),
        "calibration_slope": slope,
        "mean_pd": float(p.mean()),
        "default_rate": float(y.mean()),
    }
