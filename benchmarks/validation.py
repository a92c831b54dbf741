"""Time build_validation (and render_html) on N synthetic scored statements; print JSON.

Usage: PYTHONPATH=. python benchmarks/validation.py [--n 1000000] [--seed 7]
Target: build_validation on 1,000,000 observations well under 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path


def _machine() -> dict[str, object]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = round(int(line.split()[1]) / 1024 ** 2, 1)
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gb": ram_gb, "python": platform.python_version(),
            "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    from pipelines.validation_demo import synthetic_validation_inputs
    from pipelines.validation_report import build_validation, render_html

    t0 = time.perf_counter()
    kw = synthetic_validation_inputs(args.n, seed=args.seed)
    t1 = time.perf_counter()
    results = build_validation(**kw)
    t2 = time.perf_counter()
    page = render_html(results)
    t3 = time.perf_counter()
    print(json.dumps({
        "benchmark": "validation",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "n": args.n,
        "features": int(kw["features_val"].shape[1]),
        "generate_s": round(t1 - t0, 3),
        "build_validation_s": round(t2 - t1, 3),
        "render_html_s": round(t3 - t2, 3),
        "total_validation_s": round(t3 - t1, 3),
        "html_bytes": len(page.encode("utf-8")),
        "auc": round(results["discrimination"]["auc"]["auc"], 4),
        "machine": _machine(),
    }, indent=2))


if __name__ == "__main__":
    main()
