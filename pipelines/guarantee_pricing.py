"""Guarantee pricing steps the CLI calls: a quote from given terms, a quote of a stored
loan as of a date, and a file of loans priced with its category summary and totals.

Each step lives here once; ``creditdb guarantee quote|price`` only parse options, call
these and print. Rates are fractions p.a. of the covered outstanding (``models.pricing``),
amounts in currency units, PD the one-year probability of default.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import Connection, select

from creditdb.anonymise import Key
from models.fee_schedule import FeeSchedule, coverage_problem
from models.pricing import PricingPolicy, price_loans, validate_loans
from pipelines.guarantees import GuaranteeDataError, build_book, category_summary, price_book_frame, totals
from pipelines.sales_eur import SalesConversionError, with_sales_eur_m

#: quote field -> command-line option, for messages
QUOTE_OPTION = {"pd": "--pd", "tenor_years": "--tenor", "amount": "--amount", "coverage": "--coverage",
                "lgd": "--lgd", "rate": "--rate", "sales": "--sales", "instalments": "--instalments",
                "amortization": "--amortization", "sales_currency": "--sales-currency",
                "sales_date": "--sales-date"}

def _row(frame: pd.DataFrame) -> dict[str, Any]:
    """First row of a priced frame as plain Python values (categoricals as text)."""
    row = frame.iloc[0].to_dict()
    out = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    for k in ("category", "amortization"):
        if k in out:
            out[k] = str(out[k])
    return out


def quote_terms(loan: dict[str, Any], policy: PricingPolicy, schedule: FeeSchedule) -> dict[str, Any]:
    """Price one guarantee given its terms (``price_loans`` column names; missing = policy default).

    Raises :class:`GuaranteeDataError` whose problems name the option of every invalid field.
    """
    df = pd.DataFrame([{"loan_id": "quote", **loan}])
    problems = [{"field": p.field, "option": QUOTE_OPTION.get(p.field, "--" + p.field), "message": p.message}
                for p in validate_loans(df)]
    if not problems:
        try:
            df = with_sales_eur_m(df, policy, date_hint="--sales-date DATE (the fiscal year end of the sales figure)")
        except SalesConversionError as exc:
            problems += [{"field": p["field"], "option": QUOTE_OPTION.get(p["field"], "--" + p["field"]),
                          "message": p["message"]} for p in exc.problems]
    cov = float(loan["coverage"]) if loan.get("coverage") is not None else policy.coverage
    if not problems and (msg := coverage_problem(schedule, cov)):
        problems.append({"field": "coverage", "option": "--coverage", "message": msg})
    if problems:
        raise GuaranteeDataError("; ".join(f"{p['option']}: {p['message']}" for p in problems), problems)
    row = _row(price_loans(df, policy, schedule))
    row.pop("loan_id", None)
    return row


def stored_loan_id(conn: Connection, key: Key, bank: str, loan_key: str) -> int:
    """Id of the loan a bank submitted under its own ``loan_key`` (latest submission)."""
    from creditdb import anonymise as anon
    from creditdb import lookups
    from creditdb.schema import Loan

    inst = lookups.institution(conn, bank)
    if inst is None:
        raise GuaranteeDataError(f"unknown institution {bank!r}")
    h = anon.loan_hash(key, bank, pd.Series([loan_key], dtype=object)).iloc[0]
    lid = conn.execute(select(Loan.id).where((Loan.institution_id == inst.id) & (Loan.loan_hash == h))
                       .order_by(Loan.id.desc()).limit(1)).scalar()
    if lid is None:
        raise GuaranteeDataError(f"loan {bank}:{loan_key}: loan_key: no loan with this key was submitted by {bank}")
    return int(lid)


def quote_stored_loan(conn: Connection, key: Key, bank: str, loan_key: str, policy: PricingPolicy,
                      schedule: FeeSchedule, as_of: dt.date | None = None,
                      coverage: float | None = None) -> dict[str, Any]:
    """Quote a guarantee on a stored loan as of ``as_of`` (default today): the same book
    step as ``price-book`` and ``issue`` (remaining term, balance at the date, status).

    Returns ``{"loan": {loan_id, firm_id, bank, as_of, maturity_date, ...}, "quote": row}``;
    a loan that cannot be guaranteed raises :class:`GuaranteeDataError` with the reason.
    """
    lid = stored_loan_id(conn, key, bank, loan_key)
    cov = None if coverage is None else {lid: float(coverage)}
    book = build_book(conn, policy.currency, policy.coverage, loan_ids=[lid], coverage=cov, as_of=as_of,
                      schedule=schedule)
    if len(book.excluded):
        raise GuaranteeDataError(f"loan {bank}:{loan_key}: {book.excluded['reason'].iloc[0]}",
                                 [{"loan_id": lid, "status": book.excluded["status"].iloc[0],
                                   "message": book.excluded["reason"].iloc[0]}])
    if book.loans.empty:
        raise GuaranteeDataError(f"loan {bank}:{loan_key}: score.pd: the firm has no score from the approved model "
                                 f"{book.model_version['version']}")
    priced = price_book_frame(book.loans, policy, schedule)
    row = _row(priced)
    keys = ("loan_id", "firm_id", "institution", "score_id", "score_fee_category", "grade", "maturity_date",
            "original_tenor_years", "amount_original")
    loan: dict[str, Any] = {k: row.pop(k) for k in keys if k in row}
    loan.update(bank=bank, as_of=book.as_of.isoformat() if book.as_of else None,
                model_version=book.model_version["version"])
    return {"loan": loan, "quote": row}


def price_file(loans: pd.DataFrame, policy: PricingPolicy, schedule: FeeSchedule,
               sales_date: dt.date | None = None) -> dict[str, Any]:
    """Price a file's loans (already checked with ``validate_loans``); coverages the
    schedule does not price raise :class:`GuaranteeDataError` naming the rows. Sales are
    converted to EUR by :func:`with_sales_eur_m` (``sales_date`` for rows without one).

    Returns ``{"priced": frame (price_loans output, cost_pv, the file's extra columns),
    "by_category": [...], "total": {...}}``.
    """
    cov = pd.to_numeric(loans["coverage"], errors="coerce").fillna(policy.coverage) if "coverage" in loans \
        else pd.Series(policy.coverage, index=loans.index)
    bad = ~schedule.coverage_ok(cov.to_numpy(dtype=float))
    if bad.any():
        ids = loans["loan_id"].astype(str).to_numpy() if "loan_id" in loans else (loans.index + 1).astype(str)
        probs = [{"row": int(i) + 2, "loan_id": str(ids[i]), "field": "coverage",
                  "message": str(coverage_problem(schedule, float(cov.iloc[i])))} for i in bad.nonzero()[0][:50]]
        raise GuaranteeDataError(f"{int(bad.sum())} loan(s) with a coverage the schedule does not price:\n  "
                                 + "\n  ".join(f"row {p['row']} (loan_id {p['loan_id']}): coverage: {p['message']}"
                                               for p in probs), probs)
    try:
        loans = with_sales_eur_m(loans, policy, sales_date)
    except SalesConversionError as exc:
        raise GuaranteeDataError(str(exc), exc.problems) from exc
    priced = price_loans(loans, policy, schedule)
    priced["cost_pv"] = priced["el_pv"] + priced["coc_pv"] + priced["admin_pv"]
    for c in [c for c in loans.columns if c not in priced.columns]:
        priced[c] = loans[c].to_numpy()
    return {"priced": priced, "by_category": category_summary(priced), "total": totals(priced)}
