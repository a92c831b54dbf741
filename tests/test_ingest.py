"""Submissions end to end on SQLite and PostgreSQL: load, link, refuse, supersede, report."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from creditdb.cli import cli
from creditdb.schema import BorrowerLink, DefaultEvent, FinancialStatement, Firm, Loan, Submission
from tests import factories as F


def run(*args: str, ok: bool | None = True):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok is True:
        assert result.exit_code == 0, result.output
    return result


def count(db, model) -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture
def banks(db):
    run("institution", "add", "BK1", "--name", "First Bank", "--kind", "bank", "--country", "JP")
    run("institution", "add", "BK2", "--name", "Second Bank", "--kind", "bank", "--country", "JP")
    return db


def test_statements_load_and_report(banks, tmp_path):
    path = F.write_csv(F.statements(20), tmp_path / "s.csv")
    out = json.loads(run("submit", "statements", str(path), "-i", "BK1", "--json").output)
    assert out["status"] == "loaded" and out["ok"] is True
    assert (out["rows_total"], out["rows_loaded"], out["rows_rejected"]) == (20, 20, 0)
    assert out["firms_new"] == 20
    assert count(banks, FinancialStatement) == 20 and count(banks, Firm) == 20
    with banks.engine.connect() as conn:
        row = conn.execute(select(FinancialStatement).order_by(FinancialStatement.id)).first()
        firm = conn.execute(select(Firm).order_by(Firm.id)).first()
    assert row.total_assets == 100_000_000 and row.fiscal_year_end.isoformat() == "2021-03-31"
    assert firm.region == "JP-100" and firm.established_year == 1980 and firm.size_class == "micro"
    listed = json.loads(run("submissions", "list", "--json").output)
    assert listed[0]["id"] == out["submission_id"] and listed[0]["rows_loaded"] == 20
    shown = json.loads(run("submissions", "show", str(out["submission_id"]), "--json").output)
    assert shown["status"] == "loaded" and shown["report"]["issue_counts"] == {}


def test_same_firm_two_banks_links_by_corporate_number(banks, tmp_path):
    s1 = F.statements(10, bank="BK1")
    s2 = F.statements(10, bank="BK2", start=5)  # firms 5..9 shared with BK1
    run("submit", "statements", str(F.write_csv(s1, tmp_path / "a.csv")), "-i", "BK1")
    out = json.loads(run("submit", "statements", str(F.write_csv(s2, tmp_path / "b.csv")), "-i", "BK2", "--json").output)
    assert out["firms_new"] == 5 and out["firms_linked"] == 5
    assert count(banks, Firm) == 15
    assert count(banks, BorrowerLink) == 20
    # without corporate numbers nothing links across banks
    s3 = F.statements(3, bank="BK2", start=100, corp=False)
    out = json.loads(run("submit", "statements", str(F.write_csv(s3, tmp_path / "c.csv")), "-i", "BK2", "--json").output)
    assert out["firms_new"] == 3 and out["firms_linked"] == 0


def test_duplicate_file_refused_with_pointer(banks, tmp_path):
    path = F.write_csv(F.statements(3), tmp_path / "s.csv")
    first = json.loads(run("submit", "statements", str(path), "-i", "BK1", "--json").output)
    before = F.table_fingerprint(banks.engine)
    again = run("submit", "statements", str(path), "-i", "BK1", ok=None)
    assert again.exit_code == 1
    assert f"submission {first['submission_id']}" in again.output
    assert F.table_fingerprint(banks.engine) == before


def test_corrected_statement_supersedes_and_keeps_history(banks, tmp_path):
    s = F.statements(4)
    run("submit", "statements", str(F.write_csv(s, tmp_path / "v1.csv")), "-i", "BK1")
    s.loc[0, "net_income"] = 123_456
    out = json.loads(run("submit", "statements", str(F.write_csv(s.iloc[[0]], tmp_path / "v2.csv")),
                         "-i", "BK1", "--json").output)
    assert out["superseded"] == 1
    assert count(banks, FinancialStatement) == 5  # history kept: nothing updated in place
    from pipelines.snapshot import statements_as_of

    with banks.engine.connect() as conn:
        current = statements_as_of(conn)
        first_sub = conn.execute(select(func.min(Submission.received_at))).scalar_one()
        past = statements_as_of(conn, as_of=first_sub)
    assert len(current) == 4 and 123_456 in set(current.net_income)
    assert len(past) == 4 and 123_456 not in set(past.net_income)


def test_loans_and_defaults(banks, tmp_path):
    s = F.statements(6)
    run("submit", "statements", str(F.write_csv(s, tmp_path / "s.csv")), "-i", "BK1")
    out = json.loads(run("submit", "loans", str(F.write_csv(F.loans(s), tmp_path / "l.csv")), "-i", "BK1", "--json").output)
    assert out["rows_loaded"] == 6 and count(banks, Loan) == 6
    d = F.defaults(s.iloc[:2])
    # BK2 never submitted this firm but knows its corporate number: it links
    out = json.loads(run("submit", "defaults", str(F.write_csv(d.assign(borrower_key=["X1", "X2"]), tmp_path / "d2.csv")),
                         "-i", "BK2", "--json").output)
    assert out["rows_loaded"] == 2 and count(banks, DefaultEvent) == 2
    unknown = d.assign(borrower_key=["Z1", "Z2"], corporate_number=["", ""])
    res = run("submit", "defaults", str(F.write_csv(unknown, tmp_path / "d3.csv")), "-i", "BK1", "--json", ok=None)
    out = json.loads(res.output)
    assert res.exit_code == 1 and out["status"] == "rejected"
    assert {i["rule"] for i in out["issues"]} == {"borrower.unknown"}
    assert count(banks, DefaultEvent) == 2


def test_partial_load_and_strict(banks, tmp_path):
    s = F.statements(10).astype({"sales": object})
    s.loc[3, "total_assets"] = -5
    s.loc[7, "sales"] = "12,5x"
    path = F.write_csv(s, tmp_path / "s.csv")
    before = F.table_fingerprint(banks.engine)
    strict = run("submit", "statements", str(path), "-i", "BK1", "--strict", "--json", ok=None)
    assert strict.exit_code == 1 and json.loads(strict.output)["status"] == "rejected"
    assert F.table_fingerprint(banks.engine) == before
    res = run("submit", "statements", str(path), "-i", "BK1", "--report", str(tmp_path / "r.csv"), ok=None)
    assert res.exit_code == 1
    assert "row 5, column 'total_assets'" in res.output and "row 9, column 'sales' = '12,5x'" in res.output
    assert count(banks, FinancialStatement) == 8
    report = pd.read_csv(tmp_path / "r.csv")
    assert set(report.row) == {5, 9} and "amount.positive" in set(report.rule)


def test_parquet_submission(banks, tmp_path):
    s = F.statements(5)
    s["fiscal_year_end"] = pd.to_datetime(s.fiscal_year_end)
    path = tmp_path / "s.parquet"
    s.to_parquet(path)
    out = json.loads(run("submit", "statements", str(path), "-i", "BK1", "--json").output)
    assert out["rows_loaded"] == 5


def test_no_identifier_is_stored(banks, tmp_path):
    s = F.statements(8)
    run("submit", "statements", str(F.write_csv(s, tmp_path / "s.csv")), "-i", "BK1")
    run("submit", "loans", str(F.write_csv(F.loans(s), tmp_path / "l.csv")), "-i", "BK1")
    run("submit", "defaults", str(F.write_csv(F.defaults(s.iloc[:3]), tmp_path / "d.csv")), "-i", "BK1")
    dump = F.all_text(banks.engine)
    for col in ("firm_name", "address", "representative", "phone", "corporate_number", "borrower_key"):
        for value in s[col]:
            assert str(value) not in dump, f"{col} value {value!r} found in the database"
    for value in F.loans(s).loan_key:
        assert value not in dump
    for value in s.postal_code:  # only the first 3 characters survive, as the region
        assert value not in dump and value.replace("-", "") not in dump


def test_unknown_institution_exit_1(db, tmp_path):
    res = run("submit", "statements", str(F.write_csv(F.statements(1), tmp_path / "s.csv")), "-i", "NOPE", ok=None)
    assert res.exit_code == 1 and "unknown institution" in res.output


@pytest.mark.slow
def test_chunked_load_keeps_file_rows_across_chunks(banks, tmp_path):
    """Streamed in chunks of 7 rows (validation of a chunk overlapping the database work of
    the previous one): findings carry file row numbers, a key repeated in a later chunk
    is found, and exactly the valid rows are stored."""
    from pipelines.ingest import submit_file

    s = F.statements(30).astype({"sales": object})
    s.loc[4, "total_assets"] = -5  # file row 6
    s.loc[17, "sales"] = "12,5x"  # file row 19
    s.loc[25, "cash"] = 90_000_000  # file row 27: cash + receivables + inventory > current assets (warning)
    s = pd.concat([s, s.iloc[[2]]], ignore_index=True)  # file row 32 repeats the key of row 4
    path = F.write_csv(s, tmp_path / "s.csv")
    res = submit_file(banks.engine, "statements", path, "BK1", key=b"test-key", chunk_rows=7, progress=False)
    found = {(i["row"], i["rule"]) for i in res.issues}
    assert found == {(4, "file.unique_key"), (32, "file.unique_key"), (6, "amount.positive"),
                     (19, "type.number"), (27, "identity.liquid_assets")}
    assert (res.status, res.rows_total, res.rows_loaded, res.rows_rejected, res.warnings) == ("partial", 31, 27, 4, 1)
    assert res.firms_new == 27 and res.firms_linked == 0
    assert count(banks, FinancialStatement) == 27 and count(banks, Firm) == 27
    by_row = {i["row"]: i for i in res.issues}
    assert by_row[6]["column"] == "total_assets" and by_row[6]["value"] == "-5"
    assert by_row[27]["column"] == "cash" and "current_assets=50000000" in by_row[27]["value"]


def test_dates_outside_the_nanosecond_range_are_still_checked():
    """Great Expectations compares nanosecond datetimes vectorised; a year such as 1500 or
    2999 does not fit that type and must still fail the plausible-date rule."""
    from pipelines.validate import Validator, coerce

    raw = F.statements(3).astype(str)
    raw.index = pd.RangeIndex(2, 5, name="row")
    raw.loc[3, "established"] = "1500-04-01"
    raw.loc[4, "fiscal_year_end"] = "2999-03-31"
    typed, _ = coerce("statements", raw)
    issues = Validator("statements").validate(raw, typed)
    assert {(i.row, i.column, i.rule) for i in issues} == {(3, "established", "date.plausible"),
                                                          (4, "fiscal_year_end", "date.plausible")}


def test_a_rule_that_cannot_run_is_an_error_not_a_pass():
    """Great Expectations reports a rule whose metric raised as merely unsuccessful; the
    validator must stop rather than report no failing rows."""
    from pipelines.validate import Validator, coerce

    raw = F.statements(2).astype(str)
    raw.index = pd.RangeIndex(2, 4, name="row")
    typed, _ = coerce("statements", raw)
    typed["sales"] = ["a", "b"]  # text where the rules compare numbers
    typed["sales"] = typed["sales"].astype(object)
    with pytest.raises(RuntimeError, match="sales failed to run"):
        Validator("statements").validate(raw, typed)
