"""Basel IRB risk-weight function for corporate exposures (Basel Framework CRE31).

All functions are vectorised over numpy arrays (scalars broadcast).

Units
-----
* ``pd``: probability of default over one year, a fraction in (0, 1).
* ``lgd``: loss given default, a fraction of the exposure at default.
* ``maturity``: effective maturity M in years (CRE31 caps it to 1..5; callers do that).
* ``sales_eur_m``: annual sales (turnover) of the borrower in EUR millions; ``None`` or NaN
  means "no firm-size adjustment" (large corporate). Values are clamped to [5, 50].
* Capital ``K`` is per unit of exposure at default; risk weight = 12.5 * K (a fraction,
  multiply by 100 for the percentage quoted in Basel tables); RWA = risk weight * EAD.

Formulae (CRE31.5-31.8)::

    R = 0.12 w + 0.24 (1 - w),  w = (1 - exp(-50 PD)) / (1 - exp(-50))
    R_sme = R - 0.04 (1 - (S - 5) / 45),  S in EUR m clamped to [5, 50]
    b = (0.11852 - 0.05478 ln PD)^2
    K = [LGD N((G(PD) + sqrt(R) G(0.999)) / sqrt(1 - R)) - PD LGD] (1 + (M - 2.5) b) / (1 - 1.5 b)

The 1.06 scaling factor of Basel II is not applied (Basel III removed it), matching the
Basel II Annex 5 reference table reproduced in the tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

#: Basel III PD floor for corporate exposures (CRE32.4); Basel II used 0.0003.
PD_FLOOR_BASEL3 = 0.0005
PD_FLOOR_BASEL2 = 0.0003
CONFIDENCE = 0.999


def _as_float(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=float)


def floored_pd(pd: Any, pd_floor: float = PD_FLOOR_BASEL3) -> np.ndarray:
    """PD raised to ``pd_floor`` (fraction, one year); values must lie in (0, 1)."""
    p = _as_float(pd)
    return np.maximum(p, pd_floor)


def asset_correlation(pd: Any, sales_eur_m: Any = None) -> np.ndarray:
    """Supervisory asset correlation R for corporate exposures, with the SME adjustment.

    ``sales_eur_m``: annual sales in EUR millions; None/NaN entries get no adjustment;
    other values are clamped to [5, 50] so the reduction is at most 0.04.
    """
    p = _as_float(pd)
    w = -np.expm1(-50.0 * p) / -np.expm1(-50.0)
    r = 0.12 * w + 0.24 * (1.0 - w)
    if sales_eur_m is None:
        return r
    s = _as_float(sales_eur_m)
    s_clamped = np.clip(s, 5.0, 50.0)
    adj = 0.04 * (1.0 - (s_clamped - 5.0) / 45.0)
    adj = np.where(np.isnan(s), 0.0, adj)
    return r - adj


def maturity_b(pd: Any) -> np.ndarray:
    """Maturity adjustment slope b = (0.11852 - 0.05478 ln PD)^2."""
    p = _as_float(pd)
    return (0.11852 - 0.05478 * np.log(p)) ** 2


def capital_k(
    pd: Any,
    lgd: Any,
    maturity: Any = 2.5,
    sales_eur_m: Any = None,
    pd_floor: float = PD_FLOOR_BASEL3,
    confidence: float = CONFIDENCE,
) -> np.ndarray:
    """Capital requirement K per unit of EAD (fraction) under the IRB corporate formula.

    ``pd`` (one-year, fraction) is first raised to ``pd_floor`` (0.0005 Basel III; pass
    0.0003 for Basel II or 0.0 for none). ``maturity`` in years, used as given.
    """
    p = floored_pd(pd, pd_floor)
    lgd_a = _as_float(lgd)
    r = asset_correlation(p, sales_eur_m)
    b = maturity_b(p)
    m = _as_float(maturity)
    cond_pd = ndtr((ndtri(p) + np.sqrt(r) * ndtri(confidence)) / np.sqrt(1.0 - r))
    k = (lgd_a * cond_pd - p * lgd_a) * (1.0 + (m - 2.5) * b) / (1.0 - 1.5 * b)
    return np.maximum(k, 0.0)


def risk_weight(
    pd: Any,
    lgd: Any,
    maturity: Any = 2.5,
    sales_eur_m: Any = None,
    pd_floor: float = PD_FLOOR_BASEL3,
) -> np.ndarray:
    """Risk weight as a fraction of EAD (12.5 * K); RWA = risk_weight * EAD."""
    return 12.5 * capital_k(pd, lgd, maturity, sales_eur_m, pd_floor)


def vasicek_loss_quantile(pd: Any, rho: Any, q: float) -> np.ndarray:
    """q-quantile of the Vasicek (infinitely granular, one-factor) loss-fraction distribution.

    F(x) = N((sqrt(1 - rho) G(x) - G(PD)) / sqrt(rho)), hence
    F^{-1}(q) = N((G(PD) + sqrt(rho) G(q)) / sqrt(1 - rho)).
    """
    p = _as_float(pd)
    r = _as_float(rho)
    return ndtr((ndtri(p) + np.sqrt(r) * ndtri(q)) / np.sqrt(1.0 - r))


def vasicek_loss_cdf(x: Any, pd: Any, rho: Any) -> np.ndarray:
    """CDF of the Vasicek loss fraction, F(x) = N((sqrt(1-rho) G(x) - G(PD)) / sqrt(rho))."""
    xa = _as_float(x)
    return ndtr((np.sqrt(1.0 - _as_float(rho)) * ndtri(xa) - ndtri(_as_float(pd))) / np.sqrt(_as_float(rho)))
