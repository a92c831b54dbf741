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

import functools
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from models.challenger import WoEScorecard
from models.hygiene import clean_table
from models.pd_metrics import pd_metrics
from models.rating import RatingModel, RatingSpec, load_spec
from models.references import available_references, missing_references
from models.selection import SelectedRatingModel
from models.validation_stats import auc_delong

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


def parse_label(values: pd.Series, origin: str = "", positive: str | None = None) -> pd.Series:
    """0/1 default flags from numbers, booleans or words (true/false, yes/no, 1/0).

    ``positive``: the label value that means default (e.g. ``CHGOFF`` or ``bad``,
    compared as text, case and surrounding blanks ignored); every other value is 0.
    A missing label is an error either way. Errors name the data row, counted from 1
    for the first row below the header (the file line is that number + 1 for CSV), the
    column and the value.
    """
    where = f"{origin}: " if origin else ""
    want = str(positive).strip().lower() if positive is not None else None
    out = []
    for i, v in enumerate(values.tolist()):
        if isinstance(v, bytes):
            v = v.decode("utf-8")
        key = str(v).strip().lower() if v is not None and not (isinstance(v, float) and np.isnan(v)) else None
        if want is not None and key is not None:
            out.append(1 if key == want else 0)
        elif want is None and key in TRUE_WORDS:
            out.append(1)
        elif want is None and key in FALSE_WORDS:
            out.append(0)
        else:
            hint = "" if want is not None else " (use --positive VALUE to name the value that means default)"
            raise ValueError(f"{where}data row {i + 1}, column {values.name!r}: label {v!r} is not 0/1{hint}")
    if want is not None and 1 not in out:
        seen = ", ".join(sorted({str(v) for v in values.dropna().tolist()})[:10])
        raise ValueError(f"{where}column {values.name!r}: no label equals --positive {positive!r} (values: {seen})")
    return pd.Series(out, index=values.index, name=values.name, dtype="int64")


