"""A gallery of files as banks really export them (issue 12).

Each file is the canonical statements file (``tests.factories.statements``) written the
way a core-banking system or Excel writes it: another encoding, an Excel workbook,
semicolons and decimal commas, thousands separators, parentheses negatives, currency
signs, title-case headers, the bank's own column names and codes, blank columns and
rows. Each must load exactly the canonical values, compared field by field with the
canonical frame, or be rejected with a message naming file, row and column while the
database stays unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from creditdb.cli import cli
from creditdb.schema import AMOUNT_COLUMNS, FinancialStatement, Firm, Loan
from tests import factories as F

N = 6
NAMES = {  # firm names in the script of each encoding (dropped on read, but they carry the bytes)
    "cp932": "株式会社テスト商事",
    "cp1252": "Müller Bäckerei GmbH & Söhne",
    "cp874": "บริษัท ทดสอบ จำกัด",
    "cp1258": "Công ty Đông Á",
    "utf-16": "株式会社テスト Müller",
}


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def submit(path: Path, *options: str, kind: str = "statements") -> tuple[int, dict]:
    res = run("submit", kind, str(path), "-i", "BK1", "--json", *options)
    return res.exit_code, json.loads(res.stdout)


@pytest.fixture
def bank(sqlite_db):
    assert run("institution", "add", "BK1", "--name", "B", "--kind", "bank", "--country", "JP").exit_code == 0
    return sqlite_db


@pytest.fixture
def bank_any(db):
    """A bank on SQLite and on PostgreSQL (the tests that touch migration 0013's table and columns)."""
    assert run("institution", "add", "BK1", "--name", "B", "--kind", "bank", "--country", "JP").exit_code == 0
    return db


def canonical(n: int = N) -> pd.DataFrame:
    frame = F.statements(n)
    frame.loc[1, "net_income"] = -6_000_000  # a loss, to be written in parentheses
    return frame


def expected(frame: pd.DataFrame) -> list[tuple]:
    rows = []
    for r in frame.itertuples(index=False):
        rows.append((str(r.fiscal_year_end), int(r.employees), r.currency, r.industry,
                     *(float(getattr(r, c)) for c in AMOUNT_COLUMNS)))
    return sorted(rows)


def stored(db, submission_id: int) -> list[tuple]:
    t = FinancialStatement.__table__
    with db.engine.connect() as conn:
        rows = conn.execute(select(t.c.fiscal_year_end, t.c.employees, t.c.currency, t.c.industry,
                                   *(t.c[c] for c in AMOUNT_COLUMNS)).where(t.c.submission_id == submission_id)).all()
    return sorted((r[0].isoformat(), int(r[1]), r[2], r[3], *(float(v) for v in r[4:])) for r in rows)


def assert_loaded_exactly(db, out: dict, frame: pd.DataFrame) -> None:
    assert out["status"] == "loaded", out
    assert out["rows_loaded"] == len(frame)
    assert stored(db, out["submission_id"]) == expected(frame)


def text_csv(frame: pd.DataFrame, sep: str = ",") -> str:
    return frame.to_csv(index=False, sep=sep, lineterminator="\r\n")


# --- encodings ---------------------------------------------------------------------------

@pytest.mark.parametrize(("encoding", "country"), [("cp932", "JP"), ("cp1252", "DE"), ("cp874", "TH"),
                                                   ("cp1258", "VN"), ("cp1252", "JP")])
def test_legacy_encoding_detected_and_named(sqlite_db, tmp_path, encoding, country):
    bank = sqlite_db
    assert run("institution", "add", "BK1", "--name", "B", "--kind", "bank", "--country", country).exit_code == 0
    frame = canonical().assign(firm_name=NAMES[encoding], country=country)
    path = tmp_path / f"{encoding}.csv"
    path.write_bytes(text_csv(frame).encode(encoding))
    code, out = submit(path)
    assert code == 0, out
    assert_loaded_exactly(bank, out, frame)
    read = out["quality"]["read"]
    assert read["how"] == "detected" and 0.5 <= read["confidence"] <= 1
    if country != "JP":  # the country's code page, preferred when it decodes the file cleanly
        assert read["encoding"] == encoding
    # the guess is named, never silent: as a warning, on screen and with the submission
    assert out["issue_counts"]["warning:file.encoding_detected"] == 1
    shown = run("submissions", "show", str(out["submission_id"]))
    assert "detected, confidence" in shown.output


@pytest.mark.parametrize("encoding", ["cp874", "cp1258", "cp932", "cp1252"])
def test_declared_encoding(bank, tmp_path, encoding):
    frame = canonical().assign(firm_name=NAMES[encoding])
    path = tmp_path / f"declared_{encoding}.csv"
    path.write_bytes(text_csv(frame).encode(encoding))
    code, out = submit(path, "--encoding", encoding)
    assert code == 0, out
    assert_loaded_exactly(bank, out, frame)
    assert out["quality"]["read"]["how"] == "declared"


def test_utf16_excel_unicode_text_and_utf8_bom(bank, tmp_path):
    frame = canonical().assign(firm_name=NAMES["utf-16"])
    path = tmp_path / "unicode.txt"  # Excel's "Unicode text": UTF-16 LE with BOM, tab-separated
    path.write_bytes(text_csv(frame, sep="\t").encode("utf-16"))
    code, out = submit(path)
    assert code == 0, out
    assert_loaded_exactly(bank, out, frame)
    assert out["quality"]["read"]["delimiter"] == "tab" and out["quality"]["read"]["how"] == "bom"
    frame2 = canonical().assign(fiscal_year_end="2022-03-31")
    path2 = tmp_path / "bom.csv"
    path2.write_bytes(text_csv(frame2).encode("utf-8-sig"))
    code, out = submit(path2)
    assert code == 0, out
    assert_loaded_exactly(bank, out, frame2)


def test_wrong_declared_encoding_rejected_with_line(bank, tmp_path):
    frame = canonical().assign(firm_name=NAMES["cp932"])
    path = tmp_path / "sjis.csv"
    path.write_bytes(text_csv(frame).encode("cp932"))
    before = F.table_fingerprint(bank.engine)
    code, out = submit(path, "--encoding", "utf-8")
    assert code == 1 and out["status"] == "rejected"
    b = out["blocking"][0]
    assert b["file"] == str(path) and b["row"] == 2 and "--encoding" in b["message"]
    assert F.table_fingerprint(bank.engine) == before


# --- Excel -------------------------------------------------------------------------------

@pytest.mark.parametrize("reader", ["calamine", "openpyxl"])
def test_xlsx_with_dates_and_serials(bank, tmp_path, monkeypatch, reader):
    if reader == "openpyxl":  # the fallback when python-calamine is not installed
        import sys

        monkeypatch.setitem(sys.modules, "python_calamine", None)
    openpyxl = pytest.importorskip("openpyxl")
    frame = canonical()
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Export"
    ws.append(list(frame.columns) + ["", ""])  # Excel's blank header cells at the end
    for i, r in enumerate(frame.to_dict("records")):
        row = dict(r)
        fye = dt.date.fromisoformat(r["fiscal_year_end"])
        # real date cells, a datetime at midnight, and a bare serial number
        row["fiscal_year_end"] = [fye, dt.datetime.combine(fye, dt.time()), (fye - dt.date(1899, 12, 30)).days][i % 3]
        row["established"] = dt.date.fromisoformat(r["established"])
        ws.append(list(row.values()))
    ws.append([None] * len(frame.columns))  # a blank row
    path = tmp_path / "export.xlsx"
    wb.save(path)
    code, out = submit(path)
    assert code == 0, out
    assert_loaded_exactly(bank, out, frame)
    assert out["quality"]["read"]["sheet"] == "Export"
    # --sheet picks another sheet; an unknown sheet names the ones there are
    code, out = submit(path, "--sheet", "Nope")
    assert code == 1 and "sheets: Export" in out["blocking"][0]["message"]


# --- local number and date forms ---------------------------------------------------------

def _european(v) -> str:
    return f"{v:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


def test_semicolon_decimal_comma(bank, tmp_path):
    frame = canonical()
    shown = frame.copy()
    for c in AMOUNT_COLUMNS:
        shown[c] = shown[c].map(_european)
    shown["fiscal_year_end"] = "31.03.2021"
    path = tmp_path / "eu.csv"
    path.write_text(text_csv(shown, sep=";"), encoding="utf-8")
    code, out = submit(path, "--date-format", "%d.%m.%Y")
    assert code == 0, out
    assert_loaded_exactly(bank, out, frame)
    assert out["quality"]["read"]["delimiter"] == ";" and out["quality"]["read"]["decimal"] == ","


def test_thousands_parentheses_currency_and_missing_tokens(bank, tmp_path):
    frame = canonical()
    shown = frame.astype(object)
    shown["sales"] = [f"¥{v:,.0f}" for v in frame.sales]
    shown["total_assets"] = [f"{v:,.0f}" for v in frame.total_assets]
    shown["net_income"] = [f"({-v:,.0f})" if v < 0 else f"{v:,.0f}" for v in frame.net_income]
    shown["depreciation"] = "n/a"
    path = tmp_path / "thousands.csv"
    path.write_text(text_csv(shown), encoding="utf-8")
    code, out = submit(path)
    assert code == 0, out
    assert out["status"] == "loaded" and out["rows_loaded"] == len(frame)
    _stored_nan_ok(bank, out, frame)


def _stored_nan_ok(db, out, frame) -> None:
    # depreciation was n/a: stored NULL; compare everything else field by field
    t = FinancialStatement.__table__
    with db.engine.connect() as conn:
        rows = conn.execute(select(t.c.sales, t.c.total_assets, t.c.net_income, t.c.depreciation)
                            .where(t.c.submission_id == out["submission_id"]).order_by(t.c.sales)).all()
    want = frame.sort_values("sales")
    assert [r[:3] for r in rows] == list(zip(want.sales.astype(float), want.total_assets.astype(float),
                                             want.net_income.astype(float), strict=True))
    assert all(r[3] is None for r in rows)


def test_local_date_forms(bank, tmp_path):
    forms = ["31/03/2021", "2021/03/31", "20210331", "44286", "2021-03-31 00:00:00", "2021-03-31T00:00:00"]
    frame = canonical(len(forms))
    path = tmp_path / "dates.csv"
    path.write_text(text_csv(frame.assign(fiscal_year_end=forms)), encoding="utf-8")
    code, out = submit(path)
    assert code == 0, out
    assert_loaded_exactly(bank, out, frame)


def test_ambiguous_and_impossible_dates_rejected_with_clear_message(bank, tmp_path):
    frame = canonical(2).assign(fiscal_year_end=["01/02/2023", "2023-02-30"])
    path = tmp_path / "ambiguous.csv"
    path.write_text(text_csv(frame), encoding="utf-8")
    before = F.table_fingerprint(bank.engine)
    code, out = submit(path)
    assert code == 1 and out["status"] == "rejected"
    by_row = {i["row"]: i for i in out["issues"] if i["rule"] == "type.date"}
    assert by_row[2]["column"] == "fiscal_year_end" and "ambiguous" in by_row[2]["message"]
    assert "--date-format" in by_row[2]["message"]
    assert "not a calendar date" in by_row[3]["message"] and "February 2023" in by_row[3]["message"]
    assert F.table_fingerprint(bank.engine) == before
    text = run("submit", "statements", str(path), "-i", "BK1").output
    assert f"{path}, row 2, column 'fiscal_year_end'" in text
    # the declared format settles it
    code, out = submit(path, "--date-format", "%d/%m/%Y", "--strict")
    assert code == 1 and out["rows_rejected"] == 2 and out["rows_failed"] == 1  # --strict counts what it refused


# --- headers and mappings ------------------------------------------------------------------

def test_title_case_and_upper_case_headers(bank, tmp_path):
    frame = canonical()
    titled = frame.rename(columns=lambda c: c.replace("_", " ").title())
    titled = titled.rename(columns={"Sales": "SALES", "Net Assets": "NET-ASSETS"})
    path = tmp_path / "titled.csv"
    path.write_text(text_csv(titled), encoding="utf-8")
    code, out = submit(path)
    assert code == 0, out
    assert_loaded_exactly(bank, out, frame)
    assert out["quality"]["read"]["columns_renamed"]["Borrower Key"] == "borrower_key"


def test_misspelt_optional_columns_warn_with_suggestion(bank, tmp_path):
    frame = canonical().rename(columns={"corporate_number": "corporate_no", "employees": "employes"})
    path = tmp_path / "misspelt.csv"
    path.write_text(text_csv(frame), encoding="utf-8")
    code, out = submit(path)
    assert code == 0
    notes = {i["column"]: i["message"] for i in out["issues"] if i["rule"] == "column.unknown"}
    assert "did you mean 'corporate_number'" in notes["corporate_no"]
    assert "did you mean 'employees'" in notes["employes"]
    assert out["warnings"] >= 2


def test_excel_blank_columns_and_rows_ignored(bank, tmp_path):
    frame = canonical()
    body = text_csv(frame).split("\r\n")
    lines = [body[0] + ",,,"] + [line + ",,," for line in body[1:-1]] + ["," * (len(frame.columns) + 2)] * 3
    path = tmp_path / "blank.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    code, out = submit(path)
    assert code == 0, out
    assert_loaded_exactly(bank, out, frame)
    assert out["issue_counts"] == {}


def test_mapping_file_with_bank_codes_stored_as_profile(bank_any, tmp_path):
    bank = bank_any
    frame = canonical()
    own = {"C": "10", "G": "45", "F": "41", "I": "55", "M": "70"}  # the bank's own industry codes
    shown = frame.assign(industry=frame.industry.map(own), currency="Yen")
    shown = shown.rename(columns={"borrower_key": "Kunden-Nr", "sales": "Umsatz", "industry": "Branche"})
    path = tmp_path / "own.csv"
    path.write_text(text_csv(shown), encoding="utf-8")
    mapping = tmp_path / "bk1.toml"
    mapping.write_text('[columns]\n"Kunden-Nr" = "borrower_key"\n"Umsatz" = "sales"\n"Branche" = "industry"\n'
                       '[values.industry]\n' + "".join(f'"{v}" = "{k}"\n' for k, v in own.items())
                       + '[values.currency]\n"Yen" = "JPY"\n', encoding="utf-8")
    before = F.table_fingerprint(bank.engine)
    code, out = submit(path)  # without the mapping: blocking, nothing stored
    assert code == 1 and any(b["rule"] == "column.required" for b in out["blocking"])
    assert F.table_fingerprint(bank.engine) == before
    assert run("institution", "profile", "BK1", "--mapping", str(mapping)).exit_code == 0
    code, out = submit(path)  # the stored profile is used every month
    assert code == 0, out
    assert_loaded_exactly(bank, out, frame)
    shown_profile = json.loads(run("institution", "profile", "BK1", "--json").stdout)
    assert shown_profile["profile"]["columns"]["Umsatz"] == "sales"


# --- quality report ------------------------------------------------------------------------

def test_quality_report_names_missing_model_item_and_effect(bank, tmp_path):
    frame = canonical().drop(columns=["interest_expense"])
    path = tmp_path / "no_interest.csv"
    path.write_text(text_csv(frame), encoding="utf-8")
    code, out = submit(path)
    assert code == 0
    q = out["quality"]
    assert q["fill_rate"]["interest_expense"] == 0 and q["fill_rate"]["sales"] == 1
    item = next(m for m in q["missing_model_items"] if m["column"] == "interest_expense")
    assert "interest_coverage" in item["model_inputs"] and "PD" in item["effect"]
    shown = json.loads(run("submissions", "show", str(out["submission_id"]), "--json").stdout)
    assert shown["report"]["quality"]["missing_model_items"][0]["column"] == "interest_expense"
    # no raw identifier is stored with the report
    assert "BK1-B0000" not in json.dumps(shown["report"])
    text = run("submissions", "show", str(out["submission_id"])).output
    assert "interest_expense" in text and "rating model" in text


def test_loans_interest_rate_as_percentage_warns(bank, tmp_path):
    stmts = canonical()
    code, _ = submit(F.write_csv(stmts, tmp_path / "s.csv"))
    assert code == 0
    loans = F.loans(stmts).assign(interest_rate=0.9)
    code, out = submit(F.write_csv(loans, tmp_path / "l.csv"), kind="loans")
    assert code == 0 and out["status"] == "loaded"
    assert out["issue_counts"]["warning:plausible.rate_percent"] == len(loans)
    assert out["quality"]["plausibility"]["plausible.rate_percent"] == len(loans)
    with bank.engine.connect() as conn:
        assert conn.execute(select(Loan.interest_rate)).scalars().all() == [0.9] * len(loans)


def test_changed_industry_recorded_as_history_and_sales_unit_jump(bank_any, tmp_path):
    bank = bank_any
    first = canonical()
    assert submit(F.write_csv(first, tmp_path / "y1.csv"))[0] == 0
    later = canonical().assign(fiscal_year_end="2022-03-31")
    later.loc[0, "industry"] = "K"
    later.loc[2, "sales"] = first.loc[2, "sales"] * 1000  # thousands read as units
    code, out = submit(F.write_csv(later, tmp_path / "y2.csv"))
    assert code == 0, out
    hist = [i for i in out["issues"] if i["rule"] == "history.industry"]
    assert [(i["row"], i["value"]) for i in hist] == [(2, "K")]
    jumps = [i for i in out["issues"] if i["rule"] == "plausible.unit_jump"]
    assert [i["row"] for i in jumps] == [4] and "1,000 times" in jumps[0]["message"]
    t = FinancialStatement.__table__
    with bank.engine.connect() as conn:
        industries = conn.execute(select(t.c.industry).where(t.c.submission_id == out["submission_id"])
                                  .order_by(t.c.id)).scalars().all()
        firm_industry = conn.execute(select(Firm.industry).order_by(Firm.id)).scalars().first()
    assert industries[0] == "K" and firm_industry == "C"  # the firm keeps its stored one; the statement has K


# --- conventions ---------------------------------------------------------------------------

def test_missing_file_is_a_usage_error(bank, tmp_path):
    res = run("submit", "statements", str(tmp_path / "nope.csv"), "-i", "BK1")
    assert res.exit_code == 2 and "does not exist" in res.output


def test_submissions_list_has_header_and_docs_dictionary(bank, tmp_path):
    submit(F.write_csv(canonical(), tmp_path / "s.csv"))
    lines = run("submissions", "list").output.splitlines()
    assert lines[0].split()[:3] == ["id", "received", "(UTC)"] and "status" in lines[0]
    doc = run("docs", "dictionary").output
    assert doc.startswith("# Data dictionary") and "borrower_key" in doc
    assert "docs/data-dictionary.md" not in run("submit", "--help").output


def test_migration_0013_both_ways_keeps_integrity_checks(db, tmp_path):
    """Down to the revision before 0013 and back up, on SQLite and PostgreSQL; the fact
    tables' integrity checks (migration 0010) survive the round trip."""
    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import inspect

    from creditdb.db import alembic_config, head_revision, upgrade

    cfg = alembic_config(db.engine.url.render_as_string(hide_password=False))
    before = ScriptDirectory.from_config(cfg).get_revision("0013").down_revision
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, before)
    db.engine.dispose()
    insp = inspect(db.engine)
    assert "institution_profile" not in insp.get_table_names()
    upgrade(db.engine)
    db.engine.dispose()
    insp = inspect(db.engine)
    assert "institution_profile" in insp.get_table_names()
    assert {"industry", "region"} <= {c["name"] for c in insp.get_columns("financial_statement")}
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
    # a statement of a firm its institution never linked is still refused after the round trip
    assert run("institution", "add", "BK1", "--name", "B", "--kind", "bank", "--country", "JP").exit_code == 0
    code, out = submit(F.write_csv(canonical(), tmp_path / "s.csv"))
    assert code == 0 and out["status"] == "loaded"
    from creditdb.bulk import insert_frame

    t = FinancialStatement.__table__
    with db.engine.connect() as conn:
        inst, sub = conn.execute(select(t.c.institution_id, t.c.submission_id)).first()
        row = pd.DataFrame([{"firm_id": 999_999, "institution_id": inst, "submission_id": sub,
                             "fiscal_year_end": dt.date(2021, 3, 31), "months": 12, "currency": "JPY",
                             **{c: 1.0 for c in AMOUNT_COLUMNS}}])
        with pytest.raises(Exception, match="(?i)firm|23503|integrity|constraint"):
            insert_frame(conn, t, row)
        conn.rollback()


