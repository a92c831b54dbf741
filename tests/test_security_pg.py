"""PostgreSQL access control (issue 6, items 1 and 2), on the real server.

Two banks, a guarantee agency, a supervisor and an operator each get a real LOGIN role
(unique names per run, dropped afterwards) and connect with ``user=<role>``; a test can
therefore not RESET ROLE its way out. Every role tries to read, change and delete other
institutions' rows, the pseudonym key and the audit trail, through raw SQL and through
the CLI: every attempt fails. The positive paths (a bank submitting and reading its own
data under RLS, the supervisor approving a model, key rotation) are checked too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from creditdb.cli import cli
from tests import factories as F
from tests.conftest import PG_URL, TEST_KEY, _pg_admin, _pg_template, _pg_url

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[1]
RLS_TABLES = ("submission", "financial_statement", "loan", "default_event", "borrower_link")


def py_hmac(value: str, key: str = TEST_KEY) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def login_url(dbname: str, role: str) -> str:
    """URL of ``dbname`` as the login ``role`` (trust authentication on 127.0.0.1)."""
    base = PG_URL.rsplit("/", 1)[0]
    scheme, rest = base.split("://", 1)
    host = rest.split("@", 1)[-1]
    return f"{scheme}://{role}@{host}/{dbname}"


class World:
    """A fresh database with roles, institutions and both banks' data loaded by the banks."""

    def __init__(self, tmp: Path, sfx: str) -> None:
        self.admin = _pg_admin()
        self.dbname = f"creditdb_sec_{sfx}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.dbname}" TEMPLATE "{_pg_template()}"'))
        self.owner_url = _pg_url(self.dbname)
        self.owner = create_engine(self.owner_url)
        self.roles = {name: f"cdbt_{name}_{sfx}" for name in ("bk1", "bk2", "agency", "supervisor", "operator")}
        groups = {"bk1": "creditdb_institution", "bk2": "creditdb_institution", "agency": "creditdb_agency",
                  "supervisor": "creditdb_supervisor", "operator": "creditdb_operator"}
        with self.admin.connect() as conn:
            for name, role in self.roles.items():
                conn.execute(text(f'CREATE ROLE "{role}" LOGIN IN ROLE {groups[name]}'))
        self.engines = {name: create_engine(login_url(self.dbname, role)) for name, role in self.roles.items()}
        self.tmp = tmp

    def cli(self, who: str, *args: str):
        env = {"CREDITDB_URL": login_url(self.dbname, self.roles[who]) if who != "owner" else self.owner_url,
               "CREDITDB_PSEUDONYM_KEY": None, "CREDITDB_ACTOR": who}
        return CliRunner().invoke(cli, list(args), env=env)

    def q(self, who: str, sql: str, **params):
        engine = self.owner if who == "owner" else self.engines[who]
        with engine.begin() as conn:
            res = conn.execute(text(sql), params)
            return res.all() if res.returns_rows else []

    def refused(self, who: str, sql: str, **params) -> str:
        """Run ``sql`` as ``who``; it must raise. Returns the server's message."""
        with pytest.raises(DBAPIError) as info:
            self.q(who, sql, **params)
        return str(info.value.orig)

    def close(self) -> None:
        for e in self.engines.values():
            e.dispose()
        self.owner.dispose()
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)'))
            for role in self.roles.values():
                conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))


