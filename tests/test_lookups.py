"""The identity and registry lookups (``creditdb.lookups``), each once on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib

import pandas as pd
import pytest
from sqlalchemy import select

from creditdb import lookups
from creditdb.schema import FinancialStatement, Institution, ModelVersion, Score
from tests import factories as F

KEY = b"test-lookups-key"


def _bank(conn, code: str, country: str = "JP") -> None:
    conn.execute(Institution.__table__.insert().values(code=code, name=f"Bank {code}", kind="bank", country=country))


def _model(conn, version: str, status: str, approved_at: dt.datetime | None) -> int:
    text = f"model {version}"
    return conn.execute(ModelVersion.__table__.insert().values(
        version=version, created_by="t", status=status, artifact=text, approved_at=approved_at,
        artifact_sha256=hashlib.sha256(text.encode()).hexdigest(), spec={}, data_fingerprint="0" * 64,
        code_version="x", seed=1, metrics={}).returning(ModelVersion.id)).scalar_one()


@pytest.fixture
def loaded(db, tmp_path):
    """BK1 submitted firms B00000..B00003 (with corporate numbers); BK2 knows none of them."""
    from pipelines.ingest import submit_file

    with db.engine.begin() as conn:
        _bank(conn, "BK1")
        _bank(conn, "BK2")
    res = submit_file(db.engine, "statements", F.write_csv(F.statements(4), tmp_path / "s.csv"), "BK1",
                      key=KEY, progress=False)
    assert res.status == "loaded"
    return db


def test_institution_by_code(loaded):
    with loaded.engine.connect() as conn:
        inst = lookups.institution(conn, "BK1")
        assert inst is not None and (inst.code, inst.country, inst.kind) == ("BK1", "JP", "bank")
        assert inst.id == conn.execute(select(Institution.id).where(Institution.code == "BK1")).scalar_one()
        assert lookups.institution(conn, "NOPE") is None
        assert lookups.require_institution(conn, "BK2").code == "BK2"
        with pytest.raises(lookups.UnknownInstitution, match="unknown institution 'NOPE'"):
            lookups.require_institution(conn, "NOPE")


def test_firm_by_borrower_key_and_by_corporate_number(loaded):
    with loaded.engine.connect() as conn:
        bk1, bk2 = lookups.require_institution(conn, "BK1"), lookups.require_institution(conn, "BK2")
        keys = pd.Series(["BK1-B00002", "BK1-B00000", "BK1-B99999"], index=[7, 8, 9], dtype=object)
        firms = lookups.firm_ids_by_borrower_key(conn, KEY, bk1, keys)
        assert list(firms.index) == [7, 8, 9] and pd.isna(firms[9])
        assert firms[7] != firms[8]
        # another bank's borrower key space is its own: BK2 has no link to these firms
        assert lookups.firm_ids_by_borrower_key(conn, KEY, bk2, keys).isna().all()
        # the same firms by corporate number (as any bank's submission would meet them)
        numbers = pd.Series([f"{9000000000000 + 2:013d}", f"{9000000000000:013d}", "1234567890123"],
                            index=[7, 8, 9], dtype=object)
        by_number = lookups.firm_ids_by_corporate_number(conn, KEY, pd.Series("JP", index=numbers.index), numbers)
        assert by_number[7] == firms[7] and by_number[8] == firms[8] and pd.isna(by_number[9])
        # a different key gives other hashes: nothing is found
        assert lookups.firm_ids_by_borrower_key(conn, b"another-key", bk1, keys).isna().all()


def test_approved_model_is_the_most_recently_approved(db):
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with db.engine.begin() as conn:
        assert lookups.approved_model(conn) is None
        _model(conn, "cand", "candidate", None)
        assert lookups.approved_model(conn) is None
        _model(conn, "old", "approved", t0)
        _model(conn, "new", "approved", t0 + dt.timedelta(days=1))
        _model(conn, "undated", "approved", None)  # written by hand: sorts after every dated approval
        _model(conn, "gone", "retired", t0 + dt.timedelta(days=9))
        row = lookups.approved_model(conn)
        assert row is not None and row.version == "new" and row.status == "approved"


def test_latest_score_per_firm_and_model(loaded):
    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    with loaded.engine.begin() as conn:
        m1 = _model(conn, "m1", "approved", t0)
        m2 = _model(conn, "m2", "candidate", None)
        stmts = conn.execute(select(FinancialStatement.id, FinancialStatement.firm_id)
                             .order_by(FinancialStatement.id)).all()
        (s_a, firm_a), (s_b, firm_b) = stmts[0], stmts[1]

        def score(model: int, stmt: int, firm: int, pd_: float, days: int) -> None:
            conn.execute(Score.__table__.insert().values(
                model_version_id=model, firm_id=firm, statement_id=stmt, pd=pd_, grade="B",
                fee_category=2, reasons=[], scored_at=t0 + dt.timedelta(days=days)))

        score(m1, s_a, firm_a, 0.01, 1)
        score(m1, s_a, firm_a, 0.02, 3)  # the latest of m1 for firm a
        score(m2, s_a, firm_a, 0.50, 5)  # later, but of another model
        score(m1, s_b, firm_b, 0.03, 2)
    with loaded.engine.connect() as conn:
        of_m1 = lookups.latest_scores(conn, m1, [firm_a, firm_b])
        assert dict(zip(of_m1.firm_id, of_m1.pd, strict=True)) == {firm_a: 0.02, firm_b: 0.03}
        assert list(of_m1.columns) == lookups.SCORE_COLUMNS
        everything = lookups.latest_scores(conn, m1)  # every firm
        assert len(everything) == 2 and set(everything.pd) == {0.02, 0.03}
        any_model = lookups.latest_scores(conn, None, [firm_a], extra=("model_version_id", "statement_id"))
        assert (any_model.pd.tolist(), any_model.model_version_id.tolist()) == ([0.50], [m2])
        assert any_model.statement_id.tolist() == [s_a]
        assert lookups.latest_scores(conn, m1, []).empty
        with pytest.raises(ValueError, match="unknown extra"):
            lookups.latest_scores(conn, m1, extra=("secret",))
