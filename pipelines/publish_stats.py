"""Pool-wide published statistics: computed by the operator, stored for members to read.

``publish`` gathers every statement in force (``pipelines.statistics.gather`` with the
institutions that know each firm), applies the disclosure rules of ``models.disclosure``
and stores the result as one ``stat_publication`` and its ``stat_cell`` rows, with an
audit event, in one transaction. A suppressed cell's statistics are blank before they
are stored: the tables hold only what every member may see. ``published`` reads them
back (any role may).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from creditdb import audit
from creditdb.bulk import insert_frame
from creditdb.schema import StatCell, StatPublication
from models.disclosure import DisclosurePolicy, protected_statistics
from pipelines.statistics import DIMENSIONS, gather

CELL_DIMENSIONS = ("industry", "region", "size", "year")
CELL_VALUES = ("firms", "statements", "labelled", "defaults", "default_rate", "count", "mean", "median", "std",
               "p30", "p70", "suppressed")


class NothingPublished(LookupError):
    """No publication (or not the one asked for) is stored."""


class NothingToPublish(ValueError):
    """No statement is in force: a publication would be empty (nothing is stored)."""


@dataclass
class Publication:
    """A stored publication: its metadata and its rows (one per cell x population x ratio)."""

    meta: dict[str, Any]
    table: pd.DataFrame


def policy_sha256(policy: DisclosurePolicy) -> str:
    return hashlib.sha256(json.dumps(policy.as_dict(), sort_keys=True).encode()).hexdigest()


def publish(engine: Engine, by: list[str], ratios: list[str], policy: DisclosurePolicy, *, actor: str,
            as_of: dt.datetime | None = None, margins: bool = True) -> Publication:
    """Compute and store one publication (operator or owner; members cannot write it)."""
    when = as_of or dt.datetime.now(dt.UTC)
    frame = gather(engine, when, known_by=True)
    if frame.empty:
        raise NothingToPublish(f"no statements in force at {when.isoformat()}: nothing to publish")
    table = protected_statistics(frame, [DIMENSIONS[b] for b in by], ratios, policy, margins=margins)
    cells = table.copy()
    for d in CELL_DIMENSIONS:
        if d not in cells.columns:
            cells[d] = None
    n_cells = len(cells.drop_duplicates([*CELL_DIMENSIONS, "population"])) if len(cells) else 0
    n_hidden = int(cells["suppressed"].notna().sum()) if len(cells) else 0
    meta = {"published_at": dt.datetime.now(dt.UTC), "published_by": actor, "as_of": when, "dimensions": by,
            "ratios": ratios, "margins": margins, "policy": policy.as_dict(), "policy_sha256": policy_sha256(policy),
            "cells": n_cells, "suppressed": n_hidden}
    with engine.begin() as conn:
        pub_id = conn.execute(StatPublication.__table__.insert().values(**meta)
                              .returning(StatPublication.id)).scalar_one()
        rows = cells[[*CELL_DIMENSIONS, "population", "ratio", *CELL_VALUES]].astype(object)
        rows = rows.where(rows.notna(), None)
        rows.insert(0, "publication_id", pub_id)
        insert_frame(conn, StatCell.__table__, rows)
        audit.append(conn, actor, "stats.publish",
                     {"publication_id": pub_id, "dimensions": by, "ratios": ratios, "as_of": when.isoformat(),
                      "rows": len(rows), "suppressed": n_hidden, "policy_sha256": meta["policy_sha256"]})
    return Publication({"id": pub_id, **meta}, table)


def published(engine: Engine, publication_id: int | None = None) -> Publication:
    """A stored publication (default: the latest); raises :class:`NothingPublished`."""
    p = StatPublication.__table__
    with engine.connect() as conn:
        if publication_id is None:
            publication_id = conn.execute(select(func.max(p.c.id))).scalar()
        row = conn.execute(select(p).where(p.c.id == publication_id)).mappings().first() \
            if publication_id is not None else None
        if row is None:
            raise NothingPublished("no statistics are published yet: the operator runs 'creditdb stats publish'"
                                   if publication_id is None else f"no publication {publication_id}")
        c = StatCell.__table__
        cells = pd.DataFrame(conn.execute(select(c).where(c.c.publication_id == publication_id)
                                          .order_by(c.c.id)).mappings().all())
    meta = dict(row)
    by = list(meta["dimensions"])
    cols = [DIMENSIONS[b] for b in by]
    table = cells[[*cols, "population", "ratio", *CELL_VALUES]] if len(cells) else pd.DataFrame(
        columns=[*cols, "population", "ratio", *CELL_VALUES])
    return Publication(meta, table.reset_index(drop=True))


def list_publications(engine: Engine) -> list[dict[str, Any]]:
    """Every stored publication's metadata, newest first."""
    p = StatPublication.__table__
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(p).order_by(p.c.id.desc())).mappings().all()]
