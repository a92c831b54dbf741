"""Guarantee pricing on stored data: scores of the approved model, loans, statements.

Reads what the rating pipeline stored (``model_version``, ``score``) and the banks'
loans and statements, and builds the loan tables that :func:`models.pricing.price_loans`
and :func:`models.portfolio.simulate_portfolio` take. Conventions:

* PD: one-year PD of the firm's LATEST score (greatest ``scored_at``, then id) from the
  model version whose status is ``approved`` (if several are approved, the most
  recently approved). Candidate and retired models are ignored.
* Tenor (years) = (maturity_date - origination_date) in days / 365.25.
* Amount (currency units) = ``outstanding`` when present, else ``amount``.
* Coverage = the loan's ``guarantee_coverage`` when present and non-zero, else the policy
  default (0 in a submission means "no guarantee yet": the guarantee priced is the default).
* Repaid loans (``outstanding`` = 0) have nothing to guarantee: they are left out and
  counted in ``Book.repaid_loans``. Loans of firms already in default (score PD = 1, the
  default grade) cannot get a new guarantee: left out and counted in
  ``Book.defaulted_loans``.
* LGD by the loan's ``secured`` flag from the pricing policy; rate = ``interest_rate``.
* Sales (firm-size adjustment) = sales of the firm's latest statement (latest
  ``fiscal_year_end``, then latest row), annualised (x 12 / months), in currency units;
  ``price_loans`` converts them to EUR with the policy's ``units_per_eur``. A statement
  or loan in another currency than the policy's is rejected (no FX table is configured).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, select

from creditdb import lookups
from creditdb.bulk import lookup
from creditdb.schema import FinancialStatement, Institution, Loan

#: loan-table field -> where it comes from in the database (for error messages)
SOURCE_FIELD = {
    "pd": "score.pd",
    "amount": "loan.outstanding/amount",
    "tenor_years": "loan.maturity_date (tenor from origination_date)",
    "coverage": "loan.guarantee_coverage",
    "rate": "loan.interest_rate",
    "amortization": "loan.amortization",
    "secured": "loan.secured",
    "sales": "financial_statement.sales",
    "currency": "loan.currency",
}


class GuaranteeDataError(ValueError):
    """Stored data cannot be priced; ``problems`` name loan and field."""

    def __init__(self, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass
class Book:
    """Loans ready for pricing (columns of ``price_loans``) and what was left out."""

    loans: pd.DataFrame
    model_version: dict[str, Any]
    unscored_loans: int = 0
    repaid_loans: int = 0
    defaulted_loans: int = 0
    notes: list[str] = field(default_factory=list)


def frame_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's CSV text (for audit input/output hashes)."""
    return hashlib.sha256(frame.to_csv(index=False, float_format="%.17g").encode("utf-8")).hexdigest()


def approved_model(conn: Connection) -> dict[str, Any] | None:
    """The approved model version (id, version), or None (:func:`creditdb.lookups.approved_model`)."""
    row = lookups.approved_model(conn)
    return None if row is None else {"id": int(row.id), "version": row.version}


def latest_scores(conn: Connection, model_version_id: int, firm_ids: list[int] | None = None) -> pd.DataFrame:
    """Latest score per firm of one model: firm_id, score_id, pd, grade, fee_category, scored_at."""
    return lookups.latest_scores(conn, model_version_id, firm_ids)


def latest_sales(conn: Connection, firm_ids: list[int]) -> pd.DataFrame:
    """Annualised sales (currency units) and currency of each firm's latest statement."""
    names = ["firm_id", "id", "fiscal_year_end", "months", "currency", "sales"]
    if not firm_ids:
        return pd.DataFrame(columns=names)
    df = lookup(conn, FinancialStatement.__table__, "firm_id", [int(f) for f in firm_ids], names)
    if df.empty:
        return df
    df = df.sort_values(["firm_id", "fiscal_year_end", "id"], kind="stable").drop_duplicates("firm_id", keep="last")
    months = pd.to_numeric(df["months"], errors="coerce").fillna(12).replace(0, 12)
    df["sales"] = df["sales"].astype(float) * 12.0 / months
    return df.rename(columns={"currency": "statement_currency"})[["firm_id", "sales", "statement_currency"]]


def _require_model(conn: Connection) -> dict[str, Any]:
    mv = approved_model(conn)
    if mv is None:
        raise GuaranteeDataError("no approved rating model: approve a model version first (creditdb model)")
    return mv


