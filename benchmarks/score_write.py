"""Writing score rows: creditdb's checked write against COPY with per-row foreign keys, one run.

Why ``score`` has no per-row foreign keys (migration 0003). On a fresh PostgreSQL
database holding N statements (loaded untimed, as ``benchmarks/rating.py`` does), one
score row per statement (PD, grade, fee category, three reasons as JSON) is written
three ways, each in its own transaction that is rolled back, in one run so the ratios
hold on a noisy machine:

* ``copy_no_fk``   - plain COPY into ``score`` as it is (no foreign keys, two indexes);
* ``creditdb``     - ``pipelines.score_store.write_scores``: the same COPY plus the
                     set-wise reference check (temporary table + one anti-join);
* ``copy_with_fk`` - plain COPY into ``score`` after adding back the three foreign keys
                     the table had before migration 0003 (model version, firm, statement).

Usage: python benchmarks/score_write.py [--statements 1000000] [--pg URL]   (prints JSON)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# benchmarks/statistics.py must not shadow the standard library's statistics module
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

FOREIGN_KEYS = ("ALTER TABLE score ADD CONSTRAINT fk_score_firm_id_firm FOREIGN KEY (firm_id) REFERENCES firm(id)",
                "ALTER TABLE score ADD CONSTRAINT fk_score_model_version_id_model_version "
                "FOREIGN KEY (model_version_id) REFERENCES model_version(id)",
                "ALTER TABLE score ADD CONSTRAINT fk_score_statement_id_financial_statement "
                "FOREIGN KEY (statement_id) REFERENCES financial_statement(id)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--statements", type=int, default=1_000_000)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()

    import pandas as pd
    from sqlalchemy import insert, text

    from benchmarks.scratch import scratch_database
    from creditdb.bulk import copy_frame
    from creditdb.db import make_engine, upgrade
    from creditdb.schema import ModelVersion
    from pipelines.score_store import COLUMNS, write_scores

    with scratch_database(args.pg) as url:
        engine = make_engine(url)
        upgrade(engine)
        child = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "rating.py"), "--statements",
                                str(args.statements), "--load-only", url], capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
        if child.returncode != 0:
            sys.exit(f"loading failed:\n{child.stderr}")
        with engine.begin() as conn:
            mv = conn.execute(insert(ModelVersion).values(
                version="bench", created_by="bench", status="approved", artifact="x", artifact_sha256="0" * 64,
                spec={}, data_fingerprint="0" * 64, code_version="bench", seed=0, metrics={})
                .returning(ModelVersion.id)).scalar_one()
            refs = pd.DataFrame(conn.execute(text("SELECT id, firm_id FROM financial_statement")).all(),
                                columns=["statement_id", "firm_id"])
        reasons = ('[{"feature": "interest_coverage", "text": "Low interest coverage (2.6\u00d7)", "contribution": '
                   '0.416955}, {"feature": "gross_margin", "text": "Gross margin (6.4%)", "contribution": 0.13472}, '
                   '{"feature": "industry", "text": "Industry (F)", "contribution": 0.143019}]')
        frame = refs.assign(model_version_id=mv, pd=0.0123, grade="5", fee_category=4, reasons=reasons,
                            scored_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))[COLUMNS]

        def timed(setup: tuple[str, ...], write) -> float:
            with engine.connect() as conn:
                tx = conn.begin()
                for sql in setup:
                    conn.execute(text(sql))
                t = time.perf_counter()
                write(conn)
                elapsed = time.perf_counter() - t
                tx.rollback()
            return round(elapsed, 2)

        load1 = os.getloadavg()
        seconds = {
            "copy_no_fk": timed((), lambda c: copy_frame(c, "score", frame)),
            "creditdb": timed((), lambda c: write_scores(c, frame)),
            "copy_with_fk": timed(FOREIGN_KEYS, lambda c: copy_frame(c, "score", frame)),
        }
        load2 = os.getloadavg()
        engine.dispose()
    print(json.dumps({
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_before": [round(x, 2) for x in load1], "loadavg_after": [round(x, 2) for x in load2]},
        "rows": len(frame), "seconds": seconds,
        "ratio_with_fk_to_creditdb": round(seconds["copy_with_fk"] / seconds["creditdb"], 2),
        "ratio_creditdb_to_copy_no_fk": round(seconds["creditdb"] / seconds["copy_no_fk"], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
