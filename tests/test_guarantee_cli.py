"""``creditdb guarantee`` commands through click's CliRunner."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from creditdb.cli import cli
from models.fee_schedule import load_schedule
from models.portfolio import simulate_portfolio
from models.pricing import load_policy, price_loans

GOOD = """loan_id,pd,amount,tenor_years,coverage,lgd,amortization,rate,sales,sales_date,secured
L1,0.012,10000000,5,0.8,0.6,annuity,0.02,300000000,2023-12-29,false
L2,0.001,50000000,3,1.0,,bullet,,,,true
L3,0.08,2000000,7,0.8,,linear,0.03,,,
L4,0.025,10000000,5,0.8,0.6,annuity,0.02,,,no
"""
#: ECB reference rate of 2023-12-29 (tests/data/ecb_reference_rates.csv): 156.33 JPY per EUR
JPY_PER_EUR = 156.33

QUOTE_ARGS = ["guarantee", "quote", "--pd", "0.012", "--amount", "10000000", "--tenor", "5", "--coverage", "0.8",
              "--lgd", "0.6", "--amortization", "annuity", "--rate", "0.02", "--sales", "300000000",
              "--sales-date", "2023-12-29"]


def run(args: list[str]):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


@pytest.fixture()
def loans_csv(tmp_path: Path) -> Path:
    p = tmp_path / "loans.csv"
    p.write_text(GOOD)
    return p


def test_help_has_examples() -> None:
    for sub in ("quote", "price", "portfolio"):
        res = run(["guarantee", sub, "--help"])
        assert res.exit_code == 0 and "Example:" in res.output


def test_quote_json_equals_pure_function() -> None:
    res = run([*QUOTE_ARGS, "--schedule", "japan", "--json"])
    assert res.exit_code == 0, res.output
    q = json.loads(res.output)["quote"]
    ref = price_loans(
        pd.DataFrame([dict(pd=0.012, amount=1e7, tenor_years=5, coverage=0.8, lgd=0.6, amortization="annuity",
                           rate=0.02, sales=3e8, sales_eur_m=3e8 / JPY_PER_EUR / 1e6)]),
        load_policy(), load_schedule("japan"),
    ).iloc[0]
    for k in ("irb_k", "risk_weight", "el_pv", "break_even_rate", "charged_rate", "fee_charged", "subsidy_gap_rate",
              "subsidy_gap_pv"):
        assert q[k] == pytest.approx(float(ref[k]), rel=1e-12), k
    assert q["category"] == str(ref["category"]) == "5"


def test_quote_human_output_and_secured_discount() -> None:
    res = run([*QUOTE_ARGS])
    assert res.exit_code == 0 and "break-even fee" in res.output and "subsidy gap" in res.output
    a = json.loads(run([*QUOTE_ARGS, "--json"]).output)["quote"]
    b = json.loads(run([*QUOTE_ARGS, "--secured", "--json"]).output)["quote"]
    assert a["schedule_rate"] - b["schedule_rate"] == pytest.approx(0.0010)


@pytest.mark.parametrize(
    "opt,value,needle",
    [
        ("--pd", "0", "--pd"), ("--pd", "1.5", "--pd"), ("--amount", "-5", "--amount"),
        ("--coverage", "1.2", "--coverage"), ("--coverage", "-0.1", "--coverage"),
        ("--tenor", "0", "--tenor"), ("--tenor", "-2", "--tenor"),
        ("--amortization", "balloon", "--amortization"), ("--schedule", "atlantis", "unknown fee schedule"),
    ],
)
def test_quote_rejects_bad_input(opt: str, value: str, needle: str) -> None:
    args = list(QUOTE_ARGS)
    if opt in args:
        args[args.index(opt) + 1] = value
    else:
        args += [opt, value]
    res = run([*args, "--json"])
    assert res.exit_code == 1
    out = json.loads(res.output)
    assert out["ok"] is False and needle in out["error"]


def test_price_happy_path_csv_and_parquet(loans_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "priced.parquet"
    res = run(["guarantee", "price", str(loans_csv), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    given = pd.read_csv(loans_csv, dtype={"loan_id": str})
    given["sales_eur_m"] = given["sales"] / JPY_PER_EUR / 1e6  # converted by hand
    ref = price_loans(given, load_policy(), load_schedule("japan"))
    assert summary["total"]["subsidy_gap_pv"] == pytest.approx(ref["subsidy_gap_pv"].sum(), rel=1e-12)
    assert summary["total"]["fee_charged"] == pytest.approx(ref["fee_charged"].sum(), rel=1e-12)
    by_cat = {r["category"]: r for r in summary["by_category"]}
    assert set(by_cat) == set(ref["category"].astype(str))
    assert sum(r["loans"] for r in by_cat.values()) == 4
    written = pd.read_parquet(out)
    np.testing.assert_allclose(written["break_even_rate"], ref["break_even_rate"], rtol=1e-12)
    assert list(written["loan_id"]) == ["L1", "L2", "L3", "L4"]
    # human output and CSV output
    out_csv = tmp_path / "priced.csv"
    res = run(["guarantee", "price", str(loans_csv), "--out", str(out_csv), "--schedule", "kodit"])
    assert res.exit_code == 0 and "total subsidy gap" in res.output
    assert len(pd.read_csv(out_csv)) == 4


BAD_CASES = [
    ("amount", "-10", "amount"),
    ("pd", "1.5", "pd"),
    ("pd", "0", "pd"),
    ("coverage", "1.2", "coverage"),
    ("coverage", "-0.1", "coverage"),
    ("tenor_years", "0", "tenor_years"),
    ("tenor_years", "-3", "tenor_years"),
    ("amortization", "balloon", "amortization"),
]


@pytest.mark.parametrize("field,value,needle", BAD_CASES)
def test_price_rejects_bad_field_naming_loan_row_and_field(tmp_path: Path, field: str, value: str, needle: str) -> None:
    df = pd.read_csv(__import__("io").StringIO(GOOD), dtype=str, keep_default_na=False)
    df.loc[2, field] = value  # loan L3 -> row 4 (header = row 1)
    p = tmp_path / "bad.csv"
    df.to_csv(p, index=False)
    out = tmp_path / "out.csv"
    res = run(["guarantee", "price", str(p), "--out", str(out)])
    assert res.exit_code == 1
    assert re.search(rf"row 4 \(loan_id L3\): {needle}:", res.output), res.output
    assert "bad.csv" in res.output
    assert not out.exists()


def test_price_lists_all_problems(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("loan_id,pd,amount,tenor_years,coverage,amortization\n"
                 "B1,0.012,-10,5,0.8,annuity\nB2,1.5,100,0,1.2,balloon\nB3,0.01,100,5,0.8,linear\n")
    res = run(["guarantee", "price", str(p), "--out", str(tmp_path / "o.csv"), "--json"])
    assert res.exit_code == 1
    probs = {(x["row"], x["loan_id"], x["field"]) for x in json.loads(res.output)["problems"]}
    assert probs == {(2, "B1", "amount"), (3, "B2", "pd"), (3, "B2", "tenor_years"), (3, "B2", "coverage"),
                     (3, "B2", "amortization")}


def test_price_missing_column_and_unknown_schedule(loans_csv: Path, tmp_path: Path) -> None:
    p = tmp_path / "nocol.csv"
    p.write_text("loan_id,pd,amount\nA,0.01,100\n")
    res = run(["guarantee", "price", str(p), "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 1 and "tenor_years: required column is missing" in res.output
    res = run(["guarantee", "price", str(loans_csv), "--out", str(tmp_path / "o.csv"), "--schedule", "nowhere"])
    assert res.exit_code == 1 and "unknown fee schedule 'nowhere'" in res.output


def test_portfolio_json_html_equal_pure_simulation(loans_csv: Path, tmp_path: Path) -> None:
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    res = run(["guarantee", "portfolio", str(loans_csv), "--scenarios", "3000", "--seed", "5", "--fund", "3000000",
               "--html", str(html), "--json", str(js)])
    assert res.exit_code == 0, res.output
    got = json.loads(js.read_text())
    pol = load_policy()
    df = pd.read_csv(loans_csv)
    lgd = df["lgd"].fillna(pd.Series(np.where(df["secured"].astype(str).str.lower().isin(["true"]),
                                              pol.lgd_secured, pol.lgd_unsecured))).to_numpy()
    ref = simulate_portfolio(df["pd"].to_numpy(), lgd, (df["amount"] * df["coverage"]).to_numpy(),
                             sales_eur_m=df["sales"].to_numpy() / JPY_PER_EUR / 1e6,
                             n_scenarios=3000, seed=5, fund=3e6)
    assert got["expected_loss"] == pytest.approx(ref.expected_loss, rel=1e-12)
    assert got["quantiles"]["0.999"] == pytest.approx(ref.quantiles[0.999], rel=1e-12)
    assert got["expected_shortfall"]["0.99"] == pytest.approx(ref.expected_shortfall[0.99], rel=1e-12)
    assert got["prob_loss_exceeds_fund"] == pytest.approx(ref.prob_loss_exceeds_fund)
    assert sum(got["histogram"]["counts"]) == 3000
    page = html.read_text()
    m = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert m and base64.b64decode(m.group(1))[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<script" not in page and "http" not in page.split("<body>")[1]


def test_portfolio_json_to_stdout_and_reinsurance(loans_csv: Path) -> None:
    a = json.loads(run(["guarantee", "portfolio", str(loans_csv), "--scenarios", "500", "--json"]).output)
    b = json.loads(run(["guarantee", "portfolio", str(loans_csv), "--scenarios", "500", "--reinsurance", "0.7",
                        "--json"]).output)
    assert b["total_exposure"] == pytest.approx(a["total_exposure"] * 0.3)
    assert b["expected_loss_analytic"] == pytest.approx(a["expected_loss_analytic"] * 0.3)


def test_portfolio_rejects_bad_rows(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("loan_id,pd,amount,coverage\nP1,0.02,100,0.8\nP2,-0.1,100,0.8\nP3,0.02,100,2\n")
    res = run(["guarantee", "portfolio", str(p), "--scenarios", "10"])
    assert res.exit_code == 1
    assert "row 3 (loan_id P2): pd" in res.output and "row 4 (loan_id P3): coverage" in res.output
