"""CRD scale on one machine: synthesise a CRD-sized pool, then submit, train, score, validate,
publish statistics and price guarantees, recording each phase's time, peak memory and the
database's size. Prints JSON (one object per phase as it finishes, then the summary).

Japan's CRD: 3.31 million borrowers, 21.16 million statements (FY2014 business report).
``--statements 21000000`` builds a pool of that size (about 6.4 statements a firm over 10
fiscal years); the default number of member institutions grows with the pool (3 at 1M,
60 at 21M: ``--banks``), each submitting one statements file and one defaults file per
synthesis batch of about ``--batch`` statements.

Phases (each in its own process, so each peak RSS is its own; ``--phases`` picks some):
  synth     generate the files (excluded from the goal)
  submit    ``pipelines.ingest.submit_file`` of every file (owner's path), in order
  train     read, build the modelling table, fit, register (``pipelines.training.train``)
  score     score every firm's latest statement (``pipelines.scoring.score_firms``)
  validate  rebuild the model and build its validation report (``pipelines.model_validation.validate``)
  stats     the published-statistics table by industry, size and year (``pipelines.statistics``)
  price     price 1,000,000 guarantees on scored firms (``models.pricing.price_loans``)

Resumable: the state (database URL, files, finished phases) is kept in ``--workdir``
(``state.json``); a phase that finished is skipped unless named in ``--phases``.

Usage: PYTHONPATH=. python benchmarks/crd_scale.py --statements 1000000 --workdir /tmp/crd1m
       PYTHONPATH=. python benchmarks/crd_scale.py --workdir /tmp/crd1m --phases score,price
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]  # benchmarks/statistics.py shadows stdlib
sys.path.insert(0, str(_HERE.parent))

PHASES = ("synth", "submit", "train", "score", "validate", "stats", "price")
CUTOFF = dt.date(2024, 3, 31)
TODAY = dt.date(2025, 6, 30)
KEY = b"crd-scale-benchmark-key"


def _state(workdir: Path) -> dict:
    f = workdir / "state.json"
    return json.loads(f.read_text()) if f.exists() else {}


def _save(workdir: Path, state: dict) -> None:
    (workdir / "state.json").write_text(json.dumps(state, indent=2, default=str))


def _db_size(url: str) -> int | None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    finally:
        engine.dispose()


# --- phases (run in a child process) ------------------------------------------------------

def phase_synth(state: dict, workdir: Path) -> dict:
    import numpy as np

    from pipelines import synth

    n, banks, batch = state["statements"], state["banks"], state["batch"]
    files, made, b = [], 0, 0
    while made < n * 0.995:  # the generator's counts are approximate: within 0.5 % is the size asked for
        want, before = min(batch, n - made), made
        # about 6.4 in-force statements a firm over 10 years (CRD: 21.16M / 3.31M)
        data = synth.generate(firms=int(want / 6.4 * 1.02) + 10, years=10, banks=banks, seed=1000 + b,
                              start_year=2014, today=TODAY)
        total = sum(len(s) for s in data.statements.values())
        keep = min(1.0, want / max(total, 1))
        out = workdir / "files" / f"batch{b:03d}"
        for bank, frame in data.statements.items():
            st = frame.head(int(len(frame) * keep) if keep < 1 else len(frame)).copy()
            st["borrower_key"] = st["borrower_key"].astype(str).str.replace(f"{bank}-", f"{bank}-b{b}-", n=1)
            firms = set(st["borrower_key"])
            de = data.defaults[bank].copy()
            de["borrower_key"] = de["borrower_key"].astype(str).str.replace(f"{bank}-", f"{bank}-b{b}-", n=1)
            de = de.loc[de["borrower_key"].isin(firms)]
            d = out / bank
            d.mkdir(parents=True, exist_ok=True)
            st.to_csv(d / "statements.csv", index=False)
            de.to_csv(d / "defaults.csv", index=False)
            files += [[bank, "statements", str(d / "statements.csv"), len(st)],
                      [bank, "defaults", str(d / "defaults.csv"), len(de)]]
            made += len(st)
        b += 1
        del data
        if made == before:  # pragma: no cover - nothing more to generate
            break
    state["files"] = files
    state["institutions"] = sorted({f[0] for f in files})
    return {"files": len(files), "statements": int(sum(f[3] for f in files if f[1] == "statements")),
            "defaults": int(sum(f[3] for f in files if f[1] == "defaults")), "batches": b,
            "bytes": int(np.sum([Path(f[2]).stat().st_size for f in files]))}


def phase_submit(state: dict, workdir: Path) -> dict:
    from sqlalchemy import select

    from creditdb.db import make_engine
    from creditdb.schema import Institution
    from pipelines.ingest import submit_file

    engine = make_engine(state["url"])
    with engine.begin() as conn:
        have = set(conn.execute(select(Institution.code)).scalars())
        for code in state["institutions"]:
            if code not in have:
                conn.execute(Institution.__table__.insert().values(code=code, name=code, kind="bank", country="JP"))
    done = set(state.get("submitted", []))
    rows = loaded = 0
    order = [f for f in state["files"] if f[1] == "statements"] + [f for f in state["files"] if f[1] == "defaults"]
    for bank, kind, path, _rows in order:
        if path in done:
            continue
        res = submit_file(engine, kind, path, bank, key=KEY, actor="crd-scale", today=TODAY, progress=False)
        if res.status not in ("loaded", "partial"):
            raise RuntimeError(f"{path}: {res.status} {res.blocking[:1]} {list(res.issue_counts.items())[:3]}")
        rows += res.rows_total
        loaded += res.rows_loaded
        done.add(path)
    state["submitted"] = sorted(done)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return {"rows": rows, "rows_loaded": loaded, "files": len(order)}


def phase_train(state: dict, workdir: Path) -> dict:
    from creditdb.db import make_engine
    from pipelines.training import train

    engine = make_engine(state["url"])
    tm, outcome = train(engine, CUTOFF, seed=0, actor="crd-scale", dask=state.get("dask"))
    state["model"] = outcome["version"]
    m = tm.metrics
    return {"version": outcome["version"], "rows": len(tm.table), "engine": tm.engine["kind"],
            "auc_oot": m["auc"]["model"].get("oot"), "best_iteration": m.get("best_iteration")}


def phase_score(state: dict, workdir: Path) -> dict:
    from creditdb.db import make_engine
    from pipelines.scoring import score_firms

    engine = make_engine(state["url"])
    out = score_firms(engine, state["model"], as_of=TODAY, actor="crd-scale", progress=False)
    return {k: v for k, v in out.items() if isinstance(v, (int, float, str))}


def phase_validate(state: dict, workdir: Path) -> dict:
    from creditdb.db import make_engine
    from pipelines.model_validation import validate

    engine = make_engine(state["url"])
    out = validate(engine, state["model"], actor="crd-scale")
    return {"keys": sorted(out)[:8]}


def phase_stats(state: dict, workdir: Path) -> dict:
    from creditdb.db import make_engine
    from pipelines.statistics import statistics

    try:  # secdata's publishing step, when it has landed
        from pipelines.statistics import publish  # type: ignore[attr-defined]
    except ImportError:
        publish = None
    engine = make_engine(state["url"])
    table = statistics(engine, ["industry", "size", "year"], ["equity_ratio", "roa", "current_ratio"], k=5)
    return {"cells": len(table), "published": publish is not None}


def phase_price(state: dict, workdir: Path) -> dict:
    import numpy as np
    import pandas as pd
    from sqlalchemy import text

    from creditdb.db import make_engine
    from models.fee_schedule import load_schedule
    from models.pricing import load_policy, price_loans

    engine = make_engine(state["url"])
    with engine.connect() as conn:
        # firms not in default (a firm in default has PD 1: no guarantee is priced for it)
        pds = pd.DataFrame(conn.execute(text("SELECT firm_id, pd FROM score WHERE pd > 0 AND pd < 1")).all(),
                           columns=["firm_id", "pd"])
    n = 1_000_000
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(pds), n)
    loans = pd.DataFrame({"loan_id": np.arange(n), "pd": pds["pd"].to_numpy()[pick],
                          "amount": rng.lognormal(np.log(2e7), 1.0, n).round(),
                          "tenor_years": rng.integers(1, 11, n).astype(float),
                          "coverage": rng.choice([0.8, 1.0], n, p=[0.85, 0.15]),
                          "amortization": rng.choice(["bullet", "linear", "annuity"], n, p=[0.2, 0.3, 0.5]),
                          "rate": rng.uniform(0.01, 0.04, n),
                          # JPY sales in EUR millions at the ECB rate of 2023-12-29 (156.33 JPY per EUR)
                          "sales_eur_m": rng.lognormal(np.log(5e8), 1.2, n) / 156.33 / 1e6,
                          "secured": rng.random(n) < 0.2})
    priced = price_loans(loans, load_policy(), load_schedule("japan"))
    return {"guarantees": len(priced), "mean_charged_rate": float(priced["charged_rate"].mean()),
            "mean_break_even_rate": float(priced["break_even_rate"].mean())}


def run_child(phase: str, workdir: Path) -> None:
    state = _state(workdir)
    t, c = time.perf_counter(), time.process_time()
    out = globals()[f"phase_{phase}"](state, workdir)
    out = {"phase": phase, "seconds": round(time.perf_counter() - t, 1), "cpu_s": round(time.process_time() - c, 1),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), **out}
    state.setdefault("results", {})[phase] = out
    _save(workdir, state)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--statements", type=int, default=1_000_000)
    ap.add_argument("--banks", type=int, default=None,
                    help="member institutions (default: statements / 350,000, 3-180)")
    ap.add_argument("--batch", type=int, default=1_000_000, help="statements per synthesis batch")
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--phases", default=",".join(PHASES), help="comma-separated phases to (re)run")
    ap.add_argument("--pg", default=os.environ.get("CREDITDB_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
                    help="server URL; a database creditdb_crd_<n> is created there and kept (drop it yourself)")
    ap.add_argument("--dask", default=None, help="train on this Dask cluster (address or local[:N])")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_child(args.child, args.workdir)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    state = _state(args.workdir)
    if not state:
        from sqlalchemy import create_engine, text

        from creditdb.db import make_engine, upgrade

        name = f"creditdb_crd_{args.statements}_{int(time.time())}"
        admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = args.pg.rsplit("/", 1)[0] + "/" + name
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        state = {"statements": args.statements, "url": url, "batch": args.batch, "dask": args.dask,
                 "banks": args.banks or max(3, min(180, args.statements // 350_000))}
        _save(args.workdir, state)
    wanted = [p.strip() for p in args.phases.split(",") if p.strip()]
    for phase in PHASES:
        if phase not in wanted:
            continue
        load = os.getloadavg()[0]
        child = subprocess.run([sys.executable, __file__, "--workdir", str(args.workdir), "--child", phase],
                               env={**os.environ, "PYTHONPATH": str(_HERE.parent)})
        if child.returncode:
            sys.exit(f"phase {phase} failed (exit {child.returncode}); fix and rerun with --phases {phase},...")
        state = _state(args.workdir)
        res = state["results"][phase]
        res.update(load_avg_1m_before=round(load, 2), db_bytes=_db_size(state["url"]))
        _save(args.workdir, state)
        print(json.dumps(res), flush=True)
    results = state.get("results", {})
    timed = [p for p in PHASES if p != "synth" and p in results]
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "?")
    print(json.dumps({
        "benchmark": "crd_scale", "statements": state["statements"], "banks": state["banks"],
        "phases": {p: {k: results[p].get(k) for k in ("seconds", "cpu_s", "peak_rss_mb", "db_bytes")} for p in timed},
        "total_excluding_synth_s": round(sum(results[p]["seconds"] for p in timed), 1),
        "peak_rss_mb": max((results[p]["peak_rss_mb"] for p in timed), default=None),
        "db_gb": round(max((results[p].get("db_bytes") or 0) for p in timed) / 2**30, 2) if timed else None,
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version()},
    }, indent=2))


if __name__ == "__main__":
    main()