def _load(w: World) -> None:
    """Institutions by the operator, data by each bank's own login through the CLI."""
    for code, kind, role in (("BK1", "bank", "bk1"), ("BK2", "bank", "bk2"), ("CGC1", "guarantee_corporation", "agency")):
        r = w.cli("operator", "institution", "add", code, "--name", code, "--kind", kind, "--country", "JP",
                  "--db-role", w.roles[role], "--json")
        assert r.exit_code == 0, r.output
    w.ids = {r.code: r.id for r in w.q("owner", "SELECT code, id FROM institution")}
    w.files = {}
    for bank, start in (("BK1", 0), ("BK2", 5)):  # firms 5..9 are borrowers of both banks
        s = F.statements(10, bank=bank, start=start)
        d = w.tmp / bank
        d.mkdir()
        files = {"statements": F.write_csv(s, d / "s.csv"), "loans": F.write_csv(F.loans(s, bank=bank), d / "l.csv"),
                 "defaults": F.write_csv(F.defaults(s.iloc[:2]), d / "d.csv")}
        w.files[bank] = files
        for kind, path in files.items():
            r = w.cli(bank.lower(), "submit", kind, str(path), "-i", bank, "--json")
            assert r.exit_code == 0, r.output
            assert json.loads(r.output)["status"] == "loaded"
    # a model and scores of every firm's latest statement, written by the owner
    w.q("owner", """INSERT INTO model_version (version, created_at, created_by, status, artifact, artifact_sha256,
                    spec, data_fingerprint, code_version, seed, metrics, validation_report)
                    VALUES ('m1', now(), 'op', 'candidate', 'x', 'x', '{}', 'x', 'x', 1, '{}',
                            '{"sample": {"defaults": 40}}')""")
    # (one per firm and institution, from that institution's statement, as score firms writes them)
    w.q("owner", """INSERT INTO score (model_version_id, firm_id, institution_id, statement_id, pd, grade,
                                       fee_category, reasons, scored_at)
                    SELECT (SELECT id FROM model_version WHERE version = 'm1'), s.firm_id, s.institution_id,
                           max(s.id), 0.01, 'A', 1, '[]', now()
                      FROM financial_statement s GROUP BY s.firm_id, s.institution_id""")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("sec"), uuid.uuid4().hex[:8])
    try:
        _load(w)
        yield w
    finally:
        w.close()


def test_deploy_sql_is_the_sql_the_package_applies():
    # deploy/sql is a link to creditdb/sql (one copy to edit); should it ever become a
    # directory of its own, the two must still be byte-identical
    for name in ("roles.sql", "rls.sql"):
        assert (ROOT / "deploy" / "sql" / name).read_bytes() == (ROOT / "creditdb" / "sql" / name).read_bytes(), name


def test_each_bank_submits_and_reads_its_own_rows_under_rls(world):
    w = world
    owner_counts = {t: dict(w.q("owner", f"SELECT institution_id, count(*) FROM {t} GROUP BY 1")) for t in RLS_TABLES}
    for bank in ("BK1", "BK2"):
        me = w.ids[bank]
        for t in RLS_TABLES:
            rows = w.q(bank.lower(), f"SELECT institution_id, count(*) FROM {t} GROUP BY 1")
            assert rows == [(me, owner_counts[t][me])], (bank, t, rows)
        # firms and scores: exactly the firms of its own borrowers (10 each, 5 shared)
        assert w.q(bank.lower(), "SELECT count(*) FROM firm")[0][0] == 10
        assert w.q(bank.lower(), "SELECT count(*) FROM score")[0][0] == 10
    assert w.q("owner", "SELECT count(*) FROM firm")[0][0] == 15  # the shared firms were linked, not duplicated
    # every append was attributed to the login that made it
    roles = {r[0] for r in w.q("owner", "SELECT DISTINCT db_role FROM audit_event")}
    assert {w.roles["bk1"], w.roles["bk2"]} <= roles


