"""Generated synthetic data as modelling frames (bypassing file ingest), for heavy rating tests."""

from __future__ import annotations

import pandas as pd

from pipelines.features import in_force
from pipelines.validate import coerce


def synth_frames(data) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(statements, defaults, truth) from ``pipelines.synth.generate`` output.

    Firms are keyed by corporate number (the same firm at two banks is one firm, as in
    the database); statement ids number the in-force rows; ``truth`` has the
    generator's true PD per firm and fiscal year end.
    """
    parts = []
    for i, raw in enumerate(data.statements.values()):
        typed, _ = coerce("statements", raw)
        typed["firm_id"] = raw["corporate_number"].astype(str).to_numpy()
        typed["received_at"] = i
        typed["submission_id"] = i
        parts.append(typed)
    st = in_force(pd.concat(parts, ignore_index=True))
    st["established_year"] = pd.to_datetime(st["established"]).dt.year.astype("float64")
    st["statement_id"] = range(1, len(st) + 1)
    d = pd.concat([pd.DataFrame({"firm_id": df["corporate_number"].astype(str).to_numpy(),
                                 "default_date": pd.to_datetime(df["default_date"])})
                   for df in data.defaults.values()], ignore_index=True).drop_duplicates()
    truth = data.answers.assign(firm_id=data.answers["corporate_number"].astype(str),
                                fiscal_year_end=pd.to_datetime(data.answers["fiscal_year_end"]))
    truth = truth.drop_duplicates(["firm_id", "fiscal_year_end"])[["firm_id", "fiscal_year_end", "true_pd"]]
    return st, d, truth
