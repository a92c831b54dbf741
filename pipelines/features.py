"""The modelling table, point in time: statements in force -> CRD ratios -> default labels.

Two layers:

* **Database readers** (:func:`load_statements`, :func:`load_defaults`): the statements
  in force (one per firm and fiscal period: when several institutions submitted the same
  firm-period the one from the latest received submission wins) with the firm's
  industry and established year, and the default events; optionally only what had been
  received at or before a ``snapshot`` time, so a model can be retrained on a past
  state of the database.
* **Pure builders** on those frames (no database), also used directly on generated
  frames: :func:`training_table` and :func:`feature_frame`.

Point in time (no look-ahead) for a training cut-off ``C``:

1. only statements *available* at ``C`` (fiscal year end + reporting lag <= C) enter the
   feature computation, so a statement dated after ``C`` cannot touch any feature
   (growth uses only the same firm's *previous* statement anyway);
2. labels use only default events dated before ``C`` (``models.labels``);
3. only statements whose whole label window (availability + horizon) ends on or before
   ``C`` are kept: a statement dated before ``C`` whose window is incomplete is unused.

Amounts are in currency units; PD horizon one year (12 months) by default.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, func, select, text

from creditdb.bulk import read_frame
from creditdb.schema import AMOUNT_COLUMNS, DefaultEvent, FinancialStatement, Submission
from models.labels import availability, label_statements
from models.ratios import FEATURE_NAMES, compute_features
from pipelines.model_items import FLAG_PREFIX, frame_column, optional_model_items
from pipelines.snapshot import statements_as_of

DEFAULT_LAG_MONTHS = 3
DEFAULT_HORIZON_MONTHS = 12
KEY_COLUMNS = ["statement_id", "firm_id", "fiscal_year_end"]


def in_force(statements: pd.DataFrame) -> pd.DataFrame:
    """One statement per firm and fiscal period: the latest received (ties: latest submission).

    ``statements`` holds ``firm_id``, ``fiscal_year_end``, ``received_at`` and
    ``submission_id`` (as :func:`pipelines.snapshot.statements_as_of` returns them).
    """
    order = statements.sort_values(["firm_id", "fiscal_year_end", "received_at", "submission_id"], kind="stable")
    return order.drop_duplicates(["firm_id", "fiscal_year_end"], keep="last").reset_index(drop=True)


def load_statements(conn: Connection, snapshot: dt.datetime | None = None,
                    size_currency: str | None = "training") -> pd.DataFrame:
    """Statements in force at ``snapshot`` (default: now) with the firm attributes each gives.

    ``size_currency``: the currency of the size features (an ISO code; None: as submitted;
    default ``"training"``: :func:`pipelines.fx.size_currency`, the reporting currency):
    ``fx_to_reporting`` converts each statement's amounts at its fiscal year end (raises
    :class:`models.fx.FxError` when a rate is missing).

    Columns: ``statement_id``, ``firm_id``, ``institution_id``, ``submission_id``,
    ``received_at``, ``fiscal_year_end`` (datetime64), ``months``, the amount columns,
    ``industry`` and ``established_year``. Sorted by firm and fiscal year end.
    (Scoring reads only what it needs: :func:`load_scoring_statements`.)
    """
    st = statements_as_of(conn, snapshot)
    st = st.rename(columns={"id": "statement_id"})
    if st.empty:
        cols = ["statement_id", "firm_id", "institution_id", "submission_id", "received_at", "fiscal_year_end",
                "months", *AMOUNT_COLUMNS, "industry", "established_year"]
        out = pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
        out["fiscal_year_end"] = pd.Series(dtype="datetime64[ns]")
        return out
    st = in_force(st)
    # the firm's attributes as each statement gives them (its institution's, migration 0012)
    st["fiscal_year_end"] = pd.to_datetime(st["fiscal_year_end"])
    for c in AMOUNT_COLUMNS:
        st[c] = pd.to_numeric(st[c], errors="coerce").astype("float64")
    st["established_year"] = pd.to_numeric(st["established_year"], errors="coerce").astype("float64")
    from pipelines.fx import add_size_factor, resolve_size_currency

    st = add_size_factor(conn, st, resolve_size_currency(size_currency))
    return st.sort_values(["firm_id", "fiscal_year_end"], kind="stable").reset_index(drop=True)


SCORING_AMOUNTS = ("sales", "cost_of_sales", "operating_profit", "ordinary_profit", "net_income", "interest_expense",
                   "cash", "receivables", "inventory", "current_assets", "total_assets", "current_liabilities",
                   "interest_bearing_debt", "total_liabilities", "net_assets")  # what models.ratios reads


GROWTH_COLUMNS = ("fiscal_year_end", "months", "sales", "net_income")  # what models.ratios.previous_statement reads


def load_scoring_statements(conn: Connection, fiscal_year_end_max: dt.date,
                            firms: tuple[int, int] | None = None,
                            size_currency: str | None = "training") -> pd.DataFrame:
    """Each firm's latest statement in force with fiscal year end <= ``fiscal_year_end_max``, and the one before,
    per submitting institution (a firm two banks submitted is scored once for each, from its own statements).

    What scoring needs, selected in one query: the statement in force per firm and
    fiscal year end (latest received submission wins; ties: the later submission, then
    the later row); of those the firm's last one (``lead`` is NULL) with the columns the
    ratios read, the firm's industry and established year, and, from the statement
    before it (``lag``), only what growth rates read (:data:`GROWTH_COLUMNS`). One row per
    firm crosses the wire; here each firm gets back two rows: the previous statement
    (its id and :data:`GROWTH_COLUMNS`; other amounts NaN) then the latest.

    Columns: ``statement_id``, ``firm_id``, ``institution_id``, ``fiscal_year_end`` (datetime64),
    ``months``, :data:`SCORING_AMOUNTS` (float64, currency units), ``industry``,
    ``established_year`` (float64, both from the statement); sorted by firm, institution
    and fiscal year end; ``fx_to_reporting`` into ``size_currency`` as in :func:`load_statements`
    (scoring passes the model's). The features
    of each firm's last row equal those computed from its whole history
    (``tests/test_rating_db.py``, ``tests/test_score_store.py``).
    """
    s = FinancialStatement.__table__
    # per institution: a member's score rests only on the statements it submitted, with the
    # firm's attributes as it gave them (issue 17); the pool shares the model, not the figures
    cols = [s.c.id, s.c.firm_id, s.c.institution_id, s.c.fiscal_year_end, s.c.months,
            *[s.c[c] for c in SCORING_AMOUNTS], s.c.industry, s.c.established_year,
            s.c.currency]
    newest_first = (Submission.received_at.desc(), s.c.submission_id.desc(), s.c.id.desc())
    base = (select(*cols).join(Submission, Submission.id == s.c.submission_id)
            .where(s.c.fiscal_year_end <= fiscal_year_end_max))
    if firms is not None:
        base = base.where(s.c.firm_id >= firms[0], s.c.firm_id < firms[1])
    unit = (s.c.firm_id, s.c.institution_id)
    if conn.dialect.name == "postgresql":  # DISTINCT ON: one cheap pass over the (firm, period) index order
        try:  # SQLAlchemy >= 2.1
            from sqlalchemy.dialects.postgresql import distinct_on
            on = base.ext(distinct_on(*unit, s.c.fiscal_year_end))
        except ImportError:  # 2.0
            on = base.distinct(*unit, s.c.fiscal_year_end)
        forced = on.order_by(*unit, s.c.fiscal_year_end, *newest_first).subquery()
    else:
        ranked = base.add_columns(func.row_number().over(partition_by=(*unit, s.c.fiscal_year_end),
                                                         order_by=newest_first).label("rn")).subquery()
        forced = select(*[c for c in ranked.c if c.name != "rn"]).where(ranked.c.rn == 1).subquery()
    window: dict[str, Any] = {"partition_by": (forced.c.firm_id, forced.c.institution_id),
                              "order_by": forced.c.fiscal_year_end}
    tail = select(*forced.c, func.lead(forced.c.id).over(**window).label("later"),
                  func.lag(forced.c.id, type_=forced.c.id.type).over(**window).label("prev_statement_id"),
                  *[func.lag(forced.c[c], type_=forced.c[c].type).over(**window).label(f"prev_{c}")
                    for c in GROWTH_COLUMNS]).subquery()
    stmt = (select(tail.c.id.label("statement_id"), *[c for c in tail.c if c.name not in ("id", "later")])
            .where(tail.c.later.is_(None))
            .order_by(tail.c.firm_id, tail.c.institution_id))
    if conn.dialect.name == "postgresql":
        # compiling this one big query costs more than it saves (1.3 s of 6 on a million firms)
        conn.execute(text("SET LOCAL jit = off"))
    last = read_frame(conn, stmt, date_as_object=False)
    from pipelines.fx import add_size_factor, resolve_size_currency

    return add_size_factor(conn, _with_previous_rows(last), resolve_size_currency(size_currency))


def _with_previous_rows(last: pd.DataFrame) -> pd.DataFrame:
    """One row per firm with ``prev_*`` columns -> the previous statement's row, then the latest."""
    has = last["prev_statement_id"].notna().to_numpy()
    at_last = np.arange(len(last)) + np.cumsum(has)  # each firm: [previous,] latest
    at_prev = at_last[has] - 1
    n = len(last) + int(has.sum())

    def spread(latest: np.ndarray, previous: np.ndarray | None, dtype: str) -> np.ndarray:
        out = np.full(n, np.nan, dtype=dtype) if dtype != "int64" else np.zeros(n, dtype=dtype)
        out[at_last] = latest
        if previous is not None:
            out[at_prev] = previous[has]
        return out

    def num(c: str) -> np.ndarray:
        return pd.to_numeric(last[c], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)

    def day(c: str) -> np.ndarray:
        return pd.to_datetime(last[c]).to_numpy(dtype="datetime64[ns]")

    firm_rows = np.repeat(np.arange(len(last)), 1 + has.astype(np.int64))
    out = {"statement_id": spread(last["statement_id"].to_numpy(dtype="int64"),
                                  last["prev_statement_id"].to_numpy(dtype="float64", na_value=0).astype("int64"),
                                  "int64"),
           "firm_id": last["firm_id"].to_numpy(dtype="int64")[firm_rows],
           "institution_id": last["institution_id"].to_numpy(dtype="int64")[firm_rows],
           "fiscal_year_end": spread(day("fiscal_year_end"), day("prev_fiscal_year_end"), "datetime64[ns]")}
    for c in ("months", *SCORING_AMOUNTS):
        out[c] = spread(num(c), num(f"prev_{c}") if c in GROWTH_COLUMNS else None, "float64")
    frame = pd.DataFrame(out)
    frame["industry"] = last["industry"].take(firm_rows).reset_index(drop=True)
    if "currency" in last:  # the previous row's own size features are not used
        frame["currency"] = last["currency"].take(firm_rows).reset_index(drop=True)
    frame["established_year"] = num("established_year")[firm_rows]
    return frame


def load_defaults(conn: Connection, snapshot: dt.datetime | None = None) -> pd.DataFrame:
    """Default events (``firm_id``, ``default_date`` datetime64) received at or before ``snapshot``."""
    stmt = (select(DefaultEvent.firm_id, DefaultEvent.default_date)
            .join(Submission, Submission.id == DefaultEvent.submission_id))
    if snapshot is not None:
        stmt = stmt.where(Submission.received_at <= snapshot)
    d = read_frame(conn, stmt)
    d["default_date"] = pd.to_datetime(d["default_date"])
    return d.sort_values(["firm_id", "default_date"], kind="stable").reset_index(drop=True)


def feature_frame(statements: pd.DataFrame) -> pd.DataFrame:
    """Features (:data:`models.ratios.FEATURE_NAMES`) for every row of ``statements``.

    Pass each firm's whole history: growth rates look up the previous statement. Rows
    keep their index.
    """
    return compute_features(statements)


def training_table(statements: pd.DataFrame, defaults: pd.DataFrame, cutoff: dt.date | str | pd.Timestamp,
                   lag_months: int = DEFAULT_LAG_MONTHS,
                   horizon_months: int = DEFAULT_HORIZON_MONTHS) -> pd.DataFrame:
    """Labelled modelling table at training cut-off ``cutoff`` (see the module docstring).

    ``statements``: one row per firm and fiscal period (already :func:`in_force`) with
    ``statement_id``, ``firm_id``, ``fiscal_year_end``, ``industry``,
    ``established_year`` and the amount columns. ``defaults``: ``firm_id``,
    ``default_date``. Returns ``statement_id``, ``firm_id``, ``fiscal_year_end``,
    ``available``, ``window_end``, ``label`` (0/1 int), then the features, then per optional
    model item (``pipelines.model_items``) a flag ``unreported:<item>`` (True where the statement
    left it out); ordered by
    ``fiscal_year_end`` then ``statement_id``.
    """
    cutoff = pd.Timestamp(cutoff)
    st = statements.copy()
    st["fiscal_year_end"] = pd.to_datetime(st["fiscal_year_end"]).astype("datetime64[ns]")
    known = availability(st["fiscal_year_end"], lag_months) <= cutoff
    st = st.loc[known].sort_values(["firm_id", "fiscal_year_end"], kind="stable").reset_index(drop=True)
    feats = feature_frame(st)
    d = defaults[["firm_id", "default_date"]].copy()
    d["default_date"] = pd.to_datetime(d["default_date"]).astype("datetime64[ns]")
    lab = label_statements(st[KEY_COLUMNS], d, cutoff, lag_months=lag_months, horizon_months=horizon_months)
    lab = lab.loc[(lab["window_end"] <= cutoff) & lab["label"].notna()]
    out = lab[[*KEY_COLUMNS, "available", "window_end"]].copy()
    out["label"] = lab["label"].astype("int64")
    out = out.join(feats.loc[out.index])
    for item in optional_model_items():  # which optional items each statement left out (no values)
        col = frame_column(item)
        out[FLAG_PREFIX + item] = st.loc[out.index, col].isna().to_numpy() if col in st.columns else True
    return out.sort_values(["fiscal_year_end", "statement_id"], kind="stable").reset_index(drop=True)


def _sorted_by_firm_and_date(st: pd.DataFrame) -> bool:
    """Whether rows are already ordered by ``firm_id`` then ``fiscal_year_end``."""
    firm = st["firm_id"].to_numpy()
    fye = st["fiscal_year_end"].to_numpy()
    if len(firm) < 2 or pd.isna(fye).any():
        return len(firm) < 2
    up, same = firm[1:] > firm[:-1], firm[1:] == firm[:-1]
    return bool(np.all(up | (same & (fye[1:] >= fye[:-1]))))


def latest_statements(statements: pd.DataFrame, as_of: dt.date | str | pd.Timestamp | None = None) -> pd.DataFrame:
    """Each firm's latest statement with fiscal year end on or before ``as_of``, with features.

    Features use the firm's whole history up to that statement. Returns the statement
    rows (all input columns; a raw column named like a feature, e.g. ``industry``, is
    renamed ``<name>_code``) joined with the feature columns, one row per firm.
    """
    st = statements.copy(deep=False)  # copy-on-write: no copy of a million rows
    st["fiscal_year_end"] = pd.to_datetime(st["fiscal_year_end"])
    if as_of is not None:
        st = st.loc[st["fiscal_year_end"] <= pd.Timestamp(as_of)]
    if not _sorted_by_firm_and_date(st):  # load_scoring_statements' rows come sorted
        st = st.sort_values(["firm_id", "fiscal_year_end"], kind="stable")
    st = st.reset_index(drop=True)
    feats = feature_frame(st)
    last = ~st["firm_id"].duplicated(keep="last")
    clash = {c: f"{c}_code" for c in FEATURE_NAMES if c in st.columns}  # e.g. industry: raw text kept as industry_code
    return st.loc[last].rename(columns=clash).join(feats.loc[last]).reset_index(drop=True)


def data_fingerprint(table: pd.DataFrame, extra_columns: tuple[str, ...] = ("sample",)) -> str:
    """sha256 of the exact training rows: statement ids, features, labels, in canonical order.

    Rows sorted by ``statement_id``; for each column in the order ``statement_id``,
    ``fiscal_year_end`` (days since 1970-01-01), ``label``, the ``extra_columns``
    present (as text), then :data:`FEATURE_NAMES`: the column name, then its values as
    little-endian int64 / float64 bytes (NaN as the canonical quiet NaN; ``industry`` as
    the ISIC section letter, missing as ``-``), then the ``unreported:<item>`` flags
    present (sorted by name; one byte 0/1 per row).
    """
    import hashlib

    import numpy as np

    frame = table.sort_values("statement_id", kind="stable")
    h = hashlib.sha256()

    def put(name: str, data: bytes) -> None:
        h.update(name.encode("utf-8") + b"\0" + len(data).to_bytes(8, "little") + data)

    put("statement_id", frame["statement_id"].to_numpy(dtype="<i8").tobytes())
    days = pd.to_datetime(frame["fiscal_year_end"]).to_numpy(dtype="datetime64[D]").astype("<i8")
    put("fiscal_year_end", days.tobytes())
    put("label", frame["label"].to_numpy(dtype="<i8").tobytes())
    for c in extra_columns:
        if c in frame.columns:
            put(c, "\n".join(frame[c].astype(str)).encode("utf-8"))
    for c in FEATURE_NAMES:
        col = frame[c]
        if isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object:
            put(c, "".join(v if isinstance(v, str) else "-" for v in col.astype(object).tolist()).encode("utf-8"))
        else:
            v = col.to_numpy(dtype="<f8", na_value=np.nan).copy()
            v[np.isnan(v)] = np.nan
            put(c, v.tobytes())
    for c in sorted(c for c in frame.columns if str(c).startswith(FLAG_PREFIX)):  # they set the item offsets
        put(c, frame[c].to_numpy(dtype="<i1").tobytes())
    return h.hexdigest()


__all__ = ["DEFAULT_HORIZON_MONTHS", "DEFAULT_LAG_MONTHS", "GROWTH_COLUMNS", "data_fingerprint", "feature_frame",
           "in_force", "latest_statements", "load_defaults", "load_scoring_statements", "load_statements",
           "training_table"]

