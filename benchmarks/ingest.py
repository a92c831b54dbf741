"""Ingest benchmark: N synthetic statement rows from CSV into PostgreSQL, end to end.

Compares, in one run on the same file:
  * raw   - ``psql \\copy`` of the CSV into a bare typed table (no validation, no keys),
            timed before and after ours (the mean is the reference: the machine is shared);
  * ours  - ``creditdb submit statements`` in a fresh process: read, type, validate
            (Great Expectations), anonymise, resolve firms, COPY, audit.
Prints JSON with both wall times, their ratio and the peak RSS of our process.

Usage: python benchmarks/ingest.py [--rows 1000000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

# run as a script, Python puts benchmarks/ first on the path, where statistics.py (another
# benchmark) would shadow the standard library's: put the repository there instead
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))


def make_file(rows: int, out: Path, seed: int) -> Path:
    from pipelines import synth

    years = 8
    # about 84 % of firm-years survive to a statement row: generate enough for ``rows``
    data = synth.generate(firms=int(rows / years * 1.25) + 10, years=years, banks=1, seed=seed)
    frame = data.statements["BK1"].head(rows)
    path = out / "statements.csv"
    frame.to_csv(path, index=False)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--file", type=Path, help="use this statements CSV instead of generating one")
    args = ap.parse_args()

    t = time.perf_counter()
    path = args.file or make_file(args.rows, Path(tempfile.mkdtemp(prefix="creditdb-bench-")), args.seed)
    gen_s = time.perf_counter() - t
    load_before = os.getloadavg()
    header = path.open().readline().strip().split(",")
    n_rows = sum(1 for _ in path.open()) - 1

    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    db = f"creditdb_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db}"'))
    url = args.pg.rsplit("/", 1)[0] + "/" + db
    libpq = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        from pipelines import dictionary as D

        types = {c.name: c.type for c in D.STATEMENTS}
        sqltype = {"amount": "double precision", "rate": "double precision", "int": "integer", "date": "date"}
        cols = ", ".join(f'"{c}" {sqltype.get(types.get(c, "text"), "text")}' for c in header)

        def raw_copy() -> float:
            """Seconds for psql to COPY the file into a fresh bare table."""
            subprocess.run(["psql", libpq, "-q", "-c", f"SET client_min_messages = warning; DROP TABLE IF EXISTS bare; CREATE TABLE bare ({cols})"],
                           check=True)
            t = time.perf_counter()
            subprocess.run(["psql", libpq, "-q", "-c", f"\\copy bare FROM '{path}' WITH (FORMAT csv, HEADER true)"],
                           check=True)
            return time.perf_counter() - t

        raw_before = raw_copy()

        env = {**os.environ, "CREDITDB_URL": url, "CREDITDB_PSEUDONYM_KEY": "bench-key", "CREDITDB_ACTOR": "bench"}
        exe = [sys.executable, "-m", "creditdb.cli"]
        subprocess.run(exe + ["init"], env=env, check=True, capture_output=True)
        subprocess.run(exe + ["institution", "add", "BK1", "--name", "Bench", "--kind", "bank", "--country", "JP"],
                       env=env, check=True, capture_output=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t = time.perf_counter()
        res = subprocess.run(exe + ["submit", "statements", str(path), "-i", "BK1", "--json"], env=env,
                             capture_output=True, text=True)
        ours_s = time.perf_counter() - t
        # the machine is shared: time the raw COPY again after our run and use the mean
        raw_after = raw_copy()
        raw_s = (raw_before + raw_after) / 2
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        out = json.loads(res.stdout)
        startup = subprocess.run([sys.executable, "-c", "import time; t=time.perf_counter();"
                                  "from pipelines.validate import Validator; Validator('statements');"
                                  "print(time.perf_counter()-t)"], capture_output=True, text=True, env=env)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print(json.dumps({
        "benchmark": "ingest_statements_csv_postgresql",
        "rows": n_rows,
        "columns": len(header),
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "raw_copy_s": round(raw_s, 2),
        "raw_copy_before_after_s": [round(raw_before, 2), round(raw_after, 2)],
        "creditdb_submit_s": round(ours_s, 2),
        "ratio_vs_raw_copy": round(ours_s / raw_s, 2),
        "validator_startup_s": round(float(startup.stdout.strip() or "nan"), 2),
        "peak_rss_mb": round(max(peak_kb, before) / 1024, 1),
        "status": out["status"],
        "rows_loaded": out["rows_loaded"],
        "rows_rejected": out["rows_rejected"],
        "generate_file_s": round(gen_s, 1),
        "load_average_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version()},
    }, indent=2))


if __name__ == "__main__":
    main()
