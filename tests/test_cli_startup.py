"""``creditdb <group> --help`` imports none of the heavy libraries, for every group.

Each group's help runs in a fresh interpreter (a test process has them all imported
already); the modules a group's help loaded are listed by the child itself. Speed is
measured by ``benchmarks/cli_startup.py``, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from creditdb.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sqlalchemy", "pandas", "numpy", "great_expectations", "lightgbm", "matplotlib", "scipy", "pyarrow")

_CHILD = """
import json, sys
from creditdb.cli import cli
args = json.loads(sys.argv[1])
try:
    cli(args, prog_name="creditdb")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "heavy": [m for m in json.loads(sys.argv[2]) if m in sys.modules]}), file=sys.stderr)
"""


def _help(args: list[str]) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(args), json.dumps(HEAVY)],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(proc.stderr.strip().splitlines()[-1]), proc.stdout


@pytest.mark.parametrize("group", sorted(COMMANDS))
def test_group_help_imports_no_heavy_library(group):
    got, out = _help([group, "--help"])
    assert got["code"] == 0 and "Usage: creditdb " + group in out
    assert got["heavy"] == [], f"'creditdb {group} --help' imported {got['heavy']}"


def test_a_usage_error_imports_no_heavy_library_either():
    got, _ = _help(["model", "no-such-command"])
    assert got["code"] == 2 and got["heavy"] == []
