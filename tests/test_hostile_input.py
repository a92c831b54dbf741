"""Hostile input, property-based: arbitrary bytes and arbitrary tables fed to every reader,
the validator and ``creditdb submit``.

Properties:

* readers (``inspect_file``, ``iter_chunks``) raise nothing but ``FileRejected``;
* the validator (``coerce``, ``check_columns``, ``validate``) raises nothing and reports
  findings on rows of the file only;
* ``creditdb submit`` exits 0 or 1 only (never a traceback), always prints its JSON
  result, and: a rejected or duplicate file (and any exit 1 under ``--strict``) leaves
  every table byte-for-byte unchanged; a loaded or partial file stores exactly the rows
  it accepted (the rows not named by a row finding), with the submitted values.

The database fixture is per test, not per example, so each example compares table
fingerprints taken just before and just after its own submission.
"""

from __future__ import annotations

import itertools
import json
import math
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from creditdb.cli import cli
from creditdb.schema import DefaultEvent, FinancialStatement, Loan
from pipelines import dictionary as D
from pipelines.readers import FileRejected, inspect_file, iter_chunks
from pipelines.validate import SEVERITIES, coerce, get_validator
from tests import factories as F

_counter = itertools.count()
_SLOW_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
            HealthCheck.large_base_example]

#: values an attacker or a broken export would put in a cell
NASTY = [
    "", " ", "   ", "=1+2", "+SUM(A1:A9)", "-2+3", "@cmd", "\t=x", "\r=x", "=HYPERLINK(\"http://x\")",
    "'; DROP TABLE firm; --", "\" OR 1=1 --", "\\", "\\.", "%", "%s%d", "$$", "$1", "NULL", "null", "None",
    "NaN", "nan", "inf", "-inf", "Infinity", "1e308", "1e309", "-1e309", "9" * 400, "0x1F", "1,000", "1_000",
    "١٢٣", "１２３", "日本語", "\u202e\u0644", "\U0001f4a9", "\ufeff", "2021-02-30", "0001-01-01", "9999-12-31",
    "2021-03-31T00:00:00", "true", "FALSE", "yes", "2", "-0", "0.0000001", "a\nb", "\"", ",", "\x7f", "\x00", "a\x00b",
]
TEXT = st.one_of(st.sampled_from(NASTY), st.text(st.characters(blacklist_categories=("Cs",)), max_size=12))
VALUE = st.one_of(
    TEXT,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
JUNK_COLUMNS = ["junk", "", " sales", "SALES", "Unnamed: 0", "=cmd", "'; DROP TABLE firm; --", "日本"]


def _base(kind: str, n: int, start: int) -> pd.DataFrame:
    s = F.statements(max(n, 1), start=start)
    frame = {"statements": s, "loans": F.loans(s), "defaults": F.defaults(s)}[kind]
    return frame.iloc[:n]


@st.composite
def tables(draw, kind: str | None = None) -> tuple[str, pd.DataFrame]:
    """A submission-like table: valid base rows, random columns dropped/added, hostile cells."""
    kind = kind or draw(st.sampled_from(D.KINDS))
    n = draw(st.integers(0, 6))
    frame = _base(kind, n, start=draw(st.integers(0, 50))).astype(object)
    cols = list(frame.columns)
    keep = draw(st.lists(st.sampled_from(cols), unique=True, min_size=0, max_size=len(cols)))
    if draw(st.booleans()):  # mostly keep every column, so that some rows get through
        keep = cols
    frame = frame[[c for c in cols if c in keep]]
    for junk in draw(st.lists(st.sampled_from(JUNK_COLUMNS), unique=True, max_size=2)):
        if junk not in frame.columns:
            frame[junk] = pd.Series(draw(st.lists(VALUE, min_size=len(frame), max_size=len(frame))),
                                    index=frame.index, dtype=object)
    frame = frame.astype(object)
    if len(frame) and len(frame.columns):
        for _ in range(draw(st.integers(0, 6))):
            r = draw(st.integers(0, len(frame) - 1))
            c = draw(st.sampled_from(list(frame.columns)))
            frame.iat[r, frame.columns.get_loc(c)] = draw(VALUE)
    if len(frame) and draw(st.booleans()):  # a whole column of the wrong type
        c = draw(st.sampled_from(list(frame.columns) or ["x"]))
        frame[c] = pd.Series(draw(st.lists(VALUE, min_size=len(frame), max_size=len(frame))),
                             index=frame.index, dtype=object)
    return kind, frame.reset_index(drop=True)


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Parquet with typed columns where the values allow it, text otherwise."""
    out = {}
    for c in frame.columns:
        col = frame[c]
        try:
            out[c] = pd.Series(pd.array(col.tolist()), dtype=None) if len(col) else col.astype("string")
            import pyarrow as pa

            pa.array(out[c])
        except Exception:  # noqa: BLE001 - mixed types: store as text
            out[c] = col.map(lambda v: None if v is None else str(v)).astype("string")
    pd.DataFrame(out, index=frame.index).to_parquet(path, index=False)


def _write(frame: pd.DataFrame, path: Path, fmt: str) -> Path:
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        _write_parquet(frame, path)
    return path


def _read_all(path: Path, kind: str | None = None):
    """The file's rows as ``creditdb submit`` reads them (headers matched to ``kind``'s
    dictionary when given), and the number and date formats it settled on."""
    info = inspect_file(path, None, D.names(kind) if kind else None)
    parts = list(iter_chunks(info))
    return (pd.concat(parts) if parts else pd.DataFrame()), info.formats


# --- readers ------------------------------------------------------------------------------


def _only_file_rejected(path: Path) -> None:
    try:
        info = inspect_file(path)
        for chunk in iter_chunks(info, chunk_rows=7):
            assert isinstance(chunk, pd.DataFrame)
            assert chunk.index.is_monotonic_increasing
    except FileRejected as exc:
        assert str(path) in str(exc)
        d = exc.as_dict()
        assert d["severity"] == "blocking" and d["message"]


@settings(max_examples=60, deadline=None, suppress_health_check=_SLOW_OK)
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".csv", ".parquet"]))
def test_readers_arbitrary_bytes_only_file_rejected(tmp_path, data, suffix):
    path = tmp_path / f"f{next(_counter)}{suffix}"
    path.write_bytes(data)
    _only_file_rejected(path)


@settings(max_examples=60, deadline=None, suppress_health_check=_SLOW_OK)
@given(header=st.sampled_from([b"borrower_key,sales\n", b"a,a\n", b"\xef\xbb\xbfx,y\n", b"\n", b",\n", b'"a,b\n']),
       body=st.binary(max_size=400))
def test_csv_reader_header_then_garbage_only_file_rejected(tmp_path, header, body):
    path = tmp_path / f"g{next(_counter)}.csv"
    path.write_bytes(header + body)
    _only_file_rejected(path)


@pytest.fixture(scope="module")
def valid_parquet(tmp_path_factory) -> bytes:
    p = tmp_path_factory.mktemp("pq") / "s.parquet"
    F.statements(30).to_parquet(p)
    return p.read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=_SLOW_OK)
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.floats(0, 1)))
def test_parquet_reader_corrupted_file_only_file_rejected(tmp_path, valid_parquet, flips, cut):
    data = bytearray(valid_parquet)
    for where, byte in flips:
        data[int(where * len(data))] = byte
    if cut is not None:
        data = data[: int(cut * len(data))]
    path = tmp_path / f"c{next(_counter)}.parquet"
    path.write_bytes(bytes(data))
    _only_file_rejected(path)


@settings(max_examples=40, deadline=None, suppress_health_check=_SLOW_OK)
@given(table=tables(), fmt=st.sampled_from(["csv", "parquet"]))
def test_readers_arbitrary_tables_only_file_rejected(tmp_path, table, fmt):
    _, frame = table
    path = _write(frame, tmp_path / f"t{next(_counter)}.{fmt}", fmt)
    _only_file_rejected(path)


# --- validator ----------------------------------------------------------------------------


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=_SLOW_OK)
@given(table=tables(), fmt=st.sampled_from(["csv", "parquet"]))
def test_validator_arbitrary_tables_reports_never_raises(tmp_path, table, fmt):
    kind, frame = table
    path = _write(frame, tmp_path / f"v{next(_counter)}.{fmt}", fmt)
    try:
        raw, _ = _read_all(path)
    except FileRejected:
        return
    validator = get_validator(kind)
    blocking = validator.check_columns(raw, str(path))
    for b in blocking:
        assert b["severity"] == "blocking" and b["message"]
    if blocking or raw.empty:
        return
    typed, issues = coerce(kind, raw)
    assert list(typed.index) == list(raw.index)
    for c in D.of_type(kind, "amount", "rate", "int"):
        assert not np.isinf(typed[c].to_numpy(dtype="float64", na_value=np.nan)).any()
    issues += validator.validate(raw, typed)
    for i in issues:
        assert i.row in raw.index and i.severity in ("row", "warning") and i.rule and i.message
        assert i.severity in SEVERITIES


# --- creditdb submit ----------------------------------------------------------------------


def _invoke(args: list[str]):
    result = CliRunner().invoke(cli, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError("".join(traceback.format_exception(result.exception)) + result.output)
    assert result.exit_code in (0, 1), result.output
    return result


def _setup_bank(db, tmp_path) -> None:
    _invoke(["institution", "add", "BK1", "--name", "B", "--kind", "bank", "--country", "JP"])
    base = F.write_csv(F.statements(8), tmp_path / "base.csv")
    assert _invoke(["submit", "statements", str(base), "-i", "BK1"]).exit_code == 0


_STORED = {
    "statements": (FinancialStatement, ["fiscal_year_end", "sales", "net_income", "total_assets"]),
    "loans": (Loan, ["origination_date", "amount", "interest_rate", "outstanding"]),
    "defaults": (DefaultEvent, ["default_date", "event_type", "exposure"]),
}


def _norm(v):
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.date().isoformat()
    if hasattr(v, "isoformat"):
        return v.isoformat()[:10]
    if isinstance(v, (float, np.floating)):
        return float(v)
    return str(v)


def _check_submission(db, kind: str, path: Path, strict: bool) -> None:
    before = F.table_fingerprint(db.engine)
    args = ["submit", kind, str(path), "-i", "BK1", "--json"] + (["--strict"] if strict else [])
    result = _invoke(args)
    out = json.loads(result.stdout)
    after = F.table_fingerprint(db.engine)
    status = out["status"]
    assert (result.exit_code == 0) == (status == "loaded"), out
    if status in ("rejected", "duplicate") or (strict and result.exit_code == 1):
        assert status != "partial"
        assert after == before, f"{status} submission changed the database"
        return
    assert status in ("loaded", "partial")
    rejected = {i["row"] for i in out["issues"] if i["severity"] == "row"}
    assert out["rows_rejected"] == len(rejected) and out["rows_loaded"] == out["rows_total"] - len(rejected)
    raw, formats = _read_all(path, kind)
    typed, _ = coerce(kind, raw, formats)
    accepted = typed.loc[~typed.index.isin(list(rejected))]
    model, cols = _STORED[kind]
    with db.engine.connect() as conn:
        rows = conn.execute(select(*[model.__table__.c[c] for c in cols])
                            .where(model.__table__.c.submission_id == out["submission_id"])).all()
    stored = sorted(tuple(_norm(v) for v in r) for r in rows)
    expected = sorted(tuple(_norm(v) for v in r) for r in accepted[cols].itertuples(index=False))
    assert stored == expected
    assert after["submission"][0] == before["submission"][0] + 1
    assert after["audit_event"][0] == before["audit_event"][0] + 1


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=_SLOW_OK)
@given(data=st.binary(max_size=600), suffix=st.sampled_from([".csv", ".parquet"]),
       kind=st.sampled_from(D.KINDS))
def test_submit_arbitrary_bytes_rejected_and_database_unchanged(db, tmp_path, data, suffix, kind):
    if not (tmp_path / "base.csv").exists():
        _setup_bank(db, tmp_path)
    path = tmp_path / f"b{next(_counter)}{suffix}"
    path.write_bytes(data)
    _check_submission(db, kind, path, strict=False)


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=_SLOW_OK)
@given(table=tables(), fmt=st.sampled_from(["csv", "parquet"]), strict=st.booleans())
def test_submit_arbitrary_tables_all_or_exactly_accepted_rows(db, tmp_path, table, fmt, strict):
    if not (tmp_path / "base.csv").exists():
        _setup_bank(db, tmp_path)
    kind, frame = table
    path = _write(frame, tmp_path / f"s{next(_counter)}.{fmt}", fmt)
    _check_submission(db, kind, path, strict=strict)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_nul_in_text_rejects_file_and_database_unchanged(db, tmp_path, fmt):
    """Regression: a NUL in a postal code reached PostgreSQL's COPY and crashed the submit."""
    _invoke(["institution", "add", "BK1", "--name", "B", "--kind", "bank", "--country", "JP"])
    s = F.statements(3)
    s.loc[1, "postal_code"] = "1\x0000"
    path = _write(s, tmp_path / f"nul.{fmt}", fmt)
    before = F.table_fingerprint(db.engine)
    result = _invoke(["submit", "statements", str(path), "-i", "BK1"])
    assert result.exit_code == 1
    row = 3 if fmt == "csv" else 2  # CSV: header is row 1; Parquet: n-th record is row n
    assert "NUL" in result.output and f"row {row}" in result.output
    if fmt == "parquet":
        assert "column 'postal_code'" in result.output
    assert F.table_fingerprint(db.engine) == before


