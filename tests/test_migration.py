"""Rating migration matrix and the PD term structure it gives guarantee pricing (issue 5).

References: counts of a small panel written out by hand; the term structure against
``models.pricing.cumulative_pd_from_migration`` (a second implementation, row vector
times matrix) and against closed forms (a constant-hazard chain; a two-grade chain
computed by hand); priced fees against constant-hazard pricing where they must agree.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from models.migration import cumulative_pd_for_loans, estimate_transition_matrix, grade_survival
from models.pricing import cumulative_pd_from_migration, price_loans


def _panel():
    # firm, year, grade, defaulted within 12 months
    rows = [
        ("a", 2020, "1", False), ("a", 2021, "1", False), ("a", 2022, "2", False),  # 1->1, 1->2, 2->censored
        ("b", 2020, "1", False), ("b", 2021, "2", True),                            # 1->2, 2->D
        ("c", 2020, "2", False), ("c", 2021, "2", False), ("c", 2022, "1", False),  # 2->2, 2->1, censored
        ("d", 2020, "2", False), ("d", 2022, "2", False),                           # gap: both censored
        ("e", 2021, "1", True),                                                     # 1->D
    ]
    return pd.DataFrame(rows, columns=["firm", "year", "grade", "defaulted"])


def test_counts_match_hand_count():
    p = _panel()
    est = estimate_transition_matrix(p.firm, p.year, p.grade, p.defaulted, ["1", "2", "3"], "D",
                                     [0.01, 0.05, 0.2], min_observations=1)
    #                      to 1  2  3  D
    expected = np.array([[1, 2, 0, 1],   # from 1: a20->1, a21->2, b20->2, e21->D
                         [1, 1, 0, 1],   # from 2: c21->1, c20->2, b21->D
                         [0, 0, 0, 0]])
    np.testing.assert_array_equal(est.counts, expected)
    np.testing.assert_allclose(est.matrix[0], [0.25, 0.5, 0, 0.25])
    np.testing.assert_allclose(est.matrix[1], [1 / 3, 1 / 3, 0, 1 / 3])
    # grade 3 never observed: constant-hazard fallback at its representative PD; default absorbing
    np.testing.assert_allclose(est.matrix[2], [0, 0, 0.8, 0.2])
    np.testing.assert_allclose(est.matrix[3], [0, 0, 0, 1])
    assert est.fallback_grades == ["3"]
    np.testing.assert_allclose(est.matrix.sum(axis=1), 1.0)


def test_min_observations_falls_back_and_unknown_grade_raises():
    p = _panel()
    est = estimate_transition_matrix(p.firm, p.year, p.grade, p.defaulted, ["1", "2", "3"], "D",
                                     [0.01, 0.05, 0.2], min_observations=4)
    assert est.fallback_grades == ["2", "3"]  # grade 1 has 4 transitions, grade 2 only 3
    np.testing.assert_allclose(est.matrix[1], [0, 0.95, 0, 0.05])
    with pytest.raises(ValueError, match="not on the scale"):
        estimate_transition_matrix(p.firm, p.year, p.grade.replace("2", "X"), p.defaulted, ["1", "2"], "D",
                                   [0.01, 0.05])


def _random_chain(rng, k):
    m = rng.random((k + 1, k + 1))
    m[:, -1] *= 0.1
    m /= m.sum(axis=1, keepdims=True)
    m[-1] = 0.0
    m[-1, -1] = 1.0
    return m


def test_grade_survival_equals_second_implementation():
    rng = np.random.default_rng(3)
    m = _random_chain(rng, 6)
    surv = grade_survival(m, 10)
    for g in range(6):
        np.testing.assert_allclose(surv[g], 1.0 - cumulative_pd_from_migration(m, g, 10), rtol=0, atol=1e-14)
        np.testing.assert_allclose(surv[g, 4], 1.0 - np.linalg.matrix_power(m, 5)[g, -1], atol=1e-14)


def test_term_structure_closed_forms():
    # every grade keeps its grade and defaults at its own rate: constant hazard
    p = np.array([0.004, 0.03, 0.12])
    m = np.zeros((4, 4))
    m[np.arange(3), np.arange(3)] = 1 - p
    m[np.arange(3), 3] = p
    m[3, 3] = 1
    cum = cumulative_pd_for_loans(p, [0, 1, 2], m, 7)
    t = np.arange(1, 8)
    np.testing.assert_allclose(cum, 1 - (1 - p[:, None]) ** t[None, :], atol=1e-15)
    # two grades: A defaults at a, moves to B at q; B absorbing-in-place with default rate b
    a, q, b, pd_firm = 0.01, 0.2, 0.08, 0.015
    m2 = np.array([[1 - a - q, q, a], [0, 1 - b, b], [0, 0, 1]])
    s_a2 = (1 - a - q) * (1 - a) + q * (1 - b)  # survival of grade A over two years, by hand
    cum2 = cumulative_pd_for_loans([pd_firm], [0], m2, 2)[0]
    assert cum2[0] == pytest.approx(pd_firm, abs=1e-15)  # year 1: the firm's own PD
    assert cum2[1] == pytest.approx(1 - (1 - pd_firm) * s_a2 / (1 - a), abs=1e-15)


def test_pricing_with_hazard_chain_equals_constant_hazard_pricing():
    # whole-year tenors: with a matrix a partial last year takes the next integer year (price_loans docstring)
    p = np.array([0.002, 0.01, 0.05, 0.2])
    loans = pd.DataFrame({"pd": p, "amount": [1e7, 5e6, 3e7, 2e6], "tenor_years": [5, 3, 7, 1],
                          "amortization": ["annuity", "linear", "bullet", "annuity"]})
    m = np.diag(np.append(1 - p, 1.0))
    m[np.arange(4), 4] = p
    cum = cumulative_pd_for_loans(p, np.arange(4), m, 7)
    a = price_loans(loans)
    b = price_loans(loans, cumulative_pd=cum)
    for col in ("el_pv", "coc_pv", "fee_base_pv", "break_even_rate", "cum_pd"):
        np.testing.assert_allclose(b[col], a[col], rtol=1e-12, atol=0)


@pytest.mark.slow
def test_price_book_with_migration_from_database(sqlite_db, tmp_path):
    from pipelines.features import load_defaults, load_statements, training_table
    from tests.test_rating_db import CUTOFF, load, run

    data = load(sqlite_db.engine, tmp_path, firms=600)
    for bank in data.institutions.code:
        run("submit", "loans", str(tmp_path / "files" / bank / "loans.csv"), "-i", bank)
    # no approved model yet: a clear error
    res = run("guarantee", "price-book", "--term-structure", "migration", "--out", str(tmp_path / "x.csv"), ok=False)
    assert res.exit_code == 1 and "approved" in res.output
    v = json.loads(run("model", "train", "--cutoff", CUTOFF, "--json").output)["version"]
    with sqlite_db.engine.begin() as conn:  # approval workflow is tested elsewhere; here only the status matters
        conn.execute(text("UPDATE model_version SET status = 'approved' WHERE version = :v"), {"v": v})
    run("score", "firms", "--json")
    out_h, out_m = tmp_path / "hazard.csv", tmp_path / "migration.csv"
    hz = json.loads(run("guarantee", "price-book", "--out", str(out_h), "--json").output)
    mg = json.loads(run("guarantee", "price-book", "--term-structure", "migration", "--out", str(out_m),
                        "--json").output)
    assert hz["migration"] is None and mg["term_structure"] == "migration"
    mat = np.array(mg["migration"]["matrix"])
    np.testing.assert_allclose(mat.sum(axis=1), 1.0, atol=1e-9)
    assert mat[-1, -1] == 1.0
    # the number of transitions equals an independent recount from the stored data:
    # labelled firm-years that defaulted or whose firm has a statement the next fiscal year
    with sqlite_db.engine.connect() as conn:
        table = training_table(load_statements(conn), load_defaults(conn), pd.Timestamp.today().normalize())
    yr = pd.to_datetime(table["fiscal_year_end"]).dt.year
    have = set(zip(table["firm_id"], yr, strict=False))
    moved = [(lab == 1) or ((f, y + 1) in have) for f, y, lab in zip(table["firm_id"], yr, table["label"], strict=False)]
    assert mg["migration"]["transitions"] == sum(moved) > 100
    h, m = pd.read_csv(out_h), pd.read_csv(out_m)
    assert list(h["loan_id"]) == list(m["loan_id"]) and len(h) > 100
    short = (h["tenor_years"] <= 1).to_numpy()
    np.testing.assert_allclose(m["cum_pd"][short], h["cum_pd"][short], rtol=1e-12)  # year 1 = own PD
    assert not np.allclose(m["cum_pd"][~short], h["cum_pd"][~short])
    assert mg["total"]["loans"] == hz["total"]["loans"]
