"""Model approval: only a validated model can be approved; approving retires the old one.

The history stays readable: retired versions keep their approval fields, and every
approval is an audit event.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, select, update

from creditdb import audit
from creditdb.lookups import approved_model
from creditdb.schema import ModelVersion

__all__ = ["ApprovalError", "approve", "approved_model"]


class ApprovalError(ValueError):
    """The model cannot be approved (unknown, not validated, retired)."""


def approve(conn: Connection, version: str, by: str, note: str, actor: str | None = None) -> dict:
    """Approve ``version`` inside the caller's transaction; returns what changed."""
    t = ModelVersion.__table__
    row = conn.execute(select(t.c.id, t.c.status, t.c.validation_report, t.c.artifact_sha256)
                       .where(t.c.version == version)).first()
    if row is None:
        raise ApprovalError(f"no model version {version!r} (creditdb model list)")
    if row.status == "approved":
        raise ApprovalError(f"model {version} is already the approved model")
    if row.status == "retired":
        raise ApprovalError(f"model {version} was retired; train or choose a candidate")
    if not row.validation_report:
        raise ApprovalError(f"model {version} has no stored validation report: run "
                            f"'creditdb model validate {version}' first")
    previous = approved_model(conn)
    now = dt.datetime.now(dt.UTC)
    if previous is not None:
        conn.execute(update(t).where(t.c.id == previous.id).values(status="retired"))
    conn.execute(update(t).where(t.c.id == row.id).values(
        status="approved", approved_by=by, approved_at=now, approval_note=note))
    out = {"version": version, "approved_by": by, "approved_at": now.isoformat(),
           "retired": previous.version if previous is not None else None}
    audit.append(conn, actor or by, "model.approve", {**out, "note": note}, input_hash=row.artifact_sha256)
    return out
