"""Guarantee pricing on stored data: scores of the approved model, loans, statements.

Reads what the rating pipeline stored (``model_version``, ``score``) and the banks'
loans and statements, and builds the loan tables that :func:`models.pricing.price_loans`
and :func:`models.portfolio.simulate_portfolio` take. Conventions:

* PD: one-year PD of the firm's LATEST score (greatest ``scored_at``, then id) from the
  model version whose status is ``approved`` (if several are approved, the most
  recently approved). Candidate and retired models are ignored.
* The book is taken AS OF a date (default today): each loan's status on that date comes
  from :func:`models.loan_terms.loan_status` — matured, repaid (``outstanding`` = 0) and
  not yet started loans are left out and counted; loans of firms in default (a default
  event on or before the date, or the approved model's default grade, PD = 1) are left
  out of pricing and reported as exposure in default with the expected claim
  EAD x coverage x LGD (``Book.in_default``).
* Live loans are priced on their remaining term: tenor (years) = (maturity_date - as-of
  date) in days / 365.25; amount (currency units) = ``outstanding`` when present, else the
  contractual balance of ``amount`` at the as-of date on the loan's own schedule
  (:func:`models.loan_terms.remaining_terms`).
* Coverage = the loan's ``guarantee_coverage`` when present and non-zero, else the policy
  default (0 in a submission means "no guarantee yet": the guarantee priced is the default).
  A coverage the fee schedule does not price is a problem of that loan.
* LGD by the loan's ``secured`` flag from the pricing policy; rate = ``interest_rate``.
* Sales (firm-size adjustment) = sales of the firm's latest statement (latest
  ``fiscal_year_end``, then latest row), annualised (x 12 / months), in the statement's
  currency, converted to EUR millions at its fiscal year end with the rates table
  (``sales_eur_m``; ECB and operator rates, :mod:`pipelines.fx`). A loan in another
  currency than the policy's is rejected (its amounts are priced in the policy currency).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, select

from creditdb import lookups
from creditdb.anonymise import Key
from creditdb.bulk import lookup
from creditdb.schema import DefaultEvent, FinancialStatement, Institution, Loan

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
    """Loans ready for pricing (columns of ``price_loans``) on the as-of date, and the rest.

    ``loans``: live loans, amount = balance at ``as_of``, tenor = remaining term.
    ``in_default``: loans of firms in default on ``as_of`` (loan_id, firm_id, institution,
    default_since, ead, coverage, lgd, expected_claim = ead x coverage x lgd, currency units).
    """

    loans: pd.DataFrame
    model_version: dict[str, Any]
    as_of: dt.date | None = None
    unscored_loans: int = 0
    repaid_loans: int = 0
    defaulted_loans: int = 0
    matured_loans: int = 0
    not_started_loans: int = 0
    in_default: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: loans left out (not live): loan_id, firm_id, status, reason (the refusal every command gives)
    excluded: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)

    def left_out(self) -> dict[str, Any]:
        """Counts of the loans not priced, and the exposure in default (JSON-ready)."""
        d = self.in_default
        return {"as_of": None if self.as_of is None else self.as_of.isoformat(),
                "unscored_loans": self.unscored_loans, "repaid_loans": self.repaid_loans,
                "matured_loans": self.matured_loans, "not_started_loans": self.not_started_loans,
                "defaulted_loans": self.defaulted_loans,
                "exposure_in_default": float(d["ead"].sum()) if len(d) else 0.0,
                "expected_claims_in_default": float(d["expected_claim"].sum()) if len(d) else 0.0}


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
    return df.rename(columns={"currency": "statement_currency", "fiscal_year_end": "statement_date"})[
        ["firm_id", "sales", "statement_currency", "statement_date"]]


def _require_model(conn: Connection) -> dict[str, Any]:
    mv = approved_model(conn)
    if mv is None:
        raise GuaranteeDataError("no approved rating model: approve a model version first (creditdb model)")
    return mv


def loans_frame(
    conn: Connection, institution: str | None = None, loan_ids: list[int] | None = None
) -> pd.DataFrame:
    """Stored loans (optionally of one institution or by id) with their institution code."""
    ln, i = Loan.__table__.c, Institution.__table__.c
    stmt = select(ln.id, ln.firm_id, i.code.label("institution"), ln.origination_date, ln.maturity_date, ln.currency,
                  ln.amount, ln.outstanding, ln.interest_rate, ln.amortization, ln.secured, ln.guarantee_coverage
                  ).join(Institution.__table__, i.id == ln.institution_id).order_by(ln.id)
    if institution is not None:
        stmt = stmt.where(i.code == institution)
    if loan_ids is not None:
        stmt = stmt.where(ln.id.in_([int(x) for x in loan_ids]))
    cols = ["loan_id", "firm_id", "institution", "origination_date", "maturity_date", "currency", "amount_orig",
            "outstanding", "rate", "amortization", "secured", "guarantee_coverage"]
    return pd.DataFrame(conn.execute(stmt).all(), columns=cols)


def default_dates(conn: Connection, firm_ids: list[int], as_of: dt.date) -> pd.DataFrame:
    """First default date on or before ``as_of`` of each firm with one: firm_id, default_since."""
    if not firm_ids:
        return pd.DataFrame(columns=["firm_id", "default_since"])
    df = lookup(conn, DefaultEvent.__table__, "firm_id", [int(f) for f in firm_ids], ["firm_id", "default_date"])
    if df.empty:
        return pd.DataFrame(columns=["firm_id", "default_since"])
    df["default_date"] = pd.to_datetime(df["default_date"]).dt.date
    df = df[df["default_date"] <= as_of]
    return df.groupby("firm_id", as_index=False)["default_date"].min().rename(columns={"default_date": "default_since"})


def _sales_eur_m(conn: Connection, scored: pd.DataFrame, book: pd.DataFrame) -> np.ndarray:
    """Annual sales in EUR millions at each statement's fiscal year end (NaN without a statement)."""
    from pipelines.fx import FxError, rate_table

    out = np.full(len(book), np.nan)
    if "statement_date" not in scored or not len(book):
        return out
    have = scored["statement_currency"].notna().to_numpy() & book["sales"].notna().to_numpy()
    if have.any():
        try:
            out[have] = rate_table(conn).convert(book["sales"][have], scored["statement_currency"][have],
                                                 pd.to_datetime(scored["statement_date"][have]), "EUR") / 1e6
        except FxError as exc:
            raise GuaranteeDataError(f"sales cannot be converted to EUR for the Basel SME adjustment: {exc}") from exc
    return out



