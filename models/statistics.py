"""Published statistics in the style of the CRD statistics service, with k-anonymity.

Pure pandas/numpy; no database. Input: one row per financial statement with

* a firm key (``firm_col``, default ``firm_id``),
* the group columns named in ``by`` (e.g. ``industry``, ``region``, ``size``, ``year``),
* a default label (``label_col``, default ``label``: 1.0 default within the horizon,
  0.0 no default, NaN not yet labelled; see ``models/labels.py``),
* one column per ratio (fractions, times, days ... as in ``models/specs/features.toml``).

Output (:func:`cell_statistics`): a tidy frame, one row per *cell* x *population* x
*ratio*. A cell is one combination of values of the ``by`` columns; with
``margins=True`` every subtotal is published too, i.e. the cells of every subset of
``by`` with the other dimensions set to :data:`ALL` (``"all"``), down to the grand
total. The population is ``all`` (every statement of the cell), ``default`` (labelled
1) or ``non_default`` (labelled 0); ``all`` is the margin of the population split.
Columns:

* the ``by`` columns (values as strings; missing values as ``"unknown"``),
  ``population``, ``ratio``;
* ``firms`` (distinct firms), ``statements``, ``labelled`` (statements with a label),
  ``defaults`` (statements labelled 1), ``default_rate`` = defaults / labelled (a
  fraction: the one-year default rate of statements, NaN when nothing is labelled);
* ``count`` (statements with a value of the ratio), ``mean``, ``median``, ``std``
  (sample standard deviation, ddof = 1, NaN below 2 values), ``p30``, ``p70``: the
  30th and 70th percentiles with numpy's default *linear* interpolation
  (``numpy.percentile(x, 30)``, method "linear", the same as pandas' default
  ``quantile``). Missing ratio values are ignored;
* ``suppressed``: ``None`` (published), ``"primary"`` or ``"complementary"``; every
  statistic of a suppressed row is blank (NaN), only its key is shown.

Suppression algorithm (exactly what :func:`suppress` does)
----------------------------------------------------------
The published rows form a lattice. The dimensions are the ``by`` columns plus
``population``; a row is a *margin* in dimension ``d`` when its value of ``d`` is
``all``. For a row ``r`` that is not a margin in ``d``, its *group in d* is the set
of published rows equal to ``r`` in every dimension except ``d`` and not a margin in
``d``; the group's *total* is ``r`` with ``d`` set to ``all``.

1. Primary: every row with fewer than ``k`` distinct firms is suppressed
   (``primary``). Rows with no statement are not published at all.
2. Complementary, repeated until nothing changes: for every dimension ``d`` and every
   group in ``d`` whose total is published: if exactly one member of the group is
   suppressed, it could be recovered as total minus the other members, so suppress the
   *smallest* other published member (fewest firms, then fewest statements, then the
   first in sort order of its key) as ``complementary``. When the group has no other
   published member, suppress the total instead. Each new suppression can expose
   another group (in another dimension), hence the repetition; the loop ends because
   suppressions are only ever added.

Limits (what this does *not* guarantee):

* It prevents exact recovery of one suppressed row by one subtraction along one
  dimension. It does not solve the linear programme an attacker could set up over
  the whole table, so a suppressed value may still be bounded to an interval
  (classical "interval disclosure"); two suppressed cells in a group can be recovered
  together (their sum) though not one by one.
* Firm counts are not additive (a firm has statements in several years; ``all``
  includes unlabelled statements that neither ``default`` nor ``non_default``
  contains); the additive quantities are statements, defaults and sums of ratios
  (mean x count). The rule treats every total as if it were additive, which is
  conservative for non-additive totals.
* Medians and percentiles of published margins are not protected against bounding a
  suppressed cell's distribution.
* Only one query is protected: comparing tables for different ``by`` choices,
  ratios, dates (``as_of``) or ``k`` (differencing attacks) is not.
* A group value that is literally ``"all"`` would be read as a margin; the values of
  creditdb's dimensions (ISIC letters, region codes, size classes, years) never are.
* The rule counts firms only; it has no dominance (p %) rule. A published ``default``
  row with ``k`` firms still reveals that each of those firms defaulted.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

#: a cell of a statistics table: its values of the grouping dimensions (ALL on a margin)
Cell = tuple[Any, ...]

#: Value of a dimension in a margin (subtotal) row.
ALL = "all"
UNKNOWN = "unknown"
POPULATION = "population"
POPULATIONS = (ALL, "default", "non_default")
COUNT_COLUMNS = ("firms", "statements", "labelled", "defaults", "default_rate")
STAT_COLUMNS = ("count", "mean", "median", "std", "p30", "p70")
#: Integer columns (pandas nullable ``Int64``: blank when suppressed).
INT_COLUMNS = ("firms", "statements", "labelled", "defaults", "count")
PRIMARY = "primary"
COMPLEMENTARY = "complementary"


def describe(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """count, mean, median, std (ddof 1), p30, p70 of ``values``, NaNs ignored.

    Percentiles use numpy's default linear interpolation.
    """
    x = np.asarray(values, dtype="float64")
    x = x[~np.isnan(x)]
    if x.size == 0:
        return {"count": 0, "mean": np.nan, "median": np.nan, "std": np.nan, "p30": np.nan, "p70": np.nan}
    return {"count": int(x.size), "mean": float(x.mean()), "median": float(np.median(x)),
            "std": float(x.std(ddof=1)) if x.size > 1 else np.nan,
            "p30": float(np.percentile(x, 30)), "p70": float(np.percentile(x, 70))}


def _keys(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for col in by:
        v = frame[col]
        s = v.astype("object").where(v.notna(), UNKNOWN)
        out[col] = [str(int(x)) if isinstance(x, (float, np.floating)) and float(x).is_integer() else str(x)
                    for x in s]
    return out


def _population_rows(frame: pd.DataFrame, split: bool) -> list[tuple[str, pd.DataFrame]]:
    rows = [(ALL, frame)]
    if split:
        rows.append(("default", frame[frame["_label"] == 1.0]))
        rows.append(("non_default", frame[frame["_label"] == 0.0]))
    return rows


def _aggregate(sub: pd.DataFrame, group: list[str], by: Sequence[str],
               ratios: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts (one row per cell) and ratio statistics (one row per cell x ratio) of ``sub``."""
    keyed = sub.assign(_one=1)
    gcols = group if group else ["_one"]
    g = keyed.groupby(gcols, sort=True, observed=True, dropna=False)
    counts = pd.DataFrame({
        "firms": g["_firm"].nunique(),
        "statements": g.size(),
        "labelled": g["_label"].count(),
        "defaults": g["_default"].sum(),
    })
    counts["default_rate"] = counts["defaults"] / counts["labelled"].where(counts["labelled"] > 0)
    gr = g[list(ratios)]
    parts = {"count": gr.count(), "mean": gr.mean(), "median": gr.median(), "std": gr.std(ddof=1),
             "p30": gr.quantile(0.30, interpolation="linear"), "p70": gr.quantile(0.70, interpolation="linear")}
    stats = pd.concat({name: p for name, p in parts.items()}, axis=1)
    stats = stats.stack(level=1, future_stack=True)
    stats.index = stats.index.set_names([*stats.index.names[:-1], "ratio"])
    counts, stats = counts.reset_index(), stats.reset_index()
    for col in by:
        if col not in group:
            counts[col] = ALL
            stats[col] = ALL
    return counts.drop(columns=["_one"], errors="ignore"), stats.drop(columns=["_one"], errors="ignore")


