"""Ratios: hand-computed rows, zero/negative denominators, growth against the right statement."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.ratios import FEATURE_NAMES, compute_features, feature_table, previous_statement


def _row(**kw):
    base = dict(
        firm_id="F1", industry="C", established_year=2001, fiscal_year_end="2020-03-31", months=12,
        sales=1000.0, cost_of_sales=700.0, operating_profit=50.0, ordinary_profit=40.0, net_income=20.0,
        interest_expense=10.0, cash=80.0, receivables=150.0, inventory=100.0, current_assets=400.0,
        fixed_assets=400.0, total_assets=800.0, current_liabilities=250.0, interest_bearing_debt=500.0,
        total_liabilities=600.0, net_assets=200.0,
    )
    base.update(kw)
    return base


def test_hand_computed_row():
    f = compute_features(pd.DataFrame([_row()]))
    r = f.iloc[0]
    assert list(f.columns) == list(FEATURE_NAMES)
    assert r["equity_ratio"] == pytest.approx(200 / 800)
    assert r["ibd_to_sales"] == pytest.approx(0.5)
    assert r["debt_to_assets"] == pytest.approx(0.75)
    assert r["roa"] == pytest.approx(0.025)
    assert r["net_margin"] == pytest.approx(0.02)
    assert r["interest_coverage"] == pytest.approx(50 / 10)  # EBIT / interest, the standard definition
    assert r["current_ratio"] == pytest.approx(1.6)
    assert r["quick_ratio"] == pytest.approx(300 / 250)
    assert r["cash_to_assets"] == pytest.approx(0.1)
    assert r["receivable_days"] == pytest.approx(150 / 1000 * 365)
    assert r["inventory_days"] == pytest.approx(36.5)
    assert math.isnan(r["sales_growth"]) and math.isnan(r["profit_growth"])  # no history
    assert r["log_sales"] == pytest.approx(math.log(1001))
    assert r["log_assets"] == pytest.approx(math.log(801))
    assert r["firm_age"] == 19
    assert r["industry"] == "C"
    assert isinstance(f["industry"].dtype, pd.CategoricalDtype)
    assert list(f["industry"].cat.categories) == list("ABCDEFGHIJKLMNOPQRSTU")
    assert r["negative_equity"] == 0


def test_ordinary_profit_used_when_operating_missing_and_short_period_annualised():
    f = compute_features(pd.DataFrame([_row(operating_profit=None, months=6)])).iloc[0]
    assert f["interest_coverage"] == pytest.approx((40 + 10) / 10)
    # 6-month period: annual sales 2000
    assert f["ibd_to_sales"] == pytest.approx(0.25)
    assert f["receivable_days"] == pytest.approx(150 / 2000 * 365)


def test_zero_and_negative_denominators_never_infinite():
    rows = [
        _row(firm_id="a", total_assets=0.0, sales=0.0, interest_expense=0.0, current_liabilities=0.0),
        _row(firm_id="b", total_assets=-5.0, sales=-10.0, interest_expense=0.0, operating_profit=-30.0,
             net_assets=-50.0),
        _row(firm_id="c", interest_bearing_debt=0.0, sales=0.0, receivables=0.0, inventory=0.0,
             interest_expense=0.0, operating_profit=0.0, current_assets=0.0, current_liabilities=0.0),
        _row(firm_id="d", interest_bearing_debt=None, cash=None, inventory=None, established_year=None,
             industry="Z", net_assets=None),
    ]
    f = compute_features(pd.DataFrame(rows))
    num = f.drop(columns="industry").to_numpy(dtype=float)
    assert not np.isinf(num).any()
    a, b, c, d = (f.iloc[i] for i in range(4))
    spec = feature_table()
    # total assets 0: asset ratios undefined
    assert math.isnan(a["equity_ratio"]) and math.isnan(a["roa"]) and math.isnan(a["cash_to_assets"])
    # no sales but debt: the documented cap
    assert a["ibd_to_sales"] == spec["ibd_to_sales"].upper
    assert a["receivable_days"] == spec["receivable_days"].upper
    assert math.isnan(a["net_margin"])
    # no interest expense, positive profit: cap; current liabilities 0 with assets: cap
    assert a["interest_coverage"] == spec["interest_coverage"].upper
    assert a["current_ratio"] == spec["current_ratio"].upper
    # no interest expense, loss: lower cap; negative assets: NaN; negative equity flag
    assert b["interest_coverage"] == spec["interest_coverage"].lower
    assert math.isnan(b["equity_ratio"]) and math.isnan(b["log_assets"]) and math.isnan(b["log_sales"])
    assert b["negative_equity"] == 1
    # 0/0: no debt and no sales -> 0; no profit and no interest -> NaN; 0 current items -> NaN
    assert c["ibd_to_sales"] == 0 and c["receivable_days"] == 0 and c["inventory_days"] == 0
    assert math.isnan(c["interest_coverage"]) and math.isnan(c["current_ratio"])
    # missing inputs -> NaN; unknown industry -> NaN category
    for col in ("ibd_to_sales", "cash_to_assets", "quick_ratio", "inventory_days", "firm_age", "negative_equity"):
        assert math.isnan(d[col]), col
    assert pd.isna(d["industry"])


def test_ratios_clipped_to_documented_bounds():
    f = compute_features(pd.DataFrame([_row(net_income=-1e9, net_assets=-1e9, interest_bearing_debt=1e12)])).iloc[0]
    spec = feature_table()
    assert f["roa"] == spec["roa"].lower
    assert f["equity_ratio"] == spec["equity_ratio"].lower
    assert f["ibd_to_sales"] == spec["ibd_to_sales"].upper


def test_growth_uses_previous_statement_of_same_firm_within_6_to_18_months():
    rows = [
        _row(firm_id="A", fiscal_year_end="2019-03-31", sales=800.0, net_income=40.0),
        _row(firm_id="A", fiscal_year_end="2020-03-31", sales=1000.0, net_income=20.0),
        _row(firm_id="A", fiscal_year_end="2022-03-31", sales=1500.0, net_income=30.0),  # 24 months gap
        _row(firm_id="B", fiscal_year_end="2019-12-31", sales=100.0, net_income=-10.0),
        _row(firm_id="B", fiscal_year_end="2020-03-31", sales=50.0, net_income=5.0, months=3),  # 3 months gap
        _row(firm_id="B", fiscal_year_end="2021-03-31", sales=300.0, net_income=10.0),  # 12 m after 3-m stmt
        _row(firm_id="C", fiscal_year_end="2020-06-30", sales=10.0, net_income=1.0),
        _row(firm_id="C", fiscal_year_end="2021-12-31", sales=20.0, net_income=2.0),  # 18 months: allowed
    ]
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=3)  # order must not matter
    f = compute_features(frame).loc[pd.RangeIndex(8)]
    g = f["sales_growth"].to_numpy()
    p = f["profit_growth"].to_numpy()
    assert math.isnan(g[0])
    assert g[1] == pytest.approx(1000 / 800 - 1) and p[1] == pytest.approx((20 - 40) / 40)
    assert math.isnan(g[2]) and math.isnan(p[2])  # previous statement 24 months earlier: no growth
    assert math.isnan(g[4])  # 3 months after the previous one: too short
    # the previous statement of row 5 is the 3-month one (annualised sales 200, income 20)
    assert g[5] == pytest.approx(300 / 200 - 1) and p[5] == pytest.approx((10 - 20) / 20)
    assert g[7] == pytest.approx(1.0)  # 18 months
    prev = previous_statement(pd.DataFrame(rows))
    assert prev.loc[5, "prev_fiscal_year_end"] == pd.Timestamp("2020-03-31")
    assert pd.isna(prev.loc[2, "prev_fiscal_year_end"])


def test_growth_never_crosses_firms():
    rows = [_row(firm_id="X", fiscal_year_end="2019-03-31", sales=1.0),
            _row(firm_id="Y", fiscal_year_end="2020-03-31", sales=1000.0)]
    f = compute_features(pd.DataFrame(rows))
    assert f["sales_growth"].isna().all()


def test_missing_required_column_named():
    with pytest.raises(ValueError, match="total_assets"):
        compute_features(pd.DataFrame([_row()]).drop(columns="total_assets"))


def test_feature_table_documents_every_feature():
    spec = feature_table()
    assert tuple(spec) == FEATURE_NAMES
    for f in spec.values():
        assert f.formula and f.unit and f.sign in (-1, 0, 1)
    assert spec["equity_ratio"].sign == -1 and spec["ibd_to_sales"].sign == 1