# --- the other readers: guarantee price / issue files, model feature tables -----------------


@st.composite
def loan_tables(draw) -> pd.DataFrame:
    """A guarantee-price loans table: valid base, hostile cells, random columns dropped/added."""
    n = draw(st.integers(0, 5))
    frame = pd.DataFrame({"loan_id": [f"L{i}" for i in range(n)], "pd": 0.02, "amount": 1e7, "tenor_years": 5,
                          "coverage": 0.8, "amortization": "annuity", "secured": "false"}).astype(object)
    drop = draw(st.lists(st.sampled_from(list(frame.columns)), unique=True, max_size=2))
    frame = frame.drop(columns=drop if draw(st.booleans()) else [])
    for junk in draw(st.lists(st.sampled_from(JUNK_COLUMNS), unique=True, max_size=2)):
        frame[junk] = pd.Series(draw(st.lists(VALUE, min_size=n, max_size=n)), index=frame.index, dtype=object)
    if n and len(frame.columns):
        for _ in range(draw(st.integers(0, 4))):
            frame.iat[draw(st.integers(0, n - 1)), draw(st.integers(0, len(frame.columns) - 1))] = draw(VALUE)
    return frame


def _check_guarantee_price(path: Path, rows: int | None) -> None:
    from tests.test_csv_exports import assert_safe

    out = path.with_name(path.stem + "_priced.csv")
    result = _invoke(["guarantee", "price", str(path), "--out", str(out)])
    assert out.exists() == (result.exit_code == 0), "a rejected file must write nothing"
    if result.exit_code == 0:
        if rows is not None:
            assert len(pd.read_csv(out)) == rows
        assert_safe(out)