def loans_frame(
    conn: Connection, institution: str | None = None, loan_ids: list[int] | None = None
) -> pd.DataFrame:
    """Stored loans (optionally of one institution or by id) with their institution code."""
    l, i = Loan.__table__.c, Institution.__table__.c
    stmt = select(l.id, l.firm_id, i.code.label("institution"), l.origination_date, l.maturity_date, l.currency,
                  l.amount, l.outstanding, l.interest_rate, l.amortization, l.secured, l.guarantee_coverage
                  ).join(Institution.__table__, i.id == l.institution_id).order_by(l.id)
    if institution is not None:
        stmt = stmt.where(i.code == institution)
    if loan_ids is not None:
        stmt = stmt.where(l.id.in_([int(x) for x in loan_ids]))
    cols = ["loan_id", "firm_id", "institution", "origination_date", "maturity_date", "currency", "amount_orig",
            "outstanding", "rate", "amortization", "secured", "guarantee_coverage"]
    return pd.DataFrame(conn.execute(stmt).all(), columns=cols)


def build_book(conn: Connection, currency: str, coverage_default: float, institution: str | None = None,
               loan_ids: list[int] | None = None, coverage: dict[int, float] | None = None) -> Book:
    """Pricing inputs of stored loans whose firm has a score from the approved model.

    ``coverage``: loan id -> coverage overriding the loan's own. Raises
    :class:`GuaranteeDataError` when there is no approved model or a loan's data cannot
    be priced (every problem names the loan and the database field).
    """
    mv = _require_model(conn)
    raw = loans_frame(conn, institution, loan_ids)
    firm_ids = sorted(set(raw["firm_id"].astype(int))) if not raw.empty else []
    scores = latest_scores(conn, mv["id"], firm_ids)
    scored = raw.merge(scores, on="firm_id", how="inner") if not scores.empty else raw.iloc[0:0].assign(
        score_id=pd.Series(dtype="int64"), pd=pd.Series(dtype=float), grade=pd.Series(dtype=object),
        fee_category=pd.Series(dtype="int64"), scored_at=pd.Series(dtype=object))
    repaid = scored["outstanding"].notna() & (scored["outstanding"].astype(float) == 0.0)
    defaulted = ~repaid & (scored["pd"].astype(float) >= 1.0)
    scored = scored[~repaid & ~defaulted].sort_values("loan_id", kind="stable").reset_index(drop=True)
    sales = latest_sales(conn, sorted(set(scored["firm_id"].astype(int))))
    if not sales.empty:
        scored = scored.merge(sales, on="firm_id", how="left")
    else:
        scored["sales"] = np.nan
        scored["statement_currency"] = None
    book = pricing_inputs(scored, currency, coverage_default, coverage)
    return Book(loans=book, model_version=mv,
                unscored_loans=int(len(raw) - len(scored) - repaid.sum() - defaulted.sum()),
                repaid_loans=int(repaid.sum()), defaulted_loans=int(defaulted.sum()))


