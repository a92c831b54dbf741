"""The set-based reference checks that replace the fact tables' foreign keys (creditdb.integrity,
migration 0010), attacked on SQLite and PostgreSQL through the bulk write path (COPY on
PostgreSQL): each bad row is refused and nothing of its statement is written."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pandas as pd
import psycopg
import pytest
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.exc import DBAPIError

from creditdb.bulk import insert_frame
from creditdb.schema import AMOUNT_COLUMNS, BorrowerLink, DefaultEvent, FinancialStatement, Loan, Submission

TABLES = {"statements": FinancialStatement, "loans": Loan, "defaults": DefaultEvent}
#: a refused write: SQLAlchemy's wrapper, or psycopg's own error from a COPY on the raw connection
REFUSED = (DBAPIError, psycopg.Error)


def _message(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc)


@pytest.fixture
def two_banks(db):
    """BK1 and BK2, each with firms linked (firms 5..9 by both), a loaded submission of every kind and
    a statement and a loan of each of its firms, written directly (no file: the checks are under test)."""
    from creditdb.schema import Firm, Institution

    with db.engine.begin() as conn:
        db.inst = {code: conn.execute(Institution.__table__.insert().values(
            code=code, name=code, kind="bank", country="JP").returning(Institution.id)).scalar_one()
            for code in ("BK1", "BK2")}
        firms = [conn.execute(Firm.__table__.insert().values(pseudonym=f"{i:064x}", country="JP", industry="C")
                              .returning(Firm.id)).scalar_one() for i in range(15)]
        db.linked = {"BK1": set(firms[:10]), "BK2": set(firms[5:])}
        db.subs = {}
        for code, linked in db.linked.items():
            insert_frame(conn, BorrowerLink.__table__, pd.DataFrame(
                {"institution_id": db.inst[code], "borrower_hash": [f"{code}{f}" for f in sorted(linked)],
                 "firm_id": sorted(linked)}))
            for kind in TABLES:
                db.subs[(code, kind)] = conn.execute(Submission.__table__.insert().values(
                    institution_id=db.inst[code], kind=kind, file_name=f"{kind}.csv", file_sha256=f"{code}{kind}",
                    status="loading", strict=False, rows_total=0, rows_loaded=0, rows_rejected=0, report={})
                    .returning(Submission.id)).scalar_one()
            for kind in ("statements", "loans"):
                insert_frame(conn, TABLES[kind].__table__, pd.concat(
                    [_row(kind, f, db.inst[code], db.subs[(code, kind)]) for f in sorted(linked)], ignore_index=True))
    return db


def _row(kind: str, firm: int, inst: int, sub: int) -> pd.DataFrame:
    base = {"firm_id": [firm], "institution_id": [inst], "submission_id": [sub]}
    if kind == "statements":
        return pd.DataFrame({**base, "fiscal_year_end": [dt.date(2023, 3, 31)], "months": [12], "currency": ["JPY"],
                             "employees": [5], **{c: [1.0e6] for c in AMOUNT_COLUMNS}})
    if kind == "loans":
        return pd.DataFrame({**base, "loan_hash": ["a" * 64], "origination_date": [dt.date(2023, 1, 1)],
                             "maturity_date": [dt.date(2028, 1, 1)], "currency": ["JPY"], "amount": [1.0e6],
                             "amortization": ["annuity"], "secured": [False]})
    return pd.DataFrame({**base, "default_date": [dt.date(2023, 6, 30)], "event_type": ["past_due_90"]})


def _count(engine, kind: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(TABLES[kind])).scalar_one()


def _refused(engine, kind: str, frame: pd.DataFrame) -> str:
    """Write ``frame`` in one transaction; it must fail. Returns the database's message."""
    before = _count(engine, kind)
    with pytest.raises(REFUSED) as info, engine.begin() as conn:
        insert_frame(conn, TABLES[kind].__table__, frame)
    assert _count(engine, kind) == before
    return _message(info.value)


