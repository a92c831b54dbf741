"""Reading submission files (CSV, Parquet) in bounded-memory chunks.

CSV values are read as text, so that a value such as ``12,5x`` is reported back
exactly as the bank wrote it; typing happens in ``pipelines.validate``. Row numbers
follow a spreadsheet's convention: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

CHUNK_ROWS = 100_000
_READ_BLOCK = 8 << 20


class FileRejected(Exception):
    """The whole file is rejected (blocking problem); nothing is stored."""

    def __init__(self, file: Path | str, message: str, row: int | None = None,
                 column: str | None = None, rule: str = "file.unreadable") -> None:
        self.file, self.row, self.column, self.rule = str(file), row, column, rule
        where = [f"file {self.file}"]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        self.message = message
        super().__init__(", ".join(where) + f": {message}")

    def as_dict(self) -> dict:
        return {"file": self.file, "row": self.row, "column": self.column, "rule": self.rule,
                "severity": "blocking", "message": self.message}


@dataclass
class FileInfo:
    path: Path
    format: str  # csv | parquet
    sha256: str
    size: int
    columns: list[str] = field(default_factory=list)
    rows: int | None = None


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".txt"):
        return "csv"
    raise FileRejected(path, f"unknown file type '{suffix}': use .csv or .parquet", rule="file.format")


def inspect_file(path: Path) -> FileInfo:
    """Hash the file and check it is non-empty and (for CSV) valid UTF-8, in one pass."""
    path = Path(path)
    if not path.exists():
        raise FileRejected(path, "no such file", rule="file.missing")
    fmt = file_format(path)
    digest = hashlib.sha256()
    size = 0
    line = 1
    tail = b""
    decoder_ok = True
    with path.open("rb") as fh:
        while block := fh.read(_READ_BLOCK):
            digest.update(block)
            size += len(block)
            if fmt == "csv" and decoder_ok:
                data = tail + block
                # keep an incomplete multi-byte sequence for the next block
                cut = len(data)
                for back in range(1, min(4, len(data)) + 1):
                    b = data[-back]
                    if b & 0xC0 == 0xC0:  # start of a multi-byte sequence
                        need = 2 if b & 0xE0 == 0xC0 else 3 if b & 0xF0 == 0xE0 else 4
                        if back < need:
                            cut = len(data) - back
                        break
                    if b & 0x80 == 0:
                        break
                nul = data.find(b"\x00")
                if nul >= 0:  # PostgreSQL cannot store NUL in text; no spreadsheet writes it
                    raise FileRejected(path, "contains a NUL byte (0x00): binary data, not a CSV text file",
                                       row=line + data[:nul].count(b"\n"), rule="file.encoding")
                try:
                    data[:cut].decode("utf-8")
                except UnicodeDecodeError as exc:
                    bad_line = line + data[: exc.start].count(b"\n")
                    line_start = data.rfind(b"\n", 0, exc.start) + 1
                    column_no = data[line_start: exc.start].count(b",") + 1
                    raise FileRejected(
                        path,
                        f"not valid UTF-8 (byte 0x{data[exc.start]:02x} in field {column_no} of that line); "
                        "save the file as UTF-8",
                        row=bad_line, rule="file.encoding",
                    ) from None
                line += data[:cut].count(b"\n")
                tail = data[cut:]
    if fmt == "csv" and tail:  # the file ends inside a multi-byte character
        raise FileRejected(path, f"not valid UTF-8 (the file ends in the middle of a character, byte 0x{tail[0]:02x}); "
                           "save the file as UTF-8", row=line, rule="file.encoding")
    if size == 0:
        raise FileRejected(path, "the file is empty", rule="file.empty")
    info = FileInfo(path=path, format=fmt, sha256=digest.hexdigest(), size=size)
    if fmt == "csv":
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            header = fh.readline().strip("\r\n")
        if not header.strip():
            raise FileRejected(path, "the first line (header) is empty", row=1, rule="file.header")
        info.columns = [c.strip().strip('"') for c in header.split(",")]
    else:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # truncated or not a Parquet file
            raise FileRejected(path, f"cannot read Parquet: {exc}", rule="file.parquet") from None
        info.columns = list(pf.schema_arrow.names)
        info.rows = pf.metadata.num_rows
    dupes = sorted({c for c in info.columns if info.columns.count(c) > 1})
    if dupes:
        raise FileRejected(path, f"column(s) {', '.join(dupes)} appear more than once in the header",
                           row=1, column=dupes[0], rule="file.header")
    return info


def iter_chunks(info: FileInfo, columns: list[str] | None = None,
                chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Yield DataFrames of at most ``chunk_rows`` rows, indexed by file row number.

    CSV columns come as text (missing = NA); Parquet columns keep their types. The
    index is the row number (CSV: header = row 1; Parquet: n-th record = row n).
    ``columns`` restricts the read to those present in the file.
    """
    wanted = [c for c in (columns or info.columns) if c in info.columns]
    if info.format == "csv":
        yield from _csv_chunks(info, wanted, chunk_rows)
    else:
        yield from _parquet_chunks(info, wanted, chunk_rows)


