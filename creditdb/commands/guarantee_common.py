"""Option and file handling shared by the ``creditdb guarantee`` commands (no pricing here)."""

from __future__ import annotations

from pathlib import Path

from creditdb.output import reject

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
    return _normalise_columns(df, path, as_json)


def _normalise_columns(df, path: str, as_json: bool):
    """Column names stripped and in lower case; a name twice is refused (exit 1)."""
    df.columns = [str(c).strip().lower() for c in df.columns]
    dupes = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dupes:
        reject(f"{path}: row 1: column(s) {', '.join(dupes)} appear more than once (names compared in lower case)",
               as_json=as_json)
    return df


def _print_categories(cats) -> None:
    """The fees-by-category table of ``price`` and ``price-book`` (amounts without decimals)."""
    import click

    click.echo(f"{'category':>8} {'loans':>8} {'amount':>18} {'fee charged':>16} {'break-even':>10} "
               f"{'charged':>8} {'subsidy PV':>16}")
    for r in cats:
        click.echo(f"{r['category']:>8} {r['loans']:>8,} {r['amount']:>18,.0f} {r['fee_charged']:>16,.0f} "
                   f"{r['break_even_rate']:>10.3%} {r['charged_rate']:>8.3%} {r['subsidy_gap_pv']:>16,.0f}")


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


__all__ = ["MAX_PROBLEMS", "_check", "_normalise_columns", "_policy", "_print_categories", "_read_loans",
           "_schedule", "_write"]
