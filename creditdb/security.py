"""PostgreSQL access control: apply the role/RLS SQL, bind logins, set and rotate the key.

The SQL is in ``creditdb/sql`` (what the package ships and the migration and
``creditdb security apply`` run); ``deploy/sql`` (what a DBA reads and applies by hand)
is a link to it, so there is one copy to edit. SQLite, the
embedded single-user mode, has no roles: see docs/security.md.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

SQL_DIR = Path(__file__).with_name("sql")
#: applied in this order
SQL_FILES = ("roles.sql", "rls.sql", "member_isolation.sql")
#: applied too when the session is a superuser (else printed for a DBA to run)
SUPERUSER_FILE = "superuser.sql"
GROUP_ROLES = ("creditdb_operator", "creditdb_supervisor", "creditdb_agency", "creditdb_institution")
#: default session limits per group role (``creditdb security apply --policy`` for another)
ROLE_POLICY = Path(__file__).with_name("policy") / "roles.toml"
_SETTINGS = ("statement_timeout", "idle_in_transaction_session_timeout", "lock_timeout")
_INTERVAL = re.compile(r"\d{1,9}\s*(ms|s|min|h|d)?")


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
    assert raw is not None, "the connection was closed"
    files = list(SQL_FILES)
    if conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar():
        files.append(SUPERUSER_FILE)
    for name in files:
        with raw.cursor() as cur:
            cur.execute((SQL_DIR / name).read_text(encoding="utf-8"))
    return files


def load_role_policy(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Session limits per group role from a TOML policy file (default :data:`ROLE_POLICY`).

    Each ``[roles.<group>]`` table may set ``statement_timeout``,
    ``idle_in_transaction_session_timeout``, ``lock_timeout`` (PostgreSQL intervals such
    as ``"60s"``, ``"30min"``; ``"0"`` for none) and ``connection_limit`` (an integer,
    -1 for none). Raises :class:`SecurityError` naming the first bad entry.
    """
    path = path or ROLE_POLICY
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SecurityError(f"cannot read the role policy {path}: {exc}") from None
    roles = doc.get("roles", {})
    for group, limits in roles.items():
        if group not in GROUP_ROLES:
            raise SecurityError(f"{path}: unknown group role [roles.{group}] (one of {', '.join(GROUP_ROLES)})")
        for key, value in limits.items():
            if key in _SETTINGS:
                if not isinstance(value, str) or not _INTERVAL.fullmatch(value.strip()):
                    raise SecurityError(f"{path}: roles.{group}.{key} must be an interval such as \"60s\" or "
                                        f"\"30min\" (got {value!r})")
            elif key == "connection_limit":
                if not isinstance(value, int) or isinstance(value, bool) or value < -1:
                    raise SecurityError(f"{path}: roles.{group}.connection_limit must be an integer >= -1 "
                                        f"(got {value!r})")
            else:
                raise SecurityError(f"{path}: unknown setting roles.{group}.{key}")
    return roles


def _role_limit_sql(conn: Connection, role: str, limits: dict[str, Any]) -> list[str]:
    q = conn.dialect.identifier_preparer.quote
    db = conn.execute(text("SELECT current_database()")).scalar_one()
    out = [f"ALTER ROLE {q(role)} IN DATABASE {q(db)} SET {k} = '{limits[k].strip()}'"
           for k in _SETTINGS if k in limits]
    if "connection_limit" in limits:
        out.append(f"ALTER ROLE {q(role)} CONNECTION LIMIT {int(limits['connection_limit'])}")
    return out


