"""Every ``creditdb guarantee`` command's ``--json`` output is valid JSON for a strict parser
(no NaN or Infinity: missing is null), on success and on refusal.

The list of commands is read from the CLI itself: a new subcommand with a ``--json``
option and no case here fails the test.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from creditdb.cli import cli
from creditdb.commands.guarantee import guarantee
from tests.test_guarantee_book import AS_OF, hand_book  # noqa: F401  (hand_book: the fixture)


def strict(text: str):
    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def invoke(*args: str) -> tuple[int, object]:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return res.exit_code, strict(res.output)


def test_quote_without_sales_is_null_not_nan():
    code, out = invoke("guarantee", "quote", "--pd", "0.012", "--amount", "1e7", "--tenor", "5", "--json")
    assert code == 0 and out["quote"]["sales"] is None


def test_every_guarantee_command_emits_strict_json(hand_book, tmp_path):  # noqa: F811
    loans = tmp_path / "loans.csv"
    pd.DataFrame({"loan_id": ["a", "b"], "pd": [0.01, 0.03], "amount": [1e7, 2e7], "tenor_years": [3, 5],
                  "coverage": [0.8, 1.0]}).to_csv(loans, index=False)  # no sales: NaN inside
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"loan_id": ["a"], "pd": [0.01], "amount": [1e7], "tenor_years": [3], "coverage": [0.5]}).to_csv(
        bad, index=False)
    d = str(AS_OF)
    cases = {
        "quote": [
            (0, ["--pd", "0.012", "--amount", "1e7", "--tenor", "5"]),
            (0, ["--firm-of", "BK1:BK1-B00001", "--amount", "1e7", "--tenor", "5", "--as-of", d]),
            (0, ["--loan-of", "BK1:BK1-L00002", "--as-of", d]),
            (1, ["--loan-of", "BK1:BK1-L00000", "--as-of", d]),
            (1, ["--firm-of", "BK1:BK1-B00003", "--amount", "1e7", "--tenor", "5", "--as-of", d]),
            (1, ["--pd", "0.012", "--amount", "1e7", "--tenor", "5", "--coverage", "0.5"]),
        ],
        "price": [(0, [str(loans), "--out", str(tmp_path / "p.csv")]),
                  (1, [str(bad), "--out", str(tmp_path / "q.csv")])],
        "price-book": [(0, ["--out", str(tmp_path / "b.csv"), "--as-of", d]),
                       (1, ["--out", str(tmp_path / "c.csv"), "--institution", "NOPE"])],
        "issue": [(0, ["--institution", "CGC1", "--loan-of", "BK1:BK1-L00001", "--date", d]),
                  (1, ["--institution", "CGC1", "--loan-of", "BK1:BK1-L00003", "--date", d])],
        "list": [(0, [])],
        "portfolio": [(0, [str(loans), "--scenarios", "300"]),
                      (0, ["--from-db", "--scenarios", "300", "--as-of", d]),
                      (1, [str(loans), "--scenarios", "300", "--rho", "2"])],
    }
    with_json = {name for name, cmd in guarantee.commands.items() if any(o.name in ("as_json", "json_out")
                                                                         for o in cmd.params)}
    assert with_json == set(cases), "a guarantee command with --json has no case here"
    for name, runs in cases.items():
        for want, args in runs:
            code, out = invoke("guarantee", name, *args, "--json")
            assert code == want, (name, args, out)
            if want == 1:
                assert out["ok"] is False and out["error"], (name, args)
    code, out = invoke("guarantee", "price", str(loans), "--out", str(tmp_path / "p2.csv"), "--json")
    assert out["by_category"] and all(v is not None for v in out["total"].values())


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_to_json_refuses_to_write_nan(value):
    import numpy as np

    from creditdb.output import to_json

    text = to_json({"a": value, "b": [np.float64(value), np.array([1.0, value])], "c": pd.NA})
    assert strict(text) == {"a": None, "b": [None, [1.0, None]], "c": None}
