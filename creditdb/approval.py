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

__all__ = ["ApprovalError", "approve", "approved_model", "auc_at_first_approval"]


class ApprovalError(ValueError):
    """The model cannot be approved (unknown, not validated, retired)."""


def auc_at_first_approval(conn: Connection, version: str) -> float | None:
    """AUC of the validation report the model was first approved on (None if never approved)."""
    from creditdb.schema import AuditEvent

    rows = conn.execute(select(AuditEvent.details).where(AuditEvent.action == "model.approve")
                        .order_by(AuditEvent.id)).scalars()
    for details in rows:
        if details.get("version") == version and details.get("auc_at_approval") is not None:
            return float(details["auc_at_approval"])
    return None


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
           "retired": previous.version if previous is not None else None,
           # the AUC the approval rests on, kept in the append-only trail: later validations
           # test the current AUC against it (ECB), not against the training run's slice
           "auc_at_approval": ((row.validation_report.get("discrimination") or {}).get("auc") or {}).get("auc")}
    audit.append(conn, actor or by, "model.approve", {**out, "note": note}, input_hash=row.artifact_sha256)
    return out
