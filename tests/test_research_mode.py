"""Research mode of issue 13: nested selection, metrics, references, hygiene, --positive."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss
from sklearn.model_selection import StratifiedKFold

from models.hygiene import clean_table
from models.pd_metrics import calibration_intercept, calibration_slope, pd_metrics
from models.rating import RatingSpec, load_spec, parse_spec, spec_from_record
from models.research import evaluate, parse_label, prepare_table, read_table
from models.selection import SelectedRatingModel

DATA = Path(__file__).parent / "data"

# a cheap selection spec: the production spec's parameters, a small grid, few rounds
QUICK = """
[model]
name = "quick_selection"
n_estimators = 60
[params]
learning_rate = 0.1
deterministic = true
force_row_wise = true
num_threads = 2
seed = 0
[selection]
inner_folds = 3
max_rounds = 60
round_step = 10
blend_min_gain = 0.0
candidates = [
    { num_leaves = 4, min_data_in_leaf = 10, lambda_l2 = 1.0, feature_fraction = 0.8 },
    { num_leaves = 15, min_data_in_leaf = 20, lambda_l2 = 0.0, feature_fraction = 1.0 },
]
"""


def _synthetic(n: int = 480, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n),
                      "sector": pd.Categorical(rng.choice(list("PQR"), n))})
    z = -1.5 + 1.2 * X["a"] - 0.8 * X["b"] ** 2 + 0.5 * (X["sector"] == "P")
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    return X, y


def test_selection_uses_only_training_folds():
    """Scrambling one test fold's labels changes nothing that was selected for that fold."""
    spec = parse_spec(QUICK)
    X, y = _synthetic()
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    base = evaluate(X, y, cv=3, seed=0, spec=spec, folds=folds)
    _, te = folds[1]
    y2 = y.copy()
    y2[te] = 1 - y2[te]  # every label of test fold 1 flipped
    again = evaluate(X, y2, cv=3, seed=0, spec=spec, folds=folds)
    assert again["selection"][1] == base["selection"][1]  # fold 1's choices ignore its test labels
    # its AUC is measured on the flipped labels (the scores are the same)
    assert again["models"]["lightgbm"]["fold_auc"][1] == pytest.approx(1 - base["models"]["lightgbm"]["fold_auc"][1])
    # the other folds train on the flipped rows: their inner AUCs see the change
    assert again["selection"][0]["candidate_inner_auc"] != base["selection"][0]["candidate_inner_auc"]


def test_selected_model_deterministic_and_records_choices():
    spec = parse_spec(QUICK)
    X, y = _synthetic(seed=5)
    m1 = SelectedRatingModel(spec).fit(X, y)
    m2 = SelectedRatingModel(spec).fit(X, y)
    assert np.array_equal(m1.predict_proba(X), m2.predict_proba(X))
    sel = m1.selection_
    assert sel["candidate"] in (0, 1) and len(sel["candidate_inner_auc"]) == 2
    assert 0.0 <= sel["blend_weight_lightgbm"] <= 1.0 and sel["rounds"] >= 1
    # the quadratic term is easy for trees, hard for the WoE logit: inner folds see it
    assert sel["inner_auc"] >= max(sel["candidate_inner_auc"]) - 1e-9
    p = m1.predict_proba(X)[:, 1]
    assert ((p > 0) & (p < 1)).all()


def test_pd_metrics_against_sklearn_and_logistic_regression():
    rng = np.random.default_rng(1)
    p = rng.beta(1, 10, 3000)
    y = (rng.random(3000) < np.clip(p * 1.5, 0, 1)).astype(float)  # PDs too low by a third
    m = pd_metrics(p, y)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert m["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-10)
    lp = np.log(p / (1 - p))
    ref = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10000).fit(lp[:, None], y)
    a, b = calibration_slope(p, y)
    assert b == pytest.approx(ref.coef_[0, 0], abs=1e-4) and a == pytest.approx(ref.intercept_[0], abs=1e-4)
    assert m["calibration_intercept"] > 0.3  # underestimation shows as a positive intercept
    # perfectly calibrated on average: intercept 0 exactly when the mean matches in logit terms
    q = np.full(1000, 0.2)
    yy = np.r_[np.ones(200), np.zeros(800)]
    assert calibration_intercept(q, yy) == pytest.approx(0.0, abs=1e-9)
    assert m["mean_pd"] == pytest.approx(p.mean()) and m["default_rate"] == pytest.approx(y.mean())


