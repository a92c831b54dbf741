"""Published statistics (models/statistics.py): hand-computed figures and suppression.

Percentiles are numpy's default linear interpolation: the p-th percentile of n sorted
values x[0..n-1] is x[i] + f * (x[i+1] - x[i]) with i + f = p / 100 * (n - 1).
"""

from __future__ import annotations

import math
import statistics as stdlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.statistics import ALL, cell_statistics, describe, suppress

# --------------------------------------------------------------------------------------
# a small known data set: 3 industries, 11 firms, one statement each, ratio roa
#   C: 6 firms, roa 0.01 .. 0.06, the last three default
#   G: 3 firms, roa -0.02, 0.03, 0.05 (the last defaults)
#   F: 2 firms, roa 0.00, 0.06 (the last defaults)  -> fewer than k = 3 firms
# --------------------------------------------------------------------------------------
KNOWN = [("C", 0.01, 0), ("C", 0.02, 0), ("C", 0.03, 0), ("C", 0.04, 1), ("C", 0.05, 1), ("C", 0.06, 1),
         ("G", -0.02, 0), ("G", 0.03, 0), ("G", 0.05, 1),
         ("F", 0.00, 0), ("F", 0.06, 1)]


def known_frame() -> pd.DataFrame:
    return pd.DataFrame([{"firm_id": f"firm{i}", "industry": ind, "year": 2021, "label": float(lab), "roa": roa}
                         for i, (ind, roa, lab) in enumerate(KNOWN)])


N = None
# industry, population, firms, statements, labelled, defaults, default_rate, count, mean, median, std, p30, p70, suppressed
# Hand computation (values in hundredths):
#   C all 1..6: mean 3.5, median 3.5, s = sqrt(17.5 / 5), p30 at 1.5 -> 2.5, p70 at 3.5 -> 4.5
#   C default 4,5,6: mean 5, s = 1, p30 at 0.6 -> 4.6, p70 at 1.4 -> 5.4; non-default 1,2,3 likewise
#   all 11 values -2,0,1,2,3,3,4,5,5,6,6: mean 3, median 3, sum of squared deviations 66,
#     s = sqrt(66 / 10), p30 at 3.0 -> 2, p70 at 7.0 -> 5
#   all default 4,5,5,6,6: mean 5.2, median 5, SS 2.8, s = sqrt(0.7), p30 at 1.2 -> 5, p70 at 2.8 -> 5.8
#   all non-default -2,0,1,2,3,3: mean 7/6, median 1.5, SS 27 - 49/6, s = sqrt(113/30),
#     p30 at 1.5 -> 0.5, p70 at 3.5 -> 2.5
#   F has 2 < 3 firms: primary. It could be recovered as total - C - G, so the smallest
#   other industry, G (3 firms), is suppressed too: complementary. G's default (1 firm) and
#   non-default (2 firms) rows and all of F's rows are primary.
EXPECTED = [
    ("C", "all", 6, 6, 6, 3, 0.5, 6, 0.035, 0.035, 0.01 * math.sqrt(3.5), 0.025, 0.045, N),
    ("C", "default", 3, 3, 3, 3, 1.0, 3, 0.05, 0.05, 0.01, 0.046, 0.054, N),
    ("C", "non_default", 3, 3, 3, 0, 0.0, 3, 0.02, 0.02, 0.01, 0.016, 0.024, N),
    ("F", "all", *[N] * 11, "primary"),
    ("F", "default", *[N] * 11, "primary"),
    ("F", "non_default", *[N] * 11, "primary"),
    ("G", "all", *[N] * 11, "complementary"),
    ("G", "default", *[N] * 11, "primary"),
    ("G", "non_default", *[N] * 11, "primary"),
    ("all", "all", 11, 11, 11, 5, 5 / 11, 11, 0.03, 0.03, 0.01 * math.sqrt(6.6), 0.02, 0.05, N),
    ("all", "default", 5, 5, 5, 5, 1.0, 5, 0.052, 0.05, 0.01 * math.sqrt(0.7), 0.05, 0.058, N),
    ("all", "non_default", 6, 6, 6, 0, 0.0, 6, 0.07 / 6, 0.015, 0.01 * math.sqrt(113 / 30), 0.005, 0.025, N),
]
COLUMNS = ["industry", "population", "firms", "statements", "labelled", "defaults", "default_rate", "count",
           "mean", "median", "std", "p30", "p70", "suppressed"]


def test_known_data_set_cell_by_cell():
    out = cell_statistics(known_frame(), ["industry"], ["roa"], k=3)
    assert list(out["ratio"].unique()) == ["roa"]
    got = out[COLUMNS]
    assert len(got) == len(EXPECTED)
    for (_, row), expected in zip(got.iterrows(), EXPECTED, strict=False):
        for col, want in zip(COLUMNS, expected, strict=False):
            have = row[col]
            where = f"{expected[0]}/{expected[1]}/{col}"
            if col in ("industry", "population", "suppressed"):
                assert have == want, where
            elif want is None:
                assert pd.isna(have), f"{where} should be blank, is {have}"
            else:
                assert have == pytest.approx(want, abs=1e-12), where


