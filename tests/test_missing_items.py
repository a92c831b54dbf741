"""Unreported optional items (issue 13, item 4): missing at random must not move PDs one way; where
being unreported predicts default the model may use it and the reports say so with the evidence."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact

from models.rating import load_spec
from models.ratios import FEATURE_NAMES
from models.unreported import FISHER_ALPHA
from pipelines import synth
from pipelines.features import training_table
from pipelines.model_items import FLAG_PREFIX, optional_model_items
from pipelines.quality_report import MISSING_ITEM_RULE, QualityReport
from pipelines.training import Design, fit
from pipelines.unreported_report import record_removal_effects, removal_effects, without_item
from pipelines.validation_report import _section_unreported
from tests.synth_frames import synth_frames

ITEM = "interest_expense"


def _frames(firms: int, seed: int):
    data = synth.generate(firms=firms, years=8, banks=1, seed=seed, today=dt.date(2026, 1, 1))
    st, d, _ = synth_frames(data)
    return st, d, pd.Timestamp(data.meta["as_of"]).date()


def test_optional_items_are_derived_from_the_dictionary_and_the_feature_table():
    items = optional_model_items()
    assert items[ITEM] == ["interest_coverage", "interest_rate_paid"]
    assert items["established"] == ["firm_age"]
    # required items and months (defaults to 12) are not optional model items
    assert not {"sales", "net_income", "total_assets", "months", "employees"} & set(items)


@pytest.mark.slow
@pytest.mark.parametrize(("firms", "seed"), [(4_000, 1), (12_000, 2)])
def test_item_removed_at_random_moves_the_mean_pd_by_less_than_5_percent(firms, seed):
    st, d, cutoff = _frames(firms, seed)
    tm = fit(training_table(st, d, cutoff), load_spec(), Design(cutoff=cutoff), 0)
    # the synthetic generator leaves interest_expense out at random: no evidence, so the model corrects for it
    ev = tm.metrics["missing_items"][ITEM]
    assert not ev["predictive"] and ev["p_value"] >= FISHER_ALPHA and ev["adjusted"]
    assert ev["rows_missing"] > 100
    row = next(r for r in removal_effects(tm, st, seed=seed) if r["item"] == ITEM)
    assert row["rows"] > 0.25 * (tm.table["sample"] == "oot").sum()
    assert abs(row["mean_pd_shift"]) < 0.05, row
    # single firms move either way: not all one way
    assert row["share_pd_up"] > 0.2 and row["share_pd_down"] > 0.2, row
    # independently of removal_effects: the same rows scored by the bare model (no offsets) move further
    oot = tm.table.loc[tm.table["sample"] == "oot"]
    pick = oot.loc[~oot[FLAG_PREFIX + ITEM]].loc[np.random.default_rng(seed).random((~oot[FLAG_PREFIX + ITEM]).sum())
                                                 < 0.3]
    gone = without_item(pick, st, ITEM)
    assert gone[["interest_coverage", "interest_rate_paid"]].isna().all().all()
    cols = list(FEATURE_NAMES)
    bare = tm.calibration.predict(tm.model.raw_score(gone[cols])).mean() / tm.pd(pick).mean() - 1
    corrected = tm.pd(gone).mean() / tm.pd(pick).mean() - 1
    assert abs(corrected) < 0.05 and abs(corrected) < abs(bare), (corrected, bare)


@pytest.fixture(scope="module")
def planted():
    """Synthetic data where firms that leave interest_expense out default about 3x more often."""
    st, d, cutoff = _frames(4_000, 3)
    table = training_table(st, d, cutoff)
    label = pd.Series(table["label"].to_numpy(), index=table["statement_id"].to_numpy())
    y = label.reindex(st["statement_id"].to_numpy()).fillna(0).to_numpy()
    rng = np.random.default_rng(3)
    blank = rng.random(len(st)) < np.where(y == 1, 0.30, 0.05)
    st = st.copy()
    st.loc[blank, ITEM] = np.nan
    tm = fit(training_table(st, d, cutoff), load_spec(), Design(cutoff=cutoff), 0)
    record_removal_effects(tm, st)
    return tm, st


@pytest.mark.slow
def test_where_being_unreported_predicts_default_the_model_uses_it_and_the_report_shows_the_evidence(planted):
    tm, st = planted
    ev = tm.metrics["missing_items"][ITEM]
    dev = tm.table.loc[tm.table["sample"] != "oot"]
    m, y = dev[FLAG_PREFIX + ITEM].to_numpy(), dev["label"].to_numpy() == 1
    odds, p = fisher_exact([[(m & y).sum(), (m & ~y).sum()], [(~m & y).sum(), (~m & ~y).sum()]])
    assert ev["p_value"] == pytest.approx(p) and ev["odds_ratio"] == pytest.approx(odds)
    assert ev["predictive"] and ev["p_value"] < FISHER_ALPHA
    assert ev["default_rate_missing"] > 2.5 * ev["default_rate_reported"]
    assert not ev["adjusted"] and ITEM not in tm.unreported.items  # the model may use the missing branch
    # ... and does: removing the item at random raises the PDs of those firms
    assert ev["removed_at_random"]["mean_pd_shift"] > 0.05
    rows = removal_effects(tm, st)
    row = next(r for r in rows if r["item"] == ITEM)
    assert row["evidence"]["predictive"]
    section = _section_unreported(rows)
    assert "predictive: default rate" in section and f"{100 * ev['default_rate_missing']:.2f}%" in section
    assert "not predictive" in section  # the other items


@pytest.mark.slow
def test_quality_report_warns_what_a_missing_item_costs_with_the_approved_models_record(planted):
    tm, _ = planted
    typed = pd.DataFrame({c: [1.0, 2.0, 3.0] for c in QualityReport("statements", []).columns})
    typed[ITEM] = np.nan
    typed["cash"] = [1.0, np.nan, 3.0]
    q = QualityReport("statements", [c for c in typed.columns if c != ITEM])
    q.add(typed)
    effects = {"version": "rating-0123456789ab", "items": tm.metrics["missing_items"]}
    report = q.finish({}, None, model_effects=effects)
    items = {m["column"]: m for m in report["missing_model_items"]}
    assert set(items) == {ITEM, "cash"}
    assert all(m["rule"] == MISSING_ITEM_RULE and m["severity"] == "warning" for m in items.values())
    shift = tm.metrics["missing_items"][ITEM]["removed_at_random"]["mean_pd_shift"]
    assert f"{shift:+.1%}" in items[ITEM]["effect"] and "rating-0123456789ab" in items[ITEM]["effect"]
    assert "risk signal" in items[ITEM]["effect"]  # planted: missing is predictive
    assert "no evidence of default" in items["cash"]["effect"]
    assert items[ITEM]["rows_missing"] == 3 and items["cash"]["rows_missing"] == 1
    # no approved model: still a warning, without a measured cost
    bare = q.finish({}, None)["missing_model_items"]
    assert len(bare) == 2 and all("No approved model" in m["effect"] for m in bare)


def test_a_submission_without_an_item_counts_a_warning(sqlite_db, tmp_path):
    from creditdb.schema import Institution
    from pipelines.ingest import submit_file
    from tests import factories as F
    from tests.conftest import TEST_KEY

    with sqlite_db.engine.begin() as conn:
        conn.execute(Institution.__table__.insert().values(code="BK1", name="Bank 1", country="JP", kind="bank"))
    frame = F.statements(5).drop(columns=[ITEM])
    res = submit_file(sqlite_db.engine, "statements", F.write_csv(frame, tmp_path / "s.csv"), "BK1",
                      key=TEST_KEY.encode(), progress=False)
    assert res.status == "loaded"
    n = len(res.quality["missing_model_items"])
    assert n >= 1 and res.issue_counts[f"warning:{MISSING_ITEM_RULE}"] == n and res.warnings >= n
    assert "BK1-B0000" not in str(res.quality)  # counts and column names only, no file value


@pytest.mark.slow
def test_scoring_applies_the_offsets_and_the_reasons_explain_the_corrected_score(planted):
    from models import reasons as R
    from models.master_scale import load_master_scale
    from pipelines.model_items import unreported_flags
    from pipelines.scoring import Scorer

    tm, st = planted
    item = "inventory"  # left out at random by the generator: corrected
    assert item in tm.unreported.items and tm.unreported.items[item][0] == "quick_ratio"
    oot = tm.table.loc[tm.table["sample"] == "oot"]
    pick = oot.loc[~oot[FLAG_PREFIX + item]].iloc[:400]
    gone = without_item(pick, st, item)
    scorer = Scorer(id=0, version="v", status="candidate", model=tm.model, calibration=tm.calibration,
                    scale=load_master_scale(), unreported=tm.unreported)
    scored = scorer.score(gone)
    np.testing.assert_allclose(scored["pd"].to_numpy(), tm.pd(gone), rtol=1e-12)
    cols = list(FEATURE_NAMES)
    raw = tm.model.raw_score(gone[cols])
    offset = tm.unreported.feature_offsets(raw, gone[cols], unreported_flags(gone), cols)[:, cols.index("quick_ratio")]
    assert (offset != 0).all()
    bare = R.reasons_as_lists(R.explain_arrays(tm.model, gone[cols], top=3))
    compared = 0
    for i, (ours, theirs) in enumerate(zip(scored["reasons"], bare, strict=True)):
        a = {r["feature"]: r["contribution"] for r in ours}
        b = {r["feature"]: r["contribution"] for r in theirs}
        if "quick_ratio" in a and "quick_ratio" in b:
            assert a["quick_ratio"] == pytest.approx(b["quick_ratio"] + offset[i], abs=2e-6)
            compared += 1
    assert compared > 0
