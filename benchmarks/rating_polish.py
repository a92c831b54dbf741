"""Timing of research-mode evaluation on the Polish bankruptcy data; prints JSON.

Run from the repository root:  PYTHONPATH=. python benchmarks/rating_polish.py
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import lightgbm

from models.research import evaluate, read_table, split_label

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "polish_1year.arff"


def main() -> None:
    t0 = time.perf_counter()
    X, y = split_label(read_table(DATA), "class")
    t_read = time.perf_counter() - t0
    out = {"benchmark": "rating_polish", "rows": len(y), "features": X.shape[1],
           "python": platform.python_version(), "lightgbm": lightgbm.__version__, "read_s": round(t_read, 3),
           "runs": []}
    for spec in ("rating_v1.toml", "research_v1.toml"):
        t0 = time.perf_counter()
        r = evaluate(X, y, cv=5, seed=0, spec=spec)
        out["runs"].append({"spec": spec, "cv": 5, "seconds": round(time.perf_counter() - t0, 3),
                            "lightgbm_mean_auc": r["models"]["lightgbm"]["mean_auc"],
                            "challenger_mean_auc": r["models"]["challenger"]["mean_auc"]})
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