def suppress(cells: pd.DataFrame, dims: Sequence[str], k: int, primary: pd.Series | None = None) -> pd.Series:
    """Suppression status of each row of ``cells`` (see the module docstring).

    ``cells`` has one row per published cell with the columns ``dims`` (margin value
    :data:`ALL`), ``firms`` and ``statements``. Returns a Series on ``cells.index``
    with ``None``, ``"primary"`` or ``"complementary"``. ``primary`` (booleans on
    ``cells.index``), when given, says which rows are primary instead of ``firms < k``
    (``models.disclosure`` uses it for its rules against a single member).
    """
    dims = list(dims)
    status: dict[Cell, str | None] = {}
    size: dict[Cell, tuple[int, int, Cell]] = {}
    flags = (cells["firms"] < k) if primary is None else primary.reindex(cells.index).astype(bool)
    for key, firms, statements, flag in zip(cells[dims].itertuples(index=False, name=None), cells["firms"],
                                            cells["statements"], flags, strict=False):
        status[key] = PRIMARY if flag else None
        size[key] = (int(firms), int(statements), key)
    groups: list[tuple[Cell, list[Cell]]] = []
    for i in range(len(dims)):
        by_total: dict[Cell, list[Cell]] = {}
        for key in status:
            if key[i] != ALL:
                total = key[:i] + (ALL,) + key[i + 1:]
                by_total.setdefault(total, []).append(key)
        groups.extend((total, sorted(m, key=lambda c: size[c])) for total, m in sorted(by_total.items()))
    changed = True
    while changed:
        changed = False
        for total, members in groups:
            if status.get(total, PRIMARY) is not None:  # total suppressed (or not published)
                continue
            hidden = [m for m in members if status[m] is not None]
            if len(hidden) != 1:
                continue
            others = [m for m in members if status[m] is None]
            status[others[0] if others else total] = COMPLEMENTARY
            changed = True
    return pd.Series([status[key] for key in cells[dims].itertuples(index=False, name=None)],
                     index=cells.index, dtype="object")


