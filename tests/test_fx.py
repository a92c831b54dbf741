"""Conversion against published ECB reference rates; operator-loaded rates; missing rates."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from creditdb.cli import cli
from creditdb.schema import AuditEvent, FxRate
from models.fx import FxError, RateTable
from pipelines.fx import ecb_rates, rate_table, read_fx_file

DATA = Path(__file__).parent / "data"


def test_shipped_rates_reproduce_published_ecb_reference_rates():
    ref = pd.read_csv(DATA / "ecb_reference_rates.csv")
    table = rate_table()
    for r in ref.itertuples():
        day = dt.date.fromisoformat(r.date)
        assert table.per_eur(r.currency, day)[0] == pytest.approx(r.units_per_eur, rel=1e-9), (r.currency, day)


def test_cross_rate_through_eur_and_weekend_uses_last_publication():
    table = rate_table()
    # 1,000,000 THB in USD on Friday 29 December 2023: 1e6 * 1.1050 / 37.973
    got = table.convert([1e6], pd.Series(["THB"]), pd.Series([dt.date(2023, 12, 29)]), "USD")[0]
    assert got == pytest.approx(1e6 * 1.1050 / 37.973, rel=1e-12)
    # Sunday 31 December 2023: no publication; the Friday rate is still the reference rate
    sunday = table.convert([1e6], pd.Series(["THB"]), pd.Series([dt.date(2023, 12, 31)]), "USD")[0]
    assert sunday == got
    # JPY -> IDR, both legs from the same day
    assert table.factors(pd.Series(["JPY"]), pd.Series([dt.date(2020, 1, 2)]), "USD")[0] == pytest.approx(
        1.1193 / 121.75, rel=1e-12)


def test_bnd_is_at_par_with_sgd():
    table = rate_table()
    day = dt.date(2023, 12, 29)
    assert table.per_eur("BND", day)[0] == table.per_eur("SGD", day)[0] == pytest.approx(1.4591)
    assert "Interchangeability" in table.per_eur("BND", day)[1]


def test_missing_rate_names_currency_and_date():
    table = rate_table()
    with pytest.raises(FxError, match=r"VND on 2023-12-31"):
        table.convert([1.0], pd.Series(["VND"]), pd.Series([dt.date(2023, 12, 31)]), "USD")
    with pytest.raises(FxError, match=r"THB on 1999-01-04"):  # before the shipped THB history
        table.per_eur("THB", dt.date(1999, 1, 4))
    assert "VND" not in set(ecb_rates().currency)


def test_operator_rate_against_usd_goes_through_the_ecb_usd_rate():
    ops = pd.DataFrame([{"currency": "VND", "base": "USD", "rate_date": dt.date(2023, 1, 1),
                         "valid_until": dt.date(2023, 12, 31), "rate": 23787.32, "source": "World Bank PA.NUS.FCRF"}])
    table = RateTable(pd.concat([ecb_rates(), ops], ignore_index=True))
    usd = table.convert([23787.32], pd.Series(["VND"]), pd.Series([dt.date(2023, 12, 29)]), "USD")[0]
    assert usd == pytest.approx(1.0, rel=1e-12)
    assert table.per_eur("VND", dt.date(2023, 6, 30))[0] == pytest.approx(23787.32 * 1.0866, rel=0.02)
    with pytest.raises(FxError, match="VND on 2024-01-01"):
        table.per_eur("VND", dt.date(2024, 1, 1))


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "rates.csv"
    p.write_text(text, encoding="utf-8")
    return p


def test_fx_load_then_convert_then_duplicate_refused(db, tmp_path):
    runner = CliRunner()
    f = _write(tmp_path, "date,currency,rate,source,valid_until\n"
                         "2023-01-01,VND,23787.32,World Bank PA.NUS.FCRF 2023 average,2023-12-31\n"
                         "2023-01-01,LAK,17700,Bank of the Lao PDR 2023 average,2023-12-31\n")
    res = runner.invoke(cli, ["fx", "load", str(f), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["rates"] == 2
    res = runner.invoke(cli, ["fx", "convert", "23787.32", "VND", "--to", "USD", "--date", "2023-12-29", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["value"] == pytest.approx(1.0)
    with db.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(FxRate)) == 2
        assert conn.scalar(select(func.count()).where(AuditEvent.action == "fx.load")) == 1
    # the same rate again: refused, nothing written
    res = runner.invoke(cli, ["fx", "load", str(f)])
    assert res.exit_code == 1 and "already loaded" in res.output
    with db.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(FxRate)) == 2


def test_convert_without_rate_exits_1_naming_currency_and_date(db):
    res = CliRunner().invoke(cli, ["fx", "convert", "1", "MMK", "--date", "2022-03-31", "--json"])
    assert res.exit_code == 1
    out = json.loads(res.output)
    assert out["currency"] == "MMK" and out["date"] == "2022-03-31" and "MMK on 2022-03-31" in out["error"]


@pytest.mark.parametrize(("body", "needle"), [
    ("date,currency,rate\n2023-01-01,VND,1\n", "missing column(s) source"),
    ("date,currency,rate,source\n2023-13-01,VND,1,x\n", "row 2, column date"),
    ("date,currency,rate,source\n2023-01-01,VND,-5,x\n", "row 2, column rate"),
    ("date,currency,rate,source\n2023-01-01,VND,abc,x\n", "row 2, column rate"),
    ("date,currency,rate,source\n2023-01-01,vietnam,1,x\n", "row 2, column currency"),
    ("date,currency,rate,source\n2023-01-01,VND,1,\n", "row 2, column source"),
    ("date,currency,rate,source\n2023-01-01,VND,1,x\n2023-01-01,VND,2,y\n", "row 3, column date"),
    ("date,currency,rate,source,valid_until\n2023-01-01,VND,1,x,2022-12-31\n", "column valid_until"),
    ("date,currency,rate,source\n2023-01-01,VND,1,ECB euro foreign exchange reference rates\n", "reserved"),
])
def test_bad_rate_files_name_row_and_column(tmp_path, body, needle):
    with pytest.raises(ValueError, match=__import__("re").escape(needle)):
        read_fx_file(_write(tmp_path, body))


def test_bad_file_via_cli_exits_1_and_writes_nothing(db, tmp_path):
    f = _write(tmp_path, "date,currency,rate,source\n2023-01-01,VND,1,ok\n2023-01-02,VND,0,bad\n")
    res = CliRunner().invoke(cli, ["fx", "load", str(f)])
    assert res.exit_code == 1 and "row 3, column rate" in res.output
    with db.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(FxRate)) == 0


def test_migration_0015_both_ways(db):
    """fx_rate and the statement columns come and go; the integrity checks survive."""
    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import inspect

    from creditdb.db import alembic_config, current_revision, upgrade

    engine = db.engine
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    mine = script.get_revision("0015")
    assert current_revision(engine) == head

    def state() -> tuple[bool, set[str]]:
        insp = inspect(engine)
        cols = {c["name"] for c in insp.get_columns("financial_statement")}
        return "fx_rate" in insp.get_table_names(), cols & {"paid_up_capital", "land", "buildings", "isic_code"}

    def checks_installed() -> bool:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                names = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='trigger'")}
            else:
                names = {r[0] for r in conn.exec_driver_sql("SELECT tgname FROM pg_trigger")}
        return "financial_statement_references" in names

    assert state() == (True, {"paid_up_capital", "land", "buildings", "isic_code"})
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, mine.down_revision)
    engine.dispose()
    assert current_revision(engine) == mine.down_revision
    assert state() == (False, set()) and checks_installed()
    upgrade(engine)
    engine.dispose()
    assert current_revision(engine) == head and state()[0] and checks_installed()


def test_an_operators_rate_comes_before_the_ecb_rate_and_only_on_its_days():
    ops = pd.DataFrame([{"currency": "THB", "base": "EUR", "rate_date": dt.date(2023, 12, 29),
                         "valid_until": dt.date(2023, 12, 29), "rate": 40.0, "source": "central bank fixing"}])
    table = RateTable(pd.concat([ecb_rates(), ops], ignore_index=True))
    assert table.per_eur("THB", dt.date(2023, 12, 29)) == (40.0, "central bank fixing")
    assert table.per_eur("THB", dt.date(2023, 12, 28))[0] == pytest.approx(rate_table().per_eur(
        "THB", dt.date(2023, 12, 28))[0])
    assert {"THB", "BND", "EUR", "USD"} <= table.currencies() and "VND" not in table.currencies()
