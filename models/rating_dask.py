"""Distributed training of the rating model on a Dask cluster (``lightgbm.dask``).

LightGBM's data-parallel learner builds one model over the rows of every worker: each
worker holds a part of the fitting sample, histograms are summed over the network, all
workers grow the same trees. The model text is then used exactly as a serial one
(:class:`models.rating.RatingModel`), but it is **not bit-identical** to a serial fit on
the same rows: bin boundaries come from each worker's sample of its own rows and sums
are added in another order. Models trained this way are recorded with their engine and
compared within :data:`TOLERANCE` (``pipelines.model_validation.reproduce``); serial
models stay bit-identical.

Early stopping: ``lightgbm.dask`` hands each worker only some parts of an ``eval_set``,
so workers would judge different validation rows and stop at different rounds (the
job then fails). Here every worker receives the *whole* validation slice and evaluates
the same binary log-loss after each round (:class:`SameStopOnEveryWorker`), so all stop
at the same round, by LightGBM's own rule (the round with the lowest log-loss, after
``early_stopping_rounds`` rounds without improvement).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from models.rating import RatingModel, _check_xy, _object_columns

#: how far a distributed model may lie from a re-fit on the same data (serial, or on a
#: cluster again: which worker holds which rows changes the bins, and the fits stop at
#: slightly different rounds) and still count as reproduced. PDs are one-year fractions
#: over every statement of the modelling table: the mean absolute difference within 0.01
#: (one percentage point), the 99th percentile within 0.1; the out-of-time AUC within
#: 0.02. Set from the spread of two-worker fits against serial ones on a few thousand
#: synthetic firms (mean 0.005, p99 0.05, AUC 0.014: BENCHMARKS.md); larger samples
#: give smaller differences. Single tail PDs are not bounded.
TOLERANCE = {"mean_abs_pd_difference": 0.01, "p99_abs_pd_difference": 0.1, "auc_oot_difference": 0.02}


def within_tolerance(pd_a: np.ndarray, pd_b: np.ndarray, auc_a: float | None, auc_b: float | None,
                     tolerance: dict[str, float] | None = None) -> dict[str, Any]:
    """Compare two models' PDs (fractions, same rows) and out-of-time AUCs against ``tolerance``."""
    tol = tolerance or TOLERANCE
    diff = np.abs(np.asarray(pd_a, dtype="float64") - np.asarray(pd_b, dtype="float64"))
    out = {"mean_abs_pd_difference": float(diff.mean()) if len(diff) else 0.0,
           "p99_abs_pd_difference": float(np.quantile(diff, 0.99)) if len(diff) else 0.0,
           "auc_oot_difference": abs(auc_a - auc_b) if auc_a is not None and auc_b is not None else None}
    out["within"] = all(out[k] is not None and out[k] <= v for k, v in tol.items())
    out["tolerance"] = dict(tol)
    return out


class SameStopOnEveryWorker:
    """LightGBM callback: early stopping on a full validation set that every worker holds.

    Adds each new tree's raw score to a running total (one tree a round, not the whole
    model), computes the binary log-loss and raises ``EarlyStopException`` like
    ``lightgbm.early_stopping`` (strictly lower log-loss = better).
    """

    order = 30

    def __init__(self, X_valid: pd.DataFrame, y_valid: np.ndarray, rounds: int) -> None:
        self.X, self.y, self.rounds = X_valid, np.asarray(y_valid, dtype="float64"), int(rounds)
        self.raw: np.ndarray | None = None
        self.best_score, self.best_iter = np.inf, 0

    def __call__(self, env: Any) -> None:
        import lightgbm as lgb

        tree = env.model.predict(self.X, start_iteration=env.iteration, num_iteration=1, raw_score=True)
        self.raw = tree if self.raw is None else self.raw + tree
        p = np.clip(1.0 / (1.0 + np.exp(-self.raw)), 1e-15, 1 - 1e-15)
        loss = float(-np.mean(self.y * np.log(p) + (1 - self.y) * np.log(1 - p)))
        if loss < self.best_score:
            self.best_score, self.best_iter = loss, env.iteration
        elif env.iteration - self.best_iter >= self.rounds:
            raise lgb.callback.EarlyStopException(self.best_iter, [("valid", "binary_logloss", self.best_score, False)])
        if env.iteration == env.end_iteration - 1:
            raise lgb.callback.EarlyStopException(self.best_iter, [("valid", "binary_logloss", self.best_score, False)])


def fit_distributed(model: RatingModel, X: pd.DataFrame, y: Any, X_valid: pd.DataFrame | None, y_valid: Any,
                    client: Any, partitions: int | None = None) -> RatingModel:
    """Fit ``model`` (its spec, constraints, seed) on a Dask ``client``'s workers; returns it fitted.

    ``X`` is split into ``partitions`` (default: one per worker) spread over the
    workers; ``X_valid`` (the time-based validation slice, modest in size) goes whole to
    every worker for early stopping.
    """
    import dask.dataframe as dd
    from lightgbm.dask import DaskLGBMClassifier

    yv = _check_xy(X, y, "training data")
    bad = _object_columns(X)
    if bad:
        raise TypeError(f"text columns must be pandas categoricals: {', '.join(map(str, bad))}")
    params = model.lgb_params(X)
    params.pop("num_threads", None)  # lightgbm.dask sets it from each worker's threads
    workers = len(client.scheduler_info()["workers"])
    n = partitions or max(1, workers)
    Xd = dd.from_pandas(X, npartitions=n, sort=False)
    yd = dd.from_pandas(pd.Series(yv, index=X.index, name="label"), npartitions=n, sort=False)
    callbacks = []
    if X_valid is not None and model.spec.early_stopping_rounds:
        yvv = _check_xy(X_valid, y_valid, "validation data")
        callbacks.append(SameStopOnEveryWorker(X_valid, yvv, model.spec.early_stopping_rounds))
    clf = DaskLGBMClassifier(client=client, n_estimators=model.spec.n_estimators, **params)
    with warnings.catch_warnings():
        # lightgbm.dask passes the estimator's own ``n_jobs`` (always in get_params) to its
        # trainer and then warns that it ignores it: each worker's thread count is used
        # instead, which is what we want, so the warning says nothing to the user
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        clf.fit(Xd, yd, callbacks=callbacks or None)
    booster = clf.booster_
    best = booster.best_iteration if booster.best_iteration and booster.best_iteration > 0 else None
    model._set_text(booster.model_to_string(num_iteration=best if best else -1))
    model.best_iteration_ = best
    return model


__all__ = ["TOLERANCE", "SameStopOnEveryWorker", "fit_distributed", "within_tolerance"]
