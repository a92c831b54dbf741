"""Reasons of many rows as JSON text, composed in bulk (pyarrow string kernels).

Each row's text equals ``json.dumps(reasons, ensure_ascii=False)`` of its list of
``{"feature", "text", "contribution"}`` dicts, ``contribution`` being
``round(float(c), 6)`` (log-odds). The pieces:

* ``'{"feature": F, "text": T, "contribution": '`` is composed (with ``json.dumps`` for
  the quoting) once per distinct wording, not once per row;
* the number is written from the integer ``m = round(c * 10**6)``: ``round(c, 6)`` is
  the double nearest to ``m / 10**6``, which IEEE division gives exactly, and its
  ``repr`` (shortest round-trip digits; fixed notation from 1e-4 on) is ``m / 10**6``
  in decimal with trailing zeros dropped, since two decimals of at most 15 significant
  digits never share a double. ``m`` is taken from ``fl(c * 10**6)`` only where that is
  more than two ulps from a rounding tie; other values (and those below 1e-4, written in
  scientific notation, or of 1e9 and more) are written by Python itself.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from models.reason_numbers import rounded_integers

MILLION = 10 ** 6


def _s(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())


def rounded6(c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(``m``, fast mask, ``round(c, 6)``) for float64 ``c``: ``m / 1e6`` is the rounding where the mask holds."""
    c = np.asarray(c, dtype=np.float64)
    m, ok = rounded_integers(c * 1e6, exact=False)
    ok &= (m >= 100) & (m < 10 ** 15)
    r = m / 1e6
    odd = np.flatnonzero(~ok)
    if len(odd):
        r[odd] = [round(v, 6) for v in c[odd].tolist()]
    return m, ok, r


def contribution_texts(c: np.ndarray, suffix: str = "", blank: np.ndarray | None = None) -> pa.Array:
    """``repr(round(float(v), 6)) + suffix`` for every value of ``c`` (float64), pyarrow strings.

    ``blank``: mask of entries written as ``""`` instead (unused reason slots).
    """
    m, ok, r = rounded6(c)
    m = np.where(ok, m, 0)
    whole = pc.cast(pa.array(m // MILLION), pa.large_string())
    frac = m % MILLION
    digits = pc.utf8_rtrim(pc.utf8_lpad(pc.cast(pa.array(frac), pa.large_string()), width=6, padding="0"),
                           characters="0")
    digits = pc.if_else(pa.array(frac == 0), _s("0"), digits)
    out = pc.binary_join_element_wise(whole, _s("."), digits, _s(suffix), _s(""))
    blank = np.zeros(len(m), dtype=bool) if blank is None else blank
    other = ~ok | blank
    if other.any():
        fill = ["" if b else repr(v) + suffix for v, b in zip(r[other].tolist(), blank[other].tolist(), strict=False)]
        out = pc.replace_with_mask(out, pa.array(other), pa.array(fill, type=pa.large_string()))
    return out


def item_prefix(feature: str, text: str) -> str:
    """``'{"feature": F, "text": T, "contribution": '`` as ``json.dumps`` writes it."""
    return ('{"feature": ' + json.dumps(feature, ensure_ascii=False) + ', "text": '
            + json.dumps(text, ensure_ascii=False) + ', "contribution": ')


#: characters ``json.dumps(..., ensure_ascii=False)`` escapes; other text is only put in quotes
NEEDS_ESCAPE = r'["\\\x00-\x1f]'


def item_prefixes(features: list[str], feature_of: np.ndarray, texts: list[str]) -> pa.Array:
    """:func:`item_prefix` of ``(features[feature_of[i]], texts[i])`` for every ``i``, in bulk."""
    heads = pa.array(['{"feature": ' + json.dumps(f, ensure_ascii=False) + ', "text": "' for f in features],
                     type=pa.large_string())
    words = pa.array(texts, type=pa.large_string())
    out = pc.binary_join_element_wise(pc.take(heads, pa.array(feature_of, type=pa.int64())), words,
                                      _s('", "contribution": '), _s(""))
    odd = pc.match_substring_regex(words, NEEDS_ESCAPE)
    if pc.any(odd).as_py():
        where = np.flatnonzero(odd.to_numpy(zero_copy_only=False))
        out = pc.replace_with_mask(out, odd, pa.array([item_prefix(features[feature_of[i]], texts[i]) for i in where],
                                                      type=pa.large_string()))
    return out


def text_column(values: pa.Array) -> Any:
    """Strings as pandas stores text by default (arrow-backed ``str`` without copies, else objects)."""
    if isinstance(values, pa.ChunkedArray) and not isinstance(pd.Series(["x"]).dtype, pd.StringDtype):
        values = values.combine_chunks()
    dtype = pd.Series(["x"]).dtype
    if isinstance(dtype, pd.StringDtype):
        return pd.array(values, dtype=dtype)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)


def json_lists(prefix_code: np.ndarray, prefixes: list[str] | pa.Array, contribution: np.ndarray,
               count: np.ndarray, threads: int = 2) -> pa.Array | pa.ChunkedArray:
    """JSON text per row (pyarrow strings) of its first ``count[row]`` items; see :func:`json_rows`.

    The rows are split between ``threads`` threads (arrow's kernels release the GIL).
    """
    n = len(prefix_code)
    vocab = prefixes if isinstance(prefixes, pa.Array) else pa.array(prefixes, type=pa.large_string())
    parts = max(1, min(threads, n // 50_000))
    if parts == 1:
        return json_rows(prefix_code, vocab, contribution, count)
    cuts = np.linspace(0, n, parts + 1).astype(int)
    with ThreadPoolExecutor(parts) as pool:
        chunks = list(pool.map(lambda i: json_rows(prefix_code[cuts[i]:cuts[i + 1]], vocab,
                                                   contribution[cuts[i]:cuts[i + 1]], count[cuts[i]:cuts[i + 1]]),
                               range(parts)))
    return pa.chunked_array(chunks, type=pa.large_string())


def json_rows(prefix_code: np.ndarray, prefixes: list[str] | pa.Array, contribution: np.ndarray,
              count: np.ndarray) -> pa.Array:
    """JSON text per row (pyarrow strings) of its first ``count[row]`` items.

    Item ``r`` of a row is ``prefixes[prefix_code[row, r]]`` + the contribution's number
    + ``"}"``; items are joined with ``", "`` inside ``[...]`` (``json.dumps`` layout).
    """
    n, k = prefix_code.shape
    if n == 0:
        return pa.array([], type=pa.large_string())
    vocab = prefixes if isinstance(prefixes, pa.Array) else pa.array(prefixes, type=pa.large_string())
    empty = len(vocab)  # index of "" in the vocabularies below (an unused slot)
    first = pa.concat_arrays([vocab, pa.array([""], type=pa.large_string())])
    later = pa.concat_arrays([pc.binary_join_element_wise(_s(", "), vocab, _s("")),
                              pa.array([""], type=pa.large_string())])
    parts: list[Any] = [_s("[")]
    for r in range(k):  # a row's items are its first ranks; unused slots are empty strings
        unused = count <= r
        if unused.all():
            break
        parts.append(pc.take(first if r == 0 else later, pa.array(np.where(unused, empty, prefix_code[:, r]))))
        parts.append(contribution_texts(np.where(unused, 1.0, contribution[:, r]), "}", unused))
    if len(parts) == 1:  # no row has a reason
        return pa.array(["[]"] * n, type=pa.large_string())
    return pc.binary_join_element_wise(*parts, _s("]"), _s(""))


__all__ = ["contribution_texts", "item_prefix", "item_prefixes", "json_lists", "json_rows", "rounded6", "text_column"]
