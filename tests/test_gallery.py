"""A gallery of broken files: each is rejected with exit code 1, a message naming the
file, row and column, and the database is left exactly as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from creditdb.cli import cli
from tests import factories as F


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    return F.write_csv(frame, path)


def empty(p: Path):
    p.write_bytes(b"")
    return p, None, None


def wrong_encoding(p: Path):
    # UTF-16 without its byte-order mark: NUL bytes, not text (a Latin-1 or Shift-JIS file is
    # no longer broken: its encoding is detected, tests/test_bank_files.py)
    p.write_bytes(F.statements(3).to_csv(index=False).encode("utf-16-le"))
    return p, 1, None


def missing_required_column(p: Path):
    return _csv(F.statements(3).drop(columns=["total_assets"]), p), 1, "total_assets"


def text_in_amount(p: Path):
    s = F.statements(1).astype({"sales": object})
    s.loc[0, "sales"] = "two million"
    return _csv(s, p), 2, "sales"


def negative_assets(p: Path):
    s = F.statements(1)
    s.loc[0, "total_assets"] = -1_000
    return _csv(s, p), 2, "total_assets"


def future_date(p: Path):
    s = F.statements(1)
    s.loc[0, "fiscal_year_end"] = "2099-03-31"
    return _csv(s, p), 2, "fiscal_year_end"


def duplicate_keys(p: Path):
    s = pd.concat([F.statements(1), F.statements(1)])
    return _csv(s, p), 3, "borrower_key"


def truncated_parquet(p: Path):
    p = p.with_suffix(".parquet")
    F.statements(50).to_parquet(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p, None, None


def formula_value(p: Path):
    s = F.statements(1)
    s.loc[0, "borrower_key"] = '=HYPERLINK("http://evil.example","click")'
    return _csv(s, p), 2, "borrower_key"


def absurd_number(p: Path):
    s = F.statements(1).astype({"sales": object})
    s.loc[0, "sales"] = "1e300"
    return _csv(s, p), 2, "sales"


GALLERY = [empty, wrong_encoding, missing_required_column, text_in_amount, negative_assets, future_date,
           duplicate_keys, truncated_parquet, formula_value, absurd_number]


@pytest.mark.parametrize("make", GALLERY, ids=[g.__name__ for g in GALLERY])
def test_broken_file_rejected_and_database_unchanged(db, tmp_path, make):
    runner = CliRunner()
    assert runner.invoke(cli, ["institution", "add", "BK1", "--name", "B", "--kind", "bank", "--country", "JP"]).exit_code == 0
    good = F.write_csv(F.statements(5, start=500), tmp_path / "good.csv")
    assert runner.invoke(cli, ["submit", "statements", str(good), "-i", "BK1"]).exit_code == 0
    before = F.table_fingerprint(db.engine)
    path, row, column = make(tmp_path / f"{make.__name__}.csv")
    result = runner.invoke(cli, ["submit", "statements", str(path), "-i", "BK1"])
    assert result.exit_code == 1, result.output
    text = result.output
    assert str(path) in text or path.name in text
    if row is not None:
        assert f"row {row}" in text, text
    if column is not None:
        assert f"column '{column}'" in text, text
    assert F.table_fingerprint(db.engine) == before
    as_json = json.loads(runner.invoke(cli, ["submit", "statements", str(path), "-i", "BK1", "--json"]).output)
    assert as_json["ok"] is False and as_json["status"] == "rejected"
    assert F.table_fingerprint(db.engine) == before
