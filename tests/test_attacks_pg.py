"""Adversarial suite (issue 17): each finding replayed as the attacker would, on the real server.

The database is set up as deploy/OPERATIONS.md says: two bank logins, a guarantee
agency, a supervisor and an operator, each a real LOGIN role connecting as itself
(``user=<role>``; unique names per run, dropped afterwards), data loaded by the banks
through the CLI. Every test plays an attack and fails if the attack works; where it
helps, a control shows the same attack working on the unprotected form (so the test
could fail).
"""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from creditdb.security import search_path_findings
from tests.conftest import TEST_KEY, _pg_admin
from tests.test_security_pg import World, _load, login_url, py_hmac

pytestmark = pytest.mark.postgres

#: every type name the access-control SQL uses, unqualified or not; each is planted
#: in the attacker's pg_temp as a domain over xid (whose input of a role name is 0, so
#: every comparison of two names would be true: the issue's attack)
TYPES = ("text", "int4", "int8", "integer", "bigint", "varchar", "bool", "boolean", "bytea", "json", "jsonb",
         "regclass", "regprocedure", "timestamptz", "name", "oid", "record", "void", "trigger", "character")
#: every relation the SQL names (each planted as a table of the same name in pg_temp)
RELATIONS = ("institution", "submission", "firm", "borrower_link", "financial_statement", "loan", "default_event",
             "score", "guarantee", "audit_event", "model_version", "creditdb_pseudonym_key", "creditdb_audit_lock",
             "pg_roles", "pg_class", "pg_proc", "pg_attribute", "new_rows", "found", "kept")
#: every function the SQL calls (planted in pg_temp; PostgreSQL never looks functions up
#: there, the test shows it stays so)
FUNCTIONS = ("hmac", "encode", "convert_to", "unnest", "pg_has_role", "to_regclass", "split_part", "repeat",
             "gen_random_bytes", "coalesce_", "creditdb_my_institution", "creditdb_may_link", "array_agg_")


def _plant(conn, attacker: str) -> None:
    """Plant a shadow of every unqualified name in the session's pg_temp."""
    for t in TYPES:
        conn.exec_driver_sql(f'CREATE DOMAIN pg_temp."{t}" AS pg_catalog.xid')
    for r in RELATIONS:
        conn.exec_driver_sql(f'CREATE TABLE pg_temp."{r}" (id pg_catalog.int4, code pg_catalog.text, '
                             'db_role pg_catalog.text, institution_id pg_catalog.int4, key pg_catalog.bytea)')
        conn.exec_driver_sql(f"INSERT INTO pg_temp.\"{r}\" VALUES (1, 'BK1', '{attacker}', 1, 'planted-key-1234')")
    for f in FUNCTIONS:
        conn.exec_driver_sql(f'CREATE FUNCTION pg_temp."{f}"(pg_catalog.text) RETURNS pg_catalog.bool '
                             'LANGUAGE sql AS $$ SELECT true $$')
    conn.exec_driver_sql("CREATE FUNCTION pg_temp.always(pg_catalog.text, pg_catalog.text) RETURNS pg_catalog.bool "
                         "LANGUAGE sql AS $$ SELECT true $$")
    for op in ("=", "<>", "~"):
        conn.exec_driver_sql(f"CREATE OPERATOR pg_temp.{op} (LEFTARG = pg_catalog.text, RIGHTARG = pg_catalog.text, "
                             "FUNCTION = pg_temp.always)")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("attack"), uuid.uuid4().hex[:8])
    try:
        _load(w)
        yield w
    finally:
        w.close()


def _counts(conn, agency: bool = False) -> dict[str, int]:
    tables = ["financial_statement", "loan", "default_event", "borrower_link", "firm", "score", "audit_event"]
    tables += ["guarantee"] if agency else ["submission"]  # what each may read at all
    return {t: conn.execute(text(f"SELECT count(*) FROM public.{t}")).scalar_one() for t in tables}


# ------------------------------------------------------------------ finding 1: pg_temp

