"""Annual sales in EUR millions for the Basel SME firm-size adjustment (CRE31.9): a
loan table's ``sales`` (currency units) converted with the rates table at the date of
the sales figure. Conversion is I/O (the rates), so it lives here; ``models.pricing``
takes ``sales_eur_m`` only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from models.fx import FxError, RateTable
from models.pricing import PricingPolicy


class SalesConversionError(ValueError):
    """Sales that cannot be converted; ``problems`` name row, loan and field."""

    def __init__(self, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


_CODE = r"^[A-Z]{3}$"


def with_sales_eur_m(loans: pd.DataFrame, policy: PricingPolicy, sales_date: dt.date | None = None,
                     rates: RateTable | None = None,
                     date_hint: str = "a sales_date column or --sales-date DATE (the fiscal year end of the sales "
                                      "figure), or sales_eur_m instead of sales",
                     ) -> pd.DataFrame:
    """``loans`` with ``sales_eur_m``: each row's ``sales`` (annual, currency units) in EUR
    millions, converted at the date of the sales figure for the Basel SME adjustment.

    The currency is the row's ``sales_currency`` (default: the policy currency); the date
    its ``sales_date`` (the fiscal year end of the sales figure; default ``sales_date``).
    Rates: ``rates`` (default :func:`pipelines.fx.configured_rate_table`). A row's own
    ``sales_eur_m`` is kept as given (loans giving it for every row are returned unchanged);
    rows without sales get NaN (no adjustment).
    Raises :class:`SalesConversionError` naming the rows without a date (``date_hint`` says
    what to give), with an unreadable date or currency, or whose currency has no rate on the
    day (naming currency and date).
    """
    n = len(loans)
    given = (pd.to_numeric(loans["sales_eur_m"], errors="coerce") if "sales_eur_m" in loans
             else pd.Series(np.nan, index=loans.index))
    if given.notna().all() and "sales_eur_m" in loans:
        return loans
    out = loans.copy()
    sales = (pd.to_numeric(out["sales"], errors="coerce") if "sales" in out else pd.Series(np.nan, index=out.index))
    have = (sales.notna() & given.isna()).to_numpy()  # to convert
    out["sales_eur_m"] = given.to_numpy(dtype=float)
    if not have.any():
        return out
    ids = out["loan_id"].astype(str).to_numpy() if "loan_id" in out else np.arange(1, n + 1).astype(str)
    rows = np.arange(n) + 2  # the header is row 1

    def blank(col: str) -> pd.Series:
        if col not in out:
            return pd.Series([None] * n, index=out.index, dtype=object)
        v = out[col].astype("string").str.strip()
        return v.where(v.notna() & (v != ""), None).astype(object)

    cur = blank("sales_currency").str.upper().fillna(policy.currency)
    raw_day = blank("sales_date")
    day = pd.to_datetime(raw_day, errors="coerce", format="ISO8601")  # CSV text, or a Parquet date
    if sales_date is not None:
        day = day.where(raw_day.notna(), pd.Timestamp(sales_date))
    problems: list[dict[str, Any]] = []

    def add(mask: np.ndarray, field: str, message: str) -> None:
        for i in np.flatnonzero(mask)[:50]:
            problems.append({"row": int(rows[i]), "loan_id": str(ids[i]), "field": field, "message": message})

    add(have & raw_day.notna().to_numpy() & day.isna().to_numpy(), "sales_date", "must be a date YYYY-MM-DD")
    add(have & raw_day.isna().to_numpy() & day.isna().to_numpy(), "sales_date",
        f"sales without a date: give {date_hint}")
    add(have & ~cur.str.match(_CODE).to_numpy(dtype=bool), "sales_currency", "must be an ISO 4217 code such as JPY")
    if problems:
        raise SalesConversionError(f"{len(problems)} row(s) cannot convert sales to EUR for the Basel SME adjustment:"
                                 "\n  " + "\n  ".join(f"row {p['row']} (loan_id {p['loan_id']}): {p['field']}: "
                                                       f"{p['message']}" for p in problems), problems)
    if rates is None:
        from pipelines.fx import configured_rate_table

        rates = configured_rate_table()
    try:
        eur = rates.convert(sales[have].to_numpy(), cur[have].reset_index(drop=True),
                            day[have].reset_index(drop=True), "EUR")
    except FxError as exc:
        bad = have & (cur.to_numpy() == exc.currency) & (day.dt.date.to_numpy() == exc.day)
        first = int(np.flatnonzero(bad)[0]) if bad.any() else None
        where = f"row {rows[first]} (loan_id {ids[first]}): " if first is not None else ""
        raise SalesConversionError(f"{where}sales cannot be converted to EUR for the Basel SME adjustment: {exc}",
                                 [{"row": int(rows[first]) if first is not None else None, "field": "sales_currency",
                                   "message": str(exc)}]) from exc
    out.loc[have, "sales_eur_m"] = eur / 1e6
    return out
