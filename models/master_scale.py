"""Master scale: PD -> rating grade -> guarantee fee category.

The scale is a data file (``models/data/master_scale.toml``, format documented in
the file): non-default grades with contiguous half-open PD bands ``[lower, upper)``
covering [0, 1), a representative PD per grade, a Japanese guarantee fee category
(1 = riskiest ... 9 = safest) per grade, and a default grade (``D``) for PD = 1.
PDs are one-year probabilities as fractions.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

FEE_CATEGORIES = range(1, 10)


@dataclass(frozen=True)
class Grade:
    grade: str
    lower: float
    upper: float
    representative_pd: float
    fee_category: int


@dataclass(frozen=True)
class MasterScale:
    name: str
    grades: tuple[Grade, ...]  # non-default grades, safest first
    default: Grade  # the default grade, band [1, 1]

    @property
    def labels(self) -> list[str]:
        return [g.grade for g in self.grades] + [self.default.grade]

    def by_grade(self) -> dict[str, Grade]:
        return {g.grade: g for g in (*self.grades, self.default)}


class MasterScaleError(ValueError):
    """The master scale file is malformed (message names the file and grade)."""


def _parse(doc: dict[str, Any], origin: str) -> MasterScale:
    rows = doc.get("grade")
    if not rows:
        raise MasterScaleError(f"{origin}: no [[grade]] entries")
    grades = []
    for i, r in enumerate(rows, start=1):
        where = f"{origin}: grade #{i} ({r.get('grade', '?')!r})"
        for key in ("grade", "lower", "upper", "representative_pd", "fee_category"):
            if key not in r:
                raise MasterScaleError(f"{where}: missing {key}")
        g = Grade(str(r["grade"]), float(r["lower"]), float(r["upper"]), float(r["representative_pd"]),
                  int(r["fee_category"]))
        if not 0.0 <= g.lower < g.upper <= 1.0:
            raise MasterScaleError(f"{where}: need 0 <= lower < upper <= 1, got [{g.lower}, {g.upper})")
        if not g.lower <= g.representative_pd < g.upper:
            raise MasterScaleError(f"{where}: representative_pd {g.representative_pd} outside [{g.lower}, {g.upper})")
        if g.fee_category not in FEE_CATEGORIES:
            raise MasterScaleError(f"{where}: fee_category must be 1-9, got {g.fee_category}")
        grades.append(g)
    names = [g.grade for g in grades]
    if len(set(names)) != len(names):
        raise MasterScaleError(f"{origin}: duplicate grade names {names}")
    if grades[0].lower != 0.0:
        raise MasterScaleError(f"{origin}: first grade {grades[0].grade!r} must start at PD 0, starts at {grades[0].lower}")
    if grades[-1].upper != 1.0:
        raise MasterScaleError(f"{origin}: last grade {grades[-1].grade!r} must end at PD 1, ends at {grades[-1].upper}")
    for prev, cur in zip(grades, grades[1:], strict=False):
        if cur.lower > prev.upper:
            raise MasterScaleError(
                f"{origin}: gap between grade {prev.grade!r} (upper {prev.upper}) and grade {cur.grade!r} (lower {cur.lower})")
        if cur.lower < prev.upper:
            raise MasterScaleError(
                f"{origin}: overlap between grade {prev.grade!r} (upper {prev.upper}) and grade {cur.grade!r} (lower {cur.lower})")
        if cur.fee_category > prev.fee_category:
            raise MasterScaleError(
                f"{origin}: grade {cur.grade!r} is riskier than {prev.grade!r} but has a safer fee category "
                f"({cur.fee_category} > {prev.fee_category})")
    if len(grades) < 7:
        raise MasterScaleError(f"{origin}: Basel CRE36 requires at least 7 non-default grades, found {len(grades)}")
    d = doc.get("default")
    if not d or "grade" not in d:
        raise MasterScaleError(f"{origin}: missing [default] grade")
    dg = Grade(str(d["grade"]), 1.0, 1.0, float(d.get("representative_pd", 1.0)), int(d.get("fee_category", 1)))
    if dg.grade in names:
        raise MasterScaleError(f"{origin}: default grade {dg.grade!r} repeats a non-default grade")
    if dg.fee_category not in FEE_CATEGORIES:
        raise MasterScaleError(f"{origin}: default fee_category must be 1-9, got {dg.fee_category}")
    return MasterScale(str(doc.get("name", origin)), tuple(grades), dg)


def load_master_scale(path: str | Path | None = None) -> MasterScale:
    """Read and validate a master scale (default: the packaged ``master_scale.toml``)."""
    if path is None:
        origin = "models/data/master_scale.toml"
        text = resources.files("models").joinpath("data/master_scale.toml").read_text(encoding="utf-8")
    else:
        origin = str(path)
        text = Path(path).read_text(encoding="utf-8")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MasterScaleError(f"{origin}: not valid TOML: {exc}") from exc
    return _parse(doc, origin)


def assign_grade(pd_: Any, scale: MasterScale | None = None) -> np.ndarray:
    """Grade label for each one-year PD (array of str; PD = 1 gives the default grade).

    A PD on a band edge belongs to the riskier grade (bands are ``[lower, upper)``).
    Raises ``ValueError`` for NaN or PDs outside [0, 1].
    """
    scale = scale or load_master_scale()
    p = np.atleast_1d(np.asarray(pd_, dtype="float64"))
    if np.isnan(p).any():
        raise ValueError("PD contains NaN")
    if (p < 0).any() or (p > 1).any():
        raise ValueError("PD must lie in [0, 1]")
    lowers = np.array([g.lower for g in scale.grades])
    idx = np.searchsorted(lowers, p, side="right") - 1
    labels = np.array([g.grade for g in scale.grades] + [scale.default.grade], dtype=object)
    idx = np.where(p >= 1.0, len(scale.grades), idx)
    return labels[idx]


def fee_category(grades: Any, scale: MasterScale | None = None) -> np.ndarray:
    """Guarantee fee category (1 = riskiest ... 9 = safest) of each grade label."""
    scale = scale or load_master_scale()
    table = scale.by_grade()
    out = []
    for g in np.atleast_1d(np.asarray(grades, dtype=object)):
        if str(g) not in table:
            raise ValueError(f"unknown grade {g!r}; known: {', '.join(table)}")
        out.append(table[str(g)].fee_category)
    return np.array(out, dtype=int)


def representative_pd(grades: Any, scale: MasterScale | None = None) -> np.ndarray:
    """Representative one-year PD of each grade label."""
    scale = scale or load_master_scale()
    table = scale.by_grade()
    return np.array([table[str(g)].representative_pd for g in np.atleast_1d(np.asarray(grades, dtype=object))])
