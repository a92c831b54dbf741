"""IRB formula against the Basel II Annex 5 table (BCBS, June 2006) and the Vasicek closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from models import irb

# Basel II (June 2006) Annex 5, corporate exposures, LGD 45%, M = 2.5; risk weights in %.
PDS_PCT = [0.03, 0.10, 0.50, 1.00, 2.00, 5.00, 10.00, 20.00]
RW_LARGE = [14.44, 29.65, 69.61, 92.32, 114.86, 149.86, 193.09, 238.23]
RW_SME_5M = [11.30, 23.30, 54.91, 72.40, 88.55]


def test_annex5_large_corporates() -> None:
    pd = np.array(PDS_PCT) / 100
    rw = irb.risk_weight(pd, 0.45, 2.5, None, pd_floor=0.0003) * 100
    np.testing.assert_allclose(rw, RW_LARGE, atol=0.01)


def test_annex5_sme_sales_5m() -> None:
    pd = np.array(PDS_PCT[: len(RW_SME_5M)]) / 100
    rw = irb.risk_weight(pd, 0.45, 2.5, 5.0, pd_floor=0.0003) * 100
    np.testing.assert_allclose(rw, RW_SME_5M, atol=0.01)


def test_sales_below_5m_clamped_and_nan_means_no_adjustment() -> None:
    pd = np.full(3, 0.01)
    r = irb.asset_correlation(pd, np.array([1.0, 5.0, np.nan]))
    assert r[0] == pytest.approx(r[1])
    assert r[2] == pytest.approx(float(irb.asset_correlation(0.01)))
    assert r[2] - r[1] == pytest.approx(0.04)
    # 50m and above: no reduction
    assert float(irb.asset_correlation(0.01, 80.0)) == pytest.approx(float(irb.asset_correlation(0.01)))


def test_pd_floor_default_basel3() -> None:
    k_low = irb.capital_k(0.0001, 0.45)
    k_floor = irb.capital_k(0.0005, 0.45)
    assert float(k_low) == pytest.approx(float(k_floor))
    assert float(irb.capital_k(0.0001, 0.45, pd_floor=0.0003)) < float(k_floor)


@pytest.mark.parametrize("pd", [0.001, 0.01, 0.05, 0.2])
@pytest.mark.parametrize("sales", [None, 5.0, 20.0])
def test_k_equals_vasicek_unexpected_loss(pd: float, sales: float | None) -> None:
    """At M = 2.5 with the maturity factor removed, K = LGD (q99.9 - PD)."""
    lgd = 0.45
    w = (1 - math.exp(-50 * pd)) / (1 - math.exp(-50))
    rho = 0.12 * w + 0.24 * (1 - w)
    if sales is not None:
        rho -= 0.04 * (1 - (min(max(sales, 5), 50) - 5) / 45)
    norm = stats.norm

    # 99.9% quantile of the loss fraction, found by inverting its CDF numerically.
    def cdf_minus(x: float) -> float:
        return norm.cdf((math.sqrt(1 - rho) * norm.ppf(x) - norm.ppf(pd)) / math.sqrt(rho)) - 0.999

    q = optimize.brentq(cdf_minus, 1e-12, 1 - 1e-12, xtol=1e-14)
    b = (0.11852 - 0.05478 * math.log(pd)) ** 2
    k = float(irb.capital_k(pd, lgd, 2.5, sales, pd_floor=0.0))
    assert k * (1 - 1.5 * b) == pytest.approx(lgd * q - pd * lgd, rel=1e-9)
    assert float(irb.vasicek_loss_quantile(pd, rho, 0.999)) == pytest.approx(q, rel=1e-9)


def test_maturity_adjustment_increases_capital() -> None:
    k = irb.capital_k(0.01, 0.45, np.array([1.0, 2.5, 5.0]))
    assert k[0] < k[1] < k[2]