def pricing_inputs(scored: pd.DataFrame, currency: str, coverage_default: float,
                   coverage: dict[int, float] | None = None) -> pd.DataFrame:
    """Turn joined loan/score/statement rows into ``price_loans`` columns; check them."""
    from models.pricing import validate_loans

    orig = pd.to_datetime(scored["origination_date"])
    mat = pd.to_datetime(scored["maturity_date"])
    amount = scored["outstanding"].astype(float).where(scored["outstanding"].notna(), scored["amount_orig"])
    cov = scored["guarantee_coverage"].astype(float)
    cov = cov.where(cov.notna() & (cov != 0.0), coverage_default)
    if coverage:
        cov = pd.Series([coverage.get(int(i), c) for i, c in zip(scored["loan_id"], cov, strict=True)],
                        index=scored.index, dtype=float)
    sales = scored["sales"].astype(float)
    out = pd.DataFrame({
        "loan_id": scored["loan_id"].astype("int64"),
        "firm_id": scored["firm_id"].astype("int64"),
        "institution": scored["institution"].astype(str),
        "score_id": scored["score_id"].astype("int64"),
        "score_fee_category": scored["fee_category"].astype("int64"),
        "grade": scored["grade"].astype(str),
        "pd": scored["pd"].astype(float),
        "amount": amount.astype(float),
        "tenor_years": ((mat - orig).dt.days / 365.25).astype(float),
        "coverage": cov,
        "amortization": scored["amortization"].astype(str),
        "rate": scored["rate"].astype(float),
        "secured": scored["secured"].astype(bool),
        "sales": sales,
        "no_statements": scored["statement_currency"].isna().to_numpy() if "statement_currency" in scored
        else np.ones(len(scored), dtype=bool),
    })
    problems: list[dict[str, Any]] = []

    def add(idx: int, fld: str, msg: str) -> None:
        problems.append({"loan_id": int(out["loan_id"].iloc[idx]), "institution": out["institution"].iloc[idx],
                         "field": SOURCE_FIELD.get(fld, fld), "message": msg})

    for idx in np.flatnonzero((scored["currency"].astype(str) != currency).to_numpy()):
        add(int(idx), "currency", f"loan currency {scored['currency'].iloc[idx]!r} is not the policy currency "
                                  f"{currency!r}")
    stc = scored["statement_currency"] if "statement_currency" in scored else pd.Series([None] * len(scored))
    bad_st = (stc.notna() & (stc.astype(str) != currency)).to_numpy()
    for idx in np.flatnonzero(bad_st):
        add(int(idx), "sales", f"latest statement is in {stc.iloc[idx]!r}, not the policy currency {currency!r}")
    for p in validate_loans(out, limit=50, required=("pd", "amount", "tenor_years")):
        add(p.row - 2, p.field, p.message)
    if problems:
        lines = [f"loan {p['loan_id']} ({p['institution']}): {p['field']}: {p['message']}" for p in problems[:50]]
        raise GuaranteeDataError(f"{len(problems)} loan field(s) cannot be priced:\n  " + "\n  ".join(lines),
                                 problems)
    return out


def price_book(engine: Engine, policy: Any, schedule: Any, institution: str | None = None,
               migration: Any = None) -> tuple[pd.DataFrame, Book]:
    """Price every stored loan (of ``institution``) whose firm has an approved-model score.

    ``migration``: a :class:`models.migration.MigrationEstimate` for the PD term
    structure (default: constant hazard from the one-year PD).
    Returns the priced frame (``price_loans`` output plus loan_id, firm_id, institution,
    score_id, score_fee_category, grade, model_version, cost_pv) and the book.
    """
    with engine.connect() as conn:
        book = build_book(conn, policy.currency, policy.coverage, institution)
    if book.loans.empty:
        return book.loans.copy(), book
    priced = price_book_frame(book.loans, policy, schedule, migration)
    priced["model_version"] = book.model_version["version"]
    return priced, book


def migration_cumulative_pd(loans: pd.DataFrame, migration: Any) -> np.ndarray:
    """Cumulative PDs (n_loans, ceil(max tenor)) from the firms' grades and one-year PDs."""
    import math

    from models.migration import cumulative_pd_for_loans

    pos = {g: i for i, g in enumerate(migration.grades)}
    unknown = sorted(set(loans["grade"].astype(str)) - set(pos))
    if unknown:
        raise GuaranteeDataError(f"grades {unknown} are not in the migration matrix ({migration.grades})")
    years = int(math.ceil(float(loans["tenor_years"].max())))
    gi = loans["grade"].astype(str).map(pos).to_numpy(dtype=np.int64)
    return cumulative_pd_for_loans(loans["pd"].to_numpy(dtype=float), gi, migration.matrix, years)


def price_book_frame(loans: pd.DataFrame, policy: Any, schedule: Any, migration: Any = None) -> pd.DataFrame:
    """``price_loans`` on a book, with the identifying columns kept."""
    from models.pricing import price_loans

    cols = ["loan_id", "pd", "amount", "tenor_years", "coverage", "amortization", "rate", "secured", "sales",
            "no_statements"]
    cum = None if migration is None else migration_cumulative_pd(loans, migration)
    priced = price_loans(loans[cols], policy, schedule, cumulative_pd=cum)
    priced["cost_pv"] = priced["el_pv"] + priced["coc_pv"] + priced["admin_pv"]
    for c in ("firm_id", "institution", "score_id", "score_fee_category", "grade"):
        priced.insert(1, c, loans[c].to_numpy())
    return priced


