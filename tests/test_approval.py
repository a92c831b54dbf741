"""Approval refuses unvalidated models and retires the previously approved one."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from creditdb import audit
from creditdb.approval import ApprovalError, approve, approved_model
from creditdb.schema import ModelVersion


def _model(conn, version: str, validated: bool) -> None:
    text = f"tree model {version}"
    conn.execute(ModelVersion.__table__.insert().values(
        version=version, created_by="t", status="candidate", artifact=text,
        artifact_sha256=hashlib.sha256(text.encode()).hexdigest(), spec={}, data_fingerprint="0" * 64,
        code_version="x", seed=1, metrics={}, validation_report={"ok": True} if validated else None))


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
