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
    """Rating model: research evaluation, training, validation and approval.

    \b
    Example:
      creditdb model train
      creditdb model list
    """


# --------------------------------------------------------------------------------------
# model evaluate (research mode, no database)
# --------------------------------------------------------------------------------------

def _format_evaluation(result: dict, path: str) -> str:
    from models.research import model_entries

    lines = [
        f"{path}: {result['n_rows']} rows, {result['n_features']} features, "
        f"{result['n_defaults']} defaults ({result['default_rate'] * 100:.2f}%)",
        f"protocol: {result['protocol']}",
        f"spec: {result['spec']['name']} (sha256 {result['spec']['sha256'][:12]}), "
        f"monotone constraints used: {len(result['spec']['monotone_constraints_used'])}",
    ]
    for w in result.get("warnings", []):
        lines.append(f"warning [{w['code']}]: {w['message']}")
    rating = result["models"].get("rating_model")
    lines += ["", f"{'model':<21} " + " ".join(f"{'fold ' + str(k + 1):>7}" for k in range(result["cv"]))
              + f" {'mean':>7} {'pooled':>7} {'95% CI':>15} {'Brier':>7} {'logloss':>7} {'c-int':>6} "
              f"{'c-slope':>7} {'mean PD':>7}"]
    for name, m in model_entries(result["models"]).items():
        tag = f"{name}{' *' if name == rating else ''}"
        lo, hi = m["pooled_auc_ci95"]
        lines.append(f"{tag:<21} " + " ".join(f"{a:7.4f}" for a in m["fold_auc"])
                     + f" {m['mean_auc']:7.4f} {m['pooled_auc']:7.4f} {lo:7.4f}-{hi:6.4f} {m['brier']:7.4f}"
                     f" {m['log_loss']:7.4f} {m['calibration_intercept']:6.2f} {m['calibration_slope']:7.2f}"
                     f" {m['mean_pd'] * 100:6.2f}%")
    lines.append("")
    lines.append(f"* the rating model. Observed default rate {result['default_rate'] * 100:.2f}%. AUC per fold, "
                 "mean of folds, pooled out-of-fold AUC with its DeLong 95% interval; calibration intercept "
                 "(0 = right on average, > 0 = PDs too low) and slope (1 = right spread, < 1 = too extreme) of the out-of-fold "
                 "PDs; same folds for all models.")
    if result.get("references_not_installed"):
        lines.append("references not installed: " + ", ".join(result["references_not_installed"])
                     + " (pip install \"creditdb[compare]\")")
    return "\n".join(lines)


@model.command("evaluate")
@click.option("--features", "features_path", required=True, type=click.Path(dir_okay=False),
              help="Feature table: .csv, .parquet or .arff (ARFF '?' = missing).")
@click.option("--label", required=True, help="Name of the default column (0/1, or see --positive).")
@click.option("--positive", default=None,
              help="Label value that means default (e.g. CHGOFF or bad); every other value is 0.")
@click.option("--cv", type=click.IntRange(min=2), default=5, show_default=True, help="Number of folds.")
@click.option("--seed", type=int, default=0, show_default=True, help="random_state of the fold shuffle.")
@click.option("--spec", "spec_path", default=None,
              help="Rating spec TOML (path, or name of a packaged spec such as research_v1.toml; "
                   "default: the production spec rating_v1.toml).")
