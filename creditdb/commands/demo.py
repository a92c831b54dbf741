"""``creditdb demo``: the whole journey on an embedded database, in one command."""

from __future__ import annotations

from pathlib import Path

import click

from creditdb.output import emit_json


@click.command()
@click.option("--firms", default=5000, show_default=True, help="Synthetic firms.")
@click.option("--years", default=8, show_default=True, help="Fiscal years per firm.")
@click.option("--banks", default=3, show_default=True, help="Submitting banks.")
@click.option("--seed", default=42, show_default=True)
@click.option("--error-rate", default=0.002, show_default=True,
              help="Share of statement rows with an injected error, to show the rejection report.")
@click.option("--out", "out_dir", default="creditdb-demo", show_default=True,
              type=click.Path(path_type=Path, file_okay=False), help="Where the synthetic files go.")
@click.option("--countries", default=None,
              help="Comma-separated countries (e.g. JP,TH): the regional demo, --firms and --banks per country; "
                   "one pooled model validated per country, the ASEAN SME database report, a capped "
                   "portfolio guarantee (TCG).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def demo(firms: int, years: int, banks: int, seed: int, error_rate: float, out_dir: Path, countries: str | None,
         as_json: bool) -> None:
    """Synthesise CRD-like data for a few banks, submit it, train the rating model, score.

    After submitting, the rating model is trained on the demo data (cut-off: the
    end of the last complete default window), every firm is scored with it, and the
    out-of-time AUC of the model and of the challenger and the grade distribution are
    printed.

    Uses CREDITDB_URL (default: creditdb.sqlite in the working directory, created if
    missing). Running it again on the same database reuses what is already loaded.

    \b
    Example:
      mkdir try && cd try && creditdb demo
      creditdb demo --firms 1000 --years 5 --json
      creditdb demo --countries JP,TH --firms 2000 --years 6 --banks 2
    """
    from creditdb.anonymise import pseudonymiser
    from creditdb.output import open_engine
    from creditdb.settings import get_settings
    from pipelines.demo import run_demo

    engine = open_engine()
    if countries:
        from pipelines.region_demo import run

        settings = get_settings()
        codes = [c.strip().upper() for c in countries.split(",") if c.strip()]
        result = run(engine, codes, firms, years, banks, seed, out_dir, pseudonymiser(engine, settings),
                     settings.actor, (lambda line: None) if as_json else click.echo)
        if as_json:
            emit_json(result)
        return
    summary = run_demo(engine, firms=firms, years=years, banks=banks, seed=seed, error_rate=error_rate,
                       out_dir=out_dir, key=pseudonymiser(engine, get_settings()), actor=get_settings().actor,
                       on_event=(lambda line: None) if as_json else click.echo)
    if as_json:
        emit_json(summary)
