"""Pure pipeline: statements -> ratios -> production-spec LightGBM -> calibration -> grades -> reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from models.calibration import PD_FLOOR, fit_calibration
from models.master_scale import assign_grade, fee_category
from models.rating import RatingModel, load_model, time_split
from models.ratios import FEATURE_NAMES, compute_features
from models.reasons import explain


def statements(n_firms: int = 1200, years: int = 4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for f in range(n_firms):
        size = np.exp(rng.normal(13, 1.2))
        eq = rng.normal(0.25, 0.2)
        for t in range(years):
            sales = size * np.exp(rng.normal(0, 0.15))
            ta = sales * rng.uniform(0.6, 1.4)
            na = ta * (eq + rng.normal(0, 0.05))
            ni = sales * rng.normal(0.02 + 0.1 * eq, 0.04)
            ibd = max(0.0, ta * rng.uniform(0.1, 0.7) - na * 0.5)
            rows.append(dict(firm_id=f"F{f}", industry="CFGI"[f % 4], established_year=int(1970 + f % 50),
                             fiscal_year_end=f"{2016 + t}-03-31", sales=sales, net_income=ni, total_assets=ta,
                             net_assets=na, total_liabilities=ta - na, interest_bearing_debt=ibd,
                             interest_expense=ibd * 0.02, operating_profit=ni * 1.3 + ibd * 0.02,
                             current_assets=ta * 0.5, current_liabilities=ta * rng.uniform(0.2, 0.6),
                             cash=ta * rng.uniform(0.02, 0.2), receivables=sales * 0.15, inventory=sales * 0.1))
    frame = pd.DataFrame(rows)
    feats = compute_features(frame)
    z = -3.2 - 6 * feats["equity_ratio"].fillna(0) - 15 * feats["roa"].fillna(0) + 0.5 * feats["ibd_to_sales"]
    frame["y"] = (rng.random(len(frame)) < 1 / (1 + np.exp(-z))).astype(int)
    return frame


def test_pure_pipeline_with_production_spec():
    frame = statements()
    X = compute_features(frame)
    assert list(X.columns) == list(FEATURE_NAMES)
    assert X["sales_growth"].notna().mean() > 0.7  # 3 of 4 statements have a previous one
    data = X.assign(y=frame["y"], fye=frame["fiscal_year_end"])
    train, valid = time_split(data, "fye", 0.25)
    assert set(valid["fye"]) == {"2019-03-31"}
    cols = list(FEATURE_NAMES)
    m = RatingModel().fit(train[cols], train["y"], valid[cols], valid["y"])  # packaged rating_v1
    assert m.best_iteration_ is not None
    s_valid = m.raw_score(valid[cols])
    assert roc_auc_score(valid["y"], s_valid) > 0.7
    np.testing.assert_array_equal(load_model(m.model_string).raw_score(valid[cols]), s_valid)
    # production constraint: PD never rises with the equity ratio
    up = valid[cols].copy()
    up["equity_ratio"] = up["equity_ratio"] + 0.1
    assert (m.raw_score(up) <= s_valid + 1e-12).all()
    target = float(train["y"].mean())
    cal = fit_calibration(s_valid, valid["y"], target_rate=target)
    pd_ = cal.predict(s_valid)
    assert abs(pd_.mean() - target) < 1e-6 and pd_.min() >= PD_FLOOR
    grades = assign_grade(pd_)
    cats = fee_category(grades)
    assert set(cats) <= set(range(1, 10))
    # riskier grade never gets a safer fee category
    order = np.argsort(pd_)
    assert (np.diff(cats[order]) <= 0).all()
    reasons = explain(m, valid[cols].head(50))
    assert reasons["text"].str.len().gt(0).all()
