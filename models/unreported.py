"""Unreported optional items: is being unreported evidence of default, and PDs that do not move when it is not.

Principle (docs/design.md, rating model): a statement item a bank may leave out (an
*optional model item*, e.g. ``interest_expense``) is either

* **predictive when missing**: in the development sample, statements without the item
  default significantly more (or less) often than statements with it. Fisher's exact test
  on the 2 x 2 table unreported x default, two-sided, ``p < FISHER_ALPHA``. The model may
  then use "not reported" as information (LightGBM's missing-value branch), and the
  validation report shows the evidence; or
* **not predictive**: being unreported carries no evidence. A firm's PD must then not move
  in one direction because the item is missing. LightGBM's missing branch is learnt from
  the few statements that happen to lack the item and can push every such firm one way
  (the issue: +30-80 % PD without ``interest_expense``). :class:`UnreportedAdjustment`
  corrects the log-odds score of a statement with such an item missing by an offset
  learnt on the development sample: the statements that report the item are scored with
  and without it (its features set to NaN); within bands of the score without it the
  offset makes the mean probability without the item equal to the mean probability with
  it. By the law of total expectation, a firm whose item is missing at random then gets
  the expected probability of the firms that look like it (same score without the item)
  and report it: single firms may move either way, the mean does not.

Pure computation (numpy, pandas, scipy); scores are log-odds of default, probabilities
fractions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: two-sided Fisher p-value below which being unreported counts as predictive of default
FISHER_ALPHA = 0.001
#: bands (quantiles of the score without the item) with one offset each
N_BANDS = 10
#: statements reporting the item needed to learn its offsets (else no adjustment for it)
MIN_ROWS = 200
#: at most this many development statements (a seeded sample) are scored to learn the offsets
MAX_ROWS = 200_000


def fisher_evidence(unreported: Any, label: Any) -> dict[str, Any]:
    """Fisher's exact test of unreported x default (1 = default) over the development sample.

    Returns ``rows``, ``rows_missing``, ``defaults_missing``, ``default_rate_missing`` and
    ``default_rate_reported`` (fractions; None without rows), ``odds_ratio`` (odds of default
    unreported / reported; None when infinite or undefined), ``p_value`` (two-sided) and ``predictive``
    (``p_value < FISHER_ALPHA``).
    """
    from scipy.stats import fisher_exact

    m = np.asarray(unreported, dtype=bool)
    y = np.asarray(label, dtype="float64") > 0.5
    a, b = int((m & y).sum()), int((m & ~y).sum())
    c, d = int((~m & y).sum()), int((~m & ~y).sum())
    if (a + b) and (c + d):
        odds, p = fisher_exact([[a, b], [c, d]], alternative="two-sided")
        odds, p = float(odds), float(p)
    else:
        odds, p = float("nan"), 1.0
    return {"rows": len(m), "rows_missing": a + b, "defaults_missing": a,
            "default_rate_missing": a / (a + b) if a + b else None,
            "default_rate_reported": c / (c + d) if c + d else None,
            "odds_ratio": odds if np.isfinite(odds) else None, "p_value": p, "predictive": bool(p < FISHER_ALPHA)}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _offset(s_without: np.ndarray, p_with: float, prob: Callable[[np.ndarray], np.ndarray] = _sigmoid) -> float:
    """Score offset ``d`` with ``mean(prob(s_without + d)) = p_with`` (bisection; ``prob`` increasing)."""
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if prob(s_without + mid).mean() < p_with:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass
class UnreportedAdjustment:
    """Per non-predictive optional item: its features, score bands and the log-odds offset of each band.

    ``items``: item -> the model features it feeds; ``edges``: item -> the ``N_BANDS - 1``
    interior band edges (log-odds score without the item); ``offsets``: item -> one offset
    per band (log-odds). Empty = no adjustment (scores unchanged).
    """

    items: dict[str, list[str]] = field(default_factory=dict)
    edges: dict[str, list[float]] = field(default_factory=dict)
    offsets: dict[str, list[float]] = field(default_factory=dict)

    def order(self) -> list[str]:
        """Items in the order they are applied: most features first, then by name."""
        return sorted(self.items, key=lambda i: (-len(self.items[i]), i))

    def adjust(self, raw: np.ndarray, X: pd.DataFrame, unreported: pd.DataFrame) -> np.ndarray:
        """Adjusted log-odds scores of the rows ``X`` (their model scores ``raw``).

        ``unreported``: per item a boolean column (True = the statement left it out). A row
        is adjusted for an item it left out whose features are all NaN in ``X`` and not yet
        covered by another item adjusted for the same row (``operating_profit`` and
        ``ordinary_profit`` both feed interest coverage: one offset, not two). The band is
        the row's unadjusted score. Vectorised over rows.
        """
        raw = np.asarray(raw, dtype="float64")
        offsets = self.feature_offsets(raw, X, unreported, list(X.columns))
        return raw + offsets.sum(axis=1) if offsets.size else raw.copy()

    def feature_offsets(self, raw: np.ndarray, X: pd.DataFrame, unreported: pd.DataFrame,
                        names: list[str]) -> np.ndarray:
        """The offsets of :meth:`adjust` as a ``(rows, len(names))`` matrix (log-odds).

        Each item's offset sits in the column of its first feature, so that a row's
        contributions (Tree SHAP plus these) still sum to its adjusted score and the reason
        codes explain the corrected score.
        """
        raw = np.asarray(raw, dtype="float64")
        out = np.zeros((len(raw), len(names)))
        if not self.items or not len(raw):
            return out
        col = {n: j for j, n in enumerate(names)}
        covered: dict[str, np.ndarray] = {}
        for item in self.order():
            feats = self.items[item]
            if item not in unreported.columns or feats[0] not in col:
                continue
            mask = unreported[item].to_numpy(dtype=bool).copy()
            for f in feats:
                mask &= X[f].isna().to_numpy()
                if f in covered:
                    mask &= ~covered[f]
            if not mask.any():
                continue
            band = np.searchsorted(np.asarray(self.edges[item]), raw[mask], side="right")
            out[mask, col[feats[0]]] += np.asarray(self.offsets[item])[band]
            for f in feats:
                covered[f] = covered.get(f, np.zeros(len(raw), dtype=bool)) | mask
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"items": {k: list(v) for k, v in self.items.items()},
                "edges": {k: [float(x) for x in v] for k, v in self.edges.items()},
                "offsets": {k: [float(x) for x in v] for k, v in self.offsets.items()}}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any] | None) -> UnreportedAdjustment:
        doc = doc or {}
        return cls(items={k: list(v) for k, v in (doc.get("items") or {}).items()},
                   edges={k: [float(x) for x in v] for k, v in (doc.get("edges") or {}).items()},
                   offsets={k: [float(x) for x in v] for k, v in (doc.get("offsets") or {}).items()})

    @property
    def sha256(self) -> str:
        """sha256 of the canonical JSON (identifies the adjustment in the model version)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode("utf-8")).hexdigest()


