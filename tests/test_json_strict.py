"""``--json`` output of the other commands parses with a strict parser (no NaN / Infinity),
on the cheap paths that run on a small database (success and refusal). The guarantee
commands are covered in ``tests/test_guarantee_json.py``; commands that train or score
models are covered by their own tests (they write through the same ``creditdb.output.to_json``).
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from creditdb.cli import cli
from tests import factories as F


def strict(text: str):
    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_registry_submission_and_audit_commands_emit_strict_json(sqlite_db, tmp_path):
    s = F.statements(4)
    s.loc[1, "sales"] = None  # a missing amount in the data
    files = {"statements": F.write_csv(s, tmp_path / "s.csv"), "loans": F.write_csv(F.loans(s), tmp_path / "l.csv"),
             "defaults": F.write_csv(F.defaults(s.iloc[[0]]), tmp_path / "d.csv")}
    runs = [
        (0, ["institution", "add", "BK1", "--name", "Bank", "--kind", "bank", "--country", "JP"]),
        (1, ["institution", "add", "BK1", "--name", "Bank", "--kind", "bank", "--country", "JP"]),
        (0, ["institution", "list"]),
        (None, ["submit", "statements", str(files["statements"]), "-i", "BK1"]),
        (None, ["submit", "loans", str(files["loans"]), "-i", "BK1"]),  # a row of an unsubmitted firm
        (None, ["submit", "defaults", str(files["defaults"]), "-i", "BK1"]),
        (1, ["submit", "loans", str(files["loans"]), "-i", "BK1"]),  # the same file again: refused
        (0, ["submissions", "list"]),
        (0, ["submissions", "show", "1"]),
        (0, ["audit", "log"]),
        (0, ["audit", "verify"]),
        (0, ["model", "list"]),
        (1, ["model", "show", "no-such-version"]),
    ]
    for want, args in runs:
        res = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
        assert want is None or res.exit_code == want, (args, res.output)
        out = strict(res.output)
        assert out is not None
