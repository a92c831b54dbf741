"""Calibration of model scores to one-year PDs, anchored to the long-run default rate.

Method (documented for supervisors):

1. **Platt scaling** on an out-of-sample calibration set (statements the model was
   not trained on): an unpenalised logistic regression of the default flag on the
   raw model score ``s`` (log-odds), ``PD(s) = 1 / (1 + exp(-(a + b*s)))``. This
   fixes the *slope* ``b`` (how fast PD rises with the score); ``b`` must be > 0.
2. **Anchoring** (central tendency): the calibration sample's default rate is one
   period's rate, while Basel CRE36 asks for the long-run average one-year default
   rate. The intercept is shifted by ``delta`` so that the mean PD over the
   calibration sample equals the target long-run rate (by default the average of
   the yearly default rates of the development sample,
   :func:`long_run_default_rate`).
3. **Floor**: ``PD = max(PD, floor)`` with ``floor = 0.0005`` (0.05 %, Basel III
   PD floor for corporate exposures). ``delta`` is solved (Brent's method) with the
   floor applied, so the mean of the *floored* PDs equals the target.

The resulting map is non-decreasing in the score (strictly increasing above the
floor). PDs are one-year probabilities, fractions in [floor, 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from sklearn.linear_model import LogisticRegression

PD_FLOOR = 0.0005


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|


def long_run_default_rate(labels: Any, periods: Any) -> float:
    """Average of the per-period default rates (each period, e.g. year, weighs equally).

    ``labels`` 0/1 default flags, ``periods`` the observation period of each row.
    """
    frame = pd.DataFrame({"y": np.asarray(labels, dtype="float64"), "p": np.asarray(periods)})
    if frame.empty:
        raise ValueError("no observations")
    return float(frame.groupby("p")["y"].mean().mean())


@dataclass
class Calibration:
    """PD = max(floor, sigmoid(intercept + shift + slope * score))."""

    intercept: float
    slope: float
    shift: float
    floor: float
    target_rate: float

    def predict(self, score: Any) -> np.ndarray:
        """One-year PD for each raw score."""
        s = np.asarray(score, dtype="float64")
        if np.isnan(s).any():
            raise ValueError("scores contain NaN")
        return np.maximum(self.floor, _sigmoid(self.intercept + self.shift + self.slope * s))

    def to_dict(self) -> dict[str, float]:
        """Plain numbers, for storing beside the model."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, float]) -> Calibration:
        return cls(**{k: float(d[k]) for k in ("intercept", "slope", "shift", "floor", "target_rate")})


def fit_calibration(score: Any, y: Any, target_rate: float | None = None, floor: float = PD_FLOOR) -> Calibration:
    """Platt-scale ``score`` on the calibration sample, then anchor the mean PD.

    ``target_rate`` is the long-run average one-year default rate (fraction);
    ``None`` uses the calibration sample's own default rate. After fitting, the mean
    of :meth:`Calibration.predict` over ``score`` equals ``target_rate`` (to solver
    tolerance, ~1e-12) and every PD is >= ``floor``.
    """
    s = np.asarray(score, dtype="float64")
    yv = np.asarray(y, dtype="float64")
    if s.shape != yv.shape or s.ndim != 1:
        raise ValueError("score and y must be 1-D of the same length")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    if not np.isin(yv, (0.0, 1.0)).all() or yv.min() == yv.max():
        raise ValueError("y must be 0/1 with both defaults and non-defaults")
    target = float(yv.mean()) if target_rate is None else float(target_rate)
    if not floor < target < 1.0:
        raise ValueError(f"target rate {target} must lie between the floor {floor} and 1")
    lr = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000, tol=1e-10)
    lr.fit(s.reshape(-1, 1), yv.astype(int))
    a, b = float(lr.intercept_[0]), float(lr.coef_[0, 0])
    if b <= 0:
        raise ValueError(f"calibration slope {b:.4g} <= 0: the score does not rank defaults")

    def gap(delta: float) -> float:
        return float(np.maximum(floor, _sigmoid(a + delta + b * s)).mean() - target)

    span = abs(a) + b * float(np.abs(s).max()) + 50.0
    lo, hi = -span, span
    shift = brentq(gap, lo, hi, xtol=1e-14, rtol=1e-14, maxiter=500)
    return Calibration(intercept=a, slope=b, shift=float(shift), floor=floor, target_rate=target)
