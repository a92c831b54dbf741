"""``creditdb stats publish`` / ``stats published`` (issue 17, finding 4), on a known data set.

Three banks, one statement per firm (fiscal year 2021), no firm shared:

industry  BK1  BK2  BK3  firms  remove the largest bank  expected (policy k = 5)
C          12    6    6     24   24 - 12 = 12             shown
F           3    3    3      9    9 -  3 =  6             complementary (protects G in the total)
G           6    1    0      7    7 -  6 =  1             primary: BK1 would be left with BK2's one firm
all        21   10    9     40   40 - 21 = 19             shown

BK2's firm in G defaulted (default 2022-01-15, within 12 months of the statement's
availability, 2021-06-30). Under the old rule (any 5 firms) G was published and BK1,
subtracting its own `stats --k 1`, read that one firm's equity ratio and its default.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from creditdb.cli import cli
from tests import factories as F
from tests.conftest import PG_URL, _pg_admin, _pg_template, _pg_url

LAYOUT = {"BK1": {"C": 12, "F": 3, "G": 6}, "BK2": {"C": 6, "F": 3, "G": 1}, "BK3": {"C": 6, "F": 3}}
VICTIM = ("BK2", "G")


def bank_files(tmp: Path) -> dict[str, dict[str, Path]]:
    """Each bank's statements (and BK2's defaults) files; firm numbers never repeat across banks."""
    out, start = {}, 0
    for bank, cells in LAYOUT.items():
        parts = []
        for industry, n in cells.items():
            s = F.statements(n, bank=bank, start=start)
            s["industry"] = industry
            parts.append(s)
            start += n
        s = pd.concat(parts, ignore_index=True)
        d = tmp / bank
        d.mkdir(exist_ok=True)
        out[bank] = {"statements": F.write_csv(s, d / "s.csv"), "frame": s}
        if bank == VICTIM[0]:
            victim = s[s.industry == VICTIM[1]]
            dflt = F.defaults(victim)
            dflt["default_date"] = "2022-01-15"
            out[bank]["defaults"] = F.write_csv(dflt, d / "d.csv")
    return out


def equity_ratio(frame: pd.DataFrame) -> np.ndarray:
    """By hand: net assets / total assets, from the submitted amounts."""
    return frame.net_assets.to_numpy(dtype=float) / frame.total_assets.to_numpy(dtype=float)


def invoke(args, env=None, ok=True):
    r = CliRunner().invoke(cli, list(args), env=env)
    if ok:
        assert r.exit_code == 0, r.output
    return r


def rows_of(out: dict, ratio: str = "equity_ratio", population: str = "all") -> dict[str, dict]:
    return {r["industry"]: r for r in out["rows"] if r["ratio"] == ratio and r["population"] == population}


def check_published_by_hand(pub: dict, files: dict) -> None:
    """Every published cell of population 'all' against the submitted rows, suppressed ones included."""
    cells = rows_of(pub)
    assert set(cells) == {"C", "F", "G", "all"}
    assert cells["G"]["suppressed"] == "primary" and cells["G"]["firms"] is None and cells["G"]["mean"] is None
    assert cells["F"]["suppressed"] == "complementary" and cells["F"]["firms"] is None and cells["F"]["mean"] is None
    frames = pd.concat([f["frame"] for f in files.values()], ignore_index=True)
    for industry in ("C", "all"):
        sub = frames if industry == "all" else frames[frames.industry == industry]
        er = equity_ratio(sub)
        c = cells[industry]
        assert c["suppressed"] is None
        assert (c["firms"], c["statements"], c["count"]) == (len(sub), len(sub), len(sub))
        assert c["mean"] == pytest.approx(er.mean(), rel=1e-12)
        assert c["median"] == pytest.approx(np.median(er), rel=1e-12)
        assert c["p30"] == pytest.approx(np.percentile(er, 30), rel=1e-12)
    assert cells["all"]["defaults"] == 1
    d = rows_of(pub, population="default")
    assert d["G"]["suppressed"] == "primary" and d["G"]["defaults"] is None
    assert d["all"]["suppressed"] == "primary"  # one defaulted firm in the whole pool


def differencing_attack(pub: dict, own: dict, k: int) -> list[tuple]:
    """Bank subtracts its own statistics from the published ones: cells left with < k firms."""
    leaks = []
    mine = {(r["industry"], r["population"], r["ratio"]): r for r in own["rows"]}
    for r in pub["rows"]:
        if r["firms"] is None:
            continue
        m = mine.get((r["industry"], r["population"], r["ratio"]))
        left = r["firms"] - (m["firms"] if m and m["firms"] is not None else 0)
        if left < k:
            leaks.append((r["industry"], r["population"], r["ratio"], left))
    return leaks


def test_publish_on_sqlite_compared_by_hand(sqlite_db, tmp_path):
    """The embedded mode (one user): the owner publishes and reads; PostgreSQL logins below."""
    files = bank_files(tmp_path)
    empty = invoke(["stats", "publish", "--json"], ok=False)  # nothing in force: refused, nothing stored
    assert empty.exit_code == 1 and "nothing to publish" in json.loads(empty.output)["error"]
    for bank in LAYOUT:
        invoke(["institution", "add", bank, "--name", bank, "--kind", "bank", "--country", "JP"])
        for kind in ("statements", "defaults"):
            if kind in files[bank]:
                invoke(["submit", kind, str(files[bank][kind]), "-i", bank, "--json"])
    out = json.loads(invoke(["stats", "publish", "--by", "industry", "--json"]).output)
    assert out["ok"] and out["policy"]["k"] == 5 and out["dimensions"] == ["industry"]
    pub = json.loads(invoke(["stats", "published", "--json"]).output)
    assert pub["id"] == out["id"]
    check_published_by_hand(pub, files)
    text_out = invoke(["stats", "published"]).output
    assert "primary" in text_out and "complementary" in text_out
    listing = json.loads(invoke(["stats", "published", "--list", "--json"]).output)
    assert [p["id"] for p in listing["publications"]] == [out["id"]]
    assert invoke(["stats", "published", "--id", "999", "--json"], ok=False).exit_code == 1
    bad = tmp_path / "bad.toml"
    bad.write_text("k = 0\n")
    r = invoke(["stats", "publish", "--policy", str(bad)], ok=False)
    assert r.exit_code == 1 and "k must be at least 1" in r.output


# --------------------------------------------------------------------- PostgreSQL logins

def login_url(dbname: str, role: str) -> str:
    base = PG_URL.rsplit("/", 1)[0]
    scheme, rest = base.split("://", 1)
    return f"{scheme}://{role}@{rest.split('@', 1)[-1]}/{dbname}"


@pytest.fixture
def pg_world(tmp_path):
    admin = _pg_admin()
    sfx = uuid.uuid4().hex[:8]
    dbname = f"creditdb_secdata_{sfx}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{dbname}" TEMPLATE "{_pg_template()}"'))
    roles = {"bk1": "creditdb_institution", "bk2": "creditdb_institution", "bk3": "creditdb_institution",
             "agency": "creditdb_agency", "supervisor": "creditdb_supervisor", "operator": "creditdb_operator"}
    names = {who: f"cdbt_sd_{who}_{sfx}" for who in roles}
    with admin.connect() as conn:
        for who, group in roles.items():
            conn.execute(text(f'CREATE ROLE "{names[who]}" LOGIN IN ROLE {group}'))

    def cli_as(who: str, *args: str, ok: bool = True):
        env = {"CREDITDB_URL": login_url(dbname, names[who]), "CREDITDB_PSEUDONYM_KEY": None, "CREDITDB_ACTOR": who}
        return invoke(args, env=env, ok=ok)

    engines = {}

    def sql_as(who: str, sql: str):
        engine = engines.setdefault(who, create_engine(login_url(dbname, names[who]) if who != "owner"
                                                       else _pg_url(dbname)))
        with engine.begin() as conn:
            res = conn.execute(text(sql))
            return res.all() if res.returns_rows else []

    try:
        yield cli_as, sql_as, names
    finally:
        for e in engines.values():
            e.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
            for role in names.values():
                conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))


@pytest.mark.postgres
def test_differencing_attack_by_a_bank_login_fails_on_published_statistics(pg_world, tmp_path):
    cli_as, sql_as, names = pg_world
    files = bank_files(tmp_path)
    for bank in LAYOUT:
        cli_as("operator", "institution", "add", bank, "--name", bank, "--kind", "bank", "--country", "JP",
               "--db-role", names[bank.lower()])
        for kind in ("statements", "defaults"):
            if kind in files[bank]:
                cli_as(bank.lower(), "submit", kind, str(files[bank][kind]), "-i", bank, "--json")
    # members cannot publish (nor forge a publication)
    r = cli_as("bk1", "stats", "publish", "--by", "industry", ok=False)
    assert r.exit_code == 1 and "permission denied" in r.output
    pub_id = json.loads(cli_as("operator", "stats", "publish", "--by", "industry", "--json").output)["id"]
    for who in ("bk1", "bk2", "agency", "supervisor"):
        pub = json.loads(cli_as(who, "stats", "published", "--json").output)
        assert pub["id"] == pub_id
        check_published_by_hand(pub, files)
    # the attack: each bank subtracts its own statistics (k = 1 over the rows it may read)
    pub = json.loads(cli_as("bk1", "stats", "published", "--json").output)
    for bank in ("bk1", "bk2", "bk3"):
        own = json.loads(cli_as(bank, "stats", "--by", "industry", "--k", "1", "--json").output)
        assert differencing_attack(pub, own, 5) == [], bank
    # control: the old pool-wide table (any 5 firms) lets BK1 isolate BK2's defaulted firm
    old = json.loads(cli_as("operator", "stats", "--by", "industry", "--k", "5", "--json").output)
    own = json.loads(cli_as("bk1", "stats", "--by", "industry", "--k", "1", "--json").output)
    leaks = differencing_attack(old, own, 5)
    assert ("G", "all", "equity_ratio", 1) in leaks
    g_old, g_own = rows_of(old)["G"], rows_of(own)["G"]
    victim = files["BK2"]["frame"]
    victim_er = equity_ratio(victim[victim.industry == "G"])[0]
    assert g_old["mean"] * g_old["count"] - g_own["mean"] * g_own["count"] == pytest.approx(victim_er, rel=1e-9)
    assert g_old["defaults"] - g_own["defaults"] == 1
    # nobody changes or deletes a publication; members cannot insert cells
    for who in ("bk1", "agency", "supervisor", "operator"):
        for sql in ("UPDATE stat_cell SET mean = 0", "DELETE FROM stat_cell", "DELETE FROM stat_publication",
                    "UPDATE stat_publication SET cells = 0"):
            with pytest.raises(DBAPIError, match="permission denied"):
                sql_as(who, sql)
    for who in ("bk1", "agency", "supervisor"):
        with pytest.raises(DBAPIError, match="permission denied"):
            sql_as(who, f"INSERT INTO stat_cell (publication_id, population, ratio, firms) VALUES ({pub_id}, 'all', "
                        "'equity_ratio', 1)")
    # a member reads only the shared firm row's id, pseudonym and country: no attribute another bank gave
    with pytest.raises(DBAPIError, match="permission denied"):
        sql_as("bk1", "SELECT industry FROM firm")
    assert sql_as("bk1", "SELECT count(*) FROM firm")[0][0] == 21


def test_migration_0012_both_ways(db):
    from alembic import command
    from sqlalchemy import inspect

    from creditdb.db import alembic_config, current_revision, head_revision, upgrade

    assert current_revision(db.engine) == head_revision()
    cfg = alembic_config(db.engine.url.render_as_string(hide_password=False))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
    db.engine.dispose()
    insp = inspect(db.engine)
    assert "stat_cell" not in insp.get_table_names() and "stat_publication" not in insp.get_table_names()
    assert "industry" not in {c["name"] for c in insp.get_columns("financial_statement")}
    assert "institution_id" not in {c["name"] for c in insp.get_columns("score")}
    upgrade(db.engine)
    db.engine.dispose()
    insp = inspect(db.engine)
    assert {"stat_cell", "stat_publication"} <= set(insp.get_table_names())
    assert {"industry", "region", "established_year", "size_class"} <= {
        c["name"] for c in insp.get_columns("financial_statement")}
    assert current_revision(db.engine) == head_revision()
