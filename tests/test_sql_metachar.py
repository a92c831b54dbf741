"""SQL metacharacters in every stored text field are stored inertly and read back verbatim,
on SQLite and PostgreSQL, and nothing else in the database changes.

Text a user controls that the database stores: institution code and name; the
submitted file's name; the actor (CREDITDB_ACTOR); the region (first characters of a
postal code); submitted values echoed in a submission's validation report; borrower and
loan keys (stored as keyed hashes, so they must still link a loan to its firm); the
approver's name and approval note of a model version. Each lands in the audit trail too,
whose hash chain must still verify.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
from click.testing import CliRunner
from sqlalchemy import select

from creditdb.cli import cli
from creditdb.schema import AuditEvent, Firm, Institution, Loan, ModelVersion, Submission
from tests import factories as F

#: one value per attack style; all fit the narrowest column they are used in (32 chars)
NASTY = [
    "'; DROP TABLE firm; --",
    "x' OR '1'='1",
    '" OR ""="',
    "\\'; SELECT 1; --\\",
    "%_% LIKE '%'",
    "$$; DROP $$ $1",
    ":name ?, %s %(x)s {0}",
    "/* */ -- # `t`",
    "日本語 ü 😀 \u202eRTL",
    "a\tb\r\nc",
]


def run(*args: str, code: int = 0):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), result.exception
    return result


def _actor(db, event) -> str:
    """The name the caller gave: the actor on SQLite; on PostgreSQL the actor is the login and the
    name only an annotation (issue 17)."""
    if db.kind == "postgres":
        assert event.actor == event.db_role
        return event.details["as"]
    return event.actor


def changed(before: dict, after: dict) -> set[str]:
    return {t for t in after if after[t] != before[t]}


def test_institution_code_and_name_stored_verbatim(db):
    codes = [f"BK-{i}" for i in range(len(NASTY))]
    for code, value in zip(codes, NASTY, strict=True):
        before = F.table_fingerprint(db.engine)
        # an attack as the code is refused outright (codes are [A-Z0-9_-]{1,32}: issue 17)
        out = run("institution", "add", value, "--name", "x", "--kind", "bank", "--country", "JP", code=1)
        assert "invalid" in out.output and F.table_fingerprint(db.engine) == before
        run("institution", "add", code, "--name", value + " Bank", "--kind", "bank", "--country", "JP")
        assert changed(before, F.table_fingerprint(db.engine)) == {"institution"}
        # the same code again is refused, not a second row
        run("institution", "add", code, "--name", "x", "--kind", "bank", "--country", "JP", code=1)
    expected = sorted((c, v + " Bank") for c, v in zip(codes, NASTY, strict=True))
    listed = json.loads(run("institution", "list", "--json").stdout)
    assert sorted((r["code"], r["name"]) for r in listed) == expected
    with db.engine.connect() as conn:
        assert sorted(conn.execute(select(Institution.code, Institution.name)).all()) == expected


def test_overlong_institution_fields_rejected_cleanly(db):
    """Longer than the column: exit 1 with a message on both backends (PostgreSQL would raise)."""
    before = F.table_fingerprint(db.engine)
    out = run("institution", "add", "B" * 33, "--name", "x", "--kind", "bank", "--country", "JP", code=1)
    assert "32" in out.output
    out = run("institution", "add", "BK1", "--name", "n" * 201, "--kind", "bank", "--country", "JP", code=1)
    assert "200" in out.output
    out = run("model", "approve", "rating-000000000000", "--by", "b" * 101, "--note", "n" * 5000, code=1)
    assert "100" in out.output
    assert F.table_fingerprint(db.engine) == before


def test_every_submitted_text_field_stored_inertly(db, tmp_path, monkeypatch):
    inst = "BK_X-1"  # (an attack as the code is refused: test_institution_code_and_name_stored_verbatim)
    actor = "Robert'); DROP TABLE audit_event;-- %s $$ :x 日本"
    monkeypatch.setenv("CREDITDB_ACTOR", actor)
    run("institution", "add", inst, "--name", '" OR ""="', "--kind", "bank", "--country", "JP")

    stmts = F.statements(len(NASTY)).astype(object)
    keys = [v.replace("\r\n", " ") for v in NASTY]  # (a line break inside a value is not CSV we accept)
    stmts["borrower_key"] = keys  # every key distinct, every one an attack
    stmts["postal_code"] = ["';DROP", "%_%", "$$1", "\\'x", ":n?", '"""', "日本語", "`t`", "*/*", "%s%"]
    bad = stmts.iloc[:1].copy()
    bad["borrower_key"] = "extra row"
    bad["fiscal_year_end"] = "2020-03-31"
    bad["sales"] = "1'; DELETE FROM financial_statement; --"  # rejected: not a number
    name = "s'; DROP TABLE submission; -- %s $$.csv"
    path = F.write_csv(pd.concat([stmts, bad]), tmp_path / name)

    before = F.table_fingerprint(db.engine)
    out = json.loads(run("submit", "statements", str(path), "-i", inst, "--json", code=1).stdout)
    assert out["status"] == "partial" and out["rows_loaded"] == len(NASTY) and out["rows_rejected"] == 1
    assert changed(before, F.table_fingerprint(db.engine)) == {
        "submission", "firm", "borrower_link", "financial_statement", "audit_event"}

    with db.engine.connect() as conn:
        sub = conn.execute(select(Submission)).one()
        regions = sorted(conn.execute(select(Firm.region)).scalars())
        event = conn.execute(select(AuditEvent)).one()
    assert sub.file_name == name
    issue = sub.report["issues"][0]
    assert (issue["column"], issue["value"]) == ("sales", "1'; DELETE FROM financial_statement; --")
    # region = country + first 3 characters of the postal code (upper-cased)
    assert regions == sorted(["JP-';D", "JP-%_%", "JP-$$1", "JP-\\'X", "JP-:N?", 'JP-"""', "JP-日本語", "JP-`T`",
                              "JP-*/*", "JP-%S%"])
    assert _actor(db, event) == actor
    assert event.details["institution"] == inst and event.details["file"] == name
    shown = json.loads(run("submissions", "list", "--json").stdout)
    assert shown[0]["file_name"] == name and shown[0]["institution"] == inst

    # the hashed keys still link: a loan file naming the same borrower keys finds every firm
    loans = F.loans(stmts)
    loans["corporate_number"] = ""  # link by borrower key only
    loans["loan_key"] = [v + "#L" for v in keys]
    lpath = F.write_csv(loans, tmp_path / "loans.csv")
    out = json.loads(run("submit", "loans", str(lpath), "-i", inst, "--json").stdout)
    assert out["status"] == "loaded" and out["rows_loaded"] == len(NASTY)
    with db.engine.connect() as conn:
        firms = conn.execute(select(Loan.firm_id)).scalars().all()
    assert len(set(firms)) == len(NASTY)

    verdict = json.loads(run("audit", "verify", "--json").stdout)
    assert verdict["ok"] is True and verdict["events"] == 2


