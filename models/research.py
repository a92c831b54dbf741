"""Research mode: cross-validated AUC of the rating model and the challenger on any table.

:func:`evaluate` trains the LightGBM rating model (:class:`models.rating.RatingModel`)
and the WoE challenger (:class:`models.challenger.WoEScorecard`) on the *same*
stratified folds (``StratifiedKFold(cv, shuffle=True, random_state=seed)``) and
reports the AUC of each fold, their mean, and the pooled out-of-fold AUC. For a
ready-made feature table the spec's monotone constraints apply only to the features
present under the same names. No early stopping is used (there is no time-based
validation slice): the spec's ``n_estimators`` rounds are trained.

Readers for CSV, Parquet and ARFF files (:func:`read_table`) and a label parser
(:func:`split_label`) serve the ``creditdb model evaluate`` command.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from models.challenger import WoEScorecard
from models.rating import RatingModel, RatingSpec, load_spec

TRUE_WORDS = {"1", "1.0", "true", "yes", "y", "t", "default", "bankrupt"}
FALSE_WORDS = {"0", "0.0", "false", "no", "n", "f"}


def read_arff(path: str | Path) -> pd.DataFrame:
    """ARFF via ``scipy.io.arff.loadarff``: ``?`` -> NaN, nominal byte strings decoded."""
    from scipy.io import arff

    data, meta = arff.loadarff(str(path))
    frame = pd.DataFrame(data)
    for name in frame.columns:
        if frame[name].dtype == object:
            decoded = frame[name].map(lambda v: v.decode("utf-8") if isinstance(v, bytes) else v)
            frame[name] = decoded.where(decoded != "?", np.nan)
    return frame


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a feature table from ``.csv``, ``.parquet`` / ``.pq`` or ``.arff``."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(p)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(p)
    if suffix == ".arff":
        return read_arff(p)
    raise ValueError(f"{p}: unsupported file type {suffix!r} (use .csv, .parquet or .arff)")


def parse_label(values: pd.Series, origin: str = "") -> pd.Series:
    """0/1 default flags from numbers, booleans or words (true/false, yes/no, 1/0).

    Raises ``ValueError`` naming the first bad row (0-based data row) and value.
    """
    where = f"{origin}: " if origin else ""
    out = []
    for i, v in enumerate(values.tolist()):
        if isinstance(v, bytes):
            v = v.decode("utf-8")
        key = str(v).strip().lower() if v is not None and not (isinstance(v, float) and np.isnan(v)) else None
        if key in TRUE_WORDS:
            out.append(1)
        elif key in FALSE_WORDS:
            out.append(0)
        else:
            raise ValueError(f"{where}row {i + 1}, column {values.name!r}: label {v!r} is not 0/1")
    return pd.Series(out, index=values.index, name=values.name, dtype="int64")


def split_label(frame: pd.DataFrame, label: str, origin: str = "") -> tuple[pd.DataFrame, pd.Series]:
    """Split ``frame`` into features (text columns -> pandas categoricals) and 0/1 label."""
    where = f"{origin}: " if origin else ""
    if label not in frame.columns:
        raise ValueError(f"{where}no label column {label!r}; columns are {', '.join(map(str, frame.columns[:20]))}")
    y = parse_label(frame[label], origin)
    X = frame.drop(columns=label).copy()
    for c in X.columns:
        if X[c].dtype == object or pd.api.types.is_string_dtype(X[c].dtype) or pd.api.types.is_bool_dtype(X[c].dtype):
            X[c] = X[c].astype("category")
    return X, y


def _index_hash(idx: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(idx, dtype="int64").tobytes()).hexdigest()


def _summary(fold_auc: list[float], y: np.ndarray, oof: np.ndarray, hashes: list[str]) -> dict[str, Any]:
    return {
        "fold_auc": [round(a, 6) for a in fold_auc],
        "mean_auc": round(float(np.mean(fold_auc)), 6),
        "std_auc": round(float(np.std(fold_auc, ddof=1)) if len(fold_auc) > 1 else 0.0, 6),
        "pooled_auc": round(float(roc_auc_score(y, oof)), 6),
        "fold_test_sha256": hashes,
    }


def evaluate(features: pd.DataFrame, label: pd.Series, cv: int = 5, seed: int = 0,
             spec: RatingSpec | str | Path | None = None,
             on_step: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Cross-validated AUC of the rating model (LightGBM) and the challenger (WoE logit).

    ``features``: one row per observation, numeric columns (NaN allowed) and pandas
    categoricals; ``label``: 0/1 (1 = default), aligned with ``features``. ``cv`` folds
    of ``StratifiedKFold(shuffle=True, random_state=seed)``, the same for both models.
    ``spec``: rating spec (default: the packaged production spec); its seed is kept.
    ``on_step(model_name, fold)`` is called after each fitted fold (progress bars).

    Returns a JSON-ready dict: ``n_rows``, ``n_defaults``, ``default_rate``,
    ``n_features``, ``cv``, ``seed``, ``spec`` (name, sha256, constrained features
    used), ``folds`` (size, defaults, sha256 of the test row positions) and ``models``
    -> ``lightgbm`` / ``challenger`` -> ``fold_auc``, ``mean_auc``, ``std_auc``,
    ``pooled_auc`` (AUC of all out-of-fold predictions pooled), ``fold_test_sha256``.
    """
    spec = spec if isinstance(spec, RatingSpec) else load_spec(spec)
    y = np.asarray(label, dtype="float64")
    if len(y) != len(features):
        raise ValueError(f"label has {len(y)} values for {len(features)} rows")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("label must be 0/1")
    if cv < 2:
        raise ValueError("cv must be at least 2")
    n_pos = int(y.sum())
    if n_pos < cv or len(y) - n_pos < cv:
        raise ValueError(f"need at least {cv} defaults and {cv} non-defaults for {cv}-fold CV, have {n_pos}")
    X = features.reset_index(drop=True)
    folds = list(StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))

    makers: dict[str, Callable[[], Any]] = {"lightgbm": lambda: RatingModel(spec), "challenger": lambda: WoEScorecard()}
    models: dict[str, Any] = {}
    for name, make in makers.items():
        oof = np.full(len(y), np.nan)
        aucs, hashes = [], []
        for k, (tr, te) in enumerate(folds):
            model = make().fit(X.iloc[tr], y[tr])
            p = model.predict_proba(X.iloc[te])[:, 1]
            oof[te] = p
            aucs.append(float(roc_auc_score(y[te], p)))
            hashes.append(_index_hash(te))
            if on_step:
                on_step(name, k)
        models[name] = _summary(aucs, y, oof, hashes)
    used = {c: v for c, v in spec.monotone_constraints.items()
            if c in X.columns and v != 0 and not isinstance(X[c].dtype, pd.CategoricalDtype)}
    return {
        "n_rows": int(len(y)),
        "n_defaults": n_pos,
        "default_rate": round(n_pos / len(y), 6),
        "n_features": int(X.shape[1]),
        "cv": int(cv),
        "seed": int(seed),
        "protocol": f"StratifiedKFold(n_splits={cv}, shuffle=True, random_state={seed}); same folds for both models",
        "spec": {"name": spec.name, "sha256": spec.sha256, "monotone_constraints_used": used},
        "folds": [{"fold": k, "n_test": int(len(te)), "n_test_defaults": int(y[te].sum()),
                   "test_sha256": _index_hash(te)} for k, (tr, te) in enumerate(folds)],
        "models": models,
    }