def test_control_the_unpinned_function_of_the_issue_is_captured(world):
    """Control: the issue's unpinned function, planted next to ours, gives bank 2 bank 1's id."""
    w = world
    w.q("owner", "CREATE FUNCTION public.cdbt_unpinned() RETURNS integer LANGUAGE sql STABLE AS "
                 "$$ SELECT i.id FROM public.institution i WHERE i.db_role::text OPERATOR(pg_catalog.=) "
                 "session_user::text ORDER BY i.id LIMIT 1 $$")
    w.q("owner", "GRANT EXECUTE ON FUNCTION public.cdbt_unpinned() TO creditdb_institution")
    try:
        with w.engines["bk2"].connect() as conn:
            assert conn.execute(text("SELECT public.cdbt_unpinned()")).scalar_one() == w.ids["BK2"]
            conn.exec_driver_sql("CREATE DOMAIN pg_temp.text AS pg_catalog.xid")
            assert conn.execute(text("SELECT public.cdbt_unpinned()")).scalar_one() == w.ids["BK1"]  # captured
            conn.rollback()
        # and the catalog check names it
        with w.owner.connect() as conn:
            found = search_path_findings(conn)["findings"]
        assert any("cdbt_unpinned" in f and "not pinned" in f for f in found), found
    finally:
        w.q("owner", "DROP FUNCTION public.cdbt_unpinned()")


@pytest.mark.parametrize("who", ["bk2", "agency"])
def test_planted_pg_temp_objects_capture_nothing(world, who):
    w = world
    me = w.ids["BK2" if who == "bk2" else "CGC1"]
    with w.engines[who].connect() as conn:
        clean = _counts(conn, who == "agency")
        conn.rollback()
    with w.engines[who].connect() as conn:
        _plant(conn, w.roles[who])
        # the issue's exact probe: the session still maps to its own institution ...
        assert conn.execute(text("SELECT public.creditdb_my_institution()")).scalar_one() == me
        # ... and sees exactly what it saw without the planted objects
        assert _counts(conn, who == "agency") == clean
        conn.rollback()
    if who == "bk2":
        assert clean["financial_statement"] == 10 and clean["submission"] == 3


def test_planted_objects_do_not_unlock_writes_or_hashing(world):
    w = world
    bk1, bk2 = w.ids["BK1"], w.ids["BK2"]
    sub1 = w.q("owner", "SELECT min(id) FROM submission WHERE institution_id = :i AND kind = 'defaults'", i=bk1)[0][0]
    firm1 = w.q("owner", "SELECT firm_id FROM borrower_link WHERE institution_id = :i ORDER BY firm_id LIMIT 1",
                i=bk1)[0][0]
    attacks = [
        ("INSERT INTO public.submission (institution_id, kind, file_name, file_sha256, status, strict, rows_total, "
         "rows_loaded, rows_rejected, warnings, firms_new, firms_linked, report, received_at) VALUES "
         f"({bk1}, 'loans', 'f', 'x', 'loaded', false, 0, 0, 0, 0, 0, 0, '{{}}', now())", "row-level security"),
        (f"INSERT INTO public.default_event (firm_id, institution_id, submission_id, default_date, event_type) "
         f"VALUES ({firm1}, {bk1}, {sub1}, '2023-01-01', 'bankruptcy')", "row-level security"),
        (f"INSERT INTO public.borrower_link (institution_id, borrower_hash, firm_id) VALUES ({bk2}, '{'a' * 64}', "
         f"{firm1})", "row-level security"),
        ("SELECT public.creditdb_pseudonyms(ARRAY['borrower|BK1|BK1-B00001'])", "may pseudonymise only"),
        ("SELECT public.creditdb_pseudonyms(ARRAY['anything at all'])", "may pseudonymise only"),
    ]
    for sql, expected in attacks:
        with pytest.raises(DBAPIError) as info, w.engines["bk2"].connect() as conn:
            _plant(conn, w.roles["bk2"])
            conn.exec_driver_sql(sql)
        assert expected in str(info.value.orig), (sql, str(info.value.orig))
    # updating bank 1's submissions in a planted session touches nothing
    with w.engines["bk2"].connect() as conn:
        _plant(conn, w.roles["bk2"])
        n = conn.execute(text("UPDATE public.submission SET status = 'x' WHERE institution_id = :i"), {"i": bk1})
        assert n.rowcount == 0
        conn.rollback()
    # the agency cannot issue a guarantee under another institution's id
    loan = w.q("owner", "SELECT min(id) FROM loan WHERE institution_id = :i", i=bk1)[0][0]
    with pytest.raises(DBAPIError) as info, w.engines["agency"].connect() as conn:
        _plant(conn, w.roles["agency"])
        conn.execute(text("INSERT INTO public.guarantee (loan_id, agency_id, issued_on, coverage, fee_rate, schedule, "
                          "created_at) VALUES (:l, :a, '2024-01-01', 0.8, 0.01, 'x', now())"), {"l": loan, "a": bk2})
    assert "row-level security" in str(info.value.orig)
    # the positive paths still give the right answers in a planted session
    with w.engines["bk2"].connect() as conn:
        _plant(conn, w.roles["bk2"])
        mine = ["borrower|BK2|BK2-B00005", "corp|JP|9000000000001"]
        got = conn.execute(text("SELECT public.creditdb_pseudonyms(CAST(:v AS pg_catalog.text[]))"), {"v": mine})
        assert got.scalar_one() == [py_hmac(v) for v in mine]
        tail = conn.execute(text("SELECT id FROM public.creditdb_audit_tail()")).scalar_one()
        assert tail == w.q("owner", "SELECT max(id) FROM audit_event")[0][0]
        conn.rollback()


