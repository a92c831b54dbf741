"""Model registry: the ``model_version`` table (artifact, hashes, spec, data fingerprint, metrics).

Storage layout of one registered rating model:

* ``version``: ``rating-<12 hex digits>`` identifying what sets the PDs: the LightGBM model
  text's sha256 and the calibration (``pipelines.training.version_id``);
* ``artifact`` / ``artifact_sha256``: LightGBM model text and its sha256;
* ``spec`` (JSON): spec name, sha256 and source text, effective LightGBM parameters,
  monotone constraints, feature list, seed, the sample ``design`` (cut-off, lag,
  horizon, out-of-time years, validation fraction, snapshot) and the ``calibration``
  parameters (intercept, slope, shift, floor, target_rate);
* ``metrics`` (JSON): sample sizes and default rates, AUC per sample for the model and
  the challenger, grade distributions, and the ``challenger`` summary (WoE logistic
  coefficients);
* ``data_fingerprint``: sha256 of the exact modelling rows (``pipelines.features``);
* ``code_version``, ``seed``, ``status`` (candidate | approved | retired).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from creditdb.schema import ModelVersion

T = ModelVersion.__table__


class RegistryError(LookupError):
    """Unknown, retired or otherwise unusable model version."""


def register(conn: Connection, rec: dict[str, Any]) -> tuple[int, bool]:
    """Insert ``rec`` unless the same version exists; returns (row id, created)."""
    existing = conn.execute(select(T.c.id, T.c.data_fingerprint).where(T.c.version == rec["version"])).first()
    if existing is not None:
        if existing.data_fingerprint != rec["data_fingerprint"]:
            raise RegistryError(f"model {rec['version']} is already registered from different training data "
                                f"(fingerprint {existing.data_fingerprint[:12]} vs {rec['data_fingerprint'][:12]})")
        return int(existing.id), False
    row_id = conn.execute(T.insert().values(**rec).returning(T.c.id)).scalar_one()
    return int(row_id), True


def _row(r) -> dict[str, Any]:
    return dict(r._mapping)


def get(conn: Connection, version: str) -> dict[str, Any]:
    """The full registry row of ``version``; raises :class:`RegistryError` if unknown."""
    r = conn.execute(select(T).where(T.c.version == version)).first()
    if r is None:
        raise RegistryError(f"no model version {version!r}: see 'creditdb model list'")
    return _row(r)


def approved(conn: Connection) -> dict[str, Any] | None:
    """The most recently approved model, or None."""
    from creditdb.lookups import approved_model

    r = approved_model(conn)
    return None if r is None else _row(r)


def list_versions(conn: Connection) -> list[dict[str, Any]]:
    """Summary of every registered model, newest first."""
    rows = conn.execute(select(T.c.id, T.c.version, T.c.status, T.c.created_at, T.c.created_by, T.c.seed,
                               T.c.data_fingerprint, T.c.spec, T.c.metrics).order_by(T.c.id.desc())).all()
    out = []
    for r in rows:
        auc = (r.metrics or {}).get("auc", {})
        out.append({"version": r.version, "status": r.status, "created_at": str(r.created_at),
                    "created_by": r.created_by, "spec": r.spec.get("name"), "seed": r.seed,
                    "cutoff": r.spec.get("design", {}).get("cutoff"),
                    "auc_oot": auc.get("model", {}).get("oot"), "auc_oot_challenger": auc.get("challenger", {}).get("oot"),
                    "data_fingerprint": r.data_fingerprint})
    return out


def summary(rec: dict[str, Any]) -> dict[str, Any]:
    """JSON-friendly view of a registry row without the (large) model text."""
    return {k: (str(v) if k.endswith("_at") and v is not None else v) for k, v in rec.items() if k != "artifact"}


def model_card(rec: dict[str, Any]) -> str:
    """Plain-text model card: data window, default definition, features, calibration, limitations."""
    from models.ratios import feature_table

    spec, m = rec["spec"], rec["metrics"]
    d, cal = spec["design"], spec["calibration"]
    s = m["samples"]
    feats = feature_table()
    mono = spec.get("monotone_constraints", {})

    def auc(model: str, k: str) -> str:
        v = m["auc"][model].get(k)
        return "n/a" if v is None else f"{v:.4f}"

    def span(k: str) -> str:
        x = s[k]
        return (f"{x['first_fiscal_year_end']} .. {x['last_fiscal_year_end']}: {x['n']:,} statements, "
                f"{x['defaults']:,} defaults ({(x['default_rate'] or 0) * 100:.2f}%)")

    lines = [
        f"MODEL CARD  {rec['version']}  [{rec['status']}]",
        f"created {str(rec.get('created_at'))[:19]} by {rec.get('created_by')}; code {rec['code_version']}; "
        f"seed {rec['seed']}",
        f"model text sha256 {rec['artifact_sha256']}",
        f"spec {spec['name']} sha256 {spec['sha256']}",
        f"training data fingerprint {rec['data_fingerprint']}",
        "",
        "Data window",
        f"  cut-off {d['cutoff']}" + (f", database snapshot {d['snapshot']}" if d.get("snapshot") else
                                     ", database as stored at training time"),
        f"  fitting sample     {span('fit')}",
        f"  validation slice   {span('valid')}  (early stopping, calibration)",
        f"  out-of-time sample {span('oot')}  (last {d['oot_years']} year(s), metrics only)",
        "",
        "Default definition",
        f"  a default event (CRD / Basel CRE36: 90 days past due, bankruptcy, restructuring ...) within "
        f"{d['horizon_months']} months after the statement is available (fiscal year end + {d['lag_months']} "
        "months reporting lag); statements of firms already in default are excluded.",
        "",
        "Features (monotone constraint: +1 PD rises with the feature, -1 PD falls, 0 free)",
    ]
    for name in spec["features"]:
        f = feats.get(name)
        lines.append(f"  {name:<26} {mono.get(name, 0):+d}  {f.label if f else ''}")
    lines += [
        "",
        "Performance (AUC)        model   challenger",
        f"  fitting sample       {auc('model', 'fit'):>7}   {auc('challenger', 'fit'):>7}",
        f"  validation slice     {auc('model', 'valid'):>7}   {auc('challenger', 'valid'):>7}",
        f"  out-of-time          {auc('model', 'oot'):>7}   {auc('challenger', 'oot'):>7}",
        "",
        "Calibration",
        f"  Platt scaling on the validation slice, anchored to the long-run default rate of the development "
        f"sample {cal['target_rate'] * 100:.3f}% (mean of yearly rates); PD floor {cal['floor'] * 100:.2f}%.",
        f"  PD = max(floor, logistic({cal['intercept']:.4f} + {cal['shift']:.4f} + {cal['slope']:.4f} * score))",
        "",
        "Grade distribution (out-of-time sample)",
    ]
    for g in m.get("grade_distribution_oot", []):
        if g["n"]:
            lines.append(f"  grade {g['grade']:>3}: {g['n']:>8,} ({g['share'] * 100:5.1f}%)  defaults {g['defaults']:>6,}"
                         f"  observed {g['default_rate'] * 100:6.2f}%  mean PD {g['mean_pd'] * 100:6.2f}%")
    lines += [
        "",
        "Known limitations",
        "  - trained on the statements and defaults submitted to this database only; firms that never default"
        " in the data window and late default reporting both bias the default rate downwards;",
        "  - the long-run anchor averages only the fiscal years in the development sample, which may not span"
        " a full economic cycle;",
        "  - ratios assume one currency and consistent accounting; statements with missing items get NaN"
        " features, handled by LightGBM but not imputed;",
        "  - reason codes are tree SHAP contributions (log-odds), not causal effects;",
        "  - the model must be validated and approved before use for decisions (status above).",
    ]
    return "\n".join(lines)


def export(rec: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write model.txt, spec.toml, spec.json, metrics.json and MODEL_CARD.txt into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "model.txt": rec["artifact"],
        "spec.toml": rec["spec"].get("source_text", ""),
        "spec.json": json.dumps({k: v for k, v in rec["spec"].items() if k != "source_text"}, indent=2, default=str),
        "metrics.json": json.dumps(rec["metrics"], indent=2, default=str),
        "MODEL_CARD.txt": model_card(rec) + "\n",
    }
    paths = []
    for name, text in files.items():
        p = out_dir / name
        p.write_text(text, encoding="utf-8", newline="\n")
        paths.append(p)
    return paths
