"""``creditdb guarantee quote|price|portfolio``: guarantee pricing without a database.

Rates are fractions per annum (0.012 = 1.2% p.a.), amounts in currency units, PD is the
one-year probability of default. Conventions of the pricing are in ``models/pricing.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from creditdb.output import emit_json, open_engine, reject, to_json

MAX_PROBLEMS = 50


def _policy(policy_file: str | None, reinsurance: float | None, as_json: bool):
    from models.pricing import load_policy

    try:
        return load_policy(policy_file, reinsurance_share=reinsurance)
    except (OSError, ValueError, TypeError) as exc:
        reject(f"policy {policy_file or 'default'}: {exc}", as_json=as_json)


def _schedule(name: str, as_json: bool):
    from models.fee_schedule import FeeScheduleError, load_schedule

    try:
        return load_schedule(name)
    except FeeScheduleError as exc:
        reject(str(exc), payload={"field": "schedule"}, as_json=as_json)


def _read_loans(path: str, as_json: bool):
    import pandas as pd

    p = Path(path)
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(p)
        else:
            df = pd.read_csv(p, dtype={"loan_id": str, "amortization": str}, skipinitialspace=True)
    except FileNotFoundError:
        reject(f"{path}: file not found", as_json=as_json)
    except Exception as exc:  # parser errors of many kinds
        reject(f"{path}: cannot read loans: {exc}", as_json=as_json)
    df.columns = [str(c).strip().lower() for c in df.columns]
    dupes = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dupes:
        reject(f"{path}: row 1: column(s) {', '.join(dupes)} appear more than once (names compared in lower case)",
               as_json=as_json)
    return df


def _check(df, path: str, required: tuple[str, ...], as_json: bool) -> None:
    from models.pricing import validate_loans

    if "loan_id" not in df.columns:
        required = ("loan_id", *required)
    problems = validate_loans(df, limit=MAX_PROBLEMS, required=required)
    if problems:
        more = f" (first {MAX_PROBLEMS} shown)" if len(problems) >= MAX_PROBLEMS else ""
        lines = [f"{path}: {p}" for p in problems]
        reject(
            f"{path}: {len(problems)} invalid field(s){more}:\n  " + "\n  ".join(lines),
            payload={"file": path, "problems": [p.__dict__ for p in problems]},
            as_json=as_json,
        )


def _write(df, out: str) -> None:
    p = Path(out)
    if p.suffix.lower() in (".parquet", ".pq"):
        df.to_parquet(p, index=False)
    else:
        from creditdb.output import write_safe_csv

        write_safe_csv(df, p)  # loan ids and extra columns come from the user's file


@click.group()
def guarantee() -> None:
    """Price credit guarantees: one loan, a file of loans, or a portfolio loss simulation.

    Fee schedules (models/data/fee_schedule_*.toml: japan, kodit, sba, or any .toml path)
    and the pricing policy (models/data/pricing_policy.toml) are data files.
    """


@guarantee.command("quote")
@click.option("--pd", "pd_", type=float, default=None, help="One-year probability of default, in (0, 1).")
@click.option("--firm-of", "firm_of", default=None, metavar="INSTITUTION:BORROWER_KEY",
              help="Quote by firm: PD from the approved model's latest score of this borrower.")
@click.option("--institution", "firm_inst", default=None, help="With --borrower: the bank that knows the firm.")
@click.option("--borrower", "borrower_key", default=None, help="With --institution: the bank's borrower key.")
@click.option("--amount", type=float, required=True, help="Loan amount in currency units.")
@click.option("--tenor", type=float, required=True, help="Tenor in years.")
@click.option("--coverage", type=float, default=None, help="Guaranteed share of the loan (default: policy, 0.8).")
@click.option("--lgd", type=float, default=None, help="Loss given default (default: policy by --secured).")
@click.option("--amortization", default="annuity", show_default=True, help="bullet, linear or annuity.")
@click.option("--rate", type=float, default=None, help="Loan interest rate p.a. (annuity instalments).")
@click.option("--sales", type=float, default=None, help="Annual sales in currency units (Basel SME adjustment).")
@click.option("--secured", is_flag=True, help="Secured guarantee (lower LGD; schedule discount).")
@click.option("--no-statements", is_flag=True, help="Firm has no financial statements yet.")
@click.option("--instalments", type=int, default=None, help="Number of instalments (default: monthly).")
@click.option("--schedule", default="japan", show_default=True, help="Fee schedule name or TOML path.")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), default=None, help="Pricing policy TOML.")
@click.option("--reinsurance", type=float, default=None, help="Reinsured share of claims (overrides the policy).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def quote(
    pd_: float | None, firm_of: str | None, firm_inst: str | None, borrower_key: str | None, amount: float,
    tenor: float, coverage: float | None, lgd: float | None, amortization: str,
    rate: float | None, sales: float | None, secured: bool, no_statements: bool, instalments: int | None,
    schedule: str, policy_file: str | None, reinsurance: float | None, as_json: bool,
) -> None:
    """Price one guarantee: IRB capital, expected loss, break-even and charged fee, subsidy.

    \b
    Example:
      creditdb guarantee quote --pd 0.012 --amount 10000000 --tenor 5 --coverage 0.8 \\
          --lgd 0.6 --amortization annuity --rate 0.02 --sales 300000000 --schedule japan
      creditdb guarantee quote --firm-of BK1:B00042 --amount 10000000 --tenor 5 --json

    By firm (--firm-of or --institution/--borrower) the PD is the latest score of the
    firm from the APPROVED model, and --sales defaults to the annualised sales of the
    firm's latest statement.
    """
    import pandas as pd

    from models.pricing import price_loans

    firm = None
    if firm_of is not None and (firm_inst or borrower_key):
        raise click.UsageError("give --firm-of or --institution/--borrower, not both")
    if firm_of is not None:
        if ":" not in firm_of:
            raise click.BadParameter("expected INSTITUTION:BORROWER_KEY", param_hint="--firm-of")
        firm_inst, borrower_key = firm_of.split(":", 1)
    elif bool(firm_inst) != bool(borrower_key):
        raise click.UsageError("--institution and --borrower go together")
    by_firm = borrower_key is not None
    if by_firm == (pd_ is not None):
        raise click.UsageError("give either --pd or a firm (--firm-of / --institution with --borrower)")
    if by_firm:
        from creditdb.commands.guarantee_db import resolve_firm

        assert firm_inst is not None and borrower_key is not None  # by_firm: both given (checked above)
        firm = resolve_firm(firm_inst, borrower_key, as_json)
        pd_ = firm["pd"]
        if sales is None and firm["sales"] is not None:
            sales = firm["sales"]

    loan: dict[str, Any] = {"loan_id": "quote", "pd": pd_, "amount": amount, "tenor_years": tenor,
                            "amortization": amortization, "secured": secured, "no_statements": no_statements}
    for k, v in (("coverage", coverage), ("lgd", lgd), ("rate", rate), ("sales", sales), ("instalments", instalments)):
        if v is not None:
            loan[k] = v
    df = pd.DataFrame([loan])
    from models.pricing import validate_loans

    problems = validate_loans(df)
    if problems:
        opt = {"pd": "--pd", "tenor_years": "--tenor"}
        msg = "; ".join(f"{opt.get(p.field, '--' + p.field)}: {p.message}" for p in problems)
        reject(msg, payload={"problems": [p.__dict__ for p in problems]}, as_json=as_json)
    if reinsurance is not None and not 0 <= reinsurance <= 1:
        reject("--reinsurance: must be a fraction in [0, 1]", as_json=as_json)
    pol = _policy(policy_file, reinsurance, as_json)
    if firm is not None and firm["statement_currency"] not in (None, pol.currency) and "sales" in df and \
            df["sales"].iloc[0] == firm["sales"]:
        reject(f"firm {firm['firm_id']}: financial_statement.sales is in {firm['statement_currency']}, not the "
               f"policy currency {pol.currency}: give --sales", as_json=as_json)
    sched = _schedule(schedule, as_json)
    row = price_loans(df, pol, sched).iloc[0].to_dict()
    row = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    row["category"] = str(row["category"])
    row["amortization"] = str(row["amortization"])
    row.pop("loan_id", None)
    result = {"ok": True, "schedule": sched.name, "currency": pol.currency, "policy": pol.__dict__, "quote": row}
    if firm is not None:
        result["firm"] = firm
        from creditdb.commands.guarantee_db import audit_quote

        audit_quote(firm, df, row)
    if as_json:
        emit_json(result)
        return
    cur = pol.currency
    lines = [
        f"guarantee quote ({sched.name} schedule, {cur})",
        *([f"  firm              {firm['firm_id']} ({firm_inst}:{borrower_key}), model {firm['model_version']}, "
           f"grade {firm['grade']}, score fee category {firm['fee_category']}"] if firm else []),
        f"  loan              {amount:,.0f} over {tenor:g} years, {row['amortization']}, coverage {row['coverage']:.0%}, "
        f"LGD {row['lgd']:.0%}",
        f"  PD (1 year)       {pd_:.4%}   cumulative over tenor {row['cum_pd']:.4%}",
        f"  IRB K             {row['irb_k']:.4%} of EAD   risk weight {row['risk_weight']:.2%}   "
        f"capital {row['capital']:,.0f}",
        f"  expected loss PV  {row['el_pv']:,.0f}",
        f"  cost of capital   {row['coc_pv']:,.0f}   admin cost PV {row['admin_pv']:,.0f}",
        f"  break-even fee    {row['break_even_rate']:.4%} p.a. of covered outstanding",
        f"  fee category      {row['category']}   schedule rate {row['schedule_rate']:.4%} p.a. "
        f"(on {sched.fee_base} balance, {sched.payment})",
        f"  fee charged       {row['fee_charged']:,.0f}   (= {row['charged_rate']:.4%} p.a. of covered outstanding)",
        f"  subsidy gap       {row['subsidy_gap_rate']:.4%} p.a.   {row['subsidy_gap_pv']:,.0f} PV over the life",
    ]
    click.echo("\n".join(lines))


def _category_summary(priced) -> list[dict[str, Any]]:
    g = priced.groupby("category", observed=True, sort=False)
    agg = g.agg(
        loans=("pd", "size"), amount=("amount", "sum"), fee_charged=("fee_charged", "sum"),
        fee_charged_pv=("fee_charged_pv", "sum"), fee_base_pv=("fee_base_pv", "sum"),
        cost_pv=("cost_pv", "sum"), subsidy_gap_pv=("subsidy_gap_pv", "sum"),
    )
    order = [c for c in priced["category"].cat.categories if c in agg.index]
    rows = []
    for cat in order:
        r = agg.loc[cat]
        rows.append({
            "category": str(cat), "loans": int(r["loans"]), "amount": float(r["amount"]),
            "fee_charged": float(r["fee_charged"]),
            "break_even_rate": float(r["cost_pv"] / r["fee_base_pv"]),
            "charged_rate": float(r["fee_charged_pv"] / r["fee_base_pv"]),
            "subsidy_gap_pv": float(r["subsidy_gap_pv"]),
        })
    return rows


@guarantee.command("price")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Priced table (.csv or .parquet).")
@click.option("--schedule", default="japan", show_default=True, help="Fee schedule name or TOML path.")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), default=None, help="Pricing policy TOML.")
@click.option("--reinsurance", type=float, default=None, help="Reinsured share of claims (overrides the policy).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary.")
def price(file: str, out: str, schedule: str, policy_file: str | None, reinsurance: float | None, as_json: bool) -> None:
    """Price every loan of FILE (CSV or Parquet) and write the priced table to --out.

    Columns: loan_id, pd, amount, tenor_years (required); coverage, lgd, amortization
    (bullet/linear/annuity), rate, sales, secured, no_statements, instalments (optional,
    empty = policy default). Rows are numbered with the header as row 1; every invalid
    field is reported (up to 50) and nothing is written.

    \b
    Example:
      creditdb guarantee price loans.csv --out priced.parquet --schedule japan
    """
    from models.pricing import price_loans

    if reinsurance is not None and not 0 <= reinsurance <= 1:
        reject("--reinsurance: must be a fraction in [0, 1]", as_json=as_json)
    sched = _schedule(schedule, as_json)
    pol = _policy(policy_file, reinsurance, as_json)
    df = _read_loans(file, as_json)
    if df.empty:
        reject(f"{file}: no loans (the file has no data rows)", as_json=as_json)
    _check(df, file, ("pd", "amount", "tenor_years"), as_json)
    priced = price_loans(df, pol, sched)
    priced["cost_pv"] = priced["el_pv"] + priced["coc_pv"] + priced["admin_pv"]
    extra = [c for c in df.columns if c not in priced.columns]
    for c in extra:
        priced[c] = df[c].to_numpy()
    _write(priced, out)
    cats = _category_summary(priced)
    total = {
        "loans": int(len(priced)),
        "amount": float(priced["amount"].sum()),
        "fee_charged": float(priced["fee_charged"].sum()),
        "expected_loss_pv": float(priced["el_pv"].sum()),
        "break_even_rate": float(priced["cost_pv"].sum() / priced["fee_base_pv"].sum()),
        "charged_rate": float(priced["fee_charged_pv"].sum() / priced["fee_base_pv"].sum()),
        "subsidy_gap_pv": float(priced["subsidy_gap_pv"].sum()),
    }
    if as_json:
        emit_json({"ok": True, "file": file, "out": out, "schedule": sched.name, "currency": pol.currency,
                   "by_category": cats, "total": total})
        return
    click.echo(f"priced {total['loans']:,} loans from {file} -> {out} ({sched.name} schedule, {pol.currency})")
    click.echo(f"{'category':>8} {'loans':>8} {'amount':>18} {'fee charged':>16} {'break-even':>10} "
               f"{'charged':>8} {'subsidy PV':>16}")
    for r in cats:
        click.echo(f"{r['category']:>8} {r['loans']:>8,} {r['amount']:>18,.0f} {r['fee_charged']:>16,.0f} "
                   f"{r['break_even_rate']:>10.3%} {r['charged_rate']:>8.3%} {r['subsidy_gap_pv']:>16,.0f}")
    click.echo(f"total subsidy gap (PV): {total['subsidy_gap_pv']:,.0f} {pol.currency}; "
               f"break-even {total['break_even_rate']:.3%} vs charged {total['charged_rate']:.3%} p.a. "
               f"of covered outstanding")


def _histogram_png(result, fund: float | None) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=100)
    edges, counts = result.hist_edges, result.hist_counts
    ax.bar(edges[:-1], counts / counts.sum(), width=edges[1:] - edges[:-1], align="edge", color="#4a78b5")
    ax.axvline(result.expected_loss, color="black", ls="--", lw=1, label="expected loss")
    for a, col in ((0.99, "#e69f00"), (0.999, "#d62728")):
        ax.axvline(result.quantiles[a], color=col, lw=1.2, label=f"VaR {a:.1%}")
    if fund is not None:
        ax.axvline(fund, color="green", lw=1.5, label="fund")
    ax.set_xlabel("one-year loss (currency units)")
    ax.set_ylabel("share of scenarios")
    ax.legend(frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _html_report(summary: dict[str, Any], png: bytes, source: str) -> str:
    import base64
    import html

    def fmt(v: Any) -> str:
        return f"{v:,.2f}" if isinstance(v, float) else html.escape(str(v))

    rows = [
        ("loans", summary["n_loans"]), ("scenarios", summary["n_scenarios"]), ("seed", summary["seed"]),
        ("method", summary["method"]), ("total exposure (covered, net of reinsurance)", summary["total_exposure"]),
        ("expected loss (simulated)", summary["expected_loss"]),
        ("expected loss (sum PD x LGD x EAD)", summary["expected_loss_analytic"]),
    ]
    rows += [(f"VaR {k}", v) for k, v in summary["quantiles"].items()]
    rows += [(f"expected shortfall {k}", v) for k, v in summary["expected_shortfall"].items()]
    if summary["fund"] is not None:
        rows += [("fund", summary["fund"]), ("P(loss > fund)", f"{summary['prob_loss_exceeds_fund']:.4%}")]
    table = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{fmt(v)}</td></tr>" for k, v in rows)
    img = base64.b64encode(png).decode("ascii")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Guarantee portfolio loss</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}th{{text-align:left;padding-right:2em}}
td{{text-align:right}}</style></head><body>
<h1>Guarantee portfolio: one-year loss distribution</h1>
<p>Source: {html.escape(source)}. One-factor Vasicek Monte Carlo (creditdb models/portfolio.py).</p>
<table>{table}</table>
<h2>Loss histogram</h2>
<img alt="loss histogram" src="data:image/png;base64,{img}">
</body></html>
"""


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
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), default=None, help="Pricing policy TOML.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), default=None, help="Write an HTML report.")
@click.option("--json", "json_out", is_flag=False, flag_value="-", default=None,
              help="Write the JSON summary to FILE ('-' or no value: standard output).")