def test_a_planted_resolution_table_cannot_run_code_as_the_owner(world):
    """A temp table named like creditdb_firm_ids' own, with a trigger: the owner's function must not write to it."""
    w = world
    with pytest.raises(DBAPIError) as info, w.engines["bk2"].connect() as conn:
        conn.exec_driver_sql("CREATE TABLE pg_temp.loot (k pg_catalog.bytea)")
        conn.exec_driver_sql("CREATE TABLE pg_temp.creditdb_resolved_firm (firm_id pg_catalog.int4 PRIMARY KEY)")
        conn.exec_driver_sql("""CREATE FUNCTION pg_temp.steal() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO pg_temp.loot SELECT key FROM public.creditdb_pseudonym_key; RETURN NEW; END $$""")
        conn.exec_driver_sql("CREATE TRIGGER steal BEFORE INSERT ON pg_temp.creditdb_resolved_firm "
                             "FOR EACH ROW EXECUTE FUNCTION pg_temp.steal()")
        owner = w.q("owner", "SELECT current_user")[0][0]
        conn.exec_driver_sql(f'GRANT ALL ON pg_temp.creditdb_resolved_firm, pg_temp.loot TO "{owner}"')
        conn.execute(text("SELECT * FROM public.creditdb_firm_ids(ARRAY[:p])"), {"p": py_hmac("corp|JP|9000000000000")})
    assert "was not created by creditdb" in str(info.value.orig)


