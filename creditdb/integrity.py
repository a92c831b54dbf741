"""Set-based reference checks on the large fact tables, in place of per-row foreign keys.

``financial_statement``, ``loan`` and ``default_event`` are written a million rows at a
time. PostgreSQL checks a foreign key with one query per inserted row (three keys a
table: about 6x the time of a raw COPY for a million statements, BENCHMARKS.md); the
database checks the same references here once per statement instead, after each
``INSERT`` or ``COPY``, over all the rows it wrote (a statement-level ``AFTER INSERT``
trigger with a transition table, ``REFERENCING NEW TABLE``). Each row must

* belong to a stored submission *of its own institution* and of the table's kind
  (``statements``, ``loans``, ``defaults``) — a foreign key per column could not see a
  statement filed under another institution's submission or a loan file's submission;
* refer to a firm its institution has linked a borrower to (``borrower_link``, which
  keeps its foreign key to ``firm``): the firm exists, and the row's institution knows it.

A failure raises SQLSTATE 23503 (``foreign_key_violation``, an ``IntegrityError``), so
the statement and the caller's transaction fail and nothing is written. The check sees
what the writing transaction sees: a submission or firm another transaction has not
committed (and may roll back) does not exist for it. The trigger function is
``SECURITY DEFINER`` (owned by the schema owner, not subject to row-level security), so
it sees every firm link and submission whichever role writes; a bank's own load is also
held by the row-level policies (``creditdb/sql/rls.sql``). It fires for every role,
the owner included; only a superuser can switch triggers off.

Nothing a checked row refers to can go away afterwards: no application role has
``DELETE`` or ``TRUNCATE`` on any table, nor ``UPDATE`` of the referenced columns
(``submission.id``, ``institution_id``, ``kind``; ``borrower_link``; ``firm.id``);
``submission`` keeps its foreign key to ``institution``.

SQLite has no statement-level triggers: the same two checks run as ``BEFORE INSERT``
triggers per row (two index probes in-process, about what its foreign keys cost).
"""

from __future__ import annotations

from sqlalchemy import Connection

#: fact table -> the submission kind its rows must belong to
FACT_TABLES = {"financial_statement": "statements", "loan": "loans", "default_event": "defaults"}

#: the foreign keys the checks replace (migration 0010): (table, name, column, referred table)
REPLACED_KEYS = tuple(
    (table, f"fk_{table}_{col}_{target}", col, target)
    for table in FACT_TABLES
    for col, target in (("firm_id", "firm"), ("institution_id", "institution"), ("submission_id", "submission"))
)

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION public.creditdb_check_fact_rows() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    bad record;
BEGIN
    SELECT n.submission_id, n.institution_id INTO bad
      FROM (SELECT DISTINCT r.submission_id, r.institution_id FROM new_rows r) n
     WHERE NOT EXISTS (SELECT 1 FROM public.submission s
                        WHERE s.id = n.submission_id AND s.institution_id = n.institution_id
                          AND s.kind = TG_ARGV[0])
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'creditdb: % rows refer to submission % of institution %, '
                        'which is not a stored % submission of that institution',
            TG_TABLE_NAME, bad.submission_id, bad.institution_id, TG_ARGV[0]
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT n.firm_id, n.institution_id INTO bad
      FROM (SELECT DISTINCT r.firm_id, r.institution_id FROM new_rows r) n
     WHERE NOT EXISTS (SELECT 1 FROM public.borrower_link bl
                        WHERE bl.firm_id = n.firm_id AND bl.institution_id = n.institution_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'creditdb: % rows refer to firm % which institution % has not linked '
                        'a borrower to (or which is not stored)',
            TG_TABLE_NAME, bad.firm_id, bad.institution_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION public.creditdb_check_fact_rows() FROM PUBLIC;
"""


def _pg_trigger(table: str, kind: str) -> str:
    return (f"DROP TRIGGER IF EXISTS {table}_references ON public.{table};\n"
            f"CREATE TRIGGER {table}_references AFTER INSERT ON public.{table} "
            f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
            f"EXECUTE FUNCTION public.creditdb_check_fact_rows('{kind}');")


def _sqlite_trigger(table: str, kind: str) -> str:
    return (f"CREATE TRIGGER IF NOT EXISTS {table}_references BEFORE INSERT ON {table} BEGIN "
            f"SELECT RAISE(ABORT, 'creditdb: {table} row refers to a submission that is not a stored {kind} "
            f"submission of its institution') WHERE NOT EXISTS (SELECT 1 FROM submission s "
            f"WHERE s.id = NEW.submission_id AND s.institution_id = NEW.institution_id AND s.kind = '{kind}'); "
            f"SELECT RAISE(ABORT, 'creditdb: {table} row refers to a firm its institution has not linked "
            f"(or which is not stored)') WHERE NOT EXISTS (SELECT 1 FROM borrower_link bl "
            f"WHERE bl.firm_id = NEW.firm_id AND bl.institution_id = NEW.institution_id); END")


def _pg_execute(conn: Connection, sql: str) -> None:
    """Run ``sql`` through the driver's simple query path (its ``%`` reach the server untouched)."""
    raw = conn.connection.driver_connection
    assert raw is not None, "the connection was closed"
    with raw.cursor() as cur:
        cur.execute(sql)


def install(conn: Connection) -> None:
    """Create the reference checks of every fact table (idempotent); run by migration 0010."""
    if conn.dialect.name == "postgresql":
        _pg_execute(conn, _PG_FUNCTION)
        for table, kind in FACT_TABLES.items():
            _pg_execute(conn, _pg_trigger(table, kind))
    else:
        for table, kind in FACT_TABLES.items():
            conn.exec_driver_sql(_sqlite_trigger(table, kind))


def uninstall(conn: Connection) -> None:
    """Drop the reference checks (migration 0010's downgrade, before the foreign keys come back)."""
    for table in FACT_TABLES:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_references ON public.{table}")
        else:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_references")
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("DROP FUNCTION IF EXISTS public.creditdb_check_fact_rows()")


__all__ = ["FACT_TABLES", "REPLACED_KEYS", "install", "uninstall"]
