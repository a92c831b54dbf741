"""Bulk writes through the fastest native path of each database.

PostgreSQL: ``COPY ... FROM STDIN`` through psycopg 3 with CSV text produced by
pyarrow's C++ writer. SQLite: one ``executemany`` per batch. Both run inside the
caller's transaction, so a failure anywhere rolls back everything.

Under row-level security (a bank's login, see deploy/sql/rls.sql) PostgreSQL refuses
``COPY FROM`` into the protected tables; there the frame is COPYed into a session
temporary table and moved with ``INSERT ... SELECT``, so every row still passes the
policies' WITH CHECK. Firms are looked up by pseudonym through the SECURITY DEFINER
function ``creditdb_firm_ids`` because a bank's session cannot read unlinked firms.
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


def rls_active(conn: Connection, table_name: str) -> bool:
    """Whether row-level security applies to this session on ``table_name`` (PostgreSQL)."""
    if conn.dialect.name != "postgresql":
        return False
    return bool(conn.execute(text("SELECT row_security_active(CAST(:t AS regclass))"), {"t": table_name}).scalar())


def _copy_through_temp(conn: Connection, table_name: str, frame: pd.DataFrame, suffix: str = "") -> None:
    """COPY into a temporary table shaped like ``table_name``'s columns, then INSERT ... SELECT."""
    tmp = f"tmp_{table_name}_rls"
    cols = ", ".join(f'"{c}"' for c in frame.columns)
    conn.execute(text(f'CREATE TEMP TABLE IF NOT EXISTS "{tmp}" ON COMMIT DROP AS '
                      f'SELECT {cols} FROM "{table_name}" WITH NO DATA'))
    conn.execute(text(f'TRUNCATE "{tmp}"'))
    copy_frame(conn, tmp, frame)
    conn.execute(text(f'INSERT INTO "{table_name}" ({cols}) SELECT {cols} FROM "{tmp}"{suffix}'))
    conn.execute(text(f'DROP TABLE "{tmp}"'))


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


def insert_ignore(conn: Connection, table: Table, frame: pd.DataFrame, conflict: list[str]) -> None:
    """Insert rows, skipping those that collide on the unique columns ``conflict``.

    Concurrent submissions of the same firm by two institutions both succeed: the
    second insert is a no-op and the later lookup finds the firm.
    """
    if frame.empty:
        return
    if conn.dialect.name == "postgresql":
        # Under RLS a conflict target would need SELECT on the (maybe invisible) existing
        # row, so there any unique violation is skipped; ``conflict`` is then the only
        # unique key besides the primary key (firm.pseudonym, borrower_link's pair).
        target = "" if rls_active(conn, table.name) else f' ({", ".join(conflict)})'
        _copy_through_temp(conn, table.name, frame, f" ON CONFLICT{target} DO NOTHING")
        return
    stmt = sqlite_insert(table).on_conflict_do_nothing(index_elements=conflict)
    for start in range(0, len(frame), _SQLITE_BATCH):
        conn.execute(stmt, _records(frame.iloc[start:start + _SQLITE_BATCH]))


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
    batch = 20_000 if conn.dialect.name == "postgresql" else 900
    cols = [table.c[c] for c in columns]
    for start in range(0, len(values), batch):
        stmt = select(*cols).where(table.c[key].in_(values[start:start + batch]))
        for k, v in (where or {}).items():
            stmt = stmt.where(table.c[k] == v)
        out.extend(conn.execute(stmt).all())
    return pd.DataFrame(out, columns=columns)


__all__ = ["copy_frame", "insert_frame", "insert_ignore", "lookup", "rls_active"]
