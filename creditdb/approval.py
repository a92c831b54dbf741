"""Model approval: the gate, four eyes, and retiring the previously approved model.

A model is approved only if it has a stored validation report that passes the gate of
the approval policy (``creditdb/policy/approval.toml``): at least ``min_defaults``
defaults in the validation sample and no red calibration traffic light (per grade, per
year, portfolio). When the stored validation holds a walk-forward backtest
(``model validate --backtest``), calibration is judged over the cycle instead: no red
light in its pooled view (per grade and portfolio, against the long-run PD); the
single-sample and per-year lights are then shown but do not refuse. A supervisor may approve a model that fails it only with an override
reason, which is stored in the approval note, written to the audit trail and returned.

Four eyes on PostgreSQL: only a supervisor login approves or retires, never the login
that trained the model (trigger ``model_version_four_eyes``, ``creditdb/sql/rls.sql``;
checked here first for a clear message). The embedded SQLite mode has no logins.

The history stays readable: retired versions keep their approval fields, and every
approval is an audit event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, text, update

from creditdb import audit
from creditdb.lookups import approved_model
from creditdb.schema import ModelVersion

#: the shipped approval policy
APPROVAL_POLICY = Path(__file__).with_name("policy") / "approval.toml"


__all__ = ["APPROVAL_POLICY", "ApprovalError", "ApprovalPolicy", "GateResult", "approve", "approved_model",
           "auc_at_first_approval", "gate", "load_policy"]


class ApprovalError(ValueError):
    """The model cannot be approved (unknown, not validated, retired, gate failed, four eyes)."""


def auc_at_first_approval(conn: Connection, version: str) -> float | None:
    """AUC of the validation report the model was first approved on (None if never approved)."""
    from creditdb.schema import AuditEvent

    rows = conn.execute(select(AuditEvent.details).where(AuditEvent.action == "model.approve")
                        .order_by(AuditEvent.id)).scalars()
    for details in rows:
        if details.get("version") == version and details.get("auc_at_approval") is not None:
            return float(details["auc_at_approval"])
    return None


@dataclass(frozen=True)
class ApprovalPolicy:
    """Gate thresholds. ``sha256`` identifies the policy file in the audit trail."""

    min_defaults: int = 30
    refuse_red_traffic_lights: bool = True
    source: str = "built-in"
    sha256: str | None = None


def load_policy(path: Path | None = None) -> ApprovalPolicy:
    """Read an approval policy TOML file (default :data:`APPROVAL_POLICY`)."""
    path = Path(path or APPROVAL_POLICY)
    try:
        raw = path.read_bytes()
        doc = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ApprovalError(f"cannot read the approval policy {path}: {exc}") from None
    unknown = set(doc) - {"min_defaults", "refuse_red_traffic_lights"}
    if unknown:
        raise ApprovalError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
    n = doc.get("min_defaults", 30)
    red = doc.get("refuse_red_traffic_lights", True)
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ApprovalError(f"{path}: min_defaults must be a non-negative integer (got {n!r})")
    if not isinstance(red, bool):
        raise ApprovalError(f"{path}: refuse_red_traffic_lights must be true or false (got {red!r})")
    return ApprovalPolicy(n, red, str(path), hashlib.sha256(raw).hexdigest())


@dataclass
class GateResult:
    """Which checks of the gate the validation report fails (empty: it passes)."""

    failures: list[str] = field(default_factory=list)
    defaults: int | None = None
    red: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def gate(report: dict[str, Any], policy: ApprovalPolicy) -> GateResult:
    """Check a stored validation report (``pipelines.validation_report``) against ``policy``.

    A report without the sample's default count fails the defaults check: the gate
    never passes for want of evidence.
    """
    out = GateResult()
    sample = report.get("sample") if isinstance(report, dict) else None
    d = sample.get("defaults") if isinstance(sample, dict) else None
    out.defaults = d if isinstance(d, int) else None
    if out.defaults is None:
        out.failures.append("the validation report does not say how many defaults its sample holds")
    elif out.defaults < policy.min_defaults:
        out.failures.append(f"the validation sample holds {out.defaults} defaults, fewer than {policy.min_defaults}")
    if policy.refuse_red_traffic_lights:
        bt = (report.get("backtest") if isinstance(report, dict) else None) or {}
        summary = bt.get("summary") if isinstance(bt, dict) else None
        if isinstance(summary, dict):
            # calibration over the cycle replaces the single-sample lights: the pooled view
            # decides, since one year's default rate moves with the business cycle
            if summary.get("passed") is not True:
                out.red += [f"walk-forward backtest, pooled {r}" for r in (summary.get("pooled_red") or ["view"])]
        else:
            cal = (report.get("calibration") if isinstance(report, dict) else None) or {}
            for r in cal.get("by_grade") or []:
                if r.get("traffic_light") == "red":
                    out.red.append(f"grade {r.get('grade')}")
            for r in cal.get("by_year") or []:
                if r.get("traffic_light") == "red":
                    out.red.append(f"year {r.get('year')}")
            pj = cal.get("portfolio_jeffreys") or {}
            if pj.get("traffic_light") == "red":
                out.red.append("portfolio (Jeffreys)")
        if out.red:
            out.failures.append("red traffic light: " + ", ".join(out.red))
    return out


def _check_login(conn: Connection, version: str, trained_by: str | None) -> str | None:
    """PostgreSQL: refuse a login that is not a supervisor, or that trained the model. Returns the login."""
    if conn.dialect.name != "postgresql":
        return None
    me = conn.execute(text(
        "SELECT CAST(session_user AS text) AS login, "
        " pg_has_role(session_user, 'creditdb_supervisor', 'MEMBER') AS supervisor, "
        " (pg_has_role(session_user, 'creditdb_operator', 'MEMBER') "
        "  OR pg_has_role(session_user, 'creditdb_agency', 'MEMBER') "
        "  OR pg_has_role(session_user, 'creditdb_institution', 'MEMBER')) AS other, "
        " (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user) AS super")).one()
    if me.super or not (me.other or me.supervisor):
        return me.login  # the owner or a superuser: not an application login (docs/security.md)
    if me.other and not me.supervisor:
        raise ApprovalError(f"login {me.login} may not approve or retire models: only a supervisor login "
                            "(creditdb_supervisor) may")
    if me.supervisor and trained_by is not None and trained_by == me.login:
        raise ApprovalError(f"login {me.login} trained model {version} and may not approve it (four eyes)")
    return me.login


def validation_provenance(conn: Connection, version: str, report: dict[str, Any]) -> dict[str, Any]:
    """Which ``model.validate`` audit event stored this report: the last such event of
    ``version`` and whether its output hash is the stored report's digest.

    The operator and the supervisor may write ``validation_report``; a report written by
    hand (not by ``creditdb model validate``) has no matching event, which the approval
    output says (``matches`` false).
    """
    import json

    t = audit.AuditEvent.__table__
    digest = hashlib.sha256(json.dumps(report, sort_keys=True, default=str).encode()).hexdigest()
    rows = conn.execute(select(t.c.id, t.c.actor, t.c.db_role, t.c.details, t.c.output_hash)
                        .where(t.c.action == "model.validate").order_by(t.c.id.desc())).all()
    ev = next((r for r in rows if (r.details or {}).get("version") == version), None)
    if ev is None:
        return {"event": None, "by": None, "matches": False}
    return {"event": ev.id, "by": ev.db_role or ev.actor, "matches": ev.output_hash == digest}


def approve(conn: Connection, version: str, by: str, note: str, actor: str | None = None,
            override: str | None = None, policy: ApprovalPolicy | None = None) -> dict:
    """Approve ``version`` inside the caller's transaction; returns what changed.

    ``override``: the supervisor's reason for approving a model that fails the gate
    (ignored, and not recorded, when the gate passes).
    """
    policy = policy or load_policy()
    t = ModelVersion.__table__
    row = conn.execute(select(t.c.id, t.c.status, t.c.validation_report, t.c.artifact_sha256,
                              t.c.trained_by_login).where(t.c.version == version)).first()
    if row is None:
        raise ApprovalError(f"no model version {version!r} (creditdb model list)")
    if row.status == "approved":
        raise ApprovalError(f"model {version} is already the approved model")
    if row.status == "retired":
        raise ApprovalError(f"model {version} was retired; train or choose a candidate")
    if not row.validation_report:
        raise ApprovalError(f"model {version} has no stored validation report: run "
                            f"'creditdb model validate {version}' first")
    login = _check_login(conn, version, row.trained_by_login)
    checked = gate(row.validation_report, policy)
    provenance = validation_provenance(conn, version, row.validation_report)
    override = (override or "").strip() or None
    if not checked.passed and override is None:
        raise ApprovalError(f"model {version} fails the approval gate ({policy.source}): "
                            + "; ".join(checked.failures)
                            + ". Approve anyway only with --override REASON (recorded in the audit trail)")
    if checked.passed:
        override = None
    stored_note = note
    if override is not None:
        stored_note = ((note + "\n") if note else "") + (
            f"OVERRIDE of the approval gate: {override} (failed: {'; '.join(checked.failures)})")
    previous = approved_model(conn)
    now = dt.datetime.now(dt.UTC)
    if previous is not None:
        conn.execute(update(t).where(t.c.id == previous.id).values(status="retired"))
    conn.execute(update(t).where(t.c.id == row.id).values(
        status="approved", approved_by=by, approved_at=now, approval_note=stored_note))
    out = {"version": version, "approved_by": by, "approved_at": now.isoformat(), "login": login,
           "retired": previous.version if previous is not None else None,
           "gate": {"passed": checked.passed, "failures": checked.failures, "defaults": checked.defaults,
                    "min_defaults": policy.min_defaults, "refuse_red_traffic_lights": policy.refuse_red_traffic_lights,
                    "policy": policy.source, "policy_sha256": policy.sha256},
           "override": override, "validation": provenance,
           # the AUC the approval rests on, kept in the append-only trail: later validations
           # test the current AUC against it (ECB), not against the training run's slice
           "auc_at_approval": ((row.validation_report.get("discrimination") or {}).get("auc") or {}).get("auc")}
    audit.append(conn, actor or by, "model.approve", {**out, "note": note}, input_hash=row.artifact_sha256)
    return out
