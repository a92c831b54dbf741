"""Loan-level credit-guarantee pricing, vectorised over arrays of loans.

Conventions (units and timing)
------------------------------
* Time runs in years from the guarantee date; period ``t = 1..ceil(T)`` covers
  ``[t-1, min(t, T)]`` for a tenor of ``T`` years (the last period may be partial).
* PD is the one-year probability of default. The term structure uses a constant hazard:
  survival ``S(tau) = (1 - PD) ** tau``; marginal PD of period t = ``S(t-1) - S(min(t, T))``.
  Alternatively a per-loan matrix of cumulative PDs at integer years (e.g. from a rating
  migration matrix, :func:`cumulative_pd_from_migration`) may be given.
* Exposure: outstanding balance at the START of each period (bullet, linear
  amortisation, or an annuity with annual instalments at the loan rate).
* A default in period t happens at the END of the period on the exposure outstanding at
  its start: loss to the agency = marginal PD_t x exposure_{t-1} x coverage x LGD x (1 - s),
  discounted at ``DF(min(t, T)) = (1 + d) ** -min(t, T)``; ``s`` is the reinsurance share.
* Fee base (the unit of every annual rate here, including the break-even fee): the
  COVERED (guaranteed) outstanding balance of a surviving loan, ``S(t-1) x coverage x
  exposure_{t-1} x length_t``, with fees paid in advance at the START of each period
  (discount factor ``DF(t-1)``). Multiply by the coverage ratio for a rate on the loan.
* Administrative cost: ``admin_cost_rate`` p.a. on the same base and timing, so it adds
  exactly ``admin_cost_rate`` to the break-even fee. It is not reinsured.
* Capital: IRB K (:mod:`models.irb`; one-year PD, the loan's LGD, maturity = tenor capped
  to 1..5, firm-size adjustment from annual sales converted to EUR millions) times the
  covered surviving exposure net of reinsurance, held over each period; its cost
  ``hurdle_rate x capital x length_t`` is paid at the period's end.
* Break-even fee rate (fraction p.a. of covered outstanding) =
  PV(expected loss + cost of capital + admin cost) / PV(fee base).
* Charged fee under a :class:`~models.fee_schedule.FeeSchedule`: an annual schedule pays its
  rate on its own base (loan or covered outstanding) at the start of each surviving period;
  an up-front schedule (Japan) charges once, at time 0, amount x rate x months/12 x
  instalment coefficient. ``charged_rate`` = PV(charged fees) / PV(fee base), on the same
  basis as the break-even rate; ``subsidy_gap_rate = break_even_rate - charged_rate`` and
  ``subsidy_gap_pv = PV(costs) - PV(charged fees)`` (currency units, positive = subsidy).

Amounts are in currency units, rates are fractions per annum.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models import irb
from models.fee_schedule import FeeSchedule

POLICY_FILE = Path(__file__).resolve().parent / "data" / "pricing_policy.toml"
AMORTIZATIONS = ("bullet", "linear", "annuity")
_AMORT_CODE = {name: i for i, name in enumerate(AMORTIZATIONS)}


@dataclass(frozen=True)
class PricingPolicy:
    """Pricing parameters (fractions p.a. unless stated); defaults documented in the TOML."""

    hurdle_rate: float = 0.10
    admin_cost_rate: float = 0.002
    discount_rate: float = 0.01
    coverage: float = 0.8
    lgd_unsecured: float = 0.62
    lgd_secured: float = 0.40
    reinsurance_share: float = 0.0
    pd_floor: float = irb.PD_FLOOR_BASEL3
    default_loan_rate: float = 0.02
    currency: str = "JPY"


#: policy keys that were removed, and what replaced them
REPLACED_KEYS = {
    "units_per_eur": "units_per_eur was replaced by the rates table: sales are converted to EUR at the date "
                     "of the sales figure with the ECB reference rates and the rates loaded with "
                     "`creditdb fx load` (file columns sales_currency and sales_date, or sales_eur_m); "
                     "remove the key",
}


def load_policy(path: str | Path | None = None, **overrides: Any) -> PricingPolicy:
    """Read a pricing policy TOML (default ``models/data/pricing_policy.toml``); keyword
    overrides (not None) win over the file. A key that was removed (``units_per_eur``)
    raises ValueError saying what replaced it."""
    with Path(path or POLICY_FILE).open("rb") as fh:
        doc = tomllib.load(fh)
    for k, why in REPLACED_KEYS.items():
        if k in doc or overrides.get(k) is not None:
            raise ValueError(f"{path or POLICY_FILE}: {why}")
    known = {f.name for f in fields(PricingPolicy)}
    unknown = set(doc) - known
    if unknown:
        raise ValueError(f"{path or POLICY_FILE}: unknown policy keys {sorted(unknown)}")
    doc.update({k: v for k, v in overrides.items() if v is not None})
    pol = PricingPolicy(**doc)
    if not 0.0 <= pol.reinsurance_share <= 1.0:
        raise ValueError("reinsurance_share must be in [0, 1]")
    return pol


# --------------------------------------------------------------------------- term structure


def pd_term_structure(pd_1y: Any, n_years: int) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative and marginal PD for years 1..n_years under a constant hazard.

    Returns arrays of shape (n_loans, n_years): ``cum[:, t-1] = 1 - (1 - PD)**t`` and
    ``marg[:, t-1] = (1 - PD)**(t-1) * PD``.
    """
    p = np.atleast_1d(np.asarray(pd_1y, dtype=float))[:, None]
    t = np.arange(1, n_years + 1)[None, :]
    surv = (1.0 - p) ** t
    cum = 1.0 - surv
    marg = np.diff(np.concatenate([np.zeros((p.shape[0], 1)), cum], axis=1), axis=1)
    return cum, marg


