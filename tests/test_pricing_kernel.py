"""The vectorised pricing kernel against its slow, loan-by-loan reference, and price_loans
with either kernel (the same numbers to rounding)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.fee_schedule import load_schedule
from models.pricing import load_policy, price_loans
from models.pricing_kernel import pricing_kernel, reference_kernel


def _loans(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "p": rng.uniform(0.0005, 0.3, n),
        "tenor": rng.choice([0.25, 1.0, 1.5, 2.0, 3.7, 5.0, 7.25, 10.0, 15.0], n) * rng.uniform(0.9, 1.0, n),
        "code": rng.integers(0, 3, n),
        "rate": np.where(rng.random(n) < 0.1, 0.0, rng.uniform(0.001, 0.08, n)),
        "w_el": rng.lognormal(15, 1, n),
        "w_coc": rng.lognormal(12, 1, n),
    }


@pytest.mark.parametrize("seed", [0, 1])
def test_kernel_equals_reference_constant_hazard(seed):
    a = _loans(300, seed)
    fast = pricing_kernel(**a, discount_rate=0.013)
    slow = reference_kernel(**a, discount_rate=0.013)
    for name in ("el_pv", "coc_pv", "base_pv", "base_nominal", "survival"):
        np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), rtol=1e-11, atol=0, err_msg=name)


def test_kernel_equals_reference_with_a_cumulative_pd_curve():
    a = _loans(200, 5)
    years = int(np.ceil(a["tenor"].max()))
    rng = np.random.default_rng(6)
    cum = np.minimum(np.cumsum(rng.uniform(0.001, 0.05, (200, years)), axis=1), 0.999)
    fast = pricing_kernel(**a, discount_rate=0.0, cumulative_pd=cum)
    slow = reference_kernel(**a, discount_rate=0.0, cumulative_pd=cum)
    for name in ("el_pv", "coc_pv", "base_pv", "base_nominal", "survival"):
        np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), rtol=1e-11, err_msg=name)


def test_price_loans_with_the_reference_kernel_gives_the_same_prices():
    rng = np.random.default_rng(8)
    n = 150
    df = pd.DataFrame({"pd": rng.uniform(0.001, 0.1, n), "amount": rng.lognormal(16, 1, n),
                       "tenor_years": rng.uniform(0.5, 12, n), "coverage": rng.choice([0.8, 1.0], n),
                       "amortization": rng.choice(["bullet", "linear", "annuity"], n), "rate": 0.02,
                       "sales_eur_m": rng.uniform(1e8, 5e9, n) / 160.0 / 1e6})  # the same loans as before
    pol, sched = load_policy(reinsurance_share=0.3), load_schedule("japan")
    fast = price_loans(df, pol, sched)
    slow = price_loans(df, pol, sched, kernel=reference_kernel)
    for col in ("el_pv", "coc_pv", "fee_base_pv", "break_even_rate", "charged_rate", "subsidy_gap_pv", "cum_pd"):
        np.testing.assert_allclose(fast[col], slow[col], rtol=1e-11, err_msg=col)


def test_reference_by_hand_for_one_bullet_loan():
    """2-year bullet, PD 10%, no discounting: EL = w (0.1 + 0.9 x 0.1), base = 1 + 0.9."""
    one = dict(p=np.array([0.1]), tenor=np.array([2.0]), code=np.array([0]), rate=np.array([0.0]),
               w_el=np.array([1.0]), w_coc=np.array([1.0]), discount_rate=0.0)
    for k in (pricing_kernel, reference_kernel):
        r = k(**one)
        assert r.el_pv[0] == pytest.approx(0.19) and r.base_pv[0] == pytest.approx(1.9)
        assert r.survival[0] == pytest.approx(0.81) and r.base_nominal[0] == pytest.approx(2.0)


def test_partial_year_on_a_curve_is_the_constant_hazard_within_the_year():
    """A curve equal to the constant-hazard one prices a 2.4-year loan exactly as the hazard does."""
    p = np.array([0.05])
    cum = 1.0 - (1.0 - p[:, None]) ** np.arange(1, 4)
    a = dict(p=p, tenor=np.array([2.4]), code=np.array([1]), rate=np.array([0.02]), w_el=np.array([1.0]),
             w_coc=np.array([1.0]), discount_rate=0.01)
    for k in (pricing_kernel, reference_kernel):
        hz, cv = k(**a), k(**a, cumulative_pd=cum)
        assert cv.survival[0] == pytest.approx(0.95 ** 2.4, rel=1e-13)
        for name in ("el_pv", "coc_pv", "base_pv"):
            assert getattr(cv, name)[0] == pytest.approx(getattr(hz, name)[0], rel=1e-13)
