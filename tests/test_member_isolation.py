"""Data between members (issue 17, items 2-4): attacks a member could make on what the
database stores and publishes.

* Raw identifiers: partly rejected files of every kind are submitted with distinctive
  values in every identifying column of good and bad rows; then every column of every
  table of the migrated database (reflected from the server, not from our schema
  module) is read back as text and searched for each raw value.
"""

from __future__ import annotations

import json

import pandas as pd
from click.testing import CliRunner
from sqlalchemy import MetaData, select

from creditdb.cli import cli
from creditdb.schema import Submission
from tests import factories as F


def run(*args: str, ok: bool | None = True):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok is True:
        assert result.exit_code == 0, result.output
    return result


def every_value(engine) -> str:
    """Every value of every column of every table the database has (reflected), as text."""
    meta = MetaData()
    meta.reflect(engine)
    parts = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)).all():
                parts.append(repr(tuple(row)))
    assert parts, "nothing read"
    return "\n".join(parts)


def _partly_rejected(tmp_path):
    """Statements, loans and defaults files of BK1, each with good rows and rows that fail
    on (or next to) an identifying column. Returns the files and every raw identifier."""
    s = F.statements(8, bank="BK1")
    bad = F.statements(6, bank="BK1", start=100).astype(object)
    bad.loc[0, "total_assets"] = "lots"                       # type.number on a good key
    bad.loc[1, "postal_code"] = "=HYPERLINK(\"x\")123-4567"    # text.formula on the postal code
    bad.loc[2, "borrower_key"] = "=cmd|BK1-SECRET-KEY"        # text.formula on the borrower key
    bad.loc[3, "corporate_number"] = "@SUM(8000000000777)"    # text.formula on the corporate number
    bad.loc[4, "established"] = "2030-05-17"                  # date.order: established after the fiscal year end
    dup = bad.iloc[[5, 5]]                                    # file.unique_key: the same key twice
    stmts = pd.concat([s, bad.iloc[:5], dup], ignore_index=True)
    files = {"statements": F.write_csv(stmts, tmp_path / "s.csv")}
    loans = F.loans(s, bank="BK1")
    stranger = F.loans(F.statements(2, bank="BK1", start=500, corp=False), bank="BK1")
    stranger["loan_key"] = ["BK1-LSTRANGER1", "BK1-LSTRANGER2"]  # borrower.unknown
    loans = pd.concat([loans, stranger, loans.iloc[[0]]], ignore_index=True)  # + file.unique_key on a loan key
    files["loans"] = F.write_csv(loans, tmp_path / "l.csv")
    defaults = F.defaults(s.iloc[:3])
    strange_d = F.defaults(F.statements(1, bank="BK1", start=700, corp=False))  # borrower.unknown
    defaults = pd.concat([defaults, strange_d, defaults.iloc[[0]]], ignore_index=True)
    files["defaults"] = F.write_csv(defaults, tmp_path / "d.csv")
    raw: dict[str, set[str]] = {}
    for frame in (stmts, loans, defaults):
        for col in ("borrower_key", "corporate_number", "loan_key", "firm_name", "address", "representative",
                    "phone", "postal_code", "established"):
            if col in frame:
                raw.setdefault(col, set()).update(str(v) for v in frame[col] if str(v) not in ("", "nan"))
    return files, raw


def test_no_raw_identifier_is_stored_from_partly_rejected_files(db, tmp_path):
    run("institution", "add", "BK1", "--name", "First Bank", "--kind", "bank", "--country", "JP")
    files, raw = _partly_rejected(tmp_path)
    rules = set()
    for kind, path in files.items():
        report = tmp_path / f"{kind}.report.csv"
        out = json.loads(run("submit", kind, str(path), "-i", "BK1", "--json", "--report", str(report),
                             ok=None).output)
        assert out["status"] == "partial", (kind, out)
        rules |= {i["rule"] for i in out["issues"]}
        # the bank's own local report keeps its raw values (it needs them to mend the file)
        local = report.read_text(encoding="utf-8")
        assert any(v in local for v in raw["borrower_key"]), kind
    # the findings the scan must cover were really raised
    assert {"type.number", "text.formula", "date.order", "file.unique_key", "borrower.unknown"} <= rules, rules
    dump = every_value(db.engine)
    for col, values in raw.items():
        for v in values:
            assert v not in dump, f"raw {col} {v!r} is stored"
    for part in ("BK1-SECRET-KEY", "8000000000777", "2030-05-17", "LSTRANGER", "123-4567"):
        assert part not in dump, part
    # what the stored report keeps: row, column, rule; the value withheld
    with db.engine.connect() as conn:
        stored = [i for (report,) in conn.execute(select(Submission.report)) for i in report["issues"]]
    keyed = [i for i in stored if i["column"] in ("borrower_key", "corporate_number", "loan_key", "postal_code")]
    assert keyed and all(i["value"] is None and i["value_withheld"] and i["row"] > 1 for i in keyed)
    amounts = [i for i in stored if i["column"] == "total_assets"]
    assert amounts and amounts[0]["value"] == "lots"  # a non-identifying value is still shown
