"""Research mode with the plain references on the development sets; prints JSON.

Run from the repository root (a few minutes on 2 cores; XGBoost and optbinning rows need
the optional extra ``compare``):

    PYTHONPATH=. python benchmarks/research_compare.py [polish german uci]

Per set: rows, defaults, wall time of the whole evaluation (5-fold stratified CV, shuffle,
random_state 0, nested selection of the rating model included) and per model the pooled
out-of-fold AUC with its DeLong interval, Brier score, calibration intercept and slope
and the mean PD.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import lightgbm

from models.research import evaluate, model_entries, prepare_table, read_table

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
SETS = {
    "polish": (DATA / "polish_1year.arff", "class", None),
    "german": (DATA / "germancredit.csv", "creditability", "bad"),
    "uci": (DATA / "uci_credit_card.csv", "default", None),
}


def main(names: list[str]) -> None:
    out = {"benchmark": "research_compare", "python": platform.python_version(),
           "lightgbm": lightgbm.__version__, "machine": platform.machine(), "sets": []}
    for name in names or list(SETS):
        path, label, positive = SETS[name]
        X, y, warnings = prepare_table(read_table(path), label, origin=str(path), positive=positive)
        t0 = time.perf_counter()
        r = evaluate(X, y, cv=5, seed=0, compare=True)
        seconds = time.perf_counter() - t0
        out["sets"].append({
            "set": name, "rows": int(len(y)), "features": int(X.shape[1]), "defaults": int(y.sum()),
            "seconds": round(seconds, 1), "warnings": [w["code"] for w in warnings],
            "not_installed": r.get("references_not_installed", []),
            "models": {k: {f: m[f] for f in ("pooled_auc", "pooled_auc_ci95", "mean_auc", "brier",
                                              "calibration_intercept", "calibration_slope", "mean_pd")}
                       for k, m in model_entries(r["models"]).items()},
            "selection": [{k: s[k] for k in ("candidate", "rounds", "blend_weight_lightgbm")} for s in r["selection"]],
        })
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