def cumulative_pd_from_migration(matrix: Any, grade_index: int, years: int) -> np.ndarray:
    """Cumulative PD at years 1..``years`` for a firm starting in ``grade_index``.

    ``matrix`` is an annual transition matrix (rows = from-grade, columns = to-grade, rows
    sum to 1) whose LAST state is default and absorbing. The cumulative PD at year t is
    the default column of ``matrix ** t`` (Markov, time-homogeneous).
    """
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError("migration matrix must be square")
    if np.any(m < 0) or not np.allclose(m.sum(axis=1), 1.0, atol=1e-8):
        raise ValueError("migration matrix rows must be non-negative and sum to 1")
    if not (np.isclose(m[-1, -1], 1.0)):
        raise ValueError("the last state must be default and absorbing (last row = [0, ..., 0, 1])")
    if not 0 <= grade_index < m.shape[0] - 1:
        raise ValueError(f"grade_index must be a non-default state in 0..{m.shape[0] - 2}")
    out = np.empty(years)
    row = np.zeros(m.shape[0])
    row[grade_index] = 1.0
    for t in range(years):
        row = row @ m
        out[t] = row[-1]
    return out


# --------------------------------------------------------------------------- exposure


def outstanding(amount: Any, tenor_years: Any, amortization_code: Any, rate: Any, tau: Any) -> np.ndarray:
    """Outstanding balance at time ``tau`` (years) before that date's repayment.

    ``amortization_code``: 0 bullet, 1 linear, 2 annuity (annual instalments at ``rate``;
    a zero rate gives linear). Zero at and after maturity.
    """
    a = np.asarray(amount, dtype=float)
    T = np.asarray(tenor_years, dtype=float)
    code = np.asarray(amortization_code)
    r = np.asarray(rate, dtype=float)
    tau = np.asarray(tau, dtype=float)
    remaining = np.clip(T - tau, 0.0, None)
    lin = remaining / T
    with np.errstate(divide="ignore", invalid="ignore"):
        log1r = np.log1p(r)
        ann = np.where(
            r > 1e-12,
            -np.expm1(-remaining * log1r) / -np.expm1(-T * log1r),
            lin,
        )
    frac = np.where(code == 0, (remaining > 0).astype(float), np.where(code == 1, lin, ann))
    return a * frac


def exposure_profile(
    amount: Any, tenor_years: Any, amortization: Any, rate: Any = 0.0, n_years: int | None = None
) -> np.ndarray:
    """Outstanding at the start of years 1..n (balance at tau = 0, 1, ..., n-1).

    ``amortization``: names from :data:`AMORTIZATIONS` (or their codes). Shape (n_loans, n).
    """
    a = np.atleast_1d(np.asarray(amount, dtype=float))
    T = np.broadcast_to(np.asarray(tenor_years, dtype=float), a.shape)
    code = amortization_codes(np.broadcast_to(np.asarray(amortization), a.shape))
    r = np.broadcast_to(np.asarray(rate, dtype=float), a.shape)
    n = int(math.ceil(float(T.max()))) if n_years is None else n_years
    tau = np.arange(n, dtype=float)[None, :]
    return outstanding(a[:, None], T[:, None], code[:, None], r[:, None], tau)


