"""``creditdb institution add|list``."""

from __future__ import annotations

import click

from creditdb.output import emit_json, open_engine, reject

KINDS = ("bank", "guarantee_corporation", "government")


@click.group()
def institution() -> None:
    """Member institutions: banks, guarantee corporations, government bodies, and how their files are written.

    \b
    Example:
      creditdb institution add BK1 --name "First Bank" --kind bank --country JP
      creditdb institution profile BK1 --mapping bk1.toml
    """


@institution.command("add")
@click.argument("code")
@click.option("--name", required=True, help="Display name.")
@click.option("--kind", type=click.Choice(KINDS), required=True)
@click.option("--country", required=True, help="ISO 3166-1 alpha-2 code, e.g. JP.")
@click.option("--db-role", default=None,
              help="PostgreSQL login role of this institution (member of creditdb_institution, or "
                   "creditdb_agency for a guarantee corporation); row-level security maps its sessions "
                   "to this institution. See deploy/OPERATIONS.md.")
@click.option("--json", "as_json", is_flag=True)
def add(code: str, name: str, kind: str, country: str, db_role: str | None, as_json: bool) -> None:
    """Register an institution under a short CODE (1-32 of A-Z, 0-9, _ and -).

    With --db-role the login is bound exactly as by 'creditdb security bind' (same
    checks, same audit event, its group's session limits).

    \b
    Example:
      creditdb institution add BK1 --name "First Regional Bank" --kind bank --country JP
      creditdb institution add BK2 --name "Second Bank" --kind bank --country JP --db-role bk2_app
    """
    from typing import cast

    from sqlalchemy import String

    from creditdb import lookups
    from creditdb.codes import InvalidCode, check_code
    from creditdb.db import session_scope
    from creditdb.schema import Institution

    try:
        check_code(code)
    except InvalidCode as exc:
        reject(str(exc), as_json=as_json)
    country = country.upper()
    if len(country) != 2 or not country.isalpha():
        raise click.BadParameter("must be an ISO 3166-1 alpha-2 code such as JP", param_hint="--country")
    for what, value, column in (("code", code, Institution.__table__.c.code), ("--name", name, Institution.__table__.c.name)):
        limit = cast(String, column.type).length or 0
        if not value.strip() or len(value) > limit:
            reject(f"{what} must be 1 to {limit} characters (got {len(value)})", as_json=as_json)
    engine = open_engine()
    with session_scope(engine) as s:
        if lookups.institution(s.connection(), code) is not None:
            reject(f"institution {code!r} already exists", as_json=as_json)
        inst = Institution(code=code, name=name, kind=kind, country=country)
        s.add(inst)
        s.flush()
        row = {"id": inst.id, "code": code, "name": name, "kind": kind, "country": country}
        if db_role:
            from creditdb.security import SecurityError, bind_and_audit
            from creditdb.settings import get_settings

            if engine.dialect.name != "postgresql":
                reject("--db-role needs PostgreSQL: the embedded SQLite mode has no roles", as_json=as_json)
            try:
                row["db_role"] = bind_and_audit(s.connection(), code, db_role, get_settings().actor)["db_role"]
            except SecurityError as exc:
                reject(str(exc), as_json=as_json)
    if as_json:
        emit_json({"ok": True, "institution": row})
    else:
        click.echo(f"added institution {code} ({name}, {kind}, {country})"
                   + (f", login {row['db_role']}" if row.get("db_role") else ""))


@institution.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_(as_json: bool) -> None:
    """List institutions and the PostgreSQL login bound to each (none on SQLite).

    \b
    Example:
      creditdb institution list --json
    """
    from sqlalchemy import select

    from creditdb.db import session_scope
    from creditdb.schema import Institution

    engine = open_engine()
    with session_scope(engine) as s:
        rows = [
            {"id": i.id, "code": i.code, "name": i.name, "kind": i.kind, "country": i.country, "db_role": i.db_role}
            for i in s.scalars(select(Institution).order_by(Institution.code))
        ]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no institutions yet: creditdb institution add --help")
    for r in rows:
        click.echo(f"{r['code']:<10} {r['kind']:<22} {r['country']}  {(r['db_role'] or '-'):<24} {r['name']}")


@institution.command("profile")
@click.argument("code")
@click.option("--mapping", type=click.Path(dir_okay=False, exists=True),
              help="Mapping file (TOML or JSON) to store as the institution's profile.")
@click.option("--clear", is_flag=True, help="Remove the stored profile.")
@click.option("--json", "as_json", is_flag=True)
def profile(code: str, mapping: str | None, clear: bool, as_json: bool) -> None:
    """Show or set how institution CODE's files are written: its column names and codes,
    encoding, delimiter, number and date formats. Every submission of the institution
    uses the stored profile unless `creditdb submit --mapping` gives another.

    \b
    A mapping file (TOML):
      encoding = "cp932"
      [columns]
      "Kunden-Nr" = "borrower_key"
      [values.industry]
      "01" = "A"
      [values.currency]
      "Yen" = "JPY"
      [formats]
      decimal = ","
      date_format = "%d.%m.%Y"

    \b
    Example:
      creditdb institution profile BK1 --mapping bk1.toml
      creditdb institution profile BK1 --json
    """
    from sqlalchemy import select

    from creditdb.schema import Institution
    from pipelines.column_mapping import ProfileError, load_profile
    from pipelines.profiles import save_profile, stored_profile

    if mapping and clear:
        raise click.UsageError("give --mapping or --clear, not both")
    engine = open_engine()
    if mapping or clear:
        try:
            new = load_profile(mapping) if mapping else None
        except ProfileError as exc:
            raise click.UsageError(str(exc)) from None
        with engine.begin() as conn:
            try:
                save_profile(conn, code, new)
            except LookupError as exc:
                reject(str(exc), as_json=as_json)
    with engine.connect() as conn:
        inst_id = conn.execute(select(Institution.id).where(Institution.code == code)).scalar()
        if inst_id is None:
            reject(f"unknown institution {code!r}: register it with 'creditdb institution add'", as_json=as_json)
        stored = stored_profile(conn, inst_id)
    data = stored.as_dict() if stored is not None else None
    if as_json:
        emit_json({"institution": code, "profile": data})
        return
    if not data or data == {"columns": {}, "values": {}}:
        click.echo(f"{code}: no stored profile (files must use the data dictionary's names: creditdb docs dictionary)")
        return
    click.echo(f"{code}: stored profile")
    for k in ("encoding", "delimiter", "sheet"):
        if k in data:
            click.echo(f"  {k}: {data[k]!r}")
    for a, b in data["columns"].items():
        click.echo(f"  column '{a}' -> {b}")
    for col, codes in data["values"].items():
        click.echo(f"  codes of {col}: " + ", ".join(f"{a} -> {b}" for a, b in codes.items()))
    if "formats" in data:
        click.echo("  formats: " + ", ".join(f"{k} {v!r}" for k, v in data["formats"].items() if k != "missing"))
