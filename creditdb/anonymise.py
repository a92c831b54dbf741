"""Anonymisation: keyed-hash pseudonyms and coarsening, applied before anything is stored.

* A firm's pseudonym is HMAC-SHA256(key, "corp|<country>|<corporate number>") when a
  national corporate number is given, so two institutions submitting the same firm
  link to one firm; otherwise HMAC-SHA256(key, "borrower|<institution>|<borrower key>").
* A bank's own borrower and loan keys are stored only as HMAC-SHA256 hashes, scoped to
  the institution, so that the bank can later find its borrowers by the keys it holds.
* Postal codes are cut to a region (country and first 3 characters); dates of
  establishment to the year. Names, addresses, representatives and phone numbers are
  dropped on read and never reach the database.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

import pandas as pd


def _normalise(series: pd.Series) -> pd.Series:
    """Keys compare without whitespace and case: ' ab 12 ' and 'AB12' are the same key."""
    return series.astype("string").str.replace(r"\s+", "", regex=True).str.upper()


def keyed_hash(key: bytes, values: Iterable[str]) -> list[str]:
    """HMAC-SHA256 hex digests of ``values`` (already prefixed by scope)."""
    return [hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest() for v in values]


def _hash_series(key: bytes, series: pd.Series, prefix: str) -> pd.Series:
    """Hash each distinct non-missing value once; missing stays missing."""
    norm = _normalise(series)
    uniques = norm.dropna().unique()
    if len(uniques) == 0:
        return pd.Series(pd.NA, index=series.index, dtype="string")
    table = pd.Series(keyed_hash(key, (prefix + u for u in uniques)), index=uniques, dtype="string")
    return norm.map(table).astype("string")


def borrower_hash(key: bytes, institution: str, borrower_keys: pd.Series) -> pd.Series:
    """Institution-scoped hash of the bank's own borrower key."""
    return _hash_series(key, borrower_keys, f"borrower|{institution}|")


def loan_hash(key: bytes, institution: str, loan_keys: pd.Series) -> pd.Series:
    """Institution-scoped hash of the bank's own loan key."""
    return _hash_series(key, loan_keys, f"loan|{institution}|")


def corporate_pseudonym(key: bytes, countries: pd.Series, numbers: pd.Series) -> pd.Series:
    """Firm pseudonym from the national corporate number (missing where no number)."""
    joined = countries.astype("string").str.upper() + "|" + numbers.astype("string")
    return _hash_series(key, joined.where(numbers.notna()), "corp|")


def region(countries: pd.Series, postal_codes: pd.Series) -> pd.Series:
    """Coarsen postal codes to ``CC-xyz`` (country and first 3 characters)."""
    cleaned = postal_codes.astype("string").str.replace(r"[\s\-]", "", regex=True).str[:3].str.upper()
    out = countries.astype("string").str.upper() + "-" + cleaned
    return out.where(cleaned.notna() & (cleaned.str.len() > 0))


def year(dates: pd.Series) -> pd.Series:
    """Year of a date column (nullable integer)."""
    return pd.to_datetime(dates).dt.year.astype("Int64")


__all__ = ["borrower_hash", "corporate_pseudonym", "keyed_hash", "loan_hash", "region", "year"]
