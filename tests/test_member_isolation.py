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
import pytest
from click.testing import CliRunner
from sqlalchemy import MetaData, create_engine, select, text
from sqlalchemy.exc import DBAPIError

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


# ----------------------------------------------------- firm-level data never crosses members

from tests.test_stats_publish import pg_world  # noqa: E402,F401 - the five-login PostgreSQL fixture

SCORE_ROWS = """INSERT INTO score (model_version_id, firm_id, institution_id, statement_id, pd, grade, fee_category,
                                   reasons, scored_at)
                SELECT (SELECT id FROM model_version WHERE version = 'm1'), s.firm_id, s.institution_id, s.id, 0.01,
                       'A', 1, json_build_array(json_build_object('feature', 'total_assets', 'text',
                       'total assets ' || s.total_assets::bigint)), now()
                  FROM financial_statement s"""
MODEL_ROW = """INSERT INTO model_version (version, created_at, created_by, status, artifact, artifact_sha256, spec,
                                          data_fingerprint, code_version, seed, metrics, validation_report)
               VALUES ('m1', now(), 'op', 'approved', 'x', 'x', '{}', 'x', 'x', 1, '{}', '{"ok": true}')"""


@pytest.mark.postgres
def test_a_bank_reads_no_figure_of_another_banks_statement(pg_world, tmp_path):  # noqa: F811
    """Finding 2: BK2 shares firms 5-9 with BK1 (same corporate numbers) and links firm 0,
    BK1's alone, by its corporate number; scores (one per firm and institution, as
    ``score firms`` writes them) carry the statement's total assets in their reasons."""
    cli_as, sql_as, names = pg_world
    for bank in ("BK1", "BK2"):
        cli_as("operator", "institution", "add", bank, "--name", bank, "--kind", "bank", "--country", "JP",
               "--db-role", names[bank.lower()])
    bk1 = F.statements(10, bank="BK1")
    bk2 = F.statements(5, bank="BK2", start=5)
    for c in ("total_assets", "total_liabilities", "net_assets", "fixed_assets", "current_assets",
              "current_liabilities"):
        bk2[c] = bk2[c] * 3  # BK2's own figures of the shared firms differ from BK1's
    cli_as("bk1", "submit", "statements", str(F.write_csv(bk1, tmp_path / "bk1.csv")), "-i", "BK1")
    cli_as("bk2", "submit", "statements", str(F.write_csv(bk2, tmp_path / "bk2.csv")), "-i", "BK2")
    sql_as("owner", MODEL_ROW)
    sql_as("owner", SCORE_ROWS)
    ids = dict(sql_as("owner", "SELECT code, id FROM institution"))
    bk1_figures = {f"total assets {int(v)}" for v in bk1.total_assets}
    bk2_figures = {f"total assets {int(v)}" for v in bk2.total_assets}
    assert not bk1_figures & bk2_figures
    # the score table: only the rows computed from BK2's own statements
    rows = sql_as("bk2", "SELECT institution_id, reasons::text FROM score")
    assert len(rows) == 5 and {r[0] for r in rows} == {ids["BK2"]}
    assert not any(f in r[1] for r in rows for f in bk1_figures)
    # ordinary use: score lookup of a shared firm shows BK2's own statement and figures
    out = json.loads(cli_as("bk2", "score", "lookup", "-i", "BK2", "BK2-B00005", "--json").output)
    r = out["results"][0]
    assert r["found"] and r["fiscal_year_end"] == "2021-03-31"
    assert r["reasons"][0]["text"] in bk2_figures
    # the attack: link BK1's firm 0 by its corporate number, read, roll back
    firm0 = sql_as("owner", "SELECT firm_id FROM financial_statement WHERE institution_id = "
                            f"{ids['BK1']} ORDER BY id LIMIT 1")[0][0]
    engine = create_engine(login_url_of(pg_world, "bk2"))
    try:
        with engine.connect() as conn:
            tx = conn.begin()
            pseud = conn.execute(text("SELECT (creditdb_pseudonyms(ARRAY['corp|JP|9000000000000']))[1]")).scalar()
            fid = conn.execute(text("SELECT id FROM creditdb_firm_ids(ARRAY[:p])"), {"p": pseud}).scalar()
            assert fid == firm0
            conn.execute(text("INSERT INTO borrower_link (institution_id, borrower_hash, firm_id) "
                              "VALUES (:i, 'attack', :f)"), {"i": ids["BK2"], "f": fid})
            assert conn.execute(text("SELECT count(*) FROM firm WHERE id = :f"), {"f": fid}).scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM score WHERE firm_id = :f"), {"f": fid}).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM financial_statement WHERE firm_id = :f"),
                                {"f": fid}).scalar() == 0
            with pytest.raises(DBAPIError, match="permission denied"):
                conn.execute(text("SELECT industry, region, size_class FROM firm WHERE id = :f"), {"f": fid})
            tx.rollback()
    finally:
        engine.dispose()


