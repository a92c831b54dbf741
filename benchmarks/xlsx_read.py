"""Time reading and validating an .xlsx of N statements x 30 columns (issue 12); print JSON.

Writes the workbook with openpyxl (not timed), then times ``inspect_file`` (python-calamine
reads the sheet), and ``iter_chunks`` + ``coerce`` + the Great Expectations suite over
every chunk, as ``creditdb submit`` does before writing. The same rows as a UTF-8 CSV are
timed in the same run, for the ratio.

Usage: PYTHONPATH=. python benchmarks/xlsx_read.py [--n 100000]
Target: 100,000 rows x 30 columns read and validated in <= 15 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.validation import _machine  # noqa: E402


def _frame(n: int):
    import numpy as np

    from tests import factories as F

    base = F.statements(min(n, 1000))
    reps = -(-n // len(base))
    frame = base.loc[np.tile(base.index, reps)[:n]].reset_index(drop=True)
    frame["borrower_key"] = [f"BK1-B{i:07d}" for i in range(n)]
    frame["corporate_number"] = [f"{9000000000000 + i:013d}" for i in range(n)]
    return frame


def _read_and_validate(path: Path) -> tuple[float, float, int]:
    from pipelines import dictionary as D
    from pipelines.readers import inspect_file, iter_chunks
    from pipelines.validate import coerce, get_validator

    validator = get_validator("statements")
    t0 = time.perf_counter()
    info = inspect_file(path, None, D.names("statements"))
    t_inspect = time.perf_counter() - t0
    rows = 0
    for raw in iter_chunks(info, D.names("statements")):
        typed, issues = coerce("statements", raw, info.formats)
        validator.validate(raw, typed)
        rows += len(raw)
    return t_inspect, time.perf_counter() - t0, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    args = ap.parse_args()
    import openpyxl

    frame = _frame(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        xlsx, csv = Path(tmp) / "s.xlsx", Path(tmp) / "s.csv"
        wb = openpyxl.Workbook(write_only=True)
        ws = wb.create_sheet("Export")
        ws.append(list(frame.columns))
        for row in frame.itertuples(index=False):
            ws.append(list(row))
        wb.save(xlsx)
        frame.to_csv(csv, index=False)
        from pipelines.validate import get_validator

        get_validator("statements")  # build the suite outside the timings
        x_inspect, x_total, x_rows = _read_and_validate(xlsx)
        c_inspect, c_total, c_rows = _read_and_validate(csv)
    print(json.dumps({
        "benchmark": "xlsx_read", "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": _machine(),
        "rows": x_rows, "columns": len(frame.columns),
        "xlsx": {"inspect_s": round(x_inspect, 3), "read_and_validate_s": round(x_total, 3)},
        "csv": {"inspect_s": round(c_inspect, 3), "read_and_validate_s": round(c_total, 3), "rows": c_rows},
        "xlsx_over_csv": round(x_total / c_total, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
