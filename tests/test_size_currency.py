"""Size features in the reporting currency (issue 15): the same firms submitted in JPY and
in USD (amounts converted with the ECB rate of each fiscal year end) get the same size
features and the same PDs; the model records its currency and scoring converts into it,
whatever the setting at scoring time; a missing rate is a clean error naming currency and day."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from creditdb.cli import cli
from creditdb.schema import AMOUNT_COLUMNS, SME_AMOUNT_COLUMNS, Firm, Institution, Score
from models.fx import FxError
from models.ratios import FEATURE_NAMES
from pipelines import synth
from pipelines.features import load_defaults, load_statements, training_table
from pipelines.fx import size_currency
from pipelines.ingest import submit_file
from pipelines.scoring import load_scorer, score_firms
from pipelines.training import train
from tests.conftest import TEST_KEY, _new_db

CUTOFF = dt.date(2024, 3, 31)
AS_OF = dt.date(2025, 6, 30)


def _files(tmp_path: Path) -> tuple[synth.SynthData, Path, Path]:
    """Synthetic JPY files and the same statements converted to USD at each fiscal year end (ECB)."""
    data = synth.generate(firms=700, years=8, banks=1, seed=5, today=dt.date(2026, 1, 1))
    jpy = tmp_path / "jpy"
    synth.write(data, jpy)
    bank = data.institutions.code.iloc[0]
    st = pd.read_csv(jpy / bank / "statements.csv", dtype=str, keep_default_na=False)
    assert set(st["currency"]) == {"JPY"}
    # the converter under test is not the reference: currencyconverter itself, on the last ECB
    # publication on or before the fiscal year end (a weekend or holiday: the day before's)
    from currency_converter import CurrencyConverter, RateNotFoundError

    cc = CurrencyConverter(fallback_on_missing_rate=False, fallback_on_wrong_date=False)

    def jpy_to_usd(day: dt.date) -> float:
        for back in range(10):
            try:
                return float(cc.convert(1.0, "JPY", "USD", date=day - dt.timedelta(days=back)))
            except RateNotFoundError:
                continue
        raise AssertionError(f"no ECB rate within 10 days before {day}")

    fye = pd.to_datetime(st["fiscal_year_end"]).dt.date
    factor = np.array([jpy_to_usd(d) for d in fye])
    usd = st.copy()
    for c in (*AMOUNT_COLUMNS, *SME_AMOUNT_COLUMNS):
        v = pd.to_numeric(st[c], errors="coerce")
        usd[c] = [repr(float(x)) if pd.notna(x) else "" for x in v * factor]
    usd["currency"] = "USD"
    usd_dir = tmp_path / "usd"
    synth.write(data, usd_dir)
    usd.to_csv(usd_dir / bank / "statements.csv", index=False)
    return data, jpy / bank, usd_dir / bank


def _submit(engine, data: synth.SynthData, folder: Path) -> None:
    with engine.begin() as conn:
        for r in data.institutions.itertuples():
            conn.execute(Institution.__table__.insert().values(code=r.code, name=r.name, kind=r.kind,
                                                               country=r.country))
    for kind in ("statements", "defaults"):
        res = submit_file(engine, kind, folder / f"{kind}.csv", data.institutions.code.iloc[0],
                          key=TEST_KEY.encode(), progress=False)
        assert res.status == "loaded", res.as_dict()


def _latest_pds(engine, model_id: int) -> pd.Series:
    """PD of each firm (by pseudonym) from the model's latest scoring run."""
    with engine.connect() as conn:
        rows = conn.execute(select(Firm.pseudonym, Score.pd, Score.scored_at).join(Firm, Firm.id == Score.firm_id)
                            .where(Score.model_version_id == model_id)).all()
    df = pd.DataFrame(rows, columns=["pseudonym", "pd", "scored_at"])
    df = df[df["scored_at"] == df["scored_at"].max()]
    return df.set_index("pseudonym")["pd"].sort_index()


def test_size_currency_defaults_to_reporting_and_old_variable_is_a_deprecated_alias(monkeypatch):
    monkeypatch.delenv("CREDITDB_SIZE_CURRENCY", raising=False)
    monkeypatch.delenv("CREDITDB_REPORTING_CURRENCY", raising=False)
    assert size_currency() == "USD"
    monkeypatch.setenv("CREDITDB_REPORTING_CURRENCY", "EUR")
    assert size_currency() == "EUR"
    monkeypatch.setenv("CREDITDB_SIZE_CURRENCY", "thb")
    with pytest.warns(DeprecationWarning, match="CREDITDB_SIZE_CURRENCY is deprecated"):
        assert size_currency() == "THB"


def _new_firms_latest(folder: Path, out: Path) -> pd.DataFrame:
    """Each firm's latest statement as firms the database does not know (no history: growth is NaN)."""
    st = pd.read_csv(folder / "statements.csv", dtype=str, keep_default_na=False)
    last = st.groupby("borrower_key", sort=False).tail(1).copy()
    last["borrower_key"] = "NEW-" + last["borrower_key"]
    last["corporate_number"] = ""
    last.to_csv(out, index=False)
    return last


