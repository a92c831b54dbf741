"""Anonymisation: keyed-hash pseudonyms and coarsening, applied before anything is stored.

* A firm's pseudonym is HMAC-SHA256(key, "corp|<country>|<corporate number>") when a
  national corporate number is given, so two institutions submitting the same firm
  link to one firm; otherwise HMAC-SHA256(key, "borrower|<institution>|<borrower key>").
* A bank's own borrower and loan keys are stored only as HMAC-SHA256 hashes, scoped to
  the institution, so that the bank can later find its borrowers by the keys it holds.
* Postal codes are cut to a region (country and first 3 characters); dates of
  establishment to the year. Names, addresses, representatives and phone numbers are
  dropped on read and never reach the database.

Where the HMAC is computed depends on the mode (:func:`pseudonymiser`): in the embedded
SQLite mode in Python with the key file or ``CREDITDB_PSEUDONYM_KEY``; in PostgreSQL
mode inside the server (``creditdb_pseudonyms``, a SECURITY DEFINER function using
pgcrypto), so a bank's session never holds the key. Every function below takes
``key`` as either the key bytes or such a :data:`Hasher`; both give the same digests
for the same key (tested), and after a key rotation the server applies the key chain.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from creditdb.settings import Settings

#: values (already prefixed by scope) -> hex digests, same length and order; None stays None
Hasher = Callable[[list[str]], list[str]]
Key = bytes | Hasher


def _normalise(series: pd.Series) -> pd.Series:
    """Keys compare without whitespace and case: ' ab 12 ' and 'AB12' are the same key."""
    return series.astype("string").str.replace(r"\s+", "", regex=True).str.upper()


def keyed_hash(key: Key, values: Iterable[str]) -> list[str]:
    """HMAC-SHA256 hex digests of ``values`` (already prefixed by scope).

    ``key`` is the secret (bytes, hashed here) or a :data:`Hasher` that computes the
    digests elsewhere (the database server).
    """
    if callable(key):
        return list(key(list(values)))
    return [hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest() for v in values]


class DbHasher:
    """Hashes through the PostgreSQL function ``creditdb_pseudonyms``: the key stays in the server.

    One round trip per ``batch`` values. Raises ``PermissionError`` when the server
    refuses (a bank asking for another institution's scope) and ``ConfigError`` when
    the database has no key yet.
    """

    def __init__(self, engine: Engine, batch: int = 200_000) -> None:
        self.engine, self.batch = engine, batch

    def __call__(self, values: list[str]) -> list[str]:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        from creditdb.db import sqlstate
        from creditdb.settings import ConfigError

        out: list[str] = []
        if not values:
            return out
        try:
            with self.engine.connect() as conn:
                for start in range(0, len(values), self.batch):
                    out += conn.execute(text("SELECT creditdb_pseudonyms(CAST(:v AS text[]))"),
                                        {"v": [str(v) for v in values[start:start + self.batch]]}).scalar_one()
        except DBAPIError as exc:
            state = sqlstate(exc)
            msg = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
            if state == "42501":
                raise PermissionError(msg) from None
            if state == "55000":
                raise ConfigError(msg) from None
            raise
        return out


def pseudonymiser(engine: Engine | None = None, settings: Settings | None = None) -> Key:
    """What to pass as ``key`` in this mode: the key bytes (SQLite) or a :class:`DbHasher` (PostgreSQL)."""
    from creditdb.settings import get_settings, pseudonym_key

    settings = settings or get_settings()
    if settings.is_sqlite:
        return pseudonym_key(settings)
    if engine is None:
        from creditdb.db import make_engine

        engine = make_engine(settings.url)
    return DbHasher(engine)


def _hash_series(key: Key, series: pd.Series, prefix: str) -> pd.Series:
    """Hash each distinct non-missing value once; missing stays missing."""
    norm = _normalise(series)
    uniques = norm.dropna().unique()
    if len(uniques) == 0:
        return pd.Series(pd.NA, index=series.index, dtype="string")
    table = pd.Series(keyed_hash(key, (prefix + u for u in uniques)), index=uniques, dtype="string")
    return norm.map(table).astype("string")


def borrower_hash(key: Key, institution: str, borrower_keys: pd.Series) -> pd.Series:
    """Institution-scoped hash of the bank's own borrower key (``institution``: a valid code)."""
    from creditdb.codes import check_code

    return _hash_series(key, borrower_keys, f"borrower|{check_code(institution)}|")


def loan_hash(key: Key, institution: str, loan_keys: pd.Series) -> pd.Series:
    """Institution-scoped hash of the bank's own loan key (``institution``: a valid code)."""
    from creditdb.codes import check_code

    return _hash_series(key, loan_keys, f"loan|{check_code(institution)}|")


def corporate_pseudonym(key: Key, countries: pd.Series, numbers: pd.Series) -> pd.Series:
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


__all__ = ["DbHasher", "Hasher", "Key", "borrower_hash", "corporate_pseudonym", "keyed_hash", "loan_hash", "pseudonymiser",
           "region", "year"]