@click.option("--compare", is_flag=True,
              help="Also train the plain references (logistic regression on quantile-normalised features, "
                   "LightGBM and XGBoost with default parameters, optbinning's scorecard; each when installed) "
                   "on the same folds.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def evaluate(features_path: str, label: str, positive: str | None, cv: int, seed: int, spec_path: str | None,
             compare: bool, as_json: bool) -> None:
    """Cross-validate the rating model, the challenger and (--compare) plain references.

    Every model is trained on the same stratified folds (shuffled with --seed). The
    rating model makes all its choices (regularisation, rounds, blend with the
    scorecard, calibration) on inner folds of each training fold only. Reported per
    model: AUC per fold and pooled with DeLong 95% intervals, Brier score, log loss,
    calibration intercept and slope, mean PD against the default rate. Data hygiene
    warnings (identifier-like, constant or empty columns, numbers read as text, ±inf,
    duplicate rows, too few defaults) name the columns. Nothing is stored.

    \b
    Example:
      creditdb model evaluate --features tests/data/polish_1year.arff --label class --compare
      creditdb model evaluate --features tests/data/germancredit.csv --label creditability \\
          --positive bad --compare --json
    """
    from pathlib import Path

    from tqdm import tqdm

    from models.rating import load_spec
    from models.references import available_references
    from models.research import evaluate as run_evaluation
    from models.research import prepare_table, read_table

    path = Path(features_path)
    if not path.is_file():
        reject(f"{path}: no such file", as_json=as_json)
    try:
        spec = load_spec(spec_path)
    except (OSError, ValueError) as exc:
        reject(f"spec: {exc}", as_json=as_json)
    try:
        frame = read_table(path)
        X, y, warnings = prepare_table(frame, label, origin=str(path), positive=positive)
    except ValueError as exc:
        reject(str(exc), as_json=as_json)
    except Exception as exc:  # unreadable file (parser errors of csv/parquet/arff)
        reject(f"{path}: cannot read: {exc}", as_json=as_json)

    n_models = 2 + (len(available_references()) if compare else 0)
    bar = tqdm(total=n_models * cv, desc="folds", unit="fit", file=sys.stderr, disable=not sys.stderr.isatty())
    try:
        result = run_evaluation(X, y, cv=cv, seed=seed, spec=spec, compare=compare,
                                on_step=lambda name, k: bar.update(1))
    except ValueError as exc:
        bar.close()
        reject(f"{path}: {exc}", as_json=as_json)
    bar.close()
    result["features"] = str(path)
    result["label"] = label
    result["positive"] = positive
    result["warnings"] = warnings
    if as_json:
        emit_json({"ok": True, **result})
    else:
        click.echo(_format_evaluation(result, str(path)))


# --------------------------------------------------------------------------------------
# model train | list | show | export (database-backed registry)
# --------------------------------------------------------------------------------------

def _parse_date(value: str | None, what: str, as_json: bool):
    import datetime as dt

    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        reject(f"{what}: {value!r} is not a date (YYYY-MM-DD)", as_json=as_json)


def _parse_time(value: str | None, as_json: bool):
    import datetime as dt

    if value is None:
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        reject(f"--snapshot: {value!r} is not a date-time (YYYY-MM-DDTHH:MM[:SS][+00:00])", as_json=as_json)
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _train_text(tm, outcome: dict) -> str:
    m = tm.metrics
    s = m["samples"]
    head = (f"model {outcome['version']} registered (candidate)" if outcome["created"] else
            f"model {outcome['version']} is already registered: retraining on identical inputs reproduced the "
            "same model (nothing new stored)")
    lines = [head,
             f"cut-off {tm.design.cutoff}; data fingerprint {tm.fingerprint[:16]}; seed {tm.seed}; "
             f"best iteration {m['best_iteration']}",
             f"{'sample':<8} {'statements':>10} {'defaults':>9} {'rate':>7} {'AUC model':>10} {'AUC chall.':>10}"]
    for k in ("fit", "valid", "oot"):
        a, c = m["auc"]["model"].get(k), m["auc"]["challenger"].get(k)
        lines.append(f"{k:<8} {s[k]['n']:>10,} {s[k]['defaults']:>9,} {(s[k]['default_rate'] or 0) * 100:6.2f}% "
                     f"{a if a is None else round(a, 4)!s:>10} {c if c is None else round(c, 4)!s:>10}")
    lines.append(f"long-run default rate (calibration target) {m['long_run_default_rate'] * 100:.3f}%")
    lines.append("grades (out-of-time): " + ", ".join(f"{g['grade']}:{g['n']}" for g in m.get("grade_distribution_oot", [])
                                                      if g["n"]))
    lines.append(f"next: creditdb model show {outcome['version']}")
    return "\n".join(lines)


@model.command("train")
@click.option("--cutoff", help="Training cut-off date YYYY-MM-DD (default: today). Only statements whose "
                               "12-month default window ended by then and defaults dated before it are used.")
@click.option("--spec", "spec_path", default=None, help="Model spec TOML (default: packaged rating_v1.toml).")
@click.option("--seed", type=int, default=None, help="LightGBM seed (default: the spec's).")
@click.option("--snapshot", default=None,
              help="Use only submissions received at or before this time (retrain on a past database state).")
@click.option("--lag-months", type=click.IntRange(min=0), default=3, show_default=True, help="Reporting lag.")
@click.option("--oot-years", type=click.IntRange(min=1, max=2), default=1, show_default=True,
              help="Latest labelled years held out as the out-of-time sample.")