@pytest.mark.slow
def test_same_firms_in_jpy_and_usd_give_same_size_features_and_pds(sqlite_db, tmp_path, _sqlite_template,
                                                                   monkeypatch):
    from creditdb import registry
    from pipelines.scoring import score_file
    from pipelines.training import record

    monkeypatch.delenv("CREDITDB_SIZE_CURRENCY", raising=False)
    monkeypatch.delenv("CREDITDB_REPORTING_CURRENCY", raising=False)
    monkeypatch.setenv("CREDITDB_ACTOR", "pytest")
    data, jpy_dir, usd_dir = _files(tmp_path)
    (tmp_path / "b").mkdir()
    other, cleanup = _new_db("sqlite", tmp_path / "b", _sqlite_template)
    try:
        _submit(sqlite_db.engine, data, jpy_dir)
        _submit(other.engine, data, usd_dir)
        tables, as_submitted, statements = {}, {}, {}
        for name, engine in (("jpy", sqlite_db.engine), ("usd", other.engine)):
            with engine.connect() as conn:
                st = load_statements(conn)
                defaults = load_defaults(conn)
                raw = load_statements(conn, size_currency=None)
            tables[name] = training_table(st, defaults, CUTOFF)
            as_submitted[name] = training_table(raw, defaults, CUTOFF)
            statements[name] = st
        a, b = tables["jpy"], tables["usd"]
        assert len(a) == len(b) > 1000 and (a["statement_id"].to_numpy() == b["statement_id"].to_numpy()).all()
        for f in ("log_sales", "log_assets"):
            np.testing.assert_allclose(a[f], b[f], rtol=1e-12, atol=1e-12)
            # as submitted they differ by log(JPY per USD) (about 4.6 to 5.1): the check above can fail
            gap = as_submitted["jpy"][f] - as_submitted["usd"][f]
            assert gap.between(4.4, 5.3).mean() > 0.99
        growth = ["sales_growth", "profit_growth"]
        ratios = [c for c in FEATURE_NAMES if c not in ("log_sales", "log_assets", "industry", *growth)]
        np.testing.assert_allclose(a[ratios].to_numpy(float), b[ratios].to_numpy(float), rtol=1e-9, atol=1e-12)
        # growth rates compare a firm's statements in the currency submitted (never converted): in USD
        # they carry the yen's move between the two year ends, (1 + g_usd) = (1 + g_jpy) * f_t / f_t-1,
        # so PDs are compared below on statements without a previous one
        jp = statements["jpy"].sort_values(["firm_id", "fiscal_year_end"], kind="stable")
        f_prev = pd.Series(jp.groupby("firm_id")["fx_to_reporting"].shift().to_numpy(), index=jp["statement_id"])
        f_now = jp.set_index("statement_id")["fx_to_reporting"]
        sid = a["statement_id"].to_numpy()
        move = (f_now.reindex(sid) / f_prev.reindex(sid)).to_numpy()
        g_a, g_b = a["sales_growth"].to_numpy(float), b["sales_growth"].to_numpy(float)
        inside = (np.isfinite(g_a) & np.isfinite(g_b) & np.isfinite(move)
                  & (g_a > np.nanmin(g_a)) & (g_a < np.nanmax(g_a)) & (g_b > np.nanmin(g_b)) & (g_b < np.nanmax(g_b)))
        assert inside.sum() > 1000 and (np.abs(move[inside] - 1) > 1e-3).mean() > 0.9
        np.testing.assert_allclose(1 + g_b[inside], (1 + g_a[inside]) * move[inside], rtol=1e-9)

        tm, outcome = train(sqlite_db.engine, CUTOFF, seed=0, actor="pytest")
        assert tm.size_currency == "USD"  # default settings: the reporting currency
        with sqlite_db.engine.connect() as conn:
            assert registry.get(conn, outcome["version"])["spec"]["size_currency"] == "USD"
        with other.engine.begin() as conn:  # the same model in the USD database
            registry.register(conn, record(tm, "pytest"))
        with other.engine.connect() as conn:
            assert load_scorer(conn, outcome["version"]).size_currency == "USD"

        # the latest statements as new firms (no stored history), in JPY and in USD, scored by the model
        files = {"jpy": _new_firms_latest(jpy_dir, tmp_path / "new_jpy.csv"),
                 "usd": _new_firms_latest(usd_dir, tmp_path / "new_usd.csv")}
        bank = data.institutions.code.iloc[0]
        pds = {}
        for reporting in ("USD", "EUR"):  # scoring under another setting still converts into USD
            monkeypatch.setenv("CREDITDB_REPORTING_CURRENCY", reporting)
            for name, engine in (("jpy", sqlite_db.engine), ("usd", other.engine)):
                res, ver = score_file(engine, tmp_path / f"new_{name}.csv", bank, TEST_KEY.encode(),
                                      outcome["version"])
                assert ver == outcome["version"] and (res["status"] == "scored").all(), res["message"].dropna()
                pds[name, reporting] = res["pd"].to_numpy()
        assert len(files["jpy"]) > 500 and len(np.unique(pds["jpy", "USD"])) > 50  # PDs that vary
        for key in pds:
            np.testing.assert_allclose(pds[key], pds["jpy", "USD"], rtol=1e-9, atol=1e-12)
        # whereas converting into today's setting (EUR) would move the size features: the check above can fail
        with sqlite_db.engine.connect() as conn:
            to_usd = load_statements(conn, size_currency="USD")["fx_to_reporting"]
            to_eur = load_statements(conn, size_currency="EUR")["fx_to_reporting"]
        assert (np.abs(np.log(to_usd / to_eur)) > 0.02).mean() > 0.99
        # and scoring the database under EUR works (no refusal) and gives the PDs of USD
        score_firms(sqlite_db.engine, outcome["version"], AS_OF, actor="pytest")
        monkeypatch.delenv("CREDITDB_REPORTING_CURRENCY")
        under_eur = _latest_pds(sqlite_db.engine, outcome["id"])
        score_firms(sqlite_db.engine, outcome["version"], AS_OF, actor="pytest")
        np.testing.assert_array_equal(_latest_pds(sqlite_db.engine, outcome["id"]).to_numpy(), under_eur.to_numpy())

        # a firm submitted in a currency without a rate: training and scoring exit 1 naming it
        vnd = pd.read_csv(jpy_dir / "statements.csv", dtype=str, keep_default_na=False).head(1)
        vnd["borrower_key"], vnd["corporate_number"], vnd["currency"] = "VN-1", "", "VND"
        day = vnd["fiscal_year_end"].iloc[0]
        vnd.to_csv(tmp_path / "vnd.csv", index=False)
        res = submit_file(sqlite_db.engine, "statements", tmp_path / "vnd.csv", bank,
                          key=TEST_KEY.encode(), progress=False)
        assert res.status == "loaded", res.as_dict()
        runner = CliRunner()
        for args in (["model", "train", "--cutoff", CUTOFF.isoformat()],
                     ["score", "firms", "--model", outcome["version"], "--as-of", AS_OF.isoformat()]):
            out = runner.invoke(cli, args)
            assert out.exit_code == 1, out.output
            assert f"no exchange rate for VND on {day}" in out.output and "Traceback" not in out.output
        out = runner.invoke(cli, ["model", "train", "--cutoff", CUTOFF.isoformat(), "--json"])
        assert out.exit_code == 1 and f"VND on {day}" in json.loads(out.output)["error"]
    finally:
        cleanup()


