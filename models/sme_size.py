"""Size class of a firm as stored on ``firm.size_class``: the harmonised class by employees.

A firm's national SME class depends on the rule in force at each fiscal year end and on
amounts of the statement, so it is a property of the firm-year, computed from the
statements by ``models.sme_definitions.national_class``. The firm row keeps only the
OECD / Eurostat class by persons employed (micro < 10, small 10-49, medium 50-249,
large >= 250) of its first statement, which needs no currency or rule.
"""

from __future__ import annotations

import pandas as pd

from models.sme_definitions import harmonised_class


def size_class(employees: pd.Series, country: pd.Series, industry: pd.Series) -> pd.Series:
    """Harmonised size class of each row (``country`` and ``industry`` are not used; kept
    for the callers' signature); missing where employees is missing."""
    return harmonised_class(employees)
