"""Reading submission files (CSV in any encoding and delimiter, Excel, Parquet) in bounded-memory chunks.

CSV values are read as text, so that a value such as ``12,5x`` is reported back
exactly as the bank wrote it; typing happens in ``pipelines.validate``. Row numbers
follow a spreadsheet's convention: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines import encodings as enc
from pipelines.column_mapping import SourceProfile, map_header
from pipelines.encodings import Encoding
from pipelines.local_formats import LocalFormats

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
    """What :func:`inspect_file` learnt about a file.

    ``columns``: the header as dictionary names where a header cell matched one (the
    bank's own name otherwise; blank header cells left out). ``source_of``: dictionary or
    kept name -> the column as the file names it. ``notes``: file-level findings (a
    misspelt column with its suggestion, the detected encoding), as report dicts.
    """

    path: Path
    format: str  # csv | parquet | xlsx
    sha256: str
    size: int
    columns: list[str] = field(default_factory=list)
    rows: int | None = None
    encoding: Encoding | None = None
    delimiter: str = ","
    sheet: str | None = None
    source_of: dict[str, str] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)
    #: header cells that match no dictionary column (dropped on read)
    ignored: list[str] = field(default_factory=list)
    notes: list[dict] = field(default_factory=list)
    #: CSV: the names pyarrow gives each header position (blank cells get a placeholder)
    read_names: list[str] = field(default_factory=list)
    #: how numbers and dates are written (declared, or the defaults for the delimiter)
    formats: LocalFormats = field(default_factory=LocalFormats)
    formats_assumed: bool = True
    #: xlsx: the sheet's rows after the header, with their sheet row numbers
    cells: list[tuple[int, list]] | None = field(default=None, repr=False)

    def read_report(self) -> dict:
        """How the file was read, for the submission's report (no values from the file)."""
        out: dict = {"format": self.format}
        if self.encoding is not None:
            out.update(self.encoding.as_dict())
        if self.format == "csv":
            out["delimiter"] = {"\t": "tab"}.get(self.delimiter, self.delimiter)
        if self.sheet is not None:
            out["sheet"] = self.sheet
        out["decimal"] = self.formats.decimal
        if self.format == "csv" and self.formats_assumed and self.formats.decimal == ",":
            out["decimal_note"] = "decimal comma assumed from the semicolon delimiter (--decimal . to override)"
        if self.formats.date_format:
            out["date_format"] = self.formats.date_format
        if self.renamed:
            out["columns_renamed"] = dict(self.renamed)
        if self.ignored:
            out["columns_ignored"] = list(self.ignored)
        return out


EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    if suffix in EXCEL_SUFFIXES:
        return "xlsx"
    raise FileRejected(path, f"unknown file type '{suffix}': use .csv, .xlsx or .parquet", rule="file.format")


def inspect_file(path: Path, profile: SourceProfile | None = None,
                 dictionary: list[str] | None = None, country: str | None = None) -> FileInfo:
    """Hash the file, settle its encoding (CSV) and read its header, in one pass over the bytes.

    ``profile``: declared encoding, delimiter, sheet and the bank's column names;
    ``dictionary``: the column names of the submission kind, which the header is matched to
    (case, spaces and punctuation ignored); ``country``: the submitting institution's,
    whose Windows code page a detection prefers. A UTF-8 file (the common case) is checked in the
    same pass as the hash; any other encoding is declared, marked by a byte-order mark, or
    detected (and named, with its confidence, in ``notes``).
    """
    path = Path(path)
    if not path.exists():
        raise FileRejected(path, "no such file", rule="file.missing")
    fmt = file_format(path)
    declared_enc = profile.encoding if profile else None
    with path.open("rb") as fh:
        head = fh.read(4)
    bom = enc.from_bom(head) if fmt == "csv" else None
    check_utf8 = fmt == "csv" and declared_enc is None and (bom is None or bom.name == "utf-8-sig")
    digest = hashlib.sha256()
    size = 0
    line = 1
    tail = b""
    utf8_error: FileRejected | None = None
    with path.open("rb") as fh:
        while block := fh.read(_READ_BLOCK):
            digest.update(block)
            size += len(block)
            if check_utf8 and utf8_error is None:
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
                    raise FileRejected(path, "contains a NUL byte (0x00): binary data, not a CSV text file "
                                       "(a UTF-16 file needs its byte-order mark, or --encoding utf-16)",
                                       row=line + data[:nul].count(b"\n"), rule="file.encoding")
                try:
                    data[:cut].decode("utf-8")
                except UnicodeDecodeError as exc:
                    bad_line = line + data[: exc.start].count(b"\n")
                    line_start = data.rfind(b"\n", 0, exc.start) + 1
                    column_no = data[line_start: exc.start].count(b",") + 1
                    utf8_error = FileRejected(
                        path, f"not valid UTF-8 (byte 0x{data[exc.start]:02x} in field {column_no} of that line)",
                        row=bad_line, rule="file.encoding")
                line += data[:cut].count(b"\n")
                tail = data[cut:]
    if check_utf8 and utf8_error is None and tail:  # the file ends inside a multi-byte character
        utf8_error = FileRejected(path, f"not valid UTF-8 (the file ends in the middle of a character, byte "
                                  f"0x{tail[0]:02x})", row=line, rule="file.encoding")
    if size == 0:
        raise FileRejected(path, "the file is empty", rule="file.empty")
    info = FileInfo(path=path, format=fmt, sha256=digest.hexdigest(), size=size)
    header: list[str]
    if fmt == "csv":
        info.encoding = _settle_encoding(path, declared_enc, bom, utf8_error, country)
        header_line = _csv_header(info.path, info.encoding)
        info.delimiter = profile.delimiter if profile and profile.delimiter else _sniff_delimiter(header_line)
        header = _split_header(info, header_line)
    elif fmt == "xlsx":
        header = _read_sheet(info, profile.sheet if profile else None)
    else:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # truncated or not a Parquet file
            raise FileRejected(path, f"cannot read Parquet: {exc}", rule="file.parquet") from None
        header = list(pf.schema_arrow.names)
        info.rows = pf.metadata.num_rows
    declared_formats = profile.formats if profile is not None and profile.formats is not None else LocalFormats(None)
    info.formats_assumed = declared_formats.decimal is None
    if info.formats_assumed:  # where Excel writes ';' between fields, its decimal mark is ','
        decimal = "," if fmt == "csv" and info.delimiter == ";" else "."
        if declared_formats.thousands == decimal:
            decimal = "," if decimal == "." else "."
        declared_formats = replace(declared_formats, decimal=decimal)
    info.formats = declared_formats
    _map_columns(info, header, profile, dictionary)
    return info


def _settle_encoding(path: Path, declared_enc: str | None, bom: enc.Encoding | None,
                     utf8_error: FileRejected | None, country: str | None = None) -> enc.Encoding:
    """The file's encoding: declared, byte-order mark, UTF-8, or detected with enough confidence."""
    if declared_enc is not None:
        found = enc.declared(declared_enc)
    elif bom is not None and (bom.name != "utf-8-sig" or utf8_error is None):
        found = bom
    elif utf8_error is None:
        return enc.Encoding("utf-8", "utf-8", 1.0)
    else:
        guess = enc.detect(path, country)
        if guess is None or guess.confidence < enc.MIN_CONFIDENCE:
            said = f" (best guess {guess.name}, confidence {guess.confidence:.2f})" if guess else ""
            raise FileRejected(path, f"{utf8_error.message}, and its encoding could not be detected with "
                               f"confidence{said}: declare it, e.g. --encoding cp932 (Japanese Excel), "
                               "--encoding cp1252 (Western Europe), --encoding cp874 (Thai)",
                               row=utf8_error.row, rule="file.encoding") from None
        found = guess
    _check_decodes(path, found)
    return found


def _check_decodes(path: Path, encoding: enc.Encoding) -> None:
    """Decode the whole file incrementally; a byte that does not decode names its line."""
    import codecs

    decoder = codecs.getincrementaldecoder(encoding.name)(errors="strict")
    line = 1
    with path.open("rb") as fh:
        while block := fh.read(_READ_BLOCK):
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as exc:
                partial = block[: exc.start].decode(encoding.name, errors="replace")
                raise FileRejected(path, f"not valid {encoding.name} ({encoding.how}): byte 0x{block[exc.start]:02x} "
                                   "does not decode; declare the right encoding with --encoding",
                                   row=line + partial.count("\n"), rule="file.encoding") from None
            if "\x00" in text:
                raise FileRejected(path, "contains a NUL character: binary data, not a CSV text file",
                                   row=line + text[: text.index("\x00")].count("\n"), rule="file.encoding")
            line += text.count("\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise FileRejected(path, f"not valid {encoding.name}: the file ends in the middle of a character",
                               row=line, rule="file.encoding") from None


def _csv_header(path: Path, encoding: Encoding) -> str:
    with path.open("r", encoding=encoding.name, newline="") as fh:
        header = fh.readline().lstrip("\ufeff").strip("\r\n")
    if not header.strip().strip(",;\t|"):
        raise FileRejected(path, "the first line (header) is empty", row=1, rule="file.header")
    return header


def _sniff_delimiter(header: str) -> str:
    """The delimiter of a header line: the most frequent of comma, semicolon, tab and bar outside quotes."""
    outside = re.sub(r'"[^"]*"', "", header)
    counts = {d: outside.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _split_header(info: FileInfo, header: str) -> list[str]:
    import csv

    return [c.strip() for c in next(csv.reader([header], delimiter=info.delimiter))]


def _map_columns(info: FileInfo, header: list[str], profile: SourceProfile | None,
                 dictionary: list[str] | None) -> None:
    if dictionary is None:
        names: list[str | None] = [h if str(h).strip() else None for h in header]
        mapping = None
    else:
        mapping = map_header(header, dictionary, profile)
        names = mapping.names
        if mapping.clashes:
            a, b, target = mapping.clashes[0]
            raise FileRejected(info.path, f"columns '{a}' and '{b}' both mean '{target}': keep one",
                               row=1, column=b, rule="file.header")
    kept = [n for n in names if n is not None]
    dupes = sorted({c for c in kept if kept.count(c) > 1})
    if dupes:
        raise FileRejected(info.path, f"column(s) {', '.join(dupes)} appear more than once in the header",
                           row=1, column=dupes[0], rule="file.header")
    info.columns = kept
    info.source_of = {n: str(h) for n, h in zip(names, header, strict=True) if n is not None}
    info.read_names = [n if n is not None else f"__blank_{i}" for i, n in enumerate(names)]
    if mapping is not None:
        info.renamed = mapping.renamed
        info.ignored = list(mapping.unknown)
        for h in mapping.unknown:
            if h in mapping.suggestions:
                info.notes.append({"row": 1, "column": h, "value": None, "rule": "column.unknown",
                                   "severity": "warning",
                                   "message": f"'{h}' is not a column of the data dictionary and is ignored: "
                                              f"did you mean '{mapping.suggestions[h]}'?"})
    if info.encoding is not None and info.encoding.how == "detected":
        info.notes.append({"row": None, "column": None, "value": None, "rule": "file.encoding_detected",
                           "severity": "warning",
                           "message": f"not UTF-8: read as {info.encoding.name}, detected with confidence "
                                      f"{info.encoding.confidence:.2f} (declare --encoding if that is wrong)"})


def _calamine_book(path: Path):
    """Sheet names and a reader of one sheet's rows (lists of cell values), by python-calamine."""
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:
        raise FileRejected(path, f"cannot read the workbook: {exc}", rule="file.xlsx") from None
    return list(book.sheet_names), lambda name: book.get_sheet_by_name(name).to_python(skip_empty_area=False)


def _openpyxl_book(path: Path):
    """As :func:`_calamine_book`, by openpyxl (the fallback when python-calamine is not installed)."""
    try:
        import openpyxl
    except ImportError:
        raise FileRejected(path, "reading Excel files needs python-calamine (or openpyxl)",
                           rule="file.format") from None
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise FileRejected(path, f"cannot read the workbook: {exc}", rule="file.xlsx") from None

    def rows_of(name: str) -> list[list]:
        return [["" if v is None else v for v in r] for r in book[name].iter_rows(values_only=True)]

    return list(book.sheetnames), rows_of


def _read_sheet(info: FileInfo, sheet: str | None) -> list[str]:
    """Read an Excel workbook's sheet (the first, or ``sheet``) into ``info.cells``; return its header."""
    try:
        names, rows_of = _calamine_book(info.path)
    except ImportError:  # python-calamine is a dependency; openpyxl (slower, .xlsx only) if it is absent
        names, rows_of = _openpyxl_book(info.path)
    if not names:
        raise FileRejected(info.path, "the workbook has no sheets", rule="file.xlsx")
    if sheet is None:
        sheet = names[0]
    elif sheet not in names:
        raise FileRejected(info.path, f"no sheet named '{sheet}' (sheets: {', '.join(names)})", rule="file.xlsx")
    try:
        rows = rows_of(sheet)
    except Exception as exc:
        raise FileRejected(info.path, f"cannot read sheet '{sheet}': {exc}", rule="file.xlsx") from None
    info.sheet = sheet
    start = next((i for i, r in enumerate(rows) if any(_cell_text(v) is not None for v in r)), None)
    if start is None:
        raise FileRejected(info.path, f"sheet '{sheet}' is empty", rule="file.empty")
    header = [_cell_text(v) or "" for v in rows[start]]
    while header and not header[-1]:
        header.pop()
    width = len(header)
    cells = []
    pad = [""] * width
    for i in range(start + 1, len(rows)):
        row = rows[i]
        if len(row) != width:
            row = (row + pad)[:width]
        if any(v != "" and v is not None and not (type(v) is str and not v.strip()) for v in row):
            cells.append((i + 1, row))
    info.cells = cells  # raw cell values: typed per column when read (_sheet_column)
    info.rows = len(cells)
    return [h.strip() for h in header]


def _sheet_column(values: list, typed: str | None) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """One sheet column as the reader hands it on. ``typed`` (the dictionary type:
    ``number`` or ``date``, None for keys, codes and text): numbers as float64 when every
    cell is a number or blank, dates as datetime64 when every cell is a date at midnight
    or blank; else text, as a CSV export would hold it (a corporate number typed as a
    number in Excel is the text of its digits)."""
    if typed is None:
        return pd.array([_cell_text(v) for v in values], dtype="string")
    kinds = set(map(type, values))
    texts = str in kinds and any(type(v) is str and v.strip() for v in values)
    if typed == "number" and not texts and kinds <= {float, int, str, type(None)} and kinds & {float, int}:
        if "" in values or None in values:
            values = [np.nan if v == "" or v is None else v for v in values]
        return np.array(values, dtype="float64")
    dates = kinds & {dt.datetime, dt.date}
    if typed == "date" and not texts and dates and kinds <= {dt.datetime, dt.date, str, type(None)} and not any(
            type(v) is dt.datetime and v.time() != dt.time() for v in values):
        cleaned = pd.Series([None if v == "" else v for v in values], dtype=object)
        return pd.to_datetime(cleaned).to_numpy(dtype="datetime64[s]")
    return pd.array([_cell_text(v) for v in values], dtype="string")


def _cell_text(v) -> str | None:
    """An Excel cell as the text a CSV export would hold: dates ISO, whole numbers without '.0'."""
    if v is None:
        return None
    if isinstance(v, str):
        v = v.strip()
        return v or None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, dt.datetime):
        return v.date().isoformat() if v.time() == dt.time() else v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


def iter_chunks(info: FileInfo, columns: list[str] | None = None,
                chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Yield DataFrames of at most ``chunk_rows`` rows, indexed by file row number.

    CSV and Excel columns come as text (missing = NA; Excel dates as ISO text); Parquet
    columns keep their types. The index is the row number (CSV and Excel: header = row 1,
    as a spreadsheet shows it; Parquet: n-th record = row n). Columns carry their
    dictionary names. Rows with every column read blank (Excel's trailing ``,,,,,``) are
    left out. ``columns`` restricts the read to those present in the file.
    """
    wanted = [c for c in (columns or info.columns) if c in info.columns]
    if info.format == "csv":
        chunks = _csv_chunks(info, wanted, chunk_rows)
    elif info.format == "xlsx":
        chunks = _sheet_chunks(info, wanted, chunk_rows)
    else:
        chunks = _parquet_chunks(info, wanted, chunk_rows)
    for frame in chunks:
        if len(frame.columns) and len(frame):
            blank = frame.isna().all(axis=1).to_numpy()
            if blank.any():
                frame = frame.loc[~blank]
                if not len(frame):
                    continue
        yield frame


def _csv_chunks(info: FileInfo, wanted: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.csv as pacsv

    names = info.read_names or info.columns
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in names},
        include_columns=wanted,
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=True,
    )
    # the header as inspect_file read it (names stripped and mapped): pyarrow's own names
    # could differ (' sales', 'Borrower Key') and the columns asked for would then be missing
    encoding = info.encoding.name if info.encoding else "utf8"
    read = pacsv.ReadOptions(block_size=16 << 20, column_names=names, skip_rows=1,
                             encoding="utf8" if encoding in ("utf-8", "utf-8-sig") else encoding)
    first_row = 2
    try:
        reader = pacsv.open_csv(info.path, read_options=read, convert_options=convert,
                                parse_options=pacsv.ParseOptions(newlines_in_values=False, delimiter=info.delimiter))
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
        if "Expected" in msg and "columns, got" in msg:
            expected: int | None
            got: int | None
            try:
                expected = int(msg.split("Expected")[1].split("columns")[0])
                got = int(msg.split("got")[1].split(":")[0])
            except ValueError:
                expected = got = None
            shown = {"\t": "tab"}.get(info.delimiter, info.delimiter)
            if expected is not None:
                msg = (f"a line has {got} fields where the header has {expected} (fields separated by "
                       f"'{shown}'); a value containing '{shown}' must be in double quotes, or the delimiter "
                       "is another one: declare it with --delimiter")
        raise FileRejected(info.path, f"malformed CSV: {msg}", row=row, rule="file.csv") from None


def _to_frame(table: pa.Table, first_row: int) -> pd.DataFrame:
    frame = table.to_pandas()
    frame.index = pd.RangeIndex(first_row, first_row + len(frame), name="row")
    return frame


def _dictionary_types() -> dict[str, str]:
    from pipelines import dictionary as D

    out = {}
    for cols in D.COLUMNS.values():
        for c in cols:
            if c.type in ("amount", "rate", "int"):
                out[c.name] = "number"
            elif c.type == "date":
                out[c.name] = "date"
    return out


_SHEET_TYPES = _dictionary_types()


def _sheet_chunks(info: FileInfo, wanted: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    positions = [info.read_names.index(c) for c in wanted]
    cells = info.cells or []
    for start in range(0, len(cells), chunk_rows):
        part = cells[start: start + chunk_rows]
        rows = [r for r, _ in part]
        data = {c: _sheet_column([v[p] for _, v in part], _SHEET_TYPES.get(c))
                for c, p in zip(wanted, positions, strict=True)}
        yield pd.DataFrame(data, index=pd.Index(rows, name="row"))


def _parquet_chunks(info: FileInfo, wanted: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    first_row = 1  # Parquet has no header line: row n is the n-th record
    try:
        pf = pq.ParquetFile(info.path)
        source = [info.source_of.get(c, c) for c in wanted]
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=source):
            frame = _text_columns(info, batch, first_row).to_pandas()
            frame.columns = wanted
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
