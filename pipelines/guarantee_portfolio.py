"""A guarantee book's risk: one-year loss simulation, risk by fee category and by loan,
and the summary a board reads (premiums against expected claims and capital cost, gross
and net of reinsurance, P(loss > fund)).

Inputs are a frame of loans (a file's, or the database book's): ``loan_id``, ``pd``
(one-year), ``amount`` (currency units), optional ``coverage``, ``lgd``, ``secured``,
``sales`` with ``sales_currency`` and ``sales_date`` (or ``sales_eur_m``),
``no_statements``; with ``tenor_years`` the loans are also priced
(:func:`models.pricing.price_loans`) so the category table has premiums and costs.

* EAD (gross) = amount x coverage; net = gross x (1 - s), s the policy's reinsured share
  (a quota share: the net loss in every scenario is (1 - s) x the gross loss, so one
  simulation gives both).
* Per loan (net, currency units): contribution to the one-year expected loss (PD x LGD x
  EAD), to VaR 99.9% and to ES 99% / 99.9% (Euler allocation, :mod:`models.portfolio`).
* Per fee category: loans, exposure (covered, gross), premiums PV (charged fees), expected
  claims PV, capital (IRB, net), cost of capital PV, subsidy PV (costs - premiums), and the
  category's share of ES 99.9%.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from models.fee_schedule import FeeSchedule
from models.portfolio import PortfolioResult, simulate_portfolio
from models.pricing import PricingPolicy, as_bool, price_loans
from pipelines.sales_eur import with_sales_eur_m


def _col(df: pd.DataFrame, name: str, default: float) -> np.ndarray:
    n = len(df)
    if name not in df:
        return np.full(n, default)
    v = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)
    return np.where(np.isnan(v), default, v)


def risk_inputs(df: pd.DataFrame, policy: PricingPolicy) -> dict[str, np.ndarray]:
    """PD, LGD (file's, else the policy's by ``secured``), gross EAD = amount x coverage
    (currency units) and sales in EUR millions, for :func:`models.portfolio.simulate_portfolio`."""
    n = len(df)
    secured = as_bool(df["secured"]) if "secured" in df else np.zeros(n, dtype=bool)
    lgd = _col(df, "lgd", np.nan)
    lgd = np.where(np.isnan(lgd), np.where(secured, policy.lgd_secured, policy.lgd_unsecured), lgd)
    return {"pd": _col(df, "pd", np.nan), "lgd": lgd,
            "ead": _col(df, "amount", np.nan) * _col(df, "coverage", policy.coverage),
            # sales in EUR millions, converted at the date of the sales figure
            # (pipelines.sales_eur.with_sales_eur_m; run_portfolio does it)
            "sales_eur_m": _sales_eur_m(df)}


def _sales_eur_m(df: pd.DataFrame) -> np.ndarray:
    if "sales_eur_m" in df:
        return _col(df, "sales_eur_m", np.nan)
    if "sales" in df and pd.to_numeric(df["sales"], errors="coerce").notna().any():
        raise ValueError("sales are in currency units: convert them to EUR millions first (sales_eur_m, "
                         "pipelines.sales_eur.with_sales_eur_m)")
    return np.full(len(df), np.nan)


def _priced(df: pd.DataFrame, policy: PricingPolicy, schedule: FeeSchedule | None) -> tuple[Any, Any]:
    """Gross (no reinsurance) and net pricing of the loans, or (None, None) without tenors."""
    if schedule is None or "tenor_years" not in df:
        return None, None
    from dataclasses import replace

    from models.fee_schedule import CoverageError, coverage_problem

    cov = _col(df, "coverage", policy.coverage)
    bad = ~schedule.coverage_ok(cov)
    if bad.any():
        rows = ", ".join(str(int(i) + 2) for i in bad.nonzero()[0][:10])
        raise CoverageError(f"{int(bad.sum())} loan(s) (rows {rows}): {coverage_problem(schedule, float(cov[bad][0]))}")

    cols = [c for c in ("loan_id", "pd", "amount", "tenor_years", "coverage", "lgd", "amortization", "rate", "sales",
                        "sales_eur_m", "secured", "no_statements", "instalments") if c in df]
    net = price_loans(df[cols].reset_index(drop=True), policy, schedule)
    gross = net if policy.reinsurance_share == 0 else price_loans(
        df[cols].reset_index(drop=True), replace(policy, reinsurance_share=0.0), schedule)
    return gross, net


def _categories(df: pd.DataFrame, schedule: FeeSchedule | None, priced: Any) -> pd.Series | None:
    if priced is not None:
        return priced["category"].astype(str).reset_index(drop=True)
    if "category" in df:
        return df["category"].astype(str).reset_index(drop=True)
    if schedule is not None:
        ns = as_bool(df["no_statements"]) if "no_statements" in df else None
        return pd.Series(schedule.category(_col(df, "pd", np.nan), ns)).astype(str)
    return None


def run_portfolio(df: pd.DataFrame, policy: PricingPolicy, schedule: FeeSchedule | None = None, *,
                  scenarios: int = 10_000, seed: int = 0, fund: float | None = None, rho: float | None = None,
                  method: str = "bernoulli", progress: Callable[[int], None] | None = None,
                  sales_date: dt.date | None = None) -> dict[str, Any]:
    """Simulate the book and break its risk down by category and by loan.

    Sales become EUR millions first (:func:`pipelines.sales_eur.with_sales_eur_m`:
    each row's ``sales_currency`` and ``sales_date``, else the policy currency and
    ``sales_date``; a book giving ``sales_eur_m`` is taken as it is); a row with sales but
    no date raises :class:`pipelines.sales_eur.SalesConversionError`.

    Returns ``{"net": PortfolioResult, "gross": PortfolioResult, "per_loan": frame,
    "by_category": [...], "board": {...}}`` (amounts in currency units; ``net`` is what the
    agency retains after reinsurance). Loans to be priced with a coverage the schedule does
    not price raise :class:`models.fee_schedule.CoverageError`.
    """
    df = with_sales_eur_m(df, policy, sales_date)
    inp = risk_inputs(df, policy)
    gross = simulate_portfolio(inp["pd"], inp["lgd"], inp["ead"], rho=rho, sales_eur_m=inp["sales_eur_m"],
                               n_scenarios=scenarios, seed=seed, fund=fund, method=method, progress=progress,
                               contributions=True)
    s = policy.reinsurance_share
    net = gross if s == 0 else gross.scaled(1.0 - s, fund)
    g_priced, n_priced = _priced(df, policy, schedule)
    cats = _categories(df, schedule, n_priced)
    c = net.contributions or {}
    ids = df["loan_id"].astype(str).to_numpy() if "loan_id" in df else np.arange(1, len(df) + 1).astype(str)
    per_loan = pd.DataFrame({"loan_id": ids, "pd": inp["pd"], "ead": inp["ead"] * (1.0 - s),
                             "el": c["el"], "var_999": c["var_0.999"], "es_99": c["es_0.99"],
                             "es_999": c["es_0.999"]})
    if cats is not None:
        per_loan.insert(1, "category", cats.to_numpy())
    tot_es = float(per_loan["es_999"].sum())
    per_loan["es_999_share"] = per_loan["es_999"] / tot_es if tot_es > 0 else 0.0
    return {"net": net, "gross": gross, "per_loan": per_loan,
            "by_category": category_risk(per_loan, inp["ead"], n_priced, schedule),
            "board": board_summary(gross, net, g_priced, n_priced, fund, s)}


def category_risk(per_loan: pd.DataFrame, ead_gross: np.ndarray, priced: Any,
                  schedule: FeeSchedule | None) -> list[dict[str, Any]]:
    """Per fee category: loans, exposure (gross covered), premiums PV, expected claims PV,
    capital, cost of capital PV, subsidy PV, one-year EL and ES 99.9% contribution (net)."""
    if "category" not in per_loan:
        return []
    frame = pd.DataFrame({"category": per_loan["category"].to_numpy(), "exposure": ead_gross,
                          "el_1y": per_loan["el"].to_numpy(), "es_999": per_loan["es_999"].to_numpy()})
    if priced is not None:
        for src, dst in (("fee_charged_pv", "premiums_pv"), ("el_pv", "expected_claims_pv"), ("capital", "capital"),
                         ("coc_pv", "capital_cost_pv"), ("admin_pv", "admin_cost_pv"),
                         ("subsidy_gap_pv", "subsidy_pv")):
            frame[dst] = priced[src].to_numpy(dtype=float)
    agg = frame.groupby("category", sort=False).agg(
        loans=("exposure", "size"), **{k: (k, "sum") for k in frame.columns if k != "category"})
    order = [lab for lab in (schedule.labels if schedule is not None else ()) if lab in agg.index]
    order += [lab for lab in agg.index if lab not in order]
    total_es = float(frame["es_999"].sum())
    rows = []
    for lab in order:
        r = agg.loc[lab]
        row: dict[str, Any] = {"category": str(lab), "loans": int(r["loans"])}
        row.update({k: float(r[k]) for k in agg.columns if k != "loans"})
        row["es_999_share"] = float(r["es_999"]) / total_es if total_es > 0 else 0.0
        rows.append(row)
    return rows


def board_summary(gross: PortfolioResult, net: PortfolioResult, g_priced: Any, n_priced: Any,
                  fund: float | None, share: float) -> dict[str, Any]:
    """Premiums against expected claims and capital cost (PV over the loans' lives) and
    the one-year loss (EL, VaR, ES, P(loss > fund)), gross and net of reinsurance."""
    def side(res: PortfolioResult, priced: Any) -> dict[str, Any]:
        d: dict[str, Any] = {
            "exposure": res.total_exposure, "expected_loss_1y": res.expected_loss,
            "var_999": res.quantiles[0.999], "es_999": res.expected_shortfall[0.999],
            "prob_loss_exceeds_fund": None if fund is None else float(np.mean(res.losses > fund)),
        }
        if priced is not None:
            prem = float(priced["fee_charged_pv"].sum())
            claims, coc, admin = (float(priced[c].sum()) for c in ("el_pv", "coc_pv", "admin_pv"))
            d.update(premiums_pv=prem, expected_claims_pv=claims, capital_cost_pv=coc, admin_cost_pv=admin,
                     capital=float(priced["capital"].sum()), subsidy_pv=claims + coc + admin - prem,
                     premiums_over_claims=prem / claims if claims > 0 else None)
        return d

    return {"reinsurance_share": share, "fund": fund, "gross": side(gross, g_priced), "net": side(net, n_priced)}