def test_evaluate_reports_metrics_rating_model_key_and_references():
    spec = parse_spec(QUICK)
    X, y = _synthetic(n=360, seed=7)
    r = evaluate(X, y, cv=3, seed=0, spec=spec, compare=True)
    models = r["models"]
    assert models["rating_model"] == "lightgbm"
    assert {"lightgbm", "challenger", "logistic_quantile", "lightgbm_default"} <= set(models)
    for name, m in models.items():
        if name == "rating_model":
            continue
        lo, hi = m["pooled_auc_ci95"]
        assert lo < m["pooled_auc"] < hi, name
        assert len(m["fold_auc_ci95"]) == 3
        for (flo, fhi), a in zip(m["fold_auc_ci95"], m["fold_auc"], strict=True):
            assert flo <= a <= fhi
        assert 0 < m["brier"] < 0.25 and m["log_loss"] > 0
        assert m["default_rate"] == pytest.approx(y.mean(), abs=1e-6)
    assert set(r["references_not_installed"]) <= {"xgboost", "optbinning"}
    assert len(r["selection"]) == 3  # one record of choices per outer fold


def test_plain_spec_still_trains_the_spec_as_it_stands():
    spec = parse_spec(QUICK.split("[selection]")[0])
    assert spec.selection == {}
    X, y = _synthetic(n=300, seed=2)
    r = evaluate(X, y, cv=3, seed=0, spec=spec)
    assert r["selection"] == [] and r["models"]["lightgbm"]["pooled_auc"] > 0.6


def test_production_spec_has_a_selection_block():
    spec = load_spec()
    assert spec.selection["inner_folds"] >= 2 and len(spec.selection["candidates"]) >= 2


def test_hygiene_warnings_name_the_columns():
    n = 40
    X = pd.DataFrame({"loan_no": [f"L{i:04d}" for i in range(n)], "row": range(n),
                      "ratio": ["1,5", "?", "3", "n/a"] * 10, "flat": [7] * n, "empty": [np.nan] * n,
                      "lev": [1.0, np.inf, 2.0, -np.inf] * 10, "sector": list("ab") * 20})
    y = np.r_[np.ones(4), np.zeros(n - 4)]
    Xc, warnings = clean_table(X, y)
    by = {w["code"]: w for w in warnings}
    assert by["id_like"]["columns"] == ["loan_no", "row"]
    assert by["numbers_as_text"]["columns"] == ["ratio"]
    assert np.isnan(Xc["ratio"].iloc[1])
    assert Xc["ratio"].iloc[0] == 1.5 and np.isnan(Xc["ratio"].iloc[3])
    assert by["constant"]["columns"] == ["flat"] and by["all_missing"]["columns"] == ["empty"]
    assert by["infinite"]["columns"] == ["lev"] and not np.isinf(Xc["lev"]).any()
    assert "duplicate_rows" in by
    msg = by["few_defaults"]["message"]
    assert "Jeffreys 95% interval" in msg and "only 4 defaults" in msg
    assert list(Xc.columns) == ["ratio", "lev", "sector"]
    # a clean table gets no warning
    rng = np.random.default_rng(0)
    clean = pd.DataFrame({"x": rng.normal(size=500), "s": rng.choice(list("ab"), 500)})
    assert clean_table(clean, np.r_[np.ones(150), np.zeros(350)])[1] == []


def test_positive_value_and_label_row_numbers():
    s = pd.Series(["PIF", "CHGOFF", " chgoff ", "PIF"], name="status")
    assert parse_label(s, positive="CHGOFF").tolist() == [0, 1, 1, 0]
    with pytest.raises(ValueError, match=r"data row 3, column 'status'.*--positive"):
        parse_label(pd.Series(["0", "1", "CHGOFF"], name="status"))
    with pytest.raises(ValueError, match="no label equals --positive 'bad'"):
        parse_label(s, positive="bad")
    with pytest.raises(ValueError, match=r"data row 2"):
        parse_label(pd.Series(["PIF", None], name="status"), positive="CHGOFF")


def test_german_credit_file_and_text_label():
    X, y, warnings = prepare_table(read_table(DATA / "germancredit.csv"), "creditability", positive="bad")
    assert X.shape == (1000, 20) and int(y.sum()) == 300
    assert sum(isinstance(X[c].dtype, pd.CategoricalDtype) for c in X.columns) == 13
    assert warnings == []