def _csv_chunks(info: FileInfo, wanted: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.csv as pacsv

    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in info.columns},
        include_columns=wanted,
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=True,
    )
    # the header as inspect_file read it (names stripped): pyarrow's own names could differ
    # (' sales') and the columns asked for would then be missing
    read = pacsv.ReadOptions(block_size=16 << 20, column_names=info.columns, skip_rows=1)
    first_row = 2
    try:
        reader = pacsv.open_csv(info.path, read_options=read, convert_options=convert,
                                parse_options=pacsv.ParseOptions(newlines_in_values=False))
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        for batch in reader:
            pending.append(batch)
            pending_rows += batch.num_rows
            while pending_rows >= chunk_rows:
                table = pa.Table.from_batches(pending)
                head, rest = table.slice(0, chunk_rows), table.slice(chunk_rows)
                yield _to_frame(head, first_row)
                first_row += head.num_rows
                pending, pending_rows = rest.to_batches(), rest.num_rows
        if pending_rows:
            yield _to_frame(pa.Table.from_batches(pending), first_row)
    except pa.ArrowException as exc:
        msg = str(exc)
        row = None
        if "Row #" in msg:
            try:
                row = int(msg.split("Row #")[1].split(":")[0].split(")")[0].strip())
            except ValueError:
                row = None
        raise FileRejected(info.path, f"malformed CSV: {msg}", row=row, rule="file.csv") from None


def _to_frame(table: pa.Table, first_row: int) -> pd.DataFrame:
    frame = table.to_pandas()
    frame.index = pd.RangeIndex(first_row, first_row + len(frame), name="row")
    return frame


def _parquet_chunks(info: FileInfo, wanted: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    first_row = 1  # Parquet has no header line: row n is the n-th record
    try:
        pf = pq.ParquetFile(info.path)
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=wanted):
            frame = _text_columns(info, batch, first_row).to_pandas()
            frame.index = pd.RangeIndex(first_row, first_row + len(frame), name="row")
            first_row += len(frame)
            yield frame
    except FileRejected:
        raise
    except Exception as exc:
        raise FileRejected(info.path, f"cannot read Parquet data: {exc}", row=first_row, rule="file.parquet") from None


def _text_columns(info: FileInfo, batch: pa.RecordBatch, first_row: int) -> pa.RecordBatch:
    """Binary columns as UTF-8 text, zoned timestamps as local wall-clock time; reject bytes
    that are not UTF-8 and text containing NUL.

    Raw bytes and zoned timestamps would otherwise fail later, when typed
    (UnicodeDecodeError, TypeError), and PostgreSQL text cannot hold NUL. The first
    offending row and column are named.
    """
    import pyarrow.compute as pc

    columns = []
    for name, col in zip(batch.schema.names, batch.columns, strict=False):
        if pa.types.is_dictionary(col.type) and (pa.types.is_string(col.type.value_type)
                                                 or pa.types.is_binary(col.type.value_type)):
            col = col.dictionary_decode()  # e.g. a pandas categorical
        if pa.types.is_timestamp(col.type) and col.type.tz is not None:
            col = pc.local_timestamp(col)  # the wall-clock date the file meant, without its zone
        if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
            try:
                col = col.cast(pa.string())
            except pa.ArrowInvalid:
                bad = next(i for i, v in enumerate(col.to_pylist()) if v is not None and not _is_utf8(v))
                raise FileRejected(info.path, "bytes that are not UTF-8 text", row=first_row + bad, column=name,
                                   rule="file.encoding") from None
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_string_view(col.type):
            hit = pc.fill_null(pc.match_substring(col, "\x00"), False)
            if pc.any(hit).as_py():
                row = first_row + pc.index(hit, True).as_py()
                raise FileRejected(info.path, "text contains a NUL character (0x00)", row=row, column=name,
                                   rule="file.encoding")
        columns.append(col)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
