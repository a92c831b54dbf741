"""Tamper-evident audit trail: an append-only hash chain of events.

Each event's ``hash`` is SHA-256 over its sequence number, time, actor, action,
details, input and output hashes and the previous event's hash. Editing, deleting or
reordering any stored event breaks the chain at that event, which ``verify`` names.

In PostgreSQL mode events are appended through the SECURITY DEFINER function
``creditdb_audit_append`` (deploy/sql/rls.sql): no role may UPDATE, DELETE or TRUNCATE
``audit_event`` (a trigger refuses it even for the owner), a bank's session cannot read
other institutions' events, and the server checks that each event extends the chain
and records the appending login in ``db_role``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, text

from creditdb.schema import AuditEvent

GENESIS = "0" * 64
_LOCK_ID = 727_001  # PostgreSQL advisory lock serialising appends


def _canonical(event_id: int, ts: dt.datetime, actor: str, action: str, details: dict[str, Any],
               input_hash: str | None, output_hash: str | None, prev_hash: str) -> bytes:
    ts_utc = ts.astimezone(dt.UTC) if ts.tzinfo else ts.replace(tzinfo=dt.UTC)
    body = {
        "id": event_id,
        "ts": ts_utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": actor,
        "action": action,
        "details": details,
        "input_hash": input_hash,
        "output_hash": output_hash,
        "prev_hash": prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def event_hash(*args: Any) -> str:
    return hashlib.sha256(_canonical(*args)).hexdigest()


def append(conn: Connection, actor: str, action: str, details: dict[str, Any],
           input_hash: str | None = None, output_hash: str | None = None) -> int:
    """Append one event inside the caller's transaction; returns its id."""
    pg = conn.dialect.name == "postgresql"
    if pg:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
        last = conn.execute(text("SELECT id, hash FROM creditdb_audit_tail() WHERE id IS NOT NULL")).first()
    else:
        last = conn.execute(select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).first()
    event_id = (last.id + 1) if last else 1
    prev = last.hash if last else GENESIS
    ts = dt.datetime.now(dt.UTC)
    details = json.loads(json.dumps(details, default=str))
    h = event_hash(event_id, ts, actor, action, details, input_hash, output_hash, prev)
    if pg:
        conn.execute(text(
            "SELECT creditdb_audit_append(:id, :ts, :actor, :action, CAST(:details AS json), :ih, :oh, :prev, :h)"),
            {"id": event_id, "ts": ts, "actor": actor, "action": action, "details": json.dumps(details),
             "ih": input_hash, "oh": output_hash, "prev": prev, "h": h})
        return event_id
    conn.execute(AuditEvent.__table__.insert().values(
        id=event_id, ts=ts, actor=actor, action=action, details=details,
        input_hash=input_hash, output_hash=output_hash, prev_hash=prev, hash=h))
    return event_id


@dataclass
class ChainCheck:
    ok: bool
    events: int
    first_bad_id: int | None = None
    problem: str | None = None


def verify(conn: Connection) -> ChainCheck:
    """Walk the chain in id order and name the first event that does not fit."""
    prev = GENESIS
    expected_id = 1
    count = 0
    rows = conn.execute(select(AuditEvent.__table__).order_by(AuditEvent.id))
    for row in rows:
        count += 1
        if row.id != expected_id:
            return ChainCheck(False, count, row.id, f"event {expected_id} is missing (deleted?) before event {row.id}")
        if row.prev_hash != prev:
            return ChainCheck(False, count, row.id, f"event {row.id} does not follow the event before it (reordered or deleted)")
        h = event_hash(row.id, row.ts, row.actor, row.action, row.details, row.input_hash, row.output_hash, row.prev_hash)
        if h != row.hash:
            return ChainCheck(False, count, row.id, f"event {row.id} was edited: its content does not match its hash")
        prev = row.hash
        expected_id += 1
    return ChainCheck(True, count)
