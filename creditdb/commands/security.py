"""``creditdb security apply|bind|rotate-key``: PostgreSQL roles, RLS and the pseudonym key."""

from __future__ import annotations

import click

from creditdb.output import emit_json, open_engine, reject


@click.group()
def security() -> None:
    """PostgreSQL access control (roles, row-level security) and pseudonym key rotation.

    The SQL is in deploy/sql (roles.sql, rls.sql, member_isolation.sql); deploy/OPERATIONS.md explains
    adding an institution and rotating the key. The embedded SQLite mode has no
    access control (docs/security.md).
    """


def _pg_engine(as_json: bool):
    engine = open_engine()
    if engine.dialect.name != "postgresql":
        reject("this needs PostgreSQL (CREDITDB_URL=postgresql://...): the embedded SQLite mode has no roles",
               as_json=as_json)
    return engine


@security.command("apply")
@click.option("--json", "as_json", is_flag=True)
def apply_(as_json: bool) -> None:
    """Re-apply roles, grants, policies and functions (as the tables' owner).

    The migration applies them when the schema is created; run this after tables
    were added or privileges changed by hand. Idempotent.

    \b
    Example:
      CREDITDB_URL=postgresql://creditdb_owner@db/credit creditdb security apply
    """
    from creditdb.security import apply_sql

    engine = _pg_engine(as_json)
    with engine.begin() as conn:
        files = apply_sql(conn)
    if as_json:
        emit_json({"ok": True, "applied": files})
    else:
        click.echo("applied " + ", ".join(files))


@security.command("bind")
@click.argument("code")
@click.argument("db_role")
@click.option("--json", "as_json", is_flag=True)
def bind(code: str, db_role: str, as_json: bool) -> None:
    """Bind the PostgreSQL login DB_ROLE to institution CODE (operator or owner).

    \b
    Example:
      creditdb security bind BK1 bk1_app
    """
    from creditdb.security import SecurityError, bind_login

    engine = _pg_engine(as_json)
    try:
        with engine.begin() as conn:
            out = bind_login(conn, code, db_role)
            from creditdb import audit
            from creditdb.settings import get_settings

            audit.append(conn, get_settings().actor, "security.bind", out)
    except SecurityError as exc:
        reject(str(exc), as_json=as_json)
    if as_json:
        emit_json({"ok": True, **out})
    else:
        click.echo(f"institution {code}: sessions of {db_role} ({out['group']}) now see only its rows")


@security.command("rotate-key")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True)
def rotate_key(yes: bool, as_json: bool) -> None:
    """Rotate the pseudonym key: every stored pseudonym and keyed hash is re-keyed.

    A new key is drawn inside the server (nobody sees it); each stored value v
    becomes HMAC(new key, v) in one transaction, and from then on the server applies
    the key chain. Submissions in flight finish first; new ones wait. Needs the
    operator role (or the owner). Banks keep using their own borrower and loan keys.

    \b
    Example:
      creditdb security rotate-key --yes --json
    """
    from creditdb import audit
    from creditdb.security import rotate_key as rotate
    from creditdb.settings import get_settings

    engine = _pg_engine(as_json)
    if not yes and not as_json:
        click.confirm("Re-key every stored pseudonym now?", abort=True)
    with engine.begin() as conn:
        res = rotate(conn)
        audit.append(conn, get_settings().actor, "security.rotate_key", res)
    if as_json:
        emit_json({"ok": True, **res})
    else:
        click.echo(f"pseudonym key generation {res['generation']}: re-keyed {res['firm']:,} firms, "
                   f"{res['borrower_link']:,} borrower links, {res['loan']:,} loans, "
                   f"{res['default_event']:,} default events")