def amortization_codes(values: Any, missing: str | None = None) -> np.ndarray:
    """Map amortization names (case-insensitive) or codes to 0/1/2; unknown -> ValueError.

    ``missing``: name used for empty entries (None: empty entries are an error).
    """
    if isinstance(values, pd.Series) and values.dtype.kind in "iu":
        values = values.to_numpy()
    arr = values if isinstance(values, pd.Series) else np.asarray(values)
    if arr.dtype.kind in "iu":
        if np.any((arr < 0) | (arr > 2)):
            raise ValueError("amortization code must be 0, 1 or 2")
        return np.asarray(arr, dtype=np.int8)
    flat = arr if isinstance(arr, pd.Series) else arr.ravel()
    codes_, uniques = pd.factorize(flat, use_na_sentinel=True)
    lookup = np.empty(len(uniques) + 1, dtype=np.int8)  # last slot: missing (code -1)
    for i, u in enumerate(uniques):
        key = str(u).strip().lower()
        if key not in _AMORT_CODE:
            raise ValueError(f"unknown amortization {key!r}; use one of {AMORTIZATIONS}")
        lookup[i] = _AMORT_CODE[key]
    if (codes_ < 0).any():
        if missing is None:
            raise ValueError("amortization is missing")
        lookup[-1] = _AMORT_CODE[missing]
    out = lookup[codes_]
    return out if isinstance(arr, pd.Series) else out.reshape(arr.shape)


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Problem:
    """One invalid field of one loan. ``row`` counts the header as row 1."""

    row: int
    loan_id: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row} (loan_id {self.loan_id}): {self.field}: {self.message}"


REQUIRED_COLUMNS = ("pd", "amount", "tenor_years")


def validate_loans(
    loans: pd.DataFrame, limit: int = 50, required: tuple[str, ...] = REQUIRED_COLUMNS
) -> list[Problem]:
    """Check every loan; return up to ``limit`` problems (row numbers count the header as 1).

    ``required``: columns that must be present (``tenor_years`` is not needed for a
    one-year portfolio simulation). Optional columns are checked when present; empty
    optional cells mean "use the policy default".
    """
    problems: list[Problem] = []
    missing = [c for c in required if c not in loans.columns]
    if missing:
        return [Problem(1, "-", c, "required column is missing") for c in missing]
    for col in ("pd", "amount"):
        if col not in required and col not in loans.columns:
            return [Problem(1, "-", col, "required column is missing")]
    n = len(loans)
    ids = loans["loan_id"].astype(str).to_numpy() if "loan_id" in loans else np.arange(1, n + 1).astype(str)
    rows = np.arange(n) + 2

    def num(col: str) -> np.ndarray:
        return pd.to_numeric(loans[col], errors="coerce").to_numpy(dtype=float)

    checks: list[tuple[str, np.ndarray, str]] = []
    p = num("pd")
    checks.append(("pd", ~((p > 0) & (p < 1)), "must be a one-year probability strictly between 0 and 1"))
    a = num("amount")
    checks.append(("amount", ~(a > 0) | ~np.isfinite(a), "must be a positive amount"))
    if "tenor_years" in loans:
        t = num("tenor_years")
        checks.append(
            ("tenor_years", ~(t > 0) | ~np.isfinite(t) | (t > 100), "must be a positive number of years (<= 100)")
        )
    if "coverage" in loans:
        c = num("coverage")
        raw = loans["coverage"]
        given = raw.notna().to_numpy()
        checks.append(("coverage", given & ~((c > 0) & (c <= 1)), "must be a fraction in (0, 1]"))
    if "lgd" in loans:
        g = num("lgd")
        given = loans["lgd"].notna().to_numpy()
        checks.append(("lgd", given & ~((g >= 0) & (g <= 1)), "must be a fraction in [0, 1]"))
    if "rate" in loans:
        r = num("rate")
        given = loans["rate"].notna().to_numpy()
        checks.append(("rate", given & ~((r >= 0) & (r < 1)), "must be an interest rate p.a. in [0, 1)"))
    if "sales" in loans:
        s = num("sales")
        given = loans["sales"].notna().to_numpy()
        checks.append(("sales", given & ~(s >= 0), "must be a non-negative amount or empty"))
    if "instalments" in loans:
        k = num("instalments")
        given = loans["instalments"].notna().to_numpy()
        checks.append(("instalments", given & ~((k >= 1) & (k == np.round(k))), "must be a whole number >= 1"))
    if "amortization" in loans:
        am = loans["amortization"]
        norm = am.astype(str).str.strip().str.lower()
        checks.append(
            ("amortization", am.notna().to_numpy() & ~norm.isin(AMORTIZATIONS).to_numpy(),
             f"must be one of {', '.join(AMORTIZATIONS)}")
        )
    for col in ("secured", "no_statements"):
        if col in loans:
            checks.append((col, _bool_invalid(loans[col]), "must be true/false, 1/0 or yes/no"))
    bad_rows = np.zeros(n, dtype=bool)
    for _, mask, _ in checks:
        bad_rows |= mask
    for i in np.flatnonzero(bad_rows):
        for field, mask, msg in checks:
            if mask[i]:
                val = loans[field].iloc[i]
                val = val.item() if hasattr(val, "item") else val
                problems.append(Problem(int(rows[i]), str(ids[i]), field, f"{msg} (got {val!r})"))
                if len(problems) >= limit:
                    return problems
    return problems


