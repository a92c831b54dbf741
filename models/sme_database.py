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
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from models.statistics import ALL, cell_statistics, suppress

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
