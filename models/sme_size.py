"""Size class of a firm (micro / small / medium / large) from its employees.

Thresholds per country and ISIC section come from ``models/data/sme_size.toml``.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd


@lru_cache(maxsize=1)
def load_thresholds() -> dict[str, Any]:
    return tomllib.loads(resources.files("models").joinpath("data/sme_size.toml").read_text("utf-8"))


def _bounds(table: dict[str, Any], country: str, industry: str | None) -> tuple[float, float, float]:
    base = dict(table["default"])
    spec = table.get(country, {})
    base.update({k: v for k, v in spec.items() if k != "industry"})
    if industry:
        base.update(spec.get("industry", {}).get(industry, {}))
    return base["micro"], base["small"], base["medium"]


def size_class(employees: pd.Series, country: pd.Series, industry: pd.Series) -> pd.Series:
    """Vectorised size class; missing where employees is missing."""
    table = load_thresholds()
    emp = pd.to_numeric(employees, errors="coerce").to_numpy(dtype="float64")
    keys = pd.DataFrame({"c": country.astype("string").fillna(""), "i": industry.astype("string").fillna("")})
    out = np.full(len(emp), None, dtype=object)
    for (c, i), idx in keys.groupby(["c", "i"]).indices.items():
        micro, small, medium = _bounds(table, c, i)
        e = emp[idx]
        cls = np.where(e < micro, "micro", np.where(e < small, "small", np.where(e < medium, "medium", "large")))
        out[idx] = np.where(np.isnan(e), None, cls)  # type: ignore[call-overload]  # None: an object array
    return pd.Series(out, index=employees.index, dtype="object")
