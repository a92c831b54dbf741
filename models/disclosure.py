"""Disclosure control of pool-wide published statistics, against any single member.

Pure pandas/numpy; no database. The published table is the one of
:func:`models.statistics.cell_statistics` (cells x populations x ratios, subtotals
included); what differs is which cells are shown. The input has one row per statement
(after the pool's de-duplication: one statement a firm and period) with a column
``known_by``: the institutions that know the firm (have linked one of their own
borrowers to it), as an iterable of institution ids. A member knows at least every firm
it submitted, and can compute its own statistics over them.

Rules (parameters: :class:`DisclosurePolicy`, read from ``models/data/disclosure_policy.toml``):

1. **Threshold against any one institution** (``primary``): a cell is shown only if at
   least ``k`` distinct firms remain after removing every firm one institution knows,
   for every institution in the cell; i.e. ``firms - max_I known_I >= k``. A firm known
   to two banks is removed with either (a member subtracting its own statistics is left
   with ``k`` firms it does not know). This implies ``firms >= k``.
2. **Dominance, per ratio** (``dominance``): the contribution of a firm to a ratio of a
   cell is the sum of the absolute values of the ratio over its statements there.

   * the *p% rule*: sensitive when an attacker could estimate the largest contribution
     it does not know to within ``p_percent``: ``total - known - x1 < p/100 * x1``,
     where the attacker is the firm with the second-largest contribution (``known`` =
     that contribution, ``x1`` the largest) or any one institution (``known`` = the
     contributions of the firms it knows, ``x1`` the largest of the others);
   * the *(n,k) rule*: sensitive when the ``n`` largest contributions exceed
     ``k_percent`` of the total;
   * and the threshold rule again on the firms with a value of the ratio (a ratio may be
     missing for some firms of a cell).

   A dominated ratio's statistics (count, mean, median, std, percentiles) are blanked;
   the cell's counts stay.
3. **Complementary** (``complementary``): as in :func:`models.statistics.suppress`,
   first for the cells (counts), then for each ratio with the cells' and the ratio's own
   suppressions as its primary ones, so that no hidden cell or ratio follows from a
   total by one subtraction.

Limits: the rules protect one publication against one member's own data. Two
publications of different dimensions, dates or populations can be differenced against
each other (the operator publishes a fixed set of tables, and ``stats published`` shows
when each was made); medians and percentiles of shown totals are not protected against
bounding a hidden cell (see ``models/statistics.py``). A published ``default`` row with
``k`` unknown firms still tells that each firm of it defaulted, to members that know
which firms are there.
"""

from __future__ import annotations

import tomllib
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from itertools import combinations
from pathlib import Path
from typing import Any

import pandas as pd

from models.statistics import (
    ALL,
    COMPLEMENTARY,
    COUNT_COLUMNS,
    POPULATION,
    PRIMARY,
    STAT_COLUMNS,
    _aggregate,
    _keys,
    _population_rows,
    suppress,
    tidy_order,
)

DOMINANCE = "dominance"


