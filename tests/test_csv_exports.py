"""Spreadsheet formulas are neutralised in every CSV the system writes (OWASP CSV injection).

CSV exports, found by grepping for ``to_csv`` / ``csv.writer`` (synthetic data from
``creditdb synth`` is generated, never user text, and is not listed):

* ``creditdb submit ... --report`` - every finding, with the submitted value and file name;
* ``creditdb stats --csv`` - the published statistics (``commands.stats._write_csv``);
* ``creditdb guarantee price FILE --out x.csv`` - loan ids and extra columns of the user's file;
* ``creditdb guarantee price-book --out x.csv`` - same writer (``commands.guarantee._write``);
* ``creditdb score file --out x.csv`` - borrower keys, reasons, messages (``scoring.write_results``).

A cell is safe when it does not start with = + - @ TAB CR, or is a plain number (a
negative amount is a number, not a formula). Neutralised text keeps its value after the
leading quote.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from creditdb.cli import cli
from creditdb.output import neutralise_formula, neutralise_frame
from tests import factories as F

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
FORMULAS = ["=1+2", "+SUM(A1:A2)", "-2+3+cmd|' /C calc'!A0", "@SUM(1,1)", "\t=1+1", "\r=1+1",
            '=HYPERLINK("http://evil.example","x")']


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def cells(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def assert_safe(path: Path) -> list[str]:
    """Every cell safe; returns all cells (to check that values survived)."""
    flat = [c for row in cells(path) for c in row]
    unsafe = [c for c in flat if c.startswith(TRIGGERS) and not _is_number(c)]
    assert not unsafe, f"{path.name}: formula cells not neutralised: {unsafe}"
    return flat


def test_neutralise_formula_cases():
    for f in FORMULAS:
        assert neutralise_formula(f) == "'" + f
    for v in ("BK1-B00001", "", "a=b", "'=x", 12, -3.5, None):
        assert neutralise_formula(v) == v
    frame = pd.DataFrame({"t": ["=1", "ok", None], "n": [-1.5, 2.0, None]})
    out = neutralise_frame(frame)
    assert out["t"].tolist()[:2] == ["'=1", "ok"] and out["n"].tolist()[:2] == [-1.5, 2.0]
    assert frame["t"].tolist()[0] == "=1"  # the input is not modified


def test_submit_report_neutralised(db, tmp_path):
    run = CliRunner()
    assert run.invoke(cli, ["institution", "add", "BK1", "--name", "B", "--kind", "bank", "--country", "JP"]).exit_code == 0
    s = F.statements(len(FORMULAS)).astype(object)
    formulas = [f for f in FORMULAS if "\r" not in f]  # (a CR inside a value makes the file malformed)
    s = s.iloc[: len(formulas)]
    s["sales"] = formulas  # none is a number: every row is reported with its value
    name = "=cmd+1.csv"  # the file name is written in every row of the report
    F.write_csv(s, tmp_path / name)
    report = tmp_path / "report.csv"
    res = run.invoke(cli, ["submit", "statements", name, "-i", "BK1", "--report", str(report)])
    assert res.exit_code == 1, res.output
    flat = assert_safe(report)
    for f in formulas:
        assert "'" + f in flat
    assert "'" + name in flat


def test_guarantee_price_csv_neutralised(tmp_path):
    formulas = [f for f in FORMULAS if "\r" not in f]  # (pandas reads a bare CR as a line break)
    loans = pd.DataFrame({
        "loan_id": formulas,
        "pd": 0.02, "amount": 10_000_000, "tenor_years": 5,
        "branch": ["@branch"] * len(formulas),  # an extra column is passed through to --out
    })
    src, out = tmp_path / "loans.csv", tmp_path / "priced.csv"
    loans.to_csv(src, index=False)
    res = CliRunner().invoke(cli, ["guarantee", "price", str(src), "--out", str(out)])
    assert res.exit_code == 0, res.output
    flat = assert_safe(out)
    priced = pd.read_csv(out, dtype=str)
    assert priced["loan_id"].tolist() == ["'" + f for f in formulas]
    assert set(priced["branch"]) == {"'@branch"}
    assert "-" not in flat[0]  # header untouched
    assert (pd.to_numeric(priced["fee_charged"]) > 0).all()  # numbers stay numbers


def test_score_results_csv_neutralised(tmp_path):
    from pipelines.scoring import write_results

    frame = pd.DataFrame({
        "row": [2, 3], "borrower_key": ["=cmd", "BK1-B1"], "fiscal_year_end": ["2021-03-31", "+x"],
        "pd": [0.01, None], "grade": ["A", None], "fee_category": pd.array([3, None], dtype="Int64"),
        "reason_1": ["@SUM(1)", None], "reason_2": ["\t=1", None], "reason_3": ["\r=1", None],
        "history": pd.array([1, 0], dtype="Int64"), "status": ["scored", "rejected"],
        "message": [None, "x\r=1+1 (a CR must not start a new row)"], "model_version": "rating-0",
    })
    out = tmp_path / "scores.csv"
    write_results(frame, out)
    flat = assert_safe(out)
    assert {"'=cmd", "'+x", "'@SUM(1)", "'\t=1", "'\r=1", "x\r=1+1 (a CR must not start a new row)"} <= set(flat)


def test_stats_csv_neutralised(tmp_path):
    from creditdb.commands.stats import _write_csv

    table = pd.DataFrame({"region": ["=JP", "JP-100", "-1+1"], "firms": [12, 15, 11], "mean": [-0.25, 0.1, None],
                          "suppressed": [None, "@k", "\tk\r=1"]})
    out = tmp_path / "stats.csv"
    _write_csv(out, table)
    flat = assert_safe(out)
    assert {"'=JP", "JP-100", "'-1+1", "'@k", "'\tk\r=1", "-0.25"} <= set(flat)


@pytest.mark.slow
def test_stats_cli_csv_safe(db, tmp_path):
    """The real ``creditdb stats --csv`` on stored data writes only safe cells."""
    run = CliRunner()
    assert run.invoke(cli, ["institution", "add", "BK1", "--name", "B", "--kind", "bank", "--country", "JP"]).exit_code == 0
    s = F.statements(40)  # (formula-like postal codes are refused at submission: rule text.formula)
    s["net_income"] = -s["net_income"]  # negative ratios: numbers, which must stay numbers
    res = run.invoke(cli, ["submit", "statements", str(F.write_csv(s, tmp_path / "s.csv")), "-i", "BK1"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "stats.csv"
    res = run.invoke(cli, ["stats", "--by", "region", "--k", "1", "--csv", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) is not None
    flat = assert_safe(out)
    assert len(flat) > 10
