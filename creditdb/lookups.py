"""Identity and registry lookups: the one place each of them is written.

* institution by code (:func:`institution`, :func:`require_institution`);
* firm by a bank's borrower key (:func:`firm_ids_by_borrower_key`, or by the keyed
  hash: :func:`firm_ids_by_borrower_hash`) or by corporate number
  (:func:`firm_ids_by_corporate_number`, or by pseudonym: :func:`firm_ids_by_pseudonym`,
  :func:`firms_by_pseudonym`);
* the approved model (:func:`approved_model`);
* the latest score of firms (:func:`latest_scores`).

Every function takes an open connection and reads inside the caller's transaction
(and under its row-level security). Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Row, select

from creditdb import anonymise as anon
from creditdb.anonymise import Key
from creditdb.bulk import lookup
from creditdb.schema import BorrowerLink, Firm, Institution, ModelVersion, Score


class UnknownInstitution(LookupError):
    """No institution is registered under the code asked for."""


@dataclass(frozen=True)
class InstitutionRef:
    """A registered institution: database id, code, country (ISO 3166 alpha-2) and kind."""

    id: int
    code: str
    country: str
    kind: str


def institution(conn: Connection, code: str) -> InstitutionRef | None:
    """The institution registered as ``code``, or None."""
    i = Institution.__table__.c
    row = conn.execute(select(i.id, i.code, i.country, i.kind).where(i.code == code)).first()
    return None if row is None else InstitutionRef(int(row.id), row.code, row.country, row.kind)


def require_institution(conn: Connection, code: str) -> InstitutionRef:
    """The institution registered as ``code``; raises :class:`UnknownInstitution` if none."""
    inst = institution(conn, code)
    if inst is None:
        raise UnknownInstitution(f"unknown institution {code!r}: register it with 'creditdb institution add'")
    return inst


def firm_ids_by_borrower_hash(conn: Connection, institution_id: int, hashes: pd.Series) -> pd.Series:
    """Firm id of each borrower hash of one institution (NaN where it has no link), aligned to ``hashes``."""
    links = lookup(conn, BorrowerLink.__table__, "borrower_hash", list(pd.unique(hashes.dropna())),
                   ["borrower_hash", "firm_id"], where={"institution_id": int(institution_id)})
    return hashes.map(dict(zip(links.borrower_hash, links.firm_id, strict=True)))


def firm_ids_by_borrower_key(conn: Connection, key: Key, inst: InstitutionRef, borrower_keys: pd.Series) -> pd.Series:
    """Firm id of each of a bank's own borrower keys (NaN if not linked), aligned to ``borrower_keys``."""
    return firm_ids_by_borrower_hash(conn, inst.id, anon.borrower_hash(key, inst.code, borrower_keys))


def firms_by_pseudonym(conn: Connection, pseudonyms: Iterable[str]) -> pd.DataFrame:
    """The firms (columns ``pseudonym``, ``id``) among ``pseudonyms`` that exist and the session may see."""
    return lookup(conn, Firm.__table__, "pseudonym", list(pseudonyms), ["pseudonym", "id"])


def firm_ids_by_pseudonym(conn: Connection, pseudonyms: pd.Series) -> pd.Series:
    """Firm id of each pseudonym (NaN if no such firm), aligned to ``pseudonyms``."""
    known = firms_by_pseudonym(conn, pd.unique(pseudonyms.dropna()))
    return pseudonyms.map(dict(zip(known.pseudonym, known.id, strict=True)))


def firm_ids_by_corporate_number(conn: Connection, key: Key, countries: pd.Series,
                                 numbers: pd.Series) -> pd.Series:
    """Firm id of each (country, corporate number) (NaN if no such firm), aligned to ``numbers``."""
    return firm_ids_by_pseudonym(conn, anon.corporate_pseudonym(key, countries, numbers))


def approved_model(conn: Connection) -> Row[Any] | None:
    """The full ``model_version`` row of the approved model, or None.

    Approval retires the previous model, so at most one is approved; should several be
    (rows written by hand), the most recently approved wins (a missing ``approved_at``
    last, then the greatest id).
    """
    t = ModelVersion.__table__
    return conn.execute(select(t).where(t.c.status == "approved")
                        .order_by(t.c.approved_at.desc().nulls_last(), t.c.id.desc()).limit(1)).first()


#: columns of :func:`latest_scores`
SCORE_COLUMNS = ["firm_id", "score_id", "pd", "grade", "fee_category", "scored_at"]
_EXTRA_SCORE_COLUMNS = {"reasons": "reasons", "model_version_id": "model_version_id", "statement_id": "statement_id"}


def latest_scores(conn: Connection, model_version_id: int | None, firm_ids: list[int] | None = None,
                  extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Latest score of each firm (greatest ``scored_at``, then id): one row per firm, by firm id.

    ``model_version_id``: scores of that model only (None: of any model). ``firm_ids``:
    these firms only (None: every firm). Columns :data:`SCORE_COLUMNS` (``pd`` a one-year
    probability, ``scored_at`` a timestamp) plus ``extra`` among ``reasons``,
    ``model_version_id``, ``statement_id``.
    """
    unknown = set(extra) - set(_EXTRA_SCORE_COLUMNS)
    if unknown:
        raise ValueError(f"latest_scores: unknown extra column(s) {sorted(unknown)}")
    names = [*SCORE_COLUMNS, *extra]
    stored = ["id" if c == "score_id" else c for c in names]
    where = {} if model_version_id is None else {"model_version_id": int(model_version_id)}
    t = Score.__table__
    if firm_ids is None:
        stmt = select(*(t.c[c] for c in stored))
        for k, v in where.items():
            stmt = stmt.where(t.c[k] == v)
        df = pd.DataFrame(conn.execute(stmt).all(), columns=names)
    else:
        df = lookup(conn, t, "firm_id", [int(f) for f in firm_ids], stored, where=where or None)
        df = df.rename(columns={"id": "score_id"})[names]
    if df.empty:
        return df
    df = df.sort_values(["firm_id", "scored_at", "score_id"], kind="stable")
    return df.drop_duplicates("firm_id", keep="last").reset_index(drop=True)


__all__ = ["SCORE_COLUMNS", "InstitutionRef", "UnknownInstitution", "approved_model", "firm_ids_by_borrower_hash",
           "firm_ids_by_borrower_key", "firm_ids_by_corporate_number", "firm_ids_by_pseudonym", "firms_by_pseudonym",
           "institution", "latest_scores", "require_institution"]
