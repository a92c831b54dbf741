"""Synthetic inputs for :func:`pipelines.validation_report.build_validation`.

Used by the validation benchmark, the report screenshot script and the tests, so that all
three exercise the same realistic shapes without a database. Firm-level PDs are drawn from
a Beta distribution, vary from year to year in logit space, and defaults are Bernoulli(PD).
Features are noisy monotone transforms of the PD's logit, so their expected signs hold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas

#: Nine-grade master scale: upper PD bound of each grade (one-year PD, fraction).
GRADE_UPPER = (0.0015, 0.003, 0.006, 0.012, 0.025, 0.05, 0.10, 0.20, 1.0)
GRADES = tuple(f"G{i}" for i in range(1, len(GRADE_UPPER) + 1))

#: feature -> (loading on logit PD, noise s.d.); sign = expected sign of effect on PD.
FEATURES = {
    "equity_ratio": (-0.08, 0.15),
    "debt_to_sales": (0.25, 0.5),
    "roa": (-0.02, 0.05),
    "current_ratio": (-0.3, 0.6),
    "log_sales": (-0.4, 1.0),
}
MONOTONE = {"equity_ratio": -1, "debt_to_sales": 1, "roa": -1, "current_ratio": -1, "log_sales": -1}


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def grade_pd() -> dict[str, float]:
    """Master-scale PD per grade: geometric midpoint of the grade's bounds (last grade 0.3)."""
    lower = (0.0005,) + GRADE_UPPER[:-1]
    upper = GRADE_UPPER[:-1] + (0.45,)
    return {g: float(np.sqrt(lo * hi)) for g, lo, hi in zip(GRADES, lower, upper, strict=False)}


def assign_grade(pd_: np.ndarray) -> np.ndarray:
    """Grade label for each PD by the master scale's upper bounds."""
    idx = np.searchsorted(np.asarray(GRADE_UPPER), pd_, side="left")
    return np.asarray(GRADES, dtype=object)[np.minimum(idx, len(GRADES) - 1)]


def _sample(rng: np.random.Generator, n: int, years: int, shift: float, first_year: int) -> dict[str, Any]:
    n_firms = max(1, n // years)
    base = rng.beta(1.2, 60.0, n_firms)
    firm = np.arange(n) % n_firms
    year = first_year + np.arange(n) // n_firms
    year = np.minimum(year, first_year + years - 1)
    logit = np.log(base[firm] / (1 - base[firm])) + rng.normal(0, 0.35, n) + shift
    pd_ = _expit(logit)
    default = (rng.random(n) < pd_).astype(np.int8)
    centred = logit + 4.0  # fixed centre, so a PD shift between samples moves the features too
    feats = {k: a * centred + rng.normal(0, s, n) for k, (a, s) in FEATURES.items()}
    feats["equity_ratio"] += 0.3
    feats["log_sales"] += 12.0
    x = pandas.DataFrame(feats)
    x.loc[rng.random(n) < 0.01, "current_ratio"] = np.nan  # a few missing values, as in real submissions
    x["industry"] = rng.choice(np.array(["manufacturing", "retail", "construction", "services"]), n)
    return {"pd": pd_, "default": default, "year": year, "firm_id": firm, "features": x, "logit": logit}


def synthetic_validation_inputs(n: int = 100_000, seed: int = 7, years: int = 5) -> dict[str, Any]:
    """Keyword arguments for ``build_validation`` on ``n`` synthetic validation rows.

    The development sample has n // 2 rows and a slightly safer PD level so the PSI is
    non-zero; the challenger is the model PD blurred in logit space (lower AUC).
    """
    rng = np.random.default_rng(seed)
    val = _sample(rng, n, years, shift=0.0, first_year=2019)
    dev = _sample(rng, max(n // 2, 10), years, shift=-0.1, first_year=2014)
    dev["features"]["log_sales"] -= 0.6  # firms grew since development: a visible PSI "watch"
    challenger = _expit(val["logit"] + rng.normal(0, 0.6, n))
    coef = {k: (a / (a * a + s * s) if a else 0.0) for k, (a, s) in FEATURES.items()}
    xv = val["features"]
    contrib = pandas.DataFrame({k: c * (xv[k] - xv[k].mean()).fillna(0.0) for k, c in coef.items()})
    contrib["bias"] = float(np.log(val["pd"].mean() / (1 - val["pd"].mean())))
    return {
        "pd": val["pd"],
        "default": val["default"],
        "grade": assign_grade(val["pd"]),
        "year": val["year"],
        "firm_id": val["firm_id"],
        "grade_pd": grade_pd(),
        "features_dev": dev["features"],
        "features_val": xv,
        "score_dev": dev["pd"],
        "challenger_pd": challenger,
        "initial_auc": 0.78,
        "contributions": contrib,
        "monotone": dict(MONOTONE),
        "model_card": {
            "version": "synthetic-demo-1",
            "data_window": "fiscal years 2014–2018 (development), 2019–2023 (validation)",
            "default_definition": "90 days past due, subrogation by the guarantor, or legal bankruptcy "
                                  "within 12 months after the statement is available",
            "features": {k: ("PD increases" if v > 0 else "PD decreases") + " with the feature (monotone constraint)"
                         for k, v in MONOTONE.items()} | {"industry": "categorical, unconstrained"},
            "calibration_target": "long-run average one-year default rate",
            "known_limitations": ["synthetic data only", "no macro-economic adjustment"],
            "approval_state": "draft (not approved)",
        },
        "grade_dev": assign_grade(dev["pd"]),
    }
