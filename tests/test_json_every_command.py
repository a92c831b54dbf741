"""Every command with ``--json`` writes strict JSON (no NaN / Infinity; missing is null),
parsed with a strict parser after a small end-to-end run on SQLite (the demo, then each
command on its data). The list of commands is read from the CLI, so a new command with
``--json`` fails this test until a case covers it. The guarantee commands have their own
cases (success and refusal) in ``tests/test_guarantee_json.py``."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd
import pytest
from click.testing import CliRunner

from creditdb.cli import cli

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data"
#: commands whose strict-JSON cases live in another test file
ELSEWHERE = {"guarantee issue", "guarantee list", "guarantee price", "guarantee price-book", "guarantee quote"}


def strict(text: str):
    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def json_commands() -> set[str]:
    """Every command path (e.g. ``model show``) that has a ``--json`` option, groups included."""
    found: set[str] = set()

    def walk(cmd: click.Command, path: list[str]) -> None:
        if any(p.name == "as_json" for p in cmd.params):
            found.add(" ".join(path))
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None:
                    walk(sub, [*path, name])

    walk(cli, [])
    return found


def test_every_json_command_emits_strict_json(sqlite_db, tmp_path):
    demo_dir = tmp_path / "demo"
    ran: dict[str, list] = {}

    def run(*args: str, want: int | None = 0):
        res = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
        assert want is None or res.exit_code == want, (args, res.output)
        try:
            out = strict(res.output)
        except ValueError as exc:
            raise AssertionError(f"{args}: not strict JSON ({exc}): {res.output[:500]!r}") from None
        path = [a for a in args[:2] if not a.startswith("-")]
        key = " ".join(path) if " ".join(path) in json_commands() else path[0]
        ran.setdefault(key, []).append(out)
        return out

    summary = run("demo", "--firms", "300", "--years", "6", "--banks", "2", "--out", str(demo_dir))
    version = summary["rating"]["version"]
    run("init")
    run("institution", "list")
    run("institution", "add", "BK9", "--name", "Ninth Bank", "--kind", "bank", "--country", "JP")
    run("institution", "add", "bad|code", "--name", "x", "--kind", "bank", "--country", "JP", want=1)
    run("institution", "profile", "BK1")
    run("submissions", "list")
    run("submissions", "show", "1")
    run("submit", "statements", str(demo_dir / "BK1" / "statements.csv"), "-i", "BK1", want=None)  # duplicate
    run("submit", "loans", str(demo_dir / "BK2" / "loans.csv"), "-i", "BK1", want=None)  # another bank's keys
    run("submit", "defaults", str(demo_dir / "BK1" / "defaults.csv"), "-i", "BK1", want=None)
    run("audit", "log")
    run("audit", "verify")
    head = run("audit", "head")
    assert head["events"] > 0
    run("model", "list")
    run("model", "show", version)
    run("model", "show", "no-such-version", want=1)
    run("model", "export", version, "--out", str(tmp_path / "export"))
    run("model", "reproduce", version, want=None)
    run("model", "approve", version, "--by", "again", want=1)  # already approved
    run("model", "train", "--cutoff", summary["rating"]["cutoff"], want=None)  # the same data: registered already
    run("model", "backtest", "--from", "2021", "--as-of", summary["rating"]["cutoff"], want=None)
    run("model", "backtest", "--from", "2030", "--as-of", summary["rating"]["cutoff"], want=1)  # no complete year
    run("model", "evaluate", "--features", str(DATA / "germancredit.csv"), "--label", "creditability",
        "--positive", "bad", "--cv", "2")
    keys = pd.read_csv(demo_dir / "BK1" / "statements.csv", usecols=["borrower_key"])["borrower_key"].head(3)
    run("score", "lookup", *map(str, keys), "NO-SUCH-KEY", "-i", "BK1", want=None)
    run("score", "firms", want=None)
    run("score", "file", str(demo_dir / "BK1" / "statements.csv"), "-i", "BK1", "--out", str(tmp_path / "s.csv"),
        want=None)
    stats = run("stats", "--by", "industry,size", "--k", "1")
    assert stats["rows"]
    region = run("stats", "--by", "country,size_class", "--k", "1")
    assert region["rows"] and isinstance(region["unknown_class"], dict)
    run("stats", "publish", "--by", "industry", want=None)
    run("stats", "published", want=None)
    run("synth", "--firms", "20", "--years", "2", "--banks", "1", "--seed", "1", "--out", str(tmp_path / "synth"))
    run("fx", "convert", "1000", "JPY", "--to", "USD", "--date", "2023-12-29")
    run("fx", "convert", "1000", "VND", "--to", "USD", "--date", "2023-12-29", want=1)  # no rate loaded
    bad_rates = tmp_path / "rates.csv"
    bad_rates.write_text("date,currency,rate,source\n2023-12-29,VND,not-a-number,x\n", encoding="utf-8")
    run("fx", "load", str(bad_rates), want=1)
    run("scheme", "list")
    loans = tmp_path / "loans.csv"
    pd.DataFrame({"pd": [0.01, 0.03, 0.08], "amount": [1e6, 2e6, 5e5]}).to_csv(loans, index=False)
    run("scheme", "price-capped", str(loans), "--scenarios", "2000", want=None)
    for cmd in ("apply", "check", "rotate-key"):  # PostgreSQL only: a refusal, still JSON
        run("security", cmd, want=None)
    run("security", "bind", "BK1", "some_login", want=None)

    missing = json_commands() - set(ran) - ELSEWHERE
    assert not missing, f"commands with --json not covered by a strict-JSON case: {sorted(missing)}"