@dataclass(frozen=True)
class DisclosurePolicy:
    """Parameters of the rules (see the module docstring). Percentages are in percent."""

    k: int = 5
    p_percent: float | None = 10.0
    n: int | None = 2
    k_percent: float | None = 85.0

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError("disclosure policy: k must be at least 1")
        if self.p_percent is not None and self.p_percent < 0:
            raise ValueError("disclosure policy: p_percent must not be negative")
        if (self.n is None) != (self.k_percent is None):
            raise ValueError("disclosure policy: the (n,k) rule needs both n and k_percent")
        if self.n is not None and self.k_percent is not None and (self.n < 1 or not 0 < self.k_percent <= 100):
            raise ValueError("disclosure policy: n must be at least 1 and k_percent in (0, 100]")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_policy(path: Path | str | None = None) -> DisclosurePolicy:
    """The policy in ``path`` (TOML), or the shipped ``models/data/disclosure_policy.toml``."""
    if path is None:
        text = resources.files("models").joinpath("data/disclosure_policy.toml").read_text(encoding="utf-8")
        where = "models/data/disclosure_policy.toml"
    else:
        text, where = Path(path).read_text(encoding="utf-8"), str(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{where}: not valid TOML ({exc})") from None
    dom = doc.get("dominance", {})
    unknown = (set(doc) - {"k", "dominance"}) | (set(dom) - {"p_percent", "n", "k_percent"})
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
    try:
        return DisclosurePolicy(k=int(doc.get("k", 5)), p_percent=dom.get("p_percent"), n=dom.get("n"),
                                k_percent=dom.get("k_percent"))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _known_matrix(known_by: pd.Series) -> pd.DataFrame:
    """Boolean frame: one column per institution, True where the row's firm is known to it."""
    sets = [frozenset(v) if isinstance(v, Iterable) and not isinstance(v, str) else frozenset([v])
            for v in known_by]
    insts = sorted({i for s in sets for i in s})
    return pd.DataFrame({i: [i in s for s in sets] for i in insts}, index=known_by.index)


def _cell_firm_parts(sub: pd.DataFrame, group: list[str], by: Sequence[str], ratios: Sequence[str],
                     known: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, firm): |ratio| sums, the count of ratio values, and the institutions knowing it."""
    gcols = group if group else []
    vals = sub[list(ratios)].abs()
    parts = pd.concat([sub[gcols + ["_firm"]], vals.add_prefix("v:"),
                       sub[list(ratios)].notna().astype("int64").add_prefix("n:"),
                       known.loc[sub.index].astype("int64").add_prefix("k:")], axis=1)
    agg = {c: ("max" if c.startswith("k:") else "sum") for c in parts.columns if c not in gcols + ["_firm"]}
    out = parts.groupby(gcols + ["_firm"], sort=False, dropna=False).agg(agg).reset_index()
    for col in by:
        if col not in group:
            out[col] = ALL
    return out


def _protect(cf: pd.DataFrame, dims: list[str], ratios: Sequence[str], insts: list[Hashable], policy: DisclosurePolicy
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per cell: firms remaining after the worst institution; per (cell, ratio): dominated?"""
    g = cf.groupby(dims, sort=False, dropna=False)
    firms = g.size()
    known_firms = pd.concat([g[f"k:{i}"].sum() for i in insts], axis=1).max(axis=1) if insts else firms * 0
    cells = pd.DataFrame({"firms_all": firms, "remaining": firms - known_firms}).reset_index()
    sensitive = []
    for r in ratios:
        v = cf[f"v:{r}"].where(cf[f"n:{r}"] > 0)
        has = v.notna()
        c = cf.loc[has, dims].assign(_v=v[has].to_numpy())
        kn = cf.loc[has, [f"k:{i}" for i in insts]].astype(bool)
        gr = c.groupby(dims, sort=False, dropna=False)["_v"]
        total = gr.sum()
        ranked = c.sort_values("_v", ascending=False, kind="mergesort")
        top = ranked.groupby(dims, sort=False, dropna=False)["_v"]
        x1 = _by_key(ranked, top.nth(0), dims)
        x2 = _by_key(ranked, top.nth(1), dims).reindex(total.index, fill_value=0.0)
        n_values = gr.size()
        bad = pd.Series(False, index=total.index)
        if policy.p_percent is not None:
            p = policy.p_percent / 100.0
            x1 = x1.reindex(total.index, fill_value=0.0)
            bad |= (total - x1 - x2 < p * x1) & (x1 > 0)
            for i in insts:
                unknown = c[~kn[f"k:{i}"].to_numpy()]
                known_sum = c[kn[f"k:{i}"].to_numpy()].groupby(dims, sort=False, dropna=False)["_v"].sum()
                ux1 = unknown.groupby(dims, sort=False, dropna=False)["_v"].max()
                known_sum = known_sum.reindex(total.index, fill_value=0.0)
                ux1 = ux1.reindex(total.index, fill_value=0.0)
                bad |= (total - known_sum - ux1 < p * ux1) & (ux1 > 0)
        if policy.n is not None and policy.k_percent is not None:  # both or neither (__post_init__)
            topn = ranked.groupby(dims, sort=False, dropna=False).head(policy.n).groupby(
                dims, sort=False, dropna=False)["_v"].sum().reindex(total.index, fill_value=0.0)
            bad |= (topn > policy.k_percent / 100.0 * total) & (total > 0)
        # the threshold rule on the firms that have a value of the ratio
        if insts:
            known_n = pd.concat([kn[f"k:{i}"].groupby([c[d] for d in dims], sort=False, dropna=False).sum()
                                 for i in insts], axis=1).max(axis=1).reindex(total.index, fill_value=0)
        else:
            known_n = n_values * 0
        bad |= (n_values - known_n) < policy.k
        sensitive.append(bad.rename("sensitive").reset_index().assign(ratio=r))
    ratio_cells = pd.concat(sensitive, ignore_index=True) if sensitive else pd.DataFrame(
        columns=[*dims, "sensitive", "ratio"])
    return cells, ratio_cells


def _by_key(ranked: pd.DataFrame, picked: pd.Series, dims: list[str]) -> pd.Series:
    """``picked`` (rows of ``ranked``) as a Series indexed like a groupby over ``dims``."""
    keys = ranked.loc[picked.index, dims]
    idx = pd.MultiIndex.from_frame(keys) if len(dims) > 1 else pd.Index(keys[dims[0]], name=dims[0])
    return pd.Series(picked.to_numpy(dtype="float64"), index=idx)


def protected_statistics(frame: pd.DataFrame, by: Sequence[str], ratios: Sequence[str], policy: DisclosurePolicy,
                         *, firm_col: str = "firm_id", label_col: str = "label", known_col: str = "known_by",
                         split_by_default: bool = True, margins: bool = True) -> pd.DataFrame:
    """The statistics table of :func:`models.statistics.cell_statistics` under the rules of
    this module: ``suppressed`` is ``None``, ``"primary"``, ``"complementary"`` (whole
    cell blank) or ``"dominance"`` / ``"complementary"`` on a ratio row whose counts are
    shown (``firms`` not blank) and whose ratio statistics are blank.
    """
    by, ratios = list(by), list(ratios)
    missing = [c for c in [firm_col, label_col, known_col, *by, *ratios] if c not in frame.columns]
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
    known = _known_matrix(frame[known_col].set_axis(base.index))
    insts = list(known.columns)
    subsets = [list(c) for n in range(len(by), -1, -1) for c in combinations(by, n)] if margins else [by]
    count_parts, stat_parts, firm_parts = [], [], []
    for population, sub in _population_rows(base, split_by_default):
        if sub.empty:
            continue
        for group in subsets:
            counts, stats = _aggregate(sub, group, by, ratios)
            count_parts.append(counts.assign(population=population))
            stat_parts.append(stats.assign(population=population))
            firm_parts.append(_cell_firm_parts(sub, group, by, ratios, known).assign(population=population))
    dims = [*by, POPULATION]
    columns = [*dims, "ratio", *COUNT_COLUMNS, *STAT_COLUMNS, "suppressed"]
    if not count_parts:
        return pd.DataFrame(columns=columns)
    cells = pd.concat(count_parts, ignore_index=True)
    cf = pd.concat(firm_parts, ignore_index=True)
    remaining, ratio_cells = _protect(cf, dims, ratios, insts, policy)
    cells = cells.merge(remaining, on=dims, how="left", validate="one_to_one")
    cells["suppressed"] = suppress(cells, dims, policy.k, primary=cells["remaining"] < policy.k)
    stats = pd.concat(stat_parts, ignore_index=True)
    out = stats.merge(cells.drop(columns=["remaining", "firms_all"]), on=dims, how="left", validate="many_to_one")
    out = out.merge(ratio_cells, on=[*dims, "ratio"], how="left", validate="one_to_one")
    out["sensitive"] = out["sensitive"].astype("boolean").fillna(True).astype(bool)  # no value at all: nothing to show
    status = out["suppressed"].astype("object")
    for r in ratios:
        rows = out.index[out["ratio"] == r]
        part = out.loc[rows]
        hidden = part["suppressed"].notna() | part["sensitive"]
        again = suppress(part, dims, policy.k, primary=hidden)
        st = status.loc[rows].copy()
        st[st.isna() & part["sensitive"]] = DOMINANCE
        st[st.isna() & again.notna()] = COMPLEMENTARY
        status.loc[rows] = st
    cell_hidden = out["suppressed"].notna()
    ratio_hidden = status.notna()
    out["suppressed"] = status
    for col in COUNT_COLUMNS:
        out[col] = out[col].astype("float64").mask(cell_hidden)
    for col in STAT_COLUMNS:
        out[col] = out[col].astype("float64").mask(ratio_hidden)
    return tidy_order(out, by, ratios, columns)


__all__ = ["DOMINANCE", "PRIMARY", "DisclosurePolicy", "load_policy", "protected_statistics"]