def login_url_of(world, who: str) -> str:
    from tests.test_stats_publish import login_url

    _, sql_as, names = world
    dbname = sql_as("owner", "SELECT current_database()")[0][0]
    return login_url(dbname, names[who])


def test_score_lookup_of_a_shared_firm_shows_only_the_banks_own_score(sqlite_db, tmp_path):
    """The embedded equivalent (one user, no roles): `score lookup` for a bank picks the score
    computed from its own statement of a firm two banks share, never the other's, even when
    the other's is newer."""
    for bank in ("BK1", "BK2"):
        run("institution", "add", bank, "--name", bank, "--kind", "bank", "--country", "JP")
    bk1 = F.statements(3, bank="BK1")
    bk2 = F.statements(3, bank="BK2").assign(total_assets=lambda f: f.total_assets * 3,
                                             total_liabilities=lambda f: f.total_liabilities * 3,
                                             net_assets=lambda f: f.net_assets * 3,
                                             fixed_assets=lambda f: f.fixed_assets * 3)
    run("submit", "statements", str(F.write_csv(bk1, tmp_path / "bk1.csv")), "-i", "BK1")
    run("submit", "statements", str(F.write_csv(bk2, tmp_path / "bk2.csv")), "-i", "BK2")
    with sqlite_db.engine.begin() as conn:
        conn.execute(text(MODEL_ROW.replace("now()", "CURRENT_TIMESTAMP")))
        # BK1's scores written last (newer), so a per-firm "latest score" would pick them
        for inst in ("BK2", "BK1"):
            conn.execute(text(
                "INSERT INTO score (model_version_id, firm_id, institution_id, statement_id, pd, grade, fee_category, "
                "reasons, scored_at) SELECT (SELECT id FROM model_version WHERE version = 'm1'), s.firm_id, "
                "s.institution_id, s.id, 0.01, 'A', 1, json_array(json_object('feature', 'total_assets', 'text', "
                "'total assets ' || CAST(s.total_assets AS INTEGER))), :ts FROM financial_statement s "
                "JOIN institution i ON i.id = s.institution_id WHERE i.code = :c"),
                {"c": inst, "ts": "2026-01-02 00:00:00" if inst == "BK1" else "2026-01-01 00:00:00"})
    out = json.loads(run("score", "lookup", "-i", "BK2", "BK2-B00000", "BK2-B00001", "--json").output)
    texts = {r["borrower_key"]: r["reasons"][0]["text"] for r in out["results"] if r["found"]}
    assert texts == {f"BK2-B0000{i}": f"total assets {int(bk2.total_assets[i])}" for i in (0, 1)}
    out = json.loads(run("score", "lookup", "-i", "BK1", "BK1-B00000", "--json").output)
    assert out["results"][0]["reasons"][0]["text"] == f"total assets {int(bk1.total_assets[0])}"
