"""Walk-forward calibration backtest: refit the rating model per year, score the next year.

For each out-of-time year ``Y`` from ``from_year`` to ``to_year``:

* the model *in force at the start of Y* is fitted by the training pipeline
  (:func:`pipelines.training.fit`, same spec and seed) at cut-off ``Y-01-01``: only
  statements whose whole 12-month default window ended by then;
* it scores the statements that become available during ``Y`` (fiscal year end +
  reporting lag in ``[Y-01-01, Y+1-01-01)``), whose default windows run over the year;
* their realised labels come from the labelled table at ``as_of`` (default: today),
  so a year is testable only when all its windows have ended by ``as_of``.

The per-year and pooled tables are computed by :func:`models.backtest.backtest`.
The labelled table at a cut-off ``C`` is the labelled table at ``as_of`` restricted to
statements whose window ended by ``C`` (the same rows and features
:func:`pipelines.features.training_table` builds at ``C``), so it is built once.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import Any

import pandas as pd

from models.backtest import backtest
from models.rating import RatingSpec, load_spec
from pipelines.features import DEFAULT_HORIZON_MONTHS, DEFAULT_LAG_MONTHS, training_table
from pipelines.training import Design, TrainingError, fit

__all__ = ["last_complete_year", "parse_years", "walk_forward", "walk_forward_db"]


def last_complete_year(as_of: dt.date, horizon_months: int = DEFAULT_HORIZON_MONTHS) -> int:
    """Latest year Y whose statements' default windows (available during Y) have all ended by ``as_of``."""
    y = as_of.year
    while (pd.Timestamp(y + 1, 1, 1) + pd.DateOffset(months=horizon_months)) > pd.Timestamp(as_of):
        y -= 1
    return y


def parse_years(text: str) -> tuple[int, int | None]:
    """``"2019"`` -> (2019, None); ``"2019:2022"`` -> (2019, 2022). Raises ValueError."""
    first, _, last = text.partition(":")
    try:
        a = int(first)
        b = int(last) if last else None
    except ValueError:
        raise ValueError(f"{text!r}: give a year or FROM:TO, e.g. 2019 or 2019:2022") from None
    if b is not None and b < a:
        raise ValueError(f"{text!r}: the last year {b} is before the first year {a}")
    return a, b


def walk_forward(table: pd.DataFrame, from_year: int, to_year: int | None = None,
                 spec: RatingSpec | None = None, seed: int | None = None, as_of: dt.date | None = None,
                 lag_months: int = DEFAULT_LAG_MONTHS, horizon_months: int = DEFAULT_HORIZON_MONTHS,
                 oot_years: int = 1, progress: bool | None = None,
                 on_year: Callable[[int], None] | None = None, keep_scores: bool = False) -> dict[str, Any]:
    """Walk-forward backtest on a labelled modelling table (``training_table`` at ``as_of``).

    ``to_year`` defaults to the last complete year (:func:`last_complete_year`), or the
    last year in which statements become available if that is earlier.
    ``progress``: show a tqdm bar over the refits on standard error (default: when it is
    a terminal). Returns :func:`models.backtest.backtest`'s result plus ``models`` (one
    entry per year: cut-off, version, training statements and defaults, training
    out-of-time AUC) and ``design``. Raises :class:`TrainingError` when a year has no
    statements or a refit fails (the message names the year).
    """
    from tqdm import tqdm

    spec = spec or load_spec()
    as_of = as_of or pd.to_datetime(table["window_end"]).max().date()
    last = last_complete_year(as_of, horizon_months)
    available = pd.to_datetime(table["available"])
    if to_year is not None and to_year < from_year:
        raise TrainingError(f"the last year {to_year} is before the first year {from_year}")
    to_year = min(last, int(available.max().year)) if to_year is None else to_year
    if to_year < from_year:
        raise TrainingError(f"no complete out-of-time year from {from_year}: the last year whose default windows "
                            f"have all ended by {as_of} is {last}")
    if to_year > last:
        raise TrainingError(f"year {to_year} is not complete: default windows of statements available during it "
                            f"end after {as_of}; the last complete year is {last}")
    window_end = pd.to_datetime(table["window_end"])
    frames: dict[int, pd.DataFrame] = {}
    models: list[dict[str, Any]] = []
    years = range(from_year, to_year + 1)
    show = sys.stderr.isatty() if progress is None else progress
    for y in tqdm(years, desc="walk-forward refits", unit="year", file=sys.stderr, disable=not show):
        start = pd.Timestamp(y, 1, 1)
        scored = table.loc[(available >= start) & (available < pd.Timestamp(y + 1, 1, 1))]
        if scored.empty:
            raise TrainingError(f"year {y}: no statement becomes available during the year; nothing to score")
        train = table.loc[window_end <= start].drop(columns=["sample"], errors="ignore").reset_index(drop=True)
        design = Design(cutoff=start.date(), lag_months=lag_months, horizon_months=horizon_months,
                        oot_years=oot_years)
        try:
            tm = fit(train, spec, design, seed)
        except TrainingError as exc:
            raise TrainingError(f"year {y} (model in force at {start.date()}): {exc}") from None
        pd_ = tm.pd(scored)  # as scoring: unreported-item offsets included
        frames[y] = pd.DataFrame({"statement_id": scored["statement_id"].to_numpy(), "pd": pd_,
                                  "label": scored["label"].to_numpy()})
        models.append({"year": y, "cutoff": start.date().isoformat(), "version": tm.version, "seed": tm.seed,
                       "training_statements": len(train), "training_defaults": int(train["label"].sum()),
                       "long_run_default_rate": tm.metrics.get("long_run_default_rate"),
                       "auc_training_oot": tm.metrics["auc"]["model"].get("oot")})
        if on_year is not None:
            on_year(y)
    out = backtest(frames)
    out["models"] = models
    if keep_scores:
        out["scores"] = frames
    out["design"] = {"from": from_year, "to": to_year, "as_of": as_of.isoformat(), "spec": spec.name,
                     "spec_sha256": spec.sha256, "seed": models[0]["seed"] if models else seed,
                     "lag_months": lag_months, "horizon_months": horizon_months}
    return out


def walk_forward_db(engine, from_year: int, to_year: int | None = None, spec: RatingSpec | None = None,
                    seed: int | None = None, as_of: dt.date | None = None, snapshot: dt.datetime | None = None,
                    lag_months: int = DEFAULT_LAG_MONTHS, horizon_months: int = DEFAULT_HORIZON_MONTHS,
                    oot_years: int = 1, progress: bool | None = None) -> dict[str, Any]:
    """:func:`walk_forward` on the stored data (as of ``snapshot`` if given), labels as of ``as_of`` (today)."""
    from pipelines.features import load_defaults, load_statements

    as_of = as_of or dt.date.today()
    with engine.connect() as conn:
        statements = load_statements(conn, snapshot)
        defaults = load_defaults(conn, snapshot)
    if statements.empty:
        raise TrainingError("no statements are stored: nothing to backtest")
    table = training_table(statements, defaults, as_of, lag_months, horizon_months)
    if table.empty:
        raise TrainingError(f"no statement has a complete default window by {as_of}: nothing to backtest")
    return walk_forward(table, from_year, to_year, spec, seed, as_of, lag_months, horizon_months, oot_years,
                        progress)
