"""Model registry: the ``model_version`` table (artifact, hashes, spec, data fingerprint, metrics).

Storage layout of one registered rating model:

* ``version``: ``rating-<12 hex digits>`` identifying what sets the PDs: the LightGBM model
  text's sha256 and the calibration (``pipelines.training.version_id``);
* ``artifact`` / ``artifact_sha256``: LightGBM model text and its sha256;
* ``spec`` (JSON): spec name, sha256 and source text, effective LightGBM parameters,
  monotone constraints, feature list, seed, the sample ``design`` (cut-off, lag,
  horizon, out-of-time years, validation fraction, snapshot) and the ``calibration``
  parameters (intercept, slope, shift, floor, target_rate);
* ``metrics`` (JSON): sample sizes and default rates, AUC per sample for the model and
  the challenger, grade distributions, and the ``challenger`` summary (WoE logistic
  coefficients);
* ``data_fingerprint``: sha256 of the exact modelling rows (``pipelines.features``);
* ``code_version``, ``seed``, ``status`` (candidate | approved | retired).

The model card and the export of a version: ``pipelines.model_card``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from creditdb.schema import ModelVersion

T = ModelVersion.__table__


class RegistryError(LookupError):
    """Unknown, retired or otherwise unusable model version."""


def register(conn: Connection, rec: dict[str, Any]) -> tuple[int, bool]:
    """Insert ``rec`` unless the same version exists; returns (row id, created)."""
    existing = conn.execute(select(T.c.id, T.c.data_fingerprint).where(T.c.version == rec["version"])).first()
    if existing is not None:
        if existing.data_fingerprint != rec["data_fingerprint"]:
            raise RegistryError(f"model {rec['version']} is already registered from different training data "
                                f"(fingerprint {existing.data_fingerprint[:12]} vs {rec['data_fingerprint'][:12]})")
        return int(existing.id), False
    row_id = conn.execute(T.insert().values(**rec).returning(T.c.id)).scalar_one()
    return int(row_id), True


def _row(r) -> dict[str, Any]:
    return dict(r._mapping)


def get(conn: Connection, version: str) -> dict[str, Any]:
    """The full registry row of ``version``; raises :class:`RegistryError` if unknown."""
    r = conn.execute(select(T).where(T.c.version == version)).first()
    if r is None:
        raise RegistryError(f"no model version {version!r}: see 'creditdb model list'")
    return _row(r)


def approved(conn: Connection) -> dict[str, Any] | None:
    """The most recently approved model, or None."""
    from creditdb.lookups import approved_model

    r = approved_model(conn)
    return None if r is None else _row(r)


def list_versions(conn: Connection) -> list[dict[str, Any]]:
    """Summary of every registered model, newest first."""
    rows = conn.execute(select(T.c.id, T.c.version, T.c.status, T.c.created_at, T.c.created_by, T.c.seed,
                               T.c.data_fingerprint, T.c.spec, T.c.metrics).order_by(T.c.id.desc())).all()
    out = []
    for r in rows:
        auc = (r.metrics or {}).get("auc", {})
        out.append({"version": r.version, "status": r.status, "created_at": str(r.created_at),
                    "created_by": r.created_by, "spec": r.spec.get("name"), "seed": r.seed,
                    "cutoff": r.spec.get("design", {}).get("cutoff"),
                    "auc_oot": auc.get("model", {}).get("oot"), "auc_oot_challenger": auc.get("challenger", {}).get("oot"),
                    "data_fingerprint": r.data_fingerprint})
    return out


def summary(rec: dict[str, Any]) -> dict[str, Any]:
    """JSON-friendly view of a registry row without the (large) model text."""
    return {k: (str(v) if k.endswith("_at") and v is not None else v) for k, v in rec.items() if k != "artifact"}
