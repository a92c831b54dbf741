"""Gather the statement table behind ``creditdb stats`` from the database.

One row per firm and fiscal period in force at ``as_of`` (``pipelines.snapshot``):
when several institutions submitted the same firm's statement for the same fiscal
year end, the one received last is used, so a firm counts once per period. Each row
carries the firm's attributes as that statement gives them (``industry``: ISIC Rev.4
section, ``region``, ``size``: the firm's size class), ``year`` (calendar year of the fiscal year end),
the CRD-style ratios of ``models.ratios.compute_features`` and the point-in-time
default label of ``models.labels.label_statements`` (reporting lag 3 months,
12-month horizon; NaN while the window is incomplete or when the firm was already
in default when the statement became available). Only default events submitted at
or before ``as_of`` are used.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Engine, select

from creditdb.schema import BorrowerLink, DefaultEvent, Firm, Submission
from models.labels import label_statements
from models.ratios import FEATURE_NAMES, compute_features
from models.statistics import cell_statistics
from pipelines.snapshot import statements_as_of

#: ``--by`` name -> column of the gathered table.
DIMENSIONS = {"industry": "industry", "region": "region", "size": "size", "year": "year"}
#: Ratios with a distribution (the categorical ``industry`` feature is a dimension instead).
RATIOS: tuple[str, ...] = tuple(n for n in FEATURE_NAMES if n != "industry")


def _as_of(as_of: dt.datetime | None) -> dt.datetime:
    if as_of is None:
        return dt.datetime.now(dt.UTC)
    return as_of if as_of.tzinfo else as_of.replace(tzinfo=dt.UTC)


def gather(engine: Engine, as_of: dt.datetime | None = None, lag_months: int = 3,
           horizon_months: int = 12, known_by: bool = False, keep: tuple[str, ...] = ()) -> pd.DataFrame:
    """Statements in force with firm attributes, ``year``, ratios and ``label``.

    The attributes are the statement's own (as its institution submitted them, migration
    0012), so a member's statistics use only what it submitted. With ``known_by``, a
    column ``known_by`` holds for each row the set of institution ids that have linked a
    borrower to the firm (for ``models.disclosure``; needs read access to every link).
    ``keep`` names further statement columns to return (e.g. ``currency``), or the firm's
    ``country``.
    """
    when = _as_of(as_of)
    with engine.connect() as conn:
        st = statements_as_of(conn, when).rename(columns={"size_class": "size"})
        if "country" in keep and "country" not in st.columns:
            countries = pd.DataFrame(conn.execute(select(Firm.id.label("firm_id"), Firm.country)).all(),
                                     columns=["firm_id", "country"])
            st = st.merge(countries, on="firm_id", how="left")
        links = (pd.DataFrame(conn.execute(select(BorrowerLink.firm_id, BorrowerLink.institution_id)).all(),
                              columns=["firm_id", "institution_id"]) if known_by else None)
        defaults = pd.DataFrame(conn.execute(
            select(DefaultEvent.firm_id, DefaultEvent.default_date)
            .join(Submission, Submission.id == DefaultEvent.submission_id)
            .where(Submission.received_at <= when)).all(), columns=["firm_id", "default_date"])
    columns = ["firm_id", "fiscal_year_end", *DIMENSIONS.values(), "label", *RATIOS, *keep]
    if st.empty:
        return pd.DataFrame(columns=[*columns, "known_by"] if known_by else columns)
    st = (st.sort_values(["received_at", "submission_id"])
          .drop_duplicates(["firm_id", "fiscal_year_end"], keep="last")
          .sort_values(["firm_id", "fiscal_year_end"]).reset_index(drop=True))
    st["fiscal_year_end"] = pd.to_datetime(st["fiscal_year_end"])
    features = compute_features(st)
    naive = pd.Timestamp(when).tz_convert("UTC").tz_localize(None)
    labelled = label_statements(st[["firm_id", "fiscal_year_end"]], defaults, naive,
                                lag_months=lag_months, horizon_months=horizon_months)
    out = st[["firm_id", "fiscal_year_end", "industry", "region", "size", *keep]].copy()
    out["year"] = out["fiscal_year_end"].dt.year
    out["label"] = labelled["label"].reindex(out.index)
    for r in RATIOS:
        out[r] = features[r].astype("float64")
    if links is not None:
        knows = links.groupby("firm_id")["institution_id"].agg(frozenset)
        out["known_by"] = [knows.get(f, frozenset()) | {i} for f, i in zip(out.firm_id, st.institution_id,
                                                                             strict=True)]
        return out[[*columns, "known_by"]]
    return out[columns]


def statistics(engine: Engine, by: list[str], ratios: list[str], k: int = 5,
               as_of: dt.datetime | None = None, margins: bool = True) -> pd.DataFrame:
    """The published statistics table (``models.statistics.cell_statistics``) from the database."""
    frame = gather(engine, as_of)
    return cell_statistics(frame, [DIMENSIONS[b] for b in by], ratios, k=k, margins=margins)
