"""Capped portfolio guarantee against the large-pool Vasicek closed form."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate
from scipy.special import ndtr, ndtri

from models.capped_portfolio import (
    large_pool_cap_probability,
    large_pool_expected_capped_loss,
    price_capped_portfolio,
)


def _by_quadrature(pd: float, rho: float, lgd: float, cap: float) -> float:
    """E[min(LGD X, cap)] = LGD * integral_0^{cap/LGD} (1 - F(x)) dx, F the Vasicek CDF
    (DOMAIN: F(x) = N((sqrt(1 - rho) G(x) - G(PD)) / sqrt(rho)))."""
    k = min(cap / lgd, 1.0)

    def survival(x: float) -> float:
        return 1.0 - ndtr((np.sqrt(1 - rho) * ndtri(x) - ndtri(pd)) / np.sqrt(rho))

    val, _ = integrate.quad(survival, 0.0, k, limit=200, points=[pd])
    return lgd * val


@pytest.mark.parametrize(("pd", "rho", "lgd", "cap"), [
    (0.05, 0.20, 1.0, 0.08), (0.02, 0.12, 0.6, 0.02), (0.10, 0.30, 1.0, 0.25), (0.03, 0.15, 0.45, 0.5)])
def test_closed_form_equals_quadrature_of_the_loss_fraction_distribution(pd, rho, lgd, cap):
    assert large_pool_expected_capped_loss(pd, rho, lgd, cap) == pytest.approx(_by_quadrature(pd, rho, lgd, cap),
                                                                                rel=1e-6, abs=1e-10)


def test_cap_above_lgd_is_the_expected_loss():
    assert large_pool_expected_capped_loss(0.04, 0.2, 0.5, 0.6) == pytest.approx(0.02)
    assert large_pool_cap_probability(0.04, 0.2, 0.5, 0.6) == 0.0


@pytest.mark.parametrize("cap", [0.06, 0.12, 0.25])
def test_monte_carlo_matches_the_large_pool_limit_within_its_error(cap):
    # homogeneous pool, annual PD 2 % over a 3-year term, rho 0.2: the limit of the
    # infinitely granular portfolio ("conditional" method: loss = its conditional expectation)
    annual, term, rho = 0.02, 3, 0.20
    pd_term = 1 - (1 - annual) ** term
    res = price_capped_portfolio(np.full(200, annual), np.full(200, 1e6), cap_share=cap, term_years=term,
                                 rho=rho, n_scenarios=40_000, seed=7, method="conditional")
    exact = large_pool_expected_capped_loss(pd_term, rho, 1.0, cap) * res.portfolio
    assert abs(res.expected_claims - exact) < 4 * res.expected_claims_se
    assert res.expected_claims_se < 0.02 * exact  # the check has teeth
    p_cap = large_pool_cap_probability(pd_term, rho, 1.0, cap)
    assert abs(res.prob_cap_binds - p_cap) < 4 * np.sqrt(p_cap * (1 - p_cap) / res.scenarios) + 1e-12


def test_finite_granular_pool_converges_to_the_limit():
    # 5,000 equal loans with Bernoulli defaults: the granularity adds little at this size
    annual, term, rho, cap = 0.03, 2, 0.15, 0.08
    pd_term = 1 - (1 - annual) ** term
    res = price_capped_portfolio(np.full(5000, annual), 1.0, cap_share=cap, term_years=term, rho=rho,
                                 n_scenarios=20_000, seed=3)
    exact = large_pool_expected_capped_loss(pd_term, rho, 1.0, cap) * res.portfolio
    assert abs(res.expected_claims - exact) < 4 * res.expected_claims_se + 0.01 * exact


def test_cap_bounds_claims_and_fee_arithmetic():
    res = price_capped_portfolio(np.full(300, 0.08), 1e5, cap_share=0.05, term_years=5, rho=0.25,
                                 fee_rate=0.0175, n_scenarios=5000, seed=1)
    assert res.claims_var_999 <= res.cap + 1e-6 and res.claims_es_99 <= res.cap + 1e-6
    assert res.expected_claims <= min(res.expected_loss, res.cap)
    assert res.expected_loss_to_lender == pytest.approx(res.expected_loss - res.expected_claims)
    # no discounting: break-even = expected claims / (portfolio x years)
    assert res.break_even_fee_rate == pytest.approx(res.expected_claims / (res.portfolio * 5))
    assert res.expected_fee_income == pytest.approx(0.0175 * res.portfolio * 5)
    priced = price_capped_portfolio(np.full(300, 0.08), 1e5, cap_share=0.05, term_years=5, rho=0.25,
                                    hurdle_rate=0.1, admin_cost_rate=0.002, n_scenarios=5000, seed=1)
    ul = priced.claims_var_999 - priced.expected_claims
    assert priced.break_even_fee_rate_with_capital == pytest.approx(
        priced.break_even_fee_rate + 0.1 * ul / priced.portfolio + 0.002)


def test_a_lower_cap_costs_the_guarantor_less():
    args = dict(pd=np.full(500, 0.04), ead=1.0, term_years=4, rho=0.2, n_scenarios=5000, seed=5)
    low, high = price_capped_portfolio(cap_share=0.05, **args), price_capped_portfolio(cap_share=0.30, **args)
    assert low.expected_claims < high.expected_claims
    assert low.prob_cap_binds > high.prob_cap_binds


def test_schemes_data_cites_sources_and_the_cli_prices_a_file(tmp_path):
    import json

    from click.testing import CliRunner

    from creditdb.cli import cli
    from models.guarantee_schemes import load_schemes

    schemes = load_schemes()
    assert {"TCG-PGS", "CGC-MY", "KUR-ID"} <= set(schemes)
    assert schemes["TCG-PGS"]["annual_fee_on_portfolio"] == 0.0175
    assert schemes["TCG-PGS"]["cap_share_of_portfolio"] == [0.24, 0.30]
    assert schemes["CGC-MY"]["annual_fee_unsecured"] == [0.0075, 0.04] and schemes["KUR-ID"]["cover"][1] == 0.70
    assert all(s["source"] and s["as_of"] for s in schemes.values())
    f = tmp_path / "loans.csv"
    f.write_text("pd,amount\n" + "".join(f"{0.01 + 0.0001 * i},{1000 + i}\n" for i in range(400)))
    res = CliRunner().invoke(cli, ["scheme", "price-capped", str(f), "--term", "5", "--scenarios", "4000", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["cap_share"] == 0.24 and out["fee_rate"] == 0.0175 and 0 < out["expected_claims"] <= out["cap"]
    f.write_text("pd,amount\n0.5,100\n1.5,100\n")
    res = CliRunner().invoke(cli, ["scheme", "price-capped", str(f)])
    assert res.exit_code == 1 and "row 3, column pd" in res.output
