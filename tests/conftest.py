"""Shared fixtures: a fresh, migrated database on SQLite and on PostgreSQL.

PostgreSQL tests use ``CREDITDB_TEST_PG_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``). When the server cannot be
reached they are skipped with the reason shown, except under CI (``CI`` set), where
they fail: CI must exercise PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from creditdb.db import make_engine, upgrade

PG_URL = os.environ.get("CREDITDB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_KEY = "test-pseudonym-key-not-secret"
_pg_state: dict = {}


def _pg_admin():
    if "engine" not in _pg_state:
        engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            _pg_state["engine"] = engine
        except Exception as exc:  # noqa: BLE001 - any failure means unreachable
            _pg_state["engine"] = None
            _pg_state["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    if _pg_state["engine"] is None:
        msg = f"PostgreSQL unreachable at {PG_URL} ({_pg_state['error']})"
        if os.environ.get("CI"):
            pytest.fail(msg + " -- CI must run the PostgreSQL tests", pytrace=False)
        pytest.skip(msg)
    return _pg_state["engine"]


def _pg_url(dbname: str) -> str:
    base = PG_URL.rsplit("/", 1)[0]
    return f"{base}/{dbname}"


def _pg_template() -> str:
    if "template" not in _pg_state:
        admin = _pg_admin()
        name = f"creditdb_tmpl_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            # the cluster-wide group roles the migration is about to create, if missing:
            # those this session creates are dropped again at its end (pytest_sessionfinish)
            _pg_state["groups_before"] = set(conn.execute(text(
                "SELECT rolname FROM pg_roles WHERE rolname LIKE 'creditdb\\_%'")).scalars())
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine = make_engine(_pg_url(name))
        upgrade(engine)
        from creditdb.security import set_key

        with engine.begin() as conn:  # the server's key = the Python tests' key: same pseudonyms
            set_key(conn, TEST_KEY.encode("utf-8"))
        engine.dispose()
        _pg_state["template"] = name
    return _pg_state["template"]


class Db:
    """A fresh database for one test: ``url``, ``engine``, ``kind`` (sqlite|postgres)."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind, self.url = kind, url
        self.engine = make_engine(url)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tmpl") / "template.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def _new_db(kind: str, tmp_path: Path, sqlite_template: Path):
    if kind == "sqlite":
        path = tmp_path / "creditdb.sqlite"
        shutil.copy(sqlite_template, path)
        db = Db("sqlite", f"sqlite:///{path}")
        return db, lambda: db.engine.dispose()
    template = _pg_template()
    admin = _pg_admin()
    name = f"creditdb_t_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    db = Db("postgres", _pg_url(name))

    def cleanup():
        db.engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return db, cleanup


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path, _sqlite_template, monkeypatch):
    """A fresh migrated database, on SQLite and on PostgreSQL; CLI env points at it."""
    database, cleanup = _new_db(request.param, tmp_path, _sqlite_template)
    monkeypatch.setenv("CREDITDB_URL", database.url)
    monkeypatch.setenv("CREDITDB_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("CREDITDB_ACTOR", "pytest")
    monkeypatch.chdir(tmp_path)
    yield database
    cleanup()


@pytest.fixture
def sqlite_db(tmp_path, _sqlite_template, monkeypatch):
    database, cleanup = _new_db("sqlite", tmp_path, _sqlite_template)
    monkeypatch.setenv("CREDITDB_URL", database.url)
    monkeypatch.setenv("CREDITDB_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.chdir(tmp_path)
    yield database
    cleanup()


def pytest_sessionfinish(session, exitstatus):
    engine = _pg_state.get("engine")
    if engine is not None and _pg_state.get("template"):
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{_pg_state["template"]}" WITH (FORCE)'))
        _drop_created_groups(engine)


def _drop_created_groups(engine) -> None:
    """Drop the creditdb group roles this session created. A group still granted something in
    another database (a concurrent test session, a real deployment) cannot be dropped and stays."""
    from creditdb.security import GROUP_ROLES

    for role in sorted(set(GROUP_ROLES) - _pg_state.get("groups_before", set(GROUP_ROLES))):
        with engine.connect() as conn, contextlib.suppress(Exception):  # in use elsewhere: leave it
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
