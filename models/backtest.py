"""Walk-forward calibration backtest of a PD rating model (pure pandas/scipy, no database).

The supervisory view of calibration over the cycle: for each out-of-time year the
model *in force at the start of that year* (trained only on data known then) scores
the statements that become available during the year, and the realised one-year
defaults are compared with the PDs. Two views are computed:

* **per year and grade**: for every year and master-scale grade, the number of
  statements ``n``, ``defaults``, observed default rate ``odr``, ``mean_pd`` (the
  tested PD), the 95% Jeffreys interval of the default rate, the one-sided binomial
  and Jeffreys p-values and their traffic lights (``models.validation_stats``: green
  p > 5%, yellow 0.1%-5%, red p < 0.1%, one-sided against *underestimation*). One
  year's rate moves with the business cycle, so single-year lights are expected to
  be yellow or red now and then for a through-the-cycle PD;
* **pooled over all out-of-time years** against the long-run PD (Basel CRE36: a
  grade's PD is the long-run average of its one-year default rates): per grade the
  statements and defaults of every year added up and tested against the grade's
  mean PD over those years. ``long_run_odr`` is the plain average of the yearly
  rates (years where the grade holds statements). The pooled tests treat the years
  as independent, which ignores default correlation and so, if anything, is strict.

A *portfolio* row (all grades) is given per year and pooled. ``within_interval``
says whether the tested PD lies inside the Jeffreys interval: a two-sided reading
that also shows PDs set far too high, which the one-sided lights do not flag.

PDs are one-year probabilities as fractions; labels are 0/1 (1 = default).
Every result is made of plain Python values, ready for :func:`json.dumps`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from models.master_scale import MasterScale, assign_grade, load_master_scale
from models.validation_stats import binomial_test, jeffreys_interval, jeffreys_test, traffic_light

__all__ = ["LIGHT_ORDER", "backtest", "calibration_rows", "worst_light"]

#: traffic lights from best to worst ("grey": not testable, e.g. no statements)
LIGHT_ORDER = ("grey", "green", "yellow", "red")


def worst_light(lights: Sequence[str]) -> str:
    """The worst of some traffic lights (``grey`` when there are none)."""
    return max(lights, key=LIGHT_ORDER.index, default="grey")


def _row(n: int, d: int, sum_pd: float, level: float) -> dict[str, Any]:
    mean_pd = sum_pd / n if n else float("nan")
    lo, hi = jeffreys_interval(d, n, level)
    jp = jeffreys_test(d, n, mean_pd) if n else float("nan")
    bp = binomial_test(d, n, mean_pd) if n else float("nan")
    return {"n": n, "defaults": d, "odr": d / n if n else float("nan"), "mean_pd": float(mean_pd),
            "jeffreys_lower": lo, "jeffreys_upper": hi, "jeffreys_p": jp, "binomial_p": bp,
            "traffic_light": traffic_light(jp), "binomial_light": traffic_light(bp),
            "within_interval": bool(lo <= mean_pd <= hi) if n else None}


def _frame(frame: pd.DataFrame, scale: MasterScale) -> pd.DataFrame:
    missing = {"pd", "label"} - set(frame.columns)
    if missing:
        raise ValueError(f"backtest frame lacks column(s) {', '.join(sorted(missing))}")
    p = frame["pd"].to_numpy(dtype=float)
    y = frame["label"].to_numpy()
    if np.isnan(p).any() or ((p < 0) | (p > 1)).any():
        raise ValueError("pd must be a probability in [0, 1] without NaN")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("label must contain only 0 and 1")
    grade = frame["grade"].astype(str).to_numpy() if "grade" in frame.columns else assign_grade(p, scale)
    return pd.DataFrame({"grade": grade, "pd": p, "label": y.astype(np.int64)})


def calibration_rows(frame: pd.DataFrame, order: Sequence[str], level: float = 0.95) -> list[dict[str, Any]]:
    """Per-grade rows (grades in ``order`` that hold statements, then any others) for one sample."""
    g = frame.groupby("grade", sort=False).agg(n=("label", "size"), d=("label", "sum"), s=("pd", "sum"))
    grades = [x for x in order if x in g.index] + sorted(set(g.index) - set(order))
    return [{"grade": str(k), **_row(int(g.at[k, "n"]), int(g.at[k, "d"]), float(g.at[k, "s"]), level)}
            for k in grades]


def backtest(years: Mapping[int, pd.DataFrame], scale: MasterScale | None = None,
             level: float = 0.95) -> dict[str, Any]:
    """Walk-forward calibration tables from each out-of-time year's scored statements.

    ``years`` maps a year to a frame with columns ``pd`` (the PD of the model in force
    at the start of that year), ``label`` (0/1 default within one year) and optionally
    ``grade`` (else assigned from ``pd`` on the master ``scale``). Returns
    ``per_year`` (rows: year, grade, n, defaults, odr, mean_pd, Jeffreys interval,
    jeffreys_p, binomial_p, traffic_light, binomial_light, within_interval),
    ``per_year_portfolio`` (one row per year), ``pooled`` (per grade over all years,
    with ``long_run_odr`` and ``years``), ``pooled_portfolio`` and ``summary``:
    years, lights per year, ``pooled_light`` (worst pooled Jeffreys light of the
    grades and the portfolio), ``pooled_red`` / ``year_red`` (what is red) and
    ``passed`` (no red in the pooled view).
    """
    if not years:
        raise ValueError("the backtest needs at least one out-of-time year")
    scale = scale or load_master_scale()
    order = scale.labels
    frames = {int(y): _frame(f, scale) for y, f in sorted(years.items())}
    per_year: list[dict[str, Any]] = []
    per_year_portfolio: list[dict[str, Any]] = []
    for y, f in frames.items():
        per_year += [{"year": y, **r} for r in calibration_rows(f, order, level)]
        per_year_portfolio.append({"year": y, **_row(len(f), int(f["label"].sum()), float(f["pd"].sum()), level)})
    allf = pd.concat(frames.values(), ignore_index=True)
    pooled = calibration_rows(allf, order, level)
    yearly = pd.DataFrame(per_year)
    for r in pooled:
        rates = yearly.loc[yearly["grade"] == r["grade"], "odr"]
        r["years"] = int(len(rates))
        r["long_run_odr"] = float(rates.mean())
    pooled_portfolio = _row(len(allf), int(allf["label"].sum()), float(allf["pd"].sum()), level)
    pooled_portfolio["long_run_odr"] = float(np.mean([r["odr"] for r in per_year_portfolio]))
    pooled_red = [f"grade {r['grade']}" for r in pooled if r["traffic_light"] == "red"]
    if pooled_portfolio["traffic_light"] == "red":
        pooled_red.append("portfolio")
    year_lights = {y: {light: sum(1 for r in per_year if r["year"] == y and r["traffic_light"] == light)
                       for light in ("green", "yellow", "red")} for y in frames}
    summary = {
        "years": list(frames), "n": len(allf), "defaults": int(allf["label"].sum()),
        "pooled_light": worst_light([r["traffic_light"] for r in pooled] + [pooled_portfolio["traffic_light"]]),
        "pooled_red": pooled_red,
        "pooled_outside_interval": [r["grade"] for r in pooled if r["within_interval"] is False],
        "year_lights": [{"year": y, **c} for y, c in year_lights.items()],
        "year_red": [f"{r['year']} grade {r['grade']}" for r in per_year if r["traffic_light"] == "red"],
        "passed": not pooled_red,
        "level": level,
    }
    return {"per_year": per_year, "per_year_portfolio": per_year_portfolio, "pooled": pooled,
            "pooled_portfolio": pooled_portfolio, "summary": summary}
