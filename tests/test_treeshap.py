"""models.treeshap equals LightGBM's own pred_contrib (the reference implementation)."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from models import treeshap


def _data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "a": rng.standard_normal(n),
        "b": np.where(rng.random(n) < 0.2, np.nan, rng.standard_normal(n)),  # NaN-missing feature
        "c": np.where(rng.random(n) < 0.3, 0.0, rng.exponential(size=n)),  # many zeros
        "d": rng.integers(0, 5, n).astype(float),
        "k": pd.Categorical(rng.choice(list("ABCDEFG"), n)),
    })
    logit = X["a"] - np.nan_to_num(X["b"], nan=1.5) + 0.8 * (X["c"] == 0) + 0.3 * X["d"] \
        + X["k"].map({"A": 1.0, "B": -1.0, "C": 0.5}).astype(float).fillna(0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


@pytest.mark.parametrize("zero_as_missing", [False, True])
def test_equals_lightgbm_pred_contrib(zero_as_missing):
    X, y = _data(6000, 1)
    params = {"objective": "binary", "num_leaves": 15, "min_data_in_leaf": 20, "verbosity": -1, "seed": 0,
              "deterministic": True, "num_threads": 1, "zero_as_missing": zero_as_missing, "max_cat_to_onehot": 2,
              "min_data_per_group": 5, "cat_smooth": 1.0}
    booster = lgb.train(params, lgb.Dataset(X, label=y), num_boost_round=40)
    dump = booster.dump_model()["tree_info"]
    kinds = set()

    def walk(n):
        if "split_feature" in n:
            kinds.add((n["decision_type"], n["missing_type"], bool(n["default_left"])))
            walk(n["left_child"])
            walk(n["right_child"])

    for t in dump:
        walk(t["tree_structure"])
    assert any(k[0] == "==" for k in kinds)  # categorical splits are exercised
    assert any(k[1] == ("Zero" if zero_as_missing else "NaN") for k in kinds)  # missing-value routing too
    Xt, _ = _data(3000, 2)  # fresh rows, including an unseen category and NaN in every column
    Xt["k"] = Xt["k"].cat.add_categories(["Z"])
    Xt.loc[:9, "k"] = "Z"
    Xt.loc[10:19, ["a", "c", "d"]] = np.nan
    Xt.loc[20:29, ["a", "b", "d"]] = 0.0
    ref = booster.predict(Xt, pred_contrib=True)
    got = treeshap.contributions(booster, Xt)
    assert got.fallback_rows == 0  # every decision reproduced; the safety net was not needed
    assert got.patterns < 40 * len(Xt) / 4  # reuse did happen
    np.testing.assert_allclose(got.values, ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.values.sum(axis=1), booster.predict(Xt, raw_score=True), rtol=0, atol=1e-12)


def test_safety_net_catches_a_wrong_decision(monkeypatch):
    X, y = _data(2000, 3)
    booster = lgb.train({"objective": "binary", "num_leaves": 7, "verbosity": -1, "num_threads": 1},
                        lgb.Dataset(X, label=y), num_boost_round=10)
    monkeypatch.setattr(treeshap, "_goes_left", lambda node, cols, rows, out: out.fill(1))  # every row goes left
    got = treeshap.contributions(booster, X)
    raw = booster.predict(X, raw_score=True)
    ref = booster.predict(X, pred_contrib=True)
    # the net checks the sum (a wrong leaf), so afterwards every row sums to its raw score ...
    assert got.fallback_rows > len(X) / 2
    np.testing.assert_allclose(got.values.sum(axis=1), raw, rtol=0, atol=1e-9)
    # ... and the rows it recomputed are LightGBM's own values
    redone = ~np.isclose(got.values, ref, rtol=0, atol=1e-12).all(axis=1)
    assert redone.sum() < len(X) - got.fallback_rows  # rows it could not catch: same leaves, other off-path routes


def test_raw_score_from_the_caller_is_the_check():
    X, y = _data(1500, 4)
    booster = lgb.train({"objective": "binary", "num_leaves": 15, "verbosity": -1, "num_threads": 1},
                        lgb.Dataset(X, label=y), num_boost_round=15)
    raw = booster.predict(X, raw_score=True)
    own = treeshap.contributions(booster, X)
    given = treeshap.contributions(booster, X, raw=raw)
    assert np.array_equal(own.values, given.values) and given.fallback_rows == 0
    # a raw score the contributions do not sum to sends those rows to LightGBM's pred_contrib
    off = raw.copy()
    off[:7] += 1.0
    assert treeshap.contributions(booster, X, raw=off).fallback_rows == 7
    with pytest.raises(ValueError, match="raw scores"):
        treeshap.contributions(booster, X, raw=raw[:-1])


def test_raw_score_may_be_predicted_meanwhile_with_the_same_booster():
    from concurrent.futures import ThreadPoolExecutor

    X, y = _data(3000, 6)
    booster = lgb.train({"objective": "binary", "num_leaves": 15, "verbosity": -1, "num_threads": 1},
                        lgb.Dataset(X, label=y), num_boost_round=30)
    ref = booster.predict(X, pred_contrib=True)
    raw = booster.predict(X, raw_score=True)
    with ThreadPoolExecutor(1) as pool:  # the caller's full-range prediction runs during the per-tree ones
        pending = pool.submit(lambda: [booster.predict(X, raw_score=True) for _ in range(5)][-1])
        got = treeshap.contributions(booster, X, raw=pending)
    assert got.fallback_rows == 0
    assert np.array_equal(pending.result(), raw)
    np.testing.assert_allclose(got.values, ref, rtol=0, atol=1e-12)
