"""Tamper-evident audit trail: an append-only hash chain of events.

Each event's ``hash`` is SHA-256 over its sequence number, time, actor, action,
details, input and output hashes and the previous event's hash. Editing, deleting or
reordering any stored event breaks the chain at that event, which ``verify`` names.

In PostgreSQL mode events are appended through the SECURITY DEFINER function
``creditdb_audit_append`` (deploy/sql/rls.sql): no role may UPDATE, DELETE or TRUNCATE
``audit_event`` (a trigger refuses it even for the owner), a bank's session cannot read
other institutions' events, and the server checks that each event extends the chain.
The actor hashed into an event is the appending LOGIN (``session_user``; the server
refuses any other): a name the caller gives (``CREDITDB_ACTOR``, ``--by``) is kept
only as the annotation ``details["as"]``. Appends are serialised by a row lock that
only the append function takes (no advisory lock any login could hold).

Deleting the *last* events leaves a shorter chain that is still internally consistent;
:func:`head` gives the count and hash of the last event, which a supervisor records
outside the database, and ``verify(conn, head=...)`` then detects any later deletion.
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
#: how often an append is retried when another transaction extended the chain first
_RETRIES = 50


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
    """Append one event inside the caller's transaction; returns its id.

    On PostgreSQL the stored actor is the session's login; ``actor``, when it differs,
    is kept as ``details["as"]`` (an annotation, not an identity).
    """
    details = json.loads(json.dumps(details, default=str))
    if conn.dialect.name != "postgresql":
        last = conn.execute(select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).first()
        event_id, prev = ((last.id + 1), last.hash) if last else (1, GENESIS)
        ts = dt.datetime.now(dt.UTC)
        h = event_hash(event_id, ts, actor, action, details, input_hash, output_hash, prev)
        conn.execute(AuditEvent.__table__.insert().values(
            id=event_id, ts=ts, actor=actor, action=action, details=details,
            input_hash=input_hash, output_hash=output_hash, prev_hash=prev, hash=h))
        return event_id
    from sqlalchemy.exc import DBAPIError

    login = conn.execute(text("SELECT CAST(session_user AS text)")).scalar_one()
    if actor and actor != login:
        details = {**details, "as": actor}
    for _ in range(_RETRIES):
        last = conn.execute(text("SELECT id, hash FROM creditdb_audit_tail() WHERE id IS NOT NULL")).first()
        event_id = (last.id + 1) if last else 1
        prev = last.hash if last else GENESIS
        ts = dt.datetime.now(dt.UTC)
        h = event_hash(event_id, ts, login, action, details, input_hash, output_hash, prev)
        try:
            with conn.begin_nested():  # the server's refusal must not abort the caller's transaction
                conn.execute(text(
                    "SELECT creditdb_audit_append(:id, :ts, :actor, :action, CAST(:details AS json), :ih, :oh, "
                    ":prev, :h)"),
                    {"id": event_id, "ts": ts, "actor": login, "action": action, "details": json.dumps(details),
                     "ih": input_hash, "oh": output_hash, "prev": prev, "h": h})
            return event_id
        except DBAPIError as exc:
            if "does not extend the chain" not in str(exc.orig):
                raise
            # another transaction appended (and committed) first: recompute on the new tail
    raise RuntimeError(f"could not append the audit event {action!r}: the chain kept moving ({_RETRIES} tries)")


@dataclass
class Head:
    """The chain head: number of events and hash of the last one (GENESIS when empty)."""

    events: int
    hash: str

    def __str__(self) -> str:
        return f"{self.events}:{self.hash}"

    @classmethod
    def parse(cls, value: str) -> Head:
        """``COUNT:HASH`` as printed by ``creditdb audit head``."""
        count, sep, h = value.strip().partition(":")
        if not sep or not count.isdigit() or len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
            raise ValueError(f"--head must be COUNT:HASH as printed by 'creditdb audit head' (got {value!r})")
        return cls(int(count), h)


def head(conn: Connection) -> Head:
    """The head of the chain as this session sees it (a bank's session: its own events only)."""
    t = AuditEvent.__table__
    row = conn.execute(select(t.c.id, t.c.hash).order_by(t.c.id.desc()).limit(1)).first()
    return Head(0, GENESIS) if row is None else Head(int(row.id), row.hash)


@dataclass
class ChainCheck:
    ok: bool
    events: int
    first_bad_id: int | None = None
    problem: str | None = None


def verify(conn: Connection, head: Head | None = None) -> ChainCheck:
    """Walk the chain in id order and name the first event that does not fit.

    With ``head`` (recorded earlier by :func:`head`), also fail when the chain no longer
    reaches that event or holds another event there: the last events were deleted (or
    the chain was rebuilt).
    """
    prev = GENESIS
    expected_id = 1
    count = 0
    rows = conn.execute(select(AuditEvent.__table__).order_by(AuditEvent.id))
    for row in rows:
        count += 1
        if row.id != expected_id:
            return ChainCheck(False, count, row.id, f"event {expected_id} is missing (deleted?) before event {row.id}")
        if row.prev_hash != prev:
            return ChainCheck(False, count, row.id,
                              f"event {row.id} does not follow the event before it (reordered or deleted)")
        h = event_hash(row.id, row.ts, row.actor, row.action, row.details, row.input_hash, row.output_hash,
                       row.prev_hash)
        if h != row.hash:
            return ChainCheck(False, count, row.id, f"event {row.id} was edited: its content does not match its hash")
        if head is not None and row.id == head.events and row.hash != head.hash:
            return ChainCheck(False, count, row.id, f"event {row.id} is not the event recorded as the head "
                                                    f"(hash {row.hash[:12]}, recorded {head.hash[:12]})")
        prev = row.hash
        expected_id += 1
    if head is not None and count < head.events:
        return ChainCheck(False, count, count + 1, f"the chain ends at event {count}, but {head.events} events were "
                                                   "recorded as its head: the last events were deleted")
    return ChainCheck(True, count)
