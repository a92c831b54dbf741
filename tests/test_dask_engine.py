"""The distributed engine on a local Dask cluster of two worker processes: features built by
partitions, LightGBM trained through lightgbm.dask, scoring by partitions, and a Dask-trained
model registered with its engine and reproduced within its declared tolerance."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from models.rating import load_spec
from models.rating_dask import TOLERANCE, within_tolerance
from models.ratios import FEATURE_NAMES
from pipelines import synth
from pipelines.features import training_table
from tests.synth_frames import synth_frames

pytestmark = pytest.mark.slow

CUTOFF = dt.date(2024, 3, 31)


@pytest.fixture(scope="module")
def client():
    from pipelines.distributed import cluster

    with cluster("local:2") as c:
        yield c


@pytest.fixture(scope="module")
def frames():
    data = synth.generate(firms=1500, years=8, banks=1, seed=5, today=dt.date(2026, 1, 1))
    return synth_frames(data)[:2]


def test_features_by_partitions_equal_the_serial_table(client, frames):
    from pipelines.distributed import training_table_by_partitions

    st, d = frames
    serial = training_table(st, d, CUTOFF)
    parts = training_table_by_partitions(client, st, d, CUTOFF, 3, 12, parts=5)
    assert len(serial) > 1000
    assert parts.equals(serial)


def test_dask_training_against_serial_and_scoring_by_partitions(client, frames):
    from pipelines.distributed import score_by_partitions
    from pipelines.training import Design, fit

    st, d = frames
    table = training_table(st, d, CUTOFF)
    serial = fit(table, load_spec(), Design(cutoff=CUTOFF), 0)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        dist = fit(table, serial.spec, Design(cutoff=CUTOFF), 0, client=client)
    assert not [w for w in seen if "will be ignored" in str(w.message)]  # no noise from lightgbm.dask
    assert serial.engine == {"kind": "serial"}
    assert dist.engine["kind"] == "dask" and dist.engine["workers"] == 2 and dist.engine["tolerance"] == TOLERANCE
    assert dist.spec_record()["engine"] == dist.engine
    X = table[list(FEATURE_NAMES)]
    pd_serial = serial.calibration.predict(serial.model.raw_score(X))
    pd_dist = dist.calibration.predict(dist.model.raw_score(X))
    assert not np.array_equal(pd_serial, pd_dist)  # distributed training is not bit-identical ...
    oot = (table.index.isin(dist.table.index[dist.table["sample"] == "oot"]))
    y = table["label"].to_numpy()
    cmp = within_tolerance(pd_serial, pd_dist, roc_auc_score(y[oot], pd_serial[oot]),
                           roc_auc_score(y[oot], pd_dist[oot]))
    assert cmp["within"], cmp  # ... but within the declared tolerance
    print("dask vs serial", cmp)
    # scoring by partitions on the workers gives the serial PDs of the same model bit for bit,
    # unreported-item offsets included (rows that left an optional item out are corrected)
    by_parts = score_by_partitions(client, dist.model.model_string, dist.calibration.to_dict(), table, parts=7,
                                   unreported=dist.unreported.to_dict())
    scored = dist.pd(table)
    assert dist.unreported.items and not np.array_equal(scored, pd_dist)  # the offsets do move some rows
    assert np.array_equal(by_parts, scored)


def test_model_trained_on_dask_is_registered_with_its_engine_and_reproduced_within_tolerance(
        client, sqlite_db, tmp_path):
    from creditdb import registry
    from pipelines.model_validation import reproduce
    from pipelines.training import train
    from tests.test_rating_db import load

    load(sqlite_db.engine, tmp_path, firms=800, seed=3)
    tm, outcome = train(sqlite_db.engine, CUTOFF, seed=0, actor="pytest", dask=client)
    with sqlite_db.engine.connect() as conn:
        rec = registry.get(conn, outcome["version"])
    assert rec["spec"]["engine"]["kind"] == "dask" and rec["spec"]["engine"]["tolerance"] == TOLERANCE
    out = reproduce(sqlite_db.engine, outcome["version"], actor="pytest", dask=client)
    assert out["reproduced"], out
    assert out["engine"]["comparison"]["within"] and out["engine"]["recorded"]["kind"] == "dask"
    # a tolerance of zero is not met by a re-fit on the cluster: the comparison is real
    zero = within_tolerance(np.array([0.1]), np.array([0.1 + 1e-9]), 0.8, 0.8,
                            {k: 0.0 for k in TOLERANCE})
    assert not zero["within"]