def test_known_data_set_without_the_small_industry_needs_no_suppression():
    frame = known_frame()
    out = cell_statistics(frame[frame.industry != "F"], ["industry"], ["roa"], k=1)
    assert out["suppressed"].isna().all()
    # k = 1 publishes G in full: its figures are those of describe()
    g = out[(out.industry == "G") & (out.population == "all")].iloc[0]
    ref = describe([-0.02, 0.03, 0.05])
    assert (g["firms"], g["defaults"]) == (3, 1)
    for key in ("mean", "median", "std", "p30", "p70"):
        assert g[key] == pytest.approx(ref[key])


def test_describe_hand_computed_and_against_numpy_and_stdlib():
    x = [0.10, -0.02, 0.00, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, float("nan")]
    d = describe(x)
    # sorted: -0.02 0.00 0.01 0.02 0.03 0.04 0.05 0.06 0.10 (the NaN is ignored)
    assert d["count"] == 9
    assert d["mean"] == pytest.approx(0.29 / 9)
    assert d["median"] == pytest.approx(0.03)
    assert d["p30"] == pytest.approx(0.014)  # position 2.4: 0.01 + 0.4 * 0.01
    assert d["p70"] == pytest.approx(0.046)  # position 5.6: 0.04 + 0.6 * 0.01
    clean = [v for v in x if not math.isnan(v)]
    assert d["std"] == pytest.approx(stdlib.stdev(clean))
    assert d["p30"] == pytest.approx(np.percentile(clean, 30))
    assert describe([1.0])["std"] != describe([1.0])["std"]  # NaN below two values
    assert describe([])["count"] == 0


def test_two_by_two_cascade():
    # one small cell in a 2 x 2 table with margins: the whole interior must go
    cells = pd.DataFrame([
        ("A", "2020", 1, 1), ("A", "2021", 5, 5), ("B", "2020", 5, 5), ("B", "2021", 5, 5),
        ("A", ALL, 6, 6), ("B", ALL, 10, 10), (ALL, "2020", 6, 6), (ALL, "2021", 10, 10), (ALL, ALL, 16, 16),
    ], columns=["industry", "year", "firms", "statements"])
    status = suppress(cells, ["industry", "year"], k=3).tolist()
    assert status == ["primary", "complementary", "complementary", "complementary", None, None, None, None, None]


def test_smallest_other_cell_is_the_complement():
    cells = pd.DataFrame([("A", 2, 2), ("B", 9, 9), ("C", 4, 7), ("D", 4, 5), (ALL, 19, 23)],
                         columns=["industry", "firms", "statements"])
    assert suppress(cells, ["industry"], k=3).tolist() == ["primary", None, None, "complementary", None]


def test_lone_suppressed_member_suppresses_its_total():
    # the only member of the population split is small: the total would reveal it
    cells = pd.DataFrame([("all", 4, 9), ("non_default", 2, 3)], columns=["population", "firms", "statements"])
    assert suppress(cells, ["population"], k=3).tolist() == ["complementary", "primary"]


def test_no_margins_no_complementary_suppression():
    out = cell_statistics(known_frame(), ["industry"], ["roa"], k=3, margins=False, split_by_default=False)
    assert out[["industry", "suppressed"]].values.tolist() == [["C", None], ["F", "primary"], ["G", None]]


def test_missing_group_values_and_bad_input():
    frame = known_frame().astype({"industry": object})
    frame.loc[0, "industry"] = None
    out = cell_statistics(frame, ["industry"], ["roa"], k=1, split_by_default=False)
    assert "unknown" in set(out["industry"])
    with pytest.raises(ValueError, match="lacks column"):
        cell_statistics(frame, ["region"], ["roa"])
    with pytest.raises(ValueError, match="k must"):
        cell_statistics(frame, ["industry"], ["roa"], k=0)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 14), st.sampled_from("ABC"), st.sampled_from([2020, 2021]),
                          st.sampled_from([0.0, 1.0, np.nan]), st.floats(-1, 1)), min_size=1, max_size=40),
       st.integers(1, 4))
def test_suppression_invariants(rows, k):
    frame = pd.DataFrame(rows, columns=["firm_id", "industry", "year", "label", "roa"])
    out = cell_statistics(frame, ["industry", "year"], ["roa"], k=k)
    published = out[out["suppressed"].isna()]
    assert (published["firms"] >= k).all()
    hidden = out[out["suppressed"].notna()]
    assert hidden[["firms", "statements", "mean", "p30"]].isna().all().all()
    # no published total has exactly one suppressed member in any dimension
    status = {tuple(r[:3]): r[3] for r in out[["industry", "year", "population", "suppressed"]].values.tolist()}
    for i in range(3):
        groups: dict[tuple, list] = {}
        for key, s in status.items():
            if key[i] != ALL:
                groups.setdefault(key[:i] + (ALL,) + key[i + 1:], []).append(s)
        for total, members in groups.items():
            if status[total] is None:
                assert sum(m is not None for m in members) != 1, (total, members)