def test_approval_by_and_note_stored_verbatim(db, monkeypatch):
    values = NASTY[:5] + NASTY[8:]  # (the narrowest column here holds 100 characters)
    with db.engine.begin() as conn:
        for i, _ in enumerate(values):
            conn.execute(ModelVersion.__table__.insert().values(
                version=f"rating-{i:012d}", created_at=dt.datetime.now(dt.UTC), created_by="pytest",
                status="candidate", artifact="{}", artifact_sha256="0" * 64, spec={}, data_fingerprint="0" * 64,
                code_version="test", seed=1, metrics={}, validation_report={"sample": {"defaults": 40}}))
    for i, value in enumerate(values):
        monkeypatch.setenv("CREDITDB_ACTOR", value)
        before = F.table_fingerprint(db.engine)
        # a version string that is itself an attack finds nothing
        run("model", "approve", "x'; UPDATE model_version SET status='approved'; --", "--by", value, code=1)
        assert F.table_fingerprint(db.engine) == before
        run("model", "approve", f"rating-{i:012d}", "--by", value, "--note", value + " note")
        assert changed(before, F.table_fingerprint(db.engine)) == {"model_version", "audit_event"}
        with db.engine.connect() as conn:
            mv = conn.execute(select(ModelVersion).where(ModelVersion.status == "approved")).one()
            event = conn.execute(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
        assert (mv.version, mv.approved_by, mv.approval_note) == (f"rating-{i:012d}", value, value + " note")
        assert (_actor(db, event), event.details["approved_by"], event.details["note"]) == (
            value, value, value + " note")
    verdict = json.loads(run("audit", "verify", "--json").stdout)
    assert verdict["ok"] is True and verdict["events"] == len(values)
