"""A loan's terms as of a date: whether it can be guaranteed, remaining term and balance.

One function, :func:`loan_status`, decides whether a stored loan can carry a guarantee
on a given date; ``guarantee price-book``, ``issue`` and ``quote --loan-of`` all call it
(through ``pipelines.guarantee_book``), so they cannot disagree about a loan.

Conventions
-----------
* Dates are calendar dates; years are ``days / 365.25``.
* A loan is, on the as-of date ``D`` (checked in this order):

  - ``in_default``: its firm has a default event on or before ``D`` (or the approved
    model's latest score says PD = 1, the default grade). Such a loan is exposure in
    default: the agency's expected claim on it is ``EAD x coverage x LGD``; it cannot get
    a new guarantee and is not priced as one.
  - ``not_started``: originated after ``D``;
  - ``matured``: maturity on or before ``D`` (and after origination: a maturity before
    origination is a data error that pricing reports);
  - ``repaid``: ``outstanding`` is 0;
  - ``live`` otherwise.

* Remaining term of a live loan = (maturity - D) / 365.25 years.
* Balance at ``D`` (currency units): the bank's reported ``outstanding`` when given (the
  submission is the bank's latest view of the loan), else the contractual balance of the
  original ``amount`` on the loan's own schedule at ``D`` (bullet: the amount; linear and
  annuity: :func:`models.pricing.outstanding` at the elapsed time).
* From ``D`` on, the loan amortises on its own schedule: for bullet, linear and annuity
  loans the balance path of the original loan after ``D``, scaled to the balance at
  ``D``, is exactly that of a loan of that balance over the remaining term with the same
  amortisation and rate, which is what pricing is given.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

STATUSES = ("live", "in_default", "not_started", "matured", "repaid")
DAYS_PER_YEAR = 365.25


def _dates(values: Any, n: int) -> np.ndarray:
    arr = pd.to_datetime(pd.Series(values) if not np.isscalar(values) else pd.Series([values] * n))
    return arr.to_numpy(dtype="datetime64[D]")


def loan_status(
    origination: Any,
    maturity: Any,
    outstanding: Any,
    as_of: Any,
    default_date: Any = None,
    score_in_default: Any = None,
) -> np.ndarray:
    """Status (one of :data:`STATUSES`) of each loan on the date ``as_of``.

    ``origination``, ``maturity``: dates per loan; ``outstanding``: reported balance
    (NaN/None = not reported); ``default_date``: the firm's first default date per loan
    (NaT/None = none); ``score_in_default``: bool per loan, the firm's latest approved
    score is the default grade (PD = 1).
    """
    orig = _dates(origination, 0)
    n = orig.size
    mat = _dates(maturity, n)
    day = np.datetime64(pd.Timestamp(as_of).date(), "D")
    out = pd.to_numeric(pd.Series(outstanding, dtype=object), errors="coerce").to_numpy(dtype=float) \
        if n else np.zeros(0)
    in_default = np.zeros(n, dtype=bool)
    if default_date is not None:
        dd = pd.to_datetime(pd.Series(default_date)).to_numpy(dtype="datetime64[D]")
        in_default |= ~np.isnat(dd) & (dd <= day)
    if score_in_default is not None:
        in_default |= np.asarray(score_in_default, dtype=bool)
    status = np.full(n, "live", dtype=object)
    status[out == 0.0] = "repaid"
    status[(mat <= day) & (mat > orig)] = "matured"  # maturity before origination: a data error, priced
    # as live so that the tenor check reports it
    status[orig > day] = "not_started"
    status[in_default] = "in_default"
    return status


def remaining_terms(
    origination: Any,
    maturity: Any,
    amount: Any,
    outstanding: Any,
    amortization_code: Any,
    rate: Any,
    as_of: Any,
) -> pd.DataFrame:
    """Remaining term (years), elapsed time (years), original tenor (years) and the
    balance at ``as_of`` (currency units) of each loan (see the module docstring).

    Meaningful for live loans; for others the remaining term is clipped at 0.
    """
    from models.pricing import outstanding as schedule_balance

    orig = _dates(origination, 0)
    n = orig.size
    mat = _dates(maturity, n)
    day = np.datetime64(pd.Timestamp(as_of).date(), "D")
    tenor = (mat - orig).astype(float) / DAYS_PER_YEAR
    elapsed = np.clip(np.asarray(day - orig).astype(float) / DAYS_PER_YEAR, 0.0, None)
    remaining = np.clip(np.asarray(mat - day).astype(float) / DAYS_PER_YEAR, 0.0, None)
    remaining = np.minimum(remaining, tenor)
    amt = np.asarray(amount, dtype=float)
    rep = pd.to_numeric(pd.Series(outstanding, dtype=object), errors="coerce").to_numpy(dtype=float) \
        if n else np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        contractual = schedule_balance(amt, tenor, np.asarray(amortization_code), np.asarray(rate, dtype=float),
                                       elapsed)
    balance = np.where(np.isnan(rep), contractual, rep)
    return pd.DataFrame({"tenor_years_original": tenor, "elapsed_years": elapsed, "remaining_years": remaining,
                         "balance": balance, "balance_source": np.where(np.isnan(rep), "schedule", "reported")})


def expected_claim(ead: Any, coverage: Any, lgd: Any) -> np.ndarray:
    """Agency's expected claim on a loan in default: EAD x coverage x LGD (currency units)."""
    return np.asarray(ead, dtype=float) * np.asarray(coverage, dtype=float) * np.asarray(lgd, dtype=float)


