-- creditdb access control: grants, row-level security, SECURITY DEFINER functions.
--
-- Applied by the Alembic migration 0002 and by `creditdb security apply`, as the
-- owner of the tables (the role that runs migrations). Idempotent. roles.sql first.
-- This file is the same in deploy/sql/ and creditdb/sql/ (a test checks it).
--
-- Which institution a session belongs to is decided by its LOGIN role
-- (session_user = institution.db_role), never by a setting the session could change.
-- Every SECURITY DEFINER function pins search_path and qualifies every name.

CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;

-- Nobody but the owner may create objects in the schema (a planted function or
-- operator could otherwise capture calls of the definer functions).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO creditdb_operator, creditdb_supervisor, creditdb_agency, creditdb_institution;

------------------------------------------------------------------------------
-- The pseudonym key chain. Readable by the owner only: no role is granted anything.
-- Generation 1 is the original key; each rotation adds a generation, and a pseudonym
-- is HMAC(k_n, ... HMAC(k_2, HMAC(k_1, value)) ...) in hex at every step.
------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS public.creditdb_pseudonym_key (
    generation integer PRIMARY KEY,
    key bytea NOT NULL CHECK (octet_length(key) >= 16),
    created_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON public.creditdb_pseudonym_key FROM PUBLIC;
ALTER TABLE public.creditdb_pseudonym_key ENABLE ROW LEVEL SECURITY;  -- no policy: nothing for non-owners

------------------------------------------------------------------------------
-- Table privileges. Nothing for PUBLIC; no role may DELETE or TRUNCATE anything.
------------------------------------------------------------------------------
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM creditdb_operator, creditdb_supervisor, creditdb_agency, creditdb_institution;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO creditdb_operator, creditdb_agency, creditdb_institution;
GRANT SELECT ON public.alembic_version, public.institution
    TO creditdb_operator, creditdb_supervisor, creditdb_agency, creditdb_institution;

-- operator: loads institutions, registers models, writes scores; rows are never updated in
-- place except institutions (login binding) and model versions (status)
GRANT SELECT, INSERT ON public.institution, public.submission, public.firm, public.borrower_link,
    public.financial_statement, public.loan, public.default_event, public.model_version, public.score,
    public.guarantee TO creditdb_operator;
GRANT UPDATE ON public.institution, public.model_version TO creditdb_operator;
GRANT SELECT ON public.audit_event TO creditdb_operator;
-- institution profiles (migration 0013; absent when this file runs inside migration 0002):
-- how each bank's files are written; every role reads them, the operator sets them
DO $$ BEGIN
    IF to_regclass('public.institution_profile') IS NOT NULL THEN
        GRANT SELECT ON public.institution_profile
            TO creditdb_operator, creditdb_supervisor, creditdb_agency, creditdb_institution;
        GRANT INSERT, UPDATE ON public.institution_profile TO creditdb_operator;
    END IF;
END $$;

GRANT SELECT ON public.submission, public.firm, public.borrower_link, public.financial_statement, public.loan,
    public.default_event, public.model_version, public.score, public.guarantee, public.audit_event
    TO creditdb_supervisor;
GRANT UPDATE (status, approved_by, approved_at, approval_note) ON public.model_version TO creditdb_supervisor;

GRANT SELECT ON public.firm, public.borrower_link, public.financial_statement, public.loan, public.default_event,
    public.model_version, public.score, public.guarantee, public.audit_event TO creditdb_agency;
GRANT INSERT ON public.guarantee TO creditdb_agency;

GRANT SELECT, INSERT ON public.submission, public.firm, public.borrower_link, public.financial_statement,
    public.loan, public.default_event TO creditdb_institution;
GRANT UPDATE (status, rows_total, rows_loaded, rows_rejected, warnings, firms_new, firms_linked, report)
    ON public.submission TO creditdb_institution;
GRANT SELECT ON public.model_version, public.score, public.guarantee, public.audit_event TO creditdb_institution;

------------------------------------------------------------------------------
-- Session -> institution
------------------------------------------------------------------------------
-- Deliberately SECURITY INVOKER and without SET: so the planner inlines it (policies call it
-- in per-row checks). Every app role may read institution; names and the operator are
-- qualified, and nobody but the owner can create objects a caller's search_path reaches.
CREATE OR REPLACE FUNCTION public.creditdb_my_institution() RETURNS integer
    LANGUAGE sql STABLE
AS $fn$ SELECT i.id FROM public.institution i WHERE i.db_role::text OPERATOR(pg_catalog.=) session_user::text $fn$;
REVOKE ALL ON FUNCTION public.creditdb_my_institution() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.creditdb_my_institution()
    TO creditdb_operator, creditdb_supervisor, creditdb_agency, creditdb_institution;

------------------------------------------------------------------------------
-- Row-level security. (SELECT creditdb_my_institution()) is evaluated once per
-- statement (an InitPlan), not once per row.
------------------------------------------------------------------------------
DO $rls$
DECLARE
    t text;
    p record;
BEGIN
    FOREACH t IN ARRAY ARRAY['submission', 'firm', 'borrower_link', 'financial_statement', 'loan',
                             'default_event', 'score', 'guarantee', 'audit_event'] LOOP
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
        FOR p IN SELECT policyname FROM pg_catalog.pg_policies WHERE schemaname = 'public' AND tablename = t LOOP
            EXECUTE format('DROP POLICY %I ON public.%I', p.policyname, t);
        END LOOP;
        -- operator: all rows (its grants say which commands); supervisor: reads all rows
        EXECUTE format('CREATE POLICY operator_all ON public.%I TO creditdb_operator USING (true) WITH CHECK (true)', t);
        EXECUTE format('CREATE POLICY supervisor_read ON public.%I FOR SELECT TO creditdb_supervisor USING (true)', t);
    END LOOP;
    -- an institution reads its own rows ...
    FOREACH t IN ARRAY ARRAY['submission', 'borrower_link', 'financial_statement', 'loan', 'default_event'] LOOP
        EXECUTE format('CREATE POLICY institution_read ON public.%I FOR SELECT TO creditdb_institution '
                       'USING (institution_id = (SELECT public.creditdb_my_institution()))', t);
    END LOOP;
    -- ... and writes statements, loans and defaults in its own name, in its own submissions,
    -- of firms it has linked a borrower to (not of any firm id it might guess)
    FOREACH t IN ARRAY ARRAY['financial_statement', 'loan', 'default_event'] LOOP
        EXECUTE format('CREATE POLICY institution_insert ON public.%I FOR INSERT TO creditdb_institution '
                       'WITH CHECK (institution_id = (SELECT public.creditdb_my_institution()) '
                       'AND EXISTS (SELECT 1 FROM public.borrower_link bl WHERE bl.firm_id = %I.firm_id '
                       'AND bl.institution_id = (SELECT public.creditdb_my_institution())) '
                       'AND EXISTS (SELECT 1 FROM public.submission s WHERE s.id = %I.submission_id '
                       'AND s.institution_id = (SELECT public.creditdb_my_institution())))', t, t, t);
    END LOOP;
    -- an agency reads what guarantee pricing needs (loans, statements, scores, links)
    FOREACH t IN ARRAY ARRAY['firm', 'borrower_link', 'financial_statement', 'loan', 'default_event', 'score',
                             'guarantee'] LOOP
        EXECUTE format('CREATE POLICY agency_read ON public.%I FOR SELECT TO creditdb_agency USING (true)', t);
    END LOOP;
END
$rls$;

CREATE POLICY institution_insert ON public.submission FOR INSERT TO creditdb_institution
    WITH CHECK (institution_id = (SELECT public.creditdb_my_institution()));
CREATE POLICY institution_update ON public.submission FOR UPDATE TO creditdb_institution
    USING (institution_id = (SELECT public.creditdb_my_institution()))
    WITH CHECK (institution_id = (SELECT public.creditdb_my_institution()));
-- A bank sees a firm only once it has linked one of its own borrowers to it: the firm
-- table is not a directory of everybody's borrowers (see docs/security.md, "Oracles").
CREATE POLICY institution_read ON public.firm FOR SELECT TO creditdb_institution
    USING (EXISTS (SELECT 1 FROM public.borrower_link bl
                   WHERE bl.firm_id = firm.id AND bl.institution_id = (SELECT public.creditdb_my_institution())));
CREATE POLICY institution_insert ON public.firm FOR INSERT TO creditdb_institution WITH CHECK (true);
CREATE POLICY institution_read ON public.score FOR SELECT TO creditdb_institution
    USING (EXISTS (SELECT 1 FROM public.borrower_link bl
                   WHERE bl.firm_id = score.firm_id AND bl.institution_id = (SELECT public.creditdb_my_institution())));
CREATE POLICY institution_read ON public.guarantee FOR SELECT TO creditdb_institution
    USING (EXISTS (SELECT 1 FROM public.loan l
                   WHERE l.id = guarantee.loan_id AND l.institution_id = (SELECT public.creditdb_my_institution())));
CREATE POLICY agency_insert ON public.guarantee FOR INSERT TO creditdb_agency
    WITH CHECK (agency_id = (SELECT public.creditdb_my_institution()));
-- audit: a bank or agency reads only the events its own login appended
CREATE POLICY own_read ON public.audit_event FOR SELECT TO creditdb_institution, creditdb_agency
    USING (db_role = session_user);

------------------------------------------------------------------------------
-- Pseudonyms: HMAC-SHA256 with the key chain, computed where the caller cannot see the key
------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION public.creditdb_pseudonyms(vals text[]) RETURNS text[]
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    keys bytea[];
    k bytea;
    res text[] := vals;
    code text;
    bad text;
BEGIN
    SELECT array_agg(c.key ORDER BY c.generation) INTO keys FROM public.creditdb_pseudonym_key c;
    IF keys IS NULL THEN
        RAISE EXCEPTION 'creditdb: no pseudonym key in the database (run creditdb init as the owner)'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- A bank may hash corporate numbers and its OWN borrower and loan keys only: it cannot
    -- compute another bank's institution-scoped hashes.
    IF pg_catalog.pg_has_role(session_user, 'creditdb_institution', 'MEMBER')
       AND NOT pg_catalog.pg_has_role(session_user, 'creditdb_operator', 'MEMBER')
       AND NOT pg_catalog.pg_has_role(session_user, 'creditdb_agency', 'MEMBER') THEN
        SELECT i.code INTO code FROM public.institution i WHERE i.db_role = session_user;
        SELECT v INTO bad FROM unnest(vals) AS u(v)
         WHERE v IS NOT NULL AND NOT (v LIKE 'corp|%'
               OR (code IS NOT NULL AND (starts_with(v, 'borrower|' || code || '|')
                                         OR starts_with(v, 'loan|' || code || '|'))))
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'creditdb: % may pseudonymise only corporate numbers and its own keys',
                session_user USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    FOREACH k IN ARRAY keys LOOP
        SELECT coalesce(array_agg(CASE WHEN v IS NULL THEN NULL
                                       ELSE encode(public.hmac(convert_to(v, 'UTF8'), k, 'sha256'), 'hex') END
                                  ORDER BY i), '{}')
          INTO res FROM unnest(res) WITH ORDINALITY AS u(v, i);
    END LOOP;
    RETURN res;
END
$fn$;
REVOKE ALL ON FUNCTION public.creditdb_pseudonyms(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.creditdb_pseudonyms(text[]) TO creditdb_operator, creditdb_agency, creditdb_institution;

-- Firms by pseudonym, for linking a submission to a firm another institution submitted.
-- The ids handed out are remembered for the rest of the transaction in a temporary table
-- owned by the function's owner: a bank may link a borrower only to a firm it resolved
-- this way (it knew the corporate number) or whose pseudonym is the borrower hash itself.
CREATE OR REPLACE FUNCTION public.creditdb_firm_ids(pseudonyms text[])
    RETURNS TABLE (pseudonym varchar, id integer)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF pg_catalog.to_regclass('pg_temp.creditdb_resolved_firm') IS NULL THEN  -- (no NOTICE per call)
        CREATE TEMP TABLE creditdb_resolved_firm (firm_id integer PRIMARY KEY) ON COMMIT DROP;
    END IF;
    RETURN QUERY
    WITH found AS (SELECT f.pseudonym, f.id FROM public.firm f WHERE f.pseudonym = ANY (pseudonyms)),
         kept AS (INSERT INTO pg_temp.creditdb_resolved_firm (firm_id) SELECT found.id FROM found
                  ON CONFLICT DO NOTHING)
    SELECT found.pseudonym, found.id FROM found;
END
$fn$;
REVOKE ALL ON FUNCTION public.creditdb_firm_ids(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.creditdb_firm_ids(text[]) TO creditdb_operator, creditdb_institution;

CREATE OR REPLACE FUNCTION public.creditdb_may_link(p_firm integer, p_hash text) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    t regclass;
BEGIN
    IF EXISTS (SELECT 1 FROM public.firm f WHERE f.id = p_firm AND f.pseudonym = p_hash) THEN
        RETURN true;
    END IF;
    t := pg_catalog.to_regclass('pg_temp.creditdb_resolved_firm');
    -- a table of that name the session made itself does not count
    IF t IS NULL OR (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = t)
                    IS DISTINCT FROM (SELECT p.proowner FROM pg_catalog.pg_proc p
                                      WHERE p.oid = 'public.creditdb_firm_ids(text[])'::regprocedure) THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT 1 FROM pg_temp.creditdb_resolved_firm r WHERE r.firm_id = p_firm);
END
$fn$;
REVOKE ALL ON FUNCTION public.creditdb_may_link(integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.creditdb_may_link(integer, text) TO creditdb_institution;
DROP POLICY IF EXISTS institution_insert ON public.borrower_link;
CREATE POLICY institution_insert ON public.borrower_link FOR INSERT TO creditdb_institution
    WITH CHECK (institution_id = (SELECT public.creditdb_my_institution())
                AND public.creditdb_may_link(firm_id, borrower_hash));

-- First key (owner only). Refuses when a key exists: a second key is a rotation.
CREATE OR REPLACE FUNCTION public.creditdb_set_key(new_key bytea) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF EXISTS (SELECT 1 FROM public.creditdb_pseudonym_key) THEN
        RAISE EXCEPTION 'creditdb: the pseudonym key is already set; use creditdb_rotate_key()'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    INSERT INTO public.creditdb_pseudonym_key (generation, key)
    VALUES (1, coalesce(new_key, public.gen_random_bytes(32)));
    RETURN 1;
END
$fn$;
REVOKE ALL ON FUNCTION public.creditdb_set_key(bytea) FROM PUBLIC;

-- Key rotation: a new random key that nobody ever sees. Every stored pseudonym and keyed
-- hash is re-keyed in one transaction (new = HMAC(k_new, old)); the chain then applies
-- k_new after the older keys. Returns the new generation and the re-keyed row counts.
CREATE OR REPLACE FUNCTION public.creditdb_rotate_key() RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    k bytea := public.gen_random_bytes(32);
    gen integer;
    n_firm bigint; n_link bigint; n_loan bigint; n_default bigint;
BEGIN
    -- wait for submissions in flight (they hold locks on submission) and keep new ones out
    LOCK TABLE public.submission, public.firm, public.borrower_link, public.loan, public.default_event,
        public.creditdb_pseudonym_key IN EXCLUSIVE MODE;
    SELECT max(generation) + 1 INTO gen FROM public.creditdb_pseudonym_key;
    IF gen IS NULL THEN
        RAISE EXCEPTION 'creditdb: no pseudonym key to rotate' USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE public.firm SET pseudonym = encode(public.hmac(convert_to(pseudonym, 'UTF8'), k, 'sha256'), 'hex');
    GET DIAGNOSTICS n_firm = ROW_COUNT;
    UPDATE public.borrower_link
       SET borrower_hash = encode(public.hmac(convert_to(borrower_hash, 'UTF8'), k, 'sha256'), 'hex');
    GET DIAGNOSTICS n_link = ROW_COUNT;
    UPDATE public.loan SET loan_hash = encode(public.hmac(convert_to(loan_hash, 'UTF8'), k, 'sha256'), 'hex');
    GET DIAGNOSTICS n_loan = ROW_COUNT;
    UPDATE public.default_event
       SET loan_hash = encode(public.hmac(convert_to(loan_hash, 'UTF8'), k, 'sha256'), 'hex')
     WHERE loan_hash IS NOT NULL;
    GET DIAGNOSTICS n_default = ROW_COUNT;
    INSERT INTO public.creditdb_pseudonym_key (generation, key) VALUES (gen, k);
    RETURN jsonb_build_object('generation', gen, 'firm', n_firm, 'borrower_link', n_link, 'loan', n_loan,
                              'default_event', n_default);
END
$fn$;
REVOKE ALL ON FUNCTION public.creditdb_rotate_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.creditdb_rotate_key() TO creditdb_operator;

------------------------------------------------------------------------------
-- Audit trail: append-only for everybody, the owner included
------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION public.creditdb_audit_tail(OUT id integer, OUT hash varchar)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT a.id, a.hash FROM public.audit_event a ORDER BY a.id DESC LIMIT 1 $fn$;

-- Appends one event computed by creditdb.audit. The chain linkage (id, prev_hash) is
-- checked here, so no caller can fork or break the chain; the login that appended is
-- recorded in db_role, outside the hashed content.
CREATE OR REPLACE FUNCTION public.creditdb_audit_append(
    p_id integer, p_ts timestamptz, p_actor text, p_action text, p_details json,
    p_input_hash text, p_output_hash text, p_prev_hash text, p_hash text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    last_id integer;
    last_hash varchar;
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(727001);
    SELECT a.id, a.hash INTO last_id, last_hash FROM public.audit_event a ORDER BY a.id DESC LIMIT 1;
    IF p_id IS DISTINCT FROM coalesce(last_id, 0) + 1
       OR p_prev_hash IS DISTINCT FROM coalesce(last_hash, repeat('0', 64)) THEN
        RAISE EXCEPTION 'creditdb: audit event % does not extend the chain (last event %)', p_id, last_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    INSERT INTO public.audit_event (id, ts, actor, action, details, input_hash, output_hash, prev_hash, hash, db_role)
    VALUES (p_id, p_ts, p_actor, p_action, p_details, p_input_hash, p_output_hash, p_prev_hash, p_hash, session_user);
END
$fn$;
REVOKE ALL ON FUNCTION public.creditdb_audit_tail() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.creditdb_audit_append(integer, timestamptz, text, text, json, text, text, text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.creditdb_audit_tail()
    TO creditdb_operator, creditdb_supervisor, creditdb_agency, creditdb_institution;
GRANT EXECUTE ON FUNCTION public.creditdb_audit_append(integer, timestamptz, text, text, json, text, text, text, text)
    TO creditdb_operator, creditdb_supervisor, creditdb_agency, creditdb_institution;

CREATE OR REPLACE FUNCTION public.creditdb_audit_immutable() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RAISE EXCEPTION 'creditdb: audit events are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$fn$;
DROP TRIGGER IF EXISTS audit_event_no_change ON public.audit_event;
CREATE TRIGGER audit_event_no_change BEFORE UPDATE OR DELETE ON public.audit_event
    FOR EACH ROW EXECUTE FUNCTION public.creditdb_audit_immutable();
DROP TRIGGER IF EXISTS audit_event_no_truncate ON public.audit_event;
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON public.audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION public.creditdb_audit_immutable();
