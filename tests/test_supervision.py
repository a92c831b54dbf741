"""Supervisor workflow end to end: validate -> approve -> scoring uses the approved model;
reproduce says exactly what differs when the data changed."""

from __future__ import annotations

import json

from sqlalchemy import select, text

from creditdb.schema import ModelVersion, Score
from tests.test_rating_db import CUTOFF, load, run


def test_validate_approve_score_reproduce(db, tmp_path):
    load(db.engine, tmp_path, firms=800)
    v1 = json.loads(run("model", "train", "--cutoff", CUTOFF, "--json").output)["version"]
    # approval is refused without a stored validation report
    refused = run("model", "approve", v1, "--by", "Dr. Sato", ok=False)
    assert refused.exit_code == 1 and "no stored validation report" in refused.output
    report = tmp_path / "report.html"
    out = run("model", "validate", v1, "--html", str(report), "--json", str(tmp_path / "v.json"))
    assert "validated" in out.output
    results = json.loads((tmp_path / "v.json").read_text())
    assert 0.5 < results["discrimination"]["auc"]["auc"] <= 1
    assert results["calibration"]["by_grade"] and results["stability"] and results["drivers"]
    assert "data:image/png;base64," in report.read_text()
    with db.engine.connect() as conn:
        stored = conn.execute(select(ModelVersion.validation_report).where(ModelVersion.version == v1)).scalar_one()
    assert stored["discrimination"]["auc"]["auc"] == results["discrimination"]["auc"]["auc"]

    # a second candidate (another seed) exists but is not approved: scoring must use the approved one
    v2 = json.loads(run("model", "train", "--cutoff", CUTOFF, "--seed", "99", "--json").output)["version"]
    assert v2 != v1
    # 800 firms leave 16 defaults in the out-of-time sample: the gate (30) refuses, the
    # supervisor approves only with an override, which the audit trail keeps
    gated = run("model", "approve", v1, "--by", "Dr. Sato", "--json", ok=False)
    assert gated.exit_code == 1 and "fails the approval gate" in gated.output and "defaults" in gated.output
    approved = json.loads(run("model", "approve", v1, "--by", "Dr. Sato", "--note", "committee",
                              "--override", "test portfolio of 800 firms", "--rescore", "--json").output)
    assert approved["ok"] and approved["retired"] is None and approved["override"] == "test portfolio of 800 firms"
    assert approved["gate"]["defaults"] == results["sample"]["defaults"] < 30
    assert approved["validation"]["matches"]  # the report 'model validate' stored, by its audit hash
    assert approved["rescored"]["firms"] > 0  # --rescore scored every firm with the approved model
    assert approved["auc_at_approval"] == results["discrimination"]["auc"]["auc"]
    # before approval there was no initial AUC; a validation after it tests against the approval's AUC
    assert results["discrimination"]["ecb_auc_test"] is None
    run("model", "validate", v1, "--sample", "all", "--json", str(tmp_path / "v2.json"))
    later = json.loads((tmp_path / "v2.json").read_text())
    assert later["discrimination"]["ecb_auc_test"]["auc_initial"] == approved["auc_at_approval"]
    with db.engine.connect() as conn:
        used = set(conn.execute(select(ModelVersion.version).join(Score, Score.model_version_id == ModelVersion.id))
                   .scalars())
    assert used == {v1}

    same = json.loads(run("model", "reproduce", v1, "--json").output)
    assert same["reproduced"] and same["pds"]["identical"] and same["checks"]["libraries"]["match"]

    # change one labelled statement in place (as an attacker or a bug would): reproduction fails and says why
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE financial_statement SET net_income = net_income - 1e9 "
                          "WHERE id = (SELECT min(id) FROM financial_statement)"))
    diff = run("model", "reproduce", v1, "--json", ok=False)
    assert diff.exit_code == 1
    out = json.loads(diff.output)
    assert not out["reproduced"] and out["checks"]["data_fingerprint"]["match"] is False
    assert any("training data differ" in c for c in out["causes"])
    log = json.loads(run("audit", "log", "--json").output)
    actions = [e["action"] for e in log]
    assert {"model.train", "model.validate", "model.approve", "model.reproduce"} <= set(actions)
    assert json.loads(run("audit", "verify", "--json").output)["ok"]
