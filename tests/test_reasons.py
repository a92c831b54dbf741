"""Reason codes: SHAP additivity, ranking, wording from the feature table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.rating import RatingModel, parse_spec
from models.reasons import explain, format_value, reason_text, top_reasons
from models.ratios import feature_table

SPEC = parse_spec("""
[model]
n_estimators = 60
[params]
learning_rate = 0.1
num_leaves = 7
min_data_in_leaf = 20
deterministic = true
force_row_wise = true
num_threads = 2
seed = 0
[monotone_constraints]
equity_ratio = -1
ibd_to_sales = 1
""", origin="t.toml")


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(2)
    n = 2000
    X = pd.DataFrame({
        "equity_ratio": rng.normal(0.25, 0.2, n),
        "ibd_to_sales": rng.gamma(2.0, 0.4, n),
        "current_ratio": rng.gamma(3.0, 0.5, n),
        "industry": pd.Categorical(rng.choice(list("CFG"), n), categories=list("ABCDEFGHIJKLMNOPQRSTU")),
    })
    z = -3 - 5 * X["equity_ratio"] + 1.5 * X["ibd_to_sales"] - 0.5 * X["current_ratio"]
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return X, RatingModel(SPEC).fit(X, y)


def test_contributions_plus_bias_equal_raw_score(fitted):
    X, m = fitted
    c = m.contributions(X)
    assert list(c.columns) == [*X.columns, "bias"]
    np.testing.assert_allclose(c.sum(axis=1).to_numpy(), m.raw_score(X), rtol=0, atol=1e-9)


def test_top_reason_is_largest_positive_contribution(fitted):
    X, m = fitted
    c = m.contributions(X)
    r = explain(m, X)
    feats = c.drop(columns="bias")
    assert r.groupby("row").size().max() <= 3
    assert (r["contribution"] > 0).all()
    firsts = r[r["rank"] == 1].set_index("row")
    for label, row in firsts.iterrows():
        assert row["feature"] == feats.loc[label].idxmax()
        assert row["contribution"] == pytest.approx(feats.loc[label].max())
    # ranks descend in contribution within each firm
    for _, g in r.groupby("row"):
        assert (np.diff(g.sort_values("rank")["contribution"].to_numpy()) <= 0).all()
    # constrained features get directional wording, unconstrained ones neutral wording
    assert m.monotone_constraints_ == {"equity_ratio": -1, "ibd_to_sales": 1, "current_ratio": 0, "industry": 0}
    texts = r.set_index("feature")["text"]
    assert texts.loc[["equity_ratio"]].str.startswith("Low equity ratio (").all()
    assert texts.loc[["current_ratio"]].str.startswith("Current ratio (").all()
    # rows whose contributions are all <= 0 get no reason
    none = feats.index[(feats <= 0).all(axis=1)]
    assert not set(none) & set(r["row"])


def test_wording_from_feature_table():
    spec = feature_table()
    assert reason_text(spec["equity_ratio"], "equity_ratio", 0.082) == "Low equity ratio (8.2%)"
    assert reason_text(spec["ibd_to_sales"], "ibd_to_sales", 1.94) == "High interest-bearing debt to sales (1.9\u00d7)"
    assert reason_text(spec["receivable_days"], "receivable_days", 120.4) == "Long receivable days (120 days)"
    assert reason_text(spec["negative_equity"], "negative_equity", 1.0) == "Negative equity (balance-sheet insolvency)"
    assert reason_text(spec["industry"], "industry", "F") == "Industry (F)"
    assert reason_text(spec["cash_to_assets"], "cash_to_assets", np.nan) == "Cash to assets not reported"
    assert format_value(np.log1p(1234567.0), "log_amount") == "1,234,567"
    assert reason_text(spec["firm_age"], "firm_age", 48.0, direction=0) == "Firm age (48 years)"
    assert reason_text(spec["negative_equity"], "negative_equity", 0.0) == "Positive equity"


def test_top_reasons_on_hand_made_contributions():
    contrib = pd.DataFrame({"equity_ratio": [0.5, -0.1], "ibd_to_sales": [0.9, -0.2], "roa": [-0.3, -0.4],
                            "current_ratio": [0.1, -0.01], "cash_to_assets": [0.2, 0.0], "bias": [-3.0, -3.0]},
                           index=["f1", "f2"])
    X = pd.DataFrame({"equity_ratio": [0.05, 0.4], "ibd_to_sales": [2.5, 0.1], "roa": [0.01, 0.1],
                      "current_ratio": [0.8, 2.0], "cash_to_assets": [0.01, 0.3]}, index=["f1", "f2"])
    r = top_reasons(contrib, X, top=3)
    neutral = top_reasons(contrib, X, top=3, directions={"equity_ratio": -1})
    assert list(neutral["text"]) == ["Interest-bearing debt to sales (2.5\u00d7)", "Low equity ratio (5.0%)",
                                     "Cash to assets (1.0%)"]
    assert list(r["feature"]) == ["ibd_to_sales", "equity_ratio", "cash_to_assets"]
    assert list(r["text"]) == ["High interest-bearing debt to sales (2.5\u00d7)", "Low equity ratio (5.0%)",
                               "Low cash to assets (1.0%)"]
    assert (r["row"] == "f1").all()


def test_reason_texts_equal_reason_text_for_every_feature_and_direction():
    from models.reasons import reason_text, reason_texts

    values = [np.nan, None, 0.0, 0.05, -1.25, 3.0, 17.5, 1.0, 0.4]
    for name, spec in feature_table().items():
        vals = ["C", "G", np.nan] if spec.unit == "category" else values
        for direction in (None, -1, 0, 1):
            expected = [reason_text(spec, name, v, direction) for v in vals]
            assert reason_texts(spec, name, vals, direction) == expected, (name, direction)


def test_scoring_reasons_json_equals_json_dumps_of_the_lists():
    import json

    from pipelines.scoring import reasons_json

    long = pd.DataFrame({"row": [10, 10, 10, 12, 13, 13], "rank": [1, 2, 3, 1, 1, 2],
                         "feature": ["equity_ratio", "roa", "industry", "roa", "odd", "x"],
                         "text": ["Low equity ratio (8.2%)", 'Say "hi" \\ there', "Interest 1.9\u00d7", "a\nb",
                                  "Low ROA (-3.0%)", "ok"],
                         "contribution": [0.123456789, 0.05, 1e-7, 2.5, 0.3333333333, 0.1]})
    index = pd.Index([9, 10, 11, 12, 13])
    got = reasons_json(long, index)
    for label, text in zip(index, got):
        part = long[long["row"] == label].sort_values("rank")
        expected = [{"feature": f, "text": t, "contribution": round(float(c), 6)}
                    for f, t, c in zip(part["feature"], part["text"], part["contribution"])]
        assert text == json.dumps(expected, ensure_ascii=False)
        assert json.loads(text) == expected
