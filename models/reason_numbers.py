"""Reason wording for many numeric values at once, equal to :func:`models.reasons.reason_text`.

Formatting a million floats one by one in Python (``f"{v * 100:.1f}%"``) is the slow part
of wording reasons. The fixed-point formats used by the feature table (``.1f``/``.0f``)
depend only on the value rounded to an integer number of tenths (or units) and on its
sign, so the rounding is done in numpy and each distinct (rounded value, sign) is worded
once. The rounding is exactly Python's wherever it is decided with certainty:

* ``.0f`` rounds the double itself half-to-even; ``np.rint`` does the same.
* ``.1f`` rounds the exact decimal value of ``x`` to tenths, i.e. ``10 x`` to an
  integer. numpy computes ``p = fl(10 x)``, off from ``10 x`` by at most half an ulp of
  ``p``; when ``p`` is more than two ulps away from the nearest half-integer, ``10 x``
  lies on the same side of it and ``rint(p)`` is Python's result. Values closer to a
  half-integer (and non-finite or huge ones) are worded by Python itself.

The sign comes from the sign bit, as Python's (``f"{-0.04:.1f}"`` is ``"-0.0"``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.ratios import FeatureSpec

#: unit -> (scale applied first, as ``format_value`` does; decimals; suffix)
FIXED_UNITS = {"ratio": (100.0, 1, "%"), "times": (1.0, 1, "\u00d7"), "days": (1.0, 0, " days"),
               "years": (1.0, 0, " years")}
BIG = 2.0 ** 52  # beyond this, doubles are integers and int64 keys could overflow after scaling


def head_of(spec: FeatureSpec, direction: int | None) -> str:
    """Leading words of a reason: ``high``/``low``/``label`` by direction (``None`` = expected sign)."""
    d = spec.sign if direction is None else direction
    return spec.high if d > 0 else spec.low if d < 0 else spec.label


def rounded_integers(p: np.ndarray, exact: bool) -> tuple[np.ndarray, np.ndarray]:
    """(``rint(p)`` as int64, mask where that is certainly the rounding of the exact value).

    ``exact``: ``p`` is the value itself (not a rounded product), so ``rint`` is exact.
    """
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(p) & (np.abs(p) < BIG)
        if not exact:
            ok &= np.abs(p - np.floor(p) - 0.5) > 2.0 * np.spacing(np.abs(p))
    k = np.rint(np.where(ok, p, 0.0)).astype(np.int64)
    return k, ok


def number_texts(spec: FeatureSpec, x: np.ndarray, direction: int | None) -> tuple[np.ndarray, list[str]] | None:
    """(code per value, vocabulary) with ``vocab[code[i]] == reason_text(spec, _, x[i], direction)``.

    ``x``: float64 feature values (NaN = not reported). ``None`` for units worded
    only one value at a time (categories, unknown units).
    """
    x = np.asarray(x, dtype=np.float64)
    nan = np.isnan(x)
    missing = f"{spec.label} not reported"
    if spec.unit == "flag":
        return np.where(nan, 2, np.where(x >= 0.5, 0, 1)).astype(np.int64), [spec.high, spec.low, missing]
    head = head_of(spec, direction)
    if spec.unit == "log_amount":
        codes = np.zeros(len(x), dtype=np.int64)
        ok = ~nan
        found, codes[ok] = _factorize([f"{head} ({math.expm1(v):,.0f})" for v in x[ok].tolist()])
        codes[ok] += 1
        return codes, [missing, *found]
    if spec.unit not in FIXED_UNITS:
        return None
    scale, decimals, suffix = FIXED_UNITS[spec.unit]
    v = x * scale if scale != 1.0 else x
    k, ok = rounded_integers(v * 10.0 if decimals else v, exact=not decimals)
    ok &= ~nan
    codes = np.zeros(len(x), dtype=np.int64)
    key = k[ok] * 2 + np.signbit(v[ok])
    kcodes, keys = pd.factorize(key)
    vocab = [missing]
    for q in keys.tolist():
        a, neg = abs(q >> 1), q & 1
        num = f"{a // 10}.{a % 10}" if decimals else str(a)
        vocab.append(f"{head} ({'-' if neg else ''}{num}{suffix})")
    codes[ok] = kcodes + 1
    odd = ~ok & ~nan  # near a rounding tie, huge or infinite: Python words them
    if odd.any():
        fmt = "{:." + str(decimals) + "f}"
        found, sub = _factorize([f"{head} ({fmt.format(w)}{suffix})" for w in v[odd].tolist()])
        codes[odd] = sub + len(vocab)
        vocab += found
    return codes, vocab


def _factorize(texts: list[str]) -> tuple[list[str], np.ndarray]:
    codes, uniq = pd.factorize(np.asarray(texts, dtype=object))
    return [str(u) for u in uniq], codes.astype(np.int64)


__all__ = ["FIXED_UNITS", "head_of", "number_texts", "rounded_integers"]
