"""``creditdb scheme``: the region's guarantee schemes; capped portfolio guarantee pricing."""

from __future__ import annotations

from pathlib import Path

import click

from creditdb.output import emit_json, reject


@click.group()
def scheme() -> None:
    """Guarantee schemes of the region (TCG, CGC Malaysia, KUR) beside Japan, KODIT and SBA.

    \b
    Example:
      creditdb scheme list
      creditdb scheme price-capped loans.csv --scheme TCG-PGS --term 5
    """


@scheme.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_(as_json: bool) -> None:
    """List the schemes with their sources and dates.

    \b
    Example:
      creditdb scheme list --json
    """
    from models.guarantee_schemes import load_schemes

    schemes = list(load_schemes().values())
    if as_json:
        emit_json(schemes)
        return
    for s in schemes:
        click.echo(f"{s['id']:8} {s['country']} {s['name']}")
        click.echo(f"         source: {s['source']}")


@scheme.command("price-capped")
@click.argument("loans", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--scheme", "scheme_id", default="TCG-PGS", show_default=True,
              help="Scheme whose fee and cap are used (a capped_portfolio scheme).")
@click.option("--cap", type=float, default=None, help="Cap on claims, share of the portfolio (default: the "
              "scheme's lower figure).")
@click.option("--term", "term_years", type=float, default=5.0, show_default=True, help="Term in years.")
@click.option("--rho", type=float, default=None, help="Asset correlation (default: Basel corporate, SME-adjusted).")
@click.option("--scenarios", type=int, default=20_000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--hurdle", type=float, default=0.0, show_default=True, help="Hurdle rate on unexpected claims p.a.")
@click.option("--json", "as_json", is_flag=True)
def price_capped(loans: Path, scheme_id: str, cap: float | None, term_years: float, rho: float | None,
                 scenarios: int, seed: int, hurdle: float, as_json: bool) -> None:
    """Price a capped portfolio guarantee for the LOANS of a CSV file.

    Columns: pd (annual, 0-1), amount (guaranteed, currency units); optional lgd (default
    1: the guarantor pays the defaulted guaranteed amount, up to the cap) and sales_eur_m
    (annual sales in EUR millions, for the Basel SME correlation).

    \b
    Example:
      creditdb scheme price-capped loans.csv --scheme TCG-PGS --cap 0.24 --term 7
    """
    import pandas as pd

    from models.capped_portfolio import price_capped_portfolio
    from models.guarantee_schemes import load_schemes

    schemes = load_schemes()
    if scheme_id not in schemes or schemes[scheme_id]["kind"] != "capped_portfolio":
        capped = [k for k, v in schemes.items() if v["kind"] == "capped_portfolio"]
        raise click.BadParameter(f"must be one of {', '.join(capped)}", param_hint="--scheme")
    s = schemes[scheme_id]
    frame = pd.read_csv(loans)
    for col in ("pd", "amount"):
        if col not in frame:
            reject(f"{loans}: missing column {col!r} (need pd, amount; optional lgd, sales_eur_m)", as_json=as_json)
    p = pd.to_numeric(frame["pd"], errors="coerce")
    bad = frame.index[~((p > 0) & (p < 1))]
    if len(bad):
        reject(f"{loans}, row {int(bad[0]) + 2}, column pd: must lie strictly between 0 and 1", as_json=as_json)
    amount = pd.to_numeric(frame["amount"], errors="coerce")
    bad = frame.index[~(amount >= 0)]
    if len(bad):
        reject(f"{loans}, row {int(bad[0]) + 2}, column amount: must be a non-negative number", as_json=as_json)
    share = cap if cap is not None else float(s["cap_share_of_portfolio"][0])
    res = price_capped_portfolio(p.to_numpy(), amount.to_numpy(), cap_share=share, term_years=term_years,
                                 lgd=frame["lgd"].to_numpy(dtype=float) if "lgd" in frame else 1.0, rho=rho,
                                 sales_eur_m=frame["sales_eur_m"].to_numpy(dtype=float) if "sales_eur_m" in frame
                                 else None, fee_rate=float(s["annual_fee_on_portfolio"]), hurdle_rate=hurdle,
                                 n_scenarios=scenarios, seed=seed)
    out = {"scheme": scheme_id, "source": s["source"], **res.to_dict()}
    if as_json:
        emit_json(out)
        return
    click.echo(f"{scheme_id}: {res.loans} loans, portfolio {res.portfolio:,.0f}, cap {share:.0%} = {res.cap:,.0f}, "
               f"term {term_years:g} y")
    click.echo(f"  expected loss        {res.expected_loss:,.0f}")
    click.echo(f"  expected claims      {res.expected_claims:,.0f} (+/- {res.expected_claims_se:,.0f} MC s.e.)")
    click.echo(f"  P(cap binds)         {res.prob_cap_binds:.2%}")
    click.echo(f"  claims VaR 99.9%     {res.claims_var_999:,.0f}")
    click.echo(f"  break-even fee       {res.break_even_fee_rate:.3%} p.a. (with capital "
               f"{res.break_even_fee_rate_with_capital:.3%}); scheme fee {res.fee_rate:.2%}")
