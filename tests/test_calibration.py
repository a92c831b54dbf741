"""Calibration: anchored mean PD, floor, monotonicity, Platt fit against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from models.calibration import PD_FLOOR, Calibration, fit_calibration, long_run_default_rate


def sample(n=5000, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.normal(-3.0, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.4 + 0.8 * s)))).astype(int)
    return s, y


@pytest.mark.parametrize("target", [0.01, 0.0386, 0.08])
def test_mean_pd_equals_target_and_floor_holds(target):
    s, y = sample()
    cal = fit_calibration(s, y, target_rate=target)
    pd_ = cal.predict(s)
    assert abs(pd_.mean() - target) < 1e-6
    assert pd_.min() >= PD_FLOOR
    assert (pd_ < 1).all()
    # the floor binds for the best scores at these rates (so the solve had to include it)
    assert (pd_ == PD_FLOOR).any()


def test_monotone_in_score():
    s, y = sample()
    cal = fit_calibration(s, y, target_rate=0.03)
    grid = np.linspace(-15, 10, 2001)
    p = cal.predict(grid)
    assert (np.diff(p) >= 0).all()
    above = p > PD_FLOOR
    assert (np.diff(p[above]) > 0).all()


def test_platt_step_matches_scipy_maximum_likelihood():
    s, y = sample()
    cal = fit_calibration(s, y)  # target = sample rate

    def nll(w):
        z = w[0] + w[1] * s
        return float(np.sum(np.logaddexp(0, z) - y * z))

    ref = minimize(nll, x0=[0.0, 1.0], method="BFGS", options={"gtol": 1e-9}).x
    assert cal.intercept == pytest.approx(ref[0], abs=1e-4)
    assert cal.slope == pytest.approx(ref[1], abs=1e-4)
    # unpenalised logit already matches the sample mean; only the floor needs a tiny shift
    assert abs(cal.shift) < 0.05
    assert abs(cal.predict(s).mean() - y.mean()) < 1e-6


def test_round_trip_and_rejections():
    s, y = sample(2000)
    cal = fit_calibration(s, y, target_rate=0.02)
    again = Calibration.from_dict(cal.to_dict())
    np.testing.assert_array_equal(again.predict(s), cal.predict(s))
    with pytest.raises(ValueError, match="slope"):
        fit_calibration(-s, y)
    with pytest.raises(ValueError, match="floor"):
        fit_calibration(s, y, target_rate=0.0001)


def test_long_run_rate_weights_years_equally():
    labels = [1, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    years = [2018] * 4 + [2019] * 2 + [2020] * 4
    assert long_run_default_rate(labels, years) == pytest.approx((0.25 + 1.0 + 0.0) / 3)
