"""The ASEAN SME database view: the seed study's Table 1 for the database's own data.

Per cell of the ``by`` dimensions (e.g. country x size class) and every margin:

* ``firms``, ``statements``, ``default_rate`` and the median of key ratios over every
  statement in force (each firm-year in its own class). A cell is published only when it
  keeps at least ``k`` firms after removing any one institution's contribution (the
  insider rule: a member knows its own borrowers; with an ``institution_id`` column, else
  plain k-anonymity), then complementary suppression exactly as
  :func:`models.statistics.suppress` so that no hidden cell follows from a total;
* ``firms_latest``, ``employment`` and ``sales`` (in the reporting currency) over each
  firm's latest statement, so a firm counts once; sums are published only when the
  cell is published and passes the (n, k) dominance rule: the ``n`` largest firms hold
  at most ``k`` of the cell's total (default n = 2, k = 85 %), else ``suppressed_sums``
  is ``"dominance"``. Ratios are currency-free; amounts must already be converted.

Firm-years without a class (``size_class`` unknown) are counted per country and reason
(:func:`unknown_reasons`; the reasons are the classifier's, ``models.sme_definitions``)
under the same threshold rule, with complementary suppression against the table's
unknown-class cell, which is their total.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from models.statistics import ALL, COMPLEMENTARY, PRIMARY, cell_statistics, suppress

KEY_RATIOS = ("equity_ratio", "roa", "current_ratio", "ibd_to_sales")
SUM_COLUMNS = ("employment", "sales")


def _dominated(values: np.ndarray, n: int, share: float) -> bool:
    v = np.sort(np.abs(values[~np.isnan(values)]))[::-1]
    total = v.sum()
    return bool(total > 0 and v[:n].sum() > share * total)


def _insider_firms(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per cell (margins included): distinct firms left after removing the institution
    whose removal leaves fewest (plain distinct firms without ``institution_id``)."""
    keys = frame[by].astype("object").where(frame[by].notna(), "unknown").astype(str)
    inst = frame["institution_id"] if "institution_id" in frame else pd.Series(0, index=frame.index)
    base = keys.assign(_firm=frame["firm_id"].to_numpy(), _inst=inst.to_numpy())
    rows = []
    for size in range(len(by), -1, -1):
        for group in combinations(by, size):
            g = list(group)
            parts = base.groupby(g) if g else [((), base)]
            for key, sub in parts:
                key = key if isinstance(key, tuple) else (key,)
                firms = sub["_firm"].nunique()
                if "institution_id" in frame:
                    # a firm stays when some other institution also submitted it
                    per_firm = sub.groupby("_firm")["_inst"].agg(lambda s: frozenset(s))
                    only = per_firm[per_firm.map(len) == 1].map(lambda s: next(iter(s)))
                    worst = int(only.value_counts().max()) if len(only) else 0
                    left = firms - worst
                else:
                    left = firms
                row: dict[str, Any] = dict.fromkeys(by, ALL)
                row.update(dict(zip(g, key, strict=True)))
                row["firms_insider"] = left
                rows.append(row)
    return pd.DataFrame(rows, columns=[*by, "firms_insider"])


def sme_table(frame: pd.DataFrame, by: Sequence[str], *, k: int = 5, ratios: Sequence[str] = KEY_RATIOS,
              dominance: tuple[int, float] = (2, 0.85)) -> pd.DataFrame:
    """One row per cell (margins ``"all"``); see the module docstring.

    ``frame``: one row per statement with ``firm_id``, ``fiscal_year_end``, ``label``,
    the ``by`` columns, ``employees``, ``sales_rc`` (reporting currency) and ``ratios``.
    """
    by = list(by)
    stats = cell_statistics(frame, by, list(ratios), k=1, margins=True, split_by_default=False)
    allpop = stats[stats.population == ALL]
    cells = allpop.drop_duplicates(by)[[*by, "firms", "statements", "defaults", "default_rate"]]
    cells = cells.merge(_insider_firms(frame, by), on=by, how="left")
    cells["suppressed"] = suppress(cells.assign(firms=cells["firms_insider"]), by, k)
    hidden = cells["suppressed"].notna()
    for col in ("firms", "statements", "defaults"):
        cells[col] = cells[col].astype("Float64").mask(hidden).round().astype("Int64")
    cells["default_rate"] = cells["default_rate"].astype(float).mask(hidden)
    cells = cells.drop(columns="firms_insider")
    med = allpop.pivot_table(index=by, columns="ratio", values="median", aggfunc="first", dropna=False)
    med = med.reindex(columns=list(ratios)).add_prefix("median_").reset_index()
    out = cells.merge(med, on=by, how="left")
    for c in [c for c in out.columns if c.startswith("median_")]:
        out[c] = out[c].astype(float).mask(out["suppressed"].notna())
    latest = (frame.sort_values(["firm_id", "fiscal_year_end"], kind="stable")
              .drop_duplicates("firm_id", keep="last"))
    keys = latest[by].astype("object").where(latest[by].notna(), "unknown").astype(str)
    emp = pd.to_numeric(latest["employees"], errors="coerce").to_numpy(dtype=float)
    sales = pd.to_numeric(latest["sales_rc"], errors="coerce").to_numpy(dtype=float)
    rows = []
    n_dom, share = dominance
    for size in range(len(by), -1, -1):
        for group in combinations(by, size):
            g = list(group)
            idx = keys.groupby(g).indices if g else {(): np.arange(len(keys))}
            for key, ix in idx.items():
                key = key if isinstance(key, tuple) else (key,)
                row: dict[str, Any] = dict.fromkeys(by, ALL)
                row.update(dict(zip(g, key, strict=True)))
                dom = _dominated(emp[ix], n_dom, share) or _dominated(sales[ix], n_dom, share)
                row.update(firms_latest=len(ix), employment=float(np.nansum(emp[ix])),
                           sales=float(np.nansum(sales[ix])), dominated=dom)
                rows.append(row)
    sums = pd.DataFrame(rows, columns=[*by, "firms_latest", "employment", "sales", "dominated"])
    out = out.merge(sums, on=by, how="left")
    hidden = out["suppressed"].notna()
    out["suppressed_sums"] = np.where(hidden, out["suppressed"].astype(object),
                                      np.where(out["dominated"].fillna(False).astype(bool), "dominance",
                                               np.array(None, dtype=object)))
    out.loc[hidden, "firms_latest"] = np.nan
    for c in SUM_COLUMNS:
        out[c] = out[c].astype(float).mask(out["suppressed_sums"].notna())
    out.loc[out["firms_latest"].fillna(0) < k, ["employment", "sales"]] = np.nan
    out["firms_latest"] = out["firms_latest"].round().astype("Int64")
    return out.drop(columns=["dominated"]).reset_index(drop=True)