_TRUE = {"true", "1", "yes", "y", "t", "1.0"}
_FALSE = {"false", "0", "no", "n", "f", "0.0", "", "nan", "none", "<na>"}


def _bool_text(col: pd.Series) -> pd.Series:
    """Lower-case text of a boolean-ish column, missing values as ""."""
    return col.astype(object).where(col.notna(), "").astype(str).str.strip().str.lower()


def _bool_invalid(col: pd.Series) -> np.ndarray:
    if col.dtype == bool:
        return np.zeros(len(col), dtype=bool)
    return (~_bool_text(col).isin(_TRUE | _FALSE)).to_numpy()


def as_bool(col: Any) -> np.ndarray:
    """Parse a boolean column (true/false, 1/0, yes/no; empty = false)."""
    if isinstance(col, pd.Series):
        if col.dtype == bool:
            return col.to_numpy()
        return _bool_text(col).isin(_TRUE).to_numpy()
    arr = np.asarray(col)
    if arr.dtype == bool:
        return arr
    return as_bool(pd.Series(arr.ravel())).reshape(arr.shape)


# --------------------------------------------------------------------------- pricing


def _column(loans: Mapping[str, Any] | pd.DataFrame, name: str, n: int, default: Any) -> np.ndarray:
    if name in loans:
        v = loans[name]
        arr = v.to_numpy() if isinstance(v, pd.Series) else np.asarray(v)
        return np.broadcast_to(arr, (n,)) if arr.ndim == 0 else arr
    return np.full(n, default)


def _fill(arr: np.ndarray, default: Any) -> np.ndarray:
    a = pd.to_numeric(pd.Series(arr), errors="coerce").to_numpy(dtype=float)
    return np.where(np.isnan(a), default, a)


@dataclass
class ResolvedLoans:
    """Pricing inputs with every default applied (arrays of one entry per loan).

    Amounts in currency units, rates fractions p.a., ``tenor`` in years, ``k`` the IRB
    capital requirement per unit of EAD, ``sales`` annual sales in currency (NaN = none).
    """

    p: np.ndarray
    amount: np.ndarray
    tenor: np.ndarray
    coverage: np.ndarray
    lgd: np.ndarray
    code: np.ndarray
    rate: np.ndarray
    sales: np.ndarray
    secured: np.ndarray
    no_statements: np.ndarray
    instalments: np.ndarray
    k: np.ndarray


