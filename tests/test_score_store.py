"""Scoring's database edges: the latest statements in force, and score rows checked on write.

``score`` has no per-row foreign keys (migration 0003); ``write_scores`` checks the
references set-wise instead. ``load_scoring_statements`` selects each firm's latest two
statements in force in SQL; it is compared with an independent pandas selection from
the full history (``load_statements`` + ``in_force``).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import func, insert, select, update

from creditdb.bulk import read_frame
from creditdb.schema import FinancialStatement, Institution, ModelVersion, Score, Submission
from pipelines.features import GROWTH_COLUMNS, SCORING_AMOUNTS, load_scoring_statements
from pipelines.ingest import submit_file
from pipelines.score_store import ScoreReferenceError, write_scores
from tests import factories as F
from tests.conftest import TEST_KEY

AS_OF = dt.date(2022, 12, 31)


def submit(engine, tmp_path, frame: pd.DataFrame, bank: str, name: str) -> None:
    res = submit_file(engine, "statements", F.write_csv(frame, tmp_path / f"{name}.csv"), bank,
                      key=TEST_KEY.encode(), progress=False)
    assert res.status == "loaded", res.as_dict()


@pytest.fixture
def stored(db, tmp_path):
    """Two banks; firms 0-5 with fiscal years 2019-2023; overlaps and a correction."""
    with db.engine.begin() as conn:
        for code in ("BK1", "BK2"):
            conn.execute(insert(Institution).values(code=code, name=code, kind="bank", country="JP"))
    years = pd.concat([F.statements(6, "BK1", year=y).assign(sales=lambda f, y=y: f.sales + y)
                       for y in (2019, 2020, 2021, 2022, 2023)], ignore_index=True)
    years = years.drop(index=years.index[(years.borrower_key == "BK1-B00005") & (years.fiscal_year_end != "2021-03-31")])
    submit(db.engine, tmp_path, years, "BK1", "bk1")
    # the same firms 0-2 (same corporate numbers) from another bank, later: in force for 2022
    submit(db.engine, tmp_path, F.statements(3, "BK2", year=2022).assign(net_income=123_456), "BK2", "bk2")
    # BK1 corrects firm 3's 2021 statement (not among its latest two? it is: 2021 and 2022)
    fix = F.statements(6, "BK1", year=2021).iloc[[3]].assign(net_income=-7_000_000)
    submit(db.engine, tmp_path, fix, "BK1", "fix")
    return db


def test_latest_two_in_force_equal_an_independent_pandas_selection(stored):
    """Scoring reads each (firm, institution)'s latest two statements in force: a member's score
    rests only on its own statements (issue 17), so BK2's later 2022 statement of firms 0-2
    is BK2's unit's only row and BK1's units keep BK1's own history."""
    with stored.engine.connect() as conn:
        got = load_scoring_statements(conn, AS_OF)
        # in force per firm, period and institution, chosen in pandas from every stored row
        history = read_frame(conn, select(FinancialStatement.__table__, Submission.received_at)
                             .join(Submission, Submission.id == FinancialStatement.submission_id))
    history = history.rename(columns={"id": "statement_id"})
    history["fiscal_year_end"] = pd.to_datetime(history["fiscal_year_end"])
    history = (history.sort_values(["received_at", "submission_id"], kind="stable")
               .drop_duplicates(["firm_id", "institution_id", "fiscal_year_end"], keep="last"))
    ref = history.loc[history.fiscal_year_end <= pd.Timestamp(AS_OF)]
    ref = (ref.sort_values(["firm_id", "institution_id", "fiscal_year_end"])
           .groupby(["firm_id", "institution_id"]).tail(2).reset_index(drop=True))
    assert list(got.statement_id) == list(ref.statement_id)
    # BK1: firm 5 one year only; BK2: one statement of each of firms 0-2
    assert (got.fiscal_year_end <= pd.Timestamp(AS_OF)).all() and len(got) == 6 * 2 - 1 + 3
    unit = got.firm_id * 1000 + got.institution_id
    last = ~unit.duplicated(keep="last")
    assert (got.institution_id == ref.institution_id).all()
    for c in ("firm_id", "fiscal_year_end", *SCORING_AMOUNTS, "industry", "established_year"):
        expected = ref[c].astype(got[c].dtype)
        # the previous statement brings only what growth rates read
        rows = slice(None) if c in (*GROWTH_COLUMNS, "firm_id", "industry", "established_year") else last
        pd.testing.assert_series_equal(got.loc[rows, c], expected[rows], check_names=False, obj=c)
        if c not in (*GROWTH_COLUMNS, "firm_id", "industry", "established_year"):
            assert got.loc[~last, c].isna().all(), c
    # BK2's own 2022 statements are its units' rows; BK1's units of the same firms keep BK1's figures
    bk2 = got.institution_id == got.institution_id.max()
    assert bk2.sum() == 3 and (got.loc[bk2, "net_income"] == 123_456).all()
    assert not (got.loc[~bk2, "net_income"] == 123_456).any()
    assert (got.net_income == -7_000_000).sum() == 1  # BK1's correction of its own 2021 statement won


def test_nothing_before_the_first_statement(stored):
    with stored.engine.connect() as conn:
        none = load_scoring_statements(conn, dt.date(2018, 12, 31))
        one = load_scoring_statements(conn, dt.date(2019, 12, 31))
    assert none.empty and "net_income" in none.columns
    assert len(one) == 5 and one.firm_id.is_unique  # 2019 only (firm 5 reports from 2021): no previous yet


def _model(conn, status: str = "approved") -> int:
    return conn.execute(insert(ModelVersion).values(
        version=f"m-{status}", created_by="t", status=status, artifact="x", artifact_sha256="0" * 64, spec={},
        data_fingerprint="0" * 64, code_version="t", seed=0, metrics={}).returning(ModelVersion.id)).scalar_one()


def _frame(conn, mv: int) -> pd.DataFrame:
    s = conn.execute(select(FinancialStatement.id, FinancialStatement.firm_id)).all()
    return pd.DataFrame({"model_version_id": mv, "firm_id": [r.firm_id for r in s], "statement_id": [r.id for r in s],
                         "pd": 0.01, "grade": "3", "fee_category": 2, "reasons": [[] for _ in s],
                         "scored_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)})


def _scores(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Score)).scalar_one()


@pytest.mark.parametrize("break_it", ["statement of another firm", "unknown statement", "unknown model",
                                      "retired model", "two models"])
def test_bad_references_are_refused_and_nothing_is_written(stored, break_it):
    engine = stored.engine
    with engine.begin() as conn:
        mv = _model(conn)
        frame = _frame(conn, mv)
    if stored.kind == "postgres":
        frame["reasons"] = "[]"  # PostgreSQL's COPY takes the JSON text
    if break_it == "statement of another firm":
        frame.loc[0, "firm_id"] = frame.loc[len(frame) - 1, "firm_id"]
    elif break_it == "unknown statement":
        frame.loc[3, "statement_id"] = 10**9
    elif break_it == "unknown model":
        frame["model_version_id"] = mv + 1000
    elif break_it == "retired model":
        with engine.begin() as conn:
            conn.execute(update(ModelVersion).where(ModelVersion.id == mv).values(status="retired"))
    else:
        frame.loc[0, "model_version_id"] = mv + 1
    with pytest.raises(ScoreReferenceError), engine.begin() as conn:
        write_scores(conn, frame)
    assert _scores(engine) == 0
    # the unbroken frame goes in whole
    if break_it != "retired model":
        with engine.connect() as conn:
            good = _frame(conn, mv)
        if stored.kind == "postgres":
            good["reasons"] = "[]"
        with engine.begin() as conn:
            write_scores(conn, good)
        assert _scores(engine) == len(good) > 0


def test_latest_statements_do_not_depend_on_row_order(stored):
    from pipelines.features import latest_statements
    from pipelines.scoring import UNIT

    with stored.engine.connect() as conn:
        ordered = load_scoring_statements(conn, AS_OF)
    ordered["firm_id"] = ordered.firm_id * UNIT + ordered.institution_id  # scoring's (firm, institution) units
    shuffled = ordered.sample(frac=1, random_state=1)
    assert not shuffled.statement_id.is_monotonic_increasing
    pd.testing.assert_frame_equal(latest_statements(shuffled, AS_OF), latest_statements(ordered, AS_OF))


def test_migration_0003_drops_the_score_foreign_keys_and_keeps_the_rows(stored):
    """Down to 0002 the three keys come back (validated on the stored rows), up again they go; rows stay."""
    from alembic import command
    from sqlalchemy import inspect

    from creditdb.db import alembic_config, current_revision, upgrade

    engine = stored.engine
    with engine.begin() as conn:
        frame = _frame(conn, _model(conn))
        if stored.kind == "postgres":
            frame["reasons"] = "[]"
        write_scores(conn, frame)

    def keys() -> set[str]:
        return {fk["referred_table"] for fk in inspect(engine).get_foreign_keys("score")}

    def rows() -> list:
        with engine.connect() as conn:
            return conn.execute(select(Score.firm_id, Score.statement_id, Score.pd).order_by(Score.id)).all()

    stored_rows = rows()
    assert keys() == set() and len(stored_rows) == len(frame)
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    engine.dispose()
    assert current_revision(engine) == "0002"
    assert keys() == {"firm", "model_version", "financial_statement"} and rows() == stored_rows
    upgrade(engine, "0003")
    engine.dispose()
    assert current_revision(engine) == "0003" and keys() == set() and rows() == stored_rows


def test_reading_ahead_stops_cleanly_when_scoring_stops_early(stored):
    """A scoring run that fails mid-way must not leave the read-ahead thread waiting or the connection open."""
    import threading
    import time

    from pipelines.scoring import _latest_by_firm_range

    with stored.engine.connect() as conn:
        units = conn.execute(select(FinancialStatement.firm_id, FinancialStatement.institution_id).distinct()).all()
    firms = sorted({f for f, _ in units})
    ranges = [(f, f + 1) for f in firms]
    full = list(_latest_by_firm_range(stored.engine, AS_OF, ranges, prefetch=True))
    # one part per firm, read one ahead; a part holds one row per institution that submitted the firm
    assert [len(p) for p in full] == [sum(u == f for u, _ in units) for f in firms]

    finished = threading.Event()

    def stop_before_the_last() -> None:  # the reader has read the last part and has nowhere to put it
        parts = _latest_by_firm_range(stored.engine, AS_OF, ranges, prefetch=True)
        taken = [next(parts) for _ in range(len(ranges) - 1)]
        assert [p.firm_id.tolist() for p in taken] == [p.firm_id.tolist() for p in full[:-1]]
        time.sleep(2)  # scoring the part taken: meanwhile the reader has read the last one
        parts.close()  # what a failing caller's loop does to the generator
        finished.set()

    t = threading.Thread(target=stop_before_the_last, daemon=True)
    t.start()
    t.join(timeout=30)
    assert finished.is_set()
    assert stored.engine.pool.checkedout() == 0
