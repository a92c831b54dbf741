"""Supervisor workflows on a registered model: reproduce it, validate it, store the report.

Both start by rebuilding the model from what the registry recorded: the spec text,
seed and design (cut-off, reporting lag, horizon, out-of-time years, data snapshot),
re-reading the data as of that snapshot. Training is deterministic, so the rebuilt
model must have the recorded hash; when it does not, ``reproduce`` says what differs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import numpy as np
import pandas as pd

from creditdb import audit, registry
from models.master_scale import assign_grade, load_master_scale, representative_pd
from models.rating import parse_spec
from models.ratios import FEATURE_NAMES
from pipelines.features import load_defaults, load_statements, training_table
from pipelines.training import Design, TrainedModel, fit, library_versions

SAMPLES = ("out-of-time", "all")


def _design(rec: dict[str, Any]) -> Design:
    d = rec["spec"]["design"]
    return Design(cutoff=dt.date.fromisoformat(d["cutoff"]), lag_months=d["lag_months"],
                  horizon_months=d["horizon_months"], oot_years=d["oot_years"],
                  valid_fraction=d["valid_fraction"], snapshot=d.get("snapshot"))


def rebuild(engine, rec: dict[str, Any], client: Any = None) -> TrainedModel:
    """Retrain from the recorded spec, seed, design and data snapshot (on ``client``'s Dask workers if given)."""
    return rebuild_with_statements(engine, rec, client)[0]


def rebuild_with_statements(engine, rec: dict[str, Any], client: Any = None) -> tuple[TrainedModel, pd.DataFrame]:
    """:func:`rebuild` and the statements it was trained from (the unreported-items section needs them)."""
    design = _design(rec)
    snapshot = dt.datetime.fromisoformat(design.snapshot) if design.snapshot else None
    currency = rec["spec"].get("size_currency")  # as recorded (None: as submitted), not today's setting
    with engine.connect() as conn:
        statements = load_statements(conn, snapshot, size_currency=currency)
        defaults = load_defaults(conn, snapshot)
    table = training_table(statements, defaults, design.cutoff, design.lag_months, design.horizon_months)
    spec = parse_spec(rec["spec"]["source_text"], origin=f"model {rec['version']} spec")
    return fit(table, spec, design, rec["seed"], client=client, size_currency=currency), statements


def _pds(tm: TrainedModel) -> np.ndarray:
    return tm.pd(tm.table)


def reproduce(engine, version: str, actor: str = "unknown", dask: str | None = None) -> dict[str, Any]:
    """Retrain ``version`` and compare model hash, data fingerprint, spec, libraries and PDs.

    A serially trained model must come back bit-identical (same model hash, every PD
    equal). A model trained on a Dask cluster (``spec.engine.kind == "dask"``) cannot:
    it is retrained on ``dask`` (a scheduler address or ``local[:N]``; default
    ``CREDITDB_DASK``, else serially) and passes when its PDs and out-of-time AUC lie
    within the tolerance recorded with it (``models.rating_dask.within_tolerance``).
    """
    from pipelines.distributed import cluster

    with engine.connect() as conn:
        rec = registry.get(conn, version)
    recorded_engine = rec["spec"].get("engine") or {"kind": "serial"}
    distributed = recorded_engine.get("kind") == "dask"
    with cluster(dask if distributed else None) as client:
        tm = rebuild(engine, rec, client=client if distributed else None)
    stored_libs = rec["spec"].get("libraries", {})
    now_libs = library_versions()
    checks = {
        "data_fingerprint": {"recorded": rec["data_fingerprint"], "now": tm.fingerprint},
        "spec_sha256": {"recorded": rec["spec"]["sha256"], "now": tm.spec.sha256},
        "model_sha256": {"recorded": rec["artifact_sha256"], "now": tm.model.model_sha256},
        "libraries": {"recorded": stored_libs, "now": now_libs},
    }
    for v in checks.values():
        v["match"] = v["recorded"] == v["now"] if v["recorded"] else None
    from models.calibration import Calibration
    from models.rating import load_model
    from models.unreported import UnreportedAdjustment
    from pipelines.training import adjusted_scores

    recorded = load_model(rec["artifact"])
    cal = Calibration.from_dict(rec["spec"]["calibration"])
    X = tm.table[list(FEATURE_NAMES)]
    pd_recorded = cal.predict(adjusted_scores(recorded, UnreportedAdjustment.from_dict(rec["spec"].get("unreported")),
                                              tm.table))
    pd_now = _pds(tm)
    diff = np.abs(pd_recorded - pd_now)
    pds = {"statements": int(len(X)), "identical": bool(np.array_equal(pd_recorded, pd_now)),
           "max_abs_difference": float(diff.max()) if len(diff) else 0.0, "differing": int((diff > 0).sum())}
    ok = bool(checks["model_sha256"]["match"] and pds["identical"])
    engine_out: dict[str, Any] = {"recorded": recorded_engine, "now": tm.engine}
    if distributed:
        from models.rating_dask import within_tolerance

        oot = (tm.table["sample"] == "oot").to_numpy()
        auc_rec = rec["metrics"].get("auc", {}).get("model", {}).get("oot")
        auc_now = tm.metrics.get("auc", {}).get("model", {}).get("oot")
        engine_out["comparison"] = within_tolerance(pd_recorded, pd_now, auc_rec, auc_now,
                                                    recorded_engine.get("tolerance"))
        engine_out["comparison"]["oot_statements"] = int(oot.sum())
        ok = ok or bool(engine_out["comparison"]["within"])
    causes = []
    if not ok and distributed:
        causes.append(f"trained on a Dask cluster: the re-fit lies outside the recorded tolerance "
                      f"{engine_out['comparison']['tolerance']}")
    if not ok:
        if checks["data_fingerprint"]["match"] is False:
            causes.append("the training data differ from the recorded snapshot (rows, values or labels changed)")
        if checks["spec_sha256"]["match"] is False:
            causes.append("the spec text differs")
        if checks["libraries"]["match"] is False:
            changed = {k: (stored_libs.get(k), now_libs.get(k)) for k in now_libs if stored_libs.get(k) != now_libs.get(k)}
            causes.append(f"library versions differ: {changed}")
        if not causes:
            causes.append("same data, spec and libraries but a different model: training is not deterministic here")
    out = {"version": version, "reproduced": ok, "checks": checks, "pds": pds, "engine": engine_out,
           "causes": causes}
    with engine.begin() as conn:
        audit.append(conn, actor, "model.reproduce", {"version": version, "reproduced": ok, "causes": causes},
                     input_hash=tm.fingerprint, output_hash=tm.model.model_sha256)
    return out


def validation_inputs(tm: TrainedModel, rec: dict[str, Any], sample: str = "out-of-time") -> dict[str, Any]:
    """Keyword arguments of ``pipelines.validation_report.build_validation`` for a model."""
    cols = list(FEATURE_NAMES)
    table = tm.table
    dev = table.loc[table["sample"] != "oot"]
    if sample == "out-of-time":
        val = table.loc[table["sample"] == "oot"]
    elif sample == "all":
        val = table
    else:
        year = int(sample)
        val = table.loc[pd.to_datetime(table["fiscal_year_end"]).dt.year == year]
    if val.empty:
        raise ValueError(f"the validation sample '{sample}' is empty")
    scale = load_master_scale()
    pd_val = tm.pd(val)
    pd_dev = tm.pd(dev)
    grades = assign_grade(pd_val, scale)
    grade_dev = assign_grade(pd_dev, scale)
    all_grades = sorted(set(grades) | set(grade_dev))
    grade_pd = dict(zip(all_grades, (float(x) for x in representative_pd(np.array(all_grades, dtype=object), scale)),
                        strict=True))
    challenger_pd = tm.challenger.predict_proba(val[cols])[:, 1]
    # AUC at initial validation = the AUC recorded when the model was first approved
    # (None before approval: the ECB test is then not performed)
    initial_auc = rec.get("auc_at_first_approval")
    contributions = tm.model.contributions(val[cols])
    spec = rec["spec"]
    card = {
        "version": rec["version"],
        "data_window": f"statements with fiscal year ends {pd.to_datetime(table.fiscal_year_end).min().date()} to "
                       f"{pd.to_datetime(table.fiscal_year_end).max().date()}, labels complete by the cut-off "
                       f"{spec['design']['cutoff']}",
        "default_definition": f"a default event (90+ days past due, bankrupt, virtually bankrupt, guarantee "
                              f"subrogated, restructured) within {spec['design']['horizon_months']} months after the "
                              f"statement is available ({spec['design']['lag_months']} months after fiscal year end)",
        "features": ", ".join(cols),
        "monotone_constraints": ", ".join(f"{k} {'+' if v > 0 else '-'}" for k, v in spec["monotone_constraints"].items()),
        "calibration_target": f"long-run average default rate of the development sample "
                              f"({rec['metrics'].get('long_run_default_rate', float('nan')):.4%}), PD floor 0.05%",
        "known_limitations": "trained on the data submitted to this database only; out-of-time sample is the last "
                             f"{spec['design']['oot_years']} year(s) before the cut-off; grade PDs are the master "
                             "scale's representative PDs; monotonicity is imposed only on the constrained features",
        "approval_state": rec["status"] + (f" by {rec['approved_by']}" if rec.get("approved_by") else "")
                          + (f"; {rec['approval_note']}" if "OVERRIDE" in (rec.get("approval_note") or "") else ""),
        "artifact_sha256": rec["artifact_sha256"],
        "data_fingerprint": rec["data_fingerprint"],
        "sample": sample,
    }
    return dict(
        pd=pd_val, default=val["label"].to_numpy(), grade=grades,
        year=pd.to_datetime(val["fiscal_year_end"]).dt.year.to_numpy(), firm_id=val["firm_id"].to_numpy(),
        grade_pd=grade_pd, features_dev=dev[cols], features_val=val[cols], score_dev=pd_dev,
        challenger_pd=challenger_pd, initial_auc=initial_auc, contributions=contributions,
        monotone=dict(spec["monotone_constraints"]), model_card=card, grade_dev=grade_dev,
    )


def firm_countries(engine, firm_id: np.ndarray) -> np.ndarray:
    """Country of each firm id (the pooled model is validated per country)."""
    from sqlalchemy import select

    from creditdb.schema import Firm

    with engine.connect() as conn:
        rows = dict(conn.execute(select(Firm.id, Firm.country)).all())
    return np.array([rows.get(int(f), "unknown") for f in firm_id], dtype=object)


def validate(engine, version: str, sample: str = "out-of-time", actor: str = "unknown",
             backtest: tuple[int, int | None] | None = None, progress: bool | None = None) -> dict[str, Any]:
    """Build the validation results of ``version``, store them with the model, audit.

    ``backtest``: (first, last or None) out-of-time years of a walk-forward calibration
    backtest (``pipelines.backtest``) added as ``results["backtest"]``: every year refitted
    with the model's recorded spec, seed, lag and horizon on its recorded data snapshot,
    labels as known at the model's cut-off (so the last year is at most cut-off year − 2).
    """
    from creditdb.approval import auc_at_first_approval
    from pipelines.validation_report import build_validation, to_jsonable

    with engine.connect() as conn:
        rec = registry.get(conn, version)
        rec["auc_at_first_approval"] = auc_at_first_approval(conn, version)
    tm, statements = rebuild_with_statements(engine, rec)
    if tm.model.model_sha256 != rec["artifact_sha256"]:
        raise ValueError(f"model {version} could not be rebuilt from its recorded data and spec "
                         f"(run 'creditdb model reproduce {version}' to see what differs); not validated")
    inputs = validation_inputs(tm, rec, sample)
    inputs["country"] = firm_countries(engine, inputs["firm_id"])
    results = build_validation(**inputs)
    from pipelines.unreported_report import removal_effects

    # per optional item: PD and grade shift when removed at random from 30 % of the OOT sample
    results["unreported_items"] = removal_effects(tm, statements, seed=rec["seed"])
    if backtest is not None:
        from pipelines.backtest import walk_forward_db

        design = _design(rec)
        spec = parse_spec(rec["spec"]["source_text"], origin=f"model {rec['version']} spec")
        results["backtest"] = walk_forward_db(
            engine, backtest[0], backtest[1], spec=spec, seed=rec["seed"], as_of=design.cutoff,
            snapshot=dt.datetime.fromisoformat(design.snapshot) if design.snapshot else None,
            lag_months=design.lag_months, horizon_months=design.horizon_months, oot_years=design.oot_years,
            progress=progress)
    results = to_jsonable(results)
    import json

    digest = hashlib.sha256(json.dumps(results, sort_keys=True, default=str).encode()).hexdigest()
    from sqlalchemy import update

    from creditdb.schema import ModelVersion

    T = ModelVersion.__table__
    with engine.begin() as conn:
        conn.execute(update(T).where(T.c.version == version).values(validation_report=results))
        audit.append(conn, actor, "model.validate",
                     {"version": version, "sample": sample,
                      "backtest": {k: results["backtest"]["summary"][k] for k in ("years", "pooled_light", "passed")}
                      if backtest is not None else None},
                     input_hash=rec["artifact_sha256"], output_hash=digest)
    return results
