"""Loan-level guarantee pricing against closed forms and hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import fee_schedule as fs
from models import irb, pricing

POL = pricing.PricingPolicy(hurdle_rate=0.1, admin_cost_rate=0.002, discount_rate=0.03, reinsurance_share=0.0)


def _bullet(pd_: float, amount: float, tenor: float, **kw) -> dict:
    return dict(pd=pd_, amount=amount, tenor_years=tenor, amortization="bullet", coverage=0.8, lgd=0.6, **kw)


@pytest.mark.parametrize("p,T,d", [(0.02, 5, 0.03), (0.1, 10, 0.0), (0.001, 1, 0.05)])
def test_bullet_expected_loss_closed_form(p: float, T: int, d: float) -> None:
    A, c, L = 1_000_000.0, 0.8, 0.6
    pol = pricing.PricingPolicy(discount_rate=d)
    got = pricing.quote(pol, None, **_bullet(p, A, T))["el_pv"]
    # sum_{t=1}^{T} (1-p)^{t-1} p A c L (1+d)^{-t} = A c L p/(1+d) * (1 - q^T)/(1 - q), q = (1-p)/(1+d)
    q = (1 - p) / (1 + d)
    expected = A * c * L * p / (1 + d) * (1 - q**T) / (1 - q)
    assert got == pytest.approx(expected, rel=1e-12)


def test_bullet_fee_base_and_fractional_tenor() -> None:
    p, A, c, L, d = 0.05, 100.0, 0.8, 0.6, 0.03
    pol = pricing.PricingPolicy(discount_rate=d)
    r = pricing.quote(pol, None, **_bullet(p, A, 1.5))
    # year 1: default prob p, paid at t=1; half-year 2: S(1) - S(1.5), paid at t=1.5
    el = A * c * L * (p / (1 + d) + ((1 - p) - (1 - p) ** 1.5) / (1 + d) ** 1.5)
    assert r["el_pv"] == pytest.approx(el, rel=1e-12)
    # fee base: covered balance x length, survival-weighted, discounted from the period start
    base = A * c * (1.0 + (1 - p) * 0.5 / (1 + d))
    assert r["fee_base_pv"] == pytest.approx(base, rel=1e-12)


def test_linear_and_annuity_profiles_by_hand() -> None:
    lin = pricing.exposure_profile(1000.0, 4, "linear")
    np.testing.assert_allclose(lin, [[1000, 750, 500, 250]])
    # annuity 1000 at 5% over 3 years, annual instalments
    P = 1000 * 0.05 / (1 - 1.05**-3)
    b1 = 1000 * 1.05 - P
    b2 = b1 * 1.05 - P
    assert b2 * 1.05 - P == pytest.approx(0.0, abs=1e-9)
    ann = pricing.exposure_profile(1000.0, 3, "annuity", 0.05)
    np.testing.assert_allclose(ann, [[1000, b1, b2]], rtol=1e-12)
    bullet = pricing.exposure_profile([5.0, 5.0], [2, 3], "bullet", n_years=4)
    np.testing.assert_allclose(bullet, [[5, 5, 0, 0], [5, 5, 5, 0]])
    zero_rate = pricing.exposure_profile(1000.0, 4, "annuity", 0.0)
    np.testing.assert_allclose(zero_rate, lin)


def test_annuity_expected_loss_matches_explicit_sum() -> None:
    p, A, T, r, d = 0.03, 1e6, 4, 0.04, 0.02
    pol = pricing.PricingPolicy(discount_rate=d)
    got = pricing.quote(pol, None, pd=p, amount=A, tenor_years=T, amortization="annuity", rate=r, coverage=0.8, lgd=0.6)
    P = A * r / (1 - (1 + r) ** -T)
    bal, el = A, 0.0
    for t in range(1, T + 1):
        el += (1 - p) ** (t - 1) * p * bal * 0.8 * 0.6 / (1 + d) ** t
        bal = bal * (1 + r) - P
    assert got["el_pv"] == pytest.approx(el, rel=1e-12)


def test_break_even_monotone_in_pd() -> None:
    pds = np.geomspace(0.0003, 0.4, 60)
    loans = pd.DataFrame(dict(pd=pds, amount=1e7, tenor_years=5, amortization="annuity", rate=0.02, sales_eur_m=3e8 / 156.33 / 1e6))
    be = pricing.price_loans(loans, POL)["break_even_rate"].to_numpy()
    assert np.all(np.diff(be) > 0)


def test_reinsurance_scales_el_and_capital_exactly() -> None:
    loans = pd.DataFrame(dict(pd=[0.01, 0.05], amount=[1e6, 5e6], tenor_years=[3, 7], amortization=["linear", "annuity"]))
    base = pricing.price_loans(loans, POL)
    for s in (0.7, 0.9):
        re = pricing.price_loans(loans, pricing.PricingPolicy(**{**POL.__dict__, "reinsurance_share": s}))
        np.testing.assert_allclose(re["el_pv"], base["el_pv"] * (1 - s), rtol=1e-12)
        np.testing.assert_allclose(re["coc_pv"], base["coc_pv"] * (1 - s), rtol=1e-12)
        np.testing.assert_allclose(re["capital"], base["capital"] * (1 - s), rtol=1e-12)
        np.testing.assert_allclose(re["admin_pv"], base["admin_pv"], rtol=1e-12)


def test_break_even_decomposition_and_admin_rate() -> None:
    r = pricing.quote(POL, None, pd=0.02, amount=1e6, tenor_years=5, amortization="linear", coverage=0.8, lgd=0.6)
    assert r["admin_pv"] / r["fee_base_pv"] == pytest.approx(POL.admin_cost_rate)
    total = r["el_pv"] + r["coc_pv"] + r["admin_pv"]
    assert r["break_even_rate"] == pytest.approx(total / r["fee_base_pv"])
    # K uses maturity min(tenor, 5) and no firm-size adjustment without sales
    assert r["irb_k"] == pytest.approx(float(irb.capital_k(0.02, 0.6, 5.0)))


def test_capital_uses_firm_size_from_sales_in_eur() -> None:
    r = pricing.quote(POL, None, pd=0.02, amount=1e6, tenor_years=0.5, amortization="bullet", lgd=0.6,
                      sales_eur_m=20.0, sales=3.1266e9)
    assert r["irb_k"] == pytest.approx(float(irb.capital_k(0.02, 0.6, 1.0, 20.0)))
    assert r["irb_k"] < float(irb.capital_k(0.02, 0.6, 1.0))  # the SME adjustment lowers K
    # sales in currency units are not converted here (no fixed rate any more): the caller converts
    with pytest.raises(ValueError, match="convert them to EUR millions first"):
        pricing.quote(POL, None, pd=0.02, amount=1e6, tenor_years=1, lgd=0.6, sales=3.1266e9)


def test_policy_with_units_per_eur_is_refused_with_what_replaced_it(tmp_path) -> None:
    old = tmp_path / "old_policy.toml"
    old.write_text(pricing.POLICY_FILE.read_text(encoding="utf-8") + "\nunits_per_eur = 160.0\n", encoding="utf-8")
    with pytest.raises(ValueError, match="units_per_eur was replaced by the rates table"):
        pricing.load_policy(old)
    with pytest.raises(ValueError, match="replaced by the rates table"):
        pricing.load_policy(units_per_eur=160.0)
    assert not hasattr(pricing.load_policy(), "units_per_eur")


def test_default_lgd_by_security() -> None:
    loans = dict(pd=np.array([0.01, 0.01]), amount=np.array([1.0, 1.0]), tenor_years=np.array([1.0, 1.0]),
                 secured=np.array(["yes", "no"]))
    out = pricing.price_loans(loans, POL)
    assert list(out["lgd"]) == [POL.lgd_secured, POL.lgd_unsecured]


def test_japan_schedule_fee_and_subsidy_identity() -> None:
    sched = fs.load_schedule("japan")
    r = pricing.quote(POL, sched, pd=0.025, amount=10_000_000, tenor_years=5, amortization="annuity", rate=0.02,
                      coverage=0.8, lgd=0.6, instalments=60)
    assert r["category"] == "3"
    assert r["fee_charged"] == pytest.approx(426_250.0)
    assert r["charged_rate"] == pytest.approx(426_250.0 / r["fee_base_pv"])
    assert r["subsidy_gap_rate"] == pytest.approx(r["break_even_rate"] - r["charged_rate"])
    assert r["subsidy_gap_pv"] == pytest.approx(r["subsidy_gap_rate"] * r["fee_base_pv"])
    # default instalments for an amortising loan are monthly: 60 -> same fee
    r2 = pricing.quote(POL, sched, pd=0.025, amount=10_000_000, tenor_years=5, amortization="annuity", rate=0.02)
    assert r2["fee_charged"] == pytest.approx(426_250.0)


def test_annual_schedule_on_covered_balance_gives_its_rate() -> None:
    r = pricing.quote(POL, fs.load_schedule("sba"), pd=0.02, amount=1e6, tenor_years=7, amortization="annuity", rate=0.06)
    assert r["charged_rate"] == pytest.approx(0.0055, rel=1e-12)


def test_migration_matrix_cumulative_pd() -> None:
    p = 0.04
    two = [[1 - p, p], [0.0, 1.0]]
    np.testing.assert_allclose(pricing.cumulative_pd_from_migration(two, 0, 5), 1 - (1 - p) ** np.arange(1, 6))
    m = np.array([[0.90, 0.08, 0.02], [0.10, 0.80, 0.10], [0.0, 0.0, 1.0]])
    got = pricing.cumulative_pd_from_migration(m, 0, 2)
    # by hand: year 2 default = 0.02 + 0.90*0.02 + 0.08*0.10
    np.testing.assert_allclose(got, [0.02, 0.02 + 0.90 * 0.02 + 0.08 * 0.10])
    with pytest.raises(ValueError, match="absorbing"):
        pricing.cumulative_pd_from_migration([[0.9, 0.1], [0.1, 0.9]], 0, 2)


def test_price_with_migration_term_structure_equals_constant_hazard_when_equivalent() -> None:
    p = 0.03
    cum = pricing.cumulative_pd_from_migration([[1 - p, p], [0, 1]], 0, 6)
    loan = dict(pd=np.array([p]), amount=np.array([1e6]), tenor_years=np.array([6.0]), amortization=np.array(["linear"]))
    a = pricing.price_loans(loan, POL)
    b = pricing.price_loans(loan, POL, cumulative_pd=cum[None, :])
    np.testing.assert_allclose(b["el_pv"], a["el_pv"], rtol=1e-12)
    np.testing.assert_allclose(b["break_even_rate"], a["break_even_rate"], rtol=1e-12)


def test_validate_loans_lists_every_problem_with_row_numbers() -> None:
    df = pd.DataFrame(dict(loan_id=["a", "b", "c"], pd=[0.01, 1.5, 0.0], amount=[1.0, -1.0, 1.0],
                           tenor_years=[1, 1, 0], amortization=["bullet", "weird", "linear"]))
    probs = pricing.validate_loans(df)
    got = {(p.row, p.loan_id, p.field) for p in probs}
    assert got == {(3, "b", "pd"), (3, "b", "amount"), (3, "b", "amortization"), (4, "c", "pd"), (4, "c", "tenor_years")}


def test_policy_file_loads_with_overrides() -> None:
    pol = pricing.load_policy(reinsurance_share=0.8)
    assert pol.reinsurance_share == 0.8
    assert 0.6 <= pol.lgd_unsecured <= 0.66  # SBA recoveries 34-39% -> LGD 61-66%