def build_book(conn: Connection, currency: str, coverage_default: float, institution: str | None = None,
               loan_ids: list[int] | None = None, coverage: dict[int, float] | None = None,
               as_of: dt.date | None = None, schedule: Any = None) -> Book:
    """The book on ``as_of`` (default today, UTC): live loans whose firm has a score from the
    approved model, priced on their remaining term, and what is left out.

    Each loan's status comes from :func:`models.loan_terms.loan_status` (the one place
    that decides whether a loan can be guaranteed); matured, repaid and not yet started
    loans are counted; loans of firms in default go to ``Book.in_default`` with the
    expected claim. ``coverage``: loan id -> coverage overriding the loan's own;
    ``schedule``: when given, coverages it does not price are problems. Raises
    :class:`GuaranteeDataError` when there is no approved model or a live loan's data
    cannot be priced (every problem names the loan and the database field).
    """
    from models.loan_terms import expected_claim, loan_status, refusals

    as_of = as_of or dt.datetime.now(dt.UTC).date()
    mv = _require_model(conn)
    raw = loans_frame(conn, institution, loan_ids)
    firm_ids = sorted(set(raw["firm_id"].astype(int))) if not raw.empty else []
    scores = latest_scores(conn, mv["id"], firm_ids)
    scored = raw.merge(scores, on="firm_id", how="inner") if not scores.empty else raw.iloc[0:0].assign(
        score_id=pd.Series(dtype="int64"), pd=pd.Series(dtype=float), grade=pd.Series(dtype=object),
        fee_category=pd.Series(dtype="int64"), scored_at=pd.Series(dtype=object))
    scored = scored.merge(default_dates(conn, sorted(set(scored["firm_id"].astype(int))), as_of), on="firm_id",
                          how="left") if len(scored) else scored.assign(default_since=pd.Series(dtype=object))
    status = loan_status(scored["origination_date"], scored["maturity_date"], scored["outstanding"], as_of,
                         default_date=scored["default_since"], score_in_default=scored["pd"].astype(float) >= 1.0)
    counts = {k: int((status == k).sum()) for k in ("repaid", "matured", "not_started", "in_default")}
    gone = status != "live"
    out_rows = scored[gone]
    excluded = pd.DataFrame({
        "loan_id": out_rows["loan_id"].astype("int64"), "firm_id": out_rows["firm_id"].astype("int64"),
        "status": status[gone],
        "reason": refusals(status[gone], firm=out_rows["firm_id"].to_numpy(),
                           maturity=out_rows["maturity_date"].to_numpy(),
                           origination=out_rows["origination_date"].to_numpy(),
                           default_since=out_rows["default_since"].to_numpy(), as_of=as_of),
    }).reset_index(drop=True)
    dflt = scored[status == "in_default"].reset_index(drop=True)
    in_default = pd.DataFrame(columns=["loan_id", "firm_id", "institution", "default_since", "ead", "coverage",
                                       "lgd", "expected_claim"])
    if len(dflt):
        from models.pricing import load_policy

        pol = load_policy()
        ead = dflt["outstanding"].astype(float).where(dflt["outstanding"].notna(), dflt["amount_orig"]).astype(float)
        cov = _coverage(dflt, coverage_default, coverage)
        lgd = np.where(dflt["secured"].astype(bool), pol.lgd_secured, pol.lgd_unsecured)
        in_default = pd.DataFrame({"loan_id": dflt["loan_id"].astype("int64"),
                                   "firm_id": dflt["firm_id"].astype("int64"),
                                   "institution": dflt["institution"].astype(str),
                                   "default_since": [None if pd.isna(d) else str(d) for d in dflt["default_since"]],
                                   "ead": ead.to_numpy(), "coverage": cov.to_numpy(), "lgd": lgd,
                                   "expected_claim": expected_claim(ead, cov, lgd)})
    live = scored[status == "live"].sort_values("loan_id", kind="stable").reset_index(drop=True)
    sales = latest_sales(conn, sorted(set(live["firm_id"].astype(int))))
    if not sales.empty:
        live = live.merge(sales, on="firm_id", how="left")
    else:
        live["sales"] = np.nan
        live["statement_currency"] = None
    book = pricing_inputs(live, currency, coverage_default, coverage, as_of=as_of, schedule=schedule)
    book["sales_eur_m"] = _sales_eur_m(conn, live, book)  # Basel SME adjustment: sales in EUR at the FYE
    return Book(loans=book, model_version=mv, as_of=as_of, unscored_loans=int(len(raw) - len(scored)),
                repaid_loans=counts["repaid"], defaulted_loans=counts["in_default"], matured_loans=counts["matured"],
                not_started_loans=counts["not_started"], in_default=in_default, excluded=excluded)