def category_summary(priced: pd.DataFrame) -> list[dict[str, Any]]:
    """Fees by category: loans, amount, fee charged, break-even and charged rate, subsidy PV."""
    if priced.empty:
        return []
    g = priced.groupby("category", observed=True, sort=False)
    agg = g.agg(loans=("pd", "size"), amount=("amount", "sum"), fee_charged=("fee_charged", "sum"),
                fee_charged_pv=("fee_charged_pv", "sum"), fee_base_pv=("fee_base_pv", "sum"),
                cost_pv=("cost_pv", "sum"), subsidy_gap_pv=("subsidy_gap_pv", "sum"))
    rows = []
    for cat in [c for c in priced["category"].cat.categories if c in agg.index]:
        r = agg.loc[cat]
        rows.append({"category": str(cat), "loans": int(r["loans"]), "amount": float(r["amount"]),
                     "fee_charged": float(r["fee_charged"]), "break_even_rate": float(r["cost_pv"] / r["fee_base_pv"]),
                     "charged_rate": float(r["fee_charged_pv"] / r["fee_base_pv"]),
                     "subsidy_gap_pv": float(r["subsidy_gap_pv"])})
    return rows


def totals(priced: pd.DataFrame) -> dict[str, Any]:
    """Book totals (currency units; rates fractions p.a. of covered outstanding)."""
    base = float(priced["fee_base_pv"].sum()) if len(priced) else 0.0
    return {
        "loans": int(len(priced)),
        "amount": float(priced["amount"].sum()),
        "fee_charged": float(priced["fee_charged"].sum()),
        "expected_loss_pv": float(priced["el_pv"].sum()),
        "break_even_rate": float(priced["cost_pv"].sum() / base) if base else None,
        "charged_rate": float(priced["fee_charged_pv"].sum() / base) if base else None,
        "subsidy_gap_pv": float(priced["subsidy_gap_pv"].sum()),
    }


def portfolio_inputs(book: pd.DataFrame, policy: Any) -> dict[str, np.ndarray]:
    """Arrays for ``simulate_portfolio``: PD, LGD by secured flag, EAD = covered outstanding
    net of reinsurance (currency units), sales in EUR millions."""
    secured = book["secured"].to_numpy(dtype=bool)
    return {
        "pd": book["pd"].to_numpy(dtype=float),
        "lgd": np.where(secured, policy.lgd_secured, policy.lgd_unsecured),
        "ead": book["amount"].to_numpy(dtype=float) * book["coverage"].to_numpy(dtype=float)
        * (1.0 - policy.reinsurance_share),
        "sales_eur_m": book["sales"].to_numpy(dtype=float) / policy.units_per_eur / 1e6,
    }


def issued_book(conn: Connection, policy: Any) -> Book:
    """Loans with an issued guarantee, coverage as issued, PD from the approved model."""
    from creditdb.schema import Guarantee

    g = Guarantee.__table__.c
    rows = conn.execute(select(g.loan_id, g.coverage).order_by(g.id)).all()
    if not rows:
        raise GuaranteeDataError("no guarantees issued yet: creditdb guarantee issue --help")
    cov = {int(r.loan_id): float(r.coverage) for r in rows}
    book = build_book(conn, policy.currency, policy.coverage, loan_ids=list(cov), coverage=cov)
    missing = sorted(set(cov) - set(book.loans["loan_id"].astype(int)))
    if missing:
        raise GuaranteeDataError(
            f"guaranteed loan(s) {', '.join(map(str, missing[:20]))}: score.pd: the firm has no score from the "
            "approved model", [{"loan_id": m, "field": "score.pd", "message": "no approved-model score"}
                               for m in missing])
    return book


