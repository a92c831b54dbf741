"""Training the rating model at a cut-off: out-of-time design, challenger, calibration, metrics.

Design (documented for supervisors; see also the model card, ``creditdb model show``):

* **Sample**: the labelled modelling table at the cut-off ``C`` (``pipelines.features``):
  statements whose 12-month default window (after a 3-month reporting lag) ended on or
  before ``C``; defaults dated before ``C``.
* **Out-of-time (OOT) sample**: the statements with fiscal year end in the last
  ``oot_years`` (default 1) twelve-month periods of the labelled table, i.e. fiscal
  year end > (latest labelled fiscal year end - 12 * oot_years months). Never used for
  fitting, early stopping or calibration; only for the OOT metrics.
* **Development sample**: all earlier labelled statements. Its latest ``valid_fraction``
  (default 20 %, whole dates, :func:`models.rating.time_split`) is the time-based
  validation slice, used for LightGBM early stopping and as the out-of-sample
  calibration set; the rest is the fitting sample for the model and the challenger.
* **Calibration**: Platt scaling on the validation slice, anchored to the long-run
  default rate of the development sample (mean of the yearly default rates by fiscal
  year), PD floor 0.05 % (``models.calibration``).
* **Unreported items** (``models.unreported``): per optional statement item
  (``pipelines.model_items``), Fisher's exact test of unreported x default on the
  development sample (``metrics["missing_items"]``). Where being unreported is
  predictive (p < 0.001) the model uses it; for the other items the log-odds score of
  a statement that left one out is corrected by offsets learnt on the development
  sample, so that an item missing at random does not move PDs one way. The offsets are
  stored with the model (``spec.unreported``) and are part of its version. Calibration
  is fitted on the corrected scores.
* **Challenger**: the logistic WoE scorecard (``models.challenger``) fitted on the same
  fitting sample, reported beside the model.

Nothing here touches the database: :func:`fit` works on a modelling table; the
database-backed entry point is :func:`train` (reads, fits, registers, audits).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

import creditdb
from models.calibration import PD_FLOOR, Calibration, fit_calibration, long_run_default_rate
from models.challenger import WoEScorecard
from models.master_scale import assign_grade, load_master_scale
from models.rating import RatingModel, RatingSpec, load_spec, time_split
from models.ratios import FEATURE_NAMES
from models.unreported import UnreportedAdjustment, fisher_evidence, fit_adjustment
from pipelines.features import DEFAULT_HORIZON_MONTHS, DEFAULT_LAG_MONTHS, data_fingerprint, training_table
from pipelines.model_items import optional_model_items, unreported_flags

OOT_YEARS = 1
VALID_FRACTION = 0.2


class TrainingError(ValueError):
    """The training window or spec cannot produce a model (nothing is written)."""


@dataclass
class Design:
    """Sample design of one training run (dates are ISO strings in the registry)."""

    cutoff: dt.date
    lag_months: int = DEFAULT_LAG_MONTHS
    horizon_months: int = DEFAULT_HORIZON_MONTHS
    oot_years: int = OOT_YEARS
    valid_fraction: float = VALID_FRACTION
    snapshot: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"cutoff": self.cutoff.isoformat(), "lag_months": self.lag_months,
                "horizon_months": self.horizon_months, "oot_years": self.oot_years,
                "valid_fraction": self.valid_fraction, "snapshot": self.snapshot}


@dataclass
class TrainedModel:
    """A fitted model with everything the registry stores."""

    model: RatingModel
    calibration: Calibration
    challenger: WoEScorecard
    spec: RatingSpec
    seed: int
    design: Design
    table: pd.DataFrame  # modelling table with a ``sample`` column: fit | valid | oot
    metrics: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    #: how it was trained: ``{"kind": "serial"}`` or the Dask cluster and the tolerance its
    #: re-fits are compared within (``pipelines.distributed.engine_record``)
    engine: dict[str, Any] = field(default_factory=lambda: {"kind": "serial"})
    #: currency of the size features (the reporting currency at training; None: as submitted,
    #: models trained before conversion was the default); scoring converts into it
    size_currency: str | None = None
    #: score offsets for optional items left out at random (``models.unreported``); empty = none
    unreported: UnreportedAdjustment = field(default_factory=UnreportedAdjustment)

    @property
    def version(self) -> str:
        """Registry version id: ``rating-`` + 12 hex digits identifying everything that sets the PDs.

        The sha256 of the model text's sha256 and the calibration parameters (canonical
        JSON): two trainings whose trees agree but whose calibration samples differ get
        different versions instead of colliding in the registry.
        """
        return version_id(self.model.model_sha256, self.calibration.to_dict(), self.unreported)

    def raw_scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Log-odds scores of ``frame`` (features + unreported flags or raw items), with the unreported-item offsets."""
        return adjusted_scores(self.model, self.unreported, frame)

    def pd(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated one-year PDs (fractions) of ``frame``'s rows, as scoring computes them."""
        return self.calibration.predict(self.raw_scores(frame))

    def spec_record(self) -> dict[str, Any]:
        """The ``model_version.spec`` JSON: spec file, effective parameters, design, calibration."""
        return {
            "name": self.spec.name, "description": self.spec.description, "sha256": self.spec.sha256,
            "source_text": self.spec.source_text, "params": self.spec.params,
            "n_estimators": self.spec.n_estimators, "early_stopping_rounds": self.spec.early_stopping_rounds,
            "monotone_constraints": self.spec.monotone_constraints, "features": list(FEATURE_NAMES),
            "seed": self.seed, "design": self.design.as_dict(), "calibration": self.calibration.to_dict(),
            "engine": self.engine, "size_currency": self.size_currency, "unreported": self.unreported.to_dict(),
        }


def adjusted_scores(model: RatingModel, unreported: UnreportedAdjustment, frame: pd.DataFrame) -> np.ndarray:
    """The model's log-odds scores of ``frame`` corrected for optional items it left out (``models.unreported``)."""
    X = frame[list(FEATURE_NAMES)]
    raw = model.raw_score(X)
    if not unreported.items:
        return raw
    return unreported.adjust(raw, X, unreported_flags(frame))


def version_id(model_sha256: str, calibration: dict[str, float],
               unreported: UnreportedAdjustment | None = None) -> str:
    """``rating-`` + first 12 hex digits of sha256 over the model text hash, calibration and item offsets.

    The unreported-item offsets enter only when there are any (a model without them keeps
    the version it had before they existed).
    """
    doc: dict[str, Any] = {"model_sha256": model_sha256, "calibration": calibration}
    if unreported is not None and unreported.items:
        doc["unreported_sha256"] = unreported.sha256
    key = json.dumps(doc, sort_keys=True)
    return "rating-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def check_spec(spec: RatingSpec) -> None:
    """Reject a spec whose monotone constraints name a feature the feature table lacks."""
    unknown = sorted(set(spec.monotone_constraints) - set(FEATURE_NAMES))
    if unknown:
        raise TrainingError(f"spec {spec.name}: unknown feature(s) in [monotone_constraints]: {', '.join(unknown)}; "
                            f"known: {', '.join(FEATURE_NAMES)}")


def with_seed(spec: RatingSpec, seed: int | None) -> tuple[RatingSpec, int]:
    """Copy of ``spec`` with LightGBM ``seed`` set (None keeps the spec's own, default 0)."""
    import copy

    out = copy.deepcopy(spec)
    if seed is not None:
        out.params["seed"] = int(seed)
    return out, int(out.params.get("seed", 0))


def split_samples(table: pd.DataFrame, oot_years: int = OOT_YEARS,
                  valid_fraction: float = VALID_FRACTION) -> pd.Series:
    """``sample`` label per row: ``fit``, ``valid`` (early stopping + calibration) or ``oot``."""
    fye = pd.to_datetime(table["fiscal_year_end"])
    start_oot = fye.max() - pd.DateOffset(months=12 * oot_years)
    is_oot = fye > start_oot
    sample = pd.Series("oot", index=table.index, dtype=object)
    dev = table.loc[~is_oot]
    if dev.empty or dev["fiscal_year_end"].nunique() < 2:
        raise TrainingError("the development sample needs labelled statements from at least two fiscal dates "
                            f"before the out-of-time sample (fiscal year ends after {start_oot.date()}); "
                            "use a later cut-off or more history")
    fit_part, valid_part = time_split(dev, "fiscal_year_end", valid_fraction)
    sample.loc[fit_part.index] = "fit"
    sample.loc[valid_part.index] = "valid"
    return sample


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else None


def _sample_stats(y: np.ndarray, fye: pd.Series) -> dict[str, Any]:
    return {"n": int(len(y)), "defaults": int(y.sum()), "default_rate": float(y.mean()) if len(y) else None,
            "first_fiscal_year_end": str(fye.min().date()) if len(fye) else None,
            "last_fiscal_year_end": str(fye.max().date()) if len(fye) else None}


def grade_distribution(pd_: np.ndarray, y: np.ndarray) -> list[dict[str, Any]]:
    """Per master-scale grade: count, share, defaults, observed default rate, mean PD."""
    scale = load_master_scale()
    grades = assign_grade(pd_, scale)
    out = []
    for g in scale.labels:
        m = grades == g
        n = int(m.sum())
        out.append({"grade": g, "n": n, "share": n / len(pd_) if len(pd_) else 0.0, "defaults": int(y[m].sum()),
                    "default_rate": float(y[m].mean()) if n else None, "mean_pd": float(pd_[m].mean()) if n else None})
    return out


def fit(table: pd.DataFrame, spec: RatingSpec, design: Design, seed: int | None = None,
        client: Any = None, size_currency: str | None = "training") -> TrainedModel:
    """Fit model, challenger and calibration on a modelling table (see module docstring).

    ``client``: a ``distributed.Client``; the LightGBM model is then trained on its
    workers (``models.rating_dask``; not bit-identical to a serial fit), the rest here.
    ``size_currency``: the currency the table's size features were taken in, recorded
    with the model (give what the statements were loaded with; default ``"training"``:
    :func:`pipelines.fx.size_currency`, as :func:`pipelines.features.load_statements`).
    """
    check_spec(spec)
    spec, seed_used = with_seed(spec, seed)
    if table.empty:
        raise TrainingError(f"empty training window: no statement has a complete {design.horizon_months}-month "
                            f"default window (reporting lag {design.lag_months} months) before the cut-off "
                            f"{design.cutoff}")
    if int(table["label"].sum()) == 0:
        raise TrainingError(f"no defaults in the training window up to {design.cutoff}: "
                            f"{len(table)} labelled statements, 0 defaults; cannot train a PD model")
    table = table.copy()
    table["sample"] = split_samples(table, design.oot_years, design.valid_fraction)
    cols = list(FEATURE_NAMES)
    parts = {k: table.loc[table["sample"] == k] for k in ("fit", "valid", "oot")}
    for k in ("fit", "valid"):
        y = parts[k]["label"].to_numpy()
        if y.sum() == 0 or y.sum() == len(y):
            raise TrainingError(f"the {k} part of the development sample has {int(y.sum())} defaults in {len(y)} "
                                "statements: both defaults and non-defaults are needed")
    if client is None:
        model = RatingModel(spec).fit(parts["fit"][cols], parts["fit"]["label"], parts["valid"][cols],
                                      parts["valid"]["label"])
    else:
        from models.rating_dask import fit_distributed

        model = fit_distributed(RatingModel(spec), parts["fit"][cols], parts["fit"]["label"], parts["valid"][cols],
                                parts["valid"]["label"], client)
    challenger = WoEScorecard().fit(parts["fit"][cols], parts["fit"]["label"])
    dev = table.loc[table["sample"] != "oot"]
    target = long_run_default_rate(dev["label"], pd.to_datetime(dev["fiscal_year_end"]).dt.year)
    flags = unreported_flags(table)
    evidence = missing_item_evidence(flags.loc[dev.index], dev["label"])
    quiet = {i: optional_model_items()[i] for i, e in evidence.items() if not e["predictive"]}
    raw_model = model.raw_score(table[cols])  # once; each part is a slice of it
    y_valid = parts["valid"]["label"]
    valid_at = table.index.get_indexer(parts["valid"].index)
    try:
        # the offsets keep the mean *PD*: learnt through a first calibration of the uncorrected
        # scores; the calibration is then refitted on the corrected ones
        first = fit_calibration(raw_model[valid_at], y_valid, target_rate=target, floor=PD_FLOOR)
        adjustment = fit_adjustment(model.raw_score, dev[cols], flags.loc[dev.index], quiet, seed=seed_used,
                                    prob=first.predict)
        raw = pd.Series(adjustment.adjust(raw_model, table[cols], flags), index=table.index)
        calibration = fit_calibration(raw.to_numpy()[valid_at], y_valid, target_rate=target, floor=PD_FLOOR)
    except ValueError as exc:
        raise TrainingError(f"calibration failed: {exc}") from exc
    from pipelines.fx import resolve_size_currency

    tm = TrainedModel(model, calibration, challenger, spec, seed_used, design, table,
                      size_currency=resolve_size_currency(size_currency), unreported=adjustment)
    if client is not None:
        from pipelines.distributed import engine_record

        tm.engine = engine_record(client)
    tm.metrics = _metrics(tm, parts, target, raw)
    for item, e in evidence.items():
        e["adjusted"] = item in adjustment.items
        e["features"] = optional_model_items()[item]
    tm.metrics["missing_items"] = evidence
    tm.fingerprint = data_fingerprint(table)
    return tm


def missing_item_evidence(flags: pd.DataFrame, label: pd.Series) -> dict[str, dict[str, Any]]:
    """Per optional item: Fisher's exact test of unreported x default (``models.unreported.fisher_evidence``)."""
    y = label.to_numpy()
    return {item: fisher_evidence(flags[item].to_numpy(), y) for item in flags.columns}


def _metrics(tm: TrainedModel, parts: dict[str, pd.DataFrame], target: float,
             raw: pd.Series | None = None) -> dict[str, Any]:
    cols = list(FEATURE_NAMES)
    if raw is None:
        raw = pd.concat([pd.Series(tm.raw_scores(p), index=p.index) for p in parts.values() if len(p)])

    def score(part: pd.DataFrame) -> np.ndarray:
        return raw.loc[part.index].to_numpy()

    out: dict[str, Any] = {"samples": {}, "auc": {"model": {}, "challenger": {}},
                           "long_run_default_rate": target, "best_iteration": tm.model.best_iteration_}
    for k, part in parts.items():
        y = part["label"].to_numpy()
        out["samples"][k] = _sample_stats(y, pd.to_datetime(part["fiscal_year_end"]))
        if len(part):
            out["auc"]["model"][k] = _auc(y, score(part))
            out["auc"]["challenger"][k] = _auc(y, tm.challenger.raw_score(part[cols]))
    oot = parts["oot"]
    if len(oot):
        pd_oot = tm.calibration.predict(score(oot))
        y = oot["label"].to_numpy()
        out["oot_mean_pd"] = float(pd_oot.mean())
        out["grade_distribution_oot"] = grade_distribution(pd_oot, y)
    dev = pd.concat([parts["fit"], parts["valid"]])
    out["grade_distribution_dev"] = grade_distribution(tm.calibration.predict(score(dev)),
                                                       dev["label"].to_numpy())
    assert tm.challenger.logit_ is not None, "the challenger is fitted by training"
    out["challenger"] = {"kind": "logistic regression on weight-of-evidence bins (models.challenger.WoEScorecard)",
                         "n_bins": tm.challenger.n_bins, "C": tm.challenger.C,
                         "coefficients": {c: float(v) for c, v in zip(tm.challenger.bins_,
                                                                      tm.challenger.logit_.coef_[0], strict=False)},
                         "intercept": float(tm.challenger.logit_.intercept_[0])}
    return out


def code_version() -> str:
    """``creditdb.__version__`` plus the git commit of the source tree when available."""
    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent, timeout=5).stdout.strip()
    return f"{creditdb.__version__}+g{commit}" if commit else creditdb.__version__


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose arithmetic determines the model and its PDs."""
    from importlib.metadata import version

    return {name: version(name) for name in ("lightgbm", "numpy", "pandas", "scikit-learn", "scipy")}


def record(tm: TrainedModel, actor: str) -> dict[str, Any]:
    """The ``model_version`` row for a trained model (status ``candidate``)."""
    metrics = json.loads(json.dumps(tm.metrics, default=str))
    spec = {**tm.spec_record(), "libraries": library_versions()}
    return {"version": tm.version, "created_by": actor, "status": "candidate", "artifact": tm.model.model_string,
            "artifact_sha256": tm.model.model_sha256, "spec": spec, "data_fingerprint": tm.fingerprint,
            "code_version": code_version(), "seed": tm.seed, "metrics": metrics}


def train(engine, cutoff: dt.date, spec: RatingSpec | str | Path | None = None, seed: int | None = None,
          snapshot: dt.datetime | None = None, actor: str = "unknown",
          lag_months: int = DEFAULT_LAG_MONTHS, horizon_months: int = DEFAULT_HORIZON_MONTHS,
          oot_years: int = OOT_YEARS, dask: str | None = None) -> tuple[TrainedModel, dict[str, Any]]:
    """Read the database, fit, register (status candidate) and audit; returns (model, outcome).

    ``outcome``: ``version``, ``created`` (False when the identical model was already
    registered: nothing new is written except the audit event), ``id``.
    """
    from creditdb import audit, registry
    from pipelines.features import load_defaults, load_statements
    from pipelines.fx import size_currency

    spec_obj = spec if isinstance(spec, RatingSpec) else load_spec(spec)
    check_spec(spec_obj)
    currency = size_currency()  # once: the statements are converted into what the model records
    with engine.connect() as conn:
        statements = load_statements(conn, snapshot, size_currency=currency)
        defaults = load_defaults(conn, snapshot)
    design = Design(cutoff=cutoff, lag_months=lag_months, horizon_months=horizon_months, oot_years=oot_years,
                    snapshot=snapshot.isoformat() if snapshot else None)
    from pipelines.distributed import cluster, training_table_by_partitions

    with cluster(dask) as client:  # ``dask``: a scheduler address or local[:N]; None = CREDITDB_DASK or serial
        if client is None:
            table = training_table(statements, defaults, cutoff, lag_months, horizon_months)
        else:
            table = training_table_by_partitions(client, statements, defaults, cutoff, lag_months, horizon_months)
        tm = fit(table, spec_obj, design, seed, client=client, size_currency=currency)
    from pipelines.unreported_report import record_removal_effects

    record_removal_effects(tm, statements)  # what each optional item costs when left out (quality reports quote it)
    rec = record(tm, actor)
    with engine.begin() as conn:
        row_id, created = registry.register(conn, rec)
        audit.append(conn, actor, "model.train",
                     {"version": rec["version"], "created": created, "cutoff": cutoff.isoformat(),
                      "rows": len(table), "spec_sha256": spec_obj.sha256, "seed": tm.seed},
                     input_hash=tm.fingerprint, output_hash=rec["artifact_sha256"])
    return tm, {"version": rec["version"], "id": row_id, "created": created}

