"""Errors a user can cause or meet under concurrency end with a message and exit code 1,
not a traceback: an over-long CREDITDB_ACTOR, and a deadlock between two submissions
(retried, since the aborted transaction wrote nothing)."""

from __future__ import annotations

import json

import psycopg.errors
import sqlalchemy.exc
from click.testing import CliRunner

from creditdb.cli import cli
from tests import factories as F


def _run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_overlong_actor_is_a_clear_error(sqlite_db, monkeypatch):
    monkeypatch.setenv("CREDITDB_ACTOR", "x" * 101)
    res = _run("institution", "add", "BK1", "--name", "B", "--kind", "bank", "--country", "JP")
    assert res.exit_code == 1 and "CREDITDB_ACTOR" in res.output and "100" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    monkeypatch.setenv("CREDITDB_ACTOR", "x" * 100)
    assert _run("institution", "add", "BK1", "--name", "B", "--kind", "bank", "--country", "JP").exit_code == 0


def test_submission_retried_after_deadlock(db, tmp_path, monkeypatch):
    import pipelines.ingest as ingest

    assert _run("institution", "add", "BK1", "--name", "B", "--kind", "bank", "--country", "JP").exit_code == 0
    path = F.write_csv(F.statements(4), tmp_path / "s.csv")
    real, calls = ingest.submit_file, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # as psycopg raises it from COPY, unwrapped
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        if len(calls) == 2:  # as SQLAlchemy wraps it
            raise sqlalchemy.exc.OperationalError("INSERT", {}, psycopg.errors.SerializationFailure("could not serialize"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "submit_file", flaky)
    res = _run("submit", "statements", str(path), "-i", "BK1", "--json")
    assert res.exit_code == 0, res.output
    assert len(calls) == 3 and json.loads(res.stdout)["rows_loaded"] == 4
    assert F.table_fingerprint(db.engine)["financial_statement"][0] == 4


def test_deadlock_that_persists_is_a_clear_error(sqlite_db, tmp_path, monkeypatch):
    import pipelines.ingest as ingest

    assert _run("institution", "add", "BK1", "--name", "B", "--kind", "bank", "--country", "JP").exit_code == 0
    path = F.write_csv(F.statements(2), tmp_path / "s.csv")
    before = F.table_fingerprint(sqlite_db.engine)

    def always(*args, **kwargs):
        raise psycopg.errors.DeadlockDetected("deadlock detected")

    monkeypatch.setattr(ingest, "submit_file", always)
    res = _run("submit", "statements", str(path), "-i", "BK1")
    assert res.exit_code == 1 and "run the command again" in res.output and "Traceback" not in res.output
    assert F.table_fingerprint(sqlite_db.engine) == before