def fit_adjustment(score: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame, unreported: pd.DataFrame,
                   items: Mapping[str, list[str]], seed: int = 0,
                   prob: Callable[[np.ndarray], np.ndarray] = _sigmoid, n_bands: int = N_BANDS,
                   min_rows: int = MIN_ROWS, max_rows: int = MAX_ROWS) -> UnreportedAdjustment:
    """Learn the offsets of ``items`` (the non-predictive ones) on development rows ``X``.

    ``score``: the model's log-odds score of a feature frame. For each item, the rows that
    report it (at most ``max_rows``, a sample seeded by ``seed``) are scored as they are and
    with its features set to NaN; bands are the deciles of the score without it; per band
    the offset equates the mean probabilities ``prob(score)`` with and without it
    (:func:`_offset`; ``prob``: the calibration's score -> PD, so that the mean *PD* is kept,
    default the logistic function). Deterministic for a seed.
    """
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(X), size=max_rows, replace=False)) if len(X) > max_rows else np.arange(len(X))
    Xs = X.iloc[keep]
    us = unreported.iloc[keep]
    full = np.asarray(score(Xs), dtype="float64")
    adj = UnreportedAdjustment()
    for item in sorted(items):
        feats = list(items[item])
        rep = ~us[item].to_numpy(dtype=bool) & Xs[feats].notna().any(axis=1).to_numpy()
        if rep.sum() < min_rows:
            continue
        blank = Xs.loc[rep].copy()
        blank[feats] = np.nan
        without = np.asarray(score(blank), dtype="float64")
        with_ = full[rep]
        edges = np.quantile(without, np.linspace(0, 1, n_bands + 1)[1:-1])
        band = np.searchsorted(edges, without, side="right")
        offsets = [(_offset(without[band == b], float(prob(with_[band == b]).mean()), prob)
                    if (band == b).any() else 0.0) for b in range(n_bands)]
        adj.items[item] = feats
        adj.edges[item] = [float(e) for e in edges]
        adj.offsets[item] = [float(o) for o in offsets]
    return adj
