"""Bulk reads and writes through the fastest native path of each database.

PostgreSQL: ``COPY ... FROM STDIN`` through psycopg 3 with CSV text produced by
pyarrow's C++ writer, and ``COPY (SELECT ...) TO STDOUT`` parsed by pyarrow's C++ CSV
reader (:func:`read_frame`). SQLite: one ``executemany`` per batch; reads through
SQLAlchemy rows. Both run inside the caller's transaction, so a failure anywhere rolls
back everything.

Under row-level security (a bank's login, see deploy/sql/rls.sql) PostgreSQL refuses
``COPY FROM`` into the protected tables; there the frame is COPYed into a session
temporary table and moved with ``INSERT ... SELECT``, so every row still passes the
policies' WITH CHECK. Firms are looked up by pseudonym through the SECURITY DEFINER
function ``creditdb_firm_ids`` because a bank's session cannot read unlinked firms.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Select, Table, any_, bindparam, insert, text
from sqlalchemy import types as sat
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from creditdb.overlap import WriteBehind

_SQLITE_BATCH = 50_000


def _records(frame: pd.DataFrame) -> list[dict]:
    clean = frame.astype(object).where(frame.notna(), None)
    return clean.to_dict("records")


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(include_header=False))
    return sink.getvalue()


def copy_frame(conn: Connection, table_name: str, frame: pd.DataFrame) -> None:
    """COPY ``frame`` (columns named as the table's) into a PostgreSQL table."""
    if frame.empty:
        return
    raw = conn.connection.driver_connection
    cols = ", ".join(f'"{c}"' for c in frame.columns)
    with raw.cursor() as cur, cur.copy(f'COPY "{table_name}" ({cols}) FROM STDIN (FORMAT csv)') as copy:
        copy.write(_csv_bytes(frame))


def rls_active(conn: Connection, table_name: str) -> bool:
    """Whether row-level security applies to this session on ``table_name`` (PostgreSQL)."""
    if conn.dialect.name != "postgresql":
        return False
    return bool(conn.execute(text("SELECT row_security_active(CAST(:t AS regclass))"), {"t": table_name}).scalar())


def _empty_temp_like(conn: Connection, table_name: str, columns: list[str]) -> tuple[str, str]:
    """(name, quoted column list) of an empty session temp table with ``columns`` of ``table_name``."""
    tmp = f"tmp_{table_name}_rls"
    cols = ", ".join(f'"{c}"' for c in columns)
    conn.execute(text(f'CREATE TEMP TABLE IF NOT EXISTS "{tmp}" ON COMMIT DROP AS '
                      f'SELECT {cols} FROM "{table_name}" WITH NO DATA'))
    conn.execute(text(f'TRUNCATE "{tmp}"'))
    return tmp, cols


def _copy_through_temp(conn: Connection, table_name: str, frame: pd.DataFrame, suffix: str = "",
                       fetch: bool = False) -> list:
    """COPY into a temporary table shaped like ``table_name``'s columns, then INSERT ... SELECT.

    ``suffix`` ends the INSERT (ON CONFLICT, RETURNING); with ``fetch`` its rows are returned.
    """
    tmp, cols = _empty_temp_like(conn, table_name, list(frame.columns))
    copy_frame(conn, tmp, frame)
    result = conn.execute(text(f'INSERT INTO "{table_name}" ({cols}) SELECT {cols} FROM "{tmp}"{suffix}'))
    rows = result.all() if fetch else []
    conn.execute(text(f'DROP TABLE "{tmp}"'))
    return rows


def insert_frame(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    """Insert all rows of ``frame`` into ``table`` by the database's fastest path."""
    if frame.empty:
        return
    if conn.dialect.name == "postgresql":
        if rls_active(conn, table.name):
            _copy_through_temp(conn, table.name, frame)
        else:
            copy_frame(conn, table.name, frame)
        return
    for start in range(0, len(frame), _SQLITE_BATCH):
        conn.execute(insert(table), _records(frame.iloc[start:start + _SQLITE_BATCH]))


@contextmanager
def copy_stream(conn: Connection, table: Table, columns: list[str]) -> Iterator[Callable[[pd.DataFrame], None]]:
    """One PostgreSQL ``COPY ... FROM STDIN`` fed frame by frame: yields ``write(frame)``.

    Each frame's CSV text is made in a thread and psycopg's queued writer sends it from
    another, so the server ingests one frame while the caller computes the next. Under row-level security the
    stream goes to a session temporary table moved with ``INSERT ... SELECT`` when the
    block ends (as :func:`insert_frame`). An exception inside the block aborts the COPY
    (the caller's transaction is then to be rolled back).
    """
    from psycopg.copy import QueuedLibpqWriter

    rls = rls_active(conn, table.name)
    if rls:
        target, cols = _empty_temp_like(conn, table.name, columns)
    else:
        target, cols = table.name, ", ".join(f'"{c}"' for c in columns)
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, WriteBehind[None]("creditdb-copy") as behind:
        with cur.copy(f'COPY "{target}" ({cols}) FROM STDIN (FORMAT csv)', writer=QueuedLibpqWriter(cur)) as copy:

            def write(frame: pd.DataFrame) -> None:
                # the CSV text of a frame is made (pyarrow, without the GIL) and queued in a
                # thread; one frame at a time, so memory holds at most two
                behind.finish()
                if len(frame):
                    behind.start(None, lambda: copy.write(_csv_bytes(frame[columns])))

            yield write
            behind.finish()
    if rls:
        conn.execute(text(f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM "{target}"'))
        conn.execute(text(f'DROP TABLE "{target}"'))


def insert_ignore(conn: Connection, table: Table, frame: pd.DataFrame, conflict: list[str],
                  returning: str | None = None) -> set | None:
    """Insert rows, skipping those that collide on the unique columns ``conflict``.

    Concurrent submissions of the same firm by two institutions both succeed: the
    second insert is a no-op and the later lookup finds the firm. With ``returning``,
    PostgreSQL returns that column of the rows this call really inserted (a concurrent
    transaction may have inserted some first); SQLite, whose writers are serialised, and
    a session under row-level security return None.
    """
    if frame.empty:
        return set() if returning else None
    if conn.dialect.name == "postgresql":
        if rls_active(conn, table.name):
            # Under RLS a conflict target would need SELECT on the (maybe invisible) existing
            # row, so there any unique violation is skipped; ``conflict`` is then the only
            # unique key besides the primary key (firm.pseudonym, borrower_link's pair). A
            # RETURNING list would need the new rows to be visible to the session, which a
            # bank's new firm is not until it is linked: the caller gets None, as on SQLite.
            _copy_through_temp(conn, table.name, frame, " ON CONFLICT DO NOTHING")
            return None
        suffix = f' ON CONFLICT ({", ".join(conflict)}) DO NOTHING' + (f' RETURNING "{returning}"' if returning else "")
        rows = _copy_through_temp(conn, table.name, frame, suffix, fetch=returning is not None)
        return {r[0] for r in rows} if returning else None
    stmt = sqlite_insert(table).on_conflict_do_nothing(index_elements=conflict)
    for start in range(0, len(frame), _SQLITE_BATCH):
        conn.execute(stmt, _records(frame.iloc[start:start + _SQLITE_BATCH]))
    return None


def lookup(conn: Connection, table: Table, key: str, values: list, columns: list[str],
           where: dict | None = None) -> pd.DataFrame:
    """Rows of ``table`` whose ``key`` is in ``values`` (batched), as a DataFrame.

    Firms by pseudonym (columns among ``pseudonym``, ``id``) are resolved through
    ``creditdb_firm_ids`` when the session is under row-level security.
    """
    from sqlalchemy import select

    out = []
    if table.name == "firm" and key == "pseudonym" and set(columns) <= {"pseudonym", "id"} and not where \
            and rls_active(conn, "firm"):
        for start in range(0, len(values), 20_000):
            rows = conn.execute(text("SELECT pseudonym, id FROM creditdb_firm_ids(CAST(:v AS text[]))"),
                                {"v": [str(v) for v in values[start:start + 20_000]]}).mappings().all()
            out.extend(tuple(r[c] for c in columns) for r in rows)
        return pd.DataFrame(out, columns=columns)
    cols = [table.c[c] for c in columns]
    if conn.dialect.name == "postgresql":
        # one array parameter (= ANY) instead of one bound parameter per value
        batch = 200_000
        match = lambda part: table.c[key] == any_(bindparam("keys", part, type_=ARRAY(table.c[key].type)))  # noqa: E731
    else:
        batch = 900
        match = table.c[key].in_
    for start in range(0, len(values), batch):
        stmt = select(*cols).where(match(values[start:start + batch]))
        for k, v in (where or {}).items():
            stmt = stmt.where(table.c[k] == v)
        out.extend(conn.execute(stmt).all())
    return pd.DataFrame(out, columns=columns)


def _arrow_type(t: sat.TypeEngine) -> pa.DataType:
    """Arrow type to parse a column of SQL type ``t`` from PostgreSQL's CSV output."""
    if isinstance(t, sat.Boolean):
        return pa.bool_()
    if isinstance(t, sat.Integer):
        return pa.int64()
    if isinstance(t, (sat.Float, sat.Numeric)):
        return pa.float64()
    if isinstance(t, sat.DateTime):
        return pa.string()  # "2025-06-30 00:00:00+00": parsed by pandas below
    if isinstance(t, sat.Date):
        return pa.date32()
    return pa.string()


def read_frame(conn: Connection, stmt: Select, date_as_object: bool = True) -> pd.DataFrame:
    """Rows of ``stmt`` as a DataFrame with columns named as its selected columns.

    PostgreSQL: ``COPY (stmt) TO STDOUT`` (CSV) parsed by pyarrow, about ten times
    faster than building SQLAlchemy rows for a million rows. Column values are as the
    row path gives them, except types: integers without NULLs are int64, integers with
    NULLs float64, dates ``datetime.date`` objects, time stamps ``datetime64`` in UTC,
    booleans ``bool``; with ``date_as_object=False`` dates are ``datetime64`` (PostgreSQL:
    no Python object per value). Other databases: ``conn.execute(stmt).all()``.
    """
    columns = [c.name for c in stmt.selected_columns]
    if conn.dialect.name != "postgresql":
        return pd.DataFrame(conn.execute(stmt).all(), columns=columns)
    compiled = stmt.compile(dialect=conn.dialect)
    types = {c.name: c.type for c in stmt.selected_columns}
    sink = io.BytesIO()
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:
        with cur.copy(f"COPY ({compiled.string}) TO STDOUT (FORMAT csv, HEADER true)", compiled.params) as copy:
            for block in copy:
                sink.write(block)
    sink.seek(0)
    table = pacsv.read_csv(sink, convert_options=pacsv.ConvertOptions(
        column_types={c: _arrow_type(t) for c, t in types.items()}, strings_can_be_null=True,
        quoted_strings_can_be_null=False, true_values=["t"], false_values=["f"]))
    frame = table.to_pandas(date_as_object=date_as_object)
    for c, t in types.items():
        if isinstance(t, sat.DateTime):
            frame[c] = pd.to_datetime(frame[c], utc=True, format="ISO8601")
    if list(frame.columns) != columns:  # duplicate names get suffixes from the CSV reader
        frame.columns = columns
    return frame


__all__ = ["copy_frame", "copy_stream", "insert_frame", "insert_ignore", "lookup", "read_frame", "rls_active"]
