"""Writing score rows: references checked set-wise, rows by the database's bulk path.

``score`` has no per-row foreign keys (migration 0003: their checks cost PostgreSQL
twice the time of writing a million rows). :func:`write_scores` checks, in the caller's
transaction and before writing, what they would have checked and a little more:

* the model version exists and is not retired;
* every ``(statement_id, firm_id)`` pair is a stored statement *of that firm* (a
  foreign key per column could not see a statement of another firm).

The pairs go to a temporary table (COPY on PostgreSQL) and one anti-join finds those
without a statement. Any failure raises :class:`ScoreReferenceError` and nothing is
written. No application role may delete firms, statements or model versions
(``creditdb/sql/rls.sql``), so a checked reference stays valid.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Column, Connection, Integer, MetaData, Table, and_, select

from creditdb.bulk import insert_frame
from creditdb.schema import FinancialStatement, ModelVersion, Score

COLUMNS = ["model_version_id", "firm_id", "statement_id", "pd", "grade", "fee_category", "reasons", "scored_at"]


class ScoreReferenceError(ValueError):
    """Score rows refer to a model version, firm or statement that is not stored (or a retired model)."""


def check_references(conn: Connection, model_version_id: int, refs: pd.DataFrame) -> None:
    """Raise :class:`ScoreReferenceError` unless the model and every ``(statement_id, firm_id)`` of ``refs`` exist."""
    status = conn.execute(select(ModelVersion.status).where(ModelVersion.id == model_version_id)).scalar_one_or_none()
    if status is None:
        raise ScoreReferenceError(f"model version id {model_version_id} is not in the registry")
    if status == "retired":
        raise ScoreReferenceError(f"model version id {model_version_id} is retired and may not score")
    if refs.empty:
        return
    tmp = Table("tmp_score_refs", MetaData(), Column("statement_id", Integer), Column("firm_id", Integer),
                prefixes=["TEMPORARY"])
    tmp.drop(conn, checkfirst=True)
    tmp.create(conn)
    try:
        insert_frame(conn, tmp, refs[["statement_id", "firm_id"]].astype("int64"))
        s = FinancialStatement.__table__
        missing = conn.execute(
            select(tmp.c.statement_id, tmp.c.firm_id)
            .outerjoin(s, and_(s.c.id == tmp.c.statement_id, s.c.firm_id == tmp.c.firm_id))
            .where(s.c.id.is_(None)).limit(5)).all()
    finally:
        tmp.drop(conn)
    if missing:
        shown = ", ".join(f"statement {a} of firm {b}" for a, b in missing)
        raise ScoreReferenceError(f"score rows refer to statements that are not stored for their firm: {shown}")


def write_scores(conn: Connection, frame: pd.DataFrame) -> None:
    """Check the references of ``frame`` (columns :data:`COLUMNS`, one model version) and insert it.

    ``pd`` is a one-year probability of default (fraction). Runs in the caller's
    transaction: on any error nothing is written.
    """
    versions = frame["model_version_id"].unique()
    if len(versions) > 1:
        raise ScoreReferenceError(f"one model version per write, got {sorted(int(v) for v in versions)}")
    if frame.empty:
        return
    check_references(conn, int(versions[0]), frame)
    insert_frame(conn, Score.__table__, frame[COLUMNS])


__all__ = ["COLUMNS", "ScoreReferenceError", "check_references", "write_scores"]
