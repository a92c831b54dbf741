"""``creditdb stats`` end to end on SQLite and PostgreSQL: data loaded through ``creditdb submit``."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from creditdb.cli import cli
from creditdb.commands.stats import _write_csv
from tests import factories as F


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


# 12 firms, one statement each (fiscal year end 2021-03-31, available 2021-06-30):
# firms 0-5 industry C, 6-9 G, 10-11 F; firms 3, 4, 5, 9 and 11 default on 2022-01-31,
# inside the 12-month window, so the defaults are C 3 of 6, G 1 of 4, F 1 of 2.
INDUSTRY = ["C"] * 6 + ["G"] * 4 + ["F"] * 2
DEFAULTED = [3, 4, 5, 9, 11]


@pytest.fixture
def loaded(db, tmp_path):
    run("institution", "add", "BK1", "--name", "First Bank", "--kind", "bank", "--country", "JP")
    s = F.statements(12)
    s["industry"] = INDUSTRY
    run("submit", "statements", str(F.write_csv(s, tmp_path / "s.csv")), "-i", "BK1")
    d = F.defaults(s.iloc[DEFAULTED]).assign(default_date="2022-01-31")
    run("submit", "defaults", str(F.write_csv(d, tmp_path / "d.csv")), "-i", "BK1")
    return s


def equity_ratio(i: int) -> float:  # factories: net assets / total assets of firm i
    return (30_000_000 + i * 10_000) / (100_000_000 + i * 1_000_000)


def test_stats_json_end_to_end(loaded):
    out = json.loads(run("stats", "--by", "industry", "--k", "3", "--ratios", "equity_ratio,roa", "--json").output)
    assert out["by"] == ["industry"] and out["k"] == 3 and out["ratios"] == ["equity_ratio", "roa"]
    rows = {(r["industry"], r["population"], r["ratio"]): r for r in out["rows"]}
    assert len(rows) == 4 * 3 * 2  # C, F, G, all x all/default/non_default x 2 ratios
    # F (2 firms) primary; G is then the smallest other industry: complementary. In G the
    # default row (1 firm) is primary; G's non-default row (3 firms) stays published, as
    # G's total is hidden. F's non-default row (1 firm) forces the smallest other
    # non-default row: C and G tie at 3 firms, 3 statements -> C (key order); then C's
    # default row is the only published one left in C's population split: complementary.
    status = {(ind, pop): rows[(ind, pop, "roa")]["suppressed"] for ind, pop, _ in rows}
    assert status == {
        ("C", "all"): None, ("C", "default"): "complementary", ("C", "non_default"): "complementary",
        ("F", "all"): "primary", ("F", "default"): "primary", ("F", "non_default"): "primary",
        ("G", "all"): "complementary", ("G", "default"): "primary", ("G", "non_default"): None,
        ("all", "all"): None, ("all", "default"): None, ("all", "non_default"): None,
    }
    c = rows[("C", "all", "equity_ratio")]
    ref = np.array([equity_ratio(i) for i in range(6)])
    assert (c["firms"], c["statements"], c["labelled"], c["defaults"]) == (6, 6, 6, 3)
    assert c["default_rate"] == pytest.approx(0.5)
    assert c["mean"] == pytest.approx(ref.mean())
    assert c["median"] == pytest.approx(np.median(ref))
    assert c["std"] == pytest.approx(ref.std(ddof=1))
    assert (c["p30"], c["p70"]) == (pytest.approx(np.percentile(ref, 30)), pytest.approx(np.percentile(ref, 70)))
    total = rows[("all", "all", "roa")]
    assert (total["firms"], total["defaults"]) == (12, 5)
    assert total["default_rate"] == pytest.approx(5 / 12)
    d = rows[("all", "default", "equity_ratio")]
    assert d["firms"] == 5 and d["mean"] == pytest.approx(np.mean([equity_ratio(i) for i in DEFAULTED]))
    hidden = rows[("G", "all", "roa")]
    assert all(hidden[k] is None for k in ("firms", "statements", "defaults", "default_rate", "mean", "p70"))


def test_stats_as_of_before_the_defaults_were_submitted(loaded):
    # before any submission nothing is in force
    early = json.loads(run("stats", "--by", "industry", "--as-of", "2020-01-01", "--json").output)
    assert early["rows"] == []


def test_stats_text_csv_html(loaded, tmp_path):
    res = run("stats", "--by", "industry,year", "--k", "3", "--ratios", "roa",
              "--csv", str(tmp_path / "s.csv"), "--html", str(tmp_path / "s.html"))
    assert "roa:" in res.output and "primary" in res.output and "complementary" in res.output
    with (tmp_path / "s.csv").open(encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert {r["year"] for r in table} == {"2021", "all"}
    grand = next(r for r in table if r["industry"] == "all" and r["year"] == "all" and r["population"] == "all")
    assert grand["firms"] == "12" and grand["defaults"] == "5"
    page = (tmp_path / "s.html").read_text(encoding="utf-8")
    assert "<table>" in page and 'class="complementary"' in page
    assert "http" not in page and "<script" not in page and "<link" not in page


def test_stats_usage_errors(loaded):
    assert run("stats", "--by", "colour", ok=False).exit_code == 2
    assert run("stats", "--ratios", "nonsense", ok=False).exit_code == 2
    assert "Example:" in run("stats", "--help").output


def test_csv_neutralises_formulas(tmp_path):
    path = tmp_path / "x.csv"
    _write_csv(path, pd.DataFrame({"region": ["=HYPERLINK(\"http://x\")", "@SUM(A1)"], "mean": [-0.5, None],
                                   "firms": pd.array([7, None], dtype="Int64"), "suppressed": [None, "primary"]}))
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert rows == [{"region": "'=HYPERLINK(\"http://x\")", "mean": "-0.5", "firms": "7", "suppressed": ""},
                    {"region": "'@SUM(A1)", "mean": "", "firms": "", "suppressed": "primary"}]


def test_statement_from_two_banks_counts_once(db, tmp_path):
    from pipelines.statistics import gather

    for code in ("BK1", "BK2"):
        run("institution", "add", code, "--name", code, "--kind", "bank", "--country", "JP")
    s1 = F.statements(4, bank="BK1")
    s2 = F.statements(4, bank="BK2")  # the same four firms (same corporate numbers)
    s2["net_income"] = 9_000_000  # BK2's copy is received later and wins
    run("submit", "statements", str(F.write_csv(s1, tmp_path / "a.csv")), "-i", "BK1")
    run("submit", "statements", str(F.write_csv(s2, tmp_path / "b.csv")), "-i", "BK2")
    frame = gather(db.engine)
    assert len(frame) == 4 and frame["firm_id"].nunique() == 4
    assert np.allclose(frame["roa"], 9_000_000 / (100_000_000 + np.arange(4) * 1_000_000))
    out = json.loads(run("stats", "--by", "year", "--k", "1", "--ratios", "roa", "--json").output)
    total = next(r for r in out["rows"] if r["year"] == "all" and r["population"] == "all")
    assert (total["firms"], total["statements"], total["labelled"]) == (4, 4, 4)
