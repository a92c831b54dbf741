"""Unreported optional items: mean PD shift when an item is removed at random, three ways.

Measures (not timings) the choice of issue 13, Build 4. Synthetic data
(``pipelines.synth``, 8 years, one bank), the project's spec and training
(``pipelines.training.fit``). ``--item`` (default ``interest_expense``) is blanked in a
seeded 30 % of the out-of-time statements that report it; their features are recomputed
from the blanked statements (``pipelines.unreported_report.without_item``). Relative change
of the mean PD of those statements:

* ``bare``: the fitted trees and calibration without the unreported-item offsets;
* ``offsets``: as scoring does (``TrainedModel.pd``: the offsets of ``models.unreported``);
* ``augmented``: the alternative not chosen: trees fitted on the fit sample plus a seeded
  copy with each non-predictive item blanked in 50 % of the rows, recalibrated on the
  validation slice, no offsets.

Also, with ``--all-items``, the ``offsets`` shift and grade changes of every optional item
(``pipelines.unreported_report.removal_effects``).

Usage: python benchmarks/unreported_items.py [--sizes 4000,12000] [--seeds 1,2] [--all-items]
Prints JSON lines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path[0] = str(Path(__file__).resolve().parents[1])  # not benchmarks/: its statistics.py would shadow the stdlib

from models.calibration import PD_FLOOR, fit_calibration  # noqa: E402
from models.rating import RatingModel, load_spec  # noqa: E402
from models.ratios import FEATURE_NAMES  # noqa: E402
from pipelines import synth  # noqa: E402
from pipelines.features import training_table  # noqa: E402
from pipelines.model_items import FLAG_PREFIX, optional_model_items  # noqa: E402
from pipelines.training import Design, fit  # noqa: E402
from pipelines.unreported_report import removal_effects, without_item  # noqa: E402
from tests.synth_frames import synth_frames  # noqa: E402


def measure(firms: int, seed: int, item: str, all_items: bool) -> dict:
    data = synth.generate(firms=firms, years=8, banks=1, seed=seed, today=dt.date(2026, 1, 1))
    st, d, _ = synth_frames(data)
    cutoff = pd.Timestamp(data.meta["as_of"]).date()
    tm = fit(training_table(st, d, cutoff), load_spec(), Design(cutoff=cutoff), 0)
    cols = list(FEATURE_NAMES)
    T = tm.table
    oot = T[T["sample"] == "oot"]
    have = oot[~oot[FLAG_PREFIX + item].to_numpy(dtype=bool)]
    pick = have[np.random.default_rng(seed).random(len(have)) < 0.3]
    gone = without_item(pick, st, item)

    def bare(frame: pd.DataFrame) -> np.ndarray:
        return tm.calibration.predict(tm.model.raw_score(frame[cols]))

    fitp, valid = T[T["sample"] == "fit"], T[T["sample"] == "valid"]
    rng = np.random.default_rng(0)
    aug = fitp[cols].copy()
    for it, e in tm.metrics["missing_items"].items():
        if not e["predictive"]:
            aug.loc[rng.random(len(aug)) < 0.5, optional_model_items()[it]] = np.nan
    m_aug = RatingModel(tm.spec).fit(pd.concat([fitp[cols], aug]), pd.concat([fitp["label"], fitp["label"]]),
                                     valid[cols], valid["label"])
    c_aug = fit_calibration(m_aug.raw_score(valid[cols]), valid["label"], target_rate=tm.calibration.target_rate,
                            floor=PD_FLOOR)

    def augmented(frame: pd.DataFrame) -> np.ndarray:
        return c_aug.predict(m_aug.raw_score(frame[cols]))

    def shift(f) -> float:
        return float(f(gone).mean() / f(pick).mean() - 1.0)

    ev = tm.metrics["missing_items"][item]
    out = {"firms": firms, "seed": seed, "item": item, "oot_statements": len(oot), "removed": len(pick),
           "fisher_p": ev["p_value"], "predictive": ev["predictive"],
           "shift": {"bare": shift(bare), "offsets": shift(tm.pd), "augmented": shift(augmented)},
           "auc_oot": {"offsets": tm.metrics["auc"]["model"]["oot"]}}
    if all_items:
        out["all_items"] = {r["item"]: {k: r.get(k) for k in ("rows", "mean_pd_shift", "grade_changed_share")}
                            for r in removal_effects(tm, st, seed=seed)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="4000,12000")
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--item", default="interest_expense")
    ap.add_argument("--all-items", action="store_true")
    a = ap.parse_args()
    for firms in (int(x) for x in a.sizes.split(",")):
        for seed in (int(x) for x in a.seeds.split(",")):
            print(json.dumps(measure(firms, seed, a.item, a.all_items)), flush=True)


if __name__ == "__main__":
    main()
