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
    r = portfolio.simulate_portfolio(np.full(200, PD), 1.0, 1.0, rho=RHO, n_scenarios=N_SCEN, seed=3,
                                     method="conditional")
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


# --------------------------------------------------------------------------- Euler contributions


def _es_contribution_asrf(p: np.ndarray, rho: np.ndarray, w: np.ndarray, a: float) -> np.ndarray:
    """Closed form of loan i's Euler contribution to ES_a in the infinitely granular
    one-factor model: w_i P(X_i < G(p_i), Z < G(1 - a)) / (1 - a), with corr(X_i, Z) = sqrt(rho_i)
    (the loss is decreasing in Z, so the ES tail is Z below its (1 - a) quantile). The
    bivariate normal CDF is scipy's, independent of the simulation."""
    g = stats.norm.ppf
    out = []
    for pi, ri, wi in zip(p, rho, w, strict=True):
        r = math.sqrt(ri)
        mvn = stats.multivariate_normal(mean=[0, 0], cov=[[1, r], [r, 1]])
        out.append(wi * mvn.cdf([g(pi), g(1 - a)]) / (1 - a))
    return np.array(out)


def test_es_contributions_sum_to_es_and_var_contributions_to_var() -> None:
    rng = np.random.default_rng(4)
    n = 800
    p, ead = rng.uniform(0.002, 0.08, n), rng.lognormal(0, 1.2, n)
    r = portfolio.simulate_portfolio(p, 0.6, ead, n_scenarios=20_000, seed=9, contributions=True, workers=2,
                                     chunk_elements=1 << 18)
    c = r.contributions
    for a in portfolio.ES_LEVELS:  # by construction, up to float32 rounding of the scenario losses
        assert c[f"es_{a:g}"].sum() == pytest.approx(r.expected_shortfall[a], rel=1e-5)
    np.testing.assert_allclose(c["el"], p * 0.6 * ead)
    srt = np.sort(r.losses)
    for a in portfolio.QUANTILES:  # kernel estimate: within the spread of the losses in the VaR window
        h = max(1, r.n_scenarios // 1000)
        k = int(round(a * (r.n_scenarios - 1)))
        window = srt[k - h: k + h + 1]
        assert window.min() - 1e-6 <= c[f"var_{a:g}"].sum() <= window.max() + 1e-6
        assert c[f"var_{a:g}"].sum() == pytest.approx(r.quantiles[a], rel=0.05)
    assert np.all(c["es_0.999"] >= 0) and np.all(c["es_0.999"] <= 0.6 * ead + 1e-9)
    # same seed, one worker: the same contributions (the second pass re-draws the same scenarios)
    r1 = portfolio.simulate_portfolio(p, 0.6, ead, n_scenarios=20_000, seed=9, contributions=True, workers=1,
                                      chunk_elements=1 << 18)
    np.testing.assert_array_equal(r1.contributions["es_0.99"], c["es_0.99"])


def test_es_contributions_match_the_asrf_closed_form_per_loan() -> None:
    """Conditional (granular) method, a heterogeneous book: each loan's ES contribution
    against the bivariate-normal closed form. Tolerance: 4 standard errors of the tail
    mean, estimated from the simulated conditional losses of the loan over the tail."""
    p = np.array([0.003, 0.01, 0.03, 0.08])
    rho = np.array([0.24, 0.20, 0.15, 0.12])
    w = np.array([5.0, 2.0, 1.0, 0.5])
    N = 200_000
    res = portfolio.simulate_portfolio(p, 1.0, w, rho=rho, n_scenarios=N, seed=21, method="conditional",
                                       contributions=True)
    for a in (0.99, 0.999):
        ref = _es_contribution_asrf(p, rho, w, a)
        got = res.contributions[f"es_{a:g}"]
        # standard error: conditional loss of loan i at the tail's Z values, their spread / sqrt(k)
        k = math.ceil(N * (1 - a))
        z_tail = stats.norm.ppf((np.arange(k) + 0.5) / N)  # the tail's Z quantiles
        cond = w[:, None] * stats.norm.cdf((stats.norm.ppf(p)[:, None] - np.sqrt(rho)[:, None] * z_tail)
                                           / np.sqrt(1 - rho)[:, None])
        se = cond.std(axis=1, ddof=1) / math.sqrt(k)
        assert np.all(np.abs(got - ref) <= 4 * se + 1e-9), (a, got, ref, se)
        assert got.sum() == pytest.approx(res.expected_shortfall[a], rel=1e-9)


def test_homogeneous_large_book_contributions_are_vasicek_es_per_loan() -> None:
    """Bernoulli method, 5,000 identical loans (the module's book): every loan's ES_99
    contribution is close to ES_99 (Vasicek, infinitely granular) / n, and their sum is ES_99."""
    r = portfolio.simulate_portfolio(np.full(N_LOANS, PD), 1.0, 1.0, rho=RHO, n_scenarios=N_SCEN, seed=7,
                                     contributions=True)
    es_ref = integrate.quad(_vasicek_q, 0.99, 1.0, limit=200)[0] / 0.01  # loss fraction
    c = r.contributions["es_0.99"]
    assert c.sum() == pytest.approx(r.expected_shortfall[0.99], rel=1e-5)
    tail = np.sort(r.losses)[-200:] / N_LOANS
    tol = 4 * tail.std(ddof=1) / math.sqrt(tail.size) + 0.001
    assert abs(c.mean() - es_ref) <= tol
    # each loan: its default frequency over the 200 tail scenarios; binomial spread around the mean
    sd = math.sqrt(es_ref * (1 - es_ref) / 200)
    assert np.abs(c - c.mean()).max() <= 6 * sd and c.std() == pytest.approx(sd, rel=0.25)


def test_a_concentrated_loan_drives_the_tail_more_than_its_expected_loss() -> None:
    p = np.full(1001, 0.02)
    ead = np.ones(1001)
    ead[0] = 100.0  # one big loan, 9% of the book
    r = portfolio.simulate_portfolio(p, 1.0, ead, rho=0.12, n_scenarios=20_000, seed=5, contributions=True)
    c = r.contributions
    el_share = c["el"][0] / c["el"].sum()
    es_share = c["es_0.999"][0] / c["es_0.999"].sum()
    assert es_share > 2 * el_share
