"""Rating model: determinism, exact reload, monotone constraints, early stopping, time split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.rating import RatingModel, load_model, load_spec, parse_spec, time_split


def synthetic(n: int = 3000, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "equity_ratio": rng.normal(0.25, 0.2, n),
        "ibd_to_sales": rng.gamma(2.0, 0.3, n),
        "roa": rng.normal(0.02, 0.05, n),
        "log_sales": rng.normal(12, 2, n),
        "industry": pd.Categorical(rng.choice(list("CFGI"), n), categories=list("ABCDEFGHIJKLMNOPQRSTU")),
    })
    X.loc[rng.random(n) < 0.05, "roa"] = np.nan
    z = -3.0 - 4.0 * X["equity_ratio"] + 1.2 * X["ibd_to_sales"] - 10 * X["roa"].fillna(0) \
        + 0.5 * (X["industry"] == "F")
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int).to_numpy()
    dates = pd.Series(pd.to_datetime("2015-03-31") + pd.to_timedelta(rng.integers(0, 8 * 365, n), unit="D"))
    return X, y, dates


def small_spec(**over):
    text = """
[model]
name = "test"
n_estimators = 80
early_stopping_rounds = 10
[params]
objective = "binary"
learning_rate = 0.1
num_leaves = 7
min_data_in_leaf = 20
lambda_l2 = 1.0
feature_fraction = 0.8
bagging_fraction = 0.8
bagging_freq = 1
deterministic = true
force_row_wise = true
num_threads = 2
seed = 7
[monotone_constraints]
equity_ratio = -1
ibd_to_sales = 1
roa = -1
industry = 1
"""
    return parse_spec(text, origin="test.toml")


@pytest.fixture(scope="module")
def fitted():
    X, y, _ = synthetic()
    return X, y, RatingModel(small_spec()).fit(X, y)


def test_packaged_spec_loads():
    spec = load_spec()
    assert spec.name == "rating_v1"
    assert spec.params["deterministic"] is True and spec.params["seed"] == 0
    assert spec.monotone_constraints["equity_ratio"] == -1
    assert len(spec.sha256) == 64


def test_bad_spec_rejected_with_key_named():
    with pytest.raises(ValueError, match="equity_ratio"):
        parse_spec("[model]\nn_estimators=5\n[monotone_constraints]\nequity_ratio = 2\n", origin="x.toml")
    with pytest.raises(ValueError, match="n_estimators"):
        parse_spec("[params]\nobjective='binary'\n", origin="x.toml")


def test_fit_twice_is_byte_identical_and_reload_is_exact(fitted):
    X, y, a = fitted
    b = RatingModel(small_spec()).fit(X, y)
    assert a.model_string == b.model_string
    assert a.model_sha256 == b.model_sha256
    pa = a.predict_proba(X)
    np.testing.assert_array_equal(pa, b.predict_proba(X))
    c = load_model(a.model_string)
    np.testing.assert_array_equal(c.predict_proba(X), pa)
    np.testing.assert_array_equal(c.raw_score(X), a.raw_score(X))
    assert pa.shape == (len(X), 2)
    np.testing.assert_allclose(pa.sum(axis=1), 1.0)
    # the model learned something real (independent check with sklearn's AUC)
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(y, pa[:, 1]) > 0.75


def test_different_seed_changes_model(fitted):
    X, y, a = fitted
    s2 = small_spec()
    s2.params["seed"] = 8
    assert a.model_string != RatingModel(s2).fit(X, y).model_string


@pytest.mark.parametrize("feature,direction", [("equity_ratio", -1), ("ibd_to_sales", 1), ("roa", -1)])
def test_monotone_constraints_hold_for_every_row(fitted, feature, direction):
    X, y, m = fitted
    base = m.predict_proba(X)[:, 1]
    for step in (0.01, 0.1, 1.0):
        Xp = X.copy()
        Xp[feature] = Xp[feature] + step
        moved = m.predict_proba(Xp)[:, 1] - base
        ok = np.isnan(X[feature].to_numpy()) | (direction * moved >= -1e-12)
        assert ok.all(), f"{feature} +{step}: PD moved the wrong way"
    # and the constraint binds somewhere (PD actually moves for a large step)
    Xp = X.copy()
    Xp[feature] = Xp[feature] + 1.0
    assert np.abs(m.predict_proba(Xp)[:, 1] - base).max() > 1e-4


def test_categorical_never_constrained_and_unconstrained_features_free():
    X, y, _ = synthetic(800)
    m = RatingModel(small_spec())
    params = m.lgb_params(X)
    assert params["monotone_constraints"] == [-1, 1, -1, 0, 0]


def test_early_stopping_on_time_split():
    X, y, dates = synthetic()
    frame = X.assign(y=y, date=dates)
    train, valid = time_split(frame, "date", 0.2)
    assert pd.to_datetime(train["date"]).max() < pd.to_datetime(valid["date"]).min()
    assert len(valid) >= 0.2 * len(frame) - 1
    cols = list(X.columns)
    spec = small_spec()
    spec.n_estimators = 2000
    spec.params["learning_rate"] = 0.3
    m = RatingModel(spec).fit(train[cols], train["y"], valid[cols], valid["y"])
    assert m.best_iteration_ is not None and m.best_iteration_ < 2000
    assert m.booster_.num_trees() == m.best_iteration_
    again = RatingModel(spec).fit(train[cols], train["y"], valid[cols], valid["y"])
    assert again.model_string == m.model_string


def test_time_split_keeps_a_date_on_one_side():
    frame = pd.DataFrame({"d": ["2020-01-01"] * 5 + ["2021-01-01"] * 5, "v": range(10)})
    tr, va = time_split(frame, "d", 0.3)
    assert list(va["v"]) == [5, 6, 7, 8, 9] and list(tr["v"]) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        time_split(frame.assign(d="2020-01-01"), "d", 0.3)


def test_labels_and_columns_checked():
    X, y, _ = synthetic(200)
    with pytest.raises(ValueError, match="0/1"):
        RatingModel(small_spec()).fit(X, y * 2)
    m = RatingModel(small_spec()).fit(X, y)
    with pytest.raises(ValueError, match="roa"):
        m.predict_proba(X.drop(columns="roa"))


def test_model_text_identical_across_processes(fitted):
    """A fresh interpreter reproduces the same model text (what the registry relies on)."""
    import subprocess
    import sys
    from pathlib import Path

    X, y, a = fitted
    root = Path(__file__).resolve().parent.parent
    code = ("import sys; sys.path[:0] = [{!r}, {!r}]\n"
            "from test_rating import synthetic, small_spec\n"
            "from models.rating import RatingModel\n"
            "X, y, _ = synthetic()\n"
            "print(RatingModel(small_spec()).fit(X, y).model_sha256)\n").format(str(root), str(root / "tests"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == a.model_sha256
