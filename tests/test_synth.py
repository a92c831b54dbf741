"""Tests of the synthetic-data generator (pipelines.synth) and ``creditdb synth``."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from pipelines import dictionary as dd
from pipelines import synth

FIRMS, YEARS, BANKS, SEED = 2000, 5, 3, 11
TODAY = dt.date.today()
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
KEYS = {"borrower_key": str, "corporate_number": str, "loan_key": str, "postal_code": str, "phone": str}


@pytest.fixture(scope="module")
def data() -> synth.SynthData:
    return synth.generate(FIRMS, YEARS, BANKS, SEED)


@pytest.fixture(scope="module")
def written(data, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synth")
    return out, synth.write(data, out)


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=KEYS)


@pytest.fixture(scope="module")
def statements(written) -> pd.DataFrame:
    out, _ = written
    return pd.concat([_read(out / f"BK{b}" / "statements.csv").assign(bank=f"BK{b}") for b in range(1, BANKS + 1)],
                     ignore_index=True)


@pytest.fixture(scope="module")
def joined(statements, written) -> pd.DataFrame:
    out, _ = written
    answers = _read(out / "answers.csv")
    m = statements.merge(answers, on=["bank", "borrower_key", "fiscal_year_end"], validate="one_to_one",
                         suffixes=("", "_answer"))
    assert len(m) == len(statements) == len(answers)
    return m[m["primary"] == 1]


def test_columns_are_the_dictionary_in_its_order(data):
    for kind, frames in (("statements", data.statements), ("loans", data.loans), ("defaults", data.defaults)):
        for code, df in frames.items():
            cols = list(df.columns)
            assert set(cols) <= set(dd.names(kind)), (kind, code)
            assert set(dd.required(kind)) <= set(cols), (kind, code)
            assert cols == [c for c in dd.names(kind) if c in cols]
            assert not df.duplicated(list(dd.FILE_KEYS[kind])).any()
    # the PII columns are present, so anonymisation is exercised
    assert {c.name for c in dd.PII} <= set(data.statements["BK1"].columns)
    assert list(data.institutions.columns) == ["code", "name", "kind", "country"]
    assert list(data.institutions["code"]) == ["BK1", "BK2", "BK3"]


def test_accounting_identities_hold_on_every_row(statements):
    s = statements
    assert (s.total_assets == s.total_liabilities + s.net_assets).all()
    assert (s.current_assets <= s.total_assets).all()
    parts = s[["cash", "receivables", "inventory"]].fillna(0).sum(axis=1)
    assert (parts <= s.current_assets).all()
    fa = s.fixed_assets.notna()
    assert (s.fixed_assets[fa] == (s.total_assets - s.current_assets)[fa]).all()
    assert (s.current_liabilities <= s.total_liabilities).all()
    ibd = s.interest_bearing_debt.notna()
    assert (s.interest_bearing_debt[ibd] <= s.total_liabilities[ibd]).all()
    assert (s.sales >= 1e7).all() and (s.sales <= 5e9).all()
    assert (s.total_assets > 0).all() and (s[["cash", "receivables", "inventory"]].fillna(0) >= 0).all().all()
    for c in dd.of_type("statements", "amount"):  # whole currency units, integers in the file
        assert s[c].dropna().mod(1).eq(0).all(), c
    assert (s.net_assets < 0).mean() > 0.02  # some balance-sheet insolvency, as in real SME data


def test_realistic_blanks_and_codes(statements, data):
    s = statements
    for c in ("cost_of_sales", "depreciation", "ordinary_profit", "employees", "established"):
        assert 0.05 <= s[c].isna().mean() <= 0.15, c
    for c in dd.required("statements"):
        assert s[c].notna().all(), c
    assert set(s.industry) <= set(dd.ISIC_SECTIONS)
    assert list(s.industry.value_counts().index[:3]) == ["G", "C", "F"]
    assert s.postal_code.dropna().str.fullmatch(r"\d{3}-\d{4}").all()
    assert (s.country == "JP").all() and (s.currency == "JPY").all()
    assert s.firm_name.str.fullmatch(r"Firm \d{6} .+").all()
    # several fiscal year-end months, March the most common (Japan)
    months = s.fiscal_year_end.str[5:7].value_counts()
    assert months.index[0] == "03" and len(months) >= 6
    # one statement per firm and fiscal year at each bank
    assert not s.duplicated(["bank", "borrower_key", "fiscal_year_end"]).any()


def test_corporate_numbers_follow_the_nta_check_digit(data):
    # published example: the National Tax Agency's own corporate number is 7000012050002
    assert synth.corporate_check_digit(np.array([12050002]))[0] == 7
    a = data.answers.drop_duplicates("firm_ref")
    cn = a.corporate_number.dropna()
    assert 0.85 <= len(cn) / len(a) <= 0.97  # most firms have one
    assert cn.str.fullmatch(r"\d{13}").all() and cn.is_unique
    digits = cn.to_numpy().astype(np.int64)
    assert (synth.corporate_check_digit(digits % 10**12) == digits // 10**12).all()


def test_no_date_in_the_future_and_iso(written):
    out, _ = written
    cols = {"statements": ["established", "fiscal_year_end"], "loans": ["origination_date"],
            "defaults": ["default_date"]}
    for b in range(1, BANKS + 1):
        for kind, date_cols in cols.items():
            df = _read(out / f"BK{b}" / f"{kind}.csv")
            for c in date_cols:
                v = df[c].dropna()
                assert v.str.match(ISO).all(), (kind, c)
                assert (pd.to_datetime(v).dt.date <= TODAY).all(), (kind, c)
        loans = _read(out / f"BK{b}" / "loans.csv")
        assert (loans.maturity_date > loans.origination_date).all()
    answers = _read(out / "answers.csv")
    assert (pd.to_datetime(answers.default_date.dropna()).dt.date <= TODAY).all()


def test_years_are_clipped_so_nothing_is_in_the_future():
    today = dt.date(2026, 11, 28)
    assert synth.last_window_end(2024, 1) == dt.date(2026, 3, 31)  # Dec 2024 + 15 months
    assert synth.effective_years(2024, 5, today) == 1
    assert synth.effective_years(2015, 8, today) == 8
    d = synth.generate(50, 5, 1, 3, start_year=2023, today=today)
    assert d.meta["years"] == 2 and d.meta["years_requested"] == 5
    with pytest.raises(ValueError, match="no fiscal year"):
        synth.generate(50, 5, 1, 3, start_year=2026, today=today)


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    files = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        summary = synth.write(synth.generate(300, 4, 2, seed, error_rate=0.03), tmp_path / name)
        files[name] = {f: (tmp_path / name / f).read_bytes() for f in summary["files"]}
    assert files["a"] == files["b"]
    assert files["a"]["BK1/statements.csv"] != files["c"]["BK1/statements.csv"]
    assert "BK2/injected_errors.csv" in files["a"]
    pq = []
    for name in ("p1", "p2"):
        summary = synth.write(synth.generate(100, 3, 2, 5), tmp_path / name, "parquet")
        pq.append([(tmp_path / name / f).read_bytes() for f in summary["files"]])
    assert pq[0] == pq[1]


def test_parquet_output_matches_csv(tmp_path):
    d = synth.generate(200, 3, 2, 9)
    synth.write(d, tmp_path / "p", "parquet")
    synth.write(d, tmp_path / "c", "csv")
    pq = pd.read_parquet(tmp_path / "p" / "BK2" / "statements.parquet")
    csv = _read(tmp_path / "c" / "BK2" / "statements.csv")
    assert list(pq.columns) == list(csv.columns) and len(pq) == len(csv)
    assert (pq.total_assets.astype("int64") == csv.total_assets).all()


def test_default_rate_is_realistic_and_moves_with_the_cycle(data):
    a = data.answers[data.answers.primary == 1]
    assert a.duplicated(["firm_ref", "fiscal_year_end"]).sum() == 0
    assert 0.01 <= a.defaulted_within_window.mean() <= 0.03
    assert 0.01 <= a.true_pd.mean() <= 0.03
    by_year = a.groupby(a.fiscal_year_end.str[:4])["true_pd"].mean().to_numpy()
    rho = spearmanr(by_year, -np.asarray(data.meta["cycle"])).statistic
    assert rho > 0.8  # a good year (high cycle) has a low average PD
    assert by_year.max() / by_year.min() > 1.2


def test_default_timing_and_exit(data, written):
    out, _ = written
    a = data.answers[data.answers.primary == 1]
    d = a[a.defaulted_within_window == 1]
    assert a.default_date.isna().sum() == (a.defaulted_within_window == 0).sum()
    fye = pd.to_datetime(d.fiscal_year_end)
    start = fye + pd.offsets.MonthEnd(3)
    end = fye + pd.offsets.MonthEnd(15)
    dd_ = pd.to_datetime(d.default_date)
    assert ((dd_ > start) & (dd_ < end)).all()
    # a defaulted firm files nothing afterwards: its default is on its last statement
    last = a.groupby("firm_ref").fiscal_year_end.max()
    assert (d.fiscal_year_end.to_numpy() == last.loc[d.firm_ref].to_numpy()).all()
    assert d.firm_ref.is_unique
    # every bank of a defaulted firm submits the event, on the same date
    all_rows = data.answers[data.answers.defaulted_within_window == 1]
    events = pd.concat([_read(out / f"BK{b}" / "defaults.csv") for b in range(1, BANKS + 1)])
    assert len(events) == len(all_rows)
    m = all_rows.merge(events, on="borrower_key", suffixes=("", "_event"))
    assert len(m) == len(all_rows) and (m.default_date == m.default_date_event).all()
    assert set(events.event_type) <= set(dd.EVENT_TYPES)
    top = events.event_type.value_counts(normalize=True)
    assert set(top.index[:3]) == {"past_due_90", "subrogated", "bankrupt"}
    assert (events.exposure >= 0).all() and (events.currency == "JPY").all()


def test_firm_at_two_banks_has_identical_statements(data):
    a = data.answers
    banks_per_firm = a.drop_duplicates(["firm_ref", "bank"]).groupby("firm_ref").bank.nunique()
    assert 0.10 <= (banks_per_firm == 2).mean() <= 0.20
    dual = a[a.firm_ref.isin(banks_per_firm[banks_per_firm == 2].index)]
    rows = []
    for code, df in data.statements.items():
        rows.append(df.merge(dual[dual.bank == code][["firm_ref", "borrower_key", "fiscal_year_end"]],
                             on=["borrower_key", "fiscal_year_end"]).assign(bank=code))
    s = pd.concat(rows).sort_values(["firm_ref", "fiscal_year_end", "bank"])
    first, second = s.iloc[0::2].reset_index(drop=True), s.iloc[1::2].reset_index(drop=True)
    assert (first.firm_ref == second.firm_ref).all() and (first.bank != second.bank).all()
    same = [c for c in first.columns if c not in ("borrower_key", "bank")]
    pd.testing.assert_frame_equal(first[same], second[same])
    assert (first.borrower_key != second.borrower_key).all()
    assert first.corporate_number.notna().any()


def test_true_pd_is_informative_and_ratios_are_imperfect(joined):
    m = joined
    y = m.defaulted_within_window.to_numpy()
    auc_true = roc_auc_score(y, m.true_pd)
    assert auc_true > 0.75
    equity_ratio = m.net_assets / m.total_assets
    auc_er = roc_auc_score(y, -equity_ratio)
    assert 0.6 < auc_er < auc_true
    x = pd.DataFrame({
        "equity_ratio": equity_ratio,
        "roa": (m.ordinary_profit.fillna(m.operating_profit - m.interest_expense.fillna(0))) / m.total_assets,
        "debt_to_sales": m.interest_bearing_debt.fillna(m.total_liabilities) / m.sales,
        "current_ratio": np.log(m.current_assets / m.current_liabilities),
        "log_sales": np.log(m.sales),
    }).fillna(0.0)
    z = (x - x.mean()) / x.std()
    lr = LogisticRegression(max_iter=1000).fit(z, y)
    auc_lr = roc_auc_score(y, lr.predict_proba(z)[:, 1])
    assert 0.6 < auc_lr < auc_true
    assert lr.coef_[0][0] < 0  # higher equity ratio, lower default probability


def test_outstanding_matches_an_amortisation_schedule():
    # independent reference: iterate the level-payment schedule month by month
    amount, rate, n = 10_000_000.0, 0.024, 60
    r = rate / 12
    payment = amount * r / (1 - (1 + r) ** -n)
    bal = amount
    for k in range(1, n + 1):
        bal = bal * (1 + r) - payment
        got = synth.outstanding_principal(np.array([amount]), np.array([rate]), np.array([n]), np.array([k]),
                                          np.array(["annuity"], dtype=object))[0]
        assert got == pytest.approx(max(bal, 0.0), abs=1e-4)
    lin = synth.outstanding_principal(np.full(3, amount), np.full(3, rate), np.full(3, n), np.array([0, 30, 61]),
                                      np.array(["linear"] * 3, dtype=object))
    assert lin.tolist() == [amount, amount / 2, 0.0]
    bul = synth.outstanding_principal(np.full(2, amount), np.full(2, rate), np.full(2, n), np.array([59, 60]),
                                      np.array(["bullet"] * 2, dtype=object))
    assert bul.tolist() == [amount, 0.0]


def test_loans_are_consistent(data):
    answers = data.answers[data.answers.primary == 1]
    firm_pd = answers.groupby("borrower_key").true_pd.mean()
    for code, loans in data.loans.items():
        assert loans.loan_key.is_unique
        per_firm = loans.groupby("borrower_key").size()
        assert per_firm.between(1, 3).all()
        assert set(per_firm.index) == set(data.statements[code].borrower_key)
        o = pd.to_datetime(loans.origination_date)
        mt = pd.to_datetime(loans.maturity_date)
        months = (mt.dt.year - o.dt.year) * 12 + mt.dt.month - o.dt.month
        assert (months % 12 == 0).all() and months.between(12, 120).all()
        assert (o.dt.year >= 2015).all()
        assert (loans.outstanding <= loans.amount).all() and (loans.outstanding >= 0).all()
        assert set(loans.amortization) <= set(dd.AMORTIZATIONS)
        assert loans.amortization.value_counts().index[0] == "annuity"
        assert 0.35 <= (loans.guarantee_coverage == 0.8).mean() <= 0.6
        assert loans.interest_rate.between(0.0, 0.2).all()
    allloans = pd.concat(data.loans.values())
    joined = allloans.merge(firm_pd.rename("pd"), left_on="borrower_key", right_index=True)
    assert spearmanr(joined.pd, joined.interest_rate).statistic > 0.3  # riskier firms pay more
    size = allloans.merge(data.statements["BK1"].groupby("borrower_key").sales.mean().rename("s"),
                          left_on="borrower_key", right_index=True)
    assert spearmanr(size.s, size.amount).statistic > 0.5  # amounts scale with firm size


def test_injected_errors_are_exactly_at_the_recorded_rows(tmp_path):
    clean = synth.generate(600, 4, 2, 21)
    d = synth.generate(600, 4, 2, 21, error_rate=0.05)
    synth.write(d, tmp_path)
    synth.write(clean, tmp_path / "clean")
    pd.testing.assert_frame_equal(d.answers, clean.answers)  # the truth describes the uncorrupted data
    required = dd.required("statements")
    for code in ("BK1", "BK2"):
        raw = pd.read_csv(tmp_path / code / "statements.csv", dtype=str, keep_default_na=False)
        err = pd.read_csv(tmp_path / code / "injected_errors.csv", dtype={"column": str}, keep_default_na=False)
        n_clean = len(clean.statements[code])
        assert len(err) == round(0.05 * n_clean) and err.row.is_unique
        assert len(raw) == n_clean + (err.kind == "duplicate_row").sum()
        assert set(err.kind) == set(synth.ERROR_KINDS)
        idx = err.row.to_numpy() - 2  # CSV line -> 0-based data row
        for (_, e), i in zip(err.iterrows(), idx, strict=False):
            row = raw.iloc[i]
            if e.kind == "text_in_amount":
                assert not re.fullmatch(r"-?\d+", row[e.column])
            elif e.kind == "negative_total_assets":
                assert int(row.total_assets) < 0
            elif e.kind == "identity_broken":
                assert int(row.total_assets) != int(row.total_liabilities) + int(row.net_assets)
            elif e.kind == "future_fiscal_year_end":
                assert dt.date.fromisoformat(row.fiscal_year_end) > TODAY
            elif e.kind == "unknown_industry":
                assert row.industry not in dd.ISIC_SECTIONS
            elif e.kind == "missing_required":
                assert e.column in required and row[e.column] == ""
            else:
                assert e.kind == "duplicate_row" and e.column == "*"
                assert row.equals(raw.iloc[i - 1])
        # every other row is clean
        ok = raw.drop(index=idx)
        assert (ok[required] != "").all().all()
        ta, tl, na = (ok[c].astype("int64") for c in ("total_assets", "total_liabilities", "net_assets"))
        assert (ta == tl + na).all() and (ta > 0).all()
        assert ok.industry.isin(dd.ISIC_SECTIONS).all()
        assert (pd.to_datetime(ok.fiscal_year_end).dt.date <= TODAY).all()
        assert not ok.duplicated().any()
        # and the unrecorded rows are exactly the generator's uncorrupted rows
        clean_raw = pd.read_csv(tmp_path / "clean" / code / "statements.csv", dtype=str, keep_default_na=False)
        dup_pos = np.sort(idx[err.kind.to_numpy() == "duplicate_row"])
        other = idx[err.kind.to_numpy() != "duplicate_row"]
        orig = other - np.searchsorted(dup_pos, other)
        pd.testing.assert_frame_equal(ok.reset_index(drop=True), clean_raw.drop(index=orig).reset_index(drop=True))


def test_cli_writes_files_and_prints_a_json_summary(tmp_path):
    from creditdb.cli import cli

    out = tmp_path / "syn"
    res = CliRunner().invoke(cli, ["synth", "--firms", "300", "--years", "4", "--banks", "2", "--seed", "4",
                                   "--out", str(out), "--error-rate", "0.02", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["ok"] is True and summary["firms"] == 300 and summary["banks"] == 2
    for code in ("BK1", "BK2"):
        for kind in ("statements", "loans", "defaults"):
            n = len(pd.read_csv(out / code / f"{kind}.csv", dtype=str))
            assert summary["by_bank"][code][kind] == n
        assert summary["by_bank"][code]["injected_errors"] == len(pd.read_csv(out / code / "injected_errors.csv"))
    assert summary["statements"] == sum(v["statements"] for v in summary["by_bank"].values())
    answers = pd.read_csv(out / "answers.csv")
    assert summary["firm_years"] == (answers.primary == 1).sum()
    assert (out / "institutions.csv").exists()

    human = CliRunner().invoke(cli, ["synth", "--firms", "50", "--years", "3", "--banks", "1", "--seed", "4",
                                     "--out", str(tmp_path / "h")])
    assert human.exit_code == 0 and "statements" in human.stdout
    bad = CliRunner().invoke(cli, ["synth", "--firms", "50", "--years", "3", "--banks", "1", "--seed", "4",
                                   "--out", str(tmp_path / "x"), "--start-year", "2999", "--json"])
    assert bad.exit_code == 1 and json.loads(bad.stdout)["ok"] is False
    usage = CliRunner().invoke(cli, ["synth", "--firms", "0", "--years", "3", "--banks", "1", "--seed", "4",
                                     "--out", str(tmp_path / "y")])
    assert usage.exit_code == 2
    helptext = CliRunner().invoke(cli, ["synth", "--help"]).stdout
    assert "Example:" in helptext
