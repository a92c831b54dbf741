"""The validator's first pass checks groups of same-bound range rules through one screen
rule each (pipelines.validate._screens); the issues must be exactly those of the whole
suite run rule by rule."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines import dictionary as D
from tests import factories as F


def _reference_issues(v, typed: pd.DataFrame) -> set[tuple[int, str | None, str]]:
    """(row, column, rule) of every failing row of every row/warning rule, in one COMPLETE run of the suite."""
    from great_expectations.core.expectation_suite import ExpectationSuite

    from pipelines.validate import _COMPLETE, _columns_of

    suite = ExpectationSuite(name="reference_all_rules", expectations=[dict(e) for e in v._checks])
    result = v._run(suite, v._frame(typed, _columns_of(v._checks)), _COMPLETE)
    out = set()
    for r in result.results:
        cfg = r.expectation_config
        col = cfg.kwargs.get("column") or cfg.kwargs.get("column_A")
        for row in r.result.get("unexpected_index_list") or []:
            out.add((int(row["row"] if isinstance(row, dict) else row), col, cfg.meta["rule"]))
    return out


def test_screened_first_pass_finds_exactly_the_rows_of_the_whole_suite():
    from pipelines.validate import DERIVED, Validator, coerce

    rng = np.random.default_rng(3)
    raw = F.statements(400).astype(str)
    raw.index = pd.RangeIndex(2, 2 + len(raw), name="row")
    amounts = D.of_type("statements", "amount")
    # break rows at random: negatives, absurd magnitudes, missing values, all of a row's amounts missing
    for _ in range(60):
        row, col = int(rng.integers(2, 2 + len(raw))), str(rng.choice(amounts))
        raw.loc[row, col] = str(rng.choice(["-1", "-0.5", "2e15", "-3e15", "nan-is-text", ""]))
    raw.loc[7, amounts] = ""
    typed, _ = coerce("statements", raw)
    v = Validator("statements")
    assert v._screens, "the statements suite has same-bound rule groups to screen"
    got = {(i.row, i.column, i.rule) for i in v.validate(raw, typed)}
    # issues on derived identity columns are reported under their first shown column
    expected = {(row, DERIVED[col][0][0] if col in DERIVED else col, rule)
                for row, col, rule in _reference_issues(v, typed)
                if not (rule == "value.required" and (row, col) in typed.attrs["type_issues"])}
    assert {r for r in expected if r[2] in ("amount.absurd", "amount.non_negative")}, "the test breaks screened rules"
    assert got == expected


def test_clean_rows_pass_the_screens():
    from pipelines.validate import Validator, coerce

    raw = F.statements(50).astype(str)
    raw.index = pd.RangeIndex(2, 52, name="row")
    typed, _ = coerce("statements", raw)
    assert Validator("statements").validate(raw, typed) == []