def portfolio(
    file: str | None, from_db: bool, issued_only: bool, scenarios: int, seed: int, fund: float | None, rho: float | None, method: str,
    reinsurance: float | None, policy_file: str | None, html_out: str | None, json_out: str | None,
) -> None:
    """Simulate the one-year loss distribution of the guarantees in FILE (loans or priced).

    Exposure per loan = amount x coverage x (1 - reinsurance share); PD one-year; LGD from
    the file or the policy. Put FILE before --json when --json has no value.

    With --from-db instead of FILE: every stored loan whose firm has a score from the
    approved model (or, with --issued-only, the loans with an issued guarantee, at the
    coverage issued); amount = outstanding (else amount), coverage = the loan's (else the
    policy's), LGD by the secured flag, sales from the firm's latest statement.

    \b
    Example:
      creditdb guarantee portfolio priced.parquet --scenarios 10000 --seed 1 \\
          --fund 2000000000 --html loss.html --json loss.json
      creditdb guarantee portfolio --from-db --issued-only --scenarios 10000 --json loss.json
    """
    import numpy as np

    from models.portfolio import simulate_portfolio
    from models.pricing import as_bool

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
    if from_db:
        from creditdb.commands.guarantee_db import db_portfolio_loans

        df, file = db_portfolio_loans(pol, issued_only, as_json)
    else:
        assert file is not None  # a FILE or --from-db (checked above)
        df = _read_loans(file, as_json)
        _check(df, file, ("pd", "amount"), as_json)
    import pandas as pd

    n = len(df)
    if n == 0:
        reject(f"{file}: no loans", as_json=as_json)

    def col(name: str, default: float) -> np.ndarray:
        if name not in df:
            return np.full(n, default)
        v = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)
        return np.where(np.isnan(v), default, v)

    secured = as_bool(df["secured"]) if "secured" in df else np.zeros(n, dtype=bool)
    lgd = col("lgd", np.nan)
    lgd = np.where(np.isnan(lgd), np.where(secured, pol.lgd_secured, pol.lgd_unsecured), lgd)
    ead = col("amount", np.nan) * col("coverage", pol.coverage) * (1.0 - pol.reinsurance_share)
    sales_eur_m = col("sales", np.nan) / pol.units_per_eur / 1e6
    import sys

    from tqdm import tqdm

    with tqdm(total=scenarios, desc="scenarios", unit="scen", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
        result = simulate_portfolio(
            col("pd", np.nan), lgd, ead, rho=rho, sales_eur_m=sales_eur_m, n_scenarios=scenarios, seed=seed,
            fund=fund, method=method, progress=bar.update,
        )
    summary = {"ok": True, "file": file, "currency": pol.currency,
               "reinsurance_share": pol.reinsurance_share, **result.to_dict()}
    if from_db:
        import hashlib

        from creditdb.settings import get_settings
        from pipelines.guarantees import frame_hash, record_run

        summary["audit_event"] = record_run(
            open_engine(create=False), "guarantee.portfolio",
            {"source": file, "loans": n, "scenarios": scenarios, "seed": seed, "method": method, "fund": fund},
            frame_hash(df), hashlib.sha256(to_json(result.to_dict()).encode()).hexdigest(),
            actor=get_settings().actor)
    if html_out:
        Path(html_out).write_text(_html_report(summary, _histogram_png(result, fund), file), encoding="utf-8")
    if json_out == "-":
        emit_json(summary)
        return
    if json_out:
        Path(json_out).write_text(to_json(summary), encoding="utf-8")
    cur = pol.currency
    click.echo(f"portfolio of {n:,} guarantees from {file}: {scenarios:,} scenarios, seed {seed}, {method}")
    click.echo(f"  exposure (covered, net of reinsurance) {result.total_exposure:,.0f} {cur}")
    click.echo(f"  expected loss  {result.expected_loss:,.0f}  (sum PD x LGD x EAD {result.expected_loss_analytic:,.0f})")
    for a, v in result.quantiles.items():
        click.echo(f"  VaR {a:.1%}      {v:,.0f}")
    for a, v in result.expected_shortfall.items():
        click.echo(f"  ES  {a:.1%}      {v:,.0f}")
    if fund is not None:
        click.echo(f"  fund {fund:,.0f}: P(loss > fund) = {result.prob_loss_exceeds_fund:.4%}")
    for path in (html_out, json_out):
        if path:
            click.echo(f"  wrote {path}")


def _register_db_commands() -> None:
    from creditdb.commands.guarantee_db import issue, list_, price_book

    for cmd in (price_book, issue, list_):
        guarantee.add_command(cmd)


_register_db_commands()
