"""Rating model on synthetic CRD-like data (20,000 firms x 8 years) against the generator's truth."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from models.master_scale import assign_grade
from models.rating import load_spec
from models.ratios import FEATURE_NAMES
from models.validation_stats import jeffreys_interval
from pipelines import synth
from pipelines.features import training_table
from pipelines.training import Design, fit
from tests.synth_frames import synth_frames


@pytest.fixture(scope="module")
def trained():
    data = synth.generate(firms=20_000, years=8, banks=1, seed=7, today=dt.date(2026, 1, 1))
    st, d, truth = synth_frames(data)
    cutoff = pd.Timestamp(data.meta["as_of"]).date()
    return fit(training_table(st, d, cutoff), load_spec(), Design(cutoff=cutoff)), truth


@pytest.mark.slow
def test_out_of_time_auc_close_to_the_true_pd_auc(trained):
    tm, truth = trained
    table = tm.table.merge(truth, on=["firm_id", "fiscal_year_end"], how="left", validate="one_to_one")
    assert table["true_pd"].notna().all()
    oot = table[table["sample"] == "oot"]
    assert len(oot) > 10_000 and oot["label"].sum() > 150
    pd_oot = tm.calibration.predict(tm.model.raw_score(oot[list(FEATURE_NAMES)]))
    auc_model = roc_auc_score(oot["label"], pd_oot)
    auc_true = roc_auc_score(oot["label"], oot["true_pd"])
    assert auc_model == pytest.approx(tm.metrics["auc"]["model"]["oot"], abs=1e-12)
    assert abs(auc_model - auc_true) <= 0.02, (auc_model, auc_true)
    # calibration anchor: mean PD over the development sample's validation slice = long-run rate
    dev = table[table["sample"] != "oot"]
    target = dev.groupby(pd.to_datetime(dev["fiscal_year_end"]).dt.year)["label"].mean().mean()
    assert tm.calibration.target_rate == pytest.approx(target, rel=1e-12)
    # grades rank risk: observed default rate rises with the grade (grades with >= 30 defaults)
    grades = assign_grade(pd_oot)
    rows = []
    for g in sorted(set(grades), key=lambda x: (len(x), x)):
        m = grades == g
        k, n = int(oot["label"].to_numpy()[m].sum()), int(m.sum())
        if k >= 30:
            rows.append((g, n, k, k / n, float(pd_oot[m].mean()), *jeffreys_interval(k, n)))
    assert len(rows) >= 4
    rates = [r[3] for r in rows]
    assert all(b > a for a, b in zip(rates, rates[1:], strict=False)), rows


@pytest.mark.slow
def test_grade_calibration_out_of_time_apart_from_the_year_level(trained):
    """What does hold out of time: the PD *shape* across grades, and the generator's own PDs.

    Shifting every log-odds by one common constant so that the mean PD equals the
    out-of-time year's default rate (removing only that year's business-cycle level)
    puts every grade with >= 30 defaults inside its 95% Jeffreys interval; so do the
    generator's true point-in-time PDs grouped by the model's grades. The strict xfail
    below is therefore about the level alone (through-the-cycle vs. one year).
    """
    from scipy.optimize import brentq

    tm, truth = trained
    table = tm.table.merge(truth, on=["firm_id", "fiscal_year_end"], how="left", validate="one_to_one")
    oot = table[table["sample"] == "oot"]
    y = oot["label"].to_numpy()
    c = tm.calibration
    z = c.intercept + c.shift + c.slope * tm.model.raw_score(oot[list(FEATURE_NAMES)])

    def pd_at(shift: float):
        return np.maximum(c.floor, 1.0 / (1.0 + np.exp(-(z + shift))))

    shift = brentq(lambda s: pd_at(s).mean() - y.mean(), -5.0, 5.0)
    assert abs(shift) > 0.1  # the out-of-time year's level does differ from the long-run anchor
    # grades as the model assigns them: the generator's true PDs fall in every interval
    assert _grades_within_jeffreys(assign_grade(pd_at(0.0)), y, oot["true_pd"].to_numpy(), "true PD") >= 4
    shifted = pd_at(shift)
    assert _grades_within_jeffreys(assign_grade(shifted), y, shifted, "level-shifted PD") >= 4


def _grades_within_jeffreys(grades: np.ndarray, y: np.ndarray, pds: np.ndarray, what: str) -> int:
    """Assert mean ``pds`` per grade with >= 30 defaults lies in its 95% Jeffreys interval; count them."""
    tested = 0
    for g in set(grades):
        m = grades == g
        k, n = int(y[m].sum()), int(m.sum())
        if k >= 30:
            lo, hi = jeffreys_interval(k, n)
            assert lo <= pds[m].mean() <= hi, (what, g, n, k, pds[m].mean(), lo, hi)
            tested += 1
    return tested


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="through-the-cycle PDs (anchored to the long-run default rate, as the issue "
                   "asks) do not match a single out-of-time year's grade default rates when the generator's business "
                   "cycle moves that year's rate by 15-50% (seed 7: long-run 2.37%, out-of-time year 1.87%); the "
                   "grade shape does hold once that level is removed (test above); see BENCHMARKS.md")
def test_grade_mean_pd_within_jeffreys_interval_out_of_time(trained):
    tm, _ = trained
    oot = tm.table[tm.table["sample"] == "oot"]
    pd_oot = tm.calibration.predict(tm.model.raw_score(oot[list(FEATURE_NAMES)]))
    grades = assign_grade(pd_oot)
    y = oot["label"].to_numpy()
    for g in set(grades):
        m = grades == g
        k, n = int(y[m].sum()), int(m.sum())
        if k >= 30:
            lo, hi = jeffreys_interval(k, n)
            assert lo <= pd_oot[m].mean() <= hi, (g, n, k, pd_oot[m].mean(), lo, hi)

