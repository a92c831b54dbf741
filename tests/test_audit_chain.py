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


@pytest.mark.parametrize("tamper, bad_id", [
    ("UPDATE audit_event SET actor = 'mallory' WHERE id = 3", 3),
    ("DELETE FROM audit_event WHERE id = 2", 3),
    ("UPDATE audit_event SET id = 99 WHERE id = 3; UPDATE audit_event SET id = 3 WHERE id = 4;"
     " UPDATE audit_event SET id = 4 WHERE id = 99", 3),  # swap events 3 and 4
])
def test_tampering_is_named(db, tamper, bad_id):
    _fill(db)
    with db.engine.begin() as conn:
        for statement in tamper.split(";"):
            conn.execute(text(statement))
    check = _check(db)
    assert not check.ok and check.first_bad_id == bad_id, check
