"""Rating migration matrix estimated from the database, for guarantee PD term structures.

The approved model (or ``version``) grades every labelled statement in force: the same
features and 12-month default labels the model was developed with (its recorded
reporting lag and horizon), labelled as of ``as_of`` (default today), so every
firm-year whose 12-month window has closed counts. :func:`models.migration.
estimate_transition_matrix` turns the grades and defaults into the annual matrix.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Engine

from models.master_scale import assign_grade
from models.migration import MigrationEstimate, estimate_transition_matrix


class MigrationDataError(ValueError):
    """The database holds too little to estimate a migration matrix."""


def estimate_from_database(engine: Engine, version: str | None = None, as_of: dt.date | None = None,
                           min_observations: int = 30) -> MigrationEstimate:
    """Annual grade migration matrix of the approved model (or ``version``) on stored data."""
    from creditdb import registry
    from pipelines.features import load_defaults, load_statements, training_table
    from pipelines.scoring import load_scorer

    with engine.connect() as conn:
        scorer = load_scorer(conn, version)
        rec = registry.get(conn, scorer.version)
        statements = load_statements(conn, size_currency=scorer.size_currency)  # as the model was trained
        defaults = load_defaults(conn)
    design = rec["spec"].get("design", {})
    lag = int(design.get("lag_months", 3))
    horizon = int(design.get("horizon_months", 12))
    as_of = as_of or dt.date.today()
    table = training_table(statements, defaults, as_of, lag, horizon)
    if table.empty:
        raise MigrationDataError(f"no statement with a complete {horizon}-month default window as of {as_of}: "
                                 "cannot estimate a migration matrix")
    pd_ = scorer.calibration.predict(scorer.raw_scores(table))
    grades = assign_grade(pd_, scorer.scale)
    scale = scorer.scale
    return estimate_transition_matrix(
        table["firm_id"].to_numpy(), pd.to_datetime(table["fiscal_year_end"]).dt.year.to_numpy(), grades,
        table["label"].to_numpy() == 1, [g.grade for g in scale.grades], scale.default.grade,
        [g.representative_pd for g in scale.grades], min_observations=min_observations)


__all__ = ["MigrationDataError", "estimate_from_database"]