def test_catalog_check_every_function_view_policy_trigger(world):
    with world.owner.connect() as conn:
        res = search_path_findings(conn)
    assert res["findings"] == []
    r = world.cli("supervisor", "security", "check", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["functions"] == res["functions"], r.output
    # it looked at every object the access control consists of
    assert {"public.creditdb_my_institution()", "public.creditdb_rotate_key()",
            "public.creditdb_check_fact_rows()", "public.creditdb_model_four_eyes()"} <= set(res["functions"])
    assert len(res["functions"]) == 12
    assert len(res["policies"]) == 42 and "firm.institution_read" in res["policies"]
    assert {"audit_event.audit_event_no_change", "loan.loan_references",
            "model_version.model_version_four_eyes"} <= set(res["triggers"])
    assert res["views"] == []


def test_catalog_check_names_each_kind_of_unsafe_object(world):
    w = world
    stmts = [
        "CREATE FUNCTION public.cdbt_bad_rel() RETURNS bigint LANGUAGE plpgsql STABLE "
        "SET search_path = pg_catalog, pg_temp AS $$ BEGIN RETURN (SELECT count(*) FROM institution); END $$",
        "CREATE FUNCTION public.cdbt_bad_cast() RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp "
        "AS $$ SELECT CAST(1 AS text) $$",
        "CREATE FUNCTION public.cdbt_bad_path() RETURNS int LANGUAGE sql STABLE SET search_path = pg_catalog "
        "AS $$ SELECT 1 $$",
        "CREATE FUNCTION public.cdbt_open() RETURNS int LANGUAGE sql STABLE AS $$ SELECT 1 $$",
        "CREATE POLICY cdbt_pol ON public.loan FOR SELECT TO creditdb_agency USING ((SELECT public.cdbt_open()) = 1)",
        "CREATE VIEW public.cdbt_view AS SELECT public.cdbt_open() AS x",
        "CREATE FUNCTION public.cdbt_trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        "CREATE TRIGGER cdbt_trg BEFORE INSERT ON public.guarantee FOR EACH ROW EXECUTE FUNCTION public.cdbt_trg()",
    ]
    with w.owner.connect() as conn:
        for s in stmts:
            conn.exec_driver_sql(s)
        found = search_path_findings(conn)["findings"]
        conn.commit()
    try:
        r = w.cli("owner", "security", "check")
        assert r.exit_code == 1 and "cdbt_bad_rel" in r.output, r.output
    finally:
        with w.owner.begin() as conn:
            for sql in ("DROP TRIGGER cdbt_trg ON public.guarantee", "DROP FUNCTION public.cdbt_trg()",
                        "DROP VIEW public.cdbt_view", "DROP POLICY cdbt_pol ON public.loan",
                        "DROP FUNCTION public.cdbt_open(), public.cdbt_bad_path(), public.cdbt_bad_cast(), "
                        "public.cdbt_bad_rel()"):
                conn.exec_driver_sql(sql)
    joined = "\n".join(found)
    for expected in ("cdbt_bad_rel(): refers to the unqualified relation institution",
                     "cdbt_bad_cast(): casts to the unqualified type text",
                     "cdbt_bad_path(): search_path is 'pg_catalog'",
                     "cdbt_open(): search_path is not pinned",
                     "policy loan.cdbt_pol: calls cdbt_open()",
                     "view cdbt_view: calls cdbt_open()",
                     "trigger guarantee.cdbt_trg: runs cdbt_trg()"):
        assert expected in joined, (expected, found)


# ------------------------------------------------------------------ finding 5: denial of service

def test_the_old_advisory_key_blocks_nobody(world):
    w = world
    with w.engines["bk2"].connect() as attacker:
        attacker.execute(text("SELECT pg_advisory_lock(727001)"))  # still possible: it guards nothing now
        attacker.execute(text("SELECT pg_advisory_lock(727002, l.id) FROM loan l"))  # the old issue-lock keys
        for sql in ("SELECT * FROM public.creditdb_audit_lock FOR UPDATE", "LOCK TABLE public.creditdb_audit_lock",
                    "SELECT * FROM public.creditdb_loan_lock FOR UPDATE", "SELECT public.creditdb_lock_loan(1)"):
            with pytest.raises(DBAPIError) as info, w.engines["bk2"].begin() as c2:
                c2.execute(text(sql))
            assert "permission denied" in str(info.value.orig)
        # a junk append is refused before the chain lock is taken, so an attacker's open,
        # failed transaction holds nothing either
        tx = attacker.begin_nested()
        with pytest.raises(DBAPIError):
            attacker.execute(text("SELECT creditdb_audit_append(1, now(), CAST(session_user AS text), 'x', '{}', "
                                  "NULL, NULL, :z, 'x')"), {"z": "0" * 64})
        tx.rollback()
        attacker.execute(text("SELECT 1"))
        # meanwhile bank 1 appends (a CLI command that writes an event), without waiting
        result: dict = {}

        def bank1() -> None:
            result["r"] = w.cli("bk1", "institution", "list", "--json")  # read-only warm-up
            from creditdb import audit

            eng = create_engine(login_url(w.dbname, w.roles["bk1"]), connect_args={"options": "-c lock_timeout=20s"})
            with eng.begin() as conn:
                result["id"] = audit.append(conn, "bank one", "score.lookup", {"institution": "BK1", "n": 1})
            eng.dispose()

        t = threading.Thread(target=bank1)
        t.start()
        t.join(60)
        assert not t.is_alive() and result.get("id"), result
        attacker.rollback()
    ev = w.q("owner", "SELECT actor, db_role, details FROM audit_event WHERE id = :i", i=result["id"])[0]
    assert ev.actor == ev.db_role == w.roles["bk1"] and ev.details["as"] == "bank one"


def test_security_apply_sets_limits_per_login_and_revokes_large_objects(world, tmp_path):
    w = world
    policy = tmp_path / "roles.toml"
    policy.write_text('[roles.creditdb_institution]\nstatement_timeout = "7min"\n'
                      'idle_in_transaction_session_timeout = "45s"\nlock_timeout = "90s"\nconnection_limit = 55\n'
                      '[roles.creditdb_supervisor]\nstatement_timeout = "1h"\nconnection_limit = 33\n')
    r = w.cli("owner", "security", "apply", "--policy", str(policy), "--json")
    try:
        _check_applied(w, r, policy)
    finally:  # the shipped policy is restored for the other tests
        assert w.cli("owner", "security", "apply").exit_code == 0


def _check_applied(w, r, policy) -> None:
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert "superuser.sql" in out["applied"]
    logins = {row["login"]: row for row in out["limits"]}
    assert {w.roles["bk1"], w.roles["bk2"], w.roles["supervisor"]} <= set(logins)
    assert w.roles["operator"] not in logins  # no limits for the operator in this file
    with w.engines["bk1"].connect() as conn:
        shown = {k: conn.execute(text(f"SHOW {k}")).scalar_one()
                 for k in ("statement_timeout", "idle_in_transaction_session_timeout", "lock_timeout")}
    assert shown == {"statement_timeout": "7min", "idle_in_transaction_session_timeout": "45s", "lock_timeout": "90s"}
    limits = dict(w.q("owner", "SELECT rolname, rolconnlimit FROM pg_roles WHERE rolname = ANY(:r)",
                      r=list(w.roles.values())))
    assert limits[w.roles["bk1"]] == limits[w.roles["bk2"]] == 55 and limits[w.roles["supervisor"]] == 33
    # a bad policy is a clear error
    policy.write_text('[roles.creditdb_institution]\nstatement_timeout = "forever"\n')
    r = w.cli("owner", "security", "apply", "--policy", str(policy))
    assert r.exit_code == 1 and "statement_timeout must be an interval" in r.output
    # nobody may create large objects (persistent storage outside every table)
    for who in ("bk1", "agency", "supervisor", "operator"):
        for sql in ("SELECT lo_create(0)", "SELECT lo_creat(-1)", "SELECT lo_from_bytea(0, 'x')"):
            assert "permission denied" in w.refused(who, sql), (who, sql)


# ------------------------------------------------------------------ finding 6: who acted

def test_a_member_cannot_append_events_in_anothers_name(world):
    w = world
    before = w.q("owner", "SELECT count(*) FROM audit_event")[0][0]
    tail = w.q("bk2", "SELECT id, hash FROM creditdb_audit_tail()")[0]
    sql = "SELECT creditdb_audit_append(:id, now(), :actor, :action, '{}', NULL, NULL, :prev, :h)"
    msg = w.refused("bk2", sql, id=tail.id + 1, actor="Dr. H. Sato (supervisor)", action="model.approve",
                    prev=tail.hash, h="f" * 64)
    assert "actor must be the appending login" in msg
    msg = w.refused("bk2", sql, id=tail.id + 1, actor=w.roles["bk2"], action="model.approve", prev=tail.hash,
                    h="f" * 64)
    assert "only a supervisor login may record model.approve" in msg
    msg = w.refused("operator", sql, id=tail.id + 1, actor=w.roles["operator"], action="model.retire",
                    prev=tail.hash, h="f" * 64)
    assert "only a supervisor login" in msg
    assert w.q("owner", "SELECT count(*) FROM audit_event")[0][0] == before
    # the CLI's name is only an annotation; audit log shows the login
    r = w.cli("bk2", "audit", "log")
    assert r.exit_code == 0 and f"{w.roles['bk2']} (BK2)" in r.output and "(as 'bk2')" in r.output, r.output
    events = w.q("owner", "SELECT actor, db_role FROM audit_event WHERE id > 0")
    assert all(e.actor == e.db_role for e in events if e.db_role)


def test_audit_head_then_verify_detects_nothing_missing(world):
    w = world
    r = w.cli("supervisor", "audit", "head", "--json")
    head = json.loads(r.output)
    assert head["events"] == w.q("owner", "SELECT count(*) FROM audit_event")[0][0]
    r = w.cli("supervisor", "audit", "verify", "--head", head["head"], "--json")
    assert r.exit_code == 0 and json.loads(r.output)["ok"], r.output
    r = w.cli("supervisor", "audit", "verify", "--head", f"{head['events'] + 1}:{'0' * 64}", "--json")
    assert r.exit_code == 1 and "last events were deleted" in json.loads(r.output)["problem"]


# ------------------------------------------------------------------ finding 7: codes and scopes

def test_codes_with_a_scope_separator_are_refused_everywhere(world):
    w = world
    for code in ("X|Y", "bk3", "B K", "A" * 33, ""):
        r = w.cli("operator", "institution", "add", code, "--name", "n", "--kind", "bank", "--country", "JP",
                  "--json")
        assert r.exit_code == 1 and "invalid" in json.loads(r.output)["error"], (code, r.output)
    # the database holds the rule too (a direct insert by the operator)
    msg = w.refused("operator", "INSERT INTO institution (code, name, kind, country, created_at) "
                                "VALUES ('BK1|Y', 'n', 'bank', 'JP', now())")
    assert "ck_institution_code_format" in msg


@pytest.mark.parametrize("who, value, allowed", [
    ("agency", "corp|JP|9000000000001", True),
    ("agency", "loan|BK1|BK1-L00003", True),
    ("agency", "borrower|BK2|BK2-B00005", True),
    ("agency", "borrower|CGC1|x", False),  # not a bank
    ("agency", "anything", False),  # an HMAC oracle of arbitrary strings
    ("agency", "borrower|NOPE|x", False),
    ("operator", "borrower|NOPE|x", False),
    ("operator", "raw value", False),
    ("operator", "loan|BK2|BK2-L00001", True),
    ("bk1", "borrower|BK1|Y|key", True),  # BK1's own key "Y|key": no code "BK1|Y" can exist
    ("bk1", "borrower|BK2|BK2-B00005", False),
])
def test_every_role_hashes_only_in_its_scope(world, who, value, allowed):
    w = world
    sql = "SELECT creditdb_pseudonyms(ARRAY[CAST(:v AS text)])"
    if allowed:
        assert w.q(who, sql, v=value)[0][0] == [py_hmac(value)]
    else:
        assert "may pseudonymise only" in w.refused(who, sql, v=value)


# ------------------------------------------------------------------ finding 8: four eyes

def _candidate(w, version: str, who: str = "owner") -> None:
    w.q(who, """INSERT INTO model_version (version, created_at, created_by, status, artifact, artifact_sha256,
                spec, data_fingerprint, code_version, seed, metrics, validation_report)
                VALUES (:v, now(), 'op', 'candidate', 'x', 'x', '{}', 'x', 'x', 1, '{}',
                        '{"sample": {"defaults": 40}}')""", v=version)


def test_the_operator_neither_approves_nor_retires(world):
    w = world
    _candidate(w, "fe-op", who="operator")
    trained_by = w.q("owner", "SELECT trained_by_login FROM model_version WHERE version = 'fe-op'")
    assert trained_by == [(w.roles["operator"],)]
    r = w.cli("operator", "model", "approve", "fe-op", "--by", "Dr. H. Sato", "--json")
    assert r.exit_code == 1 and "only a supervisor login" in json.loads(r.output)["error"], r.output
    for sql in ("UPDATE model_version SET status = 'approved' WHERE version = 'fe-op'",
                "UPDATE model_version SET status = 'retired' WHERE status = 'approved'",
                "UPDATE model_version SET trained_by_login = 'someone' WHERE version = 'fe-op'"):
        assert "permission denied" in w.refused("operator", sql)
    # nor registers a model as approved
    msg = w.refused("operator", """INSERT INTO model_version (version, created_at, created_by, status, artifact,
                    artifact_sha256, spec, data_fingerprint, code_version, seed, metrics)
                    VALUES ('fe-op2', now(), 'op', 'approved', 'x', 'x', '{}', 'x', 'x', 1, '{}')""")
    assert "registered as a candidate" in msg
    # the supervisor approves it (another login than the one that trained it)
    r = w.cli("supervisor", "model", "approve", "fe-op", "--by", "Dr. H. Sato", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["login"] == w.roles["supervisor"], r.output
    # and the operator's validation write is limited to the validation results
    assert w.q("operator", "UPDATE model_version SET validation_report = validation_report WHERE version = 'fe-op' "
                           "RETURNING version") == [("fe-op",)]
    assert "permission denied" in w.refused("operator", "UPDATE model_version SET approved_by = 'x'")


def test_a_login_that_trained_a_model_cannot_approve_it(world):
    w = world
    role = f"cdbt_dual_{uuid.uuid4().hex[:8]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN IN ROLE creditdb_operator, creditdb_supervisor'))
    engine = create_engine(login_url(w.dbname, role))
    try:
        with engine.begin() as conn:
            conn.execute(text("""INSERT INTO model_version (version, created_at, created_by, status, artifact,
                artifact_sha256, spec, data_fingerprint, code_version, seed, metrics, validation_report)
                VALUES ('fe-dual', now(), 'x', 'candidate', 'x', 'x', '{}', 'x', 'x', 1, '{}',
                        '{"sample": {"defaults": 40}}')"""))
        with pytest.raises(DBAPIError) as info, engine.begin() as conn:
            conn.execute(text("UPDATE model_version SET status = 'approved' WHERE version = 'fe-dual'"))
        assert "may not approve it (four eyes)" in str(info.value.orig)
        from creditdb.approval import ApprovalError, approve

        with pytest.raises(ApprovalError, match="trained model fe-dual"), engine.begin() as conn:
            approve(conn, "fe-dual", by="me", note="")
    finally:
        engine.dispose()
        w.q("owner", "DELETE FROM model_version WHERE version = 'fe-dual'")
        with admin.connect() as conn:
            conn.execute(text(f'DROP ROLE "{role}"'))


def test_the_supervisor_writes_validation_results_and_approvals_only(world):
    w = world
    _candidate(w, "fe-sup")
    assert w.q("supervisor", "UPDATE model_version SET validation_report = '{\"sample\": {\"defaults\": 3}}' "
                             "WHERE version = 'fe-sup' RETURNING version") == [("fe-sup",)]
    for sql in ("UPDATE model_version SET artifact = 'evil'", "UPDATE model_version SET metrics = '{}'",
                "INSERT INTO score SELECT * FROM score LIMIT 1"):
        assert "permission denied" in w.refused("supervisor", sql)
    # a thin validation sample: the gate refuses, the override is recorded and printed
    r = w.cli("supervisor", "model", "approve", "fe-sup", "--by", "Dr. H. Sato", "--json")
    assert r.exit_code == 1 and "fewer than 30" in r.output
    r = w.cli("supervisor", "model", "approve", "fe-sup", "--by", "Dr. H. Sato", "--override", "committee minute 7")
    assert r.exit_code == 0 and "OVERRIDE of the approval gate: committee minute 7" in r.output, r.output
    assert "not written by 'creditdb model validate'" in r.output  # the report above was written by hand
    ev = w.q("owner", "SELECT details, db_role FROM audit_event WHERE action = 'model.approve' "
                      "ORDER BY id DESC LIMIT 1")
    assert ev[0].details["override"] == "committee minute 7" and ev[0].db_role == w.roles["supervisor"]


# ------------------------------------------------------------------ finding 9: operations

def test_bind_conflicts_and_refusals_are_clear_messages(world, tmp_path):
    w = world
    # the operator binds bank 2's login to bank 1: refused with both names, no traceback
    r = w.cli("operator", "security", "bind", "BK1", w.roles["bk2"])
    assert r.exit_code == 1 and (r.exception is None or isinstance(r.exception, SystemExit))
    assert "already bound to institution BK2" in r.output, r.output
    r = w.cli("operator", "institution", "add", "BK3", "--name", "B3", "--kind", "bank", "--country", "JP",
              "--db-role", w.roles["bk1"], "--json")
    assert r.exit_code == 1 and "already bound to institution BK1" in json.loads(r.output)["error"]
    assert w.q("owner", "SELECT count(*) FROM institution WHERE code = 'BK3'")[0][0] == 0  # rolled back
    # a bank submitting in another bank's name: a message naming both
    from tests import factories as F

    path = F.write_csv(F.statements(2, bank="BK1", start=70), tmp_path / "forged.csv")
    r = w.cli("bk2", "submit", "statements", str(path), "-i", "BK1", "--json")
    err = json.loads(r.output)["error"]
    assert r.exit_code == 1 and "acts for institution BK2" in err and "institution BK1" in err, r.output
    # a bank login cannot bind
    r = w.cli("bk2", "security", "bind", "BK2", w.roles["bk2"])
    assert r.exit_code == 1 and "permission denied" in r.output


def test_institution_add_with_a_login_is_audited_and_listed(world):
    w = world
    events = w.q("owner", "SELECT details->>'institution', details->>'db_role', db_role FROM audit_event "
                          "WHERE action = 'security.bind' ORDER BY id")
    # the three logins bound by 'institution add --db-role' in the setup, by the operator
    assert events[:3] == [("BK1", w.roles["bk1"], w.roles["operator"]), ("BK2", w.roles["bk2"], w.roles["operator"]),
                          ("CGC1", w.roles["agency"], w.roles["operator"])]
    listed = {r["code"]: r["db_role"] for r in json.loads(w.cli("operator", "institution", "list", "--json").output)}
    assert listed == {"BK1": w.roles["bk1"], "BK2": w.roles["bk2"], "CGC1": w.roles["agency"]}
    assert w.roles["bk1"] in w.cli("operator", "institution", "list").output


def test_the_whole_model_workflow_with_separate_logins(tmp_path):
    """The operator trains, the supervisor validates (writing only the results) and approves; the
    operator can do neither approval nor a fake retirement; the gate holds until overridden."""
    from tests.test_rating_db import CUTOFF, load

    w = World(tmp_path, uuid.uuid4().hex[:8])
    try:
        load(w.owner, tmp_path, firms=800)
        r = w.cli("operator", "model", "train", "--cutoff", CUTOFF, "--json")
        assert r.exit_code == 0, r.output
        version = json.loads(r.output)["version"]
        r = w.cli("supervisor", "model", "validate", version, "--json", "-")
        assert r.exit_code == 0, r.output
        results = json.loads(r.output)
        row = w.q("owner", "SELECT trained_by_login, validation_report IS NOT NULL, status FROM model_version "
                           "WHERE version = :v", v=version)
        assert row == [(w.roles["operator"], True, "candidate")]
        ev = w.q("owner", "SELECT action, db_role FROM audit_event WHERE action LIKE 'model.%' ORDER BY id")
        assert ev == [("model.train", w.roles["operator"]), ("model.validate", w.roles["supervisor"])]
        r = w.cli("operator", "model", "approve", version, "--by", "Dr. H. Sato", "--override", "x", "--json")
        assert r.exit_code == 1 and "only a supervisor login" in r.output, r.output
        r = w.cli("supervisor", "model", "approve", version, "--by", "Dr. H. Sato", "--json")
        assert r.exit_code == 1 and "fails the approval gate" in r.output  # 800 firms: too few defaults
        r = w.cli("supervisor", "model", "approve", version, "--by", "Dr. H. Sato", "--override",
                  "test portfolio", "--json")
        assert r.exit_code == 0, r.output
        out = json.loads(r.output)
        assert out["gate"]["defaults"] == results["sample"]["defaults"] and out["login"] == w.roles["supervisor"]
        # the report is the one 'model validate' stored (its audit event carries the report's hash)
        assert out["validation"]["matches"] and out["validation"]["by"] == w.roles["supervisor"]
    finally:
        w.close()


def test_a_world_drops_every_role_it_created(tmp_path):
    sfx = uuid.uuid4().hex[:8]
    w = World(tmp_path, sfx)
    made = set(w.roles.values())
    assert len(made) == 5 and all(sfx in r for r in made)
    with _pg_admin().connect() as conn:
        assert set(conn.execute(text("SELECT rolname FROM pg_roles WHERE rolname LIKE :p"),
                                {"p": f"%{sfx}"}).scalars()) == made
    w.close()
    with _pg_admin().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pg_roles WHERE rolname LIKE :p"),
                            {"p": f"%{sfx}"}).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM pg_database WHERE datname = :d"),
                            {"d": w.dbname}).scalar_one() == 0