@pytest.mark.parametrize("who", ["bk2", "agency", "supervisor", "operator"])
def test_nobody_changes_or_deletes_a_banks_rows(world, who):
    w = world
    bk1 = w.ids["BK1"]
    before = {t: w.q("owner", f"SELECT count(*), sum(hashtext(t::text)) FROM {t} t WHERE institution_id = :i", i=bk1)
              for t in RLS_TABLES}
    for t in RLS_TABLES:
        assert "permission denied" in w.refused(who, f"DELETE FROM {t} WHERE institution_id = :i", i=bk1)
        assert "permission denied" in w.refused(who, f"TRUNCATE {t}")
    for t in ("financial_statement", "loan", "default_event", "borrower_link"):
        assert "permission denied" in w.refused(who, f"UPDATE {t} SET firm_id = firm_id WHERE institution_id = :i",
                                                 i=bk1)
    if who == "bk2":  # may update its own submissions' status columns, but sees none of BK1's
        with w.engines["bk2"].begin() as conn:
            n = conn.execute(text("UPDATE submission SET status = 'x' WHERE institution_id = :i"), {"i": bk1}).rowcount
        assert n == 0
        msg = w.refused("bk2", "INSERT INTO submission (institution_id, kind, file_name, file_sha256, status, strict,"
                        " rows_total, rows_loaded, rows_rejected, warnings, firms_new, firms_linked, report, received_at)"
                        " VALUES (:i, 'loans', 'f', 'x', 'loaded', false, 0, 0, 0, 0, 0, 0, '{}', now())", i=bk1)
        assert "row-level security" in msg
    elif who != "operator":
        w.refused(who, "UPDATE submission SET status = 'x' WHERE institution_id = :i", i=bk1)
    after = {t: w.q("owner", f"SELECT count(*), sum(hashtext(t::text)) FROM {t} t WHERE institution_id = :i", i=bk1)
             for t in RLS_TABLES}
    assert after == before


def test_a_bank_reads_nothing_of_another_bank(world):
    w = world
    bk1 = w.ids["BK1"]
    for t in RLS_TABLES:
        assert w.q("bk2", f"SELECT count(*) FROM {t} WHERE institution_id = :i", i=bk1)[0][0] == 0
    # firms 0..4 are BK1's alone: BK2 sees neither them nor their scores, even by pseudonym
    only_bk1 = [py_hmac(f"corp|JP|{9000000000000 + i:013d}") for i in range(5)]
    assert w.q("owner", "SELECT count(*) FROM firm WHERE pseudonym = ANY(:p)", p=only_bk1)[0][0] == 5
    assert w.q("bk2", "SELECT count(*) FROM firm WHERE pseudonym = ANY(:p)", p=only_bk1)[0][0] == 0
    assert w.q("bk2", "SELECT count(*) FROM score s JOIN firm f ON f.id = s.firm_id WHERE f.pseudonym = ANY(:p)",
               p=only_bk1)[0][0] == 0
    assert w.q("bk2", "SELECT count(*) FROM score WHERE firm_id NOT IN (SELECT firm_id FROM borrower_link)")[0][0] == 0
    # nor BK1's audit events
    assert w.q("owner", "SELECT count(*) FROM audit_event WHERE db_role = :r", r=w.roles["bk1"])[0][0] == 3
    assert w.q("bk2", "SELECT count(*) FROM audit_event WHERE db_role <> :r", r=w.roles["bk2"])[0][0] == 0
    assert w.q("bk2", "SELECT count(*) FROM audit_event")[0][0] == 3
    # the agency prices guarantees: it reads loans, but not submissions (files, validation reports)
    assert w.q("agency", "SELECT count(*) FROM loan")[0][0] == 20
    assert "permission denied" in w.refused("agency", "SELECT count(*) FROM submission")


@pytest.mark.parametrize("who", ["bk1", "bk2", "agency", "supervisor", "operator"])
def test_nobody_reads_the_key_or_hashes_outside_its_scope(world, who):
    w = world
    assert "permission denied" in w.refused(who, "SELECT key FROM creditdb_pseudonym_key")
    assert "permission denied" in w.refused(
        who, "SELECT encode(hmac('corp|JP|1', key, 'sha256'), 'hex') FROM creditdb_pseudonym_key")
    assert "permission denied" in w.refused(who, "SELECT creditdb_set_key('0123456789abcdef0123'::bytea)")
    if who != "operator":
        assert "permission denied" in w.refused(who, "SELECT creditdb_rotate_key()")
    if who == "supervisor":
        assert "permission denied" in w.refused(who, "SELECT creditdb_pseudonyms(ARRAY['corp|JP|1'])")
        return
    own = {"bk1": "BK1", "bk2": "BK2"}.get(who)
    if own:  # a bank hashes corporate numbers and its own keys, nothing else
        other = "BK1" if own == "BK2" else "BK2"
        for scope in ("borrower", "loan"):
            assert "may pseudonymise only" in w.refused(
                who, "SELECT creditdb_pseudonyms(CAST(:v AS text[]))", v=["corp|JP|1", f"{scope}|{other}|{other}-B00001"])
        mine = [f"borrower|{own}|{own}-B00001", "corp|JP|9000000000001", "loan|" + own + "|ü-1"]
        got = w.q(who, "SELECT creditdb_pseudonyms(CAST(:v AS text[]))", v=mine)[0][0]
        assert got == [py_hmac(v) for v in mine]