def split_label(frame: pd.DataFrame, label: str, origin: str = "",
                positive: str | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """Split ``frame`` into features (text columns -> pandas categoricals) and 0/1 label."""
    where = f"{origin}: " if origin else ""
    if label not in frame.columns:
        raise ValueError(f"{where}no label column {label!r}; columns are {', '.join(map(str, frame.columns[:20]))}")
    y = parse_label(frame[label], origin, positive=positive)
    X = frame.drop(columns=label).copy()
    for c in X.columns:
        if X[c].dtype == object or pd.api.types.is_string_dtype(X[c].dtype) or pd.api.types.is_bool_dtype(X[c].dtype):
            X[c] = X[c].astype("category")
    return X, y


def prepare_table(frame: pd.DataFrame, label: str, origin: str = "", positive: str | None = None
                  ) -> tuple[pd.DataFrame, pd.Series, list[dict[str, Any]]]:
    """Label split plus data hygiene (:func:`models.hygiene.clean_table`): ``(X, y, warnings)``.

    Numbers read as text become numbers before the remaining text columns become
    categoricals; identifier-like, constant and empty columns are dropped.
    """
    where = f"{origin}: " if origin else ""
    if label not in frame.columns:
        raise ValueError(f"{where}no label column {label!r}; columns are {', '.join(map(str, frame.columns[:20]))}")
    y = parse_label(frame[label], origin, positive=positive)
    X, warnings = clean_table(frame.drop(columns=label), y)
    if X.shape[1] == 0:
        raise ValueError(f"{where}no usable feature column left after the hygiene checks")
    for c in X.columns:
        if X[c].dtype == object or pd.api.types.is_string_dtype(X[c].dtype) or pd.api.types.is_bool_dtype(X[c].dtype):
            X[c] = X[c].astype("category")
    return X, y, warnings


def _index_hash(idx: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(idx, dtype="int64").tobytes()).hexdigest()


def _summary(fold_auc: list[float], y: np.ndarray, oof: np.ndarray, hashes: list[str],
             folds: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    pooled = auc_delong(oof, y.astype(bool))
    per_fold = [auc_delong(oof[te], y[te].astype(bool)) for _, te in folds]
    metrics = pd_metrics(np.clip(oof, 1e-15, 1 - 1e-15), y)
    return {
        "fold_auc": [round(a, 6) for a in fold_auc],
        "fold_auc_ci95": [[round(r.ci_lower, 6), round(r.ci_upper, 6)] for r in per_fold],
        "mean_auc": round(float(np.mean(fold_auc)), 6),
        "std_auc": round(float(np.std(fold_auc, ddof=1)) if len(fold_auc) > 1 else 0.0, 6),
        "pooled_auc": round(float(roc_auc_score(y, oof)), 6),
        "pooled_auc_ci95": [round(pooled.ci_lower, 6), round(pooled.ci_upper, 6)],
        **{k: round(v, 6) for k, v in metrics.items()},
        "fold_test_sha256": hashes,
    }


def _rating_maker(spec: RatingSpec, seed: int) -> Callable[[], Any]:
    if spec.selection:
        return lambda: SelectedRatingModel(spec)
    return lambda: RatingModel(spec)


def evaluate(features: pd.DataFrame, label: pd.Series, cv: int = 5, seed: int = 0,
             spec: RatingSpec | str | Path | None = None,
             on_step: Callable[[str, int], None] | None = None,
             compare: bool = False,
             folds: list[tuple[np.ndarray, np.ndarray]] | None = None) -> dict[str, Any]:
    """Cross-validated accuracy and calibration of the rating model, the challenger and references.

    ``features``: one row per observation, numeric columns (NaN allowed) and pandas
    categoricals; ``label``: 0/1 (1 = default), aligned with ``features``. ``cv`` folds
    of ``StratifiedKFold(shuffle=True, random_state=seed)``, the same for every model.
    ``spec``: rating spec (default: the packaged production spec); its seed is kept. A
    spec with a ``[selection]`` block trains :class:`models.selection.SelectedRatingModel`
    (every choice made on inner folds of each training fold only), otherwise the spec's
    parameters as they stand. ``compare``: add the plain references of
    :mod:`models.references` that are installed, on the same folds.
    ``on_step(model_name, fold)`` is called after each fitted fold (progress bars).
    ``folds``: explicit ``(train, test)`` row positions instead of the stratified split
    (tests use it to hold the folds fixed while changing labels).

    Returns a JSON-ready dict: ``n_rows``, ``n_defaults``, ``default_rate``,
    ``n_features``, ``cv``, ``seed``, ``spec`` (name, sha256, constrained features
    used), ``folds`` (size, defaults, sha256 of the test row positions), ``selection``
    (what the rating model chose in each fold) and ``models``: ``rating_model`` (the key
    of the production model, ``"lightgbm"``) and per model ``fold_auc`` with DeLong 95 %
    intervals, ``mean_auc``, ``std_auc``, ``pooled_auc`` (AUC of all out-of-fold
    predictions pooled) with its DeLong interval, ``brier``, ``log_loss``,
    ``calibration_intercept``, ``calibration_slope``, ``mean_pd``, ``default_rate``
    (:mod:`models.pd_metrics`) and ``fold_test_sha256``.
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
    if folds is None:
        folds = list(StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    elif len(folds) != cv:
        raise ValueError(f"{len(folds)} folds given for cv={cv}")

    makers: dict[str, Callable[[], Any]] = {"lightgbm": _rating_maker(spec, seed),
                                            "challenger": lambda: WoEScorecard()}
    not_installed: list[str] = []
    if compare:
        for ref_name, ref_make in available_references().items():
            makers[ref_name] = functools.partial(ref_make, seed)
        not_installed = missing_references()
    models: dict[str, Any] = {"rating_model": "lightgbm"}
    selection: list[dict[str, Any]] = []
    for name, make in makers.items():
        oof = np.full(len(y), np.nan)
        aucs, hashes = [], []
        for k, (tr, te) in enumerate(folds):
            model = make().fit(X.iloc[tr], y[tr])
            p = model.predict_proba(X.iloc[te])[:, 1]
            oof[te] = p
            aucs.append(float(roc_auc_score(y[te], p)))
            hashes.append(_index_hash(te))
            if name == "lightgbm" and getattr(model, "selection_", None):
                selection.append({"fold": k, **model.selection_})
            if on_step:
                on_step(name, k)
        models[name] = _summary(aucs, y, oof, hashes, folds)
    used = {c: v for c, v in spec.monotone_constraints.items()
            if c in X.columns and v != 0 and not isinstance(X[c].dtype, pd.CategoricalDtype)}
    out = {
        "n_rows": int(len(y)),
        "n_defaults": n_pos,
        "default_rate": round(n_pos / len(y), 6),
        "n_features": int(X.shape[1]),
        "cv": int(cv),
        "seed": int(seed),
        "protocol": f"StratifiedKFold(n_splits={cv}, shuffle=True, random_state={seed}); same folds for all models",
        "spec": {"name": spec.name, "sha256": spec.sha256, "monotone_constraints_used": used},
        "folds": [{"fold": k, "n_test": int(len(te)), "n_test_defaults": int(y[te].sum()),
                   "test_sha256": _index_hash(te)} for k, (tr, te) in enumerate(folds)],
        "selection": selection,
        "models": models,
    }
    if compare:
        out["references_not_installed"] = not_installed
    return out


def model_entries(models: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-model result dicts of ``evaluate(...)["models"]`` (without the ``rating_model`` key)."""
    return {k: v for k, v in models.items() if isinstance(v, dict)}
