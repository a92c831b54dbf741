"""``creditdb model ...``: the rating model's life cycle.

This module holds the click group ``model``. ``evaluate`` (research mode: cross-
validated AUC on any feature table, no database) is defined below in its own
section; the database-backed sub-commands (train, list, show, export, validate,
approve) are added to the same group elsewhere in this module.
"""

from __future__ import annotations

import sys

import click

from creditdb.output import emit_json, reject


@click.group()
def model() -> None:
    """Rating model: research evaluation, training, validation and approval."""


# --------------------------------------------------------------------------------------
# model evaluate (research mode, no database)
# --------------------------------------------------------------------------------------

def _format_evaluation(result: dict, path: str) -> str:
    lines = [
        f"{path}: {result['n_rows']} rows, {result['n_features']} features, "
        f"{result['n_defaults']} defaults ({result['default_rate'] * 100:.2f}%)",
        f"protocol: {result['protocol']}",
        f"spec: {result['spec']['name']} (sha256 {result['spec']['sha256'][:12]}), "
        f"monotone constraints used: {len(result['spec']['monotone_constraints_used'])}",
        "",
        f"{'model':<12} " + " ".join(f"{'fold ' + str(k + 1):>8}" for k in range(result["cv"]))
        + f" {'mean':>8} {'pooled':>8}",
    ]
    for name, m in result["models"].items():
        lines.append(f"{name:<12} " + " ".join(f"{a:8.4f}" for a in m["fold_auc"])
                     + f" {m['mean_auc']:8.4f} {m['pooled_auc']:8.4f}")
    lines.append("")
    lines.append("AUC per fold, mean of folds and pooled out-of-fold AUC; same folds for both models.")
    return "\n".join(lines)


@model.command("evaluate")
@click.option("--features", "features_path", required=True, type=click.Path(dir_okay=False),
              help="Feature table: .csv, .parquet or .arff (ARFF '?' = missing).")
@click.option("--label", required=True, help="Name of the 0/1 default column (1 = default).")
@click.option("--cv", type=click.IntRange(min=2), default=5, show_default=True, help="Number of folds.")
@click.option("--seed", type=int, default=0, show_default=True, help="random_state of the fold shuffle.")
@click.option("--spec", "spec_path", default=None,
              help="Rating spec TOML (path, or name of a packaged spec such as research_v1.toml; "
                   "default: the production spec rating_v1.toml).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def evaluate(features_path: str, label: str, cv: int, seed: int, spec_path: str | None, as_json: bool) -> None:
    """Cross-validate the rating model (LightGBM) and the challenger (WoE scorecard).

    Both models are trained on the same stratified folds (shuffled with --seed);
    the command reports the AUC of every fold, the mean, and the pooled out-of-fold
    AUC. The spec's monotone constraints apply only to columns of the table with
    the same names. Nothing is stored.

    \b
    Example:
      creditdb model evaluate --features tests/data/polish_1year.arff --label class \\
          --cv 5 --seed 0 --spec research_v1.toml
    """
    from pathlib import Path

    from tqdm import tqdm

    from models.rating import load_spec
    from models.research import evaluate as run_evaluation, read_table, split_label

    path = Path(features_path)
    if not path.is_file():
        reject(f"{path}: no such file", as_json=as_json)
    try:
        spec = load_spec(spec_path)
    except (OSError, ValueError) as exc:
        reject(f"spec: {exc}", as_json=as_json)
    try:
        frame = read_table(path)
        X, y = split_label(frame, label, origin=str(path))
    except ValueError as exc:
        reject(str(exc), as_json=as_json)
    except Exception as exc:  # unreadable file (parser errors of csv/parquet/arff)
        reject(f"{path}: cannot read: {exc}", as_json=as_json)

    bar = tqdm(total=2 * cv, desc="folds", unit="fit", file=sys.stderr, disable=not sys.stderr.isatty())
    try:
        result = run_evaluation(X, y, cv=cv, seed=seed, spec=spec, on_step=lambda name, k: bar.update(1))
    except ValueError as exc:
        bar.close()
        reject(f"{path}: {exc}", as_json=as_json)
    bar.close()
    result["features"] = str(path)
    result["label"] = label
    if as_json:
        emit_json({"ok": True, **result})
    else:
        click.echo(_format_evaluation(result, str(path)))