def tidy_order(out: pd.DataFrame, by: Sequence[str], ratios: Sequence[str], columns: list[str]) -> pd.DataFrame:
    """The published table's final form: counts as integers, rows ordered by the ``by``
    values (subtotal ``all`` last), ratio (in ``ratios`` order) and population, ``columns`` only."""
    out = out.copy()
    for col in INT_COLUMNS:
        out[col] = out[col].round().astype("Int64")
    rank: dict[str, np.ndarray] = {}
    for c in by:
        values = sorted(set(out[c].unique()) - {ALL}) + [ALL]
        rank[c] = pd.Categorical(out[c], categories=values, ordered=True).codes
    rank["ratio"] = pd.Categorical(out["ratio"], categories=list(ratios), ordered=True).codes
    rank[POPULATION] = pd.Categorical(out[POPULATION], categories=list(POPULATIONS), ordered=True).codes
    order = np.lexsort([rank[c] for c in reversed([*by, "ratio", POPULATION])])
    return out.iloc[order][columns].reset_index(drop=True)


def cell_statistics(frame: pd.DataFrame, by: Sequence[str], ratios: Sequence[str], *, k: int = 5,
                    firm_col: str = "firm_id", label_col: str = "label", split_by_default: bool = True,
                    margins: bool = True) -> pd.DataFrame:
    """Tidy statistics table with k-anonymity suppression (see the module docstring).

    ``k`` is the minimum number of distinct firms of a published row. With
    ``margins`` every subtotal over every subset of ``by`` is published (and
    protected); without, only the full cross-classification of ``by`` (the
    population ``all`` is still the margin of the default / non-default split when
    ``split_by_default``). Raises ``ValueError`` on missing columns or ``k < 1``.
    """
    by, ratios = list(by), list(ratios)
    if k < 1:
        raise ValueError("k must be at least 1")
    missing = [c for c in [firm_col, label_col, *by, *ratios] if c not in frame.columns]
    if missing:
        raise ValueError(f"statistics input lacks column(s): {', '.join(missing)}")
    if POPULATION in by or "ratio" in by:
        raise ValueError("'population' and 'ratio' are reserved names")
    base = _keys(frame, by)
    base["_firm"] = frame[firm_col].to_numpy()
    base["_label"] = pd.to_numeric(frame[label_col], errors="coerce").astype("float64").to_numpy()
    base["_default"] = (base["_label"] == 1.0).astype("int64")
    for r in ratios:
        base[r] = pd.to_numeric(frame[r], errors="coerce").astype("float64").to_numpy()
    subsets = [list(c) for n in range(len(by), -1, -1) for c in combinations(by, n)] if margins else [by]
    count_parts, stat_parts = [], []
    for population, sub in _population_rows(base, split_by_default):
        if sub.empty:
            continue
        for group in subsets:
            counts, stats = _aggregate(sub, group, by, ratios)
            count_parts.append(counts.assign(population=population))
            stat_parts.append(stats.assign(population=population))
    dims = [*by, POPULATION]
    columns = [*dims, "ratio", *COUNT_COLUMNS, *STAT_COLUMNS, "suppressed"]
    if not count_parts:
        return pd.DataFrame(columns=columns)
    cells = pd.concat(count_parts, ignore_index=True)
    cells["suppressed"] = suppress(cells, dims, k)
    stats = pd.concat(stat_parts, ignore_index=True)
    out = stats.merge(cells, on=dims, how="left", validate="many_to_one")
    hidden = out["suppressed"].notna()
    for col in [*COUNT_COLUMNS, *STAT_COLUMNS]:
        out[col] = out[col].astype("float64").mask(hidden)
    return tidy_order(out, by, ratios, columns)
