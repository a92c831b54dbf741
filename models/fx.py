"""Currency conversion from a table of rates (pure computation, no I/O).

Amounts stay in the currency submitted; conversions go through EUR. A rate row says how
many units of ``currency`` one unit of ``base`` buys, and for which days (``rate_date`` to
``valid_until``): the ECB reference rates are quoted against EUR for the day they are
published and serve until the next publication; an operator's annual average covers the
whole year. For a currency and a day the converter takes the latest valid rate, an
operator's before the ECB's; a rate against another base (e.g. USD) goes through that
base's EUR rate on the same day. A currency pegged by law or treaty
(``models/data/fx_pegs.toml``) without a rate of its own uses its anchor's. A conversion
without a rate raises :class:`FxError` naming the currency and the day.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

RATE_COLUMNS = ("currency", "base", "rate_date", "valid_until", "rate", "source")
#: sources of the ECB rates start with this (they rank after an operator's rates)
ECB_SOURCE = "ECB euro foreign exchange reference rates"


class FxError(ValueError):
    """No rate converts ``currency`` on ``day``."""

    def __init__(self, currency: str, day: dt.date, detail: str = "") -> None:
        self.currency, self.day = currency, day
        tail = f" ({detail})" if detail else ""
        super().__init__(f"no exchange rate for {currency} on {day.isoformat()}{tail}: "
                         f"load one with `creditdb fx load FILE` (columns date, currency, rate, source)")


@lru_cache(maxsize=1)
def load_pegs() -> dict[str, dict[str, Any]]:
    """Pegged currencies: code -> {target, units_per_target, source}."""
    return tomllib.loads(resources.files("models").joinpath("data/fx_pegs.toml").read_text("utf-8"))


@dataclass
class RateTable:
    """Rates (columns :data:`RATE_COLUMNS`) and the pegs; converts through EUR."""

    rates: pd.DataFrame
    pegs: dict[str, dict[str, Any]] = field(default_factory=load_pegs)

    def __post_init__(self) -> None:
        r = self.rates.loc[:, list(RATE_COLUMNS)].copy()
        r["rate_date"] = pd.to_datetime(r["rate_date"]).dt.date
        r["valid_until"] = pd.to_datetime(r["valid_until"]).dt.date
        r["ecb"] = r["source"].astype(str).str.startswith(ECB_SOURCE)
        # an operator's rate first, then the latest day
        r = r.sort_values(["currency", "ecb", "rate_date"], ascending=[True, True, False], kind="stable")
        self._by_currency = {c: g.reset_index(drop=True) for c, g in r.groupby("currency", sort=False)}
        # the ECB rows of a currency do not overlap: a binary search finds the one valid on a day
        self._ecb: dict[str, tuple[np.ndarray, np.ndarray, pd.DataFrame]] = {}
        for c, g in self._by_currency.items():
            e = g[g["ecb"]].sort_values("rate_date", kind="stable").reset_index(drop=True)
            if len(e):
                self._ecb[c] = (np.array(e["rate_date"].tolist(), dtype="datetime64[D]"),
                                np.array(e["valid_until"].tolist(), dtype="datetime64[D]"), e)
            self._by_currency[c] = g[~g["ecb"]].reset_index(drop=True)
        self._cache: dict[tuple[str, dt.date], tuple[float, str]] = {}

    def currencies(self) -> set[str]:
        """Currencies with at least one rate (directly, or through a peg)."""
        have = {c for c, g in self._by_currency.items() if len(g)} | set(self._ecb) | {"EUR"}
        return have | {c for c, p in self.pegs.items() if p["target"] in have}

    def per_eur(self, currency: str, day: dt.date, _depth: int = 0) -> tuple[float, str]:
        """(units of ``currency`` per EUR on ``day``, source of the rate)."""
        if currency == "EUR":
            return 1.0, "EUR"
        key = (currency, day)
        if key in self._cache:
            return self._cache[key]
        if _depth > 3:
            raise FxError(currency, day, "rates refer to each other in a loop")
        found = None
        row = None
        g = self._by_currency.get(currency)
        if g is not None and len(g):  # an operator's rates (few): the latest valid one
            ok = (g["rate_date"] <= day) & (g["valid_until"] >= day)
            if ok.any():
                row = g[ok].iloc[0]
        if row is None and currency in self._ecb:
            starts, ends, e = self._ecb[currency]
            d64 = np.datetime64(day, "D")
            i = int(np.searchsorted(starts, d64, side="right")) - 1
            if i >= 0 and ends[i] >= d64:
                row = e.iloc[i]
        if row is not None:
            base_rate, base_src = self.per_eur(row["base"], day, _depth + 1)
            found = (float(row["rate"]) * base_rate, str(row["source"]) if row["base"] == "EUR"
                     else f"{row['source']} x {row['base']} ({base_src})")
        if found is None and currency in self.pegs:
            peg = self.pegs[currency]
            try:
                anchor, src = self.per_eur(peg["target"], day, _depth + 1)
            except FxError as exc:
                raise FxError(currency, day, f"pegged to {peg['target']}, which has no rate") from exc
            found = (anchor * float(peg["units_per_target"]), f"{peg['source']}; {peg['target']}: {src}")
        if found is None:
            raise FxError(currency, day)
        self._cache[key] = found
        return found

    def factors(self, from_currency: pd.Series, day: pd.Series, to: str) -> np.ndarray:
        """Units of ``to`` per unit of each row's currency on each row's day."""
        cur = from_currency.astype(str).str.upper().to_numpy()
        days = pd.to_datetime(day).dt.date.to_numpy()
        out = np.empty(len(cur), dtype="float64")
        keys = pd.DataFrame({"c": cur, "d": days})
        for (c, d), idx in keys.groupby(["c", "d"], sort=False).indices.items():
            out[idx] = self.per_eur(to, d)[0] / self.per_eur(c, d)[0]
        return out

    def convert(self, amount: pd.Series | np.ndarray, from_currency: pd.Series, day: pd.Series,
                to: str) -> np.ndarray:
        """``amount`` (units of each row's currency) in units of ``to`` at each row's day."""
        return np.asarray(amount, dtype="float64") * self.factors(from_currency, day, to)
