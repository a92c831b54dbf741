"""Research mode on the real Polish bankruptcy data, readers, and the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.model_selection import StratifiedKFold

from models.research import evaluate, parse_label, read_table, split_label

DATA = Path(__file__).parent / "data" / "polish_1year.arff"


@pytest.fixture(scope="module")
def polish():
    return split_label(read_table(DATA), "class", origin=str(DATA))


def test_polish_file_is_the_cited_one():
    digest = hashlib.sha256(DATA.read_bytes()).hexdigest()
    assert digest == "978ce71a4809e964dda43d46a368c27a1a36df1e0b6345f215473ec9c3b12add"


def test_arff_reader_missing_and_labels(polish):
    X, y = polish
    assert X.shape == (7027, 64)
    assert int(y.sum()) == 271  # the data README's count
    assert X.isna().to_numpy().any()  # '?' became NaN
    assert all(pd.api.types.is_float_dtype(X[c]) for c in X.columns)


@pytest.mark.slow
def test_research_mode_on_polish_data_same_folds(polish):
    X, y = polish
    r = evaluate(X, y, cv=5, seed=0, spec="research_v1.toml")
    lgbm, ch = r["models"]["lightgbm"], r["models"]["challenger"]
    # both models trained and tested on the same folds, equal to sklearn's own split
    assert lgbm["fold_test_sha256"] == ch["fold_test_sha256"] == [f["test_sha256"] for f in r["folds"]]
    ref = StratifiedKFold(5, shuffle=True, random_state=0).split(np.zeros(len(y)), y)
    assert [hashlib.sha256(np.asarray(te, dtype="int64").tobytes()).hexdigest() for _, te in ref] \
        == lgbm["fold_test_sha256"]
    assert len(lgbm["fold_auc"]) == 5
    assert lgbm["mean_auc"] == pytest.approx(np.mean(lgbm["fold_auc"]), abs=1e-6)
    assert lgbm["mean_auc"] > 0.95 and lgbm["pooled_auc"] > 0.95
    assert ch["mean_auc"] > 0.85 and ch["pooled_auc"] > 0.85
    assert r["spec"]["monotone_constraints_used"] == {}  # Attr1..Attr64 carry no constrained names


def test_constraints_apply_only_to_present_features():
    rng = np.random.default_rng(0)
    n = 600
    X = pd.DataFrame({"equity_ratio": rng.normal(0.3, 0.2, n), "other": rng.normal(size=n)})
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(3 + 4 * X["equity_ratio"]))).astype(int))
    y.iloc[:10] = 1
    r = evaluate(X, y, cv=3, seed=1)
    assert r["spec"]["monotone_constraints_used"] == {"equity_ratio": -1}
    assert r["models"]["lightgbm"]["mean_auc"] > 0.5


def test_parse_label_and_readers(tmp_path):
    s = pd.Series([b"1", "0", True, "yes", 0.0], name="bad")
    assert list(parse_label(s)) == [1, 0, 1, 1, 0]
    with pytest.raises(ValueError, match=r"row 2, column 'bad'"):
        parse_label(pd.Series(["1", "maybe"], name="bad"))
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0], "sector": ["C", "F", None], "y": [0, 1, 0]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.parquet"):
        X, y = split_label(read_table(tmp_path / name), "y")
        assert list(y) == [0, 1, 0]
        assert isinstance(X["sector"].dtype, pd.CategoricalDtype)
        assert np.isnan(X["a"].iloc[1])
    with pytest.raises(ValueError, match="no label column 'z'"):
        split_label(frame, "z")
    with pytest.raises(ValueError, match="unsupported"):
        read_table(tmp_path / "t.xlsx")


def test_cli_evaluate_json_and_text(tmp_path):
    from creditdb.cli import cli

    spec = tmp_path / "quick.toml"
    spec.write_text('[model]\nname = "quick"\nn_estimators = 150\n[params]\nlearning_rate = 0.1\n'
                    'num_leaves = 7\nfeature_fraction = 0.5\ndeterministic = true\nforce_row_wise = true\n'
                    'num_threads = 2\nseed = 0\n')
    runner = CliRunner()
    res = runner.invoke(cli, ["model", "evaluate", "--features", str(DATA), "--label", "class",
                              "--cv", "3", "--seed", "0", "--spec", str(spec), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["ok"] is True and out["cv"] == 3 and out["n_rows"] == 7027
    assert out["models"]["lightgbm"]["pooled_auc"] > 0.9
    assert out["models"]["challenger"]["pooled_auc"] > 0.8
    assert out["spec"]["name"] == "quick"
    text = runner.invoke(cli, ["model", "evaluate", "--features", str(DATA), "--label", "class",
                               "--cv", "3", "--spec", str(spec)])
    assert text.exit_code == 0
    assert "lightgbm" in text.output and "challenger" in text.output and "pooled" in text.output


def test_cli_rejects_bad_input(tmp_path):
    from creditdb.cli import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["model", "evaluate", "--features", str(DATA), "--label", "nope", "--json"])
    assert res.exit_code == 1
    out = json.loads(res.output)
    assert out["ok"] is False and "polish_1year.arff" in out["error"] and "'nope'" in out["error"]
    res = runner.invoke(cli, ["model", "evaluate", "--features", str(tmp_path / "missing.csv"), "--label", "y"])
    assert res.exit_code == 1 and "no such file" in res.output
    res = runner.invoke(cli, ["model", "evaluate", "--features", str(DATA), "--label", "class", "--cv", "1"])
    assert res.exit_code == 2
    res = runner.invoke(cli, ["model", "evaluate", "--help"])
    assert res.exit_code == 0 and "Example:" in res.output