@pytest.mark.parametrize("who", ["owner", "bk1", "bk2", "agency", "supervisor", "operator"])
def test_audit_trail_is_append_only_for_everybody(world, who):
    w = world
    before = w.q("owner", "SELECT id, hash FROM audit_event ORDER BY id")
    for sql in ("UPDATE audit_event SET actor = 'mallory'", "DELETE FROM audit_event", "TRUNCATE audit_event"):
        msg = w.refused(who, sql)
        assert "permission denied" in msg or "append-only" in msg, msg
    if who != "owner":
        assert "permission denied" in w.refused(
            who, "INSERT INTO audit_event (id, ts, actor, action, details, prev_hash, hash) "
                 "VALUES (999, now(), 'x', 'x', '{}', 'x', 'x')")
        # the append function refuses an event that does not extend the chain
        assert "does not extend the chain" in w.refused(
            who, "SELECT creditdb_audit_append(1, now(), CAST(session_user AS text), 'x', '{}', NULL, NULL, :z, 'x')",
            z="0" * 64)
    assert w.q("owner", "SELECT id, hash FROM audit_event ORDER BY id") == before


def test_supervisor_writes_nothing_but_approvals(world):
    w = world
    bk1 = w.ids["BK1"]
    assert "permission denied" in w.refused(
        "supervisor", "INSERT INTO financial_statement SELECT * FROM financial_statement WHERE institution_id = :i "
                      "LIMIT 1", i=bk1)
    assert "permission denied" in w.refused("supervisor", "UPDATE loan SET amount = 0")
    assert "permission denied" in w.refused("supervisor", "UPDATE model_version SET artifact = 'evil'")
    assert "permission denied" in w.refused("supervisor", "INSERT INTO score SELECT * FROM score LIMIT 1")
    assert w.q("supervisor", "SELECT count(*) FROM financial_statement")[0][0] == 20  # reads everything
    w.q("owner", """INSERT INTO model_version (version, created_at, created_by, status, artifact, artifact_sha256,
                    spec, data_fingerprint, code_version, seed, metrics, validation_report)
                    VALUES ('m2', now(), 'op', 'candidate', 'x', 'x', '{}', 'x', 'x', 1, '{}',
                            '{"sample": {"defaults": 40}}')""")
    r = w.cli("supervisor", "model", "approve", "m2", "--by", "Dr. S", "--note", "committee", "--json")
    assert r.exit_code == 0, r.output
    assert w.q("owner", "SELECT status, approved_by FROM model_version WHERE version = 'm2'") == [("approved", "Dr. S")]
    ev = w.q("owner", "SELECT action, db_role FROM audit_event ORDER BY id DESC LIMIT 1")
    assert ev == [("model.approve", w.roles["supervisor"])]
    ok = w.cli("supervisor", "audit", "verify", "--json")
    assert ok.exit_code == 0 and json.loads(ok.output)["ok"] is True, ok.output


