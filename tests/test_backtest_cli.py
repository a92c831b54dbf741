"""`creditdb model backtest` and `model validate --backtest` on a synthetic database (SQLite),
with the approval gate reading the pooled view."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from creditdb.approval import ApprovalError, ApprovalPolicy, approve, gate
from creditdb.cli import cli
from creditdb.schema import ModelVersion
from models.rating import load_spec
from pipelines.features import load_defaults, load_statements, training_table
from pipelines.training import Design, fit
from tests.test_rating_db import CUTOFF, load

pytestmark = pytest.mark.slow


def invoke(*args: str, code: int = 0):
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert res.exit_code == code, res.output
    return res.output


@pytest.fixture()
def loaded(sqlite_db, tmp_path):
    load(sqlite_db.engine, tmp_path, firms=800)
    return sqlite_db


def test_backtest_command(loaded, tmp_path):
    html = tmp_path / "bt.html"
    out = json.loads(invoke("model", "backtest", "--from", "2020", "--as-of", CUTOFF, "--seed", "0",
                            "--html", str(html), "--json"))
    assert out["ok"] and out["summary"]["years"] == [2020, 2021, 2022]  # 2022: last year complete by 2024-03-31
    assert out["design"]["as_of"] == CUTOFF and out["design"]["seed"] == 0
    assert {r["year"] for r in out["per_year"]} == {2020, 2021, 2022}
    assert out["summary"]["n"] == sum(r["n"] for r in out["pooled"]) == out["pooled_portfolio"]["n"]
    assert out["summary"]["passed"] == ("portfolio" not in out["summary"]["pooled_red"]
                                        and not any(r["traffic_light"] == "red" for r in out["pooled"]))
    # the model in force at 2021-01-01 is the one the training pipeline fits at that cut-off
    with loaded.engine.connect() as conn:
        st, d = load_statements(conn), load_defaults(conn)
    cut = dt.date(2021, 1, 1)
    tm = fit(training_table(st, d, cut), load_spec(), Design(cutoff=cut), 0)
    m2021 = next(m for m in out["models"] if m["year"] == 2021)
    assert m2021["version"] == tm.version and m2021["training_statements"] == len(tm.table)
    page = html.read_text(encoding="utf-8")
    assert "Calibration over the cycle" in page and "Per-year lights" in page and "data:image/png;base64," in page
    text = invoke("model", "backtest", "--from", "2021", "--to", "2021", "--as-of", CUTOFF)
    assert "pooled view:" in text and "2021" in text


def test_backtest_refusals(loaded):
    out = json.loads(invoke("model", "backtest", "--from", "2021", "--to", "2023", "--as-of", CUTOFF, "--json",
                            code=1))
    assert not out["ok"] and "not complete" in out["error"]
    out = json.loads(invoke("model", "backtest", "--from", "2022", "--to", "2020", "--as-of", CUTOFF, "--json",
                            code=1))
    assert not out["ok"] and "is before the first year" in out["error"]
    out = json.loads(invoke("model", "backtest", "--from", "2023", "--as-of", CUTOFF, "--json", code=1))
    assert not out["ok"] and "no complete out-of-time year from 2023" in out["error"]
    out = json.loads(invoke("model", "backtest", "--from", "2005", "--to", "2005", "--as-of", CUTOFF, "--json",
                            code=1))
    assert not out["ok"] and "2005" in out["error"]
    out = json.loads(invoke("model", "backtest", "--from", "2020", "--as-of", "31.3.2024", "--json", code=1))
    assert "--as-of" in out["error"]
    res = CliRunner().invoke(cli, ["model", "validate", "rating-000000000000", "--backtest", "x:y"])
    assert res.exit_code == 2 and "--backtest" in res.output


def test_validate_with_backtest_and_the_gate(loaded, tmp_path):
    version = json.loads(invoke("model", "train", "--cutoff", CUTOFF, "--json"))["version"]
    html = tmp_path / "report.html"
    results = json.loads(invoke("model", "validate", version, "--backtest", "2020:2022", "--html", str(html),
                                "--json", "-"))
    bt = results["backtest"]
    assert bt["summary"]["years"] == [2020, 2021, 2022]
    assert bt["design"]["seed"] == 0 and bt["design"]["as_of"] == CUTOFF
    page = html.read_text(encoding="utf-8")
    assert "Calibration over the cycle" in page and "Pooled over all out-of-time years" in page
    assert "business cycle" in page  # the plain-words explanation of the two views
    with loaded.engine.connect() as conn:
        stored = conn.execute(select(ModelVersion.validation_report).where(ModelVersion.version == version)).scalar_one()
    assert stored["backtest"]["summary"] == bt["summary"]
    policy = ApprovalPolicy(min_defaults=0)
    # the pooled view decides: red pooled refuses, single-sample reds no longer do
    red = copy.deepcopy(stored)
    red["backtest"]["summary"].update(passed=False, pooled_red=["grade 7"])
    assert any("walk-forward backtest, pooled grade 7" in f for f in gate(red, policy).failures)
    green = copy.deepcopy(stored)
    green["backtest"]["summary"].update(passed=True, pooled_red=[])
    green["calibration"]["by_grade"][0]["traffic_light"] = "red"
    assert gate(green, policy).passed
    no_bt = copy.deepcopy(green)
    del no_bt["backtest"]
    assert not gate(no_bt, policy).passed
    with loaded.engine.begin() as conn:
        conn.execute(update(ModelVersion).where(ModelVersion.version == version).values(validation_report=red))
    with loaded.engine.begin() as conn, pytest.raises(ApprovalError, match="walk-forward backtest"):
        approve(conn, version, by="Supervisor", note="", policy=policy)
