"""Start-up time of ``creditdb --help`` and of ``creditdb <group> --help`` for every group.

Each command runs in a fresh interpreter (``python -m creditdb.cli ...`` from the project
root), ``--runs`` times, interleaved so that the machine's load falls on all alike; the
median and the best wall time are printed per command, and the ratio of each group's
median to the top-level help's median in the same run.

Usage: python benchmarks/cli_startup.py [--runs 7]   (prints JSON)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _median(values: list[float]) -> float:
    # (not statistics.median: benchmarks/statistics.py shadows the standard module here)
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def _time(args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "creditdb.cli", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per command (default 7)")
    opts = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from creditdb.cli import COMMANDS

    commands = [["--help"]] + [[g, "--help"] for g in sorted(COMMANDS)]
    times: dict[str, list[float]] = {" ".join(c): [] for c in commands}
    _time(["--help"])  # warm the file cache
    for _ in range(opts.runs):
        for c in commands:
            times[" ".join(c)].append(_time(c))
    top = _median(times["--help"])
    out = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average": os.getloadavg()},
        "runs": opts.runs,
        "seconds": {k: {"median": round(_median(v), 4), "best": round(min(v), 4)} for k, v in times.items()},
        "median_over_top_level_help": {k: round(_median(v) / top, 2) for k, v in times.items()},
        "slowest_group_median": round(max(_median(v) for k, v in times.items() if k != "--help"), 4),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