def test_agency_issues_guarantees_only_in_its_own_name(world):
    w = world
    loan = w.q("owner", "SELECT id FROM loan WHERE institution_id = :i LIMIT 1", i=w.ids["BK1"])[0][0]
    sql = ("INSERT INTO guarantee (loan_id, agency_id, issued_on, coverage, fee_rate, schedule, created_at) "
           "VALUES (:l, :a, '2024-01-01', 0.8, 0.01, 'x', now())")
    assert "row-level security" in w.refused("agency", sql, l=loan, a=w.ids["BK2"])
    assert "permission denied" in w.refused("bk2", sql, l=loan, a=w.ids["CGC1"])
    assert "permission denied" in w.refused("agency", "UPDATE loan SET amount = 0")
    # the positive path through the CLI: the agency prices and issues on a bank's loan by its loan key
    w.q("owner", "UPDATE model_version SET status = CASE WHEN version = 'm1' THEN 'approved' ELSE 'retired' END, "
                 "approved_by = 'x', approved_at = now()")  # m1 has the scores
    r = w.cli("agency", "guarantee", "issue", "--institution", "CGC1", "--loan-of", "BK1:BK1-L00003",
              "--coverage", "0.8", "--date", "2024-01-15", "--json")
    assert r.exit_code == 0, r.output
    issued = w.q("owner", "SELECT g.agency_id, l.institution_id FROM guarantee g JOIN loan l ON l.id = g.loan_id")
    assert issued == [(w.ids["CGC1"], w.ids["BK1"])]
    assert w.q("bk1", "SELECT count(*) FROM guarantee")[0][0] == 1  # BK1 sees the guarantee on its loan
    assert w.q("bk2", "SELECT count(*) FROM guarantee")[0][0] == 0  # BK2 does not
    r = w.cli("agency", "guarantee", "issue", "--institution", "CGC1", "--loan-of", "BK1:BK1-L00003",
              "--coverage", "0.8", "--date", "2024-01-16", "--json")
    assert r.exit_code == 1 and "active guarantee" in r.output, r.output


def test_cli_as_another_bank_sees_and_changes_nothing(world):
    w = world
    before = w.q("owner", "SELECT count(*) FROM financial_statement")[0][0]
    # submitting in BK1's name is refused: hashing in BK1's scope and inserting BK1 rows
    r = w.cli("bk2", "submit", "statements", str(F.write_csv(F.statements(3, bank="BK1", start=50),
                                                              w.tmp / "forged.csv")), "-i", "BK1", "--json")
    assert r.exit_code == 1 and "permission denied" in r.output and "row-level security" in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)  # a clear error, not a traceback
    assert w.q("owner", "SELECT count(*) FROM financial_statement")[0][0] == before
    # score lookups: in BK1's name refused; BK1's keys under BK2's own name find nothing
    r = w.cli("bk2", "score", "lookup", "-i", "BK1", "BK1-B00001", "--json")
    assert r.exit_code == 1 and "may pseudonymise only" in r.output, r.output
    r = w.cli("bk2", "score", "lookup", "-i", "BK2", "BK1-B00001", "BK2-B00005", "--json")
    assert r.exit_code == 0, r.output
    found = {x["borrower_key"]: x["found"] for x in json.loads(r.output)["results"]}
    assert found == {"BK1-B00001": False, "BK2-B00005": True}
    r = w.cli("bk1", "score", "lookup", "-i", "BK1", "BK1-B00001", "BK1-B00009", "--json")
    res = {x["borrower_key"]: x for x in json.loads(r.output)["results"]}
    assert res["BK1-B00001"]["found"] and res["BK1-B00001"]["fiscal_year_end"] == "2021-03-31"
    # firm 9 is shared; BK1's score of it rests on BK1's own statement (issue 17: never on BK2's)
    assert res["BK1-B00009"]["found"] and res["BK1-B00009"]["fiscal_year_end"] == "2021-03-31"
    # listings show only the bank's own submissions and audit events
    subs = json.loads(w.cli("bk2", "submissions", "list", "--json").output)
    assert subs and {s["institution"] for s in subs} == {"BK2"}
    r = w.cli("bk2", "submissions", "show", str(w.q("owner", "SELECT min(id) FROM submission WHERE institution_id = :i",
                                                      i=w.ids["BK1"])[0][0]), "--json")
    assert r.exit_code == 1
    events = json.loads(w.cli("bk2", "audit", "log", "--json").output)
    assert events and all(e["details"].get("institution") == "BK2" for e in events)
    # a bank cannot bind its login elsewhere or rotate the key
    for args in (("security", "bind", "BK1", w.roles["bk2"]), ("security", "rotate-key", "--yes")):
        r = w.cli("bk2", *args)
        assert r.exit_code == 1 and "permission denied" in r.output, r.output
    assert w.q("owner", "SELECT db_role FROM institution WHERE code = 'BK1'") == [(w.roles["bk1"],)]
    assert w.q("owner", "SELECT max(generation) FROM creditdb_pseudonym_key") == [(1,)]


