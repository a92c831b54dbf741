-- creditdb group roles (cluster-wide, NOLOGIN). Idempotent: safe to run again.
--
-- Login roles are members of exactly one of these groups:
--   creditdb_operator     runs the service: loads institutions, scores firms, trains models
--   creditdb_supervisor   reads everything; writes nothing but model approvals
--   creditdb_agency       a guarantee corporation: reads loans/scores, issues guarantees
--   creditdb_institution  a bank: reads and writes only its own rows
-- An institution's (or agency's) login is bound to its institution row by
-- institution.db_role (see deploy/OPERATIONS.md, "Adding an institution").
-- Needs CREATEROLE (or run by a superuser) the first time.
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['creditdb_operator', 'creditdb_supervisor', 'creditdb_agency',
                             'creditdb_institution'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by a concurrent migration of another database
            END;
        END IF;
    END LOOP;
END
$roles$;