def _coverage(rows: pd.DataFrame, coverage_default: float, coverage: dict[int, float] | None) -> pd.Series:
    """Loan's coverage; missing or 0 (no guarantee yet) = the default; ``coverage`` overrides by loan id."""
    cov = rows["guarantee_coverage"].astype(float)
    cov = cov.where(cov.notna() & (cov != 0.0), coverage_default)
    if coverage:
        cov = pd.Series([coverage.get(int(i), c) for i, c in zip(rows["loan_id"], cov, strict=True)],
                        index=rows.index, dtype=float)
    return cov


def pricing_inputs(scored: pd.DataFrame, currency: str, coverage_default: float,
                   coverage: dict[int, float] | None = None, as_of: dt.date | None = None,
                   schedule: Any = None) -> pd.DataFrame:
    """Turn joined loan/score/statement rows of LIVE loans into ``price_loans`` columns on
    the as-of date (amount = balance then, tenor = remaining term); check them.

    ``as_of`` None prices from origination (amount = outstanding else amount, tenor = the
    original tenor): the terms of a new loan.
    """
    from models.loan_terms import remaining_terms
    from models.pricing import amortization_codes, validate_loans

    cov = _coverage(scored, coverage_default, coverage)
    sales = scored["sales"].astype(float)
    am = scored["amortization"].astype(str)
    try:
        codes = amortization_codes(am, missing="annuity")
    except ValueError:
        codes = np.full(len(scored), 2, dtype=np.int8)  # reported by validate_loans below
    rate = scored["rate"].astype(float)
    terms = remaining_terms(scored["origination_date"], scored["maturity_date"], scored["amount_orig"].astype(float),
                            scored["outstanding"], codes, rate.fillna(0.0),
                            as_of if as_of is not None else pd.to_datetime(scored["origination_date"]).min()
                            if len(scored) else dt.date.today())
    if as_of is None:
        terms["remaining_years"] = terms["tenor_years_original"]
        amount = scored["outstanding"].astype(float).where(scored["outstanding"].notna(), scored["amount_orig"])
        terms["balance"] = amount.astype(float).to_numpy()
    out = pd.DataFrame({
        "loan_id": scored["loan_id"].astype("int64"),
        "firm_id": scored["firm_id"].astype("int64"),
        "institution": scored["institution"].astype(str),
        "score_id": scored["score_id"].astype("int64"),
        "score_fee_category": scored["fee_category"].astype("int64"),
        "grade": scored["grade"].astype(str),
        "pd": scored["pd"].astype(float),
        "amount": terms["balance"].to_numpy(dtype=float),
        "tenor_years": terms["remaining_years"].to_numpy(dtype=float),
        "coverage": cov,
        "amortization": am,
        "rate": rate,
        "secured": scored["secured"].astype(bool),
        "sales": sales,
        "no_statements": scored["statement_currency"].isna().to_numpy() if "statement_currency" in scored
        else np.ones(len(scored), dtype=bool),
        "original_tenor_years": terms["tenor_years_original"].to_numpy(dtype=float),
        "amount_original": scored["amount_orig"].astype(float).to_numpy(),
        "maturity_date": scored["maturity_date"].astype(str).to_numpy(),
    })
    problems: list[dict[str, Any]] = []

    def add(idx: int, fld: str, msg: str) -> None:
        problems.append({"loan_id": int(out["loan_id"].iloc[idx]), "institution": out["institution"].iloc[idx],
                         "field": SOURCE_FIELD.get(fld, fld), "message": msg})

    for idx in np.flatnonzero((scored["currency"].astype(str) != currency).to_numpy()):
        add(int(idx), "currency", f"loan currency {scored['currency'].iloc[idx]!r} is not the policy currency "
                                  f"{currency!r}")
    # a statement in another currency is fine: its sales are converted to EUR at its fiscal year end
    for p in validate_loans(out, limit=50, required=("pd", "amount", "tenor_years")):
        add(p.row - 2, p.field, p.message)
    if schedule is not None:
        from models.fee_schedule import coverage_problem

        cv = out["coverage"].to_numpy(dtype=float)
        for idx in np.flatnonzero(~schedule.coverage_ok(cv) & (cv > 0) & (cv <= 1))[:50]:
            add(int(idx), "coverage", str(coverage_problem(schedule, float(cv[idx]))))
    if problems:
        lines = [f"loan {p['loan_id']} ({p['institution']}): {p['field']}: {p['message']}" for p in problems[:50]]
        raise GuaranteeDataError(f"{len(problems)} loan field(s) cannot be priced:\n  " + "\n  ".join(lines),
                                 problems)
    return out


