"""Time the synthetic-data generator; prints JSON.

Usage: PYTHONPATH=. python benchmarks/synth_generate.py [--firms 125000] [--years 8] [--banks 5] [--write]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from pipelines import synth


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--firms", type=int, default=125_000)
    ap.add_argument("--years", type=int, default=8)
    ap.add_argument("--banks", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--write", action="store_true", help="also time writing CSV files")
    a = ap.parse_args()
    t0 = time.perf_counter()
    data = synth.generate(a.firms, a.years, a.banks, a.seed)
    t_gen = time.perf_counter() - t0
    result = {"benchmark": "synth_generate", "firms": a.firms, "years": a.years, "banks": a.banks,
              "statement_rows": sum(len(v) for v in data.statements.values()),
              "loan_rows": sum(len(v) for v in data.loans.values()),
              "generate_seconds": round(t_gen, 2)}
    if a.write:
        with tempfile.TemporaryDirectory() as tmp:
            t1 = time.perf_counter()
            synth.write(data, Path(tmp))
            result["write_csv_seconds"] = round(time.perf_counter() - t1, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
