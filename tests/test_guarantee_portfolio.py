"""Risk of a guarantee book by fee category and by loan, gross and net of reinsurance, and
its report (HTML; rendered in headless Chromium when installed).

References: the category table is recomputed here with pandas from ``price_loans``'s
output; gross against net uses the quota-share identity (net loss = (1 - s) x gross loss
in every scenario, so the two are one simulation), checked against a separate net run.
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.fee_schedule import load_schedule
from models.portfolio import simulate_portfolio
from models.pricing import load_policy, price_loans
from pipelines.guarantee_portfolio import run_portfolio
from pipelines.guarantee_report import render_html

ROOT = Path(__file__).resolve().parents[1]


def book(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "loan_id": [f"L{i:04d}" for i in range(n)],
        "pd": rng.uniform(0.001, 0.08, n),
        "amount": np.round(rng.lognormal(16, 1.0, n), -3),
        "tenor_years": rng.choice([1.5, 3.0, 5.0, 7.25], n),
        "coverage": rng.choice([0.8, 1.0], n),
        "amortization": rng.choice(["bullet", "linear", "annuity"], n),
        "rate": 0.02,
        "secured": rng.random(n) < 0.3,
        "sales": rng.uniform(5e7, 2e9, n),
        "sales_date": "2023-12-29",  # ECB: 156.33 JPY per EUR (tests/data/ecb_reference_rates.csv)
    })


@pytest.fixture(scope="module")
def reinsured():
    pol = load_policy(reinsurance_share=0.7)
    sched = load_schedule("japan")
    df = book()
    return df, pol, sched, run_portfolio(df, pol, sched, scenarios=4000, seed=2, fund=2e8)


def test_net_is_the_retained_share_of_gross_in_every_scenario(reinsured):
    df, pol, sched, run = reinsured
    np.testing.assert_allclose(run["net"].losses, 0.3 * run["gross"].losses, rtol=1e-12)
    # a separate simulation on the net exposure gives the same scenarios
    lgd = np.where(df["secured"], pol.lgd_secured, pol.lgd_unsecured)
    sep = simulate_portfolio(df["pd"], lgd, df["amount"] * df["coverage"] * 0.3, n_scenarios=4000, seed=2,
                             sales_eur_m=df["sales"] / 156.33 / 1e6, fund=2e8)
    np.testing.assert_allclose(run["net"].losses, sep.losses, rtol=1e-5)
    assert run["board"]["net"]["prob_loss_exceeds_fund"] == pytest.approx(sep.prob_loss_exceeds_fund)
    assert run["board"]["gross"]["prob_loss_exceeds_fund"] >= run["board"]["net"]["prob_loss_exceeds_fund"]
    b = run["board"]
    assert b["net"]["premiums_pv"] == pytest.approx(b["gross"]["premiums_pv"])  # the agency keeps the premiums
    assert b["net"]["expected_claims_pv"] == pytest.approx(0.3 * b["gross"]["expected_claims_pv"], rel=1e-12)
    assert b["net"]["capital_cost_pv"] == pytest.approx(0.3 * b["gross"]["capital_cost_pv"], rel=1e-12)


def test_category_table_equals_a_groupby_of_the_priced_loans(reinsured):
    df, pol, sched, run = reinsured
    df = df.assign(sales_eur_m=df["sales"] / 156.33 / 1e6)  # converted by hand (ECB 2023-12-29)
    net = price_loans(df, pol, sched)
    gross = price_loans(df, replace(pol, reinsurance_share=0.0), sched)
    by = net.assign(exposure=df["amount"] * df["coverage"]).groupby(net["category"].astype(str))
    rows = {r["category"]: r for r in run["by_category"]}
    assert list(rows) == [c for c in sched.labels if c in rows]  # safest to riskiest, as the schedule lists them
    for cat, g in by:
        r = rows[cat]
        assert r["loans"] == len(g)
        for key, col in (("exposure", "exposure"), ("premiums_pv", "fee_charged_pv"), ("expected_claims_pv", "el_pv"),
                         ("capital", "capital"), ("subsidy_pv", "subsidy_gap_pv")):
            assert r[key] == pytest.approx(float(g[col].sum()), rel=1e-12), (cat, key)
    assert sum(r["es_999"] for r in run["by_category"]) == pytest.approx(run["net"].expected_shortfall[0.999],
                                                                         rel=1e-5)
    assert sum(r["es_999_share"] for r in run["by_category"]) == pytest.approx(1.0)
    b = run["board"]
    assert b["gross"]["expected_claims_pv"] == pytest.approx(float(gross["el_pv"].sum()), rel=1e-12)
    assert b["net"]["subsidy_pv"] == pytest.approx(float(net["subsidy_gap_pv"].sum()), rel=1e-9)


def test_per_loan_contributions_add_up_and_are_in_the_loan_table(reinsured):
    df, pol, sched, run = reinsured
    per = run["per_loan"]
    assert list(per["loan_id"]) == list(df["loan_id"])
    assert per["es_999"].sum() == pytest.approx(run["net"].expected_shortfall[0.999], rel=1e-5)
    assert per["es_99"].sum() == pytest.approx(run["net"].expected_shortfall[0.99], rel=1e-5)
    lgd = np.where(df["secured"], pol.lgd_secured, pol.lgd_unsecured)
    np.testing.assert_allclose(per["el"], df["pd"] * lgd * df["amount"] * df["coverage"] * 0.3, rtol=1e-12)
    assert per["es_999_share"].sum() == pytest.approx(1.0)


def test_report_has_category_table_contributions_and_readable_amounts(reinsured, tmp_path):
    df, pol, sched, run = reinsured
    summary = {"n_loans": len(df), "n_scenarios": 4000, "seed": 2, "method": "bernoulli"}
    page = render_html(summary, run, "test book", pol.currency, 2e8)
    assert "By fee category" in page and "Loans driving the tail" in page and "Amounts in JPY" in page
    for r in run["by_category"]:
        assert f"<td>{r['category']}</td>" in page
        assert f"{r['exposure']:,.0f}" in page
    assert not re.search(r"\d,\d{3}\.\d\d<", page), "amounts carry decimals"
    assert page.count("data:image/png;base64,") == 2


def _strict_json(text: str):
    import json

    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_portfolio_cli_json_and_contributions_file(tmp_path):
    from click.testing import CliRunner

    from creditdb.cli import cli

    f = tmp_path / "loans.csv"
    book(60).to_csv(f, index=False)
    contrib = tmp_path / "c.csv"
    res = CliRunner().invoke(cli, ["guarantee", "portfolio", str(f), "--scenarios", "500", "--contributions",
                                   str(contrib), "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = _strict_json(res.output)
    assert len(out["contributions"]) == 60 and {"loan_id", "es_999", "var_999", "el"} <= set(out["contributions"][0])
    assert sum(c["es_999"] for c in out["contributions"]) == pytest.approx(out["expected_shortfall"]["0.999"],
                                                                           rel=1e-5)
    assert out["by_category"] and out["board"]["gross"]["premiums_pv"] > 0
    csv = pd.read_csv(contrib)
    assert len(csv) == 60 and csv["es_999"].sum() == pytest.approx(out["expected_shortfall"]["0.999"], rel=1e-5)
    human = CliRunner().invoke(cli, ["guarantee", "portfolio", str(f), "--scenarios", "500"], catch_exceptions=False)
    assert "loans driving the tail" in human.output and ".00" not in human.output


@pytest.mark.slow
def test_portfolio_report_screenshot_shows_table_and_contributions_plot(reinsured, tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import screenshot_report

    if screenshot_report.find_chromium() is None:
        message = "chromium is not installed (apt-get install -y chromium); cannot render the report screenshot"
        if os.environ.get("CI"):
            pytest.fail(message + " — CI is set, so this is an error")
        pytest.skip(message)
    from PIL import Image

    df, pol, sched, run = reinsured
    summary = {"n_loans": len(df), "n_scenarios": 4000, "seed": 2, "method": "bernoulli"}
    html = tmp_path / "portfolio.html"
    html.write_text(render_html(summary, run, "test book", pol.currency, 2e8), encoding="utf-8")
    png = tmp_path / "portfolio.png"
    assert screenshot_report.main([str(html), str(png), "--width", "1280", "--height", "2600"]) == 0
    with Image.open(png) as im:
        rgb = np.asarray(im.convert("RGB")).astype(int)
    # the category table's header cells are drawn in #f3f5f8 and the contributions bars in #1f5fa8
    header = (np.abs(rgb - [0xF3, 0xF5, 0xF8]).max(axis=2) <= 2).sum()
    blue = (np.abs(rgb - [0x1F, 0x5F, 0xA8]).max(axis=2) <= 12)
    assert header > 3000, "no table header rendered"
    assert blue.sum() > 3000, "no contribution bars rendered"
    rows_with_blue = np.flatnonzero(blue.any(axis=1))
    assert rows_with_blue.size > 100 and not math.isnan(float(rows_with_blue.mean()))


def test_portfolio_refuses_a_coverage_the_schedule_does_not_price(tmp_path):
    from click.testing import CliRunner

    from creditdb.cli import cli

    f = tmp_path / "loans.csv"
    book(5).assign(coverage=[0.8, 0.5, 0.8, 0.8, 0.7]).to_csv(f, index=False)
    res = CliRunner().invoke(cli, ["guarantee", "portfolio", str(f), "--scenarios", "100", "--json"])
    assert res.exit_code == 1
    err = _strict_json(res.output)["error"]
    assert "2 loan(s) (rows 3, 6)" in err and "not priced by schedule 'japan'" in err
    ok = CliRunner().invoke(cli, ["guarantee", "portfolio", str(f), "--scenarios", "100", "--schedule", "kodit"])
    assert ok.exit_code == 0, ok.output
