"""Challenger: logistic scorecard on weight-of-evidence (WoE) encoded ratio bins.

Binning per feature, learnt on the training data:

* numeric feature: quantile bins (``n_bins`` quantiles of the non-missing training
  values; duplicate edges merged), plus a separate bin for missing values;
* categorical / text feature: one bin per category seen in training, plus missing.

Weight of evidence of bin *i* (Siddiqi's convention, positive = safer than average),
with additive smoothing ``alpha`` on the counts and *k* the number of bins of the
feature (including the missing bin)::

    WoE_i = ln( (good_i + alpha) / (G + alpha*k) ) - ln( (bad_i + alpha) / (B + alpha*k) )

``G``/``B`` are the total non-default/default counts. A bin with no training rows
(e.g. no missing values in training, or a category unseen in training) gets WoE 0,
i.e. no evidence either way. A scikit-learn ``LogisticRegression`` is then fitted on
the WoE-encoded features. Interface as :class:`models.rating.RatingModel`:
``fit(X, y, X_valid=None, y_valid=None)``, ``predict_proba``, ``raw_score``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

MISSING = "__missing__"


@dataclass
class FeatureBins:
    """Binning and WoE of one feature."""

    name: str
    kind: str  # "numeric" or "categorical"
    edges: np.ndarray | None  # inner cut points for numeric features (bin i: edges[i-1] < x <= edges[i])
    categories: list[Any] | None
    woe: dict[Any, float]  # bin label -> WoE; bin labels are ints for numeric, categories, or MISSING

    def bin_labels(self, values: pd.Series) -> np.ndarray:
        """Bin label of each value (numeric: bin index; categorical: the category; MISSING)."""
        if self.kind == "numeric":
            v = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
            assert self.edges is not None, "a numeric bin has edges"
            idx = np.searchsorted(self.edges, v, side="left").astype(object)
            idx[np.isnan(v)] = MISSING
            return idx
        v = values.astype(object).to_numpy()
        return np.array([MISSING if pd.isna(x) else x for x in v], dtype=object)

    def transform(self, values: pd.Series) -> np.ndarray:
        """WoE of each value."""
        if self.kind == "numeric":
            v = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
            assert self.edges is not None, "a numeric bin has edges"
            table = np.array([self.woe.get(i, 0.0) for i in range(len(self.edges) + 1)])
            out = table[np.searchsorted(self.edges, v, side="left").clip(0, len(self.edges))]
            return np.where(np.isnan(v), self.woe.get(MISSING, 0.0), out)
        labels = self.bin_labels(values)
        return np.array([self.woe.get(b, 0.0) for b in labels], dtype="float64")


def woe_table(labels: np.ndarray, y: np.ndarray, all_bins: list[Any], alpha: float) -> dict[Any, float]:
    """Smoothed WoE per bin label (see module docstring); empty bins get 0."""
    y = np.asarray(y, dtype="float64")
    G = float((y == 0).sum())
    B = float((y == 1).sum())
    k = len(all_bins)
    out = {}
    for b in all_bins:
        mask = labels == b
        n = int(mask.sum())
        if n == 0:
            out[b] = 0.0
            continue
        bad = float(y[mask].sum())
        good = n - bad
        out[b] = float(np.log((good + alpha) / (G + alpha * k)) - np.log((bad + alpha) / (B + alpha * k)))
    return out


def fit_bins(values: pd.Series, y: np.ndarray, n_bins: int = 10, alpha: float = 0.5) -> FeatureBins:
    """Learn quantile bins (or category bins) and their WoE for one feature."""
    name = str(values.name)
    is_cat = isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object \
        or pd.api.types.is_string_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)
    if is_cat:
        cats = sorted({x for x in values.astype(object) if not pd.isna(x)}, key=str)
        fb = FeatureBins(name, "categorical", None, cats, {})
        all_bins = [*cats, MISSING]
    else:
        v = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
        finite = v[~np.isnan(v)]
        if finite.size:
            qs = np.quantile(finite, np.linspace(0, 1, n_bins + 1)[1:-1], method="linear")
            edges = np.unique(qs)
        else:
            edges = np.array([], dtype="float64")
        fb = FeatureBins(name, "numeric", edges, None, {})
        all_bins = [*range(len(edges) + 1), MISSING]
    fb.woe = woe_table(fb.bin_labels(values), np.asarray(y), all_bins, alpha)
    return fb


class WoEScorecard:
    """Logistic regression on WoE-encoded quantile bins (the challenger model)."""

    classes_ = np.array([0, 1])

    def __init__(self, n_bins: int = 10, alpha: float = 0.5, C: float = 1.0, max_iter: int = 2000) -> None:
        self.n_bins = n_bins
        self.alpha = alpha
        self.C = C
        self.max_iter = max_iter
        self.bins_: dict[str, FeatureBins] = {}
        self.logit_: LogisticRegression | None = None

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """WoE-encoded design matrix (columns in training order)."""
        missing = [c for c in self.bins_ if c not in X.columns]
        if missing:
            raise ValueError(f"features missing for scoring: {', '.join(missing)}")
        return np.column_stack([self.bins_[c].transform(X[c]) for c in self.bins_])

    def fit(self, X: pd.DataFrame, y: Any, X_valid: pd.DataFrame | None = None,
            y_valid: Any = None) -> WoEScorecard:
        """Fit bins, WoE and the logistic regression; the validation slice is unused."""
        yv = np.asarray(y, dtype="float64")
        if yv.shape != (len(X),) or not np.isin(yv, (0.0, 1.0)).all():
            raise ValueError("y must hold one 0/1 label (1 = default) per row of X")
        if yv.min() == yv.max():
            raise ValueError("y must contain both defaults and non-defaults")
        self.bins_ = {str(c): fit_bins(X[c].rename(str(c)), yv, self.n_bins, self.alpha) for c in X.columns}
        self.logit_ = LogisticRegression(C=self.C, max_iter=self.max_iter)
        self.logit_.fit(self.transform(X), yv.astype(int))
        return self

    def raw_score(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds of default per row."""
        if self.logit_ is None:
            raise RuntimeError("model is not fitted")
        return self.logit_.decision_function(self.transform(X)).astype("float64")

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """``(n, 2)`` array ``[1 - p, p]``, ``p`` the uncalibrated probability of default."""
        p = 1.0 / (1.0 + np.exp(-self.raw_score(X)))
        return np.column_stack([1.0 - p, p])
