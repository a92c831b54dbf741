"""National SME class and harmonised size class of firm-years (pure computation).

The rules are data (``models/data/sme_definitions.toml``): one official definition per
country and period, with criteria, thresholds in the local currency per sector and the
combining rule as the law states it. A firm-year is classified under its country's rule in
force at its fiscal year end.

Every criterion places a firm-year in an *interval* of classes: exactly one class when its
value and the thresholds are known, several when the value is missing or a threshold is
unknown. The combining rules are monotone (``either`` is the minimum, ``both`` the maximum,
``at_least k`` the k-th smallest class of the criteria), so they map intervals to intervals;
the national class is reported only when the interval has shrunk to one class, otherwise it
is unknown (``None``) with the reason. A firm-year whose sector, or whose rule (a change
within a year whose day was not established), is uncertain is classified under every
candidate and is unknown when they disagree. Nothing is guessed.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

HARMONISED_CLASSES = ("micro", "small", "medium", "large")


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype="float64")


#: criterion -> its value from statement columns (currency units of the statement).
CRITERIA: dict[str, Callable[[pd.DataFrame], np.ndarray]] = {
    "employees": lambda d: _col(d, "employees"),
    "sales": lambda d: _col(d, "sales"),
    "total_assets": lambda d: _col(d, "total_assets"),
    "paid_up_capital": lambda d: _col(d, "paid_up_capital"),
    "assets_excl_land": lambda d: _col(d, "total_assets") - _col(d, "land"),
    "assets_excl_land_buildings": lambda d: _col(d, "total_assets") - _col(d, "land") - _col(d, "buildings"),
    "net_assets_excl_land_buildings": lambda d: _col(d, "net_assets") - _col(d, "land") - _col(d, "buildings"),
    "business_capital_excl_land_buildings": lambda d: (
        _col(d, "net_assets") + _col(d, "interest_bearing_debt") - _col(d, "land") - _col(d, "buildings")),
}


@dataclass(frozen=True)
class Rule:
    """One official SME definition (see the data file for the meaning of each field)."""

    id: str
    country: str
    currency: str
    title: str
    source: str
    effective_from: dt.date | str  # a date, a year "YYYY" or "unknown"
    classes: tuple[str, ...]
    combine: Any
    sectors: dict[str, tuple[str, ...]]
    default_sector: str
    thresholds: dict[str, dict[str, dict[str, Any]]]
    notes: str = ""

    def start(self) -> tuple[dt.date, dt.date]:
        """Earliest and latest possible first day in force (equal when the date is known)."""
        e = self.effective_from
        if isinstance(e, dt.date):
            return e, e
        if e == "unknown":
            return dt.date.min, dt.date.min
        y = int(e)
        return dt.date(y, 1, 1), dt.date(y, 12, 31)

    def criteria(self) -> set[str]:
        return set(_leaves(self.combine))


def _leaves(expr: Any) -> list[str]:
    if isinstance(expr, str):
        return [expr]
    op, *args = expr
    if op == "at_least":
        args = args[1:]
    return [leaf for a in args for leaf in _leaves(a)]


def _parse(raw: dict[str, Any]) -> Rule:
    return Rule(id=raw["id"], country=raw["country"], currency=raw["currency"], title=raw["title"],
                source=raw["source"], effective_from=raw["effective_from"], classes=tuple(raw["classes"]),
                combine=raw["combine"], sectors={k: tuple(v) for k, v in raw.get("sectors", {}).items()},
                default_sector=raw["default_sector"], thresholds=raw["thresholds"], notes=raw.get("notes", ""))


def check_rules(rules: Sequence[Rule]) -> None:
    """Raise ValueError naming the rule when the data is inconsistent."""
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise ValueError(f"SME rule {r.id}: duplicate id")
        seen.add(r.id)
        unknown = r.criteria() - CRITERIA.keys()
        if unknown:
            raise ValueError(f"SME rule {r.id}: unknown criteria {sorted(unknown)}")
        sectors = set(r.sectors) | {r.default_sector}
        if set(r.thresholds) != sectors:
            raise ValueError(f"SME rule {r.id}: thresholds for {sorted(r.thresholds)} but sectors {sorted(sectors)}")
        for sector, by_class in r.thresholds.items():
            extra = set(by_class) - set(r.classes[:-1])
            if extra:
                raise ValueError(f"SME rule {r.id}, sector {sector}: classes {sorted(extra)} not in {r.classes}")
            for cls, crit in by_class.items():
                bad = set(crit) - r.criteria()
                if bad:
                    raise ValueError(f"SME rule {r.id}, {sector}.{cls}: criteria {sorted(bad)} not combined")
                for name, b in crit.items():
                    if not (b == "unknown" or (isinstance(b, dict) and len(b) == 1 and set(b) <= {"le", "lt"})):
                        raise ValueError(f"SME rule {r.id}, {sector}.{cls}.{name}: bound must be "
                                         "{{le = X}}, {{lt = X}} or \"unknown\"")


@lru_cache(maxsize=1)
def load_definitions() -> tuple[tuple[Rule, ...], dict[str, Any]]:
    """The rules and the harmonised class table of the shipped data file."""
    raw = tomllib.loads(resources.files("models").joinpath("data/sme_definitions.toml").read_text("utf-8"))
    rules = tuple(_parse(r) for r in raw["rule"])
    check_rules(rules)
    return rules, raw["harmonised"]


def rules_in_force(rules: Sequence[Rule], country: str, day: dt.date) -> list[Rule | None]:
    """The rules of ``country`` that may be in force on ``day``.

    Two when the day falls in the year of a change whose day was not established; ``None``
    stands for "no recorded rule" (before the first rule, or possibly before it).
    """
    mine = sorted((r for r in rules if r.country == country), key=lambda r: r.start())
    out: list[Rule | None] = []
    for i, r in enumerate(mine):
        earliest, latest = r.start()
        if day < earliest:
            continue
        if i == 0 and day < latest:
            out.append(None)
        nxt = mine[i + 1] if i + 1 < len(mine) else None
        if nxt is not None and day >= nxt.start()[1]:
            continue  # surely replaced
        out.append(r)
    return out


def sectors_of(rule: Rule, isic: str) -> list[str]:
    """Candidate sectors of an ISIC code (section letter + digits, e.g. "G4711" or "C")."""
    exact: dict[int, set[str]] = {}
    finer: set[str] = set()
    for sector, codes in rule.sectors.items():
        for code in codes:
            if isic.startswith(code):
                exact.setdefault(len(code), set()).add(sector)
            elif code.startswith(isic):
                finer.add(sector)
    base = exact[max(exact)] if exact else {rule.default_sector}
    # a code coarser than the rule needs: the firm may be in any finer sector as well
    return sorted(base | finer)


def _criterion_interval(values: np.ndarray, bounds: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest class index a criterion allows, for each value."""
    n = len(bounds) + 1
    lo = np.full(len(values), n - 1)
    hi = np.full(len(values), n - 1)
    missing = np.isnan(values)
    has_bound = [b is not None for b in bounds]
    first_bound = has_bound.index(True) if any(has_bound) else n - 1
    lo_set = np.zeros(len(values), bool)
    hi_set = np.zeros(len(values), bool)
    with np.errstate(invalid="ignore"):
        for c, b in enumerate(bounds):
            if b is None:
                continue
            if b == "unknown":
                maybe = np.ones(len(values), bool)
                sure = np.zeros(len(values), bool)
            else:
                (op, x), = b.items()
                sure = values <= x if op == "le" else values < x
                maybe = sure
            new_lo = maybe & ~lo_set
            lo[new_lo] = c
            lo_set |= maybe
            new_hi = sure & ~hi_set
            hi[new_hi] = c
            hi_set |= sure
    lo[missing] = first_bound
    hi[missing] = n - 1
    return lo, hi


