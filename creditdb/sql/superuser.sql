-- creditdb hardening that needs a superuser (the owner of pg_catalog's functions).
-- Applied by `creditdb security apply` when it runs as a superuser; otherwise a DBA runs
-- it by hand in each creditdb database:  psql -d credit -f deploy/sql/superuser.sql
-- Idempotent. Effective in the current database only.

-- Large objects are persistent storage outside every table, quota and policy: any role
-- may create them by default (issue 17, item 5). Nobody needs them here.
REVOKE EXECUTE ON FUNCTION pg_catalog.lo_create(pg_catalog.oid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.lo_creat(pg_catalog.int4) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.lo_from_bytea(pg_catalog.oid, pg_catalog.bytea) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.lo_import(pg_catalog.text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.lo_import(pg_catalog.text, pg_catalog.oid) FROM PUBLIC;
