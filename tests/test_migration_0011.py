"""Migration 0011 both ways on SQLite and PostgreSQL, with rows that refer to institutions."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from creditdb.db import alembic_config, current_revision, upgrade

ADD = ("INSERT INTO institution (code, name, kind, country, created_at) "
       "VALUES (:c, 'n', 'bank', 'JP', CURRENT_TIMESTAMP)")


def _refused(engine, code: str) -> bool:
    try:
        with engine.begin() as conn:
            conn.execute(text(ADD), {"c": code})
    except IntegrityError as exc:
        assert "ck_institution_code_format" in str(exc.orig)
        return True
    with engine.begin() as conn:  # accepted: take it out again (the owner may; tests only)
        conn.execute(text("DELETE FROM institution WHERE code = :c"), {"c": code})
    return False


def test_0011_down_and_up_keeps_rows(db):
    engine = db.engine
    url = engine.url.render_as_string(hide_password=False)
    cfg = alembic_config(url)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert current_revision(engine) == head
    with engine.begin() as conn:  # a row that refers to the institution (SQLite: a table rebuild would fail)
        conn.execute(text(ADD), {"c": "BK1"})
        conn.execute(text("INSERT INTO submission (institution_id, kind, file_name, file_sha256, status, strict, "
                          "rows_total, rows_loaded, rows_rejected, warnings, firms_new, firms_linked, report, "
                          "received_at) SELECT id, 'loans', 'f', 'x', 'loaded', false, 0, 0, 0, 0, 0, 0, '{}', "
                          "CURRENT_TIMESTAMP FROM institution WHERE code = 'BK1'"))
    assert _refused(engine, "A|B") and _refused(engine, "bk2") and not _refused(engine, "BK_2-X")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
    engine.dispose()
    assert current_revision(engine) == "0010"
    assert "trained_by_login" not in {c["name"] for c in inspect(engine).get_columns("model_version")}
    assert not _refused(engine, "A|B")  # the rule is gone with the revision
    upgrade(engine)
    engine.dispose()
    assert current_revision(engine) == head
    assert "trained_by_login" in {c["name"] for c in inspect(engine).get_columns("model_version")}
    assert _refused(engine, "A|B")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM submission")).scalar_one() == 1


def test_0011_stops_on_codes_that_break_the_rule(db):
    engine = db.engine
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
    engine.dispose()
    with engine.begin() as conn:
        conn.execute(text(ADD), {"c": "X|Y"})
    with pytest.raises(RuntimeError, match=r"'X\|Y'.*rename them first"):
        upgrade(engine)
    engine.dispose()
    assert current_revision(engine) == "0010"
