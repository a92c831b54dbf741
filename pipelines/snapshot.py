"""Point-in-time views of stored data.

Rows are never updated in place: a corrected statement for the same firm, fiscal
period and institution arrives as a new row in a later submission. The statement in
force at a time T is the one from the latest submission received at or before T.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Connection, func, select

from creditdb.bulk import read_frame
from creditdb.schema import FinancialStatement, Submission


def statements_as_of(conn: Connection, as_of: dt.datetime | None = None) -> pd.DataFrame:
    """The statements in force at ``as_of`` (default: now), one per firm, period and institution.

    (Scoring reads only each firm's latest statements:
    :func:`pipelines.features.load_scoring_statements`.)
    """
    s = FinancialStatement.__table__
    stmt = select(s, Submission.received_at).join(Submission, Submission.id == s.c.submission_id)
    if as_of is not None:
        stmt = stmt.where(Submission.received_at <= as_of)
    ranked = stmt.add_columns(
        func.row_number().over(
            partition_by=(s.c.firm_id, s.c.fiscal_year_end, s.c.institution_id),
            order_by=(Submission.received_at.desc(), s.c.submission_id.desc()),
        ).label("rn")
    ).subquery()
    current = select(ranked).where(ranked.c.rn == 1)
    current = current.order_by(ranked.c.firm_id, ranked.c.fiscal_year_end)
    frame = read_frame(conn, current)
    return frame.drop(columns=["rn"])