UNKNOWN = "unknown"


def unknown_reasons(frame: pd.DataFrame, table: pd.DataFrame, by: Sequence[str], *, k: int = 5) -> pd.DataFrame:
    """Why firm-years have no class: one row per country and reason, ``firm_years`` (statements
    in force) and ``suppressed`` (None, ``"primary"``, ``"complementary"``).

    ``frame``: the rows given to :func:`sme_table` with ``size_reason_code`` and
    ``size_reason`` (the classifier's reason, "" when classified); ``table``: its result.

    * primary: fewer than ``k`` firms in the row once any one institution's own firms are
      removed (plain distinct firms without ``institution_id``), as for the table's cells;
    * the reasons of a country sum to the table's unknown-class cell of that country (of
      every country together when ``country`` is not a ``by`` dimension; no published total
      when ``size_class`` is not one). When that cell is published and exactly one reason is
      hidden, the smallest other reason is hidden too; when that cell is suppressed, all
      its reasons are, so that their sum does not reveal it.
    """
    by = list(by)
    columns = ["country", "reason_code", "reason", "firm_years", "suppressed"]
    unk = frame[frame["size_class"].isna()]
    if unk.empty:
        return pd.DataFrame(columns=columns)
    unk = unk.assign(country=unk["country"].astype("object").where(unk["country"].notna(), UNKNOWN).astype(str),
                     reason=unk["size_reason"].astype(str), reason_code=unk["size_reason_code"].astype(str))
    insider = _insider_firms(unk, ["country", "reason"])
    insider = insider[(insider["country"] != ALL) & (insider["reason"] != ALL)]
    counts = unk.groupby(["country", "reason", "reason_code"]).size().rename("firm_years").reset_index()
    rows = counts.merge(insider, on=["country", "reason"], how="left")
    rows["suppressed"] = np.where(rows["firms_insider"] < k, PRIMARY, np.array(None, dtype=object))
    rows = rows.sort_values(["country", "firm_years", "reason"], ascending=[True, False, True], kind="stable")

    def total_status(country: str) -> str | None | bool:
        """Status of the table's cell these reasons sum to; False when there is none."""
        if "size_class" not in by or table.empty:
            return False
        want = (table["size_class"] == UNKNOWN)
        for d in by:
            if d == "country":
                want &= table[d] == country
            elif d != "size_class":
                want &= table[d] == ALL
        hit = table.loc[want, "suppressed"]
        if hit.empty:
            return False
        return None if pd.isna(hit.iloc[0]) else str(hit.iloc[0])

    groups = [[c] for c in rows["country"].unique()] if "country" in by else [list(rows["country"].unique())]
    status = rows["suppressed"].copy()
    for members in groups:
        ix = rows.index[rows["country"].isin(members)]
        total = total_status(members[0] if "country" in by else ALL)
        if total is False:
            continue
        if total is not None:  # the total is hidden: so are all its parts
            status[ix] = status[ix].where(status[ix].notna(), COMPLEMENTARY)
            continue
        hidden = status[ix].notna()
        if hidden.sum() == 1:
            others = rows.loc[ix[~hidden.to_numpy()]].sort_values(["firm_years", "reason"], kind="stable")
            if len(others):
                status[others.index[0]] = COMPLEMENTARY
    rows["suppressed"] = pd.Series([v if isinstance(v, str) else None for v in status], index=rows.index,
                                   dtype="object")
    rows["firm_years"] = rows["firm_years"].astype("Int64").mask(rows["suppressed"].notna())
    return rows[columns].reset_index(drop=True)
