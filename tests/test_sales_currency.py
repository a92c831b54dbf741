"""Basel SME adjustment with sales in any currency (issue 15): sales are converted to EUR
with the rates table at the date of the sales figure, replacing the fixed 160 JPY per EUR.

References: the ECB reference rates published for 29 December 2023 (156.33 JPY and 37.973
THB per EUR, tests/data/ecb_reference_rates.csv) and ``models.irb.capital_k`` on the
EUR figure converted by hand."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from creditdb.cli import cli
from models import irb
from models.pricing import POLICY_FILE
from tests import factories as F

PER_EUR = {"EUR": 1.0, "JPY": 156.33, "THB": 37.973}  # ECB, 2023-12-29
DAY = "2023-12-29"
SALES_EUR = 12.5e6  # a firm with EUR 12.5m sales: inside the SME band (5 to 50m)
PD, LGD, TENOR = 0.02, 0.6, 5.0


@pytest.fixture(autouse=True)
def _ecb_only(monkeypatch, tmp_path):
    monkeypatch.delenv("CREDITDB_URL", raising=False)  # file commands: the shipped ECB rates alone
    monkeypatch.chdir(tmp_path)


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _file(tmp_path: Path, rows: list[dict], name: str = "loans.csv") -> Path:
    base = {"pd": PD, "amount": 1e7, "tenor_years": TENOR, "coverage": 0.8, "lgd": LGD, "amortization": "annuity",
            "rate": 0.02}
    p = tmp_path / name
    pd.DataFrame([{**base, **r} for r in rows]).to_csv(p, index=False)
    return p


def test_irb_k_is_the_same_whichever_currency_the_sales_are_given_in(tmp_path):
    rows = [{"loan_id": cur, "sales": SALES_EUR * rate, "sales_currency": cur, "sales_date": DAY}
            for cur, rate in PER_EUR.items()]
    rows.append({"loan_id": "given", "sales_eur_m": SALES_EUR / 1e6})  # a file giving EUR millions: unchanged
    rows.append({"loan_id": "no-sales"})
    res = run("guarantee", "price", str(_file(tmp_path, rows)), "--out", str(tmp_path / "p.csv"), "--json")
    assert res.exit_code == 0, res.output
    got = pd.read_csv(tmp_path / "p.csv").set_index("loan_id")
    ref = float(irb.capital_k(PD, LGD, TENOR, SALES_EUR / 1e6))
    for cur in (*PER_EUR, "given"):
        assert got.loc[cur, "irb_k"] == pytest.approx(ref, rel=1e-12), cur
        assert got.loc[cur, "sales_eur_m"] == pytest.approx(12.5, rel=1e-12), cur
    # the adjustment is applied: without sales K is the corporate one, larger
    corporate = float(irb.capital_k(PD, LGD, TENOR))
    assert got.loc["no-sales", "irb_k"] == pytest.approx(corporate, rel=1e-12) and corporate > ref * 1.05
    # 160 per EUR (the fixed rate replaced) would have read the yen as EUR 12.2m: another K
    assert abs(float(irb.capital_k(PD, LGD, TENOR, SALES_EUR * 156.33 / 160 / 1e6)) - ref) > 1e-5

    # the same by quote, in each currency
    for cur, rate in PER_EUR.items():
        q = run("guarantee", "quote", "--pd", str(PD), "--amount", "10000000", "--tenor", str(TENOR), "--lgd",
                str(LGD), "--sales", repr(SALES_EUR * rate), "--sales-currency", cur, "--sales-date", DAY, "--json")
        assert q.exit_code == 0, q.output
        assert json.loads(q.output)["quote"]["irb_k"] == pytest.approx(ref, rel=1e-12), cur
    # default currency: the policy's (JPY)
    q = run("guarantee", "quote", "--pd", str(PD), "--amount", "10000000", "--tenor", str(TENOR), "--lgd", str(LGD),
            "--sales", repr(SALES_EUR * 156.33), "--sales-date", DAY, "--json")
    assert json.loads(q.output)["quote"]["irb_k"] == pytest.approx(ref, rel=1e-12)


def test_portfolio_file_in_three_currencies_equals_the_one_in_eur_millions(tmp_path):
    mixed = _file(tmp_path, [{"loan_id": f"{cur}{i}", "pd": 0.01 + 0.01 * i, "sales": SALES_EUR * (1 + i) * rate,
                              "sales_currency": cur, "sales_date": DAY}
                             for i, (cur, rate) in enumerate(PER_EUR.items())], "mixed.csv")
    eur = _file(tmp_path, [{"loan_id": f"{cur}{i}", "pd": 0.01 + 0.01 * i, "sales_eur_m": SALES_EUR * (1 + i) / 1e6}
                           for i, cur in enumerate(PER_EUR)], "eur.csv")
    out = {}
    for name, path in (("mixed", mixed), ("eur", eur)):
        res = run("guarantee", "portfolio", str(path), "--scenarios", "2000", "--seed", "4", "--json")
        assert res.exit_code == 0, res.output
        out[name] = json.loads(res.output)
    for k in ("expected_loss", "expected_loss_analytic"):
        assert out["mixed"][k] == pytest.approx(out["eur"][k], rel=1e-12), k
    assert out["mixed"]["quantiles"] == pytest.approx(out["eur"]["quantiles"], rel=1e-12)


def test_sales_without_a_date_exit_1_naming_the_rows_unless_sales_date_is_given(tmp_path):
    f = _file(tmp_path, [{"loan_id": "A", "sales": 2e9}, {"loan_id": "B"}, {"loan_id": "C", "sales": 1e9}])
    for cmd in (["price", str(f), "--out", str(tmp_path / "o.csv")], ["portfolio", str(f), "--scenarios", "100"]):
        res = run("guarantee", *cmd)
        assert res.exit_code == 1, res.output
        assert "row 2 (loan_id A): sales_date" in res.output and "row 4 (loan_id C): sales_date" in res.output
        assert "loan_id B" not in res.output and "--sales-date" in res.output
        assert not (tmp_path / "o.csv").exists()
    res = run("guarantee", "price", str(f), "--out", str(tmp_path / "o.csv"), "--sales-date", DAY, "--json")
    assert res.exit_code == 0, res.output
    got = pd.read_csv(tmp_path / "o.csv").set_index("loan_id")
    assert got.loc["A", "sales_eur_m"] == pytest.approx(2e9 / 156.33 / 1e6, rel=1e-12)
    # quote: --sales needs --sales-date
    res = run("guarantee", "quote", "--pd", "0.02", "--amount", "1e7", "--tenor", "5", "--sales", "2e9", "--json")
    assert res.exit_code == 1 and "--sales-date" in json.loads(res.output)["error"]


def test_sales_in_a_currency_without_a_rate_exit_1_naming_currency_and_date(tmp_path):
    f = _file(tmp_path, [{"loan_id": "A", "sales": 5e10, "sales_currency": "VND", "sales_date": DAY}])
    res = run("guarantee", "price", str(f), "--out", str(tmp_path / "o.csv"))
    assert res.exit_code == 1 and f"no exchange rate for VND on {DAY}" in res.output and "Traceback" not in res.output
    res = run("guarantee", "portfolio", str(f), "--scenarios", "100", "--json")
    assert res.exit_code == 1 and f"VND on {DAY}" in json.loads(res.output)["error"]
    res = run("guarantee", "quote", "--pd", "0.02", "--amount", "1e7", "--tenor", "5", "--sales", "5e10",
              "--sales-currency", "VND", "--sales-date", DAY)
    assert res.exit_code == 1 and f"no exchange rate for VND on {DAY}" in res.output


def test_an_old_policy_with_units_per_eur_is_a_clear_error(tmp_path):
    old = tmp_path / "policy.toml"
    old.write_text(POLICY_FILE.read_text(encoding="utf-8") + "\nunits_per_eur = 160.0\n", encoding="utf-8")
    f = _file(tmp_path, [{"loan_id": "A"}])
    for cmd in (["price", str(f), "--out", str(tmp_path / "o.csv")],
                ["quote", "--pd", "0.02", "--amount", "1e7", "--tenor", "5"]):
        res = run("guarantee", *cmd, "--policy", str(old))
        assert res.exit_code == 1 and "units_per_eur was replaced by the rates table" in res.output, res.output


def test_quote_by_firm_takes_the_statements_own_currency_and_date(db, tmp_path):
    """A firm whose statement is in THB: no refusal any more, its sales converted at its FYE."""
    from currency_converter import CurrencyConverter

    from tests.test_guarantee_db import add_model, add_score, firm_id

    # the db fixture (set up after the autouse one) points CREDITDB_URL at the database
    assert run("institution", "add", "BK1", "--name", "Bank", "--kind", "bank", "--country", "TH").exit_code == 0
    s = F.statements(2).assign(currency="THB", country="TH", sales=4.4e8)
    assert run("submit", "statements", str(F.write_csv(s, tmp_path / "s.csv")), "-i", "BK1").exit_code == 0
    mid = add_model(db, "v-approved", "approved")
    add_score(db, mid, firm_id(db, 1), PD, 5, dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    res = run("guarantee", "quote", "--firm-of", "BK1:BK1-B00001", "--amount", "1e7", "--tenor", "5", "--lgd",
              str(LGD), "--json")
    assert res.exit_code == 0, res.output
    thb_per_eur = CurrencyConverter(fallback_on_missing_rate=False).convert(1.0, "EUR", "THB", dt.date(2021, 3, 31))
    ref = float(irb.capital_k(PD, LGD, 5.0, 4.4e8 / thb_per_eur / 1e6))
    out = json.loads(res.output)
    assert out["firm"]["statement_currency"] == "THB" and out["firm"]["statement_date"] == "2021-03-31"
    assert out["quote"]["irb_k"] == pytest.approx(ref, rel=1e-12)
