"""Reason codes: the top drivers of each firm's PD, in words a loan officer understands.

Drivers come from LightGBM tree SHAP contributions (``pred_contrib=True``): per row,
one contribution per feature to the raw score (log-odds) plus a bias column; their
sum is the raw score. Only features that *raise* the PD (positive contribution) are
reported, largest first, at most ``top`` per firm, with wording and units taken from
the feature table (``models/specs/features.toml``), e.g. "Low equity ratio (8.2%)",
"High interest-bearing debt to sales (1.9x)".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from models.ratios import FeatureSpec, feature_table


def format_value(value: Any, unit: str) -> str:
    """Human form of a feature value in its unit (ratio as %, times as x, days ...)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "not reported"
    if unit == "category":
        return str(value)
    v = float(value)
    if unit == "ratio":
        return f"{v * 100:.1f}%"
    if unit == "times":
        return f"{v:.1f}\u00d7"
    if unit == "days":
        return f"{v:.0f} days"
    if unit == "years":
        return f"{v:.0f} years"
    if unit == "log_amount":
        return f"{math.expm1(v):,.0f}"
    if unit == "flag":
        return "yes" if v >= 0.5 else "no"
    return f"{v:.4g}"


def reason_text(spec: FeatureSpec | None, feature: str, value: Any, direction: int | None = None) -> str:
    """Wording of one PD-raising reason with its value.

    ``direction``: +1 when high values raise the PD ("High ..."), -1 when low values
    do ("Low ..."), 0 when unknown (neutral wording "Label (value)"); ``None`` takes
    the feature table's expected sign.
    """
    if spec is None:
        return f"{feature} ({format_value(value, '')})"
    shown = format_value(value, spec.unit)
    if shown == "not reported":
        return f"{spec.label} not reported"
    if spec.unit == "flag":
        return spec.high if float(value) >= 0.5 else spec.low
    d = spec.sign if direction is None else direction
    if d > 0:
        head = spec.high
    elif d < 0:
        head = spec.low
    else:
        head = spec.label
    return f"{head} ({shown})"


def reason_texts(spec: FeatureSpec | None, feature: str, values: Any, direction: int | None = None) -> list[str]:
    """:func:`reason_text` for many values of one feature (same wording, one pass)."""
    vals = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values.astype(object)
    unit = "" if spec is None else spec.unit
    if spec is None or unit in ("category", "flag") or unit not in _NUMBER_FORMATS:
        return [reason_text(spec, feature, v, direction) for v in vals]
    d = spec.sign if direction is None else direction
    head = spec.high if d > 0 else spec.low if d < 0 else spec.label
    fmt = _NUMBER_FORMATS[unit]
    missing = f"{spec.label} not reported"
    out = []
    for v in vals:
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            out.append(missing)
        else:
            out.append(f"{head} ({fmt(float(v))})")
    return out


_NUMBER_FORMATS = {  # the numeric branches of format_value
    "ratio": lambda v: f"{v * 100:.1f}%",
    "times": lambda v: f"{v:.1f}\u00d7",
    "days": lambda v: f"{v:.0f} days",
    "years": lambda v: f"{v:.0f} years",
    "log_amount": lambda v: f"{math.expm1(v):,.0f}",
}


def top_reasons(contributions: pd.DataFrame, X: pd.DataFrame, top: int = 3,
                features: dict[str, FeatureSpec] | None = None,
                directions: dict[str, int] | None = None) -> pd.DataFrame:
    """Top PD-raising drivers per row.

    ``contributions``: one column per feature plus ``bias`` (as returned by
    :meth:`models.rating.RatingModel.contributions`), index aligned with ``X`` (the
    feature values). Returns a long frame with columns ``row`` (index label of X),
    ``rank`` (1 = largest), ``feature``, ``contribution`` (log-odds), ``value`` and
    ``text``, ordered by row then rank; rows with no PD-raising feature have no reasons.

    ``directions`` (feature -> +1/-1/0) says which way each feature moves the PD in
    the model; only a monotone constraint makes that certain, so :func:`explain`
    passes the model's constraints and unconstrained features get neutral wording
    ("Profit growth (-35.0%)"). ``None`` uses the feature table's expected signs.
    """
    features = feature_table() if features is None else features
    cols = [c for c in contributions.columns if c != "bias"]
    C = contributions[cols].to_numpy(dtype="float64")
    n = len(C)
    k = min(top, len(cols))
    order = np.argsort(-C, axis=1, kind="stable")[:, :k]
    best = np.take_along_axis(C, order, axis=1)
    keep = best > 0  # sorted descending, so the kept reasons of a row are its first ranks
    pos, rank0 = np.nonzero(keep)  # row-major: by row, then rank
    j = order[pos, rank0]
    value = np.empty(len(pos), dtype=object)
    text = np.empty(len(pos), dtype=object)
    for f in np.unique(j):
        m = j == f
        name = cols[f]
        vals = X[name].iloc[pos[m]] if name in X.columns else pd.Series([np.nan] * int(m.sum()), dtype=object)
        vals = vals.astype(object).where(vals.notna(), np.nan) if len(vals) else vals
        value[m] = vals.to_numpy(dtype=object)
        text[m] = reason_texts(features.get(name), name, vals.reset_index(drop=True),
                               None if directions is None else directions.get(name, 0))
    return pd.DataFrame({"row": contributions.index.to_numpy()[pos] if n else np.array([], dtype=object),
                         "rank": rank0 + 1, "feature": np.asarray(cols, dtype=object)[j] if len(j) else
                         np.array([], dtype=object), "contribution": best[pos, rank0], "value": value, "text": text},
                        columns=["row", "rank", "feature", "contribution", "value", "text"])


def explain(model: Any, X: pd.DataFrame, top: int = 3,
            features: dict[str, FeatureSpec] | None = None) -> pd.DataFrame:
    """Reason codes for ``X`` from a fitted :class:`models.rating.RatingModel`.

    Directional wording ("Low ...", "High ...") is used for the model's monotone-
    constrained features; other features are named with their value.
    """
    return top_reasons(model.contributions(X), X, top=top, features=features,
                       directions=model.monotone_constraints_)
