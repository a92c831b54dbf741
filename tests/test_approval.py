"""Approval refuses unvalidated models and models failing the gate, and retires the previously approved one."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from creditdb import audit
from creditdb.approval import ApprovalError, ApprovalPolicy, approve, approved_model, gate, load_policy
from creditdb.schema import ModelVersion

#: the shape of pipelines.validation_report's results, as far as the gate reads it
PASSING = {"sample": {"n": 4000, "defaults": 40},
           "calibration": {"by_grade": [{"grade": "A", "traffic_light": "green"},
                                        {"grade": "B", "traffic_light": "yellow"}],
                           "by_year": [{"year": 2021, "traffic_light": "green"}],
                           "portfolio_jeffreys": {"traffic_light": "green"}}}


def _model(conn, version: str, validated: bool, report: dict | None = None) -> None:
    text = f"tree model {version}"
    conn.execute(ModelVersion.__table__.insert().values(
        version=version, created_by="t", status="candidate", artifact=text,
        artifact_sha256=hashlib.sha256(text.encode()).hexdigest(), spec={}, data_fingerprint="0" * 64,
        code_version="x", seed=1, metrics={}, validation_report=(report or PASSING) if validated else None))


def test_approval_rules_and_history(db):
    with db.engine.begin() as conn:
        _model(conn, "m1", validated=True)
        _model(conn, "m2", validated=True)
        _model(conn, "m3", validated=False)
    with db.engine.begin() as conn, pytest.raises(ApprovalError, match="no stored validation report"):
        approve(conn, "m3", by="supervisor", note="")
    with db.engine.begin() as conn:
        assert approved_model(conn) is None
        approve(conn, "m1", by="Dr. Sato", note="annual review 2026")
    with db.engine.begin() as conn:
        out = approve(conn, "m2", by="Dr. Sato", note="replaces m1")
    assert out["retired"] == "m1"
    with db.engine.connect() as conn:
        rows = {r.version: r for r in conn.execute(select(ModelVersion.__table__))}
        assert approved_model(conn).version == "m2"
        assert audit.verify(conn).ok
    assert rows["m1"].status == "retired" and rows["m1"].approved_by == "Dr. Sato"  # history kept
    assert rows["m1"].approval_note == "annual review 2026"
    assert rows["m2"].status == "approved" and rows["m3"].status == "candidate"
    with db.engine.begin() as conn, pytest.raises(ApprovalError, match="retired"):
        approve(conn, "m1", by="x", note="")


def test_gate_reads_defaults_and_every_traffic_light():
    policy = load_policy()
    assert (policy.min_defaults, policy.refuse_red_traffic_lights) == (30, True)  # the shipped file
    assert gate(PASSING, policy).passed
    few = {**PASSING, "sample": {"n": 6, "defaults": 1}}  # the 6 statements, 1 default
    assert gate(few, policy).failures == ["the validation sample holds 1 defaults, fewer than 30"]
    assert gate({**PASSING, "sample": {"defaults": 29}}, policy).failures
    assert gate({**PASSING, "sample": {"defaults": 30}}, policy).passed
    assert not gate({"ok": True}, policy).passed  # no evidence is no pass
    cal = PASSING["calibration"]
    for key, red in (("by_grade", [{"grade": "C", "traffic_light": "red"}]),
                     ("by_year", [{"year": 2022, "traffic_light": "red"}])):
        res = gate({**PASSING, "calibration": {**cal, key: red}}, policy)
        assert not res.passed and res.red == [("grade C" if key == "by_grade" else "year 2022")]
    res = gate({**PASSING, "calibration": {**cal, "portfolio_jeffreys": {"traffic_light": "red"}}}, policy)
    assert res.red == ["portfolio (Jeffreys)"]
    lax = ApprovalPolicy(min_defaults=1, refuse_red_traffic_lights=False)
    assert gate({**few, "calibration": {**cal, "portfolio_jeffreys": {"traffic_light": "red"}}}, lax).passed


def test_gate_refuses_unless_overridden_and_records_the_reason(db):
    thin = {**PASSING, "sample": {"n": 6, "defaults": 1},
            "calibration": {**PASSING["calibration"], "portfolio_jeffreys": {"traffic_light": "red"}}}
    with db.engine.begin() as conn:
        _model(conn, "thin", validated=True, report=thin)
    with db.engine.begin() as conn, pytest.raises(ApprovalError,
                                                  match="fails the approval gate.*1 defaults.*portfolio"):
        approve(conn, "thin", by="Dr. Sato", note="")
    with db.engine.begin() as conn:
        out = approve(conn, "thin", by="Dr. Sato", note="committee", override="pilot only, re-validate in 2027")
    assert out["override"] == "pilot only, re-validate in 2027" and not out["gate"]["passed"]
    with db.engine.connect() as conn:
        row = conn.execute(select(ModelVersion.__table__).where(ModelVersion.version == "thin")).one()
        ev = conn.execute(select(audit.AuditEvent.__table__).order_by(audit.AuditEvent.id.desc()).limit(1)).one()
        assert audit.verify(conn).ok
    assert row.status == "approved" and "OVERRIDE of the approval gate: pilot only" in row.approval_note
    assert ev.action == "model.approve" and ev.details["override"] == "pilot only, re-validate in 2027"
    assert ev.details["gate"]["failures"][0] == "the validation sample holds 1 defaults, fewer than 30"
    from creditdb.approval import APPROVAL_POLICY

    assert ev.details["gate"]["policy_sha256"] == hashlib.sha256(APPROVAL_POLICY.read_bytes()).hexdigest()