def apply_role_limits(conn: Connection, policy: dict[str, dict[str, Any]],
                      only: str | None = None) -> list[dict[str, Any]]:
    """Set each group's limits on every LOGIN member of it (or only on login ``only``).

    PostgreSQL applies ``ALTER ROLE ... SET`` and ``CONNECTION LIMIT`` only to the role
    that logs in, never through group membership, so each login gets its group's
    values (settings for this database only; the connection limit is cluster-wide).
    Needs CREATEROLE (or a superuser). Returns what was set, per login.
    """
    done = []
    for group in GROUP_ROLES:
        limits = policy.get(group)
        if not limits:
            continue
        logins = conn.execute(text(
            "SELECT r.rolname FROM pg_roles r WHERE r.rolcanlogin AND NOT r.rolsuper "
            "AND pg_has_role(r.oid, :g, 'MEMBER') AND (CAST(:only AS text) IS NULL OR r.rolname = :only) "
            "ORDER BY 1"), {"g": group, "only": only}).scalars().all()
        for login in logins:
            for sql in _role_limit_sql(conn, login, limits):
                try:
                    with conn.begin_nested():
                        conn.exec_driver_sql(sql)
                except Exception as exc:  # noqa: BLE001 - reported with the statement
                    orig = getattr(exc, "orig", exc)
                    raise SecurityError(f"cannot set the session limits of {login} ({group}): "
                                        f"{str(orig).splitlines()[0]}; the role running 'security apply' needs "
                                        "CREATEROLE (deploy/OPERATIONS.md, 'Session limits')") from None
            done.append({"login": login, "group": group, **limits})
    return done


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
    caller = conn.execute(text(
        "SELECT CAST(session_user AS text) AS login, (SELECT r.rolsuper FROM pg_roles r "
        "WHERE r.rolname = session_user) AS super, pg_has_role(session_user, 'creditdb_operator', 'MEMBER') AS op, "
        "(pg_has_role(session_user, 'creditdb_institution', 'MEMBER') OR pg_has_role(session_user, "
        "'creditdb_agency', 'MEMBER') OR pg_has_role(session_user, 'creditdb_supervisor', 'MEMBER')) AS app")).one()
    if not caller.super and caller.app and not caller.op:
        raise SecurityError(f"permission denied: login {caller.login} may not bind logins (the operator or the "
                            "owner does)")
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
    inst = conn.execute(text("SELECT kind, db_role FROM institution WHERE code = :c"), {"c": code}).first()
    if inst is None:
        raise SecurityError(f"unknown institution {code!r} (creditdb institution list)")
    other = conn.execute(text("SELECT code FROM institution WHERE db_role = :r AND code <> :c"),
                         {"r": db_role, "c": code}).scalar()
    if other is not None:
        raise SecurityError(f"login {db_role!r} is already bound to institution {other}: one login per "
                            f"institution (create another login for {code}, deploy/OPERATIONS.md)")
    if member.bank and member.agency:
        raise SecurityError(f"role {db_role!r} is a member of both creditdb_institution and creditdb_agency")
    if member.agency and inst.kind == "bank":
        raise SecurityError(f"institution {code} is a bank; {db_role!r} is an agency login (creditdb_agency)")
    if member.bank and inst.kind != "bank":
        raise SecurityError(f"institution {code} is a {inst.kind}; {db_role!r} is a bank login "
                            "(creditdb_institution)")
    conn.execute(text("UPDATE institution SET db_role = :r WHERE code = :c"), {"r": db_role, "c": code})
    return {"institution": code, "db_role": db_role, "previous_db_role": inst.db_role,
            "group": "creditdb_institution" if member.bank else "creditdb_agency"}


def bind_and_audit(conn: Connection, code: str, db_role: str, actor: str) -> dict[str, Any]:
    """Bind (:func:`bind_login`), give the login its group's session limits, write the audit event.

    The one path of ``security bind`` and ``institution add --db-role``. The limits
    need CREATEROLE; without it the binding stands and ``limits`` says why not.
    """
    from creditdb import audit

    out = bind_login(conn, code, db_role)
    try:
        with conn.begin_nested():
            out["limits"] = apply_role_limits(conn, load_role_policy(), only=db_role)
    except SecurityError as exc:
        out["limits"] = f"not set: {exc}"
    audit.append(conn, actor, "security.bind", {k: v for k, v in out.items() if k != "limits"})
    return out