def firm_score(conn: Connection, key: bytes, institution: str, borrower_key: str) -> dict[str, Any]:
    """Approved model's latest score of the firm a bank knows by ``borrower_key``.

    Returns firm_id, score_id, pd, grade, fee_category, scored_at, model_version and the
    annualised ``sales`` / ``statement_currency`` of the firm's latest statement (None if none).
    """
    inst = lookups.institution(conn, institution)
    if inst is None:
        raise GuaranteeDataError(f"unknown institution {institution!r}")
    firm_id = lookups.firm_ids_by_borrower_key(conn, key, inst, pd.Series([borrower_key], dtype=object)).iloc[0]
    if pd.isna(firm_id):
        raise GuaranteeDataError(f"unknown borrower {institution}:{borrower_key}: no firm was submitted under "
                                 "this borrower key")
    mv = _require_model(conn)
    sc = latest_scores(conn, mv["id"], [int(firm_id)])
    if sc.empty:
        raise GuaranteeDataError(f"borrower {institution}:{borrower_key} (firm {firm_id}): no score from the "
                                 f"approved model {mv['version']}")
    row = sc.iloc[0]
    sales = latest_sales(conn, [int(firm_id)])
    return {"firm_id": int(firm_id), "score_id": int(row["score_id"]), "pd": float(row["pd"]),
            "grade": str(row["grade"]), "fee_category": int(row["fee_category"]), "scored_at": row["scored_at"],
            "model_version": mv["version"], "model_version_id": mv["id"],
            "sales": None if sales.empty else float(sales["sales"].iloc[0]),
            "statement_currency": None if sales.empty else str(sales["statement_currency"].iloc[0])}


def demo_guarantees(engine: Engine, schedule: str = "japan", scenarios: int = 10_000, seed: int = 0,
                    say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Price the stored loans with the approved model's scores and simulate the book.

    Call after training, approving and scoring. Returns ``{"loans_priced", "unscored_loans",
    "schedule", "currency", "model_version", "by_category", "total_subsidy_gap_pv",
    "portfolio": {expected_loss, var_999, ...}}`` (amounts in currency units); prints the
    same with ``say`` (e.g. ``click.echo``) when given. Appends one audit event.
    """
    from models.fee_schedule import load_schedule
    from models.portfolio import simulate_portfolio
    from models.pricing import load_policy

    pol = load_policy()
    sched = load_schedule(schedule)
    priced, book = price_book(engine, pol, sched)
    if priced.empty:
        raise GuaranteeDataError("no stored loan has a score from the approved model")
    result = simulate_portfolio(n_scenarios=scenarios, seed=seed, **portfolio_inputs(book.loans, pol))
    cats = category_summary(priced)
    tot = totals(priced)
    out = {
        "loans_priced": tot["loans"], "unscored_loans": book.unscored_loans, "repaid_loans": book.repaid_loans,
        "defaulted_loans": book.defaulted_loans,
        "schedule": sched.name,
        "currency": pol.currency, "model_version": book.model_version["version"], "by_category": cats,
        "total_subsidy_gap_pv": tot["subsidy_gap_pv"], "break_even_rate": tot["break_even_rate"],
        "charged_rate": tot["charged_rate"],
        "portfolio": {"scenarios": scenarios, "seed": seed, "total_exposure": result.total_exposure,
                      "expected_loss": result.expected_loss, "var_99": result.quantiles[0.99],
                      "var_999": result.quantiles[0.999], "es_999": result.expected_shortfall[0.999]},
    }
    record_run(engine, "guarantee.demo", {"schedule": sched.name, "model_version": out["model_version"],
                                          "loans": tot["loans"], "scenarios": scenarios, "seed": seed},
               frame_hash(book.loans), frame_hash(priced))
    if say:
        cur = pol.currency
        say(f"guarantee pricing ({sched.name} schedule, model {out['model_version']}): "
            f"{tot['loans']:,} loans priced, {book.unscored_loans:,} without an approved-model score, "
            f"{book.repaid_loans:,} repaid, {book.defaulted_loans:,} of firms in default")
        say(f"  {'category':>8} {'loans':>7} {'fee charged':>16} {'break-even':>10} {'charged':>8} {'subsidy PV':>16}")
        for r in cats:
            say(f"  {r['category']:>8} {r['loans']:>7,} {r['fee_charged']:>16,.0f} {r['break_even_rate']:>10.3%} "
                f"{r['charged_rate']:>8.3%} {r['subsidy_gap_pv']:>16,.0f}")
        say(f"  total subsidy gap (PV) {tot['subsidy_gap_pv']:,.0f} {cur}")
        say(f"  portfolio ({scenarios:,} scenarios): expected loss {result.expected_loss:,.0f}, "
            f"99.9% loss {result.quantiles[0.999]:,.0f} {cur}")
    return out


def record_run(engine: Engine, action: str, details: dict[str, Any], input_hash: str, output_hash: str) -> int:
    """Append one audit event for a pricing run (own transaction); returns its id."""
    from creditdb import audit
    from creditdb.settings import get_settings

    with engine.begin() as conn:
        return audit.append(conn, get_settings().actor, action, details, input_hash, output_hash)
