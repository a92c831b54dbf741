"""Numbers and dates as banks' exports write them: decimal commas, thousands separators,
negatives in parentheses, currency symbols, tokens that mean "missing", and local date
forms (``31/03/2023``, ``2024/03/31``, ``20240331``, Excel serials, ISO datetimes at midnight).

Pure functions on pandas Series of text. The clean case (plain ``1234.5`` and
``YYYY-MM-DD``) is parsed by the caller's fast path; these run only on the values that
path could not read. Nothing ambiguous is guessed: ``01/02/2023`` without a declared
date format, or ``1,5`` in a file with decimal points, is reported with the option that
settles it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: values that mean "no value" in the exports we have seen (compared case-insensitively, stripped)
DEFAULT_MISSING = ("n/a", "na", "#n/a", "-", "--", "null", "none", "nil", "#null!", "…")

#: currency signs and ISO codes that may stand before or after an amount
_CURRENCY = r"[¥￥$€£₩₫฿₱₹₭៛]|RM|Rp|JPY|USD|EUR|THB|VND|IDR|MYR|PHP|SGD|KRW|CNY|Yen|yen|円"
_CURRENCY_RE = re.compile(rf"^\s*(?:{_CURRENCY})\s*|\s*(?:{_CURRENCY})\s*$")

#: Excel's day 0 (the 1900 system, with its 29 February 1900 bug absorbed: serial 60+ are right)
_EXCEL_EPOCH = np.datetime64("1899-12-30", "D")
_SERIAL_RANGE = (10_000, 2_958_465)  # 1927-05-18 .. 9999-12-31: a bare year such as 2023 is not a serial


@dataclass(frozen=True)
class LocalFormats:
    """How one file writes numbers and dates.

    ``decimal``: the decimal mark, ``.`` or ``,`` (None in a profile: ``,`` for a
    semicolon-separated file, else ``.``; the reader settles it before parsing). ``thousands``: the grouping mark (None:
    the other of ``,``/``.`` plus spaces and apostrophes, only in groups of three digits).
    ``date_format``: a ``strftime`` pattern such as ``%d/%m/%Y`` (None: unambiguous forms only).
    ``missing``: tokens that mean no value.
    """

    decimal: str | None = "."
    thousands: str | None = None
    date_format: str | None = None
    missing: tuple[str, ...] = field(default=DEFAULT_MISSING)

    def __post_init__(self) -> None:
        if self.decimal not in (".", ",", None):
            raise ValueError(f"decimal mark must be '.' or ',' (got {self.decimal!r})")
        if self.thousands is not None and self.thousands == self.decimal:
            raise ValueError("the thousands separator cannot be the decimal mark")
        if self.date_format is not None:
            try:
                dt.datetime.strptime(dt.date(2023, 3, 31).strftime(self.date_format), self.date_format)
            except ValueError as exc:
                raise ValueError(f"date format {self.date_format!r} does not read back a date: {exc}") from None

    def as_dict(self) -> dict:
        return {"decimal": self.decimal, "thousands": self.thousands, "date_format": self.date_format,
                "missing": list(self.missing)}


def missing_mask(text: pd.Series, formats: LocalFormats) -> pd.Series:
    """True where the stripped text is empty or one of the missing tokens."""
    low = text.str.strip().str.lower()
    return low.isna() | (low == "") | low.isin({m.lower() for m in formats.missing})


def parse_numbers(text: pd.Series, formats: LocalFormats) -> tuple[pd.Series, pd.Series]:
    """Parse local number text. Returns (float64 values, message per value that did not parse).

    Messages are None where the value parsed or was missing.
    """
    values = np.full(len(text), np.nan)
    messages: list[str | None] = [None] * len(text)
    missing = missing_mask(text, formats).to_numpy()
    other = "," if formats.decimal == "." else "."
    seps = [formats.thousands] if formats.thousands is not None else [other, " ", "\u00a0", "\u202f", "'"]
    decimal = formats.decimal
    for i, raw in enumerate(text.to_numpy()):
        if missing[i]:
            continue
        if decimal is None:  # a profile's "not declared": the reader settles it before parsing
            raise ValueError("parse_numbers: the decimal mark is not settled (LocalFormats.decimal is None)")
        value, message = _number(str(raw), decimal, seps)
        if message is None:
            values[i] = value
        else:
            messages[i] = message
    return pd.Series(values, index=text.index, dtype="float64"), pd.Series(messages, index=text.index, dtype=object)


_DIGITS = re.compile(r"^\d+$")


def _number(raw: str, decimal: str, seps: list[str]) -> tuple[float, str | None]:
    s = raw.strip()
    negative = False
    if s.startswith("(") and s.endswith(")"):
        negative, s = True, s[1:-1].strip()
    s = _CURRENCY_RE.sub("", s)
    if s.startswith("(") and s.endswith(")"):  # ¥(1,000)
        negative, s = True, s[1:-1].strip()
    if s.endswith("-") and not s.startswith("-"):  # SAP writes 1.234,00-
        negative, s = True, s[:-1].strip()
    if s[:1] in "+-":
        negative ^= s[0] == "-"
        s = s[1:].strip()
    if s.endswith("%"):
        return np.nan, "must be a number without a per cent sign: give a fraction (0.021 for 2.1 %)"
    if not s:
        return np.nan, "must be a number"
    whole, _, frac = s.partition(decimal) if decimal in s else (s, "", "")
    if decimal in frac:
        return np.nan, f"must be a number (the decimal mark {decimal!r} appears twice)"
    if frac and not _DIGITS.match(frac):
        hint = (" (the file's decimal mark is '.'; declare --decimal , if it uses decimal commas)"
                if decimal == "." and "," in frac else "")
        return np.nan, "must be a number" + hint
    if not _DIGITS.match(whole):
        sep = next((c for c in seps if c in whole), None)
        groups = whole.split(sep) if sep else [whole]
        if sep is None or not all(_DIGITS.match(g) for g in groups):
            if decimal == "." and re.fullmatch(r"\d+,\d+", whole):
                return np.nan, ("must be a number: ',' here is not a thousands separator (groups of three "
                                "digits); if the file uses decimal commas, declare --decimal ,")
            if decimal == "," and re.fullmatch(r"\d+\.\d+", whole):
                return np.nan, ("must be a number: '.' here is not a thousands separator (groups of three "
                                "digits); if the file uses decimal points, declare --decimal .")
            return np.nan, "must be a number"
        if not (1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])):
            hint = (": if the file uses decimal commas, declare --decimal ,"
                    if decimal == "." and sep == "," and len(groups) == 2 else "")
            return np.nan, f"must be a number ('{sep}' does not separate groups of three digits){hint}"
        whole = "".join(groups)
    value = float(f"{whole or '0'}.{frac or '0'}")
    return (-value if negative else value), None


_ISO_DATETIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?"
                           r"(?:Z|[+-]\d{2}:?\d{2})?$")
_YMD = re.compile(r"^(\d{4})([-/.])(\d{1,2})\2(\d{1,2})$")
_DMY = re.compile(r"^(\d{1,2})([-/.])(\d{1,2})\2(\d{4})$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_SERIAL = re.compile(r"^\d{1,7}(?:\.0+)?$")


def parse_dates(text: pd.Series, formats: LocalFormats) -> tuple[pd.Series, pd.Series]:
    """Parse local date text. Returns (datetime64[s] values, message per value that did not parse)."""
    out = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[s]")
    messages: list[str | None] = [None] * len(text)
    missing = missing_mask(text, formats).to_numpy()
    for i, raw in enumerate(text.to_numpy()):
        if missing[i]:
            continue
        value, message = _date(str(raw).strip(), formats.date_format)
        if message is None:
            out[i] = np.datetime64(value, "s")
        else:
            messages[i] = message
    return pd.Series(out, index=text.index), pd.Series(messages, index=text.index, dtype=object)


def _real(y: int, m: int, d: int, raw: str) -> tuple[dt.date | None, str | None]:
    try:
        return dt.date(y, m, d), None
    except ValueError:
        if 1 <= m <= 12 and d >= 1:
            return None, f"'{raw}' is not a calendar date ({dt.date(y, m, 1):%B %Y} has no day {d})"
        return None, f"'{raw}' is not a calendar date (month {m}, day {d})"


def _date(raw: str, declared: str | None) -> tuple[dt.date | None, str | None]:
    if declared:
        try:
            return dt.datetime.strptime(raw, declared).date(), None
        except ValueError:
            pass  # an ISO date or datetime is read whatever the declared format
    m = _ISO_DATETIME.match(raw)
    if m:
        h, mi, sec = int(m[4]), int(m[5]), int(m[6] or 0)
        day, msg = _real(int(m[1]), int(m[2]), int(m[3]), raw)
        if msg:
            return None, msg
        if (h, mi, sec) != (0, 0, 0):
            return None, f"'{raw}' has a time of day: give the date alone (YYYY-MM-DD)"
        return day, None
    m = _YMD.match(raw)
    if m:
        return _real(int(m[1]), int(m[3]), int(m[4]), raw)
    m = _COMPACT.match(raw)
    if m:
        return _real(int(m[1]), int(m[2]), int(m[3]), raw)
    m = _DMY.match(raw)
    if m:
        a, b, y = int(m[1]), int(m[3]), int(m[4])
        if declared:
            return None, f"'{raw}' does not match the declared date format {declared!r}"
        if a > 12 and b <= 12:
            return _real(y, b, a, raw)  # day first: 31/03/2023
        if b > 12 and a <= 12:
            return _real(y, a, b, raw)  # month first: 03/31/2023
        if a == b:
            return _real(y, a, b, raw)
        return None, (f"'{raw}' is ambiguous (day {a} of month {b}, or month {a} day {b}?): declare the date "
                      "format, e.g. --date-format %d/%m/%Y or --date-format %m/%d/%Y")
    if _SERIAL.match(raw):
        serial = int(float(raw))
        if _SERIAL_RANGE[0] <= serial <= _SERIAL_RANGE[1]:
            return (_EXCEL_EPOCH + np.timedelta64(serial, "D")).astype(dt.date), None
    if declared:
        return None, f"'{raw}' does not match the declared date format {declared!r}"
    return None, (f"'{raw}' is not a date in a form read without a declared format (YYYY-MM-DD, "
                  "YYYY/MM/DD, YYYYMMDD, DD/MM/YYYY with a day above 12, an Excel date serial): "
                  "declare it with --date-format")
