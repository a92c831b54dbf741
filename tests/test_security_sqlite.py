"""The embedded SQLite mode has no roles: the access-control commands say so instead of pretending."""

from __future__ import annotations

from click.testing import CliRunner

from creditdb.cli import cli


def test_security_commands_refuse_sqlite(sqlite_db):
    runner = CliRunner()
    r = runner.invoke(cli, ["institution", "add", "BK1", "--name", "B", "--kind", "bank", "--country", "JP",
                            "--db-role", "bk1_app"])
    assert r.exit_code == 1 and "SQLite mode has no roles" in r.output
    assert "BK1" not in runner.invoke(cli, ["institution", "list"]).output  # nothing half-done
    for args in (["security", "apply"], ["security", "bind", "BK1", "x"], ["security", "rotate-key", "--yes"]):
        r = runner.invoke(cli, args)
        assert r.exit_code == 1 and "needs PostgreSQL" in r.output, (args, r.output)
