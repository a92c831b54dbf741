"""PostgreSQL access control: apply the role/RLS SQL, bind logins, set and rotate the key.

The SQL is in ``creditdb/sql`` (what the package ships and the migration and
``creditdb security apply`` run); ``deploy/sql`` (what a DBA reads and applies by hand)
is a link to it, so there is one copy to edit. SQLite, the
embedded single-user mode, has no roles: see docs/security.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

SQL_DIR = Path(__file__).with_name("sql")
#: applied in this order
SQL_FILES = ("roles.sql", "rls.sql", "member_isolation.sql")
GROUP_ROLES = ("creditdb_operator", "creditdb_supervisor", "creditdb_agency", "creditdb_institution")


class SecurityError(RuntimeError):
    """Access-control setup is impossible or inconsistent (message says what to do)."""


def apply_sql(conn: Connection) -> list[str]:
    """Run ``SQL_FILES`` in order on a PostgreSQL connection (as the tables' owner).

    Runs through the driver's simple query path, so the files' ``%`` and ``$$`` reach
    the server untouched. Returns the file names applied.
    """
    if conn.dialect.name != "postgresql":
        raise SecurityError("roles and row-level security exist only in PostgreSQL mode")
    raw = conn.connection.driver_connection
    for name in SQL_FILES:
        with raw.cursor() as cur:
            cur.execute((SQL_DIR / name).read_text(encoding="utf-8"))
    return list(SQL_FILES)


def has_key(conn: Connection) -> bool:
    """Whether the database holds a pseudonym key (owner only: others cannot read the table)."""
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM creditdb_pseudonym_key)")).scalar())


def set_key(conn: Connection, key: bytes | None = None) -> None:
    """Store the first pseudonym key (``None``: 32 random bytes drawn by the server)."""
    conn.execute(text("SELECT creditdb_set_key(:k)"), {"k": key})


def ensure_key(conn: Connection) -> str | None:
    """Store the first key if the database has none: ``CREDITDB_PSEUDONYM_KEY`` if set
    (keeps an existing database's pseudonyms), else 32 random bytes drawn by the server.

    Returns what was done (None when a key existed). Owner only.
    """
    import os

    if has_key(conn):
        return None
    env = os.environ.get("CREDITDB_PSEUDONYM_KEY")
    set_key(conn, env.encode("utf-8") if env else None)
    return ("pseudonym key stored in the server from CREDITDB_PSEUDONYM_KEY" if env else
            "pseudonym key drawn at random inside the server")


def rotate_key(conn: Connection) -> dict[str, Any]:
    """Re-key every stored pseudonym with a new server-drawn key; returns generation and counts."""
    res = conn.execute(text("SELECT creditdb_rotate_key()")).scalar_one()
    return res if isinstance(res, dict) else json.loads(res)


def bind_login(conn: Connection, code: str, db_role: str) -> dict[str, Any]:
    """Bind the login role ``db_role`` to institution ``code``.

    The role must exist and be a member of ``creditdb_institution`` (a bank) or
    ``creditdb_agency`` (a guarantee corporation or government body).
    """
    member = conn.execute(text(
        "SELECT r.rolcanlogin AS login, "
        " pg_has_role(r.oid, 'creditdb_institution', 'MEMBER') AS bank, "
        " pg_has_role(r.oid, 'creditdb_agency', 'MEMBER') AS agency, "
        " pg_has_role(r.oid, 'creditdb_operator', 'MEMBER') AS operator, r.rolsuper AS super "
        "FROM pg_roles r WHERE r.rolname = :r"), {"r": db_role}).first()
    if member is None:
        raise SecurityError(f"no database role {db_role!r}: create it first (deploy/OPERATIONS.md, "
                            "'Adding an institution')")
    if member.super or member.operator:
        raise SecurityError(f"role {db_role!r} is a superuser or operator; an institution needs its own login")
    if not (member.bank or member.agency):
        raise SecurityError(f"role {db_role!r} is not a member of creditdb_institution or creditdb_agency")
    n = conn.execute(text("UPDATE institution SET db_role = :r WHERE code = :c"), {"r": db_role, "c": code}).rowcount
    if n != 1:
        raise SecurityError(f"unknown institution {code!r}")
    return {"institution": code, "db_role": db_role, "group": "creditdb_institution" if member.bank
            else "creditdb_agency"}


__all__ = ["GROUP_ROLES", "SQL_DIR", "SQL_FILES", "SecurityError", "apply_sql", "bind_login", "ensure_key", "has_key",
           "rotate_key", "set_key"]
