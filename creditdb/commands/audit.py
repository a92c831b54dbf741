"""``creditdb audit log|head|verify``: read and check the tamper-evident audit trail."""

from __future__ import annotations

import datetime as dt
import sys

import click

from creditdb.output import EXIT_REJECTED, emit_json, open_engine


@click.group()
def audit() -> None:
    """The audit trail: every submission, training, scoring and pricing run.

    \b
    Example:
      creditdb audit log --action submit --limit 20
      creditdb audit verify
    """


@audit.command("log")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="Only events at or after this date/time (UTC).")
@click.option("--action", help="Only events whose action starts with this, e.g. submit.")
@click.option("--limit", type=int, default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def log(since: dt.datetime | None, action: str | None, limit: int, as_json: bool) -> None:
    """List audit events, oldest first.

    \b
    Example:
      creditdb audit log --since 2026-01-01 --action submit --json
    """
    from sqlalchemy import select

    from creditdb.schema import AuditEvent

    t = AuditEvent.__table__
    stmt = select(t).order_by(t.c.id)
    if since:
        stmt = stmt.where(t.c.ts >= since.replace(tzinfo=dt.UTC))
    if action:
        stmt = stmt.where(t.c.action.startswith(action))
    from creditdb.schema import Institution

    inst = Institution.__table__
    with open_engine().connect() as conn:
        rows = conn.execute(stmt.limit(limit)).mappings().all()
        # a login bound to an institution is shown with its code (others are people or services)
        bound = dict(conn.execute(select(inst.c.db_role, inst.c.code).where(inst.c.db_role.is_not(None))).all())
    events = [dict(r) for r in rows]
    if as_json:
        emit_json(events)
        return
    if not events:
        click.echo("no audit events")
    for e in events:
        # who acted: the login that appended (PostgreSQL), else the actor name; a name the
        # caller gave is only an annotation ("as ...")
        who = e.get("db_role") or e["actor"]
        if who in bound:
            who = f"{who} ({bound[who]})"
        note = e["details"].get("as")
        details = ", ".join(f"{k}={v}" for k, v in e["details"].items() if k != "as")
        click.echo(f"{e['id']:>6}  {str(e['ts'])[:19]}  {who:<16} {e['action']:<22} {details}"
                   + (f"  (as {note!r})" if note else ""))


@audit.command("head")
@click.option("--json", "as_json", is_flag=True)
def head(as_json: bool) -> None:
    """Print the chain head: number of events and hash of the last one.

    Record it outside the database (a supervisor's notebook, a signed e-mail); later,
    'creditdb audit verify --head COUNT:HASH' fails if any event up to it, the last
    included, was deleted or changed.

    \b
    Example:
      creditdb audit head            # 128:3f5a...
      creditdb audit head --json
    """
    from creditdb import audit as chain

    with open_engine().connect() as conn:
        h = chain.head(conn)
    if as_json:
        emit_json({"events": h.events, "hash": h.hash, "head": str(h)})
    else:
        click.echo(str(h))


@audit.command("verify")
@click.option("--head", "head_", metavar="COUNT:HASH",
              help="The head recorded earlier ('creditdb audit head'): also detect deletion of later events, "
                   "the last included.")
@click.option("--json", "as_json", is_flag=True)
def verify(head_: str | None, as_json: bool) -> None:
    """Check the hash chain; name the first event edited, deleted or reordered.

    Without --head, deleting the LAST events leaves a shorter chain that is still
    consistent (on SQLite anyone holding the file can do that); give the head you
    recorded to detect it. Exit code 0 when the chain is intact, 1 when it is broken.

    \b
    Example:
      creditdb audit verify
      creditdb audit verify --head 128:3f5a0c...
    """
    from creditdb import audit as chain
    from creditdb.output import reject

    recorded = None
    if head_ is not None:
        try:
            recorded = chain.Head.parse(head_)
        except ValueError as exc:
            reject(str(exc), as_json=as_json)
    with open_engine().connect() as conn:
        check = chain.verify(conn, head=recorded)
    if as_json:
        emit_json({"ok": check.ok, "events": check.events, "first_bad_event": check.first_bad_id,
                   "problem": check.problem})
    elif check.ok:
        click.secho(f"audit trail intact: {check.events} events", fg="green")
    else:
        click.secho(f"audit trail BROKEN at event {check.first_bad_id}: {check.problem}", fg="red")
    if not check.ok:
        sys.exit(EXIT_REJECTED)
