"""Time models.statistics.cell_statistics on N synthetic statements; print JSON.

Usage: PYTHONPATH=. python benchmarks/statistics.py [--n 1000000] [--firms 200000] [--regions 47] [--seed 7]
Dimensions industry (21 sections) x region x size (4) x year (10), 16 ratios, k = 5,
margins on (every subtotal), split by default / non-default.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--firms", type=int, default=200_000)
    ap.add_argument("--regions", type=int, default=47)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    from models.statistics import cell_statistics
    from pipelines.statistics import RATIOS

    rng = np.random.default_rng(args.seed)
    firm = rng.integers(0, args.firms, args.n)
    frame = pd.DataFrame({
        "firm_id": firm,
        "industry": np.array(list("ABCDEFGHIJKLMNOPQRSTU"))[firm % 21],
        "region": (firm // 21) % args.regions,
        "size": np.array(["micro", "small", "medium", "large"])[firm % 4],
        "year": rng.integers(2015, 2025, args.n),
        "label": np.where(rng.random(args.n) < 0.02, 1.0, 0.0),
    })
    for r in RATIOS:
        frame[r] = rng.normal(size=args.n)
    results = {}
    for by in (["industry"], ["industry", "size", "year"], ["industry", "region", "size", "year"]):
        t0 = time.perf_counter()
        out = cell_statistics(frame, by, list(RATIOS), k=5)
        results[",".join(by)] = {"seconds": round(time.perf_counter() - t0, 2), "rows": len(out),
                                 "suppressed": int(out["suppressed"].notna().sum())}
    print(json.dumps({"benchmark": "statistics.cell_statistics", "n": args.n, "firms": args.firms,
                      "regions": args.regions, "ratios": len(RATIOS), "results": results,
                      "machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
                      "at": datetime.now(UTC).isoformat(timespec="seconds")}, indent=2))


if __name__ == "__main__":
    main()
