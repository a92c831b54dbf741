"""The audit trail is a hash chain: direct SQL edits, deletes and reorders are detected."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from creditdb import audit


def _fill(db, n=5):
    with db.engine.begin() as conn:
        for i in range(n):
            audit.append(conn, "tester", "test.event", {"i": i, "note": "caf\u00e9"}, input_hash="ab" * 32)


def _check(db):
    with db.engine.connect() as conn:
        return audit.verify(conn)


def test_intact_chain_verifies(db):
    _fill(db)
    check = _check(db)
    assert check.ok and check.events == 5


def _bypass_triggers(conn) -> None:
    """A PostgreSQL superuser tampering has to switch the append-only trigger off first."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL session_replication_role = replica"))


@pytest.mark.parametrize("tamper, bad_id", [
    ("UPDATE audit_event SET actor = 'mallory' WHERE id = 3", 3),
    ("DELETE FROM audit_event WHERE id = 2", 3),
    ("UPDATE audit_event SET id = 99 WHERE id = 3; UPDATE audit_event SET id = 3 WHERE id = 4;"
     " UPDATE audit_event SET id = 4 WHERE id = 99", 3),  # swap events 3 and 4
])
def test_tampering_is_named(db, tamper, bad_id):
    _fill(db)
    with db.engine.begin() as conn:
        _bypass_triggers(conn)
        for statement in tamper.split(";"):
            conn.execute(text(statement))
    check = _check(db)
    assert not check.ok and check.first_bad_id == bad_id, check


def test_cli_log_and_verify(db, tmp_path):
    import json

    from click.testing import CliRunner

    from creditdb.cli import cli
    from tests import factories as F

    runner = CliRunner()
    runner.invoke(cli, ["institution", "add", "BK1", "--name", "B", "--kind", "bank", "--country", "JP"])
    path = F.write_csv(F.statements(3), tmp_path / "s.csv")
    assert runner.invoke(cli, ["submit", "statements", str(path), "-i", "BK1"]).exit_code == 0
    events = json.loads(runner.invoke(cli, ["audit", "log", "--json"]).output)
    assert [e["action"] for e in events] == ["submit.statements"]
    assert events[0]["input_hash"] == F.sha256_file(path)
    ok = runner.invoke(cli, ["audit", "verify", "--json"])
    assert ok.exit_code == 0 and json.loads(ok.output)["ok"] is True
    with db.engine.begin() as conn:
        _bypass_triggers(conn)
        conn.execute(text("UPDATE audit_event SET details = '{\"rows_loaded\": 999}' WHERE id = 1"))
    bad = runner.invoke(cli, ["audit", "verify"])
    assert bad.exit_code == 1 and "event 1" in bad.output


def test_deleting_the_last_events_is_detected_with_the_head(db):
    """Without a recorded head a shortened chain is consistent; with it, the deletion is named."""
    from click.testing import CliRunner

    from creditdb.cli import cli

    _fill(db, 5)
    r = CliRunner().invoke(cli, ["audit", "head", "--json"])
    head = r.output.strip()
    import json

    recorded = json.loads(head)
    assert recorded["events"] == 5 and len(recorded["hash"]) == 64
    ok = CliRunner().invoke(cli, ["audit", "verify", "--head", recorded["head"]])
    assert ok.exit_code == 0 and "intact: 5 events" in ok.output
    with db.engine.begin() as conn:
        _bypass_triggers(conn)
        conn.execute(text("DELETE FROM audit_event WHERE id >= 4"))
    plain = CliRunner().invoke(cli, ["audit", "verify"])
    assert plain.exit_code == 0 and "intact: 3 events" in plain.output  # the finding: not detectable alone
    r = CliRunner().invoke(cli, ["audit", "verify", "--head", recorded["head"], "--json"])
    out = json.loads(r.output)
    assert r.exit_code == 1 and not out["ok"] and out["first_bad_event"] == 4
    assert "the last events were deleted" in out["problem"]
    # a rebuilt chain of the same length with another last event is named too
    with db.engine.begin() as conn:
        for i in range(2):
            audit.append(conn, "mallory", "test.event", {"i": 10 + i})
    r = CliRunner().invoke(cli, ["audit", "verify", "--head", recorded["head"], "--json"])
    assert r.exit_code == 1 and "not the event recorded as the head" in json.loads(r.output)["problem"]
    bad = CliRunner().invoke(cli, ["audit", "verify", "--head", "5:xyz"])
    assert bad.exit_code == 1 and "COUNT:HASH" in bad.output
