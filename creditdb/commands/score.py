"""``creditdb score firms|file|lookup``: PDs, grades and fee categories from a registered model."""

from __future__ import annotations

from pathlib import Path

import click

from creditdb.output import emit_json, open_engine, reject


@click.group()
def score() -> None:
    """Score firms with a registered rating model (PD, grade, fee category, reasons).

    \b
    Example:
      creditdb score firms --json
    """


@score.command("firms")
@click.option("--model", "version", default=None, help="Model version (default: the approved model).")
@click.option("--as-of", "as_of", default=None, help="Score each firm's latest statement up to this date "
                                                     "(YYYY-MM-DD, default today).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def firms(version: str | None, as_of: str | None, as_json: bool) -> None:
    """Score the latest statement of every firm in the database and store the scores.

    \b
    Example:
      creditdb score firms --model rating-0123456789ab
      creditdb score firms --as-of 2024-03-31 --json
    """
    import datetime as dt

    from creditdb.registry import RegistryError
    from creditdb.settings import get_settings
    from pipelines.scoring import score_firms

    day = None
    if as_of:
        try:
            day = dt.date.fromisoformat(as_of)
        except ValueError:
            reject(f"--as-of: {as_of!r} is not a date (YYYY-MM-DD)", as_json=as_json)
    try:
        res = score_firms(open_engine(), version, day, actor=get_settings().actor)
    except (RegistryError, ValueError) as exc:
        reject(str(exc), as_json=as_json)
    if as_json:
        emit_json({"ok": True, **res})
        return
    click.echo(f"scored {res['firms']:,} firms ({res['scores']:,} scores: one per firm and institution) with "
               f"{res['version']} ({res['status']}) as of {res['as_of']}; "
               f"{res['in_default']:,} in default; mean PD {res['mean_pd'] * 100:.2f}%")
    click.echo("grades: " + ", ".join(f"{g}:{n:,}" for g, n in res["grades"].items() if n))


@score.command("file")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--institution", "-i", required=True, help="Code of the institution sending the file.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Results file (.csv or .parquet).")
@click.option("--model", "version", default=None, help="Model version (default: the approved model).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
def file_(file: Path, institution: str, out: Path, version: str | None, as_json: bool) -> None:
    """Batch-score a bank's statements file without storing it.

    The file has the columns of a statements submission and is typed and validated
    the same way; rows failing a row rule are returned with status 'rejected' and the
    reason. Results carry the bank's own borrower_key. Earlier statements of a firm
    already in the database (found by the keyed hash of the borrower key or the
    corporate number) are used for growth rates. Nothing is written to the database.

    \b
    Example:
      creditdb score file statements.csv --institution BK1 --out scores.csv --model rating-0123456789ab
    """
    from creditdb.anonymise import pseudonymiser
    from creditdb.registry import RegistryError
    from creditdb.settings import ConfigError
    from models.fx import FxError
    from pipelines.scoring import ScoreFileError, score_file, write_results

    engine = open_engine()
    try:
        key = pseudonymiser(engine)
    except ConfigError as exc:
        reject(str(exc), as_json=as_json)
    try:
        res, ver = score_file(engine, file, institution, key, version)
    except ScoreFileError as exc:
        reject(str(exc), {"problems": exc.problems}, as_json=as_json)
    except (RegistryError, LookupError, ConfigError, PermissionError, FxError) as exc:
        reject(str(exc), as_json=as_json)
    write_results(res, out)
    n_ok = int((res["status"] == "scored").sum())
    summary = {"ok": True, "file": str(file), "out": str(out), "model_version": ver, "rows": len(res),
               "scored": n_ok, "rejected": len(res) - n_ok,
               "rejections": res.loc[res["status"] == "rejected", ["row", "borrower_key", "message"]]
               .astype(object).to_dict("records")[:50]}
    if as_json:
        emit_json(summary)
        return
    click.echo(f"{file}: scored {n_ok:,} of {len(res):,} rows with {ver}; results in {out}")
    for r in summary["rejections"][:20]:
        click.secho(f"  {file}, row {r['row']}, {r['message']}", fg="red", err=True)


@score.command("lookup")
@click.argument("keys", nargs=-1)
@click.option("--institution", "-i", required=True, help="Your institution code.")
@click.option("--keys-file", type=click.Path(path_type=Path, dir_okay=False),
              help="Text file with one borrower key per line (in addition to KEYS).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def lookup_(keys: tuple[str, ...], institution: str, keys_file: Path | None, as_json: bool) -> None:
    """Latest scores of your own borrowers, by your own borrower keys.

    The keys are pseudonymised with the database's keyed hash to find the firms and
    are not stored. Only borrowers your institution submitted are found. The score
    shown is the approved model's; where that model has not scored a borrower, another
    model's latest score is shown marked as from a retired or a candidate (never
    approved) model, which guarantees and price books do not use.

    \b
    Example:
      creditdb score lookup --institution BK1 BK1-C0000001 BK1-C0000002
      creditdb score lookup --institution BK1 --keys-file my_keys.txt --json
    """
    from creditdb.anonymise import pseudonymiser
    from creditdb.settings import ConfigError
    from pipelines.scoring import lookup

    all_keys = list(keys)
    if keys_file:
        if not keys_file.is_file():
            reject(f"{keys_file}: no such file", as_json=as_json)
        all_keys += [ln.strip() for ln in keys_file.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not all_keys:
        reject("give at least one borrower key (arguments or --keys-file)", as_json=as_json)
    try:
        engine = open_engine()
        res = lookup(engine, institution, all_keys, pseudonymiser(engine))
    except (ConfigError, LookupError, PermissionError) as exc:
        reject(str(exc), as_json=as_json)
    records = [{k: v for k, v in r.items() if not (isinstance(v, float) and v != v)}
               for r in res.astype(object).where(res.notna(), None).to_dict("records")]
    for r in records:
        if r["found"]:
            r["fee_category"] = int(r["fee_category"])
    if as_json:
        emit_json({"ok": True, "institution": institution, "found": int(res["found"].sum()), "results": records})
        return
    for r in records:
        if not r["found"]:
            click.echo(f"{r['borrower_key']}: no score (not your borrower, or not scored yet)")
            continue
        reasons = "; ".join(x["text"] for x in r["reasons"] or [])
        if r.get("model_status") == "retired":
            reasons = (f"[score of the retired model {r['model_version']}: not used; run creditdb score firms]  "
                       + reasons)
        elif r.get("model_status") == "candidate":
            reasons = (f"[score of the candidate model {r['model_version']}, never approved: not used; "
                       "run creditdb score firms after approval]  " + reasons)
        click.echo(f"{r['borrower_key']}: PD {r['pd'] * 100:.2f}%  grade {r['grade']}  fee category "
                   f"{r['fee_category']}  ({r['model_version']}, statement {r['fiscal_year_end'] or 'of another member'})"
                   f"  {reasons}")
