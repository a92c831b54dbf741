"""What leaving out an optional item does to PDs: each item removed at random from the out-of-time sample.

For each optional model item (``pipelines.model_items``), a seeded random ``share`` (default
30 %) of the out-of-time statements that report it lose it: the item is blanked in the
statement and the statement's features are recomputed from it (``models.ratios``; the
growth rates read only required items and are kept). The trained model scores both
versions as scoring does (``TrainedModel.pd``: unreported-item offsets included). Reported
per item: the rows, the mean PD with and without the item (fractions), the relative shift
of the mean PD, the mean absolute relative change per firm, the shares of firms whose PD
goes up and down and the share of firms whose master-scale grade changes, next to the development sample's Fisher evidence
(``metrics["missing_items"]``). No value of any statement leaves this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models.master_scale import assign_grade
from models.ratios import FEATURE_NAMES, compute_features
from pipelines.model_items import FLAG_PREFIX, frame_column, optional_model_items
from pipelines.training import TrainedModel

#: share of the out-of-time statements reporting an item that lose it
REMOVED_SHARE = 0.3
#: features that read no optional item: kept from the table (they need the firm's history)
_HISTORY = ("sales_growth", "profit_growth")


def without_item(rows: pd.DataFrame, statements: pd.DataFrame, item: str) -> pd.DataFrame:
    """``rows`` of the modelling table as they would be had their statements left ``item`` out.

    ``statements``: the statements frame the table was built from (``statement_id`` and
    the raw columns). Features are recomputed from the blanked statements; the growth
    rates are kept; the ``unreported:<item>`` flag is set.
    """
    src = statements.set_index("statement_id").loc[rows["statement_id"].to_numpy()].reset_index()
    src[frame_column(item)] = np.nan
    feats = compute_features(src)
    out = rows.copy()
    for c in FEATURE_NAMES:
        if c not in _HISTORY:
            out[c] = feats[c].to_numpy() if c != "industry" else out[c]
    out[FLAG_PREFIX + item] = True
    return out


def removal_effects(tm: TrainedModel, statements: pd.DataFrame, share: float = REMOVED_SHARE,
                    seed: int = 0) -> list[dict[str, Any]]:
    """Per optional item: PD and grade shift when it is removed at random from ``share`` of the OOT sample.

    Seeded (``seed`` and the item's position): the same model and data give the same
    figures. Items that no out-of-time statement reports are listed with ``rows`` 0.
    """
    table = tm.table
    oot = table.loc[table["sample"] == "oot"]
    evidence = tm.metrics.get("missing_items", {})
    out = []
    for k, item in enumerate(optional_model_items()):
        flag = FLAG_PREFIX + item
        have = oot.loc[~oot[flag].to_numpy(dtype=bool)] if flag in oot.columns else oot.iloc[:0]
        rng = np.random.default_rng([seed, k])
        pick = have.loc[rng.random(len(have)) < share]
        row: dict[str, Any] = {"item": item, "features": optional_model_items()[item], "rows": int(len(pick)),
                               "share_removed": share, "evidence": evidence.get(item)}
        if len(pick):
            before = tm.pd(pick)
            after = tm.pd(without_item(pick, statements, item))
            g0, g1 = assign_grade(before), assign_grade(after)
            row.update({"mean_pd_with": float(before.mean()), "mean_pd_without": float(after.mean()),
                        "mean_pd_shift": float(after.mean() / before.mean() - 1.0),
                        "mean_abs_firm_shift": float(np.mean(np.abs(after / before - 1.0))),
                        "share_pd_up": float(np.mean(after > before)), "share_pd_down": float(np.mean(after < before)),
                        "grade_changed_share": float(np.mean(g0 != g1))})
        out.append(row)
    return out


def record_removal_effects(tm: TrainedModel, statements: pd.DataFrame) -> None:
    """Add each item's :func:`removal_effects` (seeded by the model's seed) to ``metrics["missing_items"]``.

    As ``removed_at_random``: rows, share removed, mean PD shift, mean absolute firm shift,
    shares of PDs up and down, share of grades changed. The submission quality report of
    the approved model quotes them (``pipelines.quality_report``).
    """
    keys = ("rows", "share_removed", "mean_pd_shift", "mean_abs_firm_shift", "share_pd_up", "share_pd_down",
            "grade_changed_share")
    for row in removal_effects(tm, statements, seed=tm.seed):
        if row["item"] in tm.metrics.get("missing_items", {}) and row["rows"]:
            tm.metrics["missing_items"][row["item"]]["removed_at_random"] = {k: row[k] for k in keys}
