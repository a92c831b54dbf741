"""The distributed engine: a Dask cluster for feature building, training and scoring.

Optional (``pip install 'creditdb[dask]'``). ``creditdb model train --dask ADDRESS`` (or
``CREDITDB_DASK``) connects to a running scheduler (``tcp://host:8786``); ``local`` or
``local:N`` starts a cluster of N worker processes on this machine (default 2), which
is how CI tests the path.

* **Features by partitions**: the statements are split into partitions of whole firms
  (every ratio and label reads only its own firm's history) and each worker builds the
  modelling table of its partitions (:func:`training_table_by_partitions`); the result
  equals :func:`pipelines.features.training_table` on all rows.
* **Training**: ``lightgbm.dask`` (:mod:`models.rating_dask`), LightGBM's data-parallel
  learner over the workers; the registry records the engine and its tolerance.
* **Scoring by partitions**: :func:`score_by_partitions` scores each partition's latest
  statements on a worker with the model text; the caller writes the rows in one
  transaction (``pipelines.score_store``).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

#: environment variable naming the default cluster for training
ENV = "CREDITDB_DASK"


class DaskUnavailable(RuntimeError):
    """The optional Dask extra is not installed, or the scheduler cannot be reached."""


@contextmanager
def cluster(address: Any):
    """A ``distributed.Client`` for ``address`` (``local[:N]`` starts N local workers); None yields None.

    ``address`` may also be a ``distributed.Client`` already connected: it is used as it
    is and left open.
    """
    if address is not None and not isinstance(address, str):
        yield address
        return
    address = address or os.environ.get(ENV) or None
    if not address:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - the extra is part of the test install
        raise DaskUnavailable("the Dask engine needs the optional extra: pip install 'creditdb[dask]'") from exc
    local = None
    try:
        if address == "local" or address.startswith("local:"):
            n = int(address.split(":", 1)[1]) if ":" in address else 2
            local = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(local)
        else:
            client = Client(address, timeout=30)
    except (OSError, TimeoutError, ValueError) as exc:
        if local is not None:
            local.close()
        raise DaskUnavailable(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    try:
        yield client
    finally:
        client.close()
        if local is not None:
            local.close()


def engine_record(client: Any) -> dict[str, Any]:
    """What the registry stores about the engine of a training run."""
    from models.rating_dask import TOLERANCE

    if client is None:
        return {"kind": "serial"}
    import dask
    import distributed

    return {"kind": "dask", "workers": len(client.scheduler_info()["workers"]), "tolerance": dict(TOLERANCE),
            "dask": dask.__version__, "distributed": distributed.__version__}


def firm_partitions(firm_ids: np.ndarray, parts: int) -> list[np.ndarray]:
    """Split the distinct firm ids (in order of first appearance) into ``parts`` groups of about equal size."""
    firms = pd.unique(pd.Series(np.asarray(firm_ids)))
    return [p for p in np.array_split(firms, max(1, min(parts, len(firms)))) if len(p)]


def training_table_by_partitions(client: Any, statements: pd.DataFrame, defaults: pd.DataFrame, cutoff: Any,
                                 lag_months: int, horizon_months: int, parts: int | None = None) -> pd.DataFrame:
    """:func:`pipelines.features.training_table` built partition by partition on the cluster's workers."""
    from pipelines.features import training_table

    n = parts or 4 * max(1, len(client.scheduler_info()["workers"]))
    futures = []
    for firms in firm_partitions(statements["firm_id"].to_numpy(), n):
        st = statements.loc[statements["firm_id"].isin(firms)]
        de = defaults.loc[defaults["firm_id"].isin(firms)]
        futures.append(client.submit(training_table, st, de, cutoff, lag_months, horizon_months, pure=False))
    tables = client.gather(futures)
    out = pd.concat(tables, ignore_index=True)
    return out.sort_values(["fiscal_year_end", "statement_id"], kind="stable").reset_index(drop=True)


def _score_part(model_text: str, calibration: dict, features: pd.DataFrame,
                unreported: dict | None = None) -> pd.DataFrame:
    from models.calibration import Calibration
    from models.rating import load_model
    from models.unreported import UnreportedAdjustment
    from pipelines.training import adjusted_scores

    model = load_model(model_text)
    score = adjusted_scores(model, UnreportedAdjustment.from_dict(unreported), features)
    pd_ = Calibration.from_dict(calibration).predict(score)
    return pd.DataFrame({"pd": pd_}, index=features.index)


def score_by_partitions(client: Any, model_text: str, calibration: dict, features: pd.DataFrame,
                        parts: int | None = None, unreported: dict | None = None) -> np.ndarray:
    """Calibrated one-year PDs of ``features`` rows (a fraction), scored in partitions on the workers.

    ``features``: the model's features plus, where the model has unreported-item offsets
    (``unreported``: the stored ``spec.unreported``), the ``unreported:<item>`` flags or raw
    items (:func:`pipelines.model_items.unreported_flags`). The model text goes to each
    worker once (scattered); PDs come back in the rows' order and equal the serial
    ``Calibration.predict(adjusted_scores(...))`` of :mod:`pipelines.training` bit for bit
    (prediction is deterministic for a given model text).
    """
    n = parts or 4 * max(1, len(client.scheduler_info()["workers"]))
    [text] = client.scatter([model_text], broadcast=True)
    bounds = np.linspace(0, len(features), n + 1).astype(int)
    futures = [client.submit(_score_part, text, calibration, features.iloc[a:b], unreported, pure=False)
               for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    parts_out = client.gather(futures)
    return pd.concat(parts_out).loc[features.index, "pd"].to_numpy() if parts_out else np.empty(0)


__all__ = ["ENV", "DaskUnavailable", "cluster", "engine_record", "firm_partitions", "score_by_partitions",
           "training_table_by_partitions"]
