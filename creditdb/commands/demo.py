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
    from sqlalchemy import func, select

    from creditdb.anonymise import pseudonymiser
    from creditdb.db import session_scope
    from creditdb.output import open_engine
    from creditdb.schema import Firm, Institution, Submission
    from creditdb.settings import get_settings
    from pipelines import synth
    from pipelines.ingest import submit_file

    say = (lambda *a, **k: None) if as_json else click.echo
    engine = open_engine()
    settings = get_settings()
    key = pseudonymiser(engine, settings)
    say(f"database: {engine.url.render_as_string(hide_password=True)}")
    if countries:
        from pipelines.region_demo import run

        codes = [c.strip().upper() for c in countries.split(",") if c.strip()]
        result = run(engine, codes, firms, years, banks, seed, out_dir, key, settings.actor, say)
        if as_json:
            emit_json(result)
        return
    say(f"1/6 synthesising {firms:,} firms x {years} years for {banks} banks (seed {seed}) into {out_dir}/ ...")
    data = synth.generate(firms=firms, years=years, banks=banks, seed=seed, error_rate=error_rate)
    synth.write(data, out_dir)
    with session_scope(engine) as s:
        for row in data.institutions.itertuples():
            if s.scalar(select(Institution).where(Institution.code == row.code)) is None:
                s.add(Institution(code=row.code, name=row.name, kind=row.kind, country=row.country))
    say("2/6 submitting every bank's statements, loans and defaults ...")
    results = []
    for kind in ("statements", "loans", "defaults"):
        for bank in data.institutions.code:
            path = out_dir / bank / f"{kind}.csv"
            res = submit_file(engine, kind, path, bank, key=key, actor=settings.actor)
            results.append(res)
            if res.status == "duplicate":
                say(f"  {bank} {kind:<10} already loaded as submission {res.duplicate_of['submission_id']}")
                continue
            say(f"  {bank} {kind:<10} {res.status:<8} {res.rows_loaded:>7,} loaded  {res.rows_rejected:>5,} rejected"
                f"  {res.warnings:>5,} warnings  new firms {res.firms_new:>6,}  linked {res.firms_linked:>5,}")
            for issue in res.issues[:2]:
                say(f"      e.g. {path}, row {issue['row']}, column '{issue['column']}' = {issue['value']!r}: "
                    f"{issue['message']}")
    import datetime as _dt

    from pipelines.scoring import score_firms
    from pipelines.training import TrainingError, train

    cutoff = _dt.date.fromisoformat(data.meta["as_of"])
    say(f"3/6 training the rating model at cut-off {cutoff} ...")
    rating: dict = {}
    try:
        tm, outcome = train(engine, cutoff, actor=settings.actor)
        m = tm.metrics
        rating = {"version": outcome["version"], "new": outcome["created"], "cutoff": cutoff.isoformat(),
                  "auc_oot_model": m["auc"]["model"].get("oot"), "auc_oot_challenger": m["auc"]["challenger"].get("oot"),
                  "oot_statements": m["samples"]["oot"]["n"], "oot_defaults": m["samples"]["oot"]["defaults"]}
        say(f"  model {outcome['version']} ({'registered' if outcome['created'] else 'already registered'}): "
            f"out-of-time AUC {rating['auc_oot_model']:.4f}, challenger (WoE logistic) "
            f"{rating['auc_oot_challenger']:.4f} on {rating['oot_statements']:,} statements "
            f"({rating['oot_defaults']:,} defaults)")
        say("4/6 validating it and approving it as the demo supervisor ...")
        from creditdb.approval import ApprovalError, approve
        from pipelines.model_validation import validate
        from pipelines.validation_report import render_html

        vres = validate(engine, outcome["version"], actor=settings.actor)
        report = out_dir / "validation_report.html"
        report.write_text(render_html(vres), encoding="utf-8")
        lights = [r["traffic_light"] for r in vres["calibration"]["by_grade"]]
        rating["validation_report"] = str(report)
        rating["traffic_lights"] = {c: lights.count(c) for c in ("green", "yellow", "red")}
        try:
            with engine.begin() as conn:
                approve(conn, outcome["version"], by="demo supervisor", note="approved by creditdb demo",
                        actor=settings.actor)
            rating["approved"] = True
        except ApprovalError as exc:  # already approved on an earlier run
            rating["approved"] = str(exc)
        say(f"  report {report}: AUC {vres['discrimination']['auc']['auc']:.4f}, grade traffic lights "
            + ", ".join(f"{k} {v}" for k, v in rating["traffic_lights"].items()) + "; model approved")
        say("5/6 scoring every firm with the approved model ...")
        scored = score_firms(engine, None, cutoff, actor=settings.actor)
        rating["scored_firms"] = scored["firms"]
        rating["grades"] = scored["grades"]
        say(f"  {scored['firms']:,} firms scored, mean PD {scored['mean_pd'] * 100:.2f}%; grades: "
            + ", ".join(f"{g}:{n:,}" for g, n in scored["grades"].items() if n))
        say("6/6 pricing the demo loans as guarantees (Japan's fee schedule) and simulating the book ...")
        from pipelines.guarantees import GuaranteeDataError, demo_guarantees

        try:
            guarantees = demo_guarantees(engine, schedule="japan", scenarios=10_000, seed=seed, say=say)
        except GuaranteeDataError as exc:  # no scored loans
            say(f"  guarantees skipped: {exc}")
            guarantees = {"error": str(exc)}
    except TrainingError as exc:
        say(f"  rating model not trained: {exc}")
        rating = {"error": str(exc)}
        guarantees = {"error": "no rating model"}
    with engine.connect() as conn:
        n_firms = conn.execute(select(func.count()).select_from(Firm)).scalar_one()
        n_subs = conn.execute(select(func.count()).select_from(Submission)).scalar_one()
    summary = {
        "database": engine.url.render_as_string(hide_password=True),
        "files": str(out_dir),
        "firms_in_database": n_firms,
        "submissions": n_subs,
        "rows_loaded": sum(r.rows_loaded for r in results),
        "rows_rejected": sum(r.rows_rejected for r in results),
        "firms_linked_across_banks": sum(r.firms_linked for r in results),
        "rating": rating,
        "guarantees": guarantees,
        "results": [{"institution": r.institution, "kind": r.kind, "status": r.status, "rows_loaded": r.rows_loaded,
                     "rows_rejected": r.rows_rejected, "submission_id": r.submission_id} for r in results],
    }
    if as_json:
        emit_json(summary)
        return
    say(f"\nloaded {summary['rows_loaded']:,} rows, rejected {summary['rows_rejected']:,}; "
        f"{n_firms:,} firms in the database, {summary['firms_linked_across_banks']:,} submitted by a second bank "
        "and linked by corporate-number pseudonym.")
    say("next: creditdb submissions list | creditdb model list | creditdb score lookup --institution BK1 KEY")
