"""Rating benchmark: feature build + training on N statements, and scoring every firm, on PostgreSQL.

What is timed (each phase separately, in this process, on the code paths of the CLI):

* ``features``  - ``pipelines.features.load_statements`` + ``load_defaults`` (statements in
                  force and default events read from the database) and
                  ``training_table`` (point-in-time CRD ratios + labels at the cut-off);
* ``training``  - ``pipelines.training.fit`` (LightGBM with early stopping on the
                  time-based validation slice, WoE challenger, calibration, unreported-item
                  offsets, metrics, data fingerprint), the removal effects per optional item
                  (``pipelines.unreported_report``) and registering the model + audit event, i.e. the
                  rest of ``creditdb model train`` (``pipelines.training.train``);
* ``scoring``   - ``pipelines.scoring.score_firms`` (``creditdb score firms``): every
                  firm's latest statement read from the database, features, PD, grade,
                  fee category, top-3 reasons (tree SHAP), written back as ``score`` rows.

Not timed: generating the synthetic data (``pipelines.synth.generate``, one bank) and
loading it. This benchmark measures rating, not ingest: the generated statements are
written directly, as already-anonymised rows (firm pseudonym = sha256 of the bank's
borrower key), with ``creditdb.bulk.copy_frame`` (COPY) into ``firm``, ``financial_statement``
and ``default_event`` of a freshly migrated database. Generation and loading run in a
child process, so the peak RSS reported is that of the rating phases alone.

Database: ``CREDITDB_URL`` if set (must be an empty, migrated PostgreSQL database),
else a fresh database created and dropped on the local server (``--pg``).

Usage: python benchmarks/rating.py [--statements 1000000] [--seed 7] [--pg URL]
Prints JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# benchmarks/statistics.py would shadow the standard library's statistics module
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

CUTOFF = dt.date(2024, 3, 31)
AS_OF = dt.date(2025, 12, 31)
TODAY = dt.date(2026, 1, 1)  # fixes the generator's clip of the years: fiscal years 2015..2022


def load(url: str, statements: int, seed: int, firms: int | None = None, years: int = 8,
         start_year: int = 2015, tag: str = "") -> dict:
    """Generate one bank's data and COPY it into the database at ``url`` (child process).

    ``statements``: rows kept (``firms`` None: enough firms for that many rows); or
    ``firms`` firms over ``years`` years from ``start_year`` (all their rows). Ids
    continue after the rows already stored; ``tag`` keeps pseudonyms unique.
    """
    import numpy as np
    import pandas as pd
    from sqlalchemy import insert, select, text

    from creditdb.bulk import copy_frame
    from creditdb.db import make_engine
    from creditdb.schema import AMOUNT_COLUMNS, Institution, Submission
    from pipelines import synth

    t = time.perf_counter()
    n_firms = firms if firms is not None else int(statements / 6.5) + 10
    data = synth.generate(firms=n_firms, years=years, banks=1, seed=seed, start_year=start_year, today=TODAY)
    raw = data.statements["BK1"] if firms is not None else data.statements["BK1"].head(statements)
    gen_s = time.perf_counter() - t

    t = time.perf_counter()
    # one bank: its borrower key identifies the firm (the corporate number is sometimes missing)
    firm_idx, firm_codes = pd.factorize(raw["borrower_key"].astype(str))
    first = pd.Series(np.arange(len(raw))).groupby(firm_idx).first().to_numpy()
    engine = make_engine(url)
    now = dt.datetime(2025, 6, 30, tzinfo=dt.UTC)
    with engine.begin() as conn:
        def next_id(table: str) -> int:
            return int(conn.execute(text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one()) + 1

        inst = conn.execute(select(Institution.id).where(Institution.code == "BK1")).scalar_one_or_none()
        if inst is None:
            inst = conn.execute(insert(Institution).values(code="BK1", name="Bench bank", kind="bank", country="JP")
                                .returning(Institution.id)).scalar_one()

        def submission(kind: str, n: int) -> int:
            return conn.execute(insert(Submission).values(
                institution_id=inst, kind=kind, file_name=f"bench/{kind}{tag}.csv", file_sha256="0" * 64,
                status="loaded", strict=False, rows_total=n, rows_loaded=n, rows_rejected=0, report={"bench": True},
                received_at=now).returning(Submission.id)).scalar_one()

        f0, s0, d0 = next_id("firm"), next_id("financial_statement"), next_id("default_event")
        firm_ids = np.arange(f0, f0 + len(firm_codes))
        copy_frame(conn, "firm", pd.DataFrame({
            "id": firm_ids,
            "pseudonym": [hashlib.sha256((tag + c).encode()).hexdigest() for c in firm_codes],
            "country": "JP",
            "industry": raw["industry"].astype(str).to_numpy()[first],
            "established_year": pd.to_datetime(raw["established"].to_numpy()[first], errors="coerce").year
            .astype("Int64"),
            "created_at": now,
        }))
        # the fact tables accept rows only of firms their institution has linked (creditdb.integrity)
        copy_frame(conn, "borrower_link", pd.DataFrame({
            "institution_id": inst, "borrower_hash": [hashlib.sha256((tag + "link" + c).encode()).hexdigest()
                                                      for c in firm_codes], "firm_id": firm_ids}))
        sub_st = submission("statements", len(raw))
        st = pd.DataFrame({
            "id": np.arange(s0, s0 + len(raw)), "firm_id": firm_ids[firm_idx], "institution_id": inst,
            "submission_id": sub_st, "fiscal_year_end": raw["fiscal_year_end"].astype(str).to_numpy(),
            "months": pd.to_numeric(raw["months"]).fillna(12).astype("int64").to_numpy(), "currency": "JPY",
            "employees": pd.to_numeric(raw["employees"]).astype("Int64").to_numpy(),
        })
        for c in AMOUNT_COLUMNS:
            st[c] = pd.to_numeric(raw[c]).astype("float64").to_numpy()
        copy_frame(conn, "financial_statement", st)
        dfl = data.defaults["BK1"]
        fid = pd.Series(firm_ids, index=firm_codes)
        dfl = dfl.loc[dfl["borrower_key"].astype(str).isin(fid.index)]
        sub_d = submission("defaults", len(dfl))
        copy_frame(conn, "default_event", pd.DataFrame({
            "id": np.arange(d0, d0 + len(dfl)), "firm_id": fid.loc[dfl["borrower_key"].astype(str)].to_numpy(),
            "institution_id": inst, "submission_id": sub_d, "default_date": dfl["default_date"].astype(str).to_numpy(),
            "event_type": dfl["event_type"].astype(str).to_numpy(), "exposure": dfl["exposure"].astype("float64")}))
        for table in ("firm", "financial_statement", "default_event"):
            conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                 f"(SELECT max(id) FROM {table}))")
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return {"generate_s": round(gen_s, 2), "load_s": round(time.perf_counter() - t, 2), "statements": len(raw),
            "firms": len(firm_codes), "default_events": len(dfl),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def child_load(url: str, args: list[str]) -> dict:
    """Run :func:`load` in a fresh process (its memory is not counted in our peak RSS)."""
    child = subprocess.run([sys.executable, __file__, *args, "--load-only", url], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    if child.returncode != 0:
        sys.exit(f"loading the synthetic data failed:\n{child.stderr}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def rate(url: str, score_firms_total: int, seed: int) -> dict:
    """Time feature build, training (+ registration); top up the firms; time scoring every firm."""
    from sqlalchemy import func, select

    from creditdb import audit, registry
    from creditdb.db import make_engine
    from creditdb.schema import Firm, Score
    from models.rating import load_spec
    from pipelines.features import load_defaults, load_statements, training_table
    from pipelines.scoring import score_firms
    from pipelines.training import Design, fit, record

    engine = make_engine(url)
    out: dict = {}
    spec = load_spec()

    def cpu() -> float:
        """CPU seconds used by this process so far (all threads; PostgreSQL's own work not included)."""
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    c0 = cpu()
    t0 = time.perf_counter()
    with engine.connect() as conn:
        statements = load_statements(conn)
        defaults = load_defaults(conn)
    t1 = time.perf_counter()
    table = training_table(statements, defaults, CUTOFF)
    t2 = time.perf_counter()
    out["features"] = {"read_s": round(t1 - t0, 2), "training_table_s": round(t2 - t1, 2),
                       "total_s": round(t2 - t0, 2), "statements_in_force": len(statements),
                       "labelled_rows": len(table), "defaults_in_table": int(table["label"].sum())}
    del defaults
    t3 = time.perf_counter()
    tm = fit(table, spec, Design(cutoff=CUTOFF))
    t_fit = time.perf_counter()
    from pipelines.unreported_report import record_removal_effects

    record_removal_effects(tm, statements)  # as creditdb model train: what each optional item costs
    del statements
    t4 = time.perf_counter()
    rec = record(tm, "bench")
    with engine.begin() as conn:
        _, created = registry.register(conn, rec)
        audit.append(conn, "bench", "model.train", {"version": rec["version"], "created": created},
                     input_hash=tm.fingerprint, output_hash=rec["artifact_sha256"])
    t5 = time.perf_counter()
    m = tm.metrics
    out["training"] = {"fit_s": round(t_fit - t3, 2), "removal_effects_s": round(t4 - t_fit, 2),
                       "register_s": round(t5 - t4, 2), "total_s": round(t5 - t3, 2),
                       "best_iteration": m["best_iteration"],
                       "rows": {k: v["n"] for k, v in m["samples"].items()},
                       "auc_oot_model": m["auc"]["model"].get("oot"),
                       "auc_oot_challenger": m["auc"]["challenger"].get("oot")}
    out["build_plus_train_s"] = round(t5 - t0, 2)
    out["build_plus_train_cpu_s"] = round(cpu() - c0, 1)
    print(f"features {out['features']['total_s']} s, training {out['training']['total_s']} s", file=sys.stderr)
    version = rec["version"]
    del tm, table
    with engine.connect() as conn:
        have = conn.execute(select(func.count()).select_from(Firm)).scalar_one()
    out["load_scoring_firms_untimed"] = None
    if score_firms_total > have:  # more firms for the scoring phase: two recent fiscal years each
        out["load_scoring_firms_untimed"] = child_load(url, ["--firms", str(score_firms_total - have), "--years", "2",
                                                             "--start-year", "2021", "--seed", str(seed + 1),
                                                             "--tag", "score-"])
    c6 = cpu()
    t6 = time.perf_counter()
    res = score_firms(engine, version, AS_OF, actor="bench", progress=False)
    t7 = time.perf_counter()
    c7 = cpu()
    with engine.connect() as conn:
        n_scores = conn.execute(select(func.count()).select_from(Score)).scalar_one()
    out["scoring"] = {"total_s": round(t7 - t6, 2), "cpu_s": round(c7 - c6, 1), "firms": res["firms"],
                      "score_rows": n_scores,
                      "in_default": res["in_default"], "mean_pd": round(res["mean_pd"], 5),
                      "firms_per_s": round(res["firms"] / (t7 - t6))}
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--statements", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                    help="server for the fresh database when CREDITDB_URL is not set")
    ap.add_argument("--score-firms", type=int, default=1_000_000,
                    help="firms in the database when scoring (topped up after training with firms of two recent "
                         "fiscal years; default 1,000,000)")
    ap.add_argument("--load-only", metavar="URL", help=argparse.SUPPRESS)  # child process
    ap.add_argument("--firms", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--years", type=int, default=8, help=argparse.SUPPRESS)
    ap.add_argument("--start-year", type=int, default=2015, help=argparse.SUPPRESS)
    ap.add_argument("--tag", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.load_only:
        print(json.dumps(load(args.load_only, args.statements, args.seed, args.firms, args.years, args.start_year,
                              args.tag)))
        return

    from contextlib import nullcontext

    from benchmarks.scratch import scratch_database
    from creditdb.db import make_engine, upgrade

    given = os.environ.get("CREDITDB_URL")
    with nullcontext(given) if given else scratch_database(args.pg) as url:
        eng = make_engine(url)
        upgrade(eng)
        eng.dispose()
        loaded = child_load(url, ["--statements", str(args.statements), "--seed", str(args.seed)])
        load1 = os.getloadavg()
        timings = rate(url, args.score_firms, args.seed)
        load2 = os.getloadavg()
    import lightgbm

    print(json.dumps({
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "lightgbm": lightgbm.__version__,
                    "loadavg_before": [round(x, 2) for x in load1], "loadavg_after": [round(x, 2) for x in load2]},
        "cutoff": CUTOFF.isoformat(), "as_of": AS_OF.isoformat(), "seed": args.seed,
        "load_untimed": loaded, **timings,
        "targets": {"build_plus_train_s": 120, "scoring_s": 30},
        "met": {"build_plus_train": timings["build_plus_train_s"] <= 120,
                "scoring": timings["scoring"]["total_s"] <= 30},
    }, indent=2))


if __name__ == "__main__":
    main()