def test_control_the_old_resolution_function_ran_the_planted_trigger_as_the_owner(world):
    """Control for test_a_planted_resolution_table_cannot_run_code_as_the_owner: the function as it was."""
    w = world
    w.q("owner", """CREATE FUNCTION public.cdbt_old_firm_ids(pseudonyms text[])
        RETURNS TABLE (pseudonym varchar, id integer)
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
        BEGIN
            IF pg_catalog.to_regclass('pg_temp.creditdb_resolved_firm') IS NULL THEN
                CREATE TEMP TABLE creditdb_resolved_firm (firm_id integer PRIMARY KEY) ON COMMIT DROP;
            END IF;
            RETURN QUERY
            WITH found AS (SELECT f.pseudonym, f.id FROM public.firm f WHERE f.pseudonym = ANY (pseudonyms)),
                 kept AS (INSERT INTO pg_temp.creditdb_resolved_firm (firm_id) SELECT found.id FROM found
                          ON CONFLICT DO NOTHING)
            SELECT found.pseudonym, found.id FROM found;
        END $fn$""")
    w.q("owner", "GRANT EXECUTE ON FUNCTION public.cdbt_old_firm_ids(text[]) TO creditdb_institution")
    owner = w.q("owner", "SELECT current_user")[0][0]
    try:
        with w.engines["bk2"].connect() as conn:
            conn.exec_driver_sql("CREATE TABLE pg_temp.loot (k pg_catalog.bytea)")
            conn.exec_driver_sql("CREATE TABLE pg_temp.creditdb_resolved_firm (firm_id pg_catalog.int4 PRIMARY KEY)")
            conn.exec_driver_sql("""CREATE FUNCTION pg_temp.steal() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN INSERT INTO pg_temp.loot SELECT key FROM public.creditdb_pseudonym_key; RETURN NEW; END $$""")
            conn.exec_driver_sql("CREATE TRIGGER steal BEFORE INSERT ON pg_temp.creditdb_resolved_firm "
                                 "FOR EACH ROW EXECUTE FUNCTION pg_temp.steal()")
            conn.exec_driver_sql(f'GRANT ALL ON pg_temp.creditdb_resolved_firm, pg_temp.loot TO "{owner}"')
            conn.execute(text("SELECT * FROM public.cdbt_old_firm_ids(ARRAY[:p])"),
                         {"p": py_hmac("corp|JP|9000000000000")})
            loot = conn.execute(text("SELECT k FROM pg_temp.loot")).scalars().all()
            conn.rollback()
        assert [bytes(k) for k in loot] == [TEST_KEY.encode()]  # the bank read the key
    finally:
        w.q("owner", "DROP FUNCTION public.cdbt_old_firm_ids(text[])")