@settings(max_examples=30, deadline=None, suppress_health_check=_SLOW_OK)
@given(data=st.binary(max_size=600), suffix=st.sampled_from([".csv", ".parquet"]))
def test_guarantee_price_arbitrary_bytes(tmp_path, data, suffix):
    path = tmp_path / f"gb{next(_counter)}{suffix}"
    path.write_bytes(data)
    _check_guarantee_price(path, None)


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=_SLOW_OK)
@given(frame=loan_tables(), fmt=st.sampled_from(["csv", "parquet"]))
def test_guarantee_price_arbitrary_tables(tmp_path, frame, fmt):
    path = _write(frame, tmp_path / f"gt{next(_counter)}.{fmt}", fmt)
    _check_guarantee_price(path, len(frame))


@settings(max_examples=20, deadline=None, suppress_health_check=_SLOW_OK)
@given(data=st.one_of(st.binary(max_size=400),
                      st.builds(lambda b: b"@relation x\n@attribute a numeric\n@attribute class {0,1}\n@data\n" + b,
                                st.binary(max_size=200))),
       suffix=st.sampled_from([".csv", ".parquet", ".arff"]))
def test_model_evaluate_arbitrary_feature_file(tmp_path, data, suffix):
    path = tmp_path / f"m{next(_counter)}{suffix}"
    path.write_bytes(data)
    _invoke(["model", "evaluate", "--features", str(path), "--label", "class", "--cv", "2", "--json"])


