"""Rating migration: annual transition matrix with an absorbing default state, and the
PD term structure it implies for a loan's tenor.

Pure computation (no database). PDs are probabilities over the stated number of years;
the transition matrix is annual (one fiscal year to the next).

Estimation (cohort method, one-year horizon). Each observation is a firm's grade in a
fiscal year ``t`` and whether the firm defaulted within the following 12 months
(``defaulted``). The observation moves to the default state when ``defaulted`` is true,
otherwise to the firm's grade in year ``t + 1``; an observation with neither (the firm
was not observed the next year) is censored and left out. Row ``g`` of the matrix is
the share of grade-``g`` observations moving to each state. A grade with fewer than
``min_observations`` transitions has too little data: its row falls back to "stay in
the grade, default at the grade's representative PD" (a constant hazard), and the
estimate lists it in ``fallback_grades``.

Term structure for one loan (:func:`cumulative_pd_for_loans`). The first year uses the
loan's own one-year PD (the firm's score, the same PD as the capital formula); later
years follow the chain from the firm's grade: survival ``S(t) = (1 - PD) x S_g(t) /
S_g(1)``, where ``S_g`` is the grade's survival under the matrix. With a matrix in which
every grade keeps its grade and defaults at rate ``p`` this is exactly the constant
hazard ``(1 - p) ** t`` for a firm with PD ``p``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class MigrationEstimate:
    """Annual transition matrix over ``grades`` + the default state (last row/column)."""

    grades: list[str]
    default_grade: str
    matrix: np.ndarray  # (k + 1, k + 1), rows sum to 1, last row = absorbing default
    counts: np.ndarray  # (k, k + 1) transitions observed
    fallback_grades: list[str] = field(default_factory=list)

    @property
    def states(self) -> list[str]:
        return [*self.grades, self.default_grade]

    def as_dict(self) -> dict[str, Any]:
        return {"grades": self.grades, "default_grade": self.default_grade,
                "matrix": self.matrix.round(10).tolist(), "counts": self.counts.astype(int).tolist(),
                "transitions": int(self.counts.sum()), "fallback_grades": self.fallback_grades}


def estimate_transition_matrix(
    firm_id: Any, year: Any, grade: Any, defaulted: Any, grades: Sequence[str], default_grade: str,
    fallback_pd: Sequence[float], min_observations: int = 30,
) -> MigrationEstimate:
    """Cohort estimate of the annual migration matrix (see the module docstring).

    ``firm_id``, ``year`` (fiscal year, int), ``grade`` (label in ``grades``) and
    ``defaulted`` (default within 12 months, bool) are aligned arrays, one entry per
    firm-year (a firm with two observations in one year keeps the last). ``grades`` are
    the non-default grades, best first; ``fallback_pd`` their representative one-year
    PDs, used for grades with fewer than ``min_observations`` transitions.
    """
    grades = [str(g) for g in grades]
    k = len(grades)
    if len(fallback_pd) != k:
        raise ValueError("fallback_pd needs one PD per grade")
    df = pd.DataFrame({"f": np.asarray(firm_id), "y": np.asarray(year).astype(np.int64),
                       "g": np.asarray(grade, dtype=object).astype(str), "d": np.asarray(defaulted, dtype=bool)})
    df = df.drop_duplicates(["f", "y"], keep="last")
    pos = {g: i for i, g in enumerate(grades)}
    unknown = sorted(set(df["g"]) - set(pos))
    if unknown:
        raise ValueError(f"grades not on the scale: {unknown}")
    nxt = df[["f", "y", "g"]].assign(y=df["y"] - 1).rename(columns={"g": "g_next"})
    pairs = df.merge(nxt, on=["f", "y"], how="left")
    to = np.where(pairs["d"], k, pairs["g_next"].map(pos).fillna(-1).to_numpy(dtype=np.int64))
    keep = to >= 0
    frm = pairs["g"].map(pos).to_numpy(dtype=np.int64)[keep]
    counts = np.bincount(frm * (k + 1) + to[keep], minlength=k * (k + 1)).reshape(k, k + 1).astype(float)
    matrix = np.zeros((k + 1, k + 1))
    matrix[k, k] = 1.0
    fallback = []
    for i in range(k):
        n = counts[i].sum()
        if n < min_observations:
            p = float(fallback_pd[i])
            matrix[i, i], matrix[i, k] = 1.0 - p, p
            fallback.append(grades[i])
        else:
            matrix[i] = counts[i] / n
    return MigrationEstimate(grades=grades, default_grade=str(default_grade), matrix=matrix, counts=counts,
                             fallback_grades=fallback)


def grade_survival(matrix: Any, years: int) -> np.ndarray:
    """Survival (no default) of each non-default grade at years 1..``years``: shape (k, years)."""
    m = np.asarray(matrix, dtype=float)
    k = m.shape[0] - 1
    out = np.empty((k, years))
    dist = np.eye(k + 1)[:k]
    for t in range(years):
        dist = dist @ m
        out[:, t] = 1.0 - dist[:, k]
    return out


def cumulative_pd_for_loans(pd_1y: Any, grade_index: Any, matrix: Any, years: int) -> np.ndarray:
    """Cumulative PD at years 1..``years`` per loan: first year the loan's own PD, then the chain.

    ``pd_1y``: one-year PD per loan; ``grade_index``: the firm's grade as an index into
    the matrix's non-default states. Returns shape (n_loans, years).
    """
    p = np.asarray(pd_1y, dtype=float)
    gi = np.asarray(grade_index, dtype=np.int64)
    surv = grade_survival(matrix, years)
    if np.any(gi < 0) or np.any(gi >= surv.shape[0]):
        raise ValueError("grade_index outside the non-default grades")
    s1 = surv[:, :1]
    if np.any(s1 <= 0):
        raise ValueError("a grade defaults with certainty within one year: no term structure beyond year 1")
    rel = surv / s1  # conditional survival given survival of year 1
    return 1.0 - (1.0 - p)[:, None] * rel[gi]


__all__ = ["MigrationEstimate", "cumulative_pd_for_loans", "estimate_transition_matrix", "grade_survival"]
