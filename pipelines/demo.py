"""The demo journey as one pipeline: synthesise, submit, train, validate, approve, score, price.

:func:`run_demo` runs the six stages on a database and reports progress as lines of
text through ``on_event`` (the ``creditdb demo`` command prints them); it returns the
summary that ``creditdb demo --json`` prints.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from creditdb.anonymise import Key


def run_demo(engine: Engine, *, firms: int = 5000, years: int = 8, banks: int = 3, seed: int = 42,
             error_rate: float = 0.002, out_dir: Path = Path("creditdb-demo"), key: Key, actor: str,
             on_event: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Synthesise CRD-like data for ``banks`` banks into ``out_dir``, submit it, train, validate and
    approve the rating model, score every firm and price the demo loans as guarantees.

    Running it again on the same database reuses what is already loaded (files already
    submitted are duplicates; a model already approved stays approved). ``key``: the
    pseudonymisation key (:func:`creditdb.anonymise.pseudonymiser`); ``actor``: who the
    audit events name. Returns the summary: database, files, firm and submission counts,
    rows loaded / rejected, firms linked across banks, ``rating`` (model version, AUCs,
    traffic lights, grades) and ``guarantees`` (:func:`pipelines.guarantees.demo_guarantees`).
    """
    from sqlalchemy import func, select

    from creditdb import lookups
    from creditdb.schema import Firm, Institution, Submission
    from pipelines import synth
    from pipelines.ingest import submit_file

    say = on_event
    say(f"database: {engine.url.render_as_string(hide_password=True)}")
    say(f"1/6 synthesising {firms:,} firms x {years} years for {banks} banks (seed {seed}) into {out_dir}/ ...")
    data = synth.generate(firms=firms, years=years, banks=banks, seed=seed, error_rate=error_rate)
    synth.write(data, out_dir)
    from pipelines.synth_region import carried_forward_rates, last_fiscal_year_end

    carried = carried_forward_rates(last_fiscal_year_end(data))
    if len(carried):  # fiscal year ends after the shipped ECB rates: the last ones, marked synthetic
        from pipelines.fx import FxFileError, load_fx_file

        carried.to_csv(out_dir / "fx_rates.csv", index=False, lineterminator="\n")
        try:
            load_fx_file(engine, out_dir / "fx_rates.csv", actor)
            say(f"  fiscal years past the shipped ECB rates: their last rates carried forward ({out_dir}/fx_rates.csv)")
        except FxFileError as exc:  # already loaded on an earlier run
            say(f"  fx_rates.csv not loaded again: {exc}")
    with engine.begin() as conn:
        for row in data.institutions.itertuples():
            if lookups.institution(conn, str(row.code)) is None:
                conn.execute(Institution.__table__.insert().values(code=row.code, name=row.name, kind=row.kind,
                                                                   country=row.country))
    say("2/6 submitting every bank's statements, loans and defaults ...")
    results = []
    for kind in ("statements", "loans", "defaults"):
        for bank in data.institutions.code:
            path = out_dir / bank / f"{kind}.csv"
            res = submit_file(engine, kind, path, bank, key=key, actor=actor)
            results.append(res)
            if res.status == "duplicate":
                say(f"  {bank} {kind:<10} already loaded as submission {(res.duplicate_of or {}).get('submission_id')}")
                continue
            say(f"  {bank} {kind:<10} {res.status:<8} {res.rows_loaded:>7,} loaded  {res.rows_rejected:>5,} rejected"
                f"  {res.warnings:>5,} warnings  new firms {res.firms_new:>6,}  linked {res.firms_linked:>5,}")
            for issue in res.issues[:2]:
                say(f"      e.g. {path}, row {issue['row']}, column '{issue['column']}' = {issue['value']!r}: "
                    f"{issue['message']}")
    from pipelines.scoring import score_firms
    from pipelines.training import TrainingError, train

    cutoff = dt.date.fromisoformat(data.meta["as_of"])
    say(f"3/6 training the rating model at cut-off {cutoff} ...")
    rating: dict = {}
    try:
        tm, outcome = train(engine, cutoff, actor=actor)
        m = tm.metrics
        rating = {"version": outcome["version"], "new": outcome["created"], "cutoff": cutoff.isoformat(),
                  "auc_oot_model": m["auc"]["model"].get("oot"),
                  "auc_oot_challenger": m["auc"]["challenger"].get("oot"),
                  "oot_statements": m["samples"]["oot"]["n"], "oot_defaults": m["samples"]["oot"]["defaults"]}
        say(f"  model {outcome['version']} ({'registered' if outcome['created'] else 'already registered'}): "
            f"out-of-time AUC {rating['auc_oot_model']:.4f}, challenger (WoE logistic) "
            f"{rating['auc_oot_challenger']:.4f} on {rating['oot_statements']:,} statements "
            f"({rating['oot_defaults']:,} defaults)")
        say("4/6 validating it and approving it as the demo supervisor ...")
        from creditdb.approval import ApprovalError, approve
        from pipelines.model_validation import validate
        from pipelines.validation_report import render_html

        vres = validate(engine, outcome["version"], actor=actor)
        report = out_dir / "validation_report.html"
        report.write_text(render_html(vres), encoding="utf-8")
        lights = [r["traffic_light"] for r in vres["calibration"]["by_grade"]]
        rating["validation_report"] = str(report)
        rating["traffic_lights"] = {c: lights.count(c) for c in ("green", "yellow", "red")}
        from creditdb.approval import gate, load_policy

        # the gate is shown honestly: a demo model that fails it is approved only with an
        # override whose reason is recorded (audit trail, approval note, this output)
        checked = gate(vres, load_policy())
        override = None if checked.passed else (
            "creditdb demo: synthetic demonstration data, approved to show scoring and pricing; "
            "not for decisions")
        rating["approval_gate"] = {"passed": checked.passed, "failures": checked.failures, "override": override}
        try:
            with engine.begin() as conn:
                approve(conn, outcome["version"], by="demo supervisor", note="approved by creditdb demo",
                        actor=actor, override=override)
            rating["approved"] = True
        except ApprovalError as exc:  # already approved on an earlier run
            rating["approved"] = str(exc)
        say(f"  report {report}: AUC {vres['discrimination']['auc']['auc']:.4f}, grade traffic lights "
            + ", ".join(f"{k} {v}" for k, v in rating["traffic_lights"].items())
            + ("; approval gate passed, model approved" if checked.passed else
               "; approval gate FAILED (" + "; ".join(checked.failures) + "), model approved with the override: "
               + str(override)))
        say("5/6 scoring every firm with the approved model ...")
        scored = score_firms(engine, None, cutoff, actor=actor)
        rating["scored_firms"] = scored["firms"]
        rating["scores"] = scored["scores"]
        rating["grades"] = scored["grades"]
        say(f"  {scored['firms']:,} firms scored ({scored['scores']:,} scores, one per firm and institution), "
            f"mean PD {scored['mean_pd'] * 100:.2f}%; grades: "
            + ", ".join(f"{g}:{n:,}" for g, n in scored["grades"].items() if n))
        say("6/6 pricing the demo loans as guarantees (Japan's fee schedule) and simulating the book ...")
        from pipelines.guarantees import GuaranteeDataError, demo_guarantees

        try:
            guarantees = demo_guarantees(engine, schedule="japan", scenarios=10_000, seed=seed, say=say,
                                         as_of=cutoff, actor=actor)
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
    say(f"\nloaded {summary['rows_loaded']:,} rows, rejected {summary['rows_rejected']:,}; "
        f"{n_firms:,} firms in the database, {summary['firms_linked_across_banks']:,} submitted by a second bank "
        "and linked by corporate-number pseudonym.")
    say("next: creditdb submissions list | creditdb model list | creditdb score lookup --institution BK1 KEY")
    return summary
