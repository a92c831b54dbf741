"""Vasicek Monte Carlo against the closed-form loss-fraction distribution."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from models import irb, portfolio

N_LOANS, PD, RHO, N_SCEN = 5_000, 0.02, 0.15, 20_000


def _vasicek_q(a: float) -> float:
    g = stats.norm.ppf
    return float(stats.norm.cdf((g(PD) + math.sqrt(RHO) * g(a)) / math.sqrt(1 - RHO)))


def _vasicek_pdf(x: float) -> float:
    g = stats.norm.ppf
    num = math.sqrt(1 - RHO) * g(x) - g(PD)
    return math.sqrt((1 - RHO) / RHO) * stats.norm.pdf(num / math.sqrt(RHO)) / stats.norm.pdf(g(x))


@pytest.fixture(scope="module")
def homogeneous() -> portfolio.PortfolioResult:
    return portfolio.simulate_portfolio(np.full(N_LOANS, PD), 1.0, 1.0, rho=RHO, n_scenarios=N_SCEN, seed=7)


@pytest.mark.parametrize("a", [0.95, 0.99, 0.999])
def test_quantiles_match_vasicek_within_mc_error(homogeneous: portfolio.PortfolioResult, a: float) -> None:
    """Tolerance: 4 standard errors of a sample quantile, sqrt(a(1-a)/N) / f(q) with f the
    Vasicek density at q (asymptotic order-statistic variance), plus 0.001 for the
    granularity of a 5,000-loan book (the exact binomial-mixture quantile differs from the
    infinitely granular one by about 0.0002-0.0005 here)."""
    q = _vasicek_q(a)
    se = math.sqrt(a * (1 - a) / N_SCEN) / _vasicek_pdf(q)
    got = homogeneous.quantiles[a] / N_LOANS
    assert abs(got - q) <= 4 * se + 0.001, (got, q, se)


def test_expected_loss_matches_sum_pd_lgd_ead(homogeneous: portfolio.PortfolioResult) -> None:
    assert homogeneous.expected_loss_analytic == pytest.approx(N_LOANS * PD)
    se = homogeneous.losses.std(ddof=1) / math.sqrt(N_SCEN)
    assert abs(homogeneous.expected_loss - N_LOANS * PD) <= 4 * se


def test_expected_shortfall_99_against_closed_form(homogeneous: portfolio.PortfolioResult) -> None:
    """ES_99 = (1/0.01) * integral_{0.99}^{1} q(u) du for the Vasicek distribution; MC
    tolerance 4 x (std of the 200 tail losses)/sqrt(200) + 0.001 granularity."""
    es_ref = integrate.quad(_vasicek_q, 0.99, 1.0, limit=200)[0] / 0.01
    tail = np.sort(homogeneous.losses)[-200:] / N_LOANS
    tol = 4 * tail.std(ddof=1) / math.sqrt(tail.size) + 0.001
    assert abs(homogeneous.expected_shortfall[0.99] / N_LOANS - es_ref) <= tol
    assert homogeneous.expected_shortfall[0.999] >= homogeneous.quantiles[0.999]


def test_conditional_method_is_the_granular_limit() -> None:
    r = portfolio.simulate_portfolio(np.full(200, PD), 1.0, 1.0, rho=RHO, n_scenarios=N_SCEN, seed=3, method="conditional")
    for a in (0.95, 0.99, 0.999):
        q = _vasicek_q(a)
        se = math.sqrt(a * (1 - a) / N_SCEN) / _vasicek_pdf(q)
        assert abs(r.quantiles[a] / 200 - q) <= 4 * se


def test_deterministic_for_a_seed_and_independent_of_workers() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.005, 0.05, 3000)
    ead = rng.uniform(1, 10, 3000)
    kw = dict(n_scenarios=3000, chunk_elements=1 << 20)
    r1 = portfolio.simulate_portfolio(p, 0.6, ead, seed=11, workers=1, **kw)
    r2 = portfolio.simulate_portfolio(p, 0.6, ead, seed=11, workers=2, **kw)
    r3 = portfolio.simulate_portfolio(p, 0.6, ead, seed=12, workers=1, **kw)
    np.testing.assert_array_equal(r1.losses, r2.losses)
    assert not np.array_equal(r1.losses, r3.losses)


def test_fund_adequacy_histogram_and_default_basel_rho() -> None:
    p = np.full(1000, 0.03)
    r = portfolio.simulate_portfolio(p, 0.5, 2.0, n_scenarios=4000, seed=1, fund=60.0, bins=20)
    assert r.prob_loss_exceeds_fund == pytest.approx(np.mean(r.losses > 60.0))
    assert r.hist_counts.sum() == 4000 and r.hist_edges.size == 21
    # default rho = Basel R: its 99.9% quantile is close to the Vasicek one with R(0.03)
    R = float(irb.asset_correlation(0.03))
    q = float(irb.vasicek_loss_quantile(0.03, R, 0.99))
    assert r.quantiles[0.99] / (1000 * 0.5 * 2.0) == pytest.approx(q, rel=0.1)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="pd"):
        portfolio.simulate_portfolio([0.0, 0.1], 0.5, 1.0)
    with pytest.raises(ValueError, match="method"):
        portfolio.simulate_portfolio([0.1], 0.5, 1.0, method="magic")
