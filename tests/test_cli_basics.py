"""CLI plumbing: help, lazy imports, init, institutions, exit codes, docs in sync."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from creditdb.cli import COMMANDS, cli

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_commands_without_heavy_imports():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from creditdb.cli import cli\n"
        "r = CliRunner().invoke(cli, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('pandas', 'great_expectations', 'lightgbm', 'sqlalchemy', 'matplotlib') if m in sys.modules]\n"
        "print(repr(heavy)); print(r.output)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.splitlines()[0] == "[]"
    for name in COMMANDS:
        assert name in out


def test_every_command_has_an_example():
    runner = CliRunner()

    def walk(cmd, path):
        import click

        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), path + [name])
        else:
            res = runner.invoke(cli, path[1:] + ["--help"])
            assert res.exit_code == 0, (path, res.output)
            assert "Example" in res.output, f"'{' '.join(path)}' --help has no example"

    walk(cli, ["creditdb"])


def test_usage_error_exit_2(sqlite_db):
    res = CliRunner().invoke(cli, ["institution", "add", "X", "--name", "n", "--kind", "alien", "--country", "JP"])
    assert res.exit_code == 2


def test_init_and_institutions(db):
    runner = CliRunner()
    out = json.loads(runner.invoke(cli, ["init", "--json"]).output)
    from alembic.script import ScriptDirectory

    from creditdb.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config(db.url)).get_current_head()
    assert out["ok"] and out["revision"] == head
    assert runner.invoke(cli, ["institution", "add", "CGC1", "--name", "Tokyo CGC", "--kind",
                               "guarantee_corporation", "--country", "jp"]).exit_code == 0
    again = runner.invoke(cli, ["institution", "add", "CGC1", "--name", "x", "--kind", "bank", "--country", "JP"])
    assert again.exit_code == 1 and "already exists" in again.output
    listed = json.loads(runner.invoke(cli, ["institution", "list", "--json"]).output)
    assert listed == [{"id": listed[0]["id"], "code": "CGC1", "name": "Tokyo CGC",
                       "kind": "guarantee_corporation", "country": "JP"}]


def test_data_dictionary_doc_is_current():
    from pipelines.dictionary_doc import render

    assert (ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8") == render(), \
        "regenerate: python -m pipelines.dictionary_doc > docs/data-dictionary.md"


def test_suites_cover_every_required_column():
    from pipelines import dictionary as D
    from pipelines.validate import load_suite

    for kind in D.KINDS:
        exps = load_suite(kind)["expectations"]
        required = {e["kwargs"]["column"] for e in exps if e["meta"]["rule"] == "column.required"}
        assert required == set(D.required(kind))
        assert all(e["meta"]["severity"] in ("blocking", "row", "warning") for e in exps)