def test_unknown_firm_is_refused_and_nothing_written(two_banks):
    db = two_banks
    good = next(iter(db.linked["BK1"]))
    unknown = max(db.linked["BK1"] | db.linked["BK2"]) + 1000
    for kind in ("statements", "loans", "defaults"):
        sub = db.subs[("BK1", kind)]
        ok = _row(kind, good, db.inst["BK1"], sub)
        # one good row and one of a firm that does not exist: the whole statement is refused
        bad = pd.concat([ok, _row(kind, unknown, db.inst["BK1"], sub)], ignore_index=True)
        assert "firm" in _refused(db.engine, kind, bad)
        # the good row alone is accepted (then rolled back): the check refuses only what is wrong
        with db.engine.connect() as conn:
            insert_frame(conn, TABLES[kind].__table__, ok)
            conn.rollback()


def test_statement_of_another_institutions_submission_is_refused(two_banks):
    db = two_banks
    shared = next(iter(db.linked["BK1"] & db.linked["BK2"]))
    # BK1's row filed under BK2's submission
    msg = _refused(db.engine, "statements", _row("statements", shared, db.inst["BK1"], db.subs[("BK2", "statements")]))
    assert "submission" in msg
    # BK2's row, in its own submission, of a firm only BK1 has linked
    only_bk1 = next(iter(db.linked["BK1"] - db.linked["BK2"]))
    bk2_row = _row("statements", only_bk1, db.inst["BK2"], db.subs[("BK2", "statements")])
    msg = _refused(db.engine, "statements", bk2_row)
    assert "not linked" in msg
    # a statement filed under the bank's own loans submission (a key per column could not see it)
    msg = _refused(db.engine, "statements", _row("statements", shared, db.inst["BK1"], db.subs[("BK1", "loans")]))
    assert "statements submission" in msg


def test_statement_of_a_rolled_back_submission_is_refused(two_banks):
    """A submission created and rolled back (to a savepoint) in the writing transaction does not exist for the check."""
    db = two_banks
    firm = next(iter(db.linked["BK1"]))
    before = _count(db.engine, "statements")
    with pytest.raises(REFUSED) as info, db.engine.begin() as conn:
        sp = conn.begin_nested()
        sub = conn.execute(Submission.__table__.insert().values(
            institution_id=db.inst["BK1"], kind="statements", file_name="x.csv", file_sha256="e" * 64,
            status="loading", strict=False, rows_total=0, rows_loaded=0, rows_rejected=0, report={})
            .returning(Submission.id)).scalar_one()
        sp.rollback()
        insert_frame(conn, FinancialStatement.__table__, _row("statements", firm, db.inst["BK1"], sub))
    assert "submission" in _message(info.value)
    assert _count(db.engine, "statements") == before


@pytest.mark.postgres
@pytest.mark.parametrize("db", ["postgres"], indirect=True)
def test_statement_of_a_submission_another_transaction_is_rolling_back(two_banks):
    """PostgreSQL: a submission still uncommitted in another session (which then rolls back) is refused at once;
    a foreign key would have waited for that session's outcome."""
    db = two_banks
    firm = next(iter(db.linked["BK1"]))
    before = _count(db.engine, "statements")
    other = db.engine.connect()
    tx = other.begin()
    sub = other.execute(Submission.__table__.insert().values(
        institution_id=db.inst["BK1"], kind="statements", file_name="y.csv", file_sha256="f" * 64,
        status="loading", strict=False, rows_total=0, rows_loaded=0, rows_rejected=0, report={})
        .returning(Submission.id)).scalar_one()
    outcome: dict = {}

    def writer() -> None:
        try:
            outcome["msg"] = _refused(db.engine, "statements", _row("statements", firm, db.inst["BK1"], sub))
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc

    t = threading.Thread(target=writer)
    t.start()
    t.join(timeout=30)
    alive = t.is_alive()
    tx.rollback()
    other.close()
    t.join(timeout=30)
    assert not alive, "the check waited for the other transaction"
    assert "error" not in outcome, outcome.get("error")
    assert "submission" in outcome["msg"]
    assert _count(db.engine, "statements") == before


