"""Challenger WoE scorecard: hand-computed WoE, missing bin, fit/predict interface."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from models.challenger import MISSING, WoEScorecard, fit_bins


def test_woe_hand_computed():
    # 2 quantile bins split at the median 2.5: low bin {1,2}, high bin {3,4}, missing {NaN, NaN}
    x = pd.Series([1.0, 2.0, 3.0, 4.0, np.nan, np.nan], name="x")
    y = np.array([0, 0, 0, 1, 1, 0])
    fb = fit_bins(x, y, n_bins=2, alpha=0.5)
    np.testing.assert_allclose(fb.edges, [2.5])
    G, B, k, a = 4, 2, 3, 0.5
    def woe(good, bad):
        return math.log((good + a) / (G + a * k)) - math.log((bad + a) / (B + a * k))
    assert fb.woe[0] == pytest.approx(woe(2, 0))  # ln(2.5/5.5) - ln(0.5/3.5)
    assert fb.woe[0] == pytest.approx(math.log(2.5 / 5.5) - math.log(0.5 / 3.5))
    assert fb.woe[1] == pytest.approx(woe(1, 1))
    assert fb.woe[MISSING] == pytest.approx(woe(1, 1))
    # the edge value itself belongs to the lower bin; values map to their bin's WoE
    t = fb.transform(pd.Series([2.5, 2.6, np.nan, -100.0, 100.0]))
    np.testing.assert_allclose(t, [fb.woe[0], fb.woe[1], fb.woe[MISSING], fb.woe[0], fb.woe[1]])


def test_empty_missing_bin_and_unseen_category_are_neutral():
    x = pd.Series([1.0, 2.0, 3.0, 4.0], name="x")
    fb = fit_bins(x, np.array([0, 1, 0, 1]), n_bins=2)
    assert fb.woe[MISSING] == 0.0
    c = pd.Series(pd.Categorical(["C", "C", "F", "F"]), name="industry")
    fc = fit_bins(c, np.array([0, 0, 1, 0]), n_bins=2)
    assert fc.kind == "categorical"
    assert fc.woe["C"] > 0 > fc.woe["F"]  # C is safer (no defaults): positive WoE
    np.testing.assert_allclose(fc.transform(pd.Series(["G", None])), [0.0, 0.0])


def test_scorecard_ranks_risk():
    rng = np.random.default_rng(5)
    n = 4000
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "noise": rng.normal(size=n)})
    X.loc[rng.random(n) < 0.1, "a"] = np.nan
    z = -2.5 + 1.5 * X["a"].fillna(2.0) - 1.0 * X["b"] ** 2
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    m = WoEScorecard(n_bins=10).fit(X, y)
    p = m.predict_proba(X)
    assert p.shape == (n, 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-m.raw_score(X))))
    # WoE captures the non-linear (U-shaped) effect of b that a plain logit on b cannot
    assert roc_auc_score(y, p[:, 1]) > 0.75
    with pytest.raises(ValueError, match="both"):
        WoEScorecard().fit(X, np.zeros(n))
