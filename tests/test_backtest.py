"""models.backtest against independent references: scipy.stats.binomtest for the binomial
p-value and the Beta(d + 1/2, n - d + 1/2) quantiles and CDF for Jeffreys, counted by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from models.backtest import backtest, worst_light
from models.master_scale import assign_grade, load_master_scale


def _year(rng: np.random.Generator, n: int, pd_values: np.ndarray, true_factor: float = 1.0) -> pd.DataFrame:
    p = rng.choice(pd_values, size=n)
    y = (rng.random(n) < np.minimum(p * true_factor, 1.0)).astype(int)
    return pd.DataFrame({"pd": p, "label": y})


@pytest.fixture()
def years():
    rng = np.random.default_rng(3)
    pds = np.array([0.002, 0.01, 0.03, 0.08])
    # year level moves with the cycle: 0.7x, 1.0x, 1.3x the PD -> long-run average is the PD
    return {2019: _year(rng, 4000, pds, 0.7), 2020: _year(rng, 4000, pds, 1.0), 2021: _year(rng, 4000, pds, 1.3)}


def test_per_year_rows_match_scipy(years):
    out = backtest(years)
    scale = load_master_scale()
    f = years[2021]
    grades = assign_grade(f["pd"].to_numpy(), scale)
    rows = [r for r in out["per_year"] if r["year"] == 2021]
    assert [r["grade"] for r in rows] == [g for g in scale.labels if g in set(grades)]
    for r in rows:
        m = grades == r["grade"]
        n, d = int(m.sum()), int(f["label"].to_numpy()[m].sum())
        pdm = float(f["pd"].to_numpy()[m].mean())
        assert (r["n"], r["defaults"]) == (n, d)
        assert r["mean_pd"] == pytest.approx(pdm, rel=1e-12)
        assert r["binomial_p"] == pytest.approx(stats.binomtest(d, n, pdm, alternative="greater").pvalue, rel=1e-9)
        beta = stats.beta(d + 0.5, n - d + 0.5)
        assert r["jeffreys_p"] == pytest.approx(beta.cdf(pdm), rel=1e-9)
        assert r["jeffreys_lower"] == pytest.approx(beta.ppf(0.025), rel=1e-9)
        assert r["jeffreys_upper"] == pytest.approx(beta.ppf(0.975), rel=1e-9)
        assert r["within_interval"] == bool(beta.ppf(0.025) <= pdm <= beta.ppf(0.975))


def test_pooled_adds_up_the_years_and_averages_the_yearly_rates(years):
    out = backtest(years)
    by = pd.DataFrame(out["per_year"])
    for r in out["pooled"]:
        sub = by[by["grade"] == r["grade"]]
        n, d = int(sub["n"].sum()), int(sub["defaults"].sum())
        pdm = float((sub["mean_pd"] * sub["n"]).sum() / n)
        assert (r["n"], r["defaults"], r["years"]) == (n, d, len(sub))
        assert r["long_run_odr"] == pytest.approx(float(sub["odr"].mean()), rel=1e-12)
        assert r["binomial_p"] == pytest.approx(stats.binomtest(d, n, pdm, alternative="greater").pvalue, rel=1e-9)
        assert r["jeffreys_p"] == pytest.approx(stats.beta.cdf(pdm, d + 0.5, n - d + 0.5), rel=1e-9)
    pp = out["pooled_portfolio"]
    assert pp["n"] == 12000 and pp["defaults"] == sum(int(f["label"].sum()) for f in years.values())


def test_cycle_in_single_years_but_pooled_passes(years):
    """A through-the-cycle PD: the 1.3x year is flagged, the pooled view is not."""
    out = backtest(years)
    s = out["summary"]
    assert s["passed"] and s["pooled_light"] != "red" and s["pooled_red"] == []
    y2021 = [r for r in out["per_year_portfolio"] if r["year"] == 2021][0]
    assert y2021["traffic_light"] == "red"
    assert any(k.startswith("2021 ") for k in s["year_red"])
    assert [c["year"] for c in s["year_lights"]] == [2019, 2020, 2021]


def test_underestimated_pd_fails_pooled_and_overestimated_leaves_its_interval(years):
    halved = {y: f.assign(pd=f["pd"] / 2) for y, f in years.items()}
    out = backtest(halved)
    assert not out["summary"]["passed"]
    assert "portfolio" in out["summary"]["pooled_red"]
    doubled = {y: f.assign(pd=np.minimum(f["pd"] * 2, 0.99)) for y, f in years.items()}
    out2 = backtest(doubled)
    assert out2["summary"]["passed"]  # the lights are one-sided (underestimation) ...
    assert out2["pooled_portfolio"]["within_interval"] is False  # ... the interval shows the overestimate
    assert out2["summary"]["pooled_outside_interval"]


def test_given_grades_are_used_and_inputs_checked():
    f = pd.DataFrame({"pd": [0.01, 0.02, 0.03], "label": [0, 1, 0], "grade": ["X", "X", "Y"]})
    out = backtest({2020: f})
    assert [r["grade"] for r in out["pooled"]] == ["X", "Y"]
    with pytest.raises(ValueError, match="label"):
        backtest({2020: f.assign(label=[0, 2, 0])})
    with pytest.raises(ValueError, match="pd"):
        backtest({2020: f.assign(pd=[0.1, np.nan, 0.2])})
    with pytest.raises(ValueError, match="at least one"):
        backtest({})


def test_worst_light():
    assert worst_light(["green", "yellow", "green"]) == "yellow"
    assert worst_light(["grey", "red", "yellow"]) == "red"
    assert worst_light([]) == "grey"
