"""Institution profiles in the database: the stored source profile of each institution
(``institution_profile``, migration 0013). See ``pipelines.column_mapping``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, select

from creditdb.schema import Institution, InstitutionProfile
from pipelines.column_mapping import SourceProfile, profile_from_dict


def stored_profile(conn: Connection, institution_id: int) -> SourceProfile | None:
    """The institution's stored profile, or None when it has none."""
    data = conn.execute(select(InstitutionProfile.profile)
                        .where(InstitutionProfile.institution_id == institution_id)).scalar_one_or_none()
    return None if data is None else profile_from_dict(data, "stored profile")


def save_profile(conn: Connection, institution_code: str, profile: SourceProfile | None) -> int:
    """Store (or with ``None`` remove the content of) an institution's profile; returns its id.

    Raises LookupError for an unknown institution.
    """
    inst_id = conn.execute(select(Institution.id).where(Institution.code == institution_code)).scalar_one_or_none()
    if inst_id is None:
        raise LookupError(f"unknown institution {institution_code!r}: register it with 'creditdb institution add'")
    table = InstitutionProfile.__table__
    data = profile.as_dict() if profile is not None else {}
    now = dt.datetime.now(dt.UTC)
    exists = conn.execute(select(table.c.institution_id).where(table.c.institution_id == inst_id)).first()
    if exists:
        conn.execute(table.update().where(table.c.institution_id == inst_id).values(profile=data, updated_at=now))
    else:
        conn.execute(table.insert().values(institution_id=inst_id, profile=data, updated_at=now))
    return inst_id
