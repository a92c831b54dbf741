"""Faults: four institutions submitting at once, and a submission killed with SIGKILL mid-load.

Both run real ``creditdb`` processes (``tests/fault_hooks.py`` adds a start gate or a
hang point) against SQLite and PostgreSQL. SQLite serialises writers (WAL journal and a
30 s busy timeout, ``creditdb.db.make_engine``): the four submissions queue and all
commit. PostgreSQL runs them concurrently; firms shared by two banks are created once
(``INSERT ... ON CONFLICT DO NOTHING``) and the audit chain is appended under an
advisory lock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from creditdb.cli import cli
from creditdb.schema import AuditEvent, BorrowerLink, FinancialStatement, Firm, Submission
from tests import factories as F

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240  # seconds a child may take on a loaded machine before the test fails


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("CREDITDB_PROGRESS", None)
    return env


def _child(mode: str, opts: list[str], args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.fault_hooks", mode, *opts, "--", *args], cwd=cwd,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, what: str, procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        for p in procs:
            if p.poll() is not None:
                out, err = p.communicate()
                raise AssertionError(f"child ended (exit {p.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _count(db, model) -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.mark.slow
def test_four_institutions_submit_at_once(db, tmp_path):
    banks = {  # bank: (first firm, number of firms); BK1/BK2 and BK2/BK4 share firms
        "BK1": (0, 40), "BK2": (30, 40), "BK3": (200, 40), "BK4": (60, 20),
    }
    files = {}
    for bank, (start, n) in banks.items():
        _run("institution", "add", bank, "--name", f"Bank {bank}", "--kind", "bank", "--country", "JP")
        s = F.statements(n, bank=bank, start=start)
        files[bank] = F.write_csv(s, tmp_path / f"{bank}.csv")
    procs = {b: _child("gate", [str(tmp_path / f"{b}.ready"), str(tmp_path / "go")],
                       ["submit", "statements", str(f), "-i", b, "--json"], tmp_path) for b, f in files.items()}
    _wait_for(lambda: all((tmp_path / f"{b}.ready").exists() for b in banks), "all children ready",
              list(procs.values()))
    (tmp_path / "go").touch()
    results = {}
    for bank, p in procs.items():
        out, err = p.communicate(timeout=TIMEOUT)
        assert p.returncode == 0, f"{bank}: exit {p.returncode}\n{out}\n{err}"
        results[bank] = json.loads(out)
        assert results[bank]["status"] == "loaded"

    firms = set()
    for start, n in banks.values():
        firms |= set(range(start, start + n))
    rows = sum(n for _, n in banks.values())
    assert _count(db, FinancialStatement) == rows
    assert _count(db, Submission) == 4
    assert _count(db, Firm) == len(firms)
    assert _count(db, BorrowerLink) == rows
    assert sum(r["firms_new"] for r in results.values()) == len(firms)
    assert sum(r["firms_new"] + r["firms_linked"] for r in results.values()) == rows
    with db.engine.connect() as conn:
        # each bank's statements belong to its own submission, each firm once per bank
        per_sub = dict(conn.execute(select(FinancialStatement.submission_id, func.count())
                                    .group_by(FinancialStatement.submission_id)).all())
        firm_banks = conn.execute(select(BorrowerLink.firm_id, func.count())
                                  .group_by(BorrowerLink.firm_id)).all()
    assert sorted(per_sub.values()) == sorted(n for _, n in banks.values())
    assert {r["submission_id"] for r in results.values()} == set(per_sub)
    shared = len(firms & set(range(0, 40)) & set(range(30, 70))) + len(set(range(30, 70)) & set(range(60, 80)))
    assert sorted(c for _, c in firm_banks).count(2) == shared  # linked, not duplicated
    verdict = json.loads(_run("audit", "verify", "--json"))
    assert verdict["ok"] is True and verdict["events"] == 4


def _backends_in_transaction(db) -> int:
    with db.engine.connect() as conn:
        return conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL")).scalar_one()


@pytest.mark.slow
def test_sigkill_mid_load_leaves_database_unchanged_and_resubmission_succeeds(db, tmp_path):
    _run("institution", "add", "BK1", "--name", "B", "--kind", "bank", "--country", "JP")
    _run("submit", "statements", str(F.write_csv(F.statements(10, start=5000), tmp_path / "earlier.csv")), "-i", "BK1")
    s = F.statements(1000)
    path = F.write_csv(s, tmp_path / "big.csv")
    before = F.table_fingerprint(db.engine)

    # killed after the first data rows were written, then at the last moment before COMMIT
    for mode, expected in (("hang-after-write", ["financial_statement", str(len(s))]),
                           ("hang-before-commit", ["submit.statements", "2"])):
        flag = tmp_path / mode
        proc = _child(mode, [str(flag)], ["submit", "statements", str(path), "-i", "BK1"], tmp_path)
        try:
            _wait_for(flag.exists, f"{mode}: the load transaction reaching the hook", [proc])
            assert flag.read_text().split() == expected
            if db.kind == "postgres":  # the load transaction is open and has written
                assert _backends_in_transaction(db) == 1
            assert proc.poll() is None
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == -signal.SIGKILL
        if db.kind == "postgres":  # the server notices the dead client and rolls back
            _wait_for(lambda: _backends_in_transaction(db) == 0, "the server to roll back", [])
        assert F.table_fingerprint(db.engine) == before, mode

    assert F.table_fingerprint(db.engine) == before
    out = json.loads(_run("submit", "statements", str(path), "-i", "BK1", "--json"))
    assert out["status"] == "loaded" and out["rows_loaded"] == len(s)
    assert _count(db, FinancialStatement) == 10 + len(s)
    with db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == 2
    assert json.loads(_run("audit", "verify", "--json"))["ok"] is True
