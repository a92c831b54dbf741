"""Plain reference models for research mode (``creditdb model evaluate --compare``).

Each reference is what a modeller would try first, with the package's default settings,
so that a user sees whether the rating model beats them on the same folds:

* ``logistic_quantile``: scikit-learn ``QuantileTransformer(output_distribution="normal")``
  on numeric features, median imputation, one-hot categories, ``LogisticRegression``
  (defaults, ``max_iter=2000``);
* ``lightgbm_default``: LightGBM ``binary`` objective with all parameters at their defaults
  (100 rounds, learning rate 0.1, 31 leaves), pandas categoricals as categorical features;
* ``xgboost_default``: ``xgboost.XGBClassifier()`` defaults (categoricals enabled), when
  the ``xgboost`` package is installed;
* ``optbinning_scorecard``: optbinning's ``BinningProcess`` + ``Scorecard`` with a
  ``LogisticRegression``, when the ``optbinning`` package is installed.

Install the optional ones with ``pip install "creditdb[compare]"``. Every model has
``fit(X, y)`` and ``predict_proba(X)`` and is deterministic for a seed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd


def _numeric_and_categorical(X: pd.DataFrame) -> tuple[list[str], list[str]]:
    cats = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    return [c for c in X.columns if c not in cats], cats


class LogisticQuantile:
    """Logistic regression on quantile-normalised numeric features and one-hot categories."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: Any) -> LogisticQuantile:
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, QuantileTransformer

        num, cat = _numeric_and_categorical(X)
        n_q = max(10, min(1000, len(X)))
        parts = []
        if num:
            parts.append(("num", make_pipeline(
                QuantileTransformer(n_quantiles=n_q, output_distribution="normal", random_state=self.seed),
                SimpleImputer(strategy="median", keep_empty_features=True)), num))
        if cat:
            parts.append(("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                               OneHotEncoder(handle_unknown="ignore")), cat))
        self.model_ = make_pipeline(ColumnTransformer(parts),
                                    LogisticRegression(max_iter=2000, random_state=self.seed))
        Xf = X.copy()
        for c in num:
            Xf[c] = pd.to_numeric(Xf[c], errors="coerce").replace([np.inf, -np.inf], np.nan)
        for c in cat:
            Xf[c] = Xf[c].astype(object)
        self.num_, self.cat_ = num, cat
        self.model_.fit(Xf, np.asarray(y, dtype=int))
        return self

    def _prep(self, X: pd.DataFrame) -> pd.DataFrame:
        Xf = X.copy()
        for c in self.num_:
            Xf[c] = pd.to_numeric(Xf[c], errors="coerce").replace([np.inf, -np.inf], np.nan)
        for c in self.cat_:
            Xf[c] = Xf[c].astype(object)
        return Xf

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.model_.predict_proba(self._prep(X))


class LightGBMDefault:
    """LightGBM with default parameters (only determinism and quiet output set)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: Any) -> LightGBMDefault:
        import lightgbm as lgb

        params = {"objective": "binary", "verbosity": -1, "seed": self.seed, "deterministic": True,
                  "num_threads": 2}
        self.booster_ = lgb.train(params, lgb.Dataset(X, label=np.asarray(y, dtype=float)), num_boost_round=100)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = np.asarray(self.booster_.predict(X), dtype="float64")
        return np.column_stack([1 - p, p])


class XGBoostDefault:
    """``xgboost.XGBClassifier`` with default parameters (categorical support on)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: Any) -> XGBoostDefault:
        from xgboost import XGBClassifier

        self.model_ = XGBClassifier(enable_categorical=True, tree_method="hist", random_state=self.seed,
                                    n_jobs=2)
        self.model_.fit(X, np.asarray(y, dtype=int))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.model_.predict_proba(X)


class OptbinningScorecard:
    """optbinning ``Scorecard`` (``BinningProcess`` + ``LogisticRegression``), default settings."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: Any) -> OptbinningScorecard:
        from optbinning import BinningProcess, Scorecard
        from sklearn.linear_model import LogisticRegression

        num, cat = _numeric_and_categorical(X)
        Xf = X.copy()
        for c in cat:
            Xf[c] = Xf[c].astype(object)
        names = [str(c) for c in X.columns]
        Xf.columns = names
        self.cat_ = cat
        bp = BinningProcess(names, categorical_variables=[str(c) for c in cat])
        self.model_ = Scorecard(binning_process=bp, estimator=LogisticRegression(max_iter=2000))
        self.model_.fit(Xf, np.asarray(y, dtype=int))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        Xf = X.copy()
        for c in self.cat_:
            Xf[c] = Xf[c].astype(object)
        Xf.columns = [str(c) for c in X.columns]
        return self.model_.predict_proba(Xf)


def available_references() -> dict[str, Callable[[int], Any]]:
    """Name -> constructor(seed) of every reference whose package is installed."""
    out: dict[str, Callable[[int], Any]] = {"logistic_quantile": LogisticQuantile,
                                            "lightgbm_default": LightGBMDefault}
    if importlib.util.find_spec("xgboost") is not None:
        out["xgboost_default"] = XGBoostDefault
    if importlib.util.find_spec("optbinning") is not None:
        out["optbinning_scorecard"] = OptbinningScorecard
    return out


def missing_references() -> list[str]:
    """Optional reference packages that are not installed (named in research output)."""
    return [p for p in ("xgboost", "optbinning") if importlib.util.find_spec(p) is None]
