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

import numpy as np
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


def contribution_texts(c: np.ndarray) -> pa.Array:
    """``repr(round(float(v), 6))`` for every value of ``c`` (float64) as a pyarrow string array."""
    m, ok, r = rounded6(c)
    m = np.where(ok, m, 0)
    whole = pc.cast(pa.array(m // MILLION), pa.large_string())
    frac = m % MILLION
    digits = pc.utf8_rtrim(pc.utf8_lpad(pc.cast(pa.array(frac), pa.large_string()), width=6, padding="0"),
                           characters="0")
    digits = pc.if_else(pa.array(frac == 0), pa.scalar("0", pa.large_string()), digits)
    out = pc.binary_join_element_wise(whole, digits, _s("."))
    odd = ~ok
    if odd.any():
        out = pc.replace_with_mask(out, pa.array(odd),
                                   pa.array([repr(v) for v in r[odd].tolist()], type=pa.large_string()))
    return out


def item_prefix(feature: str, text: str) -> str:
    """``'{"feature": F, "text": T, "contribution": '`` as ``json.dumps`` writes it."""
    return ('{"feature": ' + json.dumps(feature, ensure_ascii=False) + ', "text": '
            + json.dumps(text, ensure_ascii=False) + ', "contribution": ')


def json_lists(prefix_code: np.ndarray, prefixes: list[str], contribution: np.ndarray,
               count: np.ndarray) -> np.ndarray:
    """JSON text per row (object array of str) of its first ``count[row]`` items.

    Item ``r`` of a row is ``prefixes[prefix_code[row, r]]`` + the contribution's number
    + ``"}"``; items are joined with ``", "`` inside ``[...]`` (``json.dumps`` layout).
    """
    n, k = prefix_code.shape
    if n == 0:
        return np.array([], dtype=object)
    vocab = pa.array(prefixes, type=pa.large_string())
    items = []
    for r in range(k):
        unused = count <= r
        if unused.all():
            break
        head = pc.take(vocab, pa.array(np.where(unused, 0, prefix_code[:, r]), mask=unused))
        items.append(pc.binary_join_element_wise(head, contribution_texts(np.where(unused, 1.0, contribution[:, r])),
                                                 _s("}"), _s("")))
    close = pa.scalar("]", pa.large_string())
    tail: pa.Array | pa.Scalar = close
    for item in reversed(items[1:]):  # a row's items are its first ranks: a null item ends the row
        tail = pc.coalesce(pc.binary_join_element_wise(_s(", "), item, tail, _s("")), tail)
    if not items:
        return np.full(n, "[]", dtype=object)
    out = pc.coalesce(pc.binary_join_element_wise(_s("["), items[0], tail, _s("")),
                      pa.scalar("[]", pa.large_string()))
    return np.asarray(out.to_numpy(zero_copy_only=False), dtype=object)


__all__ = ["contribution_texts", "item_prefix", "json_lists", "rounded6"]