def acting_for(conn: Connection, code: str) -> None:
    """Refuse, with a message naming both institutions, a bank or agency login acting for another.

    Row-level security refuses it anyway; this says so before any work is done instead
    of the server's ``new row violates row-level security policy``.
    """
    if conn.dialect.name != "postgresql":
        return
    row = conn.execute(text(
        "SELECT pg_has_role(session_user, 'creditdb_institution', 'MEMBER') AS bank, "
        " pg_has_role(session_user, 'creditdb_agency', 'MEMBER') AS agency, "
        " pg_has_role(session_user, 'creditdb_operator', 'MEMBER') AS operator, "
        " (SELECT i.code FROM institution i WHERE i.db_role = session_user) AS own, "
        " CAST(session_user AS text) AS login")).one()
    if row.operator or not (row.bank or row.agency):
        return
    if row.own is None:
        raise SecurityError(f"login {row.login} is not bound to any institution: the operator binds it with "
                            f"'creditdb security bind CODE {row.login}'")
    if row.own != code:
        raise SecurityError(f"login {row.login} acts for institution {row.own}; it may not read or write "
                            f"institution {code}'s data (row-level security)")


#: the only search_path a function may pin: pg_catalog first, the session's pg_temp
#: explicitly LAST (unlisted, pg_temp is searched FIRST for relations and types)
SAFE_SEARCH_PATHS = ("pg_catalog, pg_temp", "pg_catalog,pg_temp")
_UNQUALIFIED_CAST = re.compile(r"::\s*(?!pg_catalog\.)\"?[A-Za-z_]")
_CAST_AS = re.compile(r"\bCAST\s*\((?:[^()]|\([^()]*\))*?\bAS\s+(?!pg_catalog\.)\"?([A-Za-z_][A-Za-z0-9_]*)", re.I)
_RELATION = re.compile(r"\b(?:FROM|JOIN|UPDATE|INSERT\s+INTO|LOCK\s+TABLE|TRUNCATE)\s+(?:ONLY\s+)?"
                       r"(?!pg_catalog\.|public\.|pg_temp\.)\"?([A-Za-z_][A-Za-z0-9_]*)\b\"?(?!\s*[.(])", re.I)
_CTE = re.compile(r"(?:\bWITH|,)\s+([A-Za-z_][A-Za-z0-9_]*)\s+AS\s*\(", re.I)


