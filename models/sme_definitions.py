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

from models.ratios import ISIC_SECTIONS

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

#: criterion -> the statement columns it is computed from (named when one is missing).
CRITERION_COLUMNS: dict[str, tuple[str, ...]] = {
    "employees": ("employees",),
    "sales": ("sales",),
    "total_assets": ("total_assets",),
    "paid_up_capital": ("paid_up_capital",),
    "assets_excl_land": ("total_assets", "land"),
    "assets_excl_land_buildings": ("total_assets", "land", "buildings"),
    "net_assets_excl_land_buildings": ("net_assets", "land", "buildings"),
    "business_capital_excl_land_buildings": ("net_assets", "interest_bearing_debt", "land", "buildings"),
}

#: why a firm-year has no class: code -> what it means (``sme_reason_code`` of :func:`national_class`;
#: ``no_employees`` is the harmonised class's only reason). The text of ``sme_reason`` adds the
#: rule, sector or criteria concerned.
REASONS: dict[str, str] = {
    "no_rule_for_country": "the data file records no SME rule for the country",
    "before_first_rule": "fiscal year end before the first SME rule recorded for the country",
    "rule_start_day_unknown": "fiscal year end in the year the first recorded rule came into force, "
                              "on a day not recorded (no earlier rule recorded)",
    "rules_disagree": "a rule changed in the year of the fiscal year end on a day not recorded, "
                      "and the two rules give different classes",
    "sector_not_mapped": "no ISIC section (missing or not an ISIC Rev.4 section), and the rule's "
                         "sectors give different classes",
    "sector_ambiguous": "the ISIC code is coarser than the rule's sectors, and they give different classes",
    "criterion_missing": "a criterion the rule needs is missing in the statement",
    "threshold_unknown": "a threshold the firm-year depends on was not established in the source "
                         "(the data file says so)",
    "currency_mismatch": "amounts are not in the rule's currency",
    "no_employees": "no employees in the statement (the harmonised class is by persons employed)",
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


def _intervals(rule: Rule, sector: str, frame: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    table = rule.thresholds[sector]
    iv = {}
    for name in rule.criteria():
        bounds = [table.get(c, {}).get(name) for c in rule.classes[:-1]]
        iv[name] = _criterion_interval(CRITERIA[name](frame), bounds)
    return iv


def classify_under(rule: Rule, sector: str, frame: pd.DataFrame) -> np.ndarray:
    """National class (or None) of each row of ``frame`` under one rule and sector."""
    return _classify_explained(rule, sector, frame)[0]


@dataclass(frozen=True)
class _Why:
    """Why one rule and sector leave a row without a class: the criteria that matter,
    split into those missing in the statement (as "criterion (the missing columns)") and
    those whose threshold is unknown."""

    missing: frozenset[str] = frozenset()
    unknown: frozenset[str] = frozenset()


def _classify_explained(rule: Rule, sector: str, frame: pd.DataFrame) -> tuple[np.ndarray, list[_Why | None]]:
    """Labels (None when unknown) and, for each unknown row, the criteria it depends on.

    A criterion *matters* for a row when fixing its interval at either end changes the
    combined interval; when no single one does (``at_least`` can need two), every
    criterion with more than one possible class matters. A criterion that matters is
    *missing* when a statement column it needs is missing, unless the source
    established none of its thresholds for this sector (then a value would not help:
    the threshold is unknown)."""
    classes = rule.classes
    iv = _intervals(rule, sector, frame)
    lo, hi = _combine(rule.combine, iv)
    labels = np.array(classes, dtype=object)
    # None as an object array: numpy's stubs take no bare None as a value of where()
    got = np.where(lo == hi, labels[np.minimum(lo, len(classes) - 1)], np.array(None, dtype=object))
    why: list[_Why | None] = [None] * len(frame)
    open_rows = np.flatnonzero(lo != hi)
    if len(open_rows) == 0:
        return got, why
    table = rule.thresholds[sector]
    names = sorted(iv)
    cols = sorted({c for n in names for c in CRITERION_COLUMNS[n]})
    col_nan = np.vstack([np.isnan(_col(frame, c))[open_rows] for c in cols])
    matters = []
    for name in names:
        hit = np.zeros(len(frame), bool)
        for end in iv[name]:
            alt_lo, alt_hi = _combine(rule.combine, {**iv, name: (end, end)})
            hit |= (alt_lo != lo) | (alt_hi != hi)
        matters.append(hit[open_rows])
    wide = np.vstack([(iv[n][0] != iv[n][1])[open_rows] for n in names])
    missing = np.vstack([np.isnan(CRITERIA[n](frame))[open_rows] for n in names])
    no_bound = [all(table.get(c, {}).get(n) in (None, "unknown") for c in classes[:-1]) for n in names]
    # one explanation per distinct pattern of flags, not per row
    flags = np.vstack([np.vstack(matters), wide, missing, col_nan]).T
    patterns, inverse = np.unique(flags, axis=0, return_inverse=True)
    k = len(names)
    made = []
    for f in patterns:
        blamed = [i for i in range(k) if f[i]] or [i for i in range(k) if f[k + i]]
        miss, unk = set(), set()
        for i in blamed:
            if f[2 * k + i] and not no_bound[i]:
                gone = [c for j, c in enumerate(cols) if f[3 * k + j] and c in CRITERION_COLUMNS[names[i]]]
                miss.add(names[i] if gone == [names[i]] else f"{names[i]} ({', '.join(gone)})")
            else:
                unk.add(names[i])
        made.append(_Why(missing=frozenset(miss), unknown=frozenset(unk)))
    for row, p in zip(open_rows, inverse.ravel(), strict=True):
        why[row] = made[p]
    return got, why


def _isic_keys(frame: pd.DataFrame) -> pd.Series:
    """Section letter + ISIC digits; "" when the section is missing or not an ISIC Rev.4 section
    (then the firm-year may be in any of the rule's sectors)."""
    section = frame["industry"].astype("string").fillna("").str.strip().str.upper()
    section = section.where(section.isin(ISIC_SECTIONS), "")
    if "isic_code" in frame:
        digits = frame["isic_code"].astype("string").fillna("").str.replace(r"\D", "", regex=True)
        return section + digits.where(section != "", "")
    return section


def _frame_of(columns: list[str], values: Sequence[np.ndarray], index: pd.Index) -> pd.DataFrame:
    # object columns, so that None stays None (pandas would infer a string dtype with NaN)
    return pd.DataFrame({c: pd.Series(v, index=index, dtype="object") for c, v in zip(columns, values, strict=True)})


def national_class(frame: pd.DataFrame, rules: Sequence[Rule] | None = None) -> pd.DataFrame:
    """Classify each firm-year under its country's rule in force at ``fiscal_year_end``.

    ``frame`` holds ``country``, ``industry`` (ISIC section letter), ``fiscal_year_end`` and
    the statement columns the rules use (``employees``, ``sales``, ``total_assets``,
    ``net_assets``, ``interest_bearing_debt``, ``paid_up_capital``, ``land``,
    ``buildings``, optional ``isic_code`` digits), amounts in the statement's currency,
    which must be the rule's currency (``currency`` column, when present). Returns, on the
    same index, ``sme_class`` (None when unknown), ``sme_rule`` (the rule id, or ids joined
    by "|" when the rule in force is uncertain), ``sme_reason_code`` (why unknown, one of
    :data:`REASONS`, else "") and ``sme_reason`` (the same in words, naming the rule,
    sector or criteria concerned; the same text for every firm-year with the same cause,
    so that it can be counted).
    """
    rules = load_definitions()[0] if rules is None else rules
    n = len(frame)
    out_class = np.full(n, None, dtype=object)
    out_rule = np.full(n, "", dtype=object)
    code = np.full(n, "", dtype=object)
    reason = np.full(n, "", dtype=object)
    columns = ["sme_class", "sme_rule", "sme_reason_code", "sme_reason"]
    if n == 0:
        return _frame_of(columns, (out_class, out_rule, code, reason), frame.index)
    day = pd.to_datetime(frame["fiscal_year_end"]).dt.date.to_numpy()
    country = frame["country"].astype("string").fillna("").to_numpy()
    keys = _isic_keys(frame).to_numpy()
    currency = frame["currency"].astype("string").fillna("").to_numpy() if "currency" in frame else None
    # the day matters only through the rules that may be in force on it: group by those
    by_id = {r.id: r for r in rules}
    in_force: dict[tuple[str, dt.date], str] = {}
    for c, d in set(zip(country, day, strict=True)):
        in_force[(c, d)] = "|".join(r.id if r else "" for r in rules_in_force(rules, c, d))
    cand_key = np.array([in_force[(c, d)] for c, d in zip(country, day, strict=True)], dtype=object)
    groups = pd.DataFrame({"c": country, "r": cand_key, "k": keys}).groupby(["c", "r", "k"], sort=False).indices
    for (c, ck, k), idx in groups.items():
        mine = sorted((r for r in rules if r.country == c), key=lambda r: r.start())
        if not mine:
            code[idx] = "no_rule_for_country"
            reason[idx] = f"no SME rule recorded for {c or 'a missing country'}"
            continue
        cands = [by_id[i] if i else None for i in ck.split("|")] if ck else []
        if not cands or cands == [None]:
            code[idx] = "before_first_rule"
            reason[idx] = f"fiscal year end before {c}'s first recorded rule ({mine[0].id}, in force from " \
                          f"{mine[0].effective_from})"
            continue
        out_rule[idx] = "|".join(r.id if r else "none" for r in cands)
        if None in cands:
            first = next(r for r in cands if r is not None)
            code[idx] = "rule_start_day_unknown"
            reason[idx] = f"{first.id} came into force in {first.start()[0].year} on a day not recorded; " \
                          f"no earlier rule of {c} recorded"
            continue
        live = np.ones(len(idx), bool)  # rows still to classify
        if currency is not None:
            for r in (r for r in cands if r is not None):
                wrong = currency[idx] != r.currency
                if wrong.any():
                    bad = idx[wrong & live]
                    code[bad] = "currency_mismatch"
                    reason[bad] = [f"amounts in {currency[b]}, rule {r.id} is in {r.currency}" for b in bad]
                    live &= ~wrong
        if not live.any():
            continue
        rows = idx[live]
        sub = frame.iloc[rows]
        results = []  # (rule, sector, labels, why)
        for r in (r for r in cands if r is not None):
            for s in sectors_of(r, k):
                got, why = _classify_explained(r, s, sub)
                results.append((r, s, got, why))
        labels = np.vstack([g for _, _, g, _ in results])
        same = (labels == labels[0]).all(axis=0)
        decided = same & (labels[0] != None)  # noqa: E711 (element-wise)
        out_class[rows[decided]] = labels[0][decided]
        differ = np.flatnonzero(~same)
        if len(differ):
            n_rules = len({r.id for r, *_ in results})
            if n_rules > 1:
                code[rows[differ]] = "rules_disagree"
                reason[rows[differ]] = f"{' and '.join(sorted({r.id for r, *_ in results}))} give different classes" \
                                       " (the day of the change was not recorded)"
            else:
                sectors = ", ".join(sorted({s for _, s, *_ in results}))
                if k == "":
                    code[rows[differ]] = "sector_not_mapped"
                    reason[rows[differ]] = f"no ISIC section: {results[0][0].id}'s sectors ({sectors}) " \
                                           "give different classes"
                else:
                    code[rows[differ]] = "sector_ambiguous"
                    reason[rows[differ]] = f"ISIC code {k} does not settle {results[0][0].id}'s sector ({sectors})"
        ids = ", ".join(sorted({r.id for r, *_ in results}))
        sectors = ", ".join(sorted({s for _, s, *_ in results}))
        texts: dict[tuple[_Why | None, ...], tuple[str, str]] = {}
        for j in np.flatnonzero(same & ~decided):
            key = tuple(ws[j] for *_, ws in results)
            if key not in texts:
                whys = [w for w in key if w is not None]
                miss = frozenset().union(*(w.missing for w in whys))
                unk = frozenset().union(*(w.unknown for w in whys)) - {m.split(" ")[0] for m in miss}
                if miss:
                    text = f"missing in the statement: {', '.join(sorted(miss))} ({ids})"
                    if unk:
                        text += f"; threshold not established: {', '.join(sorted(unk))}"
                    texts[key] = ("criterion_missing", text)
                else:
                    texts[key] = ("threshold_unknown",
                                  f"threshold not established in the source: {', '.join(sorted(unk))} "
                                  f"({ids}, {sectors})")
            code[rows[j]], reason[rows[j]] = texts[key]
    return _frame_of(columns, (out_class, out_rule, code, reason), frame.index)


def harmonised_classes(employees: pd.Series) -> pd.DataFrame:
    """OECD / Eurostat size class by persons employed (``harmonised_class``: micro < 10,
    small 10-49, medium 50-249, large >= 250; None where employees is missing), with
    ``harmonised_reason_code`` ("no_employees" where None, else "") and ``harmonised_reason``."""
    h = load_definitions()[1]
    e = pd.to_numeric(employees, errors="coerce").to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        cls = np.where(e < h["micro"], "micro", np.where(e < h["small"], "small",
                       np.where(e < h["medium"], "medium", "large")))
    none = np.isnan(e)
    cols = {"harmonised_class": np.where(none, np.array(None, dtype=object), cls),
            "harmonised_reason_code": np.where(none, "no_employees", ""),
            "harmonised_reason": np.where(none, "no employees in the statement", "")}
    return pd.DataFrame({c: pd.Series(v, index=employees.index, dtype="object") for c, v in cols.items()})


def harmonised_class(employees: pd.Series) -> pd.Series:
    """OECD / Eurostat size class by persons employed: micro < 10, small 10-49, medium
    50-249, large >= 250; missing where employees is missing."""
    return harmonised_classes(employees)["harmonised_class"]
