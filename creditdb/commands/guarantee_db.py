"""``creditdb guarantee price-book|issue|list`` and the database parts of quote/portfolio.

Rates are fractions per annum of the covered outstanding (as in ``models/pricing.py``),
amounts in currency units, PD the one-year PD of the approved model's latest score.
Database logic lives in ``pipelines/guarantees.py`` and ``pipelines/guarantee_issue.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from creditdb.output import emit_json, open_engine, reject


def resolve_firm(institution: str, borrower_key: str, as_json: bool, as_of: dt.date | None = None) -> dict[str, Any]:
    """The approved model's latest score of a bank's borrower (exit 1 when missing or in default)."""
    from creditdb.anonymise import pseudonymiser
    from pipelines.guarantees import GuaranteeDataError, firm_score

    engine = open_engine()
    try:
        with engine.connect() as conn:
            return firm_score(conn, pseudonymiser(engine), institution, borrower_key, as_of)
    except GuaranteeDataError as exc:
        reject(str(exc), payload={"problems": exc.problems}, as_json=as_json)


def quote_loan(loan_of: str, policy, schedule, as_of: dt.date | None, coverage: float | None,
               as_json: bool) -> dict[str, Any]:
    """Quote of a stored loan (``BANK:LOAN_KEY``) as of a date; exit 1 when it cannot be guaranteed."""
    from creditdb.anonymise import pseudonymiser
    from pipelines.guarantee_pricing import quote_stored_loan
    from pipelines.guarantees import GuaranteeDataError

    bank, key = loan_of.split(":", 1)
    engine = open_engine()
    try:
        with engine.connect() as conn:
            return quote_stored_loan(conn, pseudonymiser(engine), bank, key, policy, schedule, as_of, coverage)
    except GuaranteeDataError as exc:
        reject(str(exc), payload={"problems": exc.problems}, as_json=as_json)


def audit_quote(firm: dict[str, Any], loan: dict[str, Any], row: dict[str, Any]) -> None:
    """Audit event of a quote by firm (input: the loan priced; output: the quote)."""
    import hashlib

    import pandas as pd

    from creditdb.output import to_json
    from creditdb.settings import get_settings
    from pipelines.guarantees import frame_hash, record_run

    out = hashlib.sha256(to_json(row).encode()).hexdigest()
    record_run(open_engine(create=False), "guarantee.quote",
               {"firm_id": firm["firm_id"], "score_id": firm["score_id"], "model_version": firm["model_version"],
                "pd": firm["pd"]}, frame_hash(pd.DataFrame([loan])), out, actor=get_settings().actor)


def db_portfolio_loans(policy, issued_only: bool, as_json: bool, as_of: dt.date | None = None):
    """Loans for ``guarantee portfolio --from-db`` as a file-like frame, and a source label."""
    from pipelines.guarantees import GuaranteeDataError, build_book, issued_book

    engine = open_engine()
    try:
        with engine.connect() as conn:
            book = issued_book(conn, policy, as_of) if issued_only else build_book(conn, policy.currency,
                                                                                  policy.coverage, as_of=as_of)
    except GuaranteeDataError as exc:
        reject(str(exc), payload={"problems": exc.problems}, as_json=as_json)
    if book.loans.empty:
        reject(f"no live stored loan on {book.as_of} has a score from the approved model", as_json=as_json)
    df = book.loans[["loan_id", "pd", "amount", "tenor_years", "coverage", "amortization", "rate", "secured", "sales",
                     "sales_eur_m", "no_statements"]].copy()  # sales_eur_m: at each statement's fiscal year end
    label = "issued guarantees" if issued_only else "priced loans"
    return df, f"database ({label} as of {book.as_of}, model {book.model_version['version']})", book


@click.command("price-book")
@click.option("--institution", default=None, help="Only this bank's loans (default: all).")
@click.option("--schedule", default="japan", show_default=True, help="Fee schedule name or TOML path.")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), default=None, help="Pricing policy TOML.")
@click.option("--reinsurance", type=float, default=None, help="Reinsured share of claims (overrides the policy).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Priced table (.csv or .parquet).")
@click.option("--term-structure", "term_structure", type=click.Choice(["hazard", "migration"]), default="hazard",
              show_default=True,
              help="PD over the tenor: constant hazard from the one-year PD, or the approved model's grade "
                   "migration matrix estimated from the database (first year: the firm's own PD).")
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Date of the book (default today): remaining terms run from it.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary.")
def price_book(institution: str | None, schedule: str, policy_file: str | None, reinsurance: float | None,
               out: str, term_structure: str, as_of: dt.datetime | None, as_json: bool) -> None:
    """Price every live stored loan whose firm has a score from the approved model, as of a date.

    Per loan on --as-of: PD = the approved model's latest score of the firm; tenor = the
    remaining term (maturity minus the as-of date, years); amount = outstanding, else the
    balance of the loan's own schedule on that date; coverage = the loan's, else (missing
    or 0) the policy's (0.8); LGD by the secured flag; sales from the firm's latest
    statement. Matured, repaid and not yet started loans are left out and counted; loans
    of firms in default are reported as exposure in default with the expected claim
    (EAD x coverage x LGD), not priced.
    Writes loan_id, firm_id, pd, category, break_even_rate, charged_rate, fee_charged,
    subsidy_gap_rate, subsidy_gap_pv (and every pricing column) to --out; prints fees by
    category and the total subsidy gap. Appends an audit event.

    With ``--term-structure migration`` the annual grade migration matrix (approved model's
    grades of every stored statement with a closed 12-month window, defaults absorbing)
    gives the PD of the later years; the JSON summary holds the matrix.

    \b
    Example:
      creditdb guarantee price-book --institution BK1 --schedule japan --out book.parquet
      creditdb guarantee price-book --as-of 2024-03-31 --out book.csv --json
      creditdb guarantee price-book --term-structure migration --out book.csv --json
    """
    from creditdb.commands.guarantee_common import _policy, _print_categories, _schedule, _write
    from creditdb.settings import get_settings
    from pipelines.guarantees import GuaranteeDataError, category_summary, frame_hash, record_run, totals
    from pipelines.guarantees import price_book as run_price_book

    if reinsurance is not None and not 0 <= reinsurance <= 1:
        reject("--reinsurance: must be a fraction in [0, 1]", as_json=as_json)
    sched = _schedule(schedule, as_json)
    pol = _policy(policy_file, reinsurance, as_json)
    engine = open_engine()
    if institution is not None:
        from creditdb import lookups

        with engine.connect() as conn:
            if lookups.institution(conn, institution) is None:
                reject(f"unknown institution {institution!r} (--institution)", as_json=as_json)
    migration = None
    if term_structure == "migration":
        from creditdb.registry import RegistryError
        from pipelines.migration import MigrationDataError, estimate_from_database

        try:
            migration = estimate_from_database(engine)
        except (MigrationDataError, RegistryError) as exc:
            reject(f"--term-structure migration: {exc}", as_json=as_json)
    try:
        priced, book = run_price_book(engine, pol, sched, institution, migration,
                                      as_of=as_of.date() if as_of else None)
    except GuaranteeDataError as exc:
        reject(str(exc), payload={"problems": exc.problems}, as_json=as_json)
    if priced.empty:
        reject(f"no live stored loan{' of ' + institution if institution else ''} on {book.as_of} has a score from "
               f"the approved model {book.model_version['version']}", payload=book.left_out(), as_json=as_json)
    _write(priced, out)
    cats, tot = category_summary(priced), totals(priced)
    event = record_run(engine, "guarantee.price_book",
                       {"institution": institution, "schedule": sched.name,
                        "model_version": book.model_version["version"],
                        "term_structure": term_structure, "loans": tot["loans"], "out": str(out),
                        "as_of": book.as_of.isoformat() if book.as_of else None},
                       frame_hash(book.loans), frame_hash(priced), actor=get_settings().actor)
    summary = {"ok": True, "out": out, "schedule": sched.name, "currency": pol.currency,
               "model_version": book.model_version["version"], **book.left_out(),
               "in_default": book.in_default.to_dict("records"),
               "by_category": cats, "total": tot, "audit_event": event, "term_structure": term_structure,
               "migration": None if migration is None else migration.as_dict()}
    if as_json:
        emit_json(summary)
        return
    lo = book.left_out()
    click.echo(f"priced {tot['loans']:,} live loans as of {book.as_of} -> {out} ({sched.name} schedule, model "
               f"{book.model_version['version']}, {pol.currency}); left out: {book.unscored_loans:,} without a "
               f"score, {book.repaid_loans:,} repaid, {book.matured_loans:,} matured, {book.not_started_loans:,} "
               f"not yet started")
    click.echo(f"in default (not priced): {book.defaulted_loans:,} loans, exposure {lo['exposure_in_default']:,.0f} "
               f"{pol.currency}, expected claim {lo['expected_claims_in_default']:,.0f} {pol.currency}")
    if migration is not None:
        fb = ", ".join(migration.fallback_grades) or "none"
        click.echo(f"PD term structure: grade migration matrix from {int(migration.counts.sum()):,} firm-year "
                   f"transitions (grades with too few, priced at constant hazard: {fb})")
    _print_categories(cats)
    click.echo(f"total subsidy gap (PV): {tot['subsidy_gap_pv']:,.0f} {pol.currency}")


def _read_requests(path: str, as_json: bool):
    import pandas as pd

    from creditdb.commands.guarantee_common import _normalise_columns
    from pipelines.guarantee_issue import IssueRequest

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        reject(f"{path}: file not found", as_json=as_json)
    except Exception as exc:  # parser errors of many kinds
        reject(f"{path}: cannot read: {exc}", as_json=as_json)
    df = _normalise_columns(df, path, as_json)
    missing = [c for c in ("bank", "loan_key") if c not in df.columns]
    if missing:
        reject(f"{path}: row 1: {', '.join(missing)}: required column is missing", as_json=as_json)
    reqs, problems = [], []
    for i, r in enumerate(df.to_dict("records")):
        row = i + 2
        cov = None
        raw = str(r.get("coverage", "") or "").strip()
        if raw:
            try:
                cov = float(raw)
            except ValueError:
                problems.append(f"{path}: row {row}: coverage: not a number ({raw!r})")
        for col in ("bank", "loan_key"):
            if not str(r[col]).strip():
                problems.append(f"{path}: row {row}: {col}: empty")
        reqs.append(IssueRequest(str(r["bank"]).strip(), str(r["loan_key"]).strip(), cov, row))
    if problems:
        reject(f"{len(problems)} invalid field(s), nothing recorded:\n  " + "\n  ".join(problems[:50]), as_json=as_json)
    if not reqs:
        reject(f"{path}: no rows", as_json=as_json)
    return reqs


@click.command("issue")
@click.option("--institution", "agency", required=True, help="Code of the issuing agency (guarantee corporation).")
@click.option("--loan-of", "loan_of", default=None, metavar="BANK_CODE:LOAN_KEY", help="The guaranteed loan.")
@click.option("--file", "file_", type=click.Path(dir_okay=False), default=None,
              help="Batch: CSV with columns bank, loan_key, coverage (optional).")
@click.option("--coverage", type=float, default=None, help="Guaranteed share (default: the loan's, else 0.8).")
@click.option("--schedule", default="japan", show_default=True, help="Fee schedule name or TOML path.")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), default=None, help="Pricing policy TOML.")
@click.option("--date", "date_", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Issue date (default today).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def issue(agency: str, loan_of: str | None, file_: str | None, coverage: float | None, schedule: str,
          policy_file: str | None, date_: dt.datetime | None, as_json: bool) -> None:
    """Record guarantees an agency issues on stored loans, priced at issue.

    The loan is found by the bank's own loan key (hashed as at submission). Records the
    PD (approved model), fee category, charged fee and break-even rates (fractions p.a. of
    the covered outstanding), schedule and model version, and an audit event per
    guarantee. Refuses (exit 1, nothing recorded) an agency that is not a
    guarantee_corporation or government, an unknown loan, a loan with an active
    guarantee (one recorded on a loan not yet matured), a coverage the schedule does not
    price, and a loan that cannot be guaranteed on --date (matured, repaid, not started,
    firm in default: the reason price-book and quote --loan-of give). The loan is priced
    on its remaining term from --date.

    \b
    Example:
      creditdb guarantee issue --institution CGC1 --loan-of BK1:L00042 --coverage 0.8
      creditdb guarantee issue --institution CGC1 --file to_issue.csv --json
    """
    from creditdb.anonymise import pseudonymiser
    from creditdb.commands.guarantee_common import _policy, _schedule
    from creditdb.settings import get_settings
    from pipelines.guarantee_issue import IssueRequest, issue_guarantees
    from pipelines.guarantees import GuaranteeDataError

    if (loan_of is None) == (file_ is None):
        raise click.UsageError("give --loan-of BANK:LOAN_KEY or --file FILE")
    if file_ is not None and coverage is not None:
        raise click.UsageError("--coverage goes with --loan-of; put a coverage column in --file")
    sched = _schedule(schedule, as_json)
    pol = _policy(policy_file, None, as_json)
    if loan_of is not None:
        if ":" not in loan_of:
            raise click.BadParameter("expected BANK_CODE:LOAN_KEY", param_hint="--loan-of")
        bank, key = loan_of.split(":", 1)
        requests = [IssueRequest(bank, key, coverage)]
    else:
        assert file_ is not None  # --loan-of or --file (checked above)
        requests = _read_requests(file_, as_json)
    engine = open_engine()
    try:
        rows = issue_guarantees(engine, agency, requests, key=pseudonymiser(engine), actor=get_settings().actor,
                                policy=pol, schedule=sched, issued_on=date_.date() if date_ else None)
    except GuaranteeDataError as exc:
        reject(str(exc), payload={"problems": exc.problems}, as_json=as_json)
    if as_json:
        emit_json({"ok": True, "issued": rows})
        return
    for r in rows:
        click.echo(f"guarantee {r['guarantee_id']}: {agency} covers {r['coverage']:.0%} of loan {r['loan_id']} "
                   f"({r['bank']}) from {r['issued_on']}: PD {r['pd']:.4%}, category {r['category']}, fee "
                   f"{r['fee_rate']:.4%} p.a. vs break-even {r['breakeven_rate']:.4%} (model {r['model_version']})")


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(as_json: bool) -> None:
    """List issued guarantees with the pricing recorded at issue.

    \b
    Example:
      creditdb guarantee list --json
    """
    from pipelines.guarantee_issue import list_guarantees

    rows = list_guarantees(open_engine())
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no guarantees issued yet: creditdb guarantee issue --help")
    for r in rows:
        click.echo(f"{r['id']:>6} {r['agency']:<8} {r['bank']:<8} loan {r['loan_id']:>7} {r['issued_on']} "
                   f"cov {r['coverage']:.0%} PD {r['pd']:.4%} cat {r['fee_category']} fee {r['fee_rate']:.4%} "
                   f"break-even {r['breakeven_rate']:.4%} {r['schedule']} {r['model_version'] or ''}")


__all__ = ["audit_quote", "db_portfolio_loans", "issue", "list_", "price_book", "quote_loan", "resolve_firm"]
