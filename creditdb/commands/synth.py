"""``creditdb synth``: write synthetic submissions of several banks plus the ground truth."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from creditdb.output import emit_json, reject


@click.command()
@click.option("--firms", type=click.IntRange(min=1), required=True, help="Number of SMEs.")
@click.option("--years", type=click.IntRange(min=1), required=True, help="Number of fiscal years.")
@click.option("--banks", type=click.IntRange(min=1), required=True, help="Number of banks (codes BK1..BKn).")
@click.option("--seed", type=int, required=True, help="Random seed; the same seed gives identical files.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output directory (created if missing).")
@click.option("--start-year", type=int, default=2015, show_default=True,
              help="Calendar year of the first fiscal year end.")
@click.option("--error-rate", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Share of statement rows given one injected error each (recorded in injected_errors.csv).")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--countries", default=None,
              help="Comma-separated ISO country codes (JP,TH,ID,VN,MY,PH,SG,BN,KH,LA,MM): --firms and --banks "
                   "per country, each in its own currency, industry mix, size and default level; banks are "
                   "<CC>BK1..; fx_rates.csv holds synthetic rates for VND, KHR, LAK, MMK.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary.")
def synth(firms: int, years: int, banks: int, seed: int, out: Path, start_year: int, error_rate: float,
          fmt: str, countries: str | None, as_json: bool) -> None:
    """Generate synthetic SME statements, loans and defaults for several banks.

    Writes institutions, answers (true one-year PD and default outcome of every
    submitted statement) and, per bank, BKn/statements, loans and defaults in the
    canonical columns of the data dictionary. Years are clipped so that no date
    lies in the future (a default window ends 15 months after a fiscal year end).

    \b
    Example:
      creditdb synth --firms 2000 --years 8 --banks 3 --seed 42 --out data/synth
      creditdb synth --firms 500 --years 5 --banks 2 --seed 1 --out /tmp/bad --error-rate 0.02 --json
      creditdb synth --firms 1000 --years 6 --banks 2 --seed 7 --countries JP,TH,VN --out data/region
    """
    from tqdm import tqdm

    from pipelines import synth as gen
    from pipelines import synth_region as region

    codes = [c.strip().upper() for c in countries.split(",") if c.strip()] if countries else None
    with tqdm(total=2, desc="synth", unit="step", disable=as_json, file=sys.stderr) as bar:
        try:
            if codes:
                data = region.generate_region(codes, firms, years, banks, seed, start_year=start_year,
                                              error_rate=error_rate)
            else:
                data = gen.generate(firms, years, banks, seed, start_year=start_year, error_rate=error_rate)
        except ValueError as exc:
            reject(str(exc), as_json=as_json)
        bar.update(1)
        summary = region.write_region(data, out, fmt) if codes else gen.write(data, out, fmt)
        bar.update(1)
    if as_json:
        emit_json({"ok": True, **summary})
        return
    clipped = (f" (clipped from {summary['years_requested']} so no date is in the future)"
               if summary["years"] != summary["years_requested"] else "")
    click.echo(f"wrote {out}: {summary['banks']} banks, {summary['firms']} firms, "
               f"{summary['years']} fiscal years {start_year}-{start_year + summary['years'] - 1}{clipped}")
    click.echo(f"  statements {summary['statements']}, loans {summary['loans']}, "
               f"default events {summary['defaults']}")
    click.echo(f"  firm-years {summary['firm_years']}, defaults {summary['defaulted_firms']} "
               f"(rate {summary['default_rate']:.2%}, mean true PD {summary['mean_true_pd']:.2%})")
    for cc, c in summary.get("countries", {}).items():
        click.echo(f"  {cc}: {c['firm_years']} firm-years in {c['currency']}, default rate {c['default_rate']:.2%}")
    if summary["injected_errors"]:
        click.echo(f"  injected errors {summary['injected_errors']} (see <BANK>/injected_errors.csv)")