def test_server_hashing_equals_python_hmac_through_anonymise(world):
    import pandas as pd

    from creditdb import anonymise as anon

    keys = pd.Series([" bk1-b00001 ", "BK1-B00002", None, "BK1-B00001", "東京-7"], dtype=object)
    for who in ("owner", "bk1"):
        engine = world.owner if who == "owner" else world.engines[who]
        server = anon.borrower_hash(anon.DbHasher(engine), "BK1", keys)
        local = anon.borrower_hash(TEST_KEY.encode(), "BK1", keys)
        assert server.tolist() == local.tolist() and server.isna().tolist() == [False, False, True, False, False]
    nums = pd.Series(["9000000000001", None])
    assert (anon.corporate_pseudonym(anon.DbHasher(world.engines["bk2"]), pd.Series(["jp", "JP"]), nums).tolist()
            == anon.corporate_pseudonym(TEST_KEY.encode(), pd.Series(["jp", "JP"]), nums).tolist())


@pytest.mark.slow
def test_key_rotation_rekeys_everything_and_keeps_links(tmp_path):
    w = World(tmp_path, uuid.uuid4().hex[:8])
    try:
        _load(w)
        corp = [f"corp|JP|{9000000000000 + i:013d}" for i in range(15)]
        stored = lambda: {r[0] for r in w.q("owner", "SELECT pseudonym FROM firm")}  # noqa: E731
        assert {py_hmac(c) for c in corp} == stored()
        loan_hashes = {r[0] for r in w.q("owner", "SELECT loan_hash FROM loan")}
        assert py_hmac("loan|BK1|BK1-L00000") in loan_hashes
        n_default_hashes = w.q("owner", "SELECT count(loan_hash) FROM default_event")[0][0]

        r = w.cli("operator", "security", "rotate-key", "--yes", "--json")
        assert r.exit_code == 0, r.output
        res = json.loads(r.output)
        assert (res["generation"], res["firm"], res["borrower_link"], res["loan"], res["default_event"]) == (
            2, 15, 20, 20, n_default_hashes)

        # the old key alone no longer reproduces any stored pseudonym or hash; the chain does
        k2 = bytes(w.q("owner", "SELECT key FROM creditdb_pseudonym_key WHERE generation = 2")[0][0])
        chain = lambda v: hmac.new(k2, py_hmac(v).encode(), hashlib.sha256).hexdigest()  # noqa: E731
        assert not {py_hmac(c) for c in corp} & stored()
        assert {chain(c) for c in corp} == stored()
        new_loans = {r[0] for r in w.q("owner", "SELECT loan_hash FROM loan")}
        assert not loan_hashes & new_loans and chain("loan|BK1|BK1-L00000") in new_loans
        got = w.q("operator", "SELECT creditdb_pseudonyms(ARRAY['loan|BK1|BK1-L00000'])")[0][0]
        assert got == [chain("loan|BK1|BK1-L00000")]

        # resubmissions link to the same firms: BK2 under a new borrower key (by corporate
        # number), BK1 under its known borrower key (by the re-keyed borrower hash)
        s = F.statements(1, bank="BK2", start=0, year=2022).assign(borrower_key="BK2-NEW-0")
        r = w.cli("bk2", "submit", "statements", str(F.write_csv(s, tmp_path / "s2.csv")), "-i", "BK2", "--json")
        out = json.loads(r.output)
        assert r.exit_code == 0 and (out["firms_new"], out["firms_linked"]) == (0, 1), r.output
        s = F.statements(2, bank="BK1", start=0, year=2022, corp=False)
        r = w.cli("bk1", "submit", "statements", str(F.write_csv(s, tmp_path / "s1.csv")), "-i", "BK1", "--json")
        out = json.loads(r.output)
        assert r.exit_code == 0 and out["firms_new"] == 0, r.output
        assert len(stored()) == 15

        # the banks' score lookups by their own keys still work
        r = w.cli("bk1", "score", "lookup", "-i", "BK1", "BK1-B00001", "BK1-B00009", "--json")
        assert json.loads(r.output)["found"] == 2, r.output
        r = w.cli("bk2", "score", "lookup", "-i", "BK2", "BK2-NEW-0", "BK2-B00005", "--json")
        # BK2-NEW-0 was linked to firm 0, whose only score rests on BK1's statement: not BK2's to read
        found = {x["borrower_key"]: x["found"] for x in json.loads(r.output)["results"]}
        assert found == {"BK2-NEW-0": False, "BK2-B00005": True}, r.output

        ev = w.q("owner", "SELECT action, db_role FROM audit_event WHERE action = 'security.rotate_key'")
        assert ev == [("security.rotate_key", w.roles["operator"])]
        ok = w.cli("operator", "audit", "verify", "--json")
        assert ok.exit_code == 0 and json.loads(ok.output)["ok"] is True, ok.output
    finally:
        w.close()


