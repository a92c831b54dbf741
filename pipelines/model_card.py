"""The model card and the export of a registered model (presentation of a registry row).

The registry (``creditdb.registry``) stores and reads model versions; what is shown of
one, with the feature labels of ``models.ratios``, is built here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.ratios import feature_table


def model_card(rec: dict[str, Any]) -> str:
    """Plain-text model card of a registry row (:func:`creditdb.registry.get`): data window,
    default definition, features, calibration, limitations."""
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
    ]
    if rec.get("approved_by"):
        lines.append(f"approved by {rec['approved_by']} at {str(rec.get('approved_at'))[:19]}"
                     + (f"; {rec['approval_note']}" if rec.get("approval_note") else ""))
    lines += [
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