@pytest.mark.postgres
@pytest.mark.parametrize("db", ["postgres"], indirect=True)
def test_a_bank_and_the_operator_under_rls_cannot_reference_what_they_may_not(two_banks):
    """As real logins: the bank's rows go through row-level security and the check; the operator's
    policy lets any row through (WITH CHECK true), so the check alone must refuse it."""
    db = two_banks
    sfx = uuid.uuid4().hex[:8]
    roles = {"bank": f"cdbt_bank_{sfx}", "operator": f"cdbt_op_{sfx}"}
    admin = create_engine(db.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{roles["bank"]}" LOGIN IN ROLE creditdb_institution'))
        conn.execute(text(f'CREATE ROLE "{roles["operator"]}" LOGIN IN ROLE creditdb_operator'))
        conn.execute(text("UPDATE institution SET db_role = :r WHERE code = 'BK2'"), {"r": roles["bank"]})
    base, name = db.url.rsplit("/", 1)
    scheme, rest = base.split("://", 1)
    host = rest.split("@", 1)[-1]
    engines = {k: create_engine(f"{scheme}://{r}@{host}/{name}") for k, r in roles.items()}
    try:
        shared = next(iter(db.linked["BK1"] & db.linked["BK2"]))
        only_bk1 = next(iter(db.linked["BK1"] - db.linked["BK2"]))
        bk2, bk1 = db.inst["BK2"], db.inst["BK1"]
        own_sub, other_sub = db.subs[("BK2", "statements")], db.subs[("BK1", "statements")]
        for who in ("bank", "operator"):
            engine = engines[who]
            # another institution's submission, an unlinked firm, a firm that does not exist
            _refused(engine, "statements", _row("statements", shared, bk2, other_sub))
            _refused(engine, "statements", _row("statements", only_bk1, bk2, own_sub))
            _refused(engine, "statements", _row("statements", 10 ** 9, bk2, own_sub))
        # the operator writing a row in BK1's name into BK2's submission: its policy allows it, the check does not
        msg = _refused(engines["operator"], "statements", _row("statements", shared, bk1, own_sub))
        assert "submission" in msg
        with engines["bank"].connect() as conn:  # the bank's proper row goes through (then rolled back)
            insert_frame(conn, FinancialStatement.__table__, _row("statements", shared, bk2, own_sub))
            conn.rollback()
    finally:
        for e in engines.values():
            e.dispose()
        with admin.connect() as conn:
            conn.execute(text("UPDATE institution SET db_role = NULL WHERE code = 'BK2'"))
            for r in roles.values():
                conn.execute(text(f'DROP ROLE IF EXISTS "{r}"'))
        admin.dispose()


def test_migration_0010_both_ways_keeps_rows_and_swaps_keys_for_checks(two_banks):
    """Down to 0003 the nine foreign keys come back (validated on the stored rows) and the checks go;
    up again the keys go and the checks refuse a bad row; rows unchanged throughout."""
    from alembic import command

    from creditdb.db import alembic_config, current_revision, upgrade
    from creditdb.integrity import FACT_TABLES

    db = two_banks
    engine = db.engine

    def keys() -> dict[str, set[str]]:
        insp = inspect(engine)
        return {t: {fk["referred_table"] for fk in insp.get_foreign_keys(t)} for t in FACT_TABLES}

    def rows() -> tuple:
        # the columns that exist at 0003 as at 0010 (migration 0015 adds statement columns)
        later = {"paid_up_capital", "land", "buildings", "isic_code"}
        with engine.connect() as conn:
            return tuple(conn.execute(select(*[c for c in t.c if c.name not in later]).order_by(t.c.id)).all()
                         for t in (FinancialStatement.__table__, Loan.__table__))

    stored = rows()
    assert keys() == {t: set() for t in FACT_TABLES}
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0003")
    engine.dispose()
    assert current_revision(engine) == "0003"
    assert keys() == {t: {"firm", "institution", "submission"} for t in FACT_TABLES}
    assert rows() == stored
    # with the keys back, the cross-institution row a key cannot see is accepted (then rolled back)
    shared = next(iter(db.linked["BK1"] & db.linked["BK2"]))
    with engine.connect() as conn:
        insert_frame(conn, FinancialStatement.__table__,
                     _row("statements", shared, db.inst["BK1"], db.subs[("BK2", "statements")]))
        conn.rollback()
    upgrade(engine, "0010")
    engine.dispose()
    assert keys() == {t: set() for t in FACT_TABLES} and rows() == stored
    _refused(engine, "statements", _row("statements", shared, db.inst["BK1"], db.subs[("BK2", "statements")]))