def _combine(expr: Any, iv: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(expr, str):
        return iv[expr]
    op, *args = expr
    k = 1
    if op == "at_least":
        k, args = int(args[0]), args[1:]
    parts = [_combine(a, iv) for a in args]
    los = np.vstack([p[0] for p in parts])
    his = np.vstack([p[1] for p in parts])
    if op == "either":
        return los.min(axis=0), his.min(axis=0)
    if op == "both":
        return los.max(axis=0), his.max(axis=0)
    if op == "at_least":
        # in class c if at least k criteria place it in c or below: the k-th smallest class
        return np.sort(los, axis=0)[k - 1], np.sort(his, axis=0)[k - 1]
    raise ValueError(f"unknown combining rule {op!r}")


def classify_under(rule: Rule, sector: str, frame: pd.DataFrame) -> np.ndarray:
    """National class (or None) of each row of ``frame`` under one rule and sector."""
    classes = rule.classes
    table = rule.thresholds[sector]
    iv = {}
    for name in rule.criteria():
        bounds = [table.get(c, {}).get(name) for c in classes[:-1]]
        iv[name] = _criterion_interval(CRITERIA[name](frame), bounds)
    lo, hi = _combine(rule.combine, iv)
    labels = np.array(classes, dtype=object)
    # None as an object array: numpy's stubs take no bare None as a value of where()
    return np.where(lo == hi, labels[np.minimum(lo, len(classes) - 1)], np.array(None, dtype=object))


def _isic_keys(frame: pd.DataFrame) -> pd.Series:
    section = frame["industry"].astype("string").fillna("").str.upper()
    if "isic_code" in frame:
        digits = frame["isic_code"].astype("string").fillna("").str.replace(r"\D", "", regex=True)
        return section + digits
    return section


def national_class(frame: pd.DataFrame, rules: Sequence[Rule] | None = None) -> pd.DataFrame:
    """Classify each firm-year under its country's rule in force at ``fiscal_year_end``.

    ``frame`` holds ``country``, ``industry`` (ISIC section letter), ``fiscal_year_end`` and
    the statement columns the rules use (``employees``, ``sales``, ``total_assets``,
    ``net_assets``, ``interest_bearing_debt``, ``paid_up_capital``, ``land``,
    ``buildings``, optional ``isic_code`` digits), amounts in the statement's currency,
    which must be the rule's currency (``currency`` column, when present). Returns, on the
    same index, ``sme_class`` (None when unknown), ``sme_rule`` (the rule id, or ids joined
    by "|" when the rule in force is uncertain) and ``sme_reason`` (why unknown, else "").
    """
    rules = load_definitions()[0] if rules is None else rules
    n = len(frame)
    out_class = np.full(n, None, dtype=object)
    out_rule = np.full(n, "", dtype=object)
    reason = np.full(n, "", dtype=object)
    decided = np.zeros(n, bool)  # some candidate already gave a label (or None)
    conflict = np.zeros(n, bool)
    if n == 0:
        return pd.DataFrame({"sme_class": out_class, "sme_rule": out_rule, "sme_reason": reason}, index=frame.index)
    day = pd.to_datetime(frame["fiscal_year_end"]).dt.date.to_numpy()
    country = frame["country"].astype("string").fillna("").to_numpy()
    keys = _isic_keys(frame).to_numpy()
    currency = frame["currency"].astype("string").fillna("").to_numpy() if "currency" in frame else None
    groups = pd.DataFrame({"c": country, "d": day, "k": keys}).groupby(["c", "d", "k"], sort=False).indices
    for (c, d, k), idx in groups.items():
        cands = rules_in_force(rules, c, d)
        if not cands or cands == [None]:
            reason[idx] = f"no SME rule recorded for {c or '?'} in force at {d}"
            continue
        out_rule[idx] = "|".join(r.id if r else "none" for r in cands)
        if None in cands:
            reason[idx] = f"a rule of {c} came into force in {d.year} on a day not recorded, no earlier rule recorded"
            conflict[idx] = True
            continue
        sub = frame.iloc[idx]
        for r in (c for c in cands if c is not None):
            if currency is not None:
                wrong = currency[idx] != r.currency
                if wrong.any():
                    bad = idx[wrong]
                    reason[bad] = f"amounts in {currency[bad[0]]}, rule {r.id} is in {r.currency}"
                    conflict[bad] = True
            for s in sectors_of(r, k):
                got = classify_under(r, s, sub)
                first = ~decided[idx]
                out_class[idx[first]] = got[first]
                differs = ~first & (out_class[idx] != got)
                conflict[idx[differs]] = True
                decided[idx] = True
    out_class[conflict] = None
    none = (out_class == None) & (reason == "")  # noqa: E711 (element-wise)
    reason[none & conflict] = "the candidate rules or sectors give different classes"
    reason[none & ~conflict] = "a criterion is missing or a threshold is unknown"
    return pd.DataFrame({"sme_class": out_class, "sme_rule": out_rule, "sme_reason": reason}, index=frame.index)


def harmonised_class(employees: pd.Series) -> pd.Series:
    """OECD / Eurostat size class by persons employed: micro < 10, small 10-49, medium
    50-249, large >= 250; missing where employees is missing."""
    h = load_definitions()[1]
    e = pd.to_numeric(employees, errors="coerce").to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        cls = np.where(e < h["micro"], "micro", np.where(e < h["small"], "small",
                       np.where(e < h["medium"], "medium", "large")))
    return pd.Series(np.where(np.isnan(e), np.array(None, dtype=object), cls), index=employees.index,
                     dtype="object")