@settings(max_examples=15, deadline=None, suppress_health_check=_SLOW_OK)
@given(data=st.one_of(st.binary(max_size=400),
                      st.builds(lambda b: b"bank,loan_key,coverage\n" + b, st.binary(max_size=200))))
def test_guarantee_issue_arbitrary_request_file(sqlite_db, tmp_path, data):
    if not (tmp_path / "ready").exists():
        _invoke(["institution", "add", "CGC1", "--name", "G", "--kind", "guarantee_corporation", "--country", "JP"])
        (tmp_path / "ready").touch()
    path = tmp_path / f"r{next(_counter)}.csv"
    path.write_bytes(data)
    before = F.table_fingerprint(sqlite_db.engine)
    result = _invoke(["guarantee", "issue", "--institution", "CGC1", "--file", str(path)])
    assert result.exit_code == 1  # no loan is stored, so nothing can be issued
    assert F.table_fingerprint(sqlite_db.engine) == before


# --- Parquet columns of every Arrow type in every dictionary column -----------------------


def _arrow_columns(n: int) -> dict:
    import datetime as dt
    import decimal

    import pyarrow as pa

    return {
        "timestamp": pa.array([dt.datetime(2021, 3, 31)] * n, pa.timestamp("us")),
        "timestamp_tz": pa.array([dt.datetime(2021, 3, 30, 15)] * n, pa.timestamp("us", tz="UTC")),
        "timestamp_far": pa.array([dt.datetime(2500, 1, 1)] * n, pa.timestamp("s")),
        "date32": pa.array([dt.date(2021, 3, 31)] * n, pa.date32()),
        "time": pa.array([dt.time(1, 2)] * n, pa.time64("us")),
        "duration": pa.array(range(n), pa.duration("s")),
        "decimal": pa.array([decimal.Decimal("1.5")] * n, pa.decimal128(10, 2)),
        "list": pa.array([[1]] * n, pa.list_(pa.int64())),
        "struct": pa.array([{"a": 1}] * n, pa.struct([("a", pa.int64())])),
        "binary_utf8": pa.array([b"100-0001"] * n, pa.binary()),
        "binary_junk": pa.array([b"\x00\xff"] * n, pa.binary()),
        "uint64_max": pa.array([2**64 - 1] * n, pa.uint64()),
        "dictionary": pa.array(["A"] * n).dictionary_encode(),
        "all_null": pa.nulls(n),
        "bool": pa.array([True] * n),
        "float_nan_inf": pa.array([float("nan"), float("inf"), -float("inf")][:n] + [1e308] * max(0, n - 3)),
        "map": pa.array([[("a", 1)]] * n, pa.map_(pa.string(), pa.int64())),
    }