def test_cli_evaluate_compare_json(tmp_path):
    from creditdb.cli import cli

    X, y = _synthetic(n=300, seed=11)
    frame = X.assign(sector=X["sector"].astype(str), ident=np.arange(300),
                     status=np.where(y == 1, "CHGOFF", "PIF"))
    path = tmp_path / "loans.csv"
    frame.to_csv(path, index=False)
    spec = tmp_path / "quick.toml"
    spec.write_text(QUICK)
    res = CliRunner().invoke(cli, ["model", "evaluate", "--features", str(path), "--label", "status",
                                   "--positive", "CHGOFF", "--cv", "3", "--spec", str(spec), "--compare", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["ok"] and out["models"]["rating_model"] == "lightgbm" and out["positive"] == "CHGOFF"
    assert out["n_defaults"] == int(y.sum()) and "logistic_quantile" in out["models"]
    assert [w["columns"] for w in out["warnings"] if w["code"] == "id_like"] == [["ident"]]
    text = CliRunner().invoke(cli, ["model", "evaluate", "--features", str(path), "--label", "status",
                                    "--positive", "CHGOFF", "--cv", "3", "--spec", str(spec)])
    assert text.exit_code == 0 and "lightgbm *" in text.output and "warning [id_like]" in text.output


def test_reloaded_model_carries_its_stored_spec():
    spec = parse_spec(QUICK.replace("seed = 0", "seed = 42"), origin="custom.toml")
    doc = {"name": spec.name, "description": spec.description, "source_text": spec.source_text,
           "params": spec.params, "n_estimators": spec.n_estimators, "early_stopping_rounds": None,
           "monotone_constraints": {"a": -1}}
    back = spec_from_record(json.loads(json.dumps(doc)))
    assert isinstance(back, RatingSpec) and back.name == "quick_selection" and back.params["seed"] == 42
    assert back.monotone_constraints == {"a": -1} and back.sha256 == spec.sha256
    with pytest.raises(ValueError, match="incomplete"):
        spec_from_record({"name": "x"})


def test_version_identifies_the_calibration_too():
    from pipelines.training import version_id

    cal = {"intercept": -3.0, "slope": 1.0, "shift": 0.1, "floor": 0.0005, "target_rate": 0.02}
    other = {**cal, "shift": 0.2}  # same trees, another calibration sample
    assert version_id("ab" * 32, cal) != version_id("ab" * 32, other)
    assert version_id("ab" * 32, cal) == version_id("ab" * 32, dict(reversed(list(cal.items()))))
    assert version_id("ab" * 32, cal).startswith("rating-") and len(version_id("ab" * 32, cal)) == 19



def test_plain_candidate_is_lightgbm_with_its_defaults():
    """A ``plain`` candidate with fixed ``rounds`` trains LightGBM's defaults: the plain reference's model."""
    from models.references import LightGBMDefault

    base = QUICK.replace("blend_min_gain = 0.0", "blend = false")
    X, y = _synthetic(seed=7)
    only_plain = parse_spec(base.split("candidates = [")[0] + "candidates = [{ plain = true, rounds = 100 }]\n")
    m = SelectedRatingModel(only_plain).fit(X, y)
    ref = LightGBMDefault(seed=0).fit(X, y)
    assert m.selection_["rounds"] == 100  # a fixed number of rounds is not rescaled
    np.testing.assert_allclose(m.booster_.predict(X, raw_score=True), ref.booster_.predict(X, raw_score=True),
                               rtol=0, atol=1e-9)
    eff = m.effective_spec()
    assert eff.n_estimators == 100 and not eff.selection and eff.early_stopping_rounds is None
    assert eff.monotone_constraints == {}

    # beside the regularised candidates it is chosen by inner AUC only
    spec = parse_spec(base.replace("candidates = [", "candidates = [\n    { plain = true, rounds = 100 },"))
    sel = SelectedRatingModel(spec).fit(X, y, refit=False).selection_
    assert sel["candidate_rounds"][0] == 100
    assert sel["candidate"] == int(np.argmax(sel["candidate_inner_auc"]))
    full = SelectedRatingModel(spec).fit(X, y)
    assert full.selection_ == sel and full.booster_ is not None
