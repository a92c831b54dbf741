"""Reason codes: SHAP additivity, ranking, wording from the feature table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.rating import RatingModel, parse_spec
from models.ratios import feature_table
from models.reasons import explain, format_value, reason_text, top_reasons

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
    for label, text in zip(index, got, strict=False):
        part = long[long["row"] == label].sort_values("rank")
        expected = [{"feature": f, "text": t, "contribution": round(float(c), 6)}
                    for f, t, c in zip(part["feature"], part["text"], part["contribution"], strict=False)]
        assert text == json.dumps(expected, ensure_ascii=False)
        assert json.loads(text) == expected


# -- the bulk path (Scorer.score) against a slow, straightforward reference ---------------

ODD = "Odd \"quoted\" \\ back\tslash\x01 \u00d7"  # needs JSON escaping, control and non-ASCII characters


def _edge_features() -> dict:
    from dataclasses import replace

    table = dict(feature_table())
    table["current_ratio"] = replace(table["current_ratio"], label=ODD, low=ODD + " low", high=ODD + " high")
    return table


@pytest.fixture(scope="module")
def edge_model():
    """A small model over every unit of the feature table, with NaN values and odd categories."""
    rng = np.random.default_rng(5)
    n = 3000
    cats = ["A", 'B "q"', "C\\d", "E\u00d7", "F\ng"]
    X = pd.DataFrame({
        "equity_ratio": np.where(rng.random(n) < 0.1, np.nan, rng.normal(0.25, 0.2, n)),  # ratio
        "ibd_to_sales": rng.gamma(2.0, 0.4, n),  # times
        "receivable_days": np.where(rng.random(n) < 0.1, np.nan, rng.gamma(4.0, 15.0, n)),  # days
        "firm_age": np.round(rng.uniform(0, 60, n) * 2) / 2,  # years, with .5 ties
        "log_sales": np.log1p(rng.lognormal(12, 2, n)),  # log_amount
        "negative_equity": np.where(rng.random(n) < 0.05, np.nan, (rng.random(n) < 0.2).astype(float)),  # flag
        "current_ratio": np.round(rng.gamma(3.0, 0.5, n), 3),  # odd wording, ratios on .05% ties
        "industry": pd.Categorical(rng.choice(cats, n), categories=[*cats, "unused"]),
    })
    X.loc[X.index[:40], "industry"] = np.nan
    z = (-3 - 5 * np.nan_to_num(X["equity_ratio"], nan=0.0) + 1.5 * X["ibd_to_sales"]
         + 2 * X["negative_equity"].fillna(1.0) - 0.02 * X["firm_age"] + 0.005 * X["receivable_days"].fillna(200))
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return X, RatingModel(SPEC).fit(X, y)


def _reference(model, X: pd.DataFrame, features: dict) -> list[list[dict]]:
    """Reasons the slow way: LightGBM's pred_contrib, a full stable sort, reason_text per value."""
    contrib = model.booster_.predict(X, pred_contrib=True)[:, :-1]
    directions = model.monotone_constraints_
    out = []
    for i in range(len(X)):
        order = np.argsort(-contrib[i], kind="stable")[:3]
        row = []
        for j in order:
            if contrib[i, j] <= 0:
                break
            name = X.columns[j]
            value = X[name].iloc[i]
            text = reason_text(features.get(name), name, np.nan if pd.isna(value) else value, directions[name])
            row.append({"feature": name, "text": text, "contribution": round(float(contrib[i, j]), 6)})
        out.append(row)
    return out


def test_bulk_reasons_equal_the_slow_reference(edge_model):
    import json

    from models.reasons import explain_arrays, reasons_as_json, reasons_as_lists

    X, m = edge_model
    features = _edge_features()
    top = explain_arrays(m, X, top=3, features=features, raw=m.raw_score(X))
    lists = reasons_as_lists(top)
    texts = list(reasons_as_json(top))
    expected = _reference(m, X, features)
    assert len(texts) == len(expected) == len(X)
    # contributions agree with LightGBM to 1e-12, so only a rounding tie could differ; none here
    assert lists == expected
    assert texts == [json.dumps(e, ensure_ascii=False) for e in expected]
    # the edge cases were exercised
    flat = [r for row in expected for r in row]
    assert any(not row for row in expected)  # a firm with no PD-raising feature: "[]"
    assert any(r["text"].endswith(" not reported") for r in flat)
    assert any(r["feature"] == "industry" and ('"' in r["text"] or "\\" in r["text"] or "\n" in r["text"])
               for r in flat)
    assert any(r["text"].startswith(ODD) for r in flat)
    assert {r["feature"] for r in flat} >= {"equity_ratio", "ibd_to_sales", "negative_equity", "industry"}


