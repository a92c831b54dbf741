"""Ingest benchmark: N synthetic statement rows from CSV into PostgreSQL and SQLite, end to end.

Compares, in one run on the same file, ``--runs`` times per database:
  * raw   - PostgreSQL: ``psql \\copy`` of the CSV into a bare typed table (no validation,
            no keys); SQLite: the ``sqlite3`` shell's ``.import`` into a bare table; each
            timed before and after ours (the mean is the reference: the machine is shared);
  * ours  - ``creditdb submit statements`` in a fresh process into a fresh database: read,
            type, validate (Great Expectations), anonymise, resolve firms, write with the
            set-based reference checks, audit.
Prints JSON with the wall times, their ratios (per run, median, best) and the peak RSS of
our process.

Usage: python benchmarks/ingest.py [--rows 1000000] [--runs 3] [--db both|postgresql|sqlite]
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


def _sql_columns(header: list[str], dialect: str) -> str:
    from pipelines import dictionary as D

    types = {c.name: c.type for c in D.STATEMENTS}
    pg = {"amount": "double precision", "rate": "double precision", "int": "integer", "date": "date"}
    lite = {"amount": "REAL", "rate": "REAL", "int": "INTEGER", "date": "DATE"}
    m = pg if dialect == "postgresql" else lite
    return ", ".join(f'"{c}" {m.get(types.get(c, "text"), "TEXT")}' for c in header)


def _submit(url: str, path: Path) -> tuple[float, int, dict]:
    """Fresh schema at ``url``, one institution, ``creditdb submit statements`` in a fresh process:
    (seconds, peak RSS in kB, the JSON result)."""
    env = {**os.environ, "CREDITDB_URL": url, "CREDITDB_PSEUDONYM_KEY": "bench-pseudonym-key-not-secret", "CREDITDB_ACTOR": "bench",
           "PYTHONPATH": str(_HERE.parent)}
    exe = [sys.executable, "-m", "creditdb.cli"]
    subprocess.run(exe + ["init"], env=env, check=True, capture_output=True)
    subprocess.run(exe + ["institution", "add", "BK1", "--name", "Bench", "--kind", "bank", "--country", "JP"],
                   env=env, check=True, capture_output=True)
    t = time.perf_counter()
    res = subprocess.run(exe + ["submit", "statements", str(path), "-i", "BK1", "--json"], env=env,
                         capture_output=True, text=True)
    seconds = time.perf_counter() - t
    # the largest child so far: ours (psql and the sqlite3 shell stay far smaller)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, peak, json.loads(res.stdout)


def run_postgresql(args, path: Path, header: list[str]) -> list[dict]:
    cols = _sql_columns(header, "postgresql")
    runs = []
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    for _ in range(args.runs):
        db = f"creditdb_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{db}"'))
        url = args.pg.rsplit("/", 1)[0] + "/" + db
        libpq = url.replace("postgresql+psycopg://", "postgresql://")
        try:
            def raw_copy(libpq: str = libpq) -> float:
                """Seconds for psql to COPY the file into a fresh bare table."""
                subprocess.run(["psql", libpq, "-q", "-c", "SET client_min_messages = warning; "
                                f"DROP TABLE IF EXISTS bare; CREATE TABLE bare ({cols})"], check=True)
                t = time.perf_counter()
                subprocess.run(["psql", libpq, "-q", "-c",
                                f"\\copy bare FROM '{path}' WITH (FORMAT csv, HEADER true)"], check=True)
                return time.perf_counter() - t

            load = os.getloadavg()[0]
            before = raw_copy()
            ours, peak, out = _submit(url, path)
            after = raw_copy()  # the machine is shared: the reference is the mean of before and after
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        raw = (before + after) / 2
        runs.append({"raw_copy_s": round(raw, 2), "raw_before_after_s": [round(before, 2), round(after, 2)],
                     "creditdb_submit_s": round(ours, 2), "ratio_vs_raw_copy": round(ours / raw, 2),
                     "peak_rss_mb": round(peak / 1024, 1), "status": out["status"], "rows_loaded": out["rows_loaded"],
                     "load_average_1m_before": round(load, 2)})
    return runs


def run_sqlite(args, path: Path, header: list[str]) -> list[dict]:
    cols = _sql_columns(header, "sqlite")
    runs = []
    for _ in range(args.runs):
        work = Path(tempfile.mkdtemp(prefix="creditdb-bench-sqlite-"))

        def raw_import(work: Path = work) -> float:
            """Seconds for the sqlite3 shell to .import the file into a fresh bare table (WAL, as ours)."""
            f = work / "bare.sqlite"
            f.unlink(missing_ok=True)
            t = time.perf_counter()
            subprocess.run(["sqlite3", str(f)], input=f"PRAGMA journal_mode=WAL;\nCREATE TABLE bare ({cols});\n"
                           f".import --csv --skip 1 {path} bare\n", text=True, check=True, capture_output=True)
            return time.perf_counter() - t

        load = os.getloadavg()[0]
        before = raw_import()
        ours, peak, out = _submit(f"sqlite:///{work / 'creditdb.sqlite'}", path)
        after = raw_import()
        raw = (before + after) / 2
        runs.append({"raw_import_s": round(raw, 2), "raw_before_after_s": [round(before, 2), round(after, 2)],
                     "creditdb_submit_s": round(ours, 2), "ratio_vs_raw_import": round(ours / raw, 2),
                     "peak_rss_mb": round(peak / 1024, 1), "status": out["status"], "rows_loaded": out["rows_loaded"],
                     "load_average_1m_before": round(load, 2)})
    return runs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--runs", type=int, default=3, help="runs per database (each: raw, ours, raw)")
    ap.add_argument("--db", choices=["postgresql", "sqlite", "both"], default="both")
    ap.add_argument("--file", type=Path, help="use this statements CSV instead of generating one")
    args = ap.parse_args()

    t = time.perf_counter()
    path = args.file or make_file(args.rows, Path(tempfile.mkdtemp(prefix="creditdb-bench-")), args.seed)
    gen_s = time.perf_counter() - t
    header = path.open().readline().strip().split(",")
    n_rows = sum(1 for _ in path.open()) - 1
    result: dict = {"benchmark": "ingest_statements_csv", "rows": n_rows, "columns": len(header),
                    "file_mb": round(path.stat().st_size / 2**20, 1), "generate_file_s": round(gen_s, 1)}
    if args.db in ("postgresql", "both"):
        runs = run_postgresql(args, path, header)
        ratios = sorted(r["ratio_vs_raw_copy"] for r in runs)
        result["postgresql"] = {"runs": runs, "ratio_median": ratios[len(ratios) // 2], "ratio_best": ratios[0]}
    if args.db in ("sqlite", "both"):
        runs = run_sqlite(args, path, header)
        ratios = sorted(r["ratio_vs_raw_import"] for r in runs)
        result["sqlite"] = {"runs": runs, "ratio_median": ratios[len(ratios) // 2], "ratio_best": ratios[0]}
    startup = subprocess.run([sys.executable, "-c", "import time; t=time.perf_counter();"
                              "from pipelines.validate import Validator; Validator('statements');"
                              "print(time.perf_counter()-t)"], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(_HERE.parent)})
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "?")
    result.update({
        "validator_startup_s": round(float(startup.stdout.strip() or "nan"), 2),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version()},
    })
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