def price_book(engine: Engine, policy: Any, schedule: Any, institution: str | None = None,
               migration: Any = None, as_of: dt.date | None = None) -> tuple[pd.DataFrame, Book]:
    """Price every live stored loan (of ``institution``) whose firm has an approved-model
    score, on its remaining term from ``as_of`` (default today).

    ``migration``: a :class:`models.migration.MigrationEstimate` for the PD term
    structure (default: constant hazard from the one-year PD).
    Returns the priced frame (``price_loans`` output plus loan_id, firm_id, institution,
    score_id, score_fee_category, grade, model_version, cost_pv) and the book.
    """
    with engine.connect() as conn:
        book = build_book(conn, policy.currency, policy.coverage, institution, as_of=as_of, schedule=schedule)
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
    if "sales_eur_m" in loans:  # converted at each statement's fiscal year end (build_book)
        cols.append("sales_eur_m")
    cum = None if migration is None else migration_cumulative_pd(loans, migration)
    priced = price_loans(loans[cols], policy, schedule, cumulative_pd=cum)
    priced["cost_pv"] = priced["el_pv"] + priced["coc_pv"] + priced["admin_pv"]
    for c in ("firm_id", "institution", "score_id", "score_fee_category", "grade"):
        priced.insert(1, c, loans[c].to_numpy())
    for c in ("maturity_date", "original_tenor_years", "amount_original"):
        if c in loans:
            priced[c] = loans[c].to_numpy()
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


