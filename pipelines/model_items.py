"""Which statement items feed which rating-model input, and which of them a bank may leave out.

Derived, not listed by hand: the data dictionary (``pipelines/dictionary.py``) says which
statement columns are required; the feature table (``models/specs/features.toml``) says in
each formula which columns a feature reads. An *optional model item* is a statement column
that is not required and feeds at least one feature: when a bank leaves it out, those
features are unknown for the statement.
"""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from importlib import resources

import pandas as pd

from pipelines import dictionary as D

#: prefix of the training table's per-item flags: ``unreported:interest_expense`` is True
#: where the statement did not report ``interest_expense``
FLAG_PREFIX = "unreported:"


@lru_cache(maxsize=1)
def model_inputs() -> dict[str, list[str]]:
    """Statement column -> the rating model's inputs (features.toml) whose formula reads it.

    A date column also feeds a formula that reads its year (``established`` ->
    ``established_year`` -> ``firm_age``).
    """
    spec = tomllib.loads(resources.files("models").joinpath("specs/features.toml").read_text(encoding="utf-8"))
    names = [c.name for c in D.STATEMENTS if c.type in ("amount", "int", "date")]
    out: dict[str, list[str]] = {}
    for feature in spec["feature"]:
        formula = feature.get("formula", "")
        for col in names:
            if re.search(rf"\b{col}(_year)?\b", formula) or (col == "sales" and "annual sales" in formula):
                out.setdefault(col, []).append(feature["name"])
    return out


@lru_cache(maxsize=1)
def optional_model_items() -> dict[str, list[str]]:
    """Optional statement item -> the features it feeds (amounts and dates; not ``months``, which defaults to 12)."""
    types = {c.name: c.type for c in D.STATEMENTS}
    required = set(D.required("statements"))
    return {col: feats for col, feats in model_inputs().items()
            if col not in required and types.get(col) in ("amount", "date")}


def frame_column(item: str) -> str:
    """The column of a statements frame (``pipelines.features.load_statements``) holding ``item``."""
    return "established_year" if item == "established" else item


def unreported_flags(frame: pd.DataFrame) -> pd.DataFrame:
    """Per optional model item a boolean column: True where the row did not report it.

    From the training table's ``unreported:<item>`` flags when present, else from the raw
    statement column (missing = unreported), else (a frame of features only) from the
    features: unreported where all the item's features are NaN.
    """
    out = {}
    for item, feats in optional_model_items().items():
        col = frame_column(item)
        if FLAG_PREFIX + item in frame.columns:
            out[item] = frame[FLAG_PREFIX + item].to_numpy(dtype=bool)
        elif col in frame.columns:
            out[item] = frame[col].isna().to_numpy()
        else:
            out[item] = frame[feats].isna().all(axis=1).to_numpy()
    return pd.DataFrame(out, index=frame.index)
