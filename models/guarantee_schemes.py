"""The region's credit guarantee schemes as data (``models/data/guarantee_schemes.toml``)."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources
from typing import Any


@lru_cache(maxsize=1)
def load_schemes() -> dict[str, dict[str, Any]]:
    """Scheme id -> its record (source, date, fees as fractions p.a., cover and cap shares)."""
    raw = tomllib.loads(resources.files("models").joinpath("data/guarantee_schemes.toml").read_text("utf-8"))
    out: dict[str, dict[str, Any]] = {}
    for s in raw["scheme"]:
        for need in ("id", "country", "currency", "name", "kind", "source", "as_of"):
            if need not in s:
                raise ValueError(f"guarantee scheme {s.get('id', '?')}: missing {need}")
        if s["id"] in out:
            raise ValueError(f"guarantee scheme {s['id']}: duplicate id")
        out[s["id"]] = s
    return out
