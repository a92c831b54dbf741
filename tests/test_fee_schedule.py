"""Fee schedules as data: Japan's CGC table (CGC Tokyo, Yamanashi, Shiga fee pages), KODIT-like bands,
SBA-like flat fee."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import fee_schedule as fs

JAPAN_80 = {"1": 1.90, "2": 1.75, "3": 1.55, "4": 1.35, "5": 1.15, "6": 1.00, "7": 0.80, "8": 0.60, "9": 0.45}
JAPAN_100 = {"1": 2.20, "2": 2.00, "3": 1.80, "4": 1.60, "5": 1.35, "6": 1.10, "7": 0.90, "8": 0.70, "9": 0.50}


def test_available_includes_shipped_schedules() -> None:
    assert {"japan", "kodit", "sba"} <= set(fs.available_schedules())


def test_japan_worked_example_by_hand() -> None:
    """10,000,000 JPY, 5 years, 60 monthly instalments, category 3 at 80% coverage."""
    s = fs.load_schedule("japan")
    pd = 0.025  # inside the default category-3 band [0.022, 0.032)
    assert str(s.category(pd)) == "3"
    rate = s.annual_rate(pd, 0.8)
    assert float(rate) == pytest.approx(0.0155)
    fee = s.upfront_fee(10_000_000, rate, 60, 60)
    assert float(fee) == pytest.approx(10_000_000 * 0.0155 * 60 / 12 * 0.55)
    assert float(fee) == pytest.approx(426_250.0)


def test_japan_table_both_coverages() -> None:
    s = fs.load_schedule("japan")
    # a PD in the middle of each band
    lo = np.concatenate([[0.0], s.pd_upper[:-1]])
    mids = (lo + np.minimum(s.pd_upper, 0.2)) / 2
    labels = s.category(mids)
    got80 = dict(zip(labels, s.annual_rate(mids, 0.8) * 100, strict=False))
    got100 = dict(zip(labels, s.annual_rate(mids, 1.0) * 100, strict=False))
    for k, v in JAPAN_80.items():
        assert got80[k] == pytest.approx(v)
    for k, v in JAPAN_100.items():
        assert got100[k] == pytest.approx(v)


def test_category_lookup_by_pd_boundaries() -> None:
    s = fs.load_schedule("japan")
    cut = s.pd_upper[0]  # upper bound of the safest category is exclusive
    assert list(s.category([cut * 0.999, cut, 0.5, 0.9999])) == ["9", "8", "1", "1"]
    # monotone: riskier PD never gets a cheaper rate
    pds = np.linspace(0.0001, 0.3, 500)
    assert np.all(np.diff(s.annual_rate(pds, 0.8)) >= 0)


def test_secured_discount_and_no_statements() -> None:
    s = fs.load_schedule("japan")
    r = s.annual_rate([0.025, 0.025], 0.8, secured=[False, True])
    assert r[0] - r[1] == pytest.approx(0.0010)
    # no statements -> category 5 whatever the PD
    cat = s.category([0.001, 0.2], no_statements=[True, True])
    assert list(cat) == ["5", "5"]
    assert s.annual_rate(0.2, 1.0, no_statements=True)[()] == pytest.approx(0.0135)


def test_instalment_coefficients() -> None:
    s = fs.load_schedule("japan")
    got = s.instalment_coefficient([1, 2, 6, 7, 12, 13, 24, 25, 120])
    np.testing.assert_allclose(got, [1.0, 0.70, 0.70, 0.65, 0.65, 0.60, 0.60, 0.55, 0.55])


def test_kodit_and_sba() -> None:
    k = fs.load_schedule("kodit")
    rates = k.annual_rate(np.array([0.0001, 0.5]), 0.85)
    assert rates[0] == pytest.approx(0.005) and rates[1] == pytest.approx(0.03)
    sba = fs.load_schedule("sba")
    assert sba.fee_base == "covered" and sba.payment == "annual"
    np.testing.assert_allclose(sba.annual_rate([0.001, 0.3], 0.75), 0.0055)


def test_unknown_schedule_is_a_clear_error() -> None:
    with pytest.raises(fs.FeeScheduleError, match=r"unknown fee schedule 'atlantis'.*japan"):
        fs.load_schedule("atlantis")


def test_schedule_from_path_and_validation(tmp_path) -> None:
    good = tmp_path / "fee_schedule_x.toml"
    good.write_text('name = "x"\ncoverages = [0.8]\n[[category]]\nlabel = "a"\npd_upper = 0.1\nrate = 0.01\n'
                    '[[category]]\nlabel = "b"\npd_upper = 1.0\nrate = 0.02\n')
    s = fs.load_schedule(good)
    assert list(s.annual_rate([0.05, 0.5])) == [0.01, 0.02]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[category]]\nlabel = "a"\npd_upper = 0.5\nrate = 0.01\n')
    with pytest.raises(fs.FeeScheduleError, match="last must be 1.0"):
        fs.load_schedule(bad)


def test_scalar_rates_must_state_their_coverages(tmp_path) -> None:
    bare = tmp_path / "bare.toml"
    bare.write_text('name = "bare"\n[[category]]\nlabel = "a"\npd_upper = 1.0\nrate = 0.01\n')
    with pytest.raises(fs.FeeScheduleError, match="must state the coverages it prices"):
        fs.load_schedule(bare)


@pytest.mark.parametrize("name, priced, refused", [
    ("japan", [0.8, 1.0], [0.5, 0.7, 0.9, 0.79]),
    ("kodit", [0.5, 0.85, 1.0], [0.4, 0.3]),
    ("sba", [0.5, 0.75, 0.85], [0.9, 1.0, 0.4]),
])
def test_each_shipped_schedule_prices_only_its_coverages(name, priced, refused) -> None:
    s = fs.load_schedule(name)
    assert s.coverage_ok(priced).all() and not s.coverage_ok(refused).any()
    assert np.all(s.annual_rate(np.full(len(priced), 0.01), priced) > 0)
    for c in refused:
        with pytest.raises(fs.CoverageError, match=rf"{name}.*does not price coverage {c:g} \(it prices"):
            s.annual_rate(0.01, c)
        assert "is not priced by schedule" in fs.coverage_problem(s, c)
    assert fs.coverage_problem(s, priced[0]) is None


def test_japan_refuses_half_cover_instead_of_charging_the_80_percent_fee() -> None:
    """The bug of issue 14: 50% cover was charged the 80% fee (negative subsidy)."""
    s = fs.load_schedule("japan")
    with pytest.raises(fs.CoverageError, match="it prices coverage 0.8, 1"):
        s.annual_rate(0.012, 0.5)


def test_pro_rata_rule_declared_in_the_schedule(tmp_path) -> None:
    doc = (Path(fs.DATA_DIR) / "fee_schedule_japan.toml").read_text()
    f = tmp_path / "japan_pro_rata.toml"
    f.write_text('coverage_rule = "pro_rata"\npro_rata_from = 0.8\n' + doc)
    s = fs.load_schedule(f)
    pds = np.array([0.001, 0.012, 0.3])
    base = fs.load_schedule("japan").annual_rate(pds, 0.8)
    # by hand: the 80% rate scaled by cover / 0.8; the table's own keys are unchanged
    np.testing.assert_allclose(s.annual_rate(pds, 0.5), base * 0.5 / 0.8, rtol=1e-15)
    np.testing.assert_allclose(s.annual_rate(pds, 1.0), fs.load_schedule("japan").annual_rate(pds, 1.0))
    np.testing.assert_allclose(s.annual_rate(pds, 0.8), base)
    f.write_text('coverage_rule = "pro_rata"\npro_rata_from = 0.7\n' + doc)
    with pytest.raises(fs.FeeScheduleError, match="pro_rata_from"):
        fs.load_schedule(f)