def test_every_group_help_has_an_example():
    from creditdb.cli import COMMANDS

    for name in COMMANDS:
        out = CliRunner().invoke(cli, [name, "--help"]).output
        assert "Example" in out, name


def test_first_pass_counts_rows_for_the_progress_bar(tmp_path):
    from pipelines import dictionary as D
    from pipelines.ingest import _duplicate_key_rows
    from pipelines.readers import inspect_file

    path = tmp_path / "s.csv"
    path.write_text(text_csv(canonical(7)) + "," * 30 + "\r\n", encoding="utf-8")
    info = inspect_file(path, None, D.names("statements"))
    assert info.rows is None  # a CSV has no row count until read
    _duplicate_key_rows(info, "statements", chunk_rows=3)
    assert info.rows == 7  # the blank row is not counted


def test_xlsx_corporate_number_typed_as_number_links_like_text(bank, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    frame = canonical(3)
    assert submit(F.write_csv(frame, tmp_path / "a.csv"))[0] == 0
    assert run("institution", "add", "BK2", "--name", "C", "--kind", "bank", "--country", "JP").exit_code == 0
    other = frame.assign(borrower_key=[f"BK2-{i}" for i in range(3)])
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(list(other.columns))
    for r in other.to_dict("records"):
        ws.append([int(v) if k == "corporate_number" else v for k, v in r.items()])  # Excel keeps it as a number
    wb.save(tmp_path / "b.xlsx")
    res = run("submit", "statements", str(tmp_path / "b.xlsx"), "-i", "BK2", "--json")
    out = json.loads(res.stdout)
    assert out["status"] == "loaded" and out["firms_linked"] == 3 and out["firms_new"] == 0


def test_stored_report_withholds_identifiers_the_screen_shows(bank, tmp_path):
    frame = canonical()
    frame = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)  # a repeated key: a finding on borrower_key
    frame.loc[2, "borrower_key"] = "=HYPERLINK(1)"  # a formula finding, also on a key column
    code, out = submit(F.write_csv(frame, tmp_path / "dup.csv"))
    assert out["status"] == "partial"
    on_screen = json.dumps(out["issues"])
    assert "BK1-B00000" in on_screen and "HYPERLINK" in on_screen  # the bank sees its own rows
    stored = json.loads(run("submissions", "show", str(out["submission_id"]), "--json").stdout)["report"]
    text = json.dumps(stored)
    assert "BK1-B00000" not in text and "HYPERLINK" not in text
    assert any(i["value"] is None and i.get("value_withheld") for i in stored["issues"])
