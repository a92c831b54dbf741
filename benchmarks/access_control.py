"""Cost of access control on ingest: server-side pseudonyms and loading under row-level security.

One synthetic statements file is submitted three times, each into a fresh database, in
one process and one run:
  * python_key  - the database owner, HMAC in Python with the key (the pre-RLS path, direct COPY);
  * server_key  - the owner, HMAC in the server (``creditdb_pseudonyms``), direct COPY;
  * bank_rls    - a bank's own LOGIN under row-level security: server HMAC, COPY into a
                  temporary table and INSERT ... SELECT through the policies.
Also times hashing alone (Python vs server) for the file's distinct borrower keys.
Runs the three modes in turn ``--repeat`` times (each in its own database) and counts
each mode's fastest run. Prints JSON; ratios are against python_key in the same run.

Usage: python benchmarks/access_control.py [--rows 200000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

_HERE = Path(__file__).resolve().parent
# this folder has a statistics.py that would shadow the standard library's
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

KEY = b"bench-key-0123456789"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=2, help="Rounds over the three modes; the minimum counts.")
    args = ap.parse_args()

    import pandas as pd

    from creditdb import anonymise as anon
    from creditdb.db import make_engine, upgrade
    from creditdb.schema import Institution
    from creditdb.security import bind_login, set_key
    from pipelines import synth
    from pipelines.ingest import submit_file
    from pipelines.validate import get_validator

    work = Path(tempfile.mkdtemp(prefix="creditdb-bench-"))
    years = 8
    data = synth.generate(firms=int(args.rows / years * 1.12) + 10, years=years, banks=1, seed=args.seed)
    frame = data.statements["BK1"].head(args.rows)
    path = work / "statements.csv"
    frame.to_csv(path, index=False)
    validator = get_validator("statements")  # built once, outside the timings (Great Expectations start-up)

    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    base = args.pg.rsplit("/", 1)[0]
    sfx = uuid.uuid4().hex[:8]
    role = f"bench_bank_{sfx}"
    dbs: list[str] = []
    out: dict = {}
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN IN ROLE creditdb_institution'))
    try:
        rounds = [m for _ in range(args.repeat) for m in ("python_key", "server_key", "bank_rls")]
        for i, mode in enumerate(rounds):
            db = f"creditdb_bench_{mode}_{i}_{sfx}"
            dbs.append(db)
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{db}"'))
            owner = make_engine(f"{base}/{db}")
            upgrade(owner)
            with owner.begin() as conn:
                set_key(conn, KEY)
                conn.execute(Institution.__table__.insert().values(code="BK1", name="Bench", kind="bank",
                                                                   country="JP"))
                bind_login(conn, "BK1", role)
            if mode == "bank_rls":
                scheme, rest = base.split("://", 1)
                engine = make_engine(f"{scheme}://{role}@{rest.split('@', 1)[-1]}/{db}")
            else:
                engine = owner
            key = KEY if mode == "python_key" else anon.DbHasher(engine)
            t = time.perf_counter()
            res = submit_file(engine, "statements", path, "BK1", key=key, actor="bench", progress=False,
                              validator=validator)
            took = round(time.perf_counter() - t, 2)
            prev = out.get(mode, {"runs_s": []})
            out[mode] = {"seconds": min(prev["runs_s"] + [took]), "runs_s": prev["runs_s"] + [took],
                         "status": res.status, "rows_loaded": res.rows_loaded}
            if mode == "server_key" and "hash_only" not in out:
                keys = pd.Series(frame["borrower_key"].unique())
                t = time.perf_counter()
                py = anon.borrower_hash(KEY, "BK1", keys)
                py_s = time.perf_counter() - t
                t = time.perf_counter()
                srv = anon.borrower_hash(anon.DbHasher(owner), "BK1", keys)
                srv_s = time.perf_counter() - t
                assert py.tolist() == srv.tolist()
                out["hash_only"] = {"values": len(keys), "python_s": round(py_s, 3), "server_s": round(srv_s, 3)}
            if engine is not owner:
                engine.dispose()
            owner.dispose()
    finally:
        with admin.connect() as conn:
            for db in dbs:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
    a = out["python_key"]["seconds"]
    with open("/proc/cpuinfo") as info:
        cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), "?")
    print(json.dumps({
        "benchmark": "ingest_access_control_postgresql",
        "rows": len(frame),
        **out,
        "ratio_server_key_vs_python_key": round(out["server_key"]["seconds"] / a, 2),
        "ratio_bank_rls_vs_python_key": round(out["bank_rls"]["seconds"] / a, 2),
        "load_avg_1min": os.getloadavg()[0],
        "machine": {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version()},
    }, indent=2))


if __name__ == "__main__":
    main()