@pytest.mark.parametrize("env_key", [None, TEST_KEY])
def test_init_stores_a_key_inside_the_server_once(tmp_path, env_key):
    admin = _pg_admin()
    name = f"creditdb_init_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(_pg_url(name))
    try:
        env = {"CREDITDB_URL": _pg_url(name), "CREDITDB_PSEUDONYM_KEY": env_key}
        r = CliRunner().invoke(cli, ["init", "--json"], env=env)
        assert r.exit_code == 0 and "pseudonym key" in json.loads(r.output)["key"], r.output
        with engine.connect() as conn:
            keys = conn.execute(text("SELECT key FROM creditdb_pseudonym_key")).scalars().all()
            got = conn.execute(text("SELECT creditdb_pseudonyms(ARRAY['corp|JP|1'])")).scalar_one()
        assert len(keys) == 1
        assert (got == [py_hmac("corp|JP|1")]) == (env_key is not None)
        r = CliRunner().invoke(cli, ["init", "--json"], env={**env, "CREDITDB_PSEUDONYM_KEY": "another-key-123456"})
        assert r.exit_code == 0 and json.loads(r.output)["key"] is None
        with engine.connect() as conn:
            assert conn.execute(text("SELECT key FROM creditdb_pseudonym_key")).scalars().all() == keys
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_a_bank_cannot_attach_itself_to_firms_by_guessing_ids(world):
    """Linking a borrower to an arbitrary firm id would reveal that firm and its scores."""
    w = world
    bk2 = w.ids["BK2"]
    only_bk1 = w.q("owner", "SELECT f.id FROM firm f WHERE NOT EXISTS (SELECT 1 FROM borrower_link bl "
                            "WHERE bl.firm_id = f.id AND bl.institution_id = :i) ORDER BY f.id LIMIT 1", i=bk2)[0][0]
    # its own defaults file (the fact tables accept rows only into a submission of their kind: creditdb.integrity)
    sub = w.q("owner", "SELECT min(id) FROM submission WHERE institution_id = :i AND kind = 'defaults'", i=bk2)[0][0]
    link = "INSERT INTO borrower_link (institution_id, borrower_hash, firm_id) VALUES (:i, :h, :f)"
    assert "row-level security" in w.refused("bk2", link, i=bk2, h="f" * 64, f=only_bk1)
    # nor with a table of the same name planted in its own session
    with pytest.raises(DBAPIError) as info, w.engines["bk2"].begin() as conn:
        conn.execute(text("CREATE TEMP TABLE creditdb_resolved_firm (firm_id integer PRIMARY KEY) ON COMMIT DROP"))
        conn.execute(text("INSERT INTO pg_temp.creditdb_resolved_firm VALUES (:f)"), {"f": only_bk1})
        conn.execute(text(link), {"i": bk2, "h": "e" * 64, "f": only_bk1})
    assert "row-level security" in str(info.value.orig)
    # nor write statements, loans or defaults of a firm it has not linked
    stmt = ("INSERT INTO default_event (firm_id, institution_id, submission_id, default_date, event_type) "
            "VALUES (:f, :i, :s, '2023-01-01', 'bankruptcy')")
    assert "row-level security" in w.refused("bk2", stmt, f=only_bk1, i=bk2, s=sub)
    # nor attach rows to another bank's submission, even for a firm it did link
    shared = w.q("owner", "SELECT firm_id FROM borrower_link WHERE institution_id = :i LIMIT 1", i=bk2)[0][0]
    sub1 = w.q("owner", "SELECT min(id) FROM submission WHERE institution_id = :i AND kind = 'defaults'",
               i=w.ids["BK1"])[0][0]
    assert "row-level security" in w.refused("bk2", stmt, f=shared, i=bk2, s=sub1)
    with w.engines["bk2"].connect() as conn:  # the same row in its own submission is accepted (then rolled back)
        conn.execute(text(stmt), {"f": shared, "i": bk2, "s": sub})
        conn.rollback()
    assert w.q("bk2", "SELECT count(*) FROM firm")[0][0] == 10
    assert w.q("owner", "SELECT count(*) FROM borrower_link WHERE firm_id = :f AND institution_id = :i",
               f=only_bk1, i=bk2)[0][0] == 0
    # the documented remaining oracle (docs/security.md): knowing a firm's corporate number,
    # a bank can resolve its id (that is how submissions link firms) - but not read it
    assert w.q("bk2", "SELECT id FROM creditdb_firm_ids(ARRAY[:p])",
               p=py_hmac("corp|JP|9000000000000")) == w.q("owner", "SELECT id FROM firm WHERE pseudonym = :p",
                                                          p=py_hmac("corp|JP|9000000000000"))
    assert w.q("bk2", "SELECT count(*) FROM firm WHERE id = :f", f=only_bk1)[0][0] == 0