def test_top_reasons_frame_equals_arrays_and_handles_ties_and_no_reasons():
    contrib = pd.DataFrame({"equity_ratio": [0.5, -0.1, 0.2, 0.0], "ibd_to_sales": [0.5, -0.2, 0.2, 0.0],
                            "roa": [0.7, -0.4, 0.2, 0.0], "current_ratio": [0.5, 0.0, 0.2, 0.0],
                            "bias": [-3.0, -3.0, -3.0, -3.0]}, index=list("abcd"))
    X = pd.DataFrame({"equity_ratio": [0.05, np.nan, 0.1, 0.2], "ibd_to_sales": [2.5, 0.1, 1.0, 1.0],
                      "roa": [-0.01, 0.1, 0.0, 0.0], "current_ratio": [0.8, 2.0, 1.0, 1.0]}, index=list("abcd"))
    r = top_reasons(contrib, X, top=3)
    # ties keep column order (stable sort), rows without a positive contribution have none
    assert list(r["row"]) == ["a", "a", "a", "c", "c", "c"]
    assert list(r["feature"]) == ["roa", "equity_ratio", "ibd_to_sales", "equity_ratio", "ibd_to_sales", "roa"]
    spec = feature_table()
    assert list(r["text"]) == [reason_text(spec[f], f, X.loc[i, f]) for i, f in zip(r["row"], r["feature"], strict=False)]
    assert list(r["value"]) == [X.loc[i, f] for i, f in zip(r["row"], r["feature"], strict=False)]


@pytest.mark.parametrize("unit", ["ratio", "times", "days", "years", "log_amount", "flag"])
def test_number_texts_equal_reason_text_on_rounding_ties(unit):
    from dataclasses import replace

    from models.reason_numbers import number_texts

    spec = replace(feature_table()["equity_ratio"], unit=unit)
    rng = np.random.default_rng(11)
    ties = np.arange(-2000, 2000) / 2000  # every .0005: ties of .1% and of .1 after scaling
    values = np.concatenate([ties, ties * 1000 + 0.05, np.arange(-40, 40) / 2, rng.normal(0, 3, 20_000),
                             rng.lognormal(0, 6, 2000), [0.0, -0.0, -0.0004, -0.04, 0.05, 0.15, 0.25, 0.35,
                                                         1e300, -1e300, np.inf, -np.inf, np.nan, 2.0 ** 60]])
    if unit == "log_amount":
        values = values[np.abs(values) < 700]
    for direction in (None, -1, 0, 1):
        codes, vocab = number_texts(spec, values, direction)
        got = [vocab[c] for c in codes]
        expected = [reason_text(spec, "x", v, direction) for v in values.tolist()]
        assert got == expected, next((v, g, e) for v, g, e in zip(values, got, expected, strict=False) if g != e)


def test_contribution_texts_equal_repr_of_round():
    from models.reason_json import contribution_texts

    rng = np.random.default_rng(3)
    ties = (np.arange(0, 200_000) + 0.5) / 1e6  # halfway between two 6-decimal values
    values = np.concatenate([ties, rng.exponential(0.3, 100_000), rng.uniform(0, 1e-3, 10_000),
                             [1e-7, 5e-7, 1e-6, 1.5e-6, 9.9999e-5, 1e-4, 1.0, 2.5, 10.0, 123456.7890125, 1e12,
                              0.0, -0.0, -0.25, -1e-7, np.inf, np.nan]])
    got = contribution_texts(values).to_pylist()
    assert got == [repr(round(v, 6)) for v in values.tolist()]
    blank = np.arange(len(values)) % 3 == 0
    got = contribution_texts(values, "}", blank).to_pylist()
    assert got == ["" if b else repr(round(v, 6)) + "}" for v, b in zip(values.tolist(), blank, strict=False)]


def test_top_k_equals_a_stable_sort_where_values_are_positive():
    from models.reasons import _top_k

    rng = np.random.default_rng(8)
    C = rng.integers(-3, 4, (5000, 7)) / 4.0  # many ties, zeros and negatives
    C[:50] = -1.0  # rows without a positive value
    order, best = _top_k(C, 3)
    ref = np.argsort(-C, axis=1, kind="stable")[:, :3]
    keep = np.take_along_axis(C, ref, axis=1) > 0
    assert np.array_equal(best > 0, keep)
    assert np.array_equal(np.where(keep, order, -1), np.where(keep, ref, -1))
    assert np.array_equal(np.where(keep, best, 0.0), np.where(keep, np.take_along_axis(C, ref, axis=1), 0.0))


def test_json_lists_in_threads_equal_one_pass():
    from models.reason_json import item_prefix, json_lists, json_rows

    rng = np.random.default_rng(4)
    n = 120_000
    prefixes = [item_prefix(f"f{i}", f'text "{i}" \u00d7') for i in range(50)]
    code = rng.integers(0, 50, (n, 3))
    contribution = rng.exponential(0.2, (n, 3))
    count = rng.integers(0, 4, n)
    split = json_lists(code, prefixes, contribution, count, threads=2)
    assert split.num_chunks == 2
    assert split.to_pylist() == json_rows(code, prefixes, contribution, count).to_pylist()


def test_explain_json_in_row_parts_equals_one_pass(edge_model):
    from models.reasons import explain_arrays, explain_json, reasons_as_json

    X, m = edge_model
    big = pd.concat([X] * 35, ignore_index=True)  # enough rows for two parts
    split = explain_json(m, big, top=3, threads=2)
    whole = reasons_as_json(explain_arrays(m, big, top=3), threads=1)
    assert len(split) == len(big)
    assert list(split) == list(whole)
