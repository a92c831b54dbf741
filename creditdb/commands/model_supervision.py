"""Supervisor commands of the ``model`` group: validate, approve, reproduce."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from creditdb.output import EXIT_REJECTED, emit_json, open_engine, reject


@click.command("validate")
@click.argument("version")
@click.option("--sample", default="out-of-time", show_default=True,
              help="out-of-time, all, or a fiscal year such as 2021.")
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the self-contained HTML report here.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write every number as JSON here ('-' for standard output).")
@click.option("--backtest", "backtest_years", metavar="FROM[:TO]", default=None,
              help="Add a walk-forward calibration backtest over these out-of-time years (each refitted with "
                   "the model's spec and seed on its data; labels as of its cut-off). Its pooled view enters "
                   "the approval gate.")
def validate(version: str, sample: str, html_path: Path | None, json_path: Path | None,
             backtest_years: str | None) -> None:
    """Validate a model: discrimination, calibration, stability, drivers.

    Rebuilds the model from its recorded spec and data, checks it matches the stored
    artifact, computes every test (AUC with DeLong interval, challenger comparison,
    ECB AUC test, binomial and Jeffreys tests per grade with traffic lights,
    Hosmer-Lemeshow, Brier, PSI, migration matrix, Herfindahl, SHAP drivers,
    monotonicity), stores the results with the model and writes the report.
    With --backtest, the report also shows calibration over the cycle: per-year
    traffic lights and the pooled test against the long-run PD.

    \b
    Example:
      creditdb model validate rating-1a2b3c4d5e6f --html report.html --json report.json
      creditdb model validate rating-1a2b3c4d5e6f --backtest 2019:2022 --html report.html
    """
    from creditdb.registry import RegistryError
    from creditdb.settings import get_settings
    from pipelines.model_validation import validate as run
    from pipelines.training import TrainingError
    from pipelines.validation_report import render_html

    if sample not in ("out-of-time", "all") and not sample.isdigit():
        raise click.BadParameter("use out-of-time, all or a year such as 2021", param_hint="--sample")
    years = None
    if backtest_years is not None:
        from pipelines.backtest import parse_years

        try:
            years = parse_years(backtest_years)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--backtest") from None
    engine = open_engine()
    try:
        results = run(engine, version, sample=sample, actor=get_settings().actor, backtest=years)
    except (RegistryError, TrainingError, ValueError) as exc:
        reject(str(exc), as_json=json_path is not None and str(json_path) == "-")
    if html_path:
        html_path.write_text(render_html(results), encoding="utf-8")
    if json_path:
        from creditdb.output import to_json

        if str(json_path) == "-":
            click.echo(to_json(results))
            return
        json_path.write_text(to_json(results), encoding="utf-8")
    d = results["discrimination"]
    auc = d.get("auc", {})
    click.echo(f"model {version} validated on the {sample} sample: AUC {_f(auc.get('auc'))} "
               f"(95% CI {_f(auc.get('ci_lower'))}-{_f(auc.get('ci_upper'))}); report stored with the model")
    for row in results["calibration"].get("by_grade", []):
        click.echo(f"  grade {row['grade']:>3}: {row['firms']:>7} statements {row['defaults']:>5} defaults  "
                   f"observed {_f(row['odr'])}  mean PD {_f(row['mean_pd'])}  {row['traffic_light']}")
    if results.get("backtest"):
        click.echo("walk-forward calibration backtest:")
        click.echo(_light_text(results["backtest"]))
    if html_path:
        click.echo(f"report: {html_path}")


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


@click.command("approve")
@click.argument("version")
@click.option("--by", "by", required=True, help="Name of the approver.")
@click.option("--note", default="", help="Approval note (committee decision, conditions).")
@click.option("--override", "override", metavar="REASON", default=None,
              help="Approve although the model fails the approval gate; the reason is recorded in the audit "
                   "trail and the approval note.")
@click.option("--policy", "policy_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Approval policy (TOML; default: the shipped creditdb/policy/approval.toml).")
@click.option("--rescore", is_flag=True, help="Score every firm with the approved model at once.")
@click.option("--json", "as_json", is_flag=True)
def approve(version: str, by: str, note: str, override: str | None, policy_path: Path | None, rescore: bool,
            as_json: bool) -> None:
    """Approve a validated model for scoring and pricing; retires the old one.

    The approval gate refuses a model whose validation sample holds fewer defaults
    than the policy's min_defaults (30) or shows a red calibration traffic light,
    unless --override gives the reason. On PostgreSQL only a supervisor login may
    approve, and never the login that trained the model (four eyes).

    Lookups, guarantees and price books use only scores of the approved model: with
    --rescore every firm is scored with it at once (as `creditdb score firms`),
    otherwise the output says what to run.

    \b
    Example:
      creditdb model approve rating-1a2b3c4d5e6f --by "Dr. H. Sato" --note "Model committee 2026-11" --rescore
      creditdb model approve rating-1a2b3c4d5e6f --by "Dr. H. Sato" \\
          --override "pilot portfolio: 12 defaults only; re-validate after 2027 data"
    """
    from typing import cast

    from sqlalchemy import String

    from creditdb.approval import ApprovalError, load_policy
    from creditdb.approval import approve as run
    from creditdb.schema import ModelVersion
    from creditdb.settings import get_settings

    limit = cast(String, ModelVersion.__table__.c.approved_by.type).length or 0
    if not by.strip() or len(by) > limit:
        reject(f"--by must be 1 to {limit} characters (got {len(by)})", as_json=as_json)
    if override is not None and not override.strip():
        reject("--override needs a reason", as_json=as_json)
    engine = open_engine()
    try:
        policy = load_policy(policy_path)
        with engine.begin() as conn:
            out = run(conn, version, by=by, note=note, actor=get_settings().actor, override=override, policy=policy)
    except ApprovalError as exc:
        reject(str(exc), as_json=as_json)
    if rescore:
        from pipelines.scoring import score_firms

        try:
            res = score_firms(engine, version, actor=get_settings().actor)
        except ValueError as exc:
            reject(f"model {version} approved, but rescoring failed: {exc}", as_json=as_json)
        out["rescored"] = {"firms": res.get("firms"), "as_of": res.get("as_of")}
    else:
        out["next"] = f"creditdb score firms --model {version}"
    if as_json:
        emit_json({"ok": True, **out})
        return
    click.echo(f"model {version} approved by {by}" + (f" (login {out['login']})" if out["login"] else "")
               + (f"; {out['retired']} retired" if out["retired"] else ""))
    prov = out["validation"]
    if prov["matches"]:
        click.echo(f"  validation report stored by 'model validate' (audit event {prov['event']}, {prov['by']})")
    else:
        click.secho("  warning: the stored validation report was not written by 'creditdb model validate' "
                    "(no audit event with its hash): check it before relying on the gate", fg="yellow")
    if out["override"]:
        click.secho(f"  OVERRIDE of the approval gate: {out['override']}", fg="yellow")
        for failure in out["gate"]["failures"]:
            click.secho(f"    failed: {failure}", fg="yellow")
    else:
        click.echo(f"  approval gate passed: {out['gate']['defaults']} defaults (minimum "
                   f"{out['gate']['min_defaults']}), no red traffic light")
    if rescore:
        click.echo(f"rescored {out['rescored']['firms']} firms with {version} (as of {out['rescored']['as_of']})")
    else:
        click.echo(f"scores of earlier models are not used by lookups, guarantees or price books: run\n"
                   f"  {out['next']}")


@click.command("reproduce")
@click.argument("version")
@click.option("--dask", "dask_address", default=None, metavar="ADDRESS",
              help="For a model trained on a Dask cluster: retrain on this one (scheduler address or local[:N]; "
                   "default CREDITDB_DASK, else serially).")
@click.option("--json", "as_json", is_flag=True)
def reproduce(version: str, dask_address: str | None, as_json: bool) -> None:
    """Retrain a model from its recorded spec and data snapshot and compare.

    Exit code 0 when the model hash and every PD match (a model trained on a Dask
    cluster: when the re-fit's PDs and out-of-time AUC lie within the tolerance recorded
    with it), 1 otherwise (and what differs: data, spec or library versions).

    \b
    Example:
      creditdb model reproduce rating-1a2b3c4d5e6f --json
      creditdb model reproduce rating-1a2b3c4d5e6f --dask local:2
    """
    from creditdb.registry import RegistryError
    from creditdb.settings import get_settings
    from models.fx import FxError
    from pipelines.distributed import DaskUnavailable
    from pipelines.model_validation import reproduce as run
    from pipelines.training import TrainingError

    engine = open_engine()
    try:
        out = run(engine, version, actor=get_settings().actor, dask=dask_address)
    except (RegistryError, TrainingError, DaskUnavailable, FxError) as exc:
        reject(str(exc), as_json=as_json)
    if as_json:
        emit_json(out)
    else:
        cmp = out["engine"].get("comparison")
        verdict = ("NOT reproduced" if not out["reproduced"] else "reproduced exactly" if out["pds"]["identical"]
                   else "reproduced within the tolerance of its Dask engine")
        click.echo(f"model {version}: {verdict}")
        for name, c in out["checks"].items():
            click.echo(f"  {name:<17} {'match' if c['match'] else 'differs' if c['match'] is False else 'not recorded'}")
        p = out["pds"]
        click.echo(f"  PDs: {p['statements']} statements, {p['differing']} differ (max {p['max_abs_difference']:.3g})")
        if cmp:
            auc = cmp["auc_oot_difference"]
            click.echo(f"  engine            dask ({out['engine']['recorded'].get('workers')} workers): mean |PD diff| "
                       f"{cmp['mean_abs_pd_difference']:.3g}, p99 {cmp['p99_abs_pd_difference']:.3g}, OOT AUC diff "
                       f"{auc if auc is None else round(auc, 4)} (tolerance {cmp['tolerance']})")
        for cause in out["causes"]:
            click.echo(f"  cause: {cause}")
    if not out["reproduced"]:
        sys.exit(EXIT_REJECTED)


def _light_text(bt: dict) -> str:
    s = bt["summary"]
    grades = [r["grade"] for r in bt["pooled"]]
    cell = {(r["year"], r["grade"]): r["traffic_light"] for r in bt["per_year"]}
    short = {"green": "G", "yellow": "Y", "red": "R", "grey": "-"}
    lines = ["per year (Jeffreys light per grade; G green, Y yellow, R red, . no statements):",
             f"  {'year':<6}" + "".join(f"{g:>4}" for g in grades) + f"  {'observed':>9} {'mean PD':>8}  all"]
    for yp in bt["per_year_portfolio"]:
        y = yp["year"]
        lines.append(f"  {y:<6}" + "".join(f"{short.get(cell.get((y, g), ''), '.'):>4}" for g in grades)
                     + f"  {yp['odr'] * 100:8.2f}% {yp['mean_pd'] * 100:7.2f}%  {yp['traffic_light']}")
    lines.append("pooled over the years against the long-run PD:")
    lines.append(f"  {'grade':<6}{'stmts':>8}{'defaults':>9}{'pooled DR':>10}{'mean PD':>9}  {'Jeffreys p':>10}  light")
    for r in [*bt["pooled"], {**bt["pooled_portfolio"], "grade": "all"}]:
        lines.append(f"  {r['grade']:<6}{r['n']:>8,}{r['defaults']:>9,}{r['odr'] * 100:9.2f}%{r['mean_pd'] * 100:8.2f}%"
                     f"  {r['jeffreys_p']:>10.4f}  {r['traffic_light']}")
    lines.append("pooled view: " + ("passes (no red light)" if s["passed"]
                                     else "FAILS, red: " + ", ".join(s["pooled_red"])))
    return "\n".join(lines)


@click.command("backtest")
@click.option("--from", "from_year", type=int, required=True, help="First out-of-time year.")
@click.option("--to", "to_year", type=int, default=None,
              help="Last out-of-time year (default: the last year whose default windows have all ended).")
@click.option("--as-of", "as_of", default=None, help="Labels as known on this date YYYY-MM-DD (default: today).")
@click.option("--spec", "spec_path", default=None, help="Model spec TOML (default: packaged rating_v1.toml).")
@click.option("--seed", type=int, default=None, help="LightGBM seed of every refit (default: the spec's).")
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the self-contained HTML report here.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def backtest(from_year: int, to_year: int | None, as_of: str | None, spec_path: str | None, seed: int | None,
             html_path: Path | None, as_json: bool) -> None:
    """Walk-forward calibration backtest of the rating model over the cycle.

    For each year from --from to --to, the model in force at its start (trained with
    the same spec and seed on the stored data known then) scores the statements that
    become available during the year. Shows per year and grade the Jeffreys and
    binomial tests with traffic lights, and the same tests pooled over all years
    against the long-run PD (Basel CRE36). Nothing is stored.

    \b
    Example:
      creditdb model backtest --from 2019
      creditdb model backtest --from 2019 --to 2022 --html backtest.html --json
    """
    import datetime as dt

    from models.rating import load_spec
    from pipelines.backtest import walk_forward_db
    from pipelines.training import TrainingError
    from pipelines.validation_report import render_backtest_html, to_jsonable

    day = None
    if as_of is not None:
        try:
            day = dt.date.fromisoformat(as_of)
        except ValueError:
            reject(f"--as-of: {as_of!r} is not a date (YYYY-MM-DD)", as_json=as_json)
    try:
        spec = load_spec(spec_path)
    except (OSError, ValueError) as exc:
        reject(f"spec: {exc}", as_json=as_json)
    try:
        bt = walk_forward_db(open_engine(), from_year, to_year, spec=spec, seed=seed, as_of=day)
    except (TrainingError, ValueError) as exc:  # ValueError: models.fx.FxError, a rate missing
        reject(str(exc), as_json=as_json)
    bt = to_jsonable(bt)
    if html_path:
        html_path.write_text(render_backtest_html(bt), encoding="utf-8")
    if as_json:
        emit_json({"ok": True, **bt, "html": str(html_path) if html_path else None})
        return
    d = bt["design"]
    click.echo(f"walk-forward backtest {d['from']}-{d['to']} (labels as of {d['as_of']}, spec {d['spec']}, "
               f"seed {d['seed']}): {bt['summary']['n']:,} statements, {bt['summary']['defaults']:,} defaults")
    click.echo(_light_text(bt))
    if html_path:
        click.echo(f"report: {html_path}")
