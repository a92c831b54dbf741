"""Bulk writes through the fastest native path of each database.

PostgreSQL: ``COPY ... FROM STDIN`` through psycopg 3 with CSV text produced by
pyarrow's C++ writer. SQLite: one ``executemany`` per batch. Both run inside the
caller's transaction, so a failure anywhere rolls back everything.
"""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Table, insert, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

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
    with raw.cursor() as cur:
        with cur.copy(f'COPY "{table_name}" ({cols}) FROM STDIN (FORMAT csv)') as copy:
            copy.write(_csv_bytes(frame))


def insert_frame(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    """Insert all rows of ``frame`` into ``table`` by the database's fastest path."""
    if frame.empty:
        return
    if conn.dialect.name == "postgresql":
        copy_frame(conn, table.name, frame)
        return
    for start in range(0, len(frame), _SQLITE_BATCH):
        conn.execute(insert(table), _records(frame.iloc[start:start + _SQLITE_BATCH]))


def insert_ignore(conn: Connection, table: Table, frame: pd.DataFrame, conflict: list[str],
                  returning: str | None = None) -> set | None:
    """Insert rows, skipping those that collide on the unique columns ``conflict``.

    Concurrent submissions of the same firm by two institutions both succeed: the
    second insert is a no-op and the later lookup finds the firm. With ``returning``,
    PostgreSQL returns that column of the rows this call really inserted (a concurrent
    transaction may have inserted some first); SQLite, whose writers are serialised,
    returns None.
    """
    if frame.empty:
        return set() if returning else None
    if conn.dialect.name == "postgresql":
        tmp = f"tmp_{table.name}_load"
        conn.execute(text(f'CREATE TEMP TABLE IF NOT EXISTS "{tmp}" (LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DROP'))
        conn.execute(text(f'TRUNCATE "{tmp}"'))
        copy_frame(conn, tmp, frame)
        cols = ", ".join(f'"{c}"' for c in frame.columns)
        rows = conn.execute(text(
            f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM "{tmp}" '
            f'ON CONFLICT ({", ".join(conflict)}) DO NOTHING' + (f' RETURNING "{returning}"' if returning else '')
        ))
        return {r[0] for r in rows} if returning else None
    stmt = sqlite_insert(table).on_conflict_do_nothing(index_elements=conflict)
    for start in range(0, len(frame), _SQLITE_BATCH):
        conn.execute(stmt, _records(frame.iloc[start:start + _SQLITE_BATCH]))
    return None


def lookup(conn: Connection, table: Table, key: str, values: list, columns: list[str],
           where: dict | None = None) -> pd.DataFrame:
    """Rows of ``table`` whose ``key`` is in ``values`` (batched), as a DataFrame."""
    from sqlalchemy import select

    out = []
    batch = 20_000 if conn.dialect.name == "postgresql" else 900
    cols = [table.c[c] for c in columns]
    for start in range(0, len(values), batch):
        stmt = select(*cols).where(table.c[key].in_(values[start:start + batch]))
        for k, v in (where or {}).items():
            stmt = stmt.where(table.c[k] == v)
        out.extend(conn.execute(stmt).all())
    return pd.DataFrame(out, columns=columns)


__all__ = ["copy_frame", "insert_frame", "insert_ignore", "lookup"]
