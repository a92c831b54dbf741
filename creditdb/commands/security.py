"""``creditdb security apply|bind|check|rotate-key``: PostgreSQL roles, RLS, session limits, the key."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from creditdb.output import EXIT_REJECTED, emit_json, open_engine, reject


@click.group()
def security() -> None:
    """PostgreSQL access control (roles, row-level security) and pseudonym key rotation.

    The SQL is in deploy/sql (roles.sql, rls.sql, member_isolation.sql); deploy/OPERATIONS.md explains
    adding an institution and rotating the key. The embedded SQLite mode has no
    access control.

    \b
    Example:
      creditdb security apply
    """


def _pg_engine(as_json: bool):
    engine = open_engine()
    if engine.dialect.name != "postgresql":
        reject("this needs PostgreSQL (CREDITDB_URL=postgresql://...): the embedded SQLite mode has no roles",
               as_json=as_json)
    return engine


@security.command("apply")
@click.option("--policy", "policy_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Session limits per group role (TOML; default: the shipped creditdb/policy/roles.toml).")
@click.option("--json", "as_json", is_flag=True)
def apply_(policy_path: Path | None, as_json: bool) -> None:
    """Re-apply roles, grants, policies, functions and session limits (as the tables' owner).

    The migration applies the SQL when the schema is created; run this after tables
    were added, privileges changed by hand, or logins created. Each LOGIN of a
    creditdb group gets its group's statement, idle-in-transaction and lock timeouts
    and connection limit from the policy file (needs CREATEROLE). Run as a superuser,
    it also revokes large-object creation (deploy/sql/superuser.sql; otherwise it says
    so). Idempotent.

    \b
    Example:
      CREDITDB_URL=postgresql://creditdb_owner@db/credit creditdb security apply
      creditdb security apply --policy /etc/creditdb/roles.toml --json
    """
    from creditdb.security import SUPERUSER_FILE, SecurityError, apply_role_limits, apply_sql, load_role_policy

    engine = _pg_engine(as_json)
    try:
        policy = load_role_policy(policy_path)
    except SecurityError as exc:
        reject(str(exc), as_json=as_json)
    with engine.begin() as conn:
        files = apply_sql(conn)
    try:  # (its own transaction: SQL applied stays applied if the owner lacks CREATEROLE)
        with engine.begin() as conn:
            limits = apply_role_limits(conn, policy)
    except SecurityError as exc:
        reject(f"applied {', '.join(files)}; session limits NOT set: {exc}", as_json=as_json)
    skipped = [] if SUPERUSER_FILE in files else [SUPERUSER_FILE]
    if as_json:
        emit_json({"ok": True, "applied": files, "not_applied": skipped, "limits": limits})
        return
    click.echo("applied " + ", ".join(files))
    for row in limits:
        click.echo(f"  {row['login']:<24} {row['group']:<22} " + ", ".join(
            f"{k}={v}" for k, v in row.items() if k not in ("login", "group")))
    if skipped:
        click.secho(f"not applied: {SUPERUSER_FILE} needs a superuser (large objects stay creatable); "
                    f"a DBA runs: psql -d <database> -f deploy/sql/{SUPERUSER_FILE}", fg="yellow")


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
    from creditdb.security import SecurityError, bind_and_audit
    from creditdb.settings import get_settings

    engine = _pg_engine(as_json)
    try:
        with engine.begin() as conn:
            out = bind_and_audit(conn, code, db_role, get_settings().actor)
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


@security.command("check")
@click.option("--json", "as_json", is_flag=True)
def check(as_json: bool) -> None:
    """List every function, view, policy and trigger; name any that can resolve a name
    through the caller's search path (a planted pg_temp type or table could capture it).

    Exit code 0 when there is no finding, 1 otherwise. Run after changing the SQL.

    \b
    Example:
      creditdb security check --json
    """
    from creditdb.security import search_path_findings

    engine = _pg_engine(as_json)
    with engine.connect() as conn:
        res = search_path_findings(conn)
    if as_json:
        emit_json({"ok": not res["findings"], **res})
    else:
        click.echo(f"checked {len(res['functions'])} functions, {len(res['views'])} views, "
                   f"{len(res['policies'])} policies, {len(res['triggers'])} triggers")
        for f in res["findings"]:
            click.secho(f"  {f}", fg="red")
        if not res["findings"]:
            click.secho("no object resolves a name through the caller's search path", fg="green")
    if res["findings"]:
        sys.exit(EXIT_REJECTED)
