"""``creditdb guarantee quote|price|portfolio``: guarantee pricing without a database.

Rates are fractions per annum (0.012 = 1.2% p.a.), amounts in currency units, PD is the
one-year probability of default. Conventions of the pricing are in ``models/pricing.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from creditdb.commands.guarantee_common import _check, _policy, _print_categories, _read_loans, _schedule, _write
from creditdb.output import emit_json, open_engine, reject, to_json


@click.group()
def guarantee() -> None:
    """Price credit guarantees: one loan, a file of loans, or a portfolio loss simulation.

    Fee schedules (models/data/fee_schedule_*.toml: japan, kodit, sba, or any .toml path)
    and the pricing policy (models/data/pricing_policy.toml) are data files.

    \b
    Example:
      creditdb guarantee quote --help
      creditdb guarantee price loans.csv --out priced.csv
    """


@guarantee.command("quote")
@click.option("--pd", "pd_", type=float, default=None, help="One-year probability of default, in (0, 1).")
@click.option("--firm-of", "firm_of", default=None, metavar="INSTITUTION:BORROWER_KEY",
              help="Quote by firm: PD from the approved model's latest score of this borrower.")
@click.option("--institution", "firm_inst", default=None, help="With --borrower: the bank that knows the firm.")
@click.option("--borrower", "borrower_key", default=None, help="With --institution: the bank's borrower key.")
@click.option("--loan-of", "loan_of", default=None, metavar="BANK:LOAN_KEY",
              help="Quote a stored loan on its remaining term as of --as-of (as price-book and issue price it).")
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="With --loan-of or a firm: the date of the quote (default today).")
@click.option("--amount", type=float, default=None, help="Loan amount in currency units.")
@click.option("--tenor", type=float, default=None, help="Tenor in years.")
@click.option("--coverage", type=float, default=None, help="Guaranteed share of the loan (default: policy, 0.8).")
@click.option("--lgd", type=float, default=None, help="Loss given default (default: policy by --secured).")
@click.option("--amortization", default="annuity", show_default=True, help="bullet, linear or annuity.")
@click.option("--rate", type=float, default=None, help="Loan interest rate p.a. (annuity instalments).")
@click.option("--sales", type=float, default=None, help="Annual sales in currency units (Basel SME adjustment).")
@click.option("--sales-currency", "sales_currency", default=None,
              help="Currency of --sales (ISO 4217; default: the policy currency).")
@click.option("--sales-date", "sales_date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Fiscal year end of --sales: the day its EUR rate is taken (needed with --sales).")
@click.option("--secured", is_flag=True, help="Secured guarantee (lower LGD; schedule discount).")
@click.option("--no-statements", is_flag=True, help="Firm has no financial statements yet.")
@click.option("--instalments", type=int, default=None, help="Number of instalments (default: monthly).")
@click.option("--schedule", default="japan", show_default=True, help="Fee schedule name or TOML path.")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), default=None, help="Pricing policy TOML.")
@click.option("--reinsurance", type=float, default=None, help="Reinsured share of claims (overrides the policy).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def quote(
    pd_: float | None, firm_of: str | None, firm_inst: str | None, borrower_key: str | None, loan_of: str | None,
    as_of: Any, amount: float | None, tenor: float | None, coverage: float | None, lgd: float | None,
    amortization: str, rate: float | None, sales: float | None, sales_currency: str | None, sales_date: Any,
    secured: bool, no_statements: bool, instalments: int | None, schedule: str, policy_file: str | None,
    reinsurance: float | None, as_json: bool,
) -> None:
    """Price one guarantee: IRB capital, expected loss, break-even and charged fee, subsidy.

    \b
    Example:
      creditdb guarantee quote --pd 0.012 --amount 10000000 --tenor 5 --coverage 0.8 \\
          --lgd 0.6 --amortization annuity --rate 0.02 --sales 300000000 --sales-date 2024-03-31
      creditdb guarantee quote --firm-of BK1:B00042 --amount 10000000 --tenor 5 --json
      creditdb guarantee quote --loan-of BK1:L00042 --as-of 2024-03-31 --json

    By firm (--firm-of or --institution/--borrower) the PD is the latest score of the
    firm from the APPROVED model, and --sales defaults to the annualised sales of the
    firm's latest statement, in its currency at its fiscal year end; a firm in default
    cannot be quoted. Sales become EUR millions for the Basel SME adjustment with the ECB
    reference rates (and the rates of `creditdb fx load` when CREDITDB_URL is set). By stored loan
    (--loan-of) the terms are the loan's on --as-of: its remaining term and balance,
    exactly as ``price-book`` and ``issue`` price it.
    """
    from pipelines.guarantee_pricing import quote_terms
    from pipelines.guarantees import GuaranteeDataError

    if reinsurance is not None and not 0 <= reinsurance <= 1:
        reject("--reinsurance: must be a fraction in [0, 1]", as_json=as_json)
    if firm_of is not None and (firm_inst or borrower_key):
        raise click.UsageError("give --firm-of or --institution/--borrower, not both")
    if firm_of is not None:
        if ":" not in firm_of:
            raise click.BadParameter("expected INSTITUTION:BORROWER_KEY", param_hint="--firm-of")
        firm_inst, borrower_key = firm_of.split(":", 1)
    elif bool(firm_inst) != bool(borrower_key):
        raise click.UsageError("--institution and --borrower go together")
    by_firm = borrower_key is not None
    if sum((by_firm, pd_ is not None, loan_of is not None)) != 1:
        raise click.UsageError("give one of --pd, a firm (--firm-of / --institution with --borrower) or --loan-of")
    pol = _policy(policy_file, reinsurance, as_json)
    sched = _schedule(schedule, as_json)
    day = as_of.date() if as_of else None
    if loan_of is not None:
        given = [o for o, v in (("--amount", amount), ("--tenor", tenor), ("--lgd", lgd), ("--rate", rate),
                                ("--sales", sales), ("--sales-currency", sales_currency),
                                ("--sales-date", sales_date), ("--instalments", instalments)) if v is not None]
        if given:
            raise click.UsageError(f"--loan-of takes the stored loan's terms; drop {', '.join(given)}")
        if ":" not in loan_of:
            raise click.BadParameter("expected BANK:LOAN_KEY", param_hint="--loan-of")
        from creditdb.commands.guarantee_db import quote_loan

        res = quote_loan(loan_of, pol, sched, day, coverage, as_json)
        result = {"ok": True, "schedule": sched.name, "currency": pol.currency, "policy": pol.__dict__, **res}
        if as_json:
            emit_json(result)
            return
        ln, row = res["loan"], res["quote"]
        click.echo(f"guarantee quote of loan {loan_of} (loan {ln['loan_id']}, firm {ln['firm_id']}) as of "
                   f"{ln['as_of']}, model {ln['model_version']}")
        click.echo(_quote_lines(row, sched, pol.currency))
        return
    if amount is None or tenor is None:
        raise click.UsageError("--amount and --tenor are required with --pd or a firm")
    firm = None
    if by_firm:
        from creditdb.commands.guarantee_db import resolve_firm

        firm = resolve_firm(firm_inst, borrower_key, as_json, day)  # type: ignore[arg-type]
        pd_ = firm["pd"]
        if sales is None and firm["sales"] is not None:  # the statement's own currency and date
            sales, sales_currency, sales_date = firm["sales"], firm["statement_currency"], firm["statement_date"]
    if sales is None and (sales_currency is not None or sales_date is not None):
        raise click.UsageError("--sales-currency and --sales-date go with --sales")
    loan: dict[str, Any] = {"pd": pd_, "amount": amount, "tenor_years": tenor, "amortization": amortization,
                            "secured": secured, "no_statements": no_statements}
    day_of_sales = sales_date.date().isoformat() if hasattr(sales_date, "date") else sales_date
    for k, v in (("coverage", coverage), ("lgd", lgd), ("rate", rate), ("sales", sales), ("instalments", instalments),
                 ("sales_currency", sales_currency), ("sales_date", day_of_sales)):
        if v is not None:
            loan[k] = v
    try:
        row = quote_terms(loan, pol, sched)
    except GuaranteeDataError as exc:
        reject(str(exc), payload={"problems": exc.problems}, as_json=as_json)
    result = {"ok": True, "schedule": sched.name, "currency": pol.currency, "policy": pol.__dict__, "quote": row}
    if firm is not None:
        result["firm"] = firm
        from creditdb.commands.guarantee_db import audit_quote

        audit_quote(firm, loan, row)
    if as_json:
        emit_json(result)
        return
    head = f"guarantee quote ({sched.name} schedule, {pol.currency})"
    if firm:
        head += (f"\n  firm              {firm['firm_id']} ({firm_inst}:{borrower_key}), "
                 f"model {firm['model_version']}, grade {firm['grade']}, score fee category {firm['fee_category']}")
    click.echo(head + "\n" + _quote_lines(row, sched, pol.currency))


def _quote_lines(row: dict[str, Any], sched: Any, cur: str) -> str:
    return "\n".join([
        f"  loan              {row['amount']:,.0f} {cur} over {row['tenor_years']:.2f} years, {row['amortization']}, "
        f"coverage {row['coverage']:.0%}, LGD {row['lgd']:.0%}",
        f"  PD (1 year)       {row['pd']:.4%}   cumulative over tenor {row['cum_pd']:.4%}",
        f"  IRB K             {row['irb_k']:.4%} of EAD   risk weight {row['risk_weight']:.2%}   "
        f"capital {row['capital']:,.0f}",
        f"  expected loss PV  {row['el_pv']:,.0f}",
        f"  cost of capital   {row['coc_pv']:,.0f}   admin cost PV {row['admin_pv']:,.0f}",
        f"  break-even fee    {row['break_even_rate']:.4%} p.a. of covered outstanding",
        f"  fee category      {row['category']}   schedule rate {row['schedule_rate']:.4%} p.a. "
        f"(on {sched.fee_base} balance, {sched.payment})",
        f"  fee charged       {row['fee_charged']:,.0f}   (= {row['charged_rate']:.4%} p.a. of covered outstanding)",
        f"  subsidy gap       {row['subsidy_gap_rate']:.4%} p.a.   {row['subsidy_gap_pv']:,.0f} PV over the life",
    ])


@guarantee.command("price")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Priced table (.csv or .parquet).")
@click.option("--schedule", default="japan", show_default=True, help="Fee schedule name or TOML path.")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), default=None, help="Pricing policy TOML.")
@click.option("--reinsurance", type=float, default=None, help="Reinsured share of claims (overrides the policy).")
@click.option("--sales-date", "sales_date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Fiscal year end of the sales of rows without a sales_date.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary.")
def price(file: str, out: str, schedule: str, policy_file: str | None, reinsurance: float | None,
          sales_date: Any, as_json: bool) -> None:
    """Price every loan of FILE (CSV or Parquet) and write the priced table to --out.

    Columns: loan_id, pd, amount, tenor_years (required); coverage, lgd, amortization
    (bullet/linear/annuity), rate, sales, secured, no_statements, instalments (optional,
    empty = policy default). Sales (annual, currency units) become EUR millions for the
    Basel SME adjustment at the date of the figure: columns sales_currency (default the
    policy currency) and sales_date (its fiscal year end; else --sales-date); a row with
    sales and no date is an error. A column sales_eur_m is taken as it is instead. Rows are numbered with the header as row 1; every invalid
    field is reported (up to 50) and nothing is written.

    \b
    Example:
      creditdb guarantee price loans.csv --out priced.parquet --schedule japan
    """
    from pipelines.guarantee_pricing import price_file
    from pipelines.guarantees import GuaranteeDataError

    if reinsurance is not None and not 0 <= reinsurance <= 1:
        reject("--reinsurance: must be a fraction in [0, 1]", as_json=as_json)
    sched = _schedule(schedule, as_json)
    pol = _policy(policy_file, reinsurance, as_json)
    df = _read_loans(file, as_json)
    if df.empty:
        reject(f"{file}: no loans (the file has no data rows)", as_json=as_json)
    _check(df, file, ("pd", "amount", "tenor_years"), as_json)
    try:
        res = price_file(df, pol, sched, sales_date.date() if sales_date else None)
    except GuaranteeDataError as exc:
        reject(f"{file}: {exc}", payload={"file": file, "problems": exc.problems}, as_json=as_json)
    _write(res["priced"], out)
    cats, total = res["by_category"], res["total"]
    if as_json:
        emit_json({"ok": True, "file": file, "out": out, "schedule": sched.name, "currency": pol.currency,
                   "by_category": cats, "total": total})
        return
    click.echo(f"priced {total['loans']:,} loans from {file} -> {out} ({sched.name} schedule, {pol.currency})")
    _print_categories(cats)
    click.echo(f"total subsidy gap (PV): {total['subsidy_gap_pv']:,.0f} {pol.currency}; "
               f"break-even {total['break_even_rate']:.3%} vs charged {total['charged_rate']:.3%} p.a. "
               f"of covered outstanding")


@guarantee.command("portfolio")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@click.option("--from-db", is_flag=True, help="Loans from the database (PD: approved model's latest score).")
@click.option("--issued-only", is_flag=True, help="With --from-db: only loans with an issued guarantee.")
@click.option("--scenarios", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--fund", type=float, default=None, help="Loss-absorbing fund (currency units): P(loss > fund).")
@click.option("--rho", type=float, default=None, help="Asset correlation for all loans (default: Basel R per loan).")
@click.option("--method", type=click.Choice(["bernoulli", "conditional"]), default="bernoulli", show_default=True)
@click.option("--reinsurance", type=float, default=None, help="Reinsured share of claims (overrides the policy).")
@click.option("--schedule", default="japan", show_default=True,
              help="Fee schedule for the category table (loans with tenor_years are priced with it).")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), default=None, help="Pricing policy TOML.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), default=None, help="Write an HTML report.")
@click.option("--contributions", "contrib_out", type=click.Path(dir_okay=False), default=None,
              help="Write the per-loan risk contributions (.csv or .parquet).")
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="With --from-db: date of the book (default today).")
@click.option("--sales-date", "sales_date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="With FILE: fiscal year end of the sales of rows without a sales_date.")
@click.option("--json", "json_out", is_flag=False, flag_value="-", default=None,
              help="Write the JSON summary to FILE ('-' or no value: standard output).")
def portfolio(
    file: str | None, from_db: bool, issued_only: bool, scenarios: int, seed: int, fund: float | None,
    rho: float | None, method: str, reinsurance: float | None, schedule: str, policy_file: str | None,
    html_out: str | None, contrib_out: str | None, as_of: Any, sales_date: Any, json_out: str | None,
) -> None:
    """Simulate the one-year loss of the guarantees in FILE; risk by fee category and by loan.

    Exposure per loan = amount x coverage, gross and net of the reinsured share; PD
    one-year; LGD from the file or the policy. Per loan: Euler contributions to the
    expected loss, VaR 99.9% and ES 99% / 99.9% (in the JSON ``contributions`` and in
    --contributions). Per fee category: exposure, premiums, expected claims, capital,
    subsidy and share of ES. Put FILE before --json when --json has no value. Sales
    become EUR millions as in ``guarantee price`` (sales_currency, sales_date or
    --sales-date; or sales_eur_m).

    With --from-db instead of FILE: the live stored loans on --as-of whose firm has a score
    from the approved model (or, with --issued-only, the loans with an issued guarantee, at
    the coverage issued), on their remaining terms, as ``price-book`` takes them.

    \b
    Example:
      creditdb guarantee portfolio priced.parquet --scenarios 10000 --seed 1 \\
          --fund 2000000000 --html loss.html --json loss.json
      creditdb guarantee portfolio --from-db --issued-only --scenarios 10000 --json loss.json \\
          --contributions contributions.csv
    """
    import sys

    from tqdm import tqdm

    from pipelines.guarantee_portfolio import run_portfolio

    as_json = json_out == "-"
    if reinsurance is not None and not 0 <= reinsurance <= 1:
        reject("--reinsurance: must be a fraction in [0, 1]", as_json=as_json)
    if rho is not None and not 0 < rho < 1:
        reject("--rho: must lie strictly between 0 and 1", as_json=as_json)
    if from_db == (file is not None):
        raise click.UsageError("give a FILE of loans or --from-db (not both)")
    if issued_only and not from_db:
        raise click.UsageError("--issued-only needs --from-db")
    pol = _policy(policy_file, reinsurance, as_json)
    sched = _schedule(schedule, as_json)
    if from_db:
        from creditdb.commands.guarantee_db import db_portfolio_loans

        df, file, _book = db_portfolio_loans(pol, issued_only, as_json, as_of.date() if as_of else None)
    else:
        assert file is not None  # a FILE or --from-db (checked above)
        df = _read_loans(file, as_json)
        _check(df, file, ("pd", "amount"), as_json)
    if len(df) == 0:
        reject(f"{file}: no loans", as_json=as_json)
    from models.fee_schedule import CoverageError
    from pipelines.sales_eur import SalesConversionError

    try:
        with tqdm(total=scenarios, desc="scenarios", unit="scen", file=sys.stderr,
                  disable=not sys.stderr.isatty()) as bar:
            run = run_portfolio(df, pol, sched, scenarios=scenarios, seed=seed, fund=fund, rho=rho, method=method,
                                progress=bar.update, sales_date=sales_date.date() if sales_date else None)
    except CoverageError as exc:
        reject(f"{file}: {exc} (--schedule)", as_json=as_json)
    except SalesConversionError as exc:
        reject(f"{file}: {exc}", payload={"file": file, "problems": exc.problems}, as_json=as_json)
    result = run["net"]
    summary = {"ok": True, "file": file, "currency": pol.currency, "reinsurance_share": pol.reinsurance_share,
               **result.to_dict(), "board": run["board"], "by_category": run["by_category"],
               "contributions": run["per_loan"].to_dict("records")}
    if from_db:
        import hashlib

        from creditdb.settings import get_settings
        from pipelines.guarantees import frame_hash, record_run

        summary["audit_event"] = record_run(
            open_engine(create=False), "guarantee.portfolio",
            {"source": file, "loans": len(df), "scenarios": scenarios, "seed": seed, "method": method, "fund": fund},
            frame_hash(df), hashlib.sha256(to_json(result.to_dict()).encode()).hexdigest(),
            actor=get_settings().actor)
    if html_out:
        from pipelines.guarantee_report import render_html

        Path(html_out).write_text(render_html(summary, run, file, pol.currency, fund), encoding="utf-8")
    if contrib_out:
        _write(run["per_loan"], contrib_out)
    if json_out == "-":
        emit_json(summary)
        return
    if json_out:
        Path(json_out).write_text(to_json(summary), encoding="utf-8")
    _print_portfolio(run, file, scenarios, seed, method, fund, pol.currency)
    for path in (html_out, json_out, contrib_out):
        if path:
            click.echo(f"  wrote {path}")


def _print_portfolio(run: dict[str, Any], file: str, scenarios: int, seed: int, method: str, fund: float | None,
                     cur: str) -> None:
    from pipelines.guarantee_report import money, pct

    result, board = run["net"], run["board"]
    click.echo(f"portfolio of {result.n_loans:,} guarantees from {file}: {scenarios:,} scenarios, seed {seed}, "
               f"{method}; amounts in {cur}, net of {board['reinsurance_share']:.0%} reinsurance")
    click.echo(f"  exposure {money(result.total_exposure)}   expected loss {money(result.expected_loss)} "
               f"(sum PD x LGD x EAD {money(result.expected_loss_analytic)})")
    for a, v in result.quantiles.items():
        click.echo(f"  VaR {a:.1%}      {money(v)}")
    for a, v in result.expected_shortfall.items():
        click.echo(f"  ES  {a:.1%}      {money(v)}")
    if fund is not None:
        click.echo(f"  fund {money(fund)}: P(loss > fund) = {pct(result.prob_loss_exceeds_fund, 4)} net, "
                   f"{pct(board['gross']['prob_loss_exceeds_fund'], 4)} gross")
    net = board["net"]
    if "premiums_pv" in net:
        click.echo(f"  premiums PV {money(net['premiums_pv'])} against expected claims PV "
                   f"{money(net['expected_claims_pv'])} and capital cost PV {money(net['capital_cost_pv'])}: "
                   f"subsidy PV {money(net['subsidy_pv'])}")
    if run["by_category"]:
        click.echo(f"  {'category':>8} {'loans':>7} {'exposure':>18} {'premiums PV':>15} {'claims PV':>15} "
                   f"{'ES 99.9%':>15} {'share':>6}")
        for r in run["by_category"]:
            click.echo(f"  {r['category']:>8} {r['loans']:>7,} {money(r['exposure']):>18} "
                       f"{money(r.get('premiums_pv')):>15} {money(r.get('expected_claims_pv')):>15} "
                       f"{money(r['es_999']):>15} {r['es_999_share']:>6.1%}")
    top = run["per_loan"].nlargest(min(5, len(run["per_loan"])), "es_999")
    click.echo("  loans driving the tail (contribution to ES 99.9%): " + ", ".join(
        f"{r.loan_id} {money(r.es_999)} ({r.es_999_share:.1%})" for r in top.itertuples()))


def _register_db_commands() -> None:
    from creditdb.commands.guarantee_db import issue, list_, price_book

    for cmd in (price_book, issue, list_):
        guarantee.add_command(cmd)


_register_db_commands()
