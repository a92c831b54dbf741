"""Default labels for statements, point in time.

A statement becomes *available* ``lag_months`` after its fiscal year end (the time a
lender has it in hand). Its label is 1 when the firm has a default event in the
``horizon_months`` after availability, else 0. A statement whose window is not yet
complete at ``as_of`` is unlabelled (NaN); a statement that became available after the
firm's first default is excluded (the firm was already in default).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def availability(fiscal_year_end: pd.Series, lag_months: int = 3) -> pd.Series:
    """Date a statement becomes available: fiscal year end plus the reporting lag."""
    return pd.to_datetime(fiscal_year_end) + pd.DateOffset(months=lag_months)


def label_statements(statements: pd.DataFrame, defaults: pd.DataFrame, as_of: pd.Timestamp | str,
                     lag_months: int = 3, horizon_months: int = 12) -> pd.DataFrame:
    """Add ``available``, ``window_end``, ``label`` (1.0 / 0.0 / NaN) and ``default_date``.

    ``statements`` needs ``firm_id`` and ``fiscal_year_end``; ``defaults`` needs
    ``firm_id`` and ``default_date``. Only defaults dated before ``as_of`` are used.
    Rows of firms already in default when the statement became available are dropped.
    """
    as_of = pd.Timestamp(as_of)
    out = statements.copy()
    out["available"] = availability(out["fiscal_year_end"], lag_months)
    out["window_end"] = out["available"] + pd.DateOffset(months=horizon_months)
    d = defaults.loc[pd.to_datetime(defaults["default_date"]) < as_of, ["firm_id", "default_date"]].copy()
    d["default_date"] = pd.to_datetime(d["default_date"])
    d = d.sort_values("default_date")
    if d.empty:
        out["default_date"] = pd.NaT
        out["label"] = np.where(out["window_end"] <= as_of, 0.0, np.nan)
        return out
    first = d.groupby("firm_id")["default_date"].min()
    first_default = out["firm_id"].map(first)
    out = out.loc[~(first_default.notna() & (first_default < out["available"]))].copy()
    # the next default on or after availability (any default event of the firm)
    left = out[["firm_id", "available"]].reset_index().sort_values("available")
    right = d.rename(columns={"default_date": "next_default"}).sort_values("next_default")
    merged = pd.merge_asof(left, right, left_on="available", right_on="next_default", by="firm_id",
                           direction="forward").set_index("index")
    out["default_date"] = merged["next_default"].reindex(out.index)
    hit = out["default_date"].notna() & (out["default_date"] < out["window_end"])
    complete = out["window_end"] <= as_of
    out["label"] = np.where(hit, 1.0, np.where(complete, 0.0, np.nan))
    return out