def issued_book(conn: Connection, policy: Any, as_of: dt.date | None = None) -> Book:
    """Loans with an issued guarantee on ``as_of`` (default today), coverage as issued, PD
    from the approved model; matured, repaid and defaulted ones are left out as in
    :func:`build_book`."""
    from creditdb.schema import Guarantee

    g = Guarantee.__table__.c
    rows = conn.execute(select(g.loan_id, g.coverage).order_by(g.id)).all()
    if not rows:
        raise GuaranteeDataError("no guarantees issued yet: creditdb guarantee issue --help")
    cov = {int(r.loan_id): float(r.coverage) for r in rows}
    book = build_book(conn, policy.currency, policy.coverage, loan_ids=list(cov), coverage=cov, as_of=as_of)
    gone = set(book.excluded["loan_id"].astype(int)) if len(book.excluded) else set()
    missing = sorted(set(cov) - set(book.loans["loan_id"].astype(int)) - gone)
    if missing:
        raise GuaranteeDataError(
            f"guaranteed loan(s) {', '.join(map(str, missing[:20]))}: score.pd: the firm has no score from the "
            "approved model", [{"loan_id": m, "field": "score.pd", "message": "no approved-model score"}
                               for m in missing])
    return book


def firm_score(conn: Connection, key: Key, institution: str, borrower_key: str,
               as_of: dt.date | None = None) -> dict[str, Any]:
    """Approved model's latest score of the firm a bank knows by ``borrower_key``.

    A firm in default on ``as_of`` (default today: a default event on or before it, or a
    latest score of PD 1) cannot be priced: :class:`GuaranteeDataError` says since when.

    Returns firm_id, score_id, pd, grade, fee_category, scored_at, model_version and the
    annualised ``sales`` / ``statement_currency`` / ``statement_date`` (fiscal year end, ISO)
    of the firm's latest statement (None if none).
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
    today = as_of or dt.datetime.now(dt.UTC).date()
    dd = default_dates(conn, [int(firm_id)], today)
    if len(dd) or float(row["pd"]) >= 1.0:
        from models.loan_terms import default_message

        raise GuaranteeDataError(default_message(int(firm_id), dd["default_since"].iloc[0] if len(dd) else None),
                                 [{"field": "default_event.default_date", "firm_id": int(firm_id),
                                   "message": "the firm is in default"}])
    sales = latest_sales(conn, [int(firm_id)])
    return {"firm_id": int(firm_id), "score_id": int(row["score_id"]), "pd": float(row["pd"]),
            "grade": str(row["grade"]), "fee_category": int(row["fee_category"]), "scored_at": row["scored_at"],
            "model_version": mv["version"], "model_version_id": mv["id"],
            "sales": None if sales.empty else float(sales["sales"].iloc[0]),
            "statement_currency": None if sales.empty else str(sales["statement_currency"].iloc[0]),
            "statement_date": None if sales.empty else str(pd.Timestamp(sales["statement_date"].iloc[0]).date())}


def demo_guarantees(engine: Engine, schedule: str = "japan", scenarios: int = 10_000, seed: int = 0,
                    say: Callable[[str], None] | None = None, as_of: dt.date | None = None, *,
                    actor: str) -> dict[str, Any]:
    """Price the live stored loans on ``as_of`` (default today) with the approved model's
    scores and simulate the book; loans of firms in default are reported as exposure in
    default with the expected claim, not priced.

    Call after training, approving and scoring. Returns ``{"loans_priced", "unscored_loans",
    "schedule", "currency", "model_version", "by_category", "total_subsidy_gap_pv",
    "portfolio": {expected_loss, var_999, ...}}`` (amounts in currency units); prints the
    same with ``say`` (e.g. ``click.echo``) when given. Appends one audit event by ``actor``.
    """
    from models.fee_schedule import load_schedule
    from models.pricing import load_policy

    pol = load_policy()
    sched = load_schedule(schedule)
    priced, book = price_book(engine, pol, sched, as_of=as_of)
    if priced.empty:
        raise GuaranteeDataError("no live stored loan has a score from the approved model")
    from pipelines.guarantee_portfolio import run_portfolio

    risk = run_portfolio(book.loans, pol, sched, scenarios=scenarios, seed=seed)
    result = risk["net"]
    cats = category_summary(priced)
    tot = totals(priced)
    out = {
        "loans_priced": tot["loans"], **book.left_out(),
        "schedule": sched.name,
        "currency": pol.currency, "model_version": book.model_version["version"], "by_category": cats,
        "total_subsidy_gap_pv": tot["subsidy_gap_pv"], "break_even_rate": tot["break_even_rate"],
        "charged_rate": tot["charged_rate"],
        "portfolio": {"scenarios": scenarios, "seed": seed, "total_exposure": result.total_exposure,
                      "expected_loss": result.expected_loss, "var_99": result.quantiles[0.99],
                      "var_999": result.quantiles[0.999], "es_999": result.expected_shortfall[0.999]},
        "risk_by_category": risk["by_category"], "board": risk["board"],
        "tail_loans": risk["per_loan"].nlargest(min(10, len(book.loans)), "es_999").to_dict("records"),
    }
    record_run(engine, "guarantee.demo", {"schedule": sched.name, "model_version": out["model_version"],
                                          "loans": tot["loans"], "scenarios": scenarios, "seed": seed},
               frame_hash(book.loans), frame_hash(priced), actor=actor)
    if say:
        cur = pol.currency
        say(f"guarantee pricing ({sched.name} schedule, model {out['model_version']}): "
            f"{tot['loans']:,} loans priced, {book.unscored_loans:,} without an approved-model score, "
            f"{book.repaid_loans:,} repaid, {book.matured_loans:,} matured by {book.as_of}")
        lo = book.left_out()
        say(f"  {book.defaulted_loans:,} loans of firms in default (not priced): exposure "
            f"{lo['exposure_in_default']:,.0f} {pol.currency}, expected claim {lo['expected_claims_in_default']:,.0f}")
        say(f"  {'category':>8} {'loans':>7} {'fee charged':>16} {'break-even':>10} {'charged':>8} {'subsidy PV':>16}")
        for r in cats:
            say(f"  {r['category']:>8} {r['loans']:>7,} {r['fee_charged']:>16,.0f} {r['break_even_rate']:>10.3%} "
                f"{r['charged_rate']:>8.3%} {r['subsidy_gap_pv']:>16,.0f}")
        say(f"  total subsidy gap (PV) {tot['subsidy_gap_pv']:,.0f} {cur}")
        say(f"  portfolio ({scenarios:,} scenarios): expected loss {result.expected_loss:,.0f}, "
            f"99.9% loss {result.quantiles[0.999]:,.0f} {cur}")
        top = out["tail_loans"][:3]
        say("  loans driving the tail (contribution to ES 99.9%): "
            + ", ".join(f"loan {r['loan_id']} {r['es_999']:,.0f} {cur} ({r['es_999_share']:.1%})" for r in top))
    return out


def record_run(engine: Engine, action: str, details: dict[str, Any], input_hash: str, output_hash: str, *,
               actor: str) -> int:
    """Append one audit event by ``actor`` for a pricing run (own transaction); returns its id."""
    from creditdb import audit

    with engine.begin() as conn:
        return audit.append(conn, actor, action, details, input_hash, output_hash)
