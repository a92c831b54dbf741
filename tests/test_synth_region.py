"""Synthetic region: each country in its own currency, industry mix, size and default level."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from creditdb.cli import cli
from pipelines import synth_region as R
from pipelines.fx import rate_table

TODAY = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def region():
    return R.generate_region(["JP", "TH", "SG", "VN"], 3000, 6, 2, 5, start_year=2016, today=TODAY)


def _all(d, what="statements") -> pd.DataFrame:
    return pd.concat(getattr(d, what).values(), ignore_index=True)


def test_each_country_in_its_currency_with_its_own_banks_and_keys(region):
    st = _all(region)
    assert dict(st.groupby("country").currency.unique().map(lambda a: tuple(a))) == {
        "JP": ("JPY",), "TH": ("THB",), "SG": ("SGD",), "VN": ("VND",)}
    assert set(region.institutions.code) == {f"{c}BK{i}" for c in ("JP", "TH", "SG", "VN") for i in (1, 2)}
    for code, frame in region.statements.items():
        assert frame.borrower_key.str.startswith(code + "-").all()
        cc = code[:2]
        assert frame.corporate_number.dropna().str.startswith(cc).all()
    loans = _all(region, "loans")
    assert loans.groupby(loans.loan_key.str[:2]).currency.unique().map(len).eq(1).all()


def test_balance_sheet_identity_exact_after_rescaling(region):
    st = _all(region)
    assert (st.total_assets == st.total_liabilities + st.net_assets).all()
    known = st.fixed_assets.notna()
    assert (st.total_assets[known] == st.current_assets[known] + st.fixed_assets[known]).all()


def test_default_levels_differ_as_profiled(region):
    a = region.answers[region.answers.primary == 1]
    rate = a.groupby("country").defaulted_within_window.mean()
    n = a.groupby("country").size()
    se = np.sqrt(rate * (1 - rate) / n)
    # VN profiled at 4.5 %, SG at 1.8 %: far apart beyond sampling error
    assert rate["VN"] - rate["SG"] > 4 * np.sqrt(se["VN"] ** 2 + se["SG"] ** 2)
    assert a.groupby("country").true_pd.mean()["VN"] > 2 * a.groupby("country").true_pd.mean()["SG"]


def test_scale_in_usd_follows_the_profile_and_mix_differs(region):
    st = _all(region)
    st = st[st.currency != "VND"]  # VND needs loaded rates
    usd = rate_table().convert(st.sales, st.currency, pd.to_datetime(st.fiscal_year_end), "USD")
    med = pd.Series(usd, index=st.index).groupby(st.country).median()
    # TH firms about 0.4 of Japanese size in real terms (the rates move around the profile's level)
    assert 0.25 < med["TH"] / med["JP"] < 0.6
    assert 0.8 < med["SG"] / med["JP"] < 1.8
    share_a = _all(region).groupby("country").industry.apply(lambda s: (s == "A").mean())
    assert share_a["TH"] > 2 * share_a["JP"]
    months = _all(region).groupby("country").fiscal_year_end.apply(lambda s: (s.str[5:7] == "12").mean())
    assert months["TH"] > 0.6 and months["JP"] < 0.3


def test_cli_writes_countries_and_synthetic_rates_for_non_ecb_currencies(tmp_path):
    out = tmp_path / "region"
    res = CliRunner().invoke(cli, ["synth", "--firms", "60", "--years", "3", "--banks", "1", "--seed", "2",
                                   "--countries", "th,vn", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert set(summary["countries"]) == {"TH", "VN"} and summary["countries"]["VN"]["currency"] == "VND"
    rates = pd.read_csv(out / "fx_rates.csv")
    assert set(rates.currency) == {"VND"} and rates.source.str.contains("not an official rate").all()
    assert (out / "THBK1" / "statements.csv").exists() and (out / "VNBK1" / "statements.csv").exists()
    bad = CliRunner().invoke(cli, ["synth", "--firms", "5", "--years", "2", "--banks", "1", "--seed", "2",
                                   "--countries", "JP,XX", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "XX" in bad.output