@pytest.mark.slow
@pytest.mark.parametrize("kind", D.KINDS)
def test_parquet_any_arrow_type_in_any_column(tmp_path, kind):
    """Readers and validator on every (dictionary column, Arrow type): typed or FileRejected, no crash."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = pa.Table.from_pandas(_base(kind, 3, 0), preserve_index=False)
    validator = get_validator(kind)

    def check(table: pa.Table, name: str, full: bool) -> None:
        path = tmp_path / f"{name}.parquet"
        pq.write_table(table, path)
        try:
            raw, _ = _read_all(path)
        except FileRejected:
            return
        try:
            typed, issues = coerce(kind, raw)
            if full:  # Great Expectations costs ~0.2 s a run: once per type, not per column
                validator.check_columns(raw, str(path))
                issues += validator.validate(raw, typed)
        except Exception as exc:  # noqa: BLE001 - report which combination broke
            raise AssertionError(f"{kind}: {name}: {exc!r}") from exc

    # one column of each dictionary type (amount, int, date, code, key, text, ...) suffices
    representative = list({c.type: c.name for c in reversed(D.COLUMNS[kind])}.values())
    for type_name, array in _arrow_columns(3).items():
        for column in representative:  # one column of that type
            check(base.set_column(base.schema.get_field_index(column), column, array), f"{column}-{type_name}", False)
        every = pa.table({c: array for c in base.schema.names})  # every column of that type
        check(every, f"all-{type_name}", True)


def test_parquet_zoned_timestamps_and_binary_text(db, tmp_path):
    """Regression: a zoned timestamp date and a binary postal code crashed the submit (TypeError,
    UnicodeDecodeError); now the date is read as its wall-clock day and bytes as UTF-8 text."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    _invoke(["institution", "add", "BK1", "--name", "B", "--kind", "bank", "--country", "JP"])
    table = pa.Table.from_pandas(F.statements(2), preserve_index=False)
    tokyo = pa.array([dt.datetime(2021, 3, 31, 0, 30)] * 2, pa.timestamp("us", tz="Asia/Tokyo"))
    table = table.set_column(table.schema.get_field_index("fiscal_year_end"), "fiscal_year_end", tokyo)
    table = table.set_column(table.schema.get_field_index("postal_code"), "postal_code",
                             pa.array([b"150-0001", b"151-0001"], pa.binary()))
    good = tmp_path / "zoned.parquet"
    pq.write_table(table, good)
    out = json.loads(_invoke(["submit", "statements", str(good), "-i", "BK1", "--json"]).stdout)
    assert out["status"] == "loaded", out
    with db.engine.connect() as conn:
        years = conn.execute(select(FinancialStatement.fiscal_year_end)).scalars().all()
    assert [str(y)[:10] for y in years] == ["2021-03-31", "2021-03-31"]  # not 2021-03-30 (UTC)

    bad = tmp_path / "junk.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("postal_code"), "postal_code",
                                    pa.array([b"150", b"\xff\xfe"], pa.binary())), bad)
    before = F.table_fingerprint(db.engine)
    result = _invoke(["submit", "statements", str(bad), "-i", "BK1"])
    assert result.exit_code == 1 and "row 2, column 'postal_code'" in result.output and "UTF-8" in result.output
    assert F.table_fingerprint(db.engine) == before
