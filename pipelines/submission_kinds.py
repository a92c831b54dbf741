"""What differs between submission kinds, declared once per kind.

A new submission kind is a data-dictionary entry (``pipelines.dictionary``), an
expectation suite (``expectations/``), a fact table (``creditdb.schema`` and a
migration) and one :class:`KindSpec` here; the loader (``pipelines.ingest``) has no
branch per kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Table

from creditdb.schema import AMOUNT_COLUMNS, DefaultEvent, FinancialStatement, Loan
from pipelines import dictionary as D

#: builds a kind's table rows from the valid typed rows, their loan hashes (None for
#: statements) and the columns every fact row has (firm_id, institution_id, submission_id)
RowMapping = Callable[[pd.DataFrame, "pd.Series | None", dict[str, Any]], pd.DataFrame]


def dates(series: pd.Series) -> pd.Series:
    """Calendar dates as Arrow ``date32`` (written as YYYY-MM-DD; ``datetime.date`` as objects)."""
    import pyarrow as pa

    days = pa.array(series.to_numpy(dtype="datetime64[s]").astype("datetime64[D]"), from_pandas=True)
    return pd.Series(days.cast(pa.date32()), index=series.index, dtype=pd.ArrowDtype(pa.date32()))


def _statement_rows(good: pd.DataFrame, loan_hash: pd.Series | None, base: dict[str, Any]) -> pd.DataFrame:
    cols = {**base,
            "fiscal_year_end": dates(good.fiscal_year_end).array,
            "months": good.months.fillna(12).astype("int64").to_numpy(),
            "currency": good.currency.astype(str).to_numpy(),
            "employees": good.employees.astype("Int64").to_numpy()}
    cols.update({c: good[c].to_numpy(dtype="float64") for c in AMOUNT_COLUMNS})
    return pd.DataFrame(cols)


def _loan_rows(good: pd.DataFrame, loan_hash: pd.Series | None, base: dict[str, Any]) -> pd.DataFrame:
    assert loan_hash is not None
    return pd.DataFrame({
        **base,
        "loan_hash": loan_hash.astype(str).to_numpy(),
        "origination_date": dates(good.origination_date).array,
        "maturity_date": dates(good.maturity_date).array,
        "currency": good.currency.astype(str).to_numpy(),
        "amount": good.amount.to_numpy(dtype="float64"),
        "interest_rate": good.interest_rate.to_numpy(dtype="float64"),
        "amortization": good.amortization.fillna("annuity").astype(str).to_numpy(),
        "secured": good.secured.fillna(False).astype(bool).to_numpy(),
        "guarantee_coverage": good.guarantee_coverage.to_numpy(dtype="float64"),
        "outstanding": good.outstanding.to_numpy(dtype="float64"),
    })


def _default_rows(good: pd.DataFrame, loan_hash: pd.Series | None, base: dict[str, Any]) -> pd.DataFrame:
    assert loan_hash is not None
    return pd.DataFrame({
        **base,
        "default_date": dates(good.default_date).array,
        "event_type": good.event_type.astype(str).to_numpy(),
        "loan_hash": loan_hash.astype(object).where(loan_hash.notna(), None).to_numpy(),
        "exposure": good.exposure.to_numpy(dtype="float64"),
    })


@dataclass(frozen=True)
class KindSpec:
    """One submission kind.

    * ``table``: the fact table its rows go to;
    * ``rows``: the row mapping (typed file rows -> table rows, see :data:`RowMapping`);
    * ``creates_firms``: an unknown borrower becomes a new firm (statements) rather than
      a ``borrower.unknown`` row issue (loans, defaults: the firm must exist);
    * ``country_column``: the file has a ``country`` column for the corporate number;
      otherwise numbers are read as numbers of the submitting institution's country;
    * ``loan_key``: the rows carry a bank loan key, stored as a keyed hash;
    * ``supersedes``: a row may supersede an earlier submission's row (counted in the result);
    * ``references``: what every written row refers to, checked by the database on
      insert (``creditdb.integrity``): the submission and the institution's firm.
    """

    kind: str
    table: Table
    rows: RowMapping
    creates_firms: bool = False
    country_column: bool = False
    loan_key: bool = True
    supersedes: bool = False
    references: tuple[str, ...] = ("submission", "firm")

    @property
    def file_key(self) -> tuple[str, ...]:
        """Columns that identify a row of the file (a repeat is a ``file.unique_key`` row issue)."""
        return tuple(D.FILE_KEYS[self.kind])


KIND_SPECS: dict[str, KindSpec] = {
    "statements": KindSpec("statements", FinancialStatement.__table__, _statement_rows, creates_firms=True,
                           country_column=True, loan_key=False, supersedes=True),
    "loans": KindSpec("loans", Loan.__table__, _loan_rows),
    "defaults": KindSpec("defaults", DefaultEvent.__table__, _default_rows),
}
assert set(KIND_SPECS) == set(D.KINDS), "every kind of the data dictionary needs a KindSpec"


def spec(kind: str) -> KindSpec:
    """The :class:`KindSpec` of ``kind``; raises ``ValueError`` for an unknown kind."""
    try:
        return KIND_SPECS[kind]
    except KeyError:
        raise ValueError(f"kind must be one of {D.KINDS}") from None