def test_operator_streams_score_rows_through_row_level_security(world):
    """The operator's scoring run: COPY is refused under RLS, so the stream goes through a temp table."""
    import pandas as pd

    from creditdb.bulk import rls_active
    from pipelines.score_store import ScoreReferenceError, ScoreWriter

    w = world
    with w.engines["operator"].connect() as conn:
        tx = conn.begin()
        assert rls_active(conn, "score")
        mv = conn.execute(text("SELECT id FROM model_version WHERE version = 'm1'")).scalar_one()
        st = conn.execute(text("SELECT id, firm_id FROM financial_statement ORDER BY id")).all()
        before = conn.execute(text("SELECT count(*) FROM score")).scalar_one()
        frame = pd.DataFrame({"model_version_id": mv, "firm_id": [r.firm_id for r in st],
                              "statement_id": [r.id for r in st], "pd": 0.02, "grade": "B", "fee_category": 3,
                              "reasons": '[{"feature": "roa", "text": "Low return on assets", "contribution": 0.1}]',
                              "scored_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)})
        with ScoreWriter(conn, mv) as writer:
            writer.write(frame.iloc[:4])
            writer.write(frame.iloc[4:])
        assert conn.execute(text("SELECT count(*) FROM score")).scalar_one() == before + len(frame) > before
        tx.rollback()
        tx = conn.begin()
        with pytest.raises(ScoreReferenceError), ScoreWriter(conn, mv) as writer:
            writer.write(frame.assign(statement_id=frame.statement_id.iloc[::-1].to_numpy()))
        tx.rollback()
    assert w.q("owner", "SELECT count(*) FROM score")[0][0] == before