@click.option("--dask", "dask_address", default=None, metavar="ADDRESS",
              help="Train on a Dask cluster: scheduler address (tcp://host:8786) or local[:N] for N local workers "
                   "(default: CREDITDB_DASK, else serial). Needs the 'dask' extra; not bit-identical to serial.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def train(cutoff: str | None, spec_path: str | None, seed: int | None, snapshot: str | None, lag_months: int,
          oot_years: int, dask_address: str | None, as_json: bool) -> None:
    """Train the rating model on the database and register it as a candidate.

    Out-of-time design: the latest labelled year is the out-of-time sample; earlier
    statements are the development sample, whose latest 20% (by date) is the
    validation slice for early stopping and calibration. The WoE logistic challenger
    is trained on the same sample. Retraining on identical inputs reproduces the same
    model and registers nothing new.

    \b
    Example:
      creditdb model train --cutoff 2024-03-31 --seed 0
      creditdb model train --cutoff 2024-03-31 --spec my_spec.toml --json
      creditdb model train --cutoff 2024-03-31 --dask tcp://scheduler:8786
    """
    import datetime as dt

    from creditdb.output import open_engine
    from creditdb.registry import RegistryError
    from creditdb.settings import get_settings
    from models.fx import FxError
    from models.rating import load_spec
    from pipelines.training import TrainingError
    from pipelines.training import train as run_train

    cut = _parse_date(cutoff, "--cutoff", as_json) or dt.date.today()
    snap = _parse_time(snapshot, as_json)
    try:
        spec = load_spec(spec_path)
    except (OSError, ValueError) as exc:
        reject(f"spec: {exc}", as_json=as_json)
    engine = open_engine()
    from pipelines.distributed import DaskUnavailable

    try:
        tm, outcome = run_train(engine, cut, spec, seed=seed, snapshot=snap, actor=get_settings().actor,
                                lag_months=lag_months, oot_years=oot_years, dask=dask_address)
    except (TrainingError, RegistryError, DaskUnavailable, FxError) as exc:
        reject(str(exc), as_json=as_json)
    if as_json:
        emit_json({"ok": True, **outcome, "engine": tm.engine, "artifact_sha256": tm.model.model_sha256,
                   "data_fingerprint": tm.fingerprint, "seed": tm.seed, "design": tm.design.as_dict(),
                   "calibration": tm.calibration.to_dict(),
                   "unreported": tm.unreported.to_dict(), "metrics": tm.metrics})
    else:
        click.echo(_train_text(tm, outcome))


@model.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_models(as_json: bool) -> None:
    """List registered models, newest first.

    \b
    Example:
      creditdb model list --json
    """
    from creditdb import registry
    from creditdb.output import open_engine

    with open_engine().connect() as conn:
        rows = registry.list_versions(conn)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no models registered yet: creditdb model train")
    for r in rows:
        auc = "n/a" if r["auc_oot"] is None else f"{r['auc_oot']:.4f}"
        ch = "n/a" if r["auc_oot_challenger"] is None else f"{r['auc_oot_challenger']:.4f}"
        click.echo(f"{r['version']:<20} {r['status']:<10} {r['created_at'][:19]}  cut-off {r['cutoff']}  "
                   f"OOT AUC {auc} (challenger {ch})  spec {r['spec']} seed {r['seed']}")


def _get_record(version: str, as_json: bool) -> dict:
    from creditdb import registry
    from creditdb.output import open_engine

    with open_engine().connect() as conn:
        try:
            return registry.get(conn, version)
        except registry.RegistryError as exc:
            reject(str(exc), as_json=as_json)


@model.command("show")
@click.argument("version")
@click.option("--json", "as_json", is_flag=True, help="The registry record (without the model text).")
def show(version: str, as_json: bool) -> None:
    """Print the model card of a registered model.

    \b
    Example:
      creditdb model show rating-0123456789ab
    """
    from creditdb import registry
    from pipelines.model_card import model_card

    rec = _get_record(version, as_json)
    if as_json:
        emit_json({"ok": True, **registry.summary(rec), "model_card": model_card(rec)})
    else:
        click.echo(model_card(rec))


@model.command("export")
@click.argument("version")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory to write model.txt, spec.toml, spec.json, metrics.json, MODEL_CARD.txt.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def export(version: str, out_dir: str, as_json: bool) -> None:
    """Export a registered model's artifact, spec, metrics and model card.

    \b
    Example:
      creditdb model export rating-0123456789ab --out exported/
    """
    from pathlib import Path

    from pipelines.model_card import export as export_model

    rec = _get_record(version, as_json)
    paths = export_model(rec, Path(out_dir))
    if as_json:
        emit_json({"ok": True, "version": version, "files": [str(p) for p in paths],
                   "artifact_sha256": rec["artifact_sha256"]})
    else:
        for p in paths:
            click.echo(str(p))


# --- supervisor commands (validate, approve, reproduce) live in their own module ---------
from creditdb.commands.model_supervision import approve, backtest, reproduce, validate  # noqa: E402

model.add_command(validate)
model.add_command(approve)
model.add_command(reproduce)
model.add_command(backtest)
