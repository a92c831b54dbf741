"""Nested selection of the rating model inside one training sample.

:class:`SelectedRatingModel` is the rating model used by research mode (and available to
training): everything it chooses is decided on *inner* stratified folds of the rows it is
given, never on the rows it will later be scored on.

1. **Regularisation search.** A small grid of LightGBM settings (``[selection]``
   ``candidates`` of the spec: tree size, leaf size, L2 penalty, feature subsampling) is
   trained on each inner fold (``max_rounds`` rounds at ``learning_rate``; early stopping
   on the inner held-out part only when ``early_stopping_rounds`` is set). The pooled
   inner out-of-fold AUC is read every ``round_step`` rounds; the candidate and number of
   rounds with the highest value win (one number of rounds for all inner folds: less
   noisy than each fold's own stopping point), scaled by ``inner / (inner - 1)`` for the
   larger final sample.
2. **Blend with the scorecard.** The weight-of-evidence scorecard
   (:class:`models.challenger.WoEScorecard`) is fitted on the same inner folds; the
   blend ``w * lightgbm + (1 - w) * scorecard`` of the two log-odds is chosen over
   ``w`` in 0, 0.1, ..., 1 by inner out-of-fold AUC. A weight below 1 is kept only when
   it beats the boosted model alone by ``blend_min_gain`` (AUC points): the blend must
   earn its place.
3. **Calibration.** A logistic map (Platt) of the chosen inner out-of-fold score to the
   inner labels turns the final score into a probability; research mode's calibration
   figures measure this map on the outer test rows.

The final models are refitted on all given rows with the chosen settings. The fit is
deterministic for a seed (LightGBM ``deterministic``, fixed threads, fixed fold shuffle).
The choices are recorded in :attr:`SelectedRatingModel.selection_` (JSON-ready).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from models.challenger import WoEScorecard
from models.rating import RatingSpec, _check_xy, _object_columns, monotone_vector

#: Used when a spec has no ``[selection]`` block (see ``models/specs/rating_v1.toml``).
DEFAULT_CANDIDATES: list[dict[str, Any]] = [
    {"num_leaves": 7, "min_data_in_leaf": 20, "lambda_l2": 1.0, "feature_fraction": 0.5},
    {"num_leaves": 31, "min_data_in_leaf": 20, "lambda_l2": 1.0, "feature_fraction": 0.8},
]


#: Keys of a candidate that are not LightGBM parameters: ``plain = true`` starts from
#: LightGBM's defaults (learning rate 0.1, 31 leaves, ...) instead of the spec's parameters
#: and drops the monotone constraints; ``rounds = N`` fixes the number of boosting rounds
#: (no search over rounds, and the final refit uses exactly ``N``).
_SELECTION_KEYS = {"plain", "rounds"}
_REPRODUCIBILITY_KEYS = {"objective", "deterministic", "force_row_wise", "num_threads", "seed", "verbosity"}


@dataclass
class SelectionSettings:
    """The ``[selection]`` block of a spec."""

    inner_folds: int = 3
    candidates: list[dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(DEFAULT_CANDIDATES))
    blend: bool = True
    blend_min_gain: float = 0.002
    max_rounds: int = 500
    learning_rate: float = 0.1
    early_stopping_rounds: int = 0
    round_step: int = 10

    @classmethod
    def from_spec(cls, spec: RatingSpec) -> SelectionSettings:
        raw = getattr(spec, "selection", None) or {}
        s = cls()
        if "inner_folds" in raw:
            s.inner_folds = int(raw["inner_folds"])
        if "candidates" in raw:
            s.candidates = [dict(c) for c in raw["candidates"]]
        if "blend" in raw:
            s.blend = bool(raw["blend"])
        if "blend_min_gain" in raw:
            s.blend_min_gain = float(raw["blend_min_gain"])
        s.max_rounds = int(raw.get("max_rounds", s.max_rounds))
        s.learning_rate = float(raw.get("learning_rate", s.learning_rate))
        s.early_stopping_rounds = int(raw.get("early_stopping_rounds", s.early_stopping_rounds))
        s.round_step = int(raw.get("round_step", s.round_step))
        if s.inner_folds < 2:
            raise ValueError("[selection] inner_folds must be >= 2")
        if not s.candidates:
            raise ValueError("[selection] candidates must not be empty")
        return s


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class SelectedRatingModel:
    """LightGBM rating model whose settings, rounds, blend and calibration come from inner folds.

    ``fit(X, y)``: X a DataFrame (NaN allowed, pandas categoricals as categorical
    features), y 0/1 (1 = default). :meth:`raw_score` is the blended log-odds score,
    :meth:`predict_proba` its calibrated probability ``[1 - p, p]`` (fraction).
    """

    classes_ = np.array([0, 1])

    def __init__(self, spec: RatingSpec, seed: int | None = None) -> None:
        self.spec = spec
        self.settings = SelectionSettings.from_spec(spec)
        self.seed = int(spec.params.get("seed", 0) if seed is None else seed)
        self.booster_: lgb.Booster | None = None
        self.scorecard_: WoEScorecard | None = None
        self.weight_: float = 1.0
        self.platt_: tuple[float, float] = (0.0, 1.0)
        self.selection_: dict[str, Any] = {}
        self.chosen_params_: dict[str, Any] = {}
        self.chosen_plain_: bool = False

    def _params(self, X: pd.DataFrame, candidate: dict[str, Any]) -> dict[str, Any]:
        overrides = {k: v for k, v in candidate.items() if k not in _SELECTION_KEYS}
        if candidate.get("plain"):
            # LightGBM's own defaults: only the objective and the reproducibility settings
            # of the spec, no monotone constraints
            params = {k: v for k, v in self.spec.params.items() if k in _REPRODUCIBILITY_KEYS}
            params.update(overrides)
            params["seed"] = self.seed
            params["metric"] = "auc"
            return params
        params = copy.deepcopy(self.spec.params)
        params["learning_rate"] = self.settings.learning_rate
        params.update(overrides)
        params["seed"] = self.seed
        params["metric"] = "auc"
        mono = monotone_vector(list(X.columns), self.spec.monotone_constraints, X)
        if any(mono):
            params["monotone_constraints"] = mono
        return params

    def _train(self, params: dict[str, Any], X: pd.DataFrame, y: np.ndarray, rounds: int,
               X_val: pd.DataFrame | None = None, y_val: np.ndarray | None = None) -> lgb.Booster:
        train = lgb.Dataset(X, label=y, free_raw_data=True, params={"verbosity": -1})
        if X_val is None or not self.settings.early_stopping_rounds:
            return lgb.train(params, train, num_boost_round=rounds)
        valid = lgb.Dataset(X_val, label=y_val, reference=train)
        esr = self.settings.early_stopping_rounds
        return lgb.train(params, train, num_boost_round=rounds, valid_sets=[valid],
                         callbacks=[lgb.early_stopping(esr, verbose=False)])

    def fit(self, X: pd.DataFrame, y: Any, refit: bool = True) -> SelectedRatingModel:
        """Select on inner folds of ``(X, y)``, then refit on all of it (``refit=False``: choose only).

        After ``fit(..., refit=False)`` :attr:`selection_` and :meth:`effective_spec` are
        available but the model cannot score (training refits the chosen settings itself).
        """
        yv = _check_xy(X, y, "training data")
        bad = _object_columns(X)
        if bad:
            raise TypeError(f"text columns must be pandas categoricals: {', '.join(map(str, bad))}")
        st = self.settings
        k = st.inner_folds
        if yv.sum() < k or (len(yv) - yv.sum()) < k:
            raise ValueError(f"need at least {k} defaults and {k} non-defaults for the inner folds")
        folds = list(StratifiedKFold(k, shuffle=True, random_state=self.seed).split(np.zeros(len(yv)), yv))
        n_c = len(st.candidates)
        cand_oof = np.zeros((n_c, len(yv)))
        cand_auc, cand_rounds = [], []
        for c, candidate in enumerate(st.candidates):
            params = self._params(X, candidate)
            fixed = int(candidate["rounds"]) if "rounds" in candidate else None
            if fixed is not None:
                boosters = [self._train(params, X.iloc[tr], yv[tr], fixed) for tr, _ in folds]
                grid = [fixed]
            else:
                boosters = [self._train(params, X.iloc[tr], yv[tr], st.max_rounds, X.iloc[va], yv[va])
                            for tr, va in folds]
                # the pooled inner out-of-fold AUC after r rounds, on a grid of r up to the
                # shortest fold's run: one number of rounds for all folds, less noisy than
                # each fold's own stopping point
                last = min(b.current_iteration() for b in boosters)
                step = max(1, st.round_step)
                grid = sorted({*range(step, last + 1, step), last})
            preds = np.zeros((len(grid), len(yv)))
            for b, (_, va) in zip(boosters, folds, strict=True):
                for g, r in enumerate(grid):
                    preds[g, va] = b.predict(X.iloc[va], num_iteration=r, raw_score=True)
            curve = [float(roc_auc_score(yv, preds[g])) for g in range(len(grid))]
            g_best = int(np.argmax(curve))
            cand_auc.append(curve[g_best])
            cand_rounds.append(grid[g_best])
            cand_oof[c] = preds[g_best]
        best_c = int(np.argmax(cand_auc))
        if "rounds" in st.candidates[best_c]:
            rounds = int(st.candidates[best_c]["rounds"])
        else:
            rounds = max(1, int(round(cand_rounds[best_c] * k / (k - 1))))
        oof = cand_oof[best_c]

        weight, blend_auc, card_auc = 1.0, cand_auc[best_c], None
        if st.blend:
            card_oof = np.zeros(len(yv))
            for tr, va in folds:
                card_oof[va] = WoEScorecard().fit(X.iloc[tr], yv[tr]).raw_score(X.iloc[va])
            card_auc = float(roc_auc_score(yv, card_oof))
            weights = np.round(np.linspace(0.0, 1.0, 11), 2)
            aucs = [float(roc_auc_score(yv, w * oof + (1 - w) * card_oof)) for w in weights]
            i = int(np.argmax(aucs))
            if weights[i] < 1.0 and aucs[i] >= cand_auc[best_c] + st.blend_min_gain:
                weight, blend_auc = float(weights[i]), aucs[i]
                oof = weight * oof + (1 - weight) * card_oof

        lr = LogisticRegression(C=1e6, max_iter=1000)
        lr.fit(oof.reshape(-1, 1), yv.astype(int))
        self.platt_ = (float(lr.intercept_[0]), float(lr.coef_[0, 0]))

        self.chosen_params_ = self._params(X.iloc[:0], st.candidates[best_c])
        self.chosen_params_.pop("monotone_constraints", None)
        self.chosen_params_.pop("metric", None)
        self.chosen_plain_ = bool(st.candidates[best_c].get("plain"))
        self.weight_ = weight
        if refit:
            self.booster_ = lgb.Booster(model_str=self._train(self._params(X, st.candidates[best_c]), X, yv,
                                                              rounds).model_to_string())
            self.feature_names_ = self.booster_.feature_name()
            self.scorecard_ = WoEScorecard().fit(X, yv) if weight < 1.0 else None
        self.selection_ = {
            "inner_folds": k,
            "candidate_inner_auc": [round(a, 6) for a in cand_auc],
            "candidate_rounds": cand_rounds,
            "candidate": best_c,
            "params": st.candidates[best_c],
            "rounds": rounds,
            "scorecard_inner_auc": round(card_auc, 6) if card_auc is not None else None,
            "blend_weight_lightgbm": weight,
            "inner_auc": round(blend_auc, 6),
            "platt": [round(v, 6) for v in self.platt_],
        }
        return self

    def effective_spec(self) -> RatingSpec:
        """The chosen LightGBM settings as a plain spec (no ``[selection]``, no early stopping).

        ``RatingModel(effective_spec()).fit(X, y)`` on the rows given to :meth:`fit` trains
        the same booster as the selection's refit. The blend weight is not part of it:
        callers that store only a LightGBM model fit with ``blend = false``.
        """
        if not self.selection_:
            raise RuntimeError("model is not fitted")
        return RatingSpec(name=self.spec.name, params=copy.deepcopy(self.chosen_params_),
                          n_estimators=int(self.selection_["rounds"]), early_stopping_rounds=None,
                          monotone_constraints={} if self.chosen_plain_ else dict(self.spec.monotone_constraints),
                          description=self.spec.description, source_text=self.spec.source_text, selection={})

    def raw_score(self, X: pd.DataFrame) -> np.ndarray:
        """Blended, uncalibrated log-odds score per row."""
        if self.booster_ is None:
            raise RuntimeError("model is not fitted")
        s = np.asarray(self.booster_.predict(X[self.feature_names_], raw_score=True), dtype="float64")
        if self.scorecard_ is not None:
            s = self.weight_ * s + (1.0 - self.weight_) * self.scorecard_.raw_score(X)
        return s

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """``(n, 2)`` array ``[1 - p, p]``, ``p`` the probability of default calibrated on inner folds."""
        a, b = self.platt_
        p = _sigmoid(a + b * self.raw_score(X))
        return np.column_stack([1.0 - p, p])
