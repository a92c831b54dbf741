"""A portfolio guarantee with a cap on claims paid, priced from the portfolio loss distribution.

Thailand's TCG Portfolio Guarantee Scheme is the model: the guarantor charges an annual
fee on the guaranteed portfolio and pays the lender's losses on defaulted loans only up to
a cap, a share of the portfolio (about 24-30 %). The guarantor's claims over the scheme's
term are ``min(L, cap)``, where ``L`` is the portfolio's credit loss over the term.

``L`` comes from the one-factor (Vasicek) Monte Carlo of :mod:`models.portfolio` over the
term (PD over the term ``1 - (1 - PD)^T`` from the annual PD). Reported, in currency units:
expected loss, expected capped claims with their Monte Carlo standard error, the
probability that the cap binds, the tail of the capped claims (VaR, expected shortfall),
the loss left to the lender, and the break-even annual fee on the portfolio:

    fee x A x a(T) = E[min(L, cap)] x v(T/2) + hurdle x (VaR_999(claims) - E[claims]) x a(T)
                     + admin x A x a(T)

with ``A`` the portfolio amount, ``a(T) = sum_{t=0}^{T-1} (1+r)^-t`` the annuity of fees
paid yearly in advance, ``v(T/2) = (1+r)^(-T/2)`` (claims paid on average mid-term) and the
capital for unexpected claims held over the term at the hurdle rate.

:func:`large_pool_expected_capped_loss` is the closed form in the large-pool (Vasicek)
limit: with loss fraction ``X = N((G(PD) - sqrt(rho) Z) / sqrt(1 - rho))`` and cap ``k`` on
the fraction, ``E[min(X, k)] = PD - N2(G(PD), z*; sqrt(rho)) + k N(z*)`` where
``z* = (G(PD) - sqrt(1 - rho) G(k)) / sqrt(rho)`` (``X > k`` exactly when ``Z < z*``; the
asset value ``sqrt(rho) Z + sqrt(1 - rho) eps`` has correlation ``sqrt(rho)`` with ``Z``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import multivariate_normal

from models.portfolio import simulate_portfolio


def large_pool_expected_capped_loss(pd: float, rho: float, lgd: float, cap_share: float) -> float:
    """E[min(LGD x X, cap_share)] as a fraction of the portfolio, X the Vasicek loss fraction."""
    if not (0 < pd < 1 and 0 < rho < 1 and 0 < lgd <= 1 and cap_share > 0):
        raise ValueError("need 0 < pd < 1, 0 < rho < 1, 0 < lgd <= 1 and cap_share > 0")
    k = cap_share / lgd
    if k >= 1:
        return lgd * pd
    g = ndtri(pd)
    z_star = (g - math.sqrt(1 - rho) * ndtri(k)) / math.sqrt(rho)
    r = math.sqrt(rho)
    joint = multivariate_normal(mean=[0.0, 0.0], cov=[[1.0, r], [r, 1.0]]).cdf([g, z_star])
    return lgd * (pd - float(joint) + k * float(ndtr(z_star)))


def large_pool_cap_probability(pd: float, rho: float, lgd: float, cap_share: float) -> float:
    """P(LGD x X > cap_share) in the large-pool limit."""
    k = cap_share / lgd
    if k >= 1:
        return 0.0
    return float(ndtr((ndtri(pd) - math.sqrt(1 - rho) * ndtri(k)) / math.sqrt(rho)))


@dataclass
class CappedGuaranteeResult:
    """Pricing of a capped portfolio guarantee; amounts in currency units, rates p.a."""

    loans: int
    term_years: float
    portfolio: float
    cap_share: float
    cap: float
    expected_loss: float  # E[L] over the term, simulated
    expected_claims: float  # E[min(L, cap)]
    expected_claims_se: float  # Monte Carlo standard error of expected_claims
    expected_loss_to_lender: float  # E[L - min(L, cap)]
    prob_cap_binds: float
    claims_var_99: float
    claims_var_999: float
    claims_es_99: float
    break_even_fee_rate: float  # claims only
    break_even_fee_rate_with_capital: float  # + hurdle on unexpected claims + admin
    fee_rate: float | None
    expected_fee_income: float | None  # undiscounted fees over the term
    scenarios: int
    seed: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def price_capped_portfolio(pd: Any, ead: Any, cap_share: float, term_years: float, lgd: Any = 1.0,
                           rho: Any = None, sales_eur_m: Any = None, fee_rate: float | None = None,
                           discount_rate: float = 0.0, hurdle_rate: float = 0.0, admin_cost_rate: float = 0.0,
                           n_scenarios: int = 20_000, seed: int = 0, method: str = "bernoulli",
                           **simulate: Any) -> CappedGuaranteeResult:
    """Price a portfolio guarantee paying losses up to ``cap_share`` of the portfolio.

    ``pd``: annual PDs; ``ead``: guaranteed amounts (currency units); ``lgd``: loss given
    default of the guaranteed part (1.0: the guarantor pays the whole defaulted guaranteed
    amount, up to the cap); ``rho``: asset correlation (None: Basel corporate with the SME
    adjustment from ``sales_eur_m``); ``fee_rate``: the scheme's annual fee on the
    portfolio, to compare; ``discount_rate``, ``hurdle_rate``, ``admin_cost_rate`` p.a.
    """
    if term_years <= 0:
        raise ValueError("term_years must be positive")
    if cap_share <= 0:
        raise ValueError("cap_share must be positive")
    p = np.atleast_1d(np.asarray(pd, dtype=float))
    p_term = 1.0 - (1.0 - p) ** term_years
    e = np.broadcast_to(np.asarray(ead, dtype=float), p.shape)
    amount = float(e.sum())
    res = simulate_portfolio(p_term, lgd, e, rho=rho, sales_eur_m=sales_eur_m, n_scenarios=n_scenarios,
                             seed=seed, method=method, **simulate)
    cap = cap_share * amount
    losses = res.losses
    claims = np.minimum(losses, cap)
    srt = np.sort(claims)
    n = srt.size
    var99, var999 = float(np.quantile(srt, 0.99)), float(np.quantile(srt, 0.999))
    es99 = float(srt[n - max(1, math.ceil(n * 0.01 - 1e-9)):].mean())
    mean_claims = float(claims.mean())
    years = math.ceil(term_years)
    annuity = sum((1 + discount_rate) ** -t for t in range(years)) * (term_years / years)
    v_mid = (1 + discount_rate) ** (-term_years / 2)
    base = amount * annuity
    be = mean_claims * v_mid / base
    be_cap = (mean_claims * v_mid + hurdle_rate * max(var999 - mean_claims, 0.0) * annuity) / base + admin_cost_rate
    return CappedGuaranteeResult(
        loans=int(p.size), term_years=float(term_years), portfolio=amount, cap_share=float(cap_share), cap=cap,
        expected_loss=float(losses.mean()), expected_claims=mean_claims,
        expected_claims_se=float(claims.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
        expected_loss_to_lender=float((losses - claims).mean()), prob_cap_binds=float(np.mean(losses > cap)),
        claims_var_99=var99, claims_var_999=var999, claims_es_99=es99,
        break_even_fee_rate=be, break_even_fee_rate_with_capital=be_cap, fee_rate=fee_rate,
        expected_fee_income=None if fee_rate is None else fee_rate * amount * term_years,
        scenarios=n, seed=seed, method=method)
