"""Data hygiene of a feature table before modelling (research mode and training).

:func:`clean_table` looks at a table once and returns the cleaned table plus warnings,
each a dict ``{"code", "columns", "message"}`` naming the columns concerned:

* ``id_like``: a column whose values are unique per row (an identifier, not a risk
  driver: dropped, since a model would only memorise it);
* ``numbers_as_text``: a text column whose values are numbers once ``?``, ``n/a``, ``NA``,
  ``-``, empty text and similar are read as missing and decimal commas as points
  (converted to numbers);
* ``constant`` / ``all_missing``: a column with one value or none (dropped);
* ``infinite``: a numeric column holding ±inf (read as missing);
* ``duplicate_rows``: rows repeated exactly, label included (kept; counted);
* ``few_defaults``: fewer than :data:`MIN_DEFAULTS` defaults: the default rate's
  Jeffreys 95 % interval is shown, and any AUC on so few defaults is wide.

Units: counts of rows; default rates as fractions.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

MISSING_WORDS = {"", "?", "na", "n/a", "nan", "none", "null", "-", "--", ".", "#n/a", "missing"}
MIN_DEFAULTS = 100
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")


def _warning(code: str, columns: list[str], message: str) -> dict[str, Any]:
    return {"code": code, "columns": columns, "message": message}


def _as_number(values: pd.Series) -> pd.Series | None:
    """The column as floats when every non-missing text value is a number, else None."""
    text = values.astype(object).map(lambda v: None if pd.isna(v) else str(v).strip())
    missing = text.map(lambda v: v is None or v.lower() in MISSING_WORDS)
    rest = text[~missing]
    if rest.empty or not rest.map(lambda v: bool(_NUMBER.match(v))).all():
        return None
    out = pd.Series(np.nan, index=values.index, dtype="float64")
    out[~missing] = rest.map(lambda v: float(v.replace(",", "."))).astype("float64")
    return out


def _names(cols: list[Any], limit: int = 8) -> str:
    shown = ", ".join(map(str, cols[:limit]))
    return shown + (f" and {len(cols) - limit} more" if len(cols) > limit else "")


def clean_table(X: pd.DataFrame, y: Any | None = None) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Cleaned copy of ``X`` (see module docstring) and the list of warnings."""
    X = X.copy()
    warnings: list[dict[str, Any]] = []
    n = len(X)

    as_text = [c for c in X.columns if X[c].dtype == object or pd.api.types.is_string_dtype(X[c].dtype)
               or isinstance(X[c].dtype, pd.CategoricalDtype)]
    converted = []
    for c in as_text:
        num = _as_number(X[c])
        if num is not None:
            X[c] = num
            converted.append(c)
    if converted:
        warnings.append(_warning("numbers_as_text", converted,
                                 f"numbers read as text in {_names(converted)} (missing markers such as '?' "
                                 "or 'n/a', or decimal commas): converted to numbers"))

    infinite = [c for c in X.columns if pd.api.types.is_float_dtype(X[c].dtype) and np.isinf(X[c]).any()]
    for c in infinite:
        X[c] = X[c].replace([np.inf, -np.inf], np.nan)
    if infinite:
        warnings.append(_warning("infinite", infinite, f"±inf in {_names(infinite)}: read as missing"))

    all_missing = [c for c in X.columns if X[c].isna().all()]
    constant = [c for c in X.columns if c not in all_missing and X[c].nunique(dropna=True) <= 1]
    if all_missing:
        warnings.append(_warning("all_missing", all_missing, f"no value at all in {_names(all_missing)}: dropped"))
    if constant:
        warnings.append(_warning("constant", constant, f"one value only in {_names(constant)}: dropped"))

    id_like = []
    if n >= 20:
        for c in X.columns:
            if c in all_missing or c in constant:
                continue
            s = X[c]
            integral = pd.api.types.is_integer_dtype(s.dtype) or (
                pd.api.types.is_float_dtype(s.dtype) and np.all(np.mod(s.dropna(), 1) == 0))
            textual = not pd.api.types.is_numeric_dtype(s.dtype)
            if (integral or textual) and s.notna().all() and s.nunique() == n:
                id_like.append(c)
    if id_like:
        warnings.append(_warning("id_like", id_like,
                                 f"{_names(id_like)} unique per row (an identifier, not a risk driver): dropped"))
    X = X.drop(columns=[*all_missing, *constant, *id_like])

    frame = X.copy()
    if y is not None:
        frame["__label__"] = np.asarray(y)
    dup = int(frame.duplicated(keep="first").sum())
    if dup:
        warnings.append(_warning("duplicate_rows", [], f"{dup} row(s) repeat an earlier row exactly "
                                 "(kept: they weigh double, and a repeat across folds flatters the AUC)"))

    if y is not None:
        yv = np.asarray(y, dtype="float64")
        d = int(yv.sum())
        if d < MIN_DEFAULTS:
            lo, hi = stats.beta.ppf([0.025, 0.975], d + 0.5, len(yv) - d + 0.5)
            warnings.append(_warning("few_defaults", [], (
                f"only {d} defaults in {len(yv)} rows: too few for a stable estimate (default rate "
                f"{d / len(yv):.2%}, Jeffreys 95% interval {lo:.2%} to {hi:.2%}); AUCs below are wide")))
    return X, warnings
