-- creditdb published statistics: who reads and writes stat_publication / stat_cell.
--
-- Applied after rls.sql (which revokes every table privilege first) by the migration
-- 0012_member_isolation and by `creditdb security apply`, as the tables' owner. Idempotent;
-- does nothing before the tables exist (earlier migrations apply the SQL files too).
-- The tables hold only what may be shown to every member (models/disclosure.py suppresses
-- before anything is stored), so every member reads every row: no row-level policy.
-- Only the operator publishes; nobody updates or deletes a publication.
DO $pub$
BEGIN
    IF pg_catalog.to_regclass('public.stat_publication') IS NOT NULL THEN
        REVOKE ALL ON public.stat_publication, public.stat_cell FROM PUBLIC;
        GRANT SELECT ON public.stat_publication, public.stat_cell
            TO creditdb_operator, creditdb_supervisor, creditdb_agency, creditdb_institution;
        GRANT INSERT ON public.stat_publication, public.stat_cell TO creditdb_operator;
    END IF;
END
$pub$;

-- A member reads of the shared firm row only what is not an attribute some member gave:
-- the firm's attributes are on each institution's own statements (migration 0012).
DO $firm$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
               WHERE a.attrelid = 'public.financial_statement'::regclass AND a.attname = 'size_class'
                 AND NOT a.attisdropped) THEN
        REVOKE SELECT ON public.firm FROM creditdb_institution;
        GRANT SELECT (id, pseudonym, country, created_at) ON public.firm TO creditdb_institution;
    END IF;
END
$firm$;

-- A member reads only the scores computed from its own statements (score.institution_id,
-- migration 0012), not those of a firm it merely linked: another member's figures reach it
-- only through the pooled model. Every name and operator is schema-qualified.
DO $score$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
               WHERE a.attrelid = 'public.score'::regclass AND a.attname = 'institution_id'
                 AND NOT a.attisdropped) THEN
        DROP POLICY IF EXISTS institution_read ON public.score;
        CREATE POLICY institution_read ON public.score FOR SELECT TO creditdb_institution
            USING (score.institution_id OPERATOR(pg_catalog.=) (SELECT public.creditdb_my_institution()));
    END IF;
END
$score$;
