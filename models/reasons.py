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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.ratios import FeatureSpec, feature_table
from models.reason_numbers import number_texts


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


_NUMBER_FORMATS: dict[str, Callable[[float], str]] = {  # the numeric branches of format_value
    "ratio": lambda v: f"{v * 100:.1f}%",
    "times": lambda v: f"{v:.1f}\u00d7",
    "days": lambda v: f"{v:.0f} days",
    "years": lambda v: f"{v:.0f} years",
    "log_amount": lambda v: f"{math.expm1(v):,.0f}",
}


@dataclass
class TopReasons:
    """Top PD-raising drivers per row as ``(rows, k)`` arrays, ranks in columns.

    Slot ``r`` of a row is used when ``r < count[row]`` (kept reasons are a row's
    first ranks). ``feature``: column index into ``names``; ``contribution``: log-odds;
    ``text``: index into ``vocab`` (the reason wording, :func:`reason_text`), whose
    entry ``i`` belongs to feature ``vocab_feature[i]``. Unused slots hold -1 / 0.0.
    """

    names: list[str]
    feature: np.ndarray
    contribution: np.ndarray
    count: np.ndarray
    text: np.ndarray
    vocab: list[str]
    vocab_feature: np.ndarray


def _top_k(C: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(column order, values) of the ``k`` largest entries per row, largest first, ties by column.

    Equal to the first ``k`` columns of a stable ``argsort(-C)`` wherever the values are
    positive (the only ones reported); ``k`` passes of ``argmax`` (first maximum) instead
    of a full sort, over the feature-major copy.
    """
    n = len(C)
    if np.isnan(C).any():  # argmax and argsort place NaN differently: keep the sort
        order = np.argsort(-C, axis=1, kind="stable")[:, :k]
        return order, np.take_along_axis(C, order, axis=1)
    W = np.array(C.T, order="C")  # (features, rows)
    rows = np.arange(n)
    order = np.empty((n, k), dtype=np.int64)
    best = np.empty((n, k), dtype=np.float64)
    for r in range(k):
        top = W.max(axis=0)
        j = np.zeros(n, dtype=np.int64)
        for f in range(len(W) - 1, -1, -1):  # the first column holding the maximum (argmax's choice)
            j = np.where(W[f] == top, f, j)
        order[:, r] = j
        best[:, r] = top
        W[j, rows] = -np.inf
    return order, best


def _texts_of(spec: FeatureSpec | None, name: str, col: pd.Series | None, rows: np.ndarray,
              direction: int | None) -> tuple[np.ndarray, list[str]]:
    """(code per row, vocabulary): :func:`reason_text` of ``name``'s value at each of ``rows``."""
    if col is not None and isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()[rows].astype(np.int64)
        cats = list(col.cat.categories)
        vocab = [reason_text(spec, name, c, direction) for c in cats] + [reason_text(spec, name, np.nan, direction)]
        return np.where(codes < 0, len(cats), codes), vocab
    x = np.full(len(rows), np.nan) if col is None else _numeric_values_of(col, rows)
    if x is not None and spec is not None:
        got = number_texts(spec, x, direction)
        if got is not None:
            return got
    vals = col.iloc[rows].astype(object).where(col.iloc[rows].notna(), np.nan) if col is not None else \
        pd.Series([np.nan] * len(rows), dtype=object)
    codes, uniq = pd.factorize(pd.Series(reason_texts(spec, name, vals.reset_index(drop=True), direction),
                                         dtype=object))
    return codes.astype(np.int64), [str(u) for u in uniq]


def _numeric_values_of(col: pd.Series, rows: np.ndarray) -> np.ndarray | None:
    if pd.api.types.is_bool_dtype(col.dtype) or not pd.api.types.is_numeric_dtype(col.dtype):
        return None
    return col.to_numpy(dtype=np.float64, na_value=np.nan)[rows]


def top_reason_arrays(contributions: pd.DataFrame | np.ndarray, X: pd.DataFrame, top: int = 3,
                      features: dict[str, FeatureSpec] | None = None,
                      directions: dict[str, int] | None = None,
                      names: list[str] | None = None) -> TopReasons:
    """Top PD-raising drivers per row as :class:`TopReasons` (see :func:`top_reasons`).

    ``contributions`` is a frame as in :func:`top_reasons` or a ``(rows, features[+bias])``
    array whose first columns are ``names``; rows are positions of ``X``.
    """
    features = feature_table() if features is None else features
    if isinstance(contributions, pd.DataFrame):
        names = [c for c in contributions.columns if c != "bias"]
        C = contributions[names].to_numpy(dtype="float64")
    else:
        if names is None:
            raise ValueError("names: required with an array of contributions")
        C = np.asarray(contributions, dtype="float64")[:, :len(names)]
    n = len(C)
    k = min(top, len(names))
    order, best = _top_k(C, k) if n and k else (np.zeros((n, k), np.int64), np.zeros((n, k)))
    keep = best > 0  # descending, so the kept reasons of a row are its first ranks
    count = keep.sum(axis=1)
    feature = np.where(keep, order, -1)
    contribution = np.where(keep, best, 0.0)
    text = np.full((n, k), -1, dtype=np.int64)
    vocab: list[str] = []
    vocab_feature: list[int] = []
    slots = np.flatnonzero(keep.ravel())  # row-major: row * k + rank
    by_feature = slots[np.argsort(feature.ravel()[slots], kind="stable")]  # rows ascending within a feature
    fs = feature.ravel()[by_feature]
    cuts = np.flatnonzero(np.diff(fs)) + 1
    text_flat = text.ravel()
    for part in np.split(by_feature, cuts) if len(by_feature) else []:
        f = int(feature.ravel()[part[0]])
        name = names[f]
        codes, words = _texts_of(features.get(name), name, X[name] if name in X.columns else None, part // k,
                                 None if directions is None else directions.get(name, 0))
        text_flat[part] = codes + len(vocab)
        vocab += words
        vocab_feature += [f] * len(words)
    return TopReasons(list(names), feature, contribution, count, text, vocab,
                      np.asarray(vocab_feature, dtype=np.int64))


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
    t = top_reason_arrays(contributions, X, top=top, features=features, directions=directions)
    return long_frame(t, contributions.index, X)


def long_frame(t: TopReasons, index: pd.Index, X: pd.DataFrame) -> pd.DataFrame:
    """:class:`TopReasons` as :func:`top_reasons`' long frame (rows labelled by ``index``)."""
    pos, rank0 = np.nonzero(t.feature >= 0)  # row-major: by row, then rank
    j = t.feature[pos, rank0]
    value = np.empty(len(pos), dtype=object)
    for f in np.unique(j):
        m = j == f
        name = t.names[f]
        vals = X[name].iloc[pos[m]] if name in X.columns else pd.Series([np.nan] * int(m.sum()), dtype=object)
        vals = vals.astype(object).where(vals.notna(), np.nan) if len(vals) else vals
        value[m] = vals.to_numpy(dtype=object)
    vocab = np.asarray(t.vocab, dtype=object)
    return pd.DataFrame({"row": index.to_numpy()[pos] if len(index) else np.array([], dtype=object),
                         "rank": rank0 + 1, "feature": np.asarray(t.names, dtype=object)[j] if len(j) else
                         np.array([], dtype=object), "contribution": t.contribution[pos, rank0], "value": value,
                         "text": vocab[t.text[pos, rank0]] if len(j) else np.array([], dtype=object)},
                        columns=["row", "rank", "feature", "contribution", "value", "text"])


def explain(model: Any, X: pd.DataFrame, top: int = 3,
            features: dict[str, FeatureSpec] | None = None, raw: np.ndarray | None = None) -> pd.DataFrame:
    """Reason codes for ``X`` from a fitted :class:`models.rating.RatingModel`.

    Directional wording ("Low ...", "High ...") is used for the model's monotone-
    constrained features; other features are named with their value. ``raw``: the
    model's raw scores of ``X`` when already computed (spares a prediction).
    """
    return top_reasons(model.contributions(X, raw=raw), X, top=top, features=features,
                       directions=model.monotone_constraints_)


def explain_arrays(model: Any, X: pd.DataFrame, top: int = 3, features: dict[str, FeatureSpec] | None = None,
                   raw: Any = None) -> TopReasons:
    """:func:`explain` as :class:`TopReasons` (rows = positions of ``X``), without the long frame.

    ``raw``: as for :meth:`models.rating.RatingModel.contribution_matrix` (array, future or None).
    """
    Xa = model._aligned(X)
    values = model.contribution_matrix(Xa, raw=raw)
    return top_reason_arrays(values, Xa, top=top, features=features, directions=model.monotone_constraints_,
                             names=list(model.feature_names_))


def reasons_as_json(t: TopReasons, threads: int = 2) -> Any:
    """Per row, ``json.dumps`` (``ensure_ascii=False``) of :func:`reasons_as_lists`' list, composed in bulk.

    Returned as pandas stores text by default (an arrow-backed ``str`` array, else objects).
    """
    from models.reason_json import text_column

    return text_column(_json_of(t, threads))


def _json_of(t: TopReasons, threads: int) -> Any:
    from models.reason_json import item_prefixes, json_lists

    return json_lists(t.text, item_prefixes(t.names, t.vocab_feature, t.vocab), t.contribution, t.count,
                      threads=threads)


def explain_json(model: Any, X: pd.DataFrame, top: int = 3, raw: Any = None, threads: int = 2) -> Any:
    """:func:`explain_arrays` + :func:`reasons_as_json`, the rows split between ``threads`` threads.

    Wording and JSON of one part of the rows run while another part's numpy/arrow steps
    hold no GIL. Same result as the two calls one after the other.
    """
    import pyarrow as pa

    from models.reason_json import text_column

    Xa = model._aligned(X)
    values = model.contribution_matrix(Xa, raw=raw)
    names, directions = list(model.feature_names_), model.monotone_constraints_
    n = len(Xa)
    parts = max(1, min(threads, n // 50_000))
    cuts = np.linspace(0, n, parts + 1).astype(int)

    def part(i: int) -> Any:
        rows = slice(cuts[i], cuts[i + 1])
        t = top_reason_arrays(values[rows], Xa.iloc[rows], top=top, directions=directions, names=names)
        return _json_of(t, threads=1)

    if parts == 1:
        return text_column(part(0))
    with ThreadPoolExecutor(parts) as pool:
        chunks = list(pool.map(part, range(parts)))
    return text_column(pa.chunked_array(chunks, type=pa.large_string()))


def reasons_as_lists(t: TopReasons) -> list[list[dict[str, Any]]]:
    """Per row, its reasons as ``{"feature", "text", "contribution"}`` dicts, contribution rounded to 6 decimals."""
    from models.reason_json import rounded6

    n, k = t.feature.shape
    used = t.feature >= 0
    rounded = np.zeros((n, k))
    if used.any():
        rounded[used] = rounded6(t.contribution[used])[2]
    names, vocab = t.names, t.vocab
    out: list[list[dict[str, Any]]] = []
    for f_row, w_row, c_row, c in zip(t.feature.tolist(), t.text.tolist(), rounded.tolist(), t.count.tolist(), strict=False):
        out.append([{"feature": names[f_row[r]], "text": vocab[w_row[r]], "contribution": c_row[r]}
                    for r in range(c)])
    return out