def search_path_findings(conn: Connection) -> dict[str, Any]:
    """Every function, view, policy and trigger of the database, and which of them can
    resolve a name through the caller's search path (issue 17, item 1).

    * A function of a user schema (not an extension's C function) must pin
      ``search_path = pg_catalog, pg_temp`` and, in its body, qualify every relation
      (``public.x``; a relation left unqualified would still be found in the caller's
      ``pg_temp``, which comes after pg_catalog but before nothing else) and every type
      it casts to (``pg_catalog.text``). Operators and functions are never looked up in
      ``pg_temp``, so with pg_catalog first the built-ins win.
    * Policies and views are stored as parsed trees (names bound when created): each
      function they call must itself pass the function rule or be a built-in.
    * A trigger's function must pass the function rule.

    Returns ``{"functions": [...], "views": [...], "policies": [...], "triggers": [...],
    "findings": [...]}``; the first four list every object examined.
    """
    rows = conn.execute(text("""
        SELECT p.oid, n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS name,
               l.lanname, p.prosrc, p.proconfig, p.prosecdef
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
           AND n.nspname NOT LIKE 'pg_temp%'
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                           AND d.deptype = 'e')
         ORDER BY 2""")).all()
    transition = set(conn.execute(text(
        "SELECT x FROM pg_trigger t, LATERAL (VALUES (t.tgnewtable), (t.tgoldtable)) v(x) WHERE x IS NOT NULL"))
        .scalars())
    findings: list[str] = []
    bad_oids: set[int] = set()
    functions = []
    for r in rows:
        functions.append(r.name)
        problems = []
        path = next((c.split("=", 1)[1] for c in (r.proconfig or []) if c.startswith("search_path=")), None)
        if r.lanname in ("sql", "plpgsql"):
            if path is None:
                problems.append("search_path is not pinned (names resolve through the caller's path)")
            elif path.replace('"', "").strip() not in SAFE_SEARCH_PATHS:
                problems.append(f"search_path is {path!r}, not 'pg_catalog, pg_temp'")
            body = re.sub(r"--[^\n]*", "", r.prosrc or "")
            body = re.sub(r"'(?:[^']|'')*'", "''", body)  # string literals (messages) are not names
            body = re.sub(r"\bIS\s+(?:NOT\s+)?DISTINCT\s+FROM\b", "IS DISTINCT_FROM", body, flags=re.I)
            if _UNQUALIFIED_CAST.search(body):
                problems.append("casts with :: to an unqualified type")
            problems += [f"casts to the unqualified type {m}" for m in _CAST_AS.findall(body)]
            ctes = {c.lower() for c in _CTE.findall(body)}
            for rel in _RELATION.findall(body):
                if rel.lower() not in ctes and rel not in transition:
                    problems.append(f"refers to the unqualified relation {rel}")
        elif r.lanname not in ("c", "internal"):
            problems.append(f"language {r.lanname} is not checked")
        if problems:
            bad_oids.add(r.oid)
            findings += [f"function {r.name}: {p}" for p in dict.fromkeys(problems)]

    def callees(classid: str, where: str) -> Sequence[Any]:
        return conn.execute(text(f"""
            SELECT DISTINCT {where} AS owner_name, d.refobjid AS fn,
                   (SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                     WHERE p.oid = d.refobjid) AS fn_schema,
                   d.refobjid::regprocedure::text AS fn_name
              FROM pg_depend d
             WHERE d.classid = '{classid}'::regclass AND d.refclassid = 'pg_proc'::regclass""")).all()

    policies = [f"{r.tablename}.{r.policyname}" for r in conn.execute(text(
        "SELECT tablename, policyname FROM pg_policies WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
        "ORDER BY 1, 2"))]
    for c in callees("pg_policy", "(SELECT pol.polrelid::regclass::text || '.' || pol.polname FROM pg_policy pol "
                                  "WHERE pol.oid = d.objid)"):
        if c.fn in bad_oids:
            findings.append(f"policy {c.owner_name}: calls {c.fn_name}, which resolves names through the caller")
    views = [r[0] for r in conn.execute(text(
        "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"))]
    for c in callees("pg_rewrite", "(SELECT rw.ev_class::regclass::text FROM pg_rewrite rw WHERE rw.oid = d.objid)"):
        if c.fn in bad_oids and c.owner_name in views:
            findings.append(f"view {c.owner_name}: calls {c.fn_name}, which resolves names through the caller")
    triggers = []
    for r in conn.execute(text(
            "SELECT t.tgrelid::regclass::text AS tbl, t.tgname, t.tgfoid, t.tgfoid::regprocedure::text AS fn "
            "FROM pg_trigger t WHERE NOT t.tgisinternal ORDER BY 1, 2")):
        triggers.append(f"{r.tbl}.{r.tgname}")
        if r.tgfoid in bad_oids:
            findings.append(f"trigger {r.tbl}.{r.tgname}: runs {r.fn}, which resolves names through the caller")
    return {"functions": functions, "views": views, "policies": policies, "triggers": triggers,
            "findings": findings}


__all__ = ["GROUP_ROLES", "ROLE_POLICY", "SQL_DIR", "SQL_FILES", "SUPERUSER_FILE", "SecurityError", "acting_for",
           "apply_role_limits", "apply_sql", "bind_and_audit", "bind_login", "ensure_key", "has_key",
           "load_role_policy", "rotate_key", "search_path_findings", "set_key"]