def resolve_loans(loans: pd.DataFrame | Mapping[str, Any], policy: PricingPolicy) -> ResolvedLoans:
    """Apply the policy's defaults to the loans' columns (see :func:`price_loans`), check the
    domain (ValueError) and compute the IRB capital K per loan."""
    pol = policy
    if "pd" not in loans:
        raise ValueError("loans need a 'pd' column")
    n = len(loans["pd"])
    p = np.asarray(_column(loans, "pd", n, np.nan), dtype=float)
    amount = np.asarray(_column(loans, "amount", n, np.nan), dtype=float)
    tenor = np.asarray(_column(loans, "tenor_years", n, np.nan), dtype=float)
    if np.any(~((p > 0) & (p < 1))) or np.any(~(amount > 0)) or np.any(~(tenor > 0)):
        raise ValueError("pd must be in (0, 1), amount and tenor_years positive (see validate_loans)")
    cov = _fill(_column(loans, "coverage", n, pol.coverage), pol.coverage)
    if np.any((cov <= 0) | (cov > 1)):
        raise ValueError("coverage must be in (0, 1]")
    secured = as_bool(_column(loans, "secured", n, False))
    lgd = _fill(_column(loans, "lgd", n, np.nan), np.nan)
    lgd = np.where(np.isnan(lgd), np.where(secured, pol.lgd_secured, pol.lgd_unsecured), lgd)
    if "amortization" in loans and isinstance(loans["amortization"], pd.Series):
        code = amortization_codes(loans["amortization"], missing="annuity")
    else:
        code = amortization_codes(_column(loans, "amortization", n, "annuity"), missing="annuity")
    rate = _fill(_column(loans, "rate", n, pol.default_loan_rate), pol.default_loan_rate)
    sales = _fill(_column(loans, "sales", n, np.nan), np.nan)
    no_stmt = as_bool(_column(loans, "no_statements", n, False))
    inst = _fill(_column(loans, "instalments", n, np.nan), np.nan)
    inst = np.where(np.isnan(inst), np.where(code == 0, 1.0, np.round(tenor * 12.0)), inst)
    # sales in EUR millions, converted by the caller at the date of the sales figure (pipelines.fx)
    if "sales_eur_m" in loans:
        sales_eur_m = _fill(_column(loans, "sales_eur_m", n, np.nan), np.nan)
    elif np.isfinite(sales).any():
        raise ValueError("sales are in currency units: convert them to EUR millions first (column sales_eur_m, "
                         "pipelines.sales_eur.with_sales_eur_m) for the Basel SME adjustment")
    else:
        sales_eur_m = np.full(n, np.nan)
    k = irb.capital_k(p, lgd, np.clip(tenor, 1.0, 5.0), sales_eur_m, pd_floor=pol.pd_floor)
    return ResolvedLoans(p, amount, tenor, cov, lgd, code, rate, sales, secured, no_stmt, inst, k)


def apply_schedule(r: ResolvedLoans, schedule: FeeSchedule, base_pv: np.ndarray, base_nominal: np.ndarray,
                   cost_pv: np.ndarray, break_even: np.ndarray) -> dict[str, Any]:
    """The schedule's fee on each loan: category, schedule rate, nominal and PV fee
    (currency), charged rate (fraction p.a. of covered outstanding) and the subsidy gap."""
    n = r.p.size
    sched_rate = schedule.annual_rate(r.p, r.coverage, r.secured, r.no_statements)
    if schedule.payment == "annual":
        to_covered = np.ones(n) if schedule.fee_base == "covered" else 1.0 / r.coverage
        fee_nominal = sched_rate * to_covered * base_nominal
        fee_pv = sched_rate * to_covered * base_pv
    else:
        base_amount = r.amount if schedule.fee_base == "loan" else r.amount * r.coverage
        fee_nominal = schedule.upfront_fee(base_amount, sched_rate, np.round(r.tenor * 12.0), r.instalments)
        fee_pv = fee_nominal
    charged = fee_pv / base_pv
    return {"category": pd.Categorical.from_codes(schedule.category_index(r.p, r.no_statements), schedule.labels),
            "schedule_rate": sched_rate, "fee_charged": fee_nominal, "fee_charged_pv": fee_pv,
            "charged_rate": charged, "subsidy_gap_rate": break_even - charged, "subsidy_gap_pv": cost_pv - fee_pv}


