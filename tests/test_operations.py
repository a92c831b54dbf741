"""Operations procedures of deploy/OPERATIONS.md run against the real PostgreSQL server:
backup with pg_dump, restore with pg_restore into a new database, and check it."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from creditdb.cli import cli
from creditdb.db import make_engine
from tests import conftest
from tests import factories as F

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(tmp_path, _sqlite_template, monkeypatch):
    database, cleanup = conftest._new_db("postgres", tmp_path, _sqlite_template)
    monkeypatch.setenv("CREDITDB_URL", database.url)
    monkeypatch.setenv("CREDITDB_PSEUDONYM_KEY", conftest.TEST_KEY)
    monkeypatch.setenv("CREDITDB_ACTOR", "operator")
    monkeypatch.chdir(tmp_path)
    yield database
    cleanup()


def _cli(*args: str) -> str:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def _conn_args(url: str) -> list[str]:
    u = make_url(url)
    return ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]


def test_backup_restore_roundtrip(pg, tmp_path, monkeypatch):
    for tool in ("pg_dump", "pg_restore"):
        assert shutil.which(tool), f"{tool} is needed for the backup procedure (postgresql-client)"
    _cli("institution", "add", "BK1", "--name", "Bank", "--kind", "bank", "--country", "JP")
    s = F.statements(20)
    _cli("submit", "statements", str(F.write_csv(s, tmp_path / "s.csv")), "-i", "BK1")
    _cli("submit", "loans", str(F.write_csv(F.loans(s), tmp_path / "l.csv")), "-i", "BK1")
    before = F.table_fingerprint(pg.engine)
    assert before["financial_statement"][0] == 20

    dump = tmp_path / "creditdb.dump"
    src = make_url(pg.url)
    subprocess.run(["pg_dump", *_conn_args(pg.url), "-Fc", "-f", str(dump), src.database], check=True)
    restored = f"creditdb_restore_{uuid.uuid4().hex[:8]}"
    admin = create_engine(conftest.PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{restored}"'))
    try:
        subprocess.run(["pg_restore", *_conn_args(pg.url), "--no-owner", "--exit-on-error", "-d", restored,
                        str(dump)], check=True)
        url = src.set(database=restored).render_as_string(hide_password=False)
        engine = make_engine(url)
        try:
            assert F.table_fingerprint(engine) == before  # every table, row counts and checksums
            monkeypatch.setenv("CREDITDB_URL", url)
            assert json.loads(_cli("audit", "verify", "--json"))["ok"] is True
            init = json.loads(_cli("init", "--json"))
            assert init["from_revision"] == init["revision"]  # already at head: the upgrade step is a no-op
            # the restored database takes new work (sequences restored with the data)
            more = F.statements(5, start=100)
            out = json.loads(_cli("submit", "statements", str(F.write_csv(more, tmp_path / "m.csv")), "-i", "BK1",
                                  "--json"))
            assert out["status"] == "loaded" and out["rows_loaded"] == 5
            assert F.table_fingerprint(engine)["financial_statement"][0] == 25
            assert json.loads(_cli("audit", "verify", "--json"))["ok"] is True
        finally:
            engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)'))
        admin.dispose()
