"""Writing score rows: references checked set-wise, rows by the database's bulk path.

``score`` has no per-row foreign keys (migration 0003: their checks cost PostgreSQL
twice the time of writing a million rows). :func:`write_scores` checks, in the caller's
transaction and before writing, what they would have checked and a little more:

* the model version exists and is not retired;
* every ``(statement_id, firm_id)`` pair is a stored statement *of that firm* (a
  foreign key per column could not see a statement of another firm).

The pairs go to a temporary table (COPY on PostgreSQL) and one anti-join finds those
without a statement. Any failure raises :class:`ScoreReferenceError` and nothing is
written (the caller's transaction rolls back). :class:`ScoreWriter` streams a scoring
run's rows part by part (PostgreSQL ingests one part while the next is computed) and
checks the references of all of them before the transaction can commit. No application role may delete firms, statements or model versions
(``creditdb/sql/rls.sql``), so a checked reference stays valid.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from types import TracebackType

import numpy as np
import pandas as pd
from sqlalchemy import Column, Connection, Integer, MetaData, Table, and_, select

from creditdb.bulk import copy_stream, insert_frame
from creditdb.schema import FinancialStatement, ModelVersion, Score

COLUMNS = ["model_version_id", "firm_id", "institution_id", "statement_id", "pd", "grade", "fee_category", "reasons",
           "scored_at"]
#: ``institution_id`` of a pool-wide score row (none: scores written without an institution)
NO_INSTITUTION = -1


class ScoreReferenceError(ValueError):
    """Score rows refer to a model version, firm or statement that is not stored (or a retired model)."""


def check_model(conn: Connection, model_version_id: int) -> None:
    """Raise :class:`ScoreReferenceError` unless the model version is stored and not retired."""
    status = conn.execute(select(ModelVersion.status).where(ModelVersion.id == model_version_id)).scalar_one_or_none()
    if status is None:
        raise ScoreReferenceError(f"model version id {model_version_id} is not in the registry")
    if status == "retired":
        raise ScoreReferenceError(f"model version id {model_version_id} is retired and may not score")


def check_references(conn: Connection, refs: pd.DataFrame) -> None:
    """Raise :class:`ScoreReferenceError` unless every ``(statement_id, firm_id)`` of ``refs`` is a stored
    statement, submitted by the row's ``institution_id`` when it has one (a member's score rests on its own
    statement)."""
    if refs.empty:
        return
    tmp = Table("tmp_score_refs", MetaData(), Column("statement_id", Integer), Column("firm_id", Integer),
                Column("institution_id", Integer), prefixes=["TEMPORARY"])
    tmp.drop(conn, checkfirst=True)
    tmp.create(conn)
    if "institution_id" not in refs:
        refs = refs.assign(institution_id=NO_INSTITUTION)
    try:
        insert_frame(conn, tmp, refs[["statement_id", "firm_id", "institution_id"]].astype("int64"))
        s = FinancialStatement.__table__
        missing = conn.execute(
            select(tmp.c.statement_id, tmp.c.firm_id)
            .outerjoin(s, and_(s.c.id == tmp.c.statement_id, s.c.firm_id == tmp.c.firm_id,
                               (tmp.c.institution_id == NO_INSTITUTION) | (s.c.institution_id == tmp.c.institution_id)))
            .where(s.c.id.is_(None)).limit(5)).all()
    finally:
        tmp.drop(conn)
    if missing:
        shown = ", ".join(f"statement {a} of firm {b}" for a, b in missing)
        raise ScoreReferenceError(f"score rows refer to statements that are not stored for their firm "
                                  f"(and institution): {shown}")


class ScoreWriter:
    """Writes one scoring run's rows (one model version) in the caller's transaction.

    ``with ScoreWriter(conn, model_version_id) as w: w.write(frame)`` for each part
    (columns :data:`COLUMNS`). The model is checked on entry; on PostgreSQL the parts
    go through one COPY stream (:func:`creditdb.bulk.copy_stream`), elsewhere by
    :func:`creditdb.bulk.insert_frame`; on a clean exit the ``(statement_id, firm_id)``
    pairs of every part are checked (:func:`check_references`) and a failure raises,
    so the caller's transaction rolls back. ``rows``: rows written.
    """

    def __init__(self, conn: Connection, model_version_id: int) -> None:
        self.conn, self.model_version_id, self.rows = conn, int(model_version_id), 0
        self._refs: list[pd.DataFrame] = []
        self._stack = ExitStack()
        self._write: Callable[[pd.DataFrame], None] | None = None

    def __enter__(self) -> ScoreWriter:
        check_model(self.conn, self.model_version_id)
        if self.conn.dialect.name == "postgresql":
            self._write = self._stack.enter_context(copy_stream(self.conn, Score.__table__, COLUMNS))
        return self

    def write(self, frame: pd.DataFrame) -> None:
        """Queue the rows of ``frame`` (``pd``: one-year PD, a fraction) for the ``score`` table."""
        if frame.empty:
            return
        if not np.all(frame["model_version_id"].to_numpy() == self.model_version_id):
            raise ScoreReferenceError(f"this run writes model version id {self.model_version_id} only")
        if "institution_id" not in frame:
            frame = frame.assign(institution_id=None)
        inst = pd.to_numeric(frame["institution_id"], errors="coerce").fillna(NO_INSTITUTION).astype("int64")
        self._refs.append(frame[["statement_id", "firm_id"]].astype("int64").assign(institution_id=inst.to_numpy()))
        if self._write is not None:
            self._write(frame)
        else:
            insert_frame(self.conn, Score.__table__, frame[COLUMNS])
        self.rows += len(frame)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stack.__exit__(exc_type, exc, tb)  # ends the COPY (aborts it on an exception)
        if exc_type is None and self._refs:
            check_references(self.conn, pd.concat(self._refs, ignore_index=True))


def write_scores(conn: Connection, frame: pd.DataFrame) -> None:
    """Check the references of ``frame`` (columns :data:`COLUMNS`, one model version) and insert it.

    ``pd`` is a one-year probability of default (fraction). Runs in the caller's
    transaction: on any error nothing is written.
    """
    if frame.empty:
        return
    with ScoreWriter(conn, int(frame["model_version_id"].iloc[0])) as writer:
        writer.write(frame)  # refuses rows of any other model version


__all__ = ["COLUMNS", "ScoreReferenceError", "ScoreWriter", "check_model", "check_references", "write_scores"]