def test_synthetic_fiscal_year_ends_and_the_shipped_ecb_rates():
    """Synthetic fiscal years end at least 15 months before ``today`` (their default window
    must have ended): within the shipped ECB history (to 2026-10-30) until early 2028. After
    it the demo loads the last rates carried forward, marked synthetic."""
    from models.fx import RATE_COLUMNS, RateTable
    from pipelines.fx import ecb_rates
    from pipelines.synth_region import (
        CARRIED_SOURCE,
        carried_forward_rates,
        generate_region,
        last_fiscal_year_end,
        synthetic_fx_rates,
    )

    end = ecb_rates()["valid_until"].max()
    now = synth.generate(firms=60, years=8, banks=1, seed=1, today=dt.date(2026, 12, 2))
    assert last_fiscal_year_end(now) <= end and carried_forward_rates(last_fiscal_year_end(now)).empty
    later = generate_region(["JP", "VN"], firms=60, years=16, banks=1, seed=1, start_year=2014,
                            today=dt.date(2029, 6, 30))
    last = last_fiscal_year_end(later)
    assert last > end  # the shipped history no longer covers these years
    carried = carried_forward_rates(last)
    assert {"JPY", "USD", "THB"} <= set(carried["currency"]) and (carried["source"].str.startswith(CARRIED_SOURCE)).all()
    with pytest.raises(FxError, match=f"JPY on {last}"):
        RateTable(ecb_rates()).per_eur("JPY", last)
    rates = synthetic_fx_rates(["JP", "VN"], 2014, 16, last_day=last)
    table = RateTable(pd.concat([ecb_rates(), rates.rename(columns={"date": "rate_date"})[list(RATE_COLUMNS)]],
                                ignore_index=True))
    last_jpy = ecb_rates().query("currency == 'JPY'").sort_values("rate_date")["rate"].iloc[-1]
    assert table.per_eur("JPY", last)[0] == last_jpy
    assert table.per_eur("VND", last)[0] > 0  # the synthetic VND rates reach the last year too