def default_message(firm: Any, default_since: Any = None) -> str:
    """The refusal for a firm in default (``default_since`` None: the model's default grade)."""
    since = f"since {default_since}" if default_since is not None and not pd.isna(default_since) \
        else "(the approved model's latest score is the default grade)"
    return f"firm {firm} has been in default {since}: a guarantee cannot be priced"


def refusal(status: str, *, firm: Any = None, maturity: Any = None, as_of: Any = None, default_since: Any = None,
            origination: Any = None) -> str:
    """Why a loan of this status cannot be guaranteed (the message every command prints)."""
    if status == "in_default":
        return default_message(firm, default_since)
    if status == "matured":
        return f"maturity_date: loan matured on {maturity} (as of {as_of})"
    if status == "repaid":
        return "outstanding: the loan is repaid (outstanding 0)"
    if status == "not_started":
        return f"origination_date: the loan starts on {origination}, after {as_of}"
    raise ValueError(f"a {status} loan can be guaranteed")


def refusals(status: Any, *, firm: Any, maturity: Any, origination: Any, default_since: Any,
             as_of: Any) -> np.ndarray:
    """:func:`refusal` for many loans at once (str array; "" for live loans), built per
    status group with vectorised string operations (a book has millions of matured loans)."""
    st = np.asarray(status, dtype=object)
    out = np.full(st.size, "", dtype=object)
    firm_s = pd.Series(firm).astype(str).to_numpy(dtype=object)
    mat_s = pd.to_datetime(pd.Series(maturity)).dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    orig_s = pd.to_datetime(pd.Series(origination)).dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    since = pd.to_datetime(pd.Series(default_since, dtype=object))
    since_s = since.dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    day = str(pd.Timestamp(as_of).date())
    m = st == "matured"
    out[m] = "maturity_date: loan matured on " + mat_s[m] + f" (as of {day})"
    m = st == "repaid"
    out[m] = "outstanding: the loan is repaid (outstanding 0)"
    m = st == "not_started"
    out[m] = "origination_date: the loan starts on " + orig_s[m] + f", after {day}"
    m = st == "in_default"
    dated = m & since.notna().to_numpy()
    out[dated] = "firm " + firm_s[dated] + " has been in default since " + since_s[dated] + \
        ": a guarantee cannot be priced"
    undated = m & ~dated
    out[undated] = "firm " + firm_s[undated] + \
        " has been in default (the approved model's latest score is the default grade): a guarantee cannot be priced"
    return out