def price_loans(
    loans: pd.DataFrame | Mapping[str, Any],
    policy: PricingPolicy | None = None,
    schedule: FeeSchedule | None = None,
    cumulative_pd: np.ndarray | None = None,
    kernel: Any = None,
) -> pd.DataFrame:
    """Price guarantees loan by loan (see the module docstring for conventions).

    ``loans`` columns: ``pd`` (one-year), ``amount`` (currency), ``tenor_years``; optional
    ``loan_id``, ``coverage`` (default policy.coverage), ``lgd`` (default by ``secured``),
    ``amortization`` (bullet/linear/annuity, default annuity), ``rate`` (loan rate p.a.,
    default policy.default_loan_rate), ``sales_eur_m`` (annual sales in EUR millions for the
    Basel SME firm-size adjustment, converted by the caller; empty = no adjustment), ``sales``
    (annual sales in currency, carried to the output; without ``sales_eur_m`` it must be empty:
    this module does not convert currencies), ``secured``, ``no_statements``, ``instalments`` (default 1 for
    bullet, else monthly: round(12 x tenor)).
    ``cumulative_pd``: optional (n_loans, ceil(max tenor)) cumulative PDs at years 1, 2, ...
    replacing the constant hazard; within a year the hazard is constant, so a partial last
    period of length l has survival S(t-1) x (S(t) / S(t-1)) ** l (with a one-year curve
    equal to the one-year PD this is the constant-hazard survival exactly).
    ``kernel``: the period kernel (default :func:`models.pricing_kernel.pricing_kernel`;
    tests pass the slow reference).

    Three steps: :func:`resolve_loans` (defaults, IRB K), the numeric kernel (PVs of
    expected loss, capital cost and the fee base), :func:`apply_schedule` (fees).

    Returns a DataFrame, one row per loan, with inputs resolved and: ``irb_k``,
    ``risk_weight``, ``capital`` (initial, currency), ``cum_pd`` (over the tenor),
    ``el_pv``, ``coc_pv``, ``admin_pv``, ``fee_base_pv`` (currency-years),
    ``break_even_rate``; and with a schedule: ``category``, ``schedule_rate`` (on the
    schedule's base), ``fee_charged`` (nominal currency, no default), ``fee_charged_pv``,
    ``charged_rate``, ``subsidy_gap_rate``, ``subsidy_gap_pv``.
    """
    from models.pricing_kernel import pricing_kernel

    pol = policy or PricingPolicy()
    r = resolve_loans(loans, pol)
    n = r.p.size
    s = pol.reinsurance_share
    n_periods = int(math.ceil(float(r.tenor.max())))
    if cumulative_pd is not None:
        cumulative_pd = np.asarray(cumulative_pd, dtype=float)
        if cumulative_pd.shape != (n, n_periods):
            raise ValueError(f"cumulative_pd must have shape {(n, n_periods)}")
    w_el = r.coverage * r.lgd * (1.0 - s) * r.amount
    w_coc = pol.hurdle_rate * r.k * r.coverage * (1.0 - s) * r.amount
    kern = (kernel or pricing_kernel)(r.p, r.tenor, r.code, r.rate, w_el, w_coc, pol.discount_rate, cumulative_pd)
    base_pv = kern.base_pv * r.coverage * r.amount
    base_nominal = kern.base_nominal * r.coverage * r.amount
    admin_pv = pol.admin_cost_rate * base_pv
    cost_pv = kern.el_pv + kern.coc_pv + admin_pv
    out: dict[str, Any] = {}
    if "loan_id" in loans:
        ids = loans["loan_id"]
        out["loan_id"] = ids.array if isinstance(ids, pd.Series) else _column(loans, "loan_id", n, "")
    out.update(
        pd=r.p, amount=r.amount, tenor_years=r.tenor, coverage=r.coverage, lgd=r.lgd,
        amortization=pd.Categorical.from_codes(r.code, AMORTIZATIONS), rate=r.rate, sales=r.sales, secured=r.secured,
        irb_k=r.k, risk_weight=12.5 * r.k, capital=r.k * r.coverage * r.amount * (1.0 - s),
        cum_pd=1.0 - kern.survival, el_pv=kern.el_pv, coc_pv=kern.coc_pv, admin_pv=admin_pv, fee_base_pv=base_pv,
        break_even_rate=cost_pv / base_pv,
    )
    if schedule is not None:
        out.update(apply_schedule(r, schedule, base_pv, base_nominal, cost_pv, out["break_even_rate"]))
    index = loans.index if isinstance(loans, pd.DataFrame) else None
    return pd.DataFrame(out, index=index, copy=False)


def quote(policy: PricingPolicy | None = None, schedule: FeeSchedule | None = None, **loan: Any) -> dict[str, Any]:
    """Price one loan given as keyword arguments (same names as :func:`price_loans` columns)."""
    frame = price_loans({k: np.asarray([v]) for k, v in loan.items()}, policy, schedule)
    row = frame.iloc[0].to_dict()
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
