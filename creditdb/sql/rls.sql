-- creditdb access control: grants, row-level security, SECURITY DEFINER functions.
--
-- Applied by the Alembic migrations 0002 and 0011 and by `creditdb security apply`, as
-- the owner of the tables (the role that runs migrations). Idempotent. roles.sql first.
-- This file is the same in deploy/sql/ and creditdb/sql/ (a test checks it).
--
-- Which institution a session belongs to is decided by its LOGIN role
-- (session_user = institution.db_role), never by a setting the session could change.
-- Every function here (definer or not) pins search_path = pg_catalog, pg_temp (pg_temp
-- explicitly LAST: unlisted, a session's pg_temp is searched FIRST for relations and
-- types, and every session may create objects there) and qualifies every relation and
-- every type it names; operators and built-in functions are never looked up in pg_temp.
-- `creditdb security check` (creditdb.security.search_path_findings) holds this.

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

-- operator: loads institutions, registers and validates models, writes scores; rows are never
-- updated in place except institutions (login binding) and a model's validation results.
-- It neither approves nor retires (issue 17, item 8: four eyes).
GRANT SELECT, INSERT ON public.institution, public.submission, public.firm, public.borrower_link,
    public.financial_statement, public.loan, public.default_event, public.model_version, public.score,
    public.guarantee TO creditdb_operator;
GRANT UPDATE ON public.institution TO creditdb_operator;
GRANT UPDATE (validation_report) ON public.model_version TO creditdb_operator;
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
-- supervisor: approves and retires models, and may validate them (validation results only)
GRANT UPDATE (status, approved_by, approved_at, approval_note, validation_report) ON public.model_version
    TO creditdb_supervisor;

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
-- Policies call it once per statement (an InitPlan, "(SELECT ...)"), so it need not be
-- inlined: it pins search_path like every function here (pg_temp explicitly LAST, where it
-- is never searched for types or relations before pg_catalog), and qualifies every name.
-- A caller's pg_temp is always on its own search_path and writable by it (it needs TEMP
-- for loads): an unpinned body would resolve a planted pg_temp.text there (issue 17).
CREATE OR REPLACE FUNCTION public.creditdb_my_institution() RETURNS pg_catalog.int4
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT i.id FROM public.institution i
        WHERE CAST(i.db_role AS pg_catalog.text) OPERATOR(pg_catalog.=) CAST(session_user AS pg_catalog.text) $fn$;
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
CREATE OR REPLACE FUNCTION public.creditdb_pseudonyms(vals pg_catalog.text[]) RETURNS pg_catalog.text[]
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    keys pg_catalog.bytea[];
    k pg_catalog.bytea;
    res pg_catalog.text[] := vals;
    who pg_catalog.text;
    own pg_catalog.text;
    bad pg_catalog.text;
BEGIN
    SELECT pg_catalog.array_agg(c.key ORDER BY c.generation) INTO keys FROM public.creditdb_pseudonym_key c;
    IF keys IS NULL THEN
        RAISE EXCEPTION 'creditdb: no pseudonym key in the database (run creditdb init as the owner)'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- Scopes (issue 17, item 7). Every value is "corp|<country>|<number>" or
    -- "borrower|<code>|<key>" / "loan|<code>|<key>" with <code> a registered institution
    -- (codes are [A-Z0-9_-]{1,32}: no "|", so no code is a prefix of another's scope).
    -- A bank hashes corporate numbers and its OWN keys; an agency corporate numbers and
    -- banks' keys (the loans it guarantees); the operator and the owner any registered scope.
    IF pg_catalog.pg_has_role(session_user, 'creditdb_operator', 'MEMBER')
       OR NOT (pg_catalog.pg_has_role(session_user, 'creditdb_institution', 'MEMBER')
               OR pg_catalog.pg_has_role(session_user, 'creditdb_agency', 'MEMBER')) THEN
        who := 'operator';
    ELSIF pg_catalog.pg_has_role(session_user, 'creditdb_agency', 'MEMBER') THEN
        who := 'agency';
    ELSE
        who := 'bank';
        SELECT CAST(i.code AS pg_catalog.text) INTO own FROM public.institution i
         WHERE CAST(i.db_role AS pg_catalog.text) = CAST(session_user AS pg_catalog.text);
    END IF;
    SELECT u.v INTO bad FROM pg_catalog.unnest(vals) AS u(v)
     WHERE u.v IS NOT NULL
       AND NOT (u.v ~ '^corp\|[^|]+\|.+$'
                OR (u.v ~ '^(borrower|loan)\|[A-Z0-9_-]{1,32}\|.+$' AND EXISTS (
                      SELECT 1 FROM public.institution i
                       WHERE CAST(i.code AS pg_catalog.text) = pg_catalog.split_part(u.v, '|', 2)
                         AND (who = 'operator'
                              OR (who = 'agency' AND CAST(i.kind AS pg_catalog.text) = 'bank')
                              OR (who = 'bank' AND CAST(i.code AS pg_catalog.text) = own)))))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'creditdb: % (%) may pseudonymise only corporate numbers and %', session_user, who,
            CASE who WHEN 'bank' THEN 'its own borrower and loan keys (institution ' || coalesce(own, 'none bound') || ')'
                     WHEN 'agency' THEN 'banks'' borrower and loan keys'
                     ELSE 'keys of registered institutions' END
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'refused value scope: ' || pg_catalog.split_part(bad, '|', 1) || '|'
                           || pg_catalog.split_part(bad, '|', 2);
    END IF;
    FOREACH k IN ARRAY keys LOOP
        SELECT coalesce(pg_catalog.array_agg(CASE WHEN u.v IS NULL THEN NULL
                        ELSE pg_catalog.encode(public.hmac(pg_catalog.convert_to(u.v, 'UTF8'), k,
                                                           CAST('sha256' AS pg_catalog.text)), 'hex') END
                        ORDER BY u.i), CAST('{}' AS pg_catalog.text[]))
          INTO res FROM pg_catalog.unnest(res) WITH ORDINALITY AS u(v, i);
    END LOOP;
    RETURN res;
END
$fn$;
REVOKE ALL ON FUNCTION public.creditdb_pseudonyms(pg_catalog.text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.creditdb_pseudonyms(pg_catalog.text[]) TO creditdb_operator, creditdb_agency, creditdb_institution;

-- Firms by pseudonym, for linking a submission to a firm another institution submitted.
-- The ids handed out are remembered for the rest of the transaction in a temporary table
-- owned by the function's owner: a bank may link a borrower only to a firm it resolved
-- this way (it knew the corporate number) or whose pseudonym is the borrower hash itself.
CREATE OR REPLACE FUNCTION public.creditdb_firm_ids(pseudonyms pg_catalog.text[])
    RETURNS TABLE (pseudonym pg_catalog.varchar, id pg_catalog.int4)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    t pg_catalog.regclass := pg_catalog.to_regclass('pg_temp.creditdb_resolved_firm');
BEGIN
    IF t IS NULL THEN  -- (to_regclass first: no NOTICE per call)
        CREATE TEMP TABLE creditdb_resolved_firm (firm_id pg_catalog.int4 PRIMARY KEY) ON COMMIT DROP;
    ELSIF (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = t) IS DISTINCT FROM
          (SELECT p.proowner FROM pg_catalog.pg_proc p
            WHERE p.oid = CAST('public.creditdb_firm_ids(pg_catalog.text[])' AS pg_catalog.regprocedure)) THEN
        -- a table of that name the caller planted: writing into it would fire the caller's
        -- triggers with this function's (the owner's) privileges
        RAISE EXCEPTION 'creditdb: pg_temp.creditdb_resolved_firm was not created by creditdb; drop it'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN QUERY
    WITH found AS (SELECT f.pseudonym, f.id FROM public.firm f
                    WHERE CAST(f.pseudonym AS pg_catalog.text) = ANY (pseudonyms)),
         kept AS (INSERT INTO pg_temp.creditdb_resolved_firm (firm_id) SELECT found.id FROM found
                  ON CONFLICT DO NOTHING)
    SELECT found.pseudonym, found.id FROM found;
END
$fn$;
REVOKE ALL ON FUNCTION public.creditdb_firm_ids(pg_catalog.text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.creditdb_firm_ids(pg_catalog.text[]) TO creditdb_operator, creditdb_institution;

CREATE OR REPLACE FUNCTION public.creditdb_may_link(p_firm pg_catalog.int4, p_hash pg_catalog.text)
    RETURNS pg_catalog.bool
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    t pg_catalog.regclass;
BEGIN
    IF EXISTS (SELECT 1 FROM public.firm f
                WHERE f.id = p_firm AND CAST(f.pseudonym AS pg_catalog.text) = p_hash) THEN
        RETURN true;
    END IF;
    t := pg_catalog.to_regclass('pg_temp.creditdb_resolved_firm');
    -- a table of that name the session made itself does not count
    IF t IS NULL OR (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = t)
                    IS DISTINCT FROM (SELECT p.proowner FROM pg_catalog.pg_proc p
                                      WHERE p.oid = CAST('public.creditdb_firm_ids(pg_catalog.text[])'
                                                         AS pg_catalog.regprocedure)) THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT 1 FROM pg_temp.creditdb_resolved_firm r WHERE r.firm_id = p_firm);
END
$fn$;
REVOKE ALL ON FUNCTION public.creditdb_may_link(pg_catalog.int4, pg_catalog.text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.creditdb_may_link(pg_catalog.int4, pg_catalog.text) TO creditdb_institution;
DROP POLICY IF EXISTS institution_insert ON public.borrower_link;
CREATE POLICY institution_insert ON public.borrower_link FOR INSERT TO creditdb_institution
    WITH CHECK (institution_id = (SELECT public.creditdb_my_institution())
                AND public.creditdb_may_link(firm_id, borrower_hash));

-- First key (owner only). Refuses when a key exists: a second key is a rotation.
CREATE OR REPLACE FUNCTION public.creditdb_set_key(new_key pg_catalog.bytea) RETURNS pg_catalog.int4
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
REVOKE ALL ON FUNCTION public.creditdb_set_key(pg_catalog.bytea) FROM PUBLIC;

-- Key rotation: a new random key that nobody ever sees. Every stored pseudonym and keyed
-- hash is re-keyed in one transaction (new = HMAC(k_new, old)); the chain then applies
-- k_new after the older keys. Returns the new generation and the re-keyed row counts.
CREATE OR REPLACE FUNCTION public.creditdb_rotate_key() RETURNS pg_catalog.jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    k pg_catalog.bytea := public.gen_random_bytes(32);
    gen pg_catalog.int4;
    n_firm pg_catalog.int8; n_link pg_catalog.int8; n_loan pg_catalog.int8; n_default pg_catalog.int8;
BEGIN
    -- wait for submissions in flight (they hold locks on submission) and keep new ones out
    LOCK TABLE public.submission, public.firm, public.borrower_link, public.loan, public.default_event,
        public.creditdb_pseudonym_key IN EXCLUSIVE MODE;
    SELECT pg_catalog.max(c.generation) + 1 INTO gen FROM public.creditdb_pseudonym_key c;
    IF gen IS NULL THEN
        RAISE EXCEPTION 'creditdb: no pseudonym key to rotate' USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE public.firm f SET pseudonym = pg_catalog.encode(public.hmac(
        pg_catalog.convert_to(CAST(f.pseudonym AS pg_catalog.text), 'UTF8'), k, CAST('sha256' AS pg_catalog.text)), 'hex');
    GET DIAGNOSTICS n_firm = ROW_COUNT;
    UPDATE public.borrower_link bl SET borrower_hash = pg_catalog.encode(public.hmac(
        pg_catalog.convert_to(CAST(bl.borrower_hash AS pg_catalog.text), 'UTF8'), k, CAST('sha256' AS pg_catalog.text)), 'hex');
    GET DIAGNOSTICS n_link = ROW_COUNT;
    UPDATE public.loan l SET loan_hash = pg_catalog.encode(public.hmac(
        pg_catalog.convert_to(CAST(l.loan_hash AS pg_catalog.text), 'UTF8'), k, CAST('sha256' AS pg_catalog.text)), 'hex');
    GET DIAGNOSTICS n_loan = ROW_COUNT;
    UPDATE public.default_event d SET loan_hash = pg_catalog.encode(public.hmac(
        pg_catalog.convert_to(CAST(d.loan_hash AS pg_catalog.text), 'UTF8'), k, CAST('sha256' AS pg_catalog.text)), 'hex')
     WHERE d.loan_hash IS NOT NULL;
    GET DIAGNOSTICS n_default = ROW_COUNT;
    INSERT INTO public.creditdb_pseudonym_key (generation, key) VALUES (gen, k);
    RETURN pg_catalog.jsonb_build_object('generation', gen, 'firm', n_firm, 'borrower_link', n_link, 'loan', n_loan,
                                         'default_event', n_default);
END
$fn$;
REVOKE ALL ON FUNCTION public.creditdb_rotate_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.creditdb_rotate_key() TO creditdb_operator;

------------------------------------------------------------------------------
-- Audit trail: append-only for everybody, the owner included
------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION public.creditdb_audit_tail(OUT id pg_catalog.int4, OUT hash pg_catalog.varchar)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT a.id, a.hash FROM public.audit_event a ORDER BY a.id DESC LIMIT 1 $fn$;

-- The lock that serialises appends: a row of a table no application role may read or
-- lock (no grant, RLS without policy). Only creditdb_audit_append takes it, after the
-- event it was given extends the chain as committed, and holds it to the end of the
-- appending transaction; nobody can take it without appending (issue 17, item 5). Advisory
-- locks are not used: any login can take any advisory key.
CREATE TABLE IF NOT EXISTS public.creditdb_audit_lock (id pg_catalog.int4 PRIMARY KEY CHECK (id = 1));
INSERT INTO public.creditdb_audit_lock (id) VALUES (1) ON CONFLICT DO NOTHING;
REVOKE ALL ON public.creditdb_audit_lock FROM PUBLIC;
ALTER TABLE public.creditdb_audit_lock ENABLE ROW LEVEL SECURITY;

-- Guarantee issues on one loan are serialised by a row of this owner-only table, taken by
-- creditdb_lock_loan for the agencies and the operator: a bank cannot block issuing (an
-- advisory key, as before, any login could hold).
CREATE TABLE IF NOT EXISTS public.creditdb_loan_lock (loan_id pg_catalog.int4 PRIMARY KEY);
REVOKE ALL ON public.creditdb_loan_lock FROM PUBLIC;
ALTER TABLE public.creditdb_loan_lock ENABLE ROW LEVEL SECURITY;
CREATE OR REPLACE FUNCTION public.creditdb_lock_loan(p_loan pg_catalog.int4) RETURNS pg_catalog.void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    INSERT INTO public.creditdb_loan_lock (loan_id) VALUES (p_loan) ON CONFLICT DO NOTHING;
    PERFORM 1 FROM public.creditdb_loan_lock l WHERE l.loan_id = p_loan FOR UPDATE;
END
$fn$;
REVOKE ALL ON FUNCTION public.creditdb_lock_loan(pg_catalog.int4) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.creditdb_lock_loan(pg_catalog.int4) TO creditdb_operator, creditdb_agency;

-- Appends one event computed by creditdb.audit. The chain linkage (id, prev_hash) is
-- checked here, so no caller can fork or break the chain. The actor hashed into the event
-- must be the appending login (session_user; a free-text name is only an annotation in
-- the details), and it is recorded again in db_role. Approvals and retirements may be
-- appended only by a supervisor login, security events only by the operator (and, for
-- both, the owner, which is in no creditdb group).
CREATE OR REPLACE FUNCTION public.creditdb_audit_append(
    p_id pg_catalog.int4, p_ts pg_catalog.timestamptz, p_actor pg_catalog.text, p_action pg_catalog.text,
    p_details pg_catalog.json, p_input_hash pg_catalog.text, p_output_hash pg_catalog.text,
    p_prev_hash pg_catalog.text, p_hash pg_catalog.text) RETURNS pg_catalog.void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    last_id pg_catalog.int4;
    last_hash pg_catalog.text;
    me pg_catalog.text := CAST(session_user AS pg_catalog.text);
    -- (a superuser is a "member" of every role: it counts as the owner, not as a group)
    in_group pg_catalog.bool := NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r
                                              WHERE r.rolname = session_user), false)
        AND (pg_catalog.pg_has_role(session_user, 'creditdb_operator', 'MEMBER')
             OR pg_catalog.pg_has_role(session_user, 'creditdb_supervisor', 'MEMBER')
             OR pg_catalog.pg_has_role(session_user, 'creditdb_agency', 'MEMBER')
             OR pg_catalog.pg_has_role(session_user, 'creditdb_institution', 'MEMBER'));
BEGIN
    IF p_actor IS DISTINCT FROM me THEN
        RAISE EXCEPTION 'creditdb: an audit event''s actor must be the appending login % (got %)', me, p_actor
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (p_action LIKE 'model.approve%' OR p_action LIKE 'model.retire%') AND in_group
       AND NOT pg_catalog.pg_has_role(session_user, 'creditdb_supervisor', 'MEMBER') THEN
        RAISE EXCEPTION 'creditdb: only a supervisor login may record %', p_action
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_action LIKE 'security.%' AND in_group
       AND NOT pg_catalog.pg_has_role(session_user, 'creditdb_operator', 'MEMBER') THEN
        RAISE EXCEPTION 'creditdb: only the operator may record %', p_action USING ERRCODE = 'insufficient_privilege';
    END IF;
    FOR attempt IN 1 .. 2 LOOP
        -- attempt 1 without the lock: an event that does not extend the chain is refused
        -- before anything is locked; attempt 2 under the lock, against the committed tail
        IF attempt = 2 THEN
            PERFORM 1 FROM public.creditdb_audit_lock l WHERE l.id = 1 FOR UPDATE;
        END IF;
        SELECT a.id, a.hash INTO last_id, last_hash FROM public.audit_event a ORDER BY a.id DESC LIMIT 1;
        IF p_id IS DISTINCT FROM coalesce(last_id, 0) + 1
           OR p_prev_hash IS DISTINCT FROM coalesce(last_hash, pg_catalog.repeat('0', 64)) THEN
            RAISE EXCEPTION 'creditdb: audit event % does not extend the chain (last event %)', p_id, last_id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END LOOP;
    INSERT INTO public.audit_event (id, ts, actor, action, details, input_hash, output_hash, prev_hash, hash, db_role)
    VALUES (p_id, p_ts, p_actor, p_action, p_details, p_input_hash, p_output_hash, p_prev_hash, p_hash, me);
END
$fn$;
REVOKE ALL ON FUNCTION public.creditdb_audit_tail() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.creditdb_audit_append(pg_catalog.int4, pg_catalog.timestamptz, pg_catalog.text,
    pg_catalog.text, pg_catalog.json, pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.creditdb_audit_tail()
    TO creditdb_operator, creditdb_supervisor, creditdb_agency, creditdb_institution;
GRANT EXECUTE ON FUNCTION public.creditdb_audit_append(pg_catalog.int4, pg_catalog.timestamptz, pg_catalog.text,
    pg_catalog.text, pg_catalog.json, pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text)
    TO creditdb_operator, creditdb_supervisor, creditdb_agency, creditdb_institution;

CREATE OR REPLACE FUNCTION public.creditdb_audit_immutable() RETURNS pg_catalog.trigger
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

------------------------------------------------------------------------------
-- Four eyes on models (issue 17, item 8). The login that inserts a model version is
-- recorded in trained_by_login (whatever the insert says); only a supervisor login moves a
-- model to approved or retired, and never the login that trained it. The owner (in no
-- creditdb group; used for migrations only, deploy/OPERATIONS.md) is not held: it could
-- drop the trigger anyway. Installed once migration 0011 has added the column.
------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION public.creditdb_model_four_eyes() RETURNS pg_catalog.trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    -- (a superuser is a "member" of every role: it counts as the owner, not as a group)
    in_group pg_catalog.bool := NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r
                                              WHERE r.rolname = session_user), false)
        AND (pg_catalog.pg_has_role(session_user, 'creditdb_operator', 'MEMBER')
             OR pg_catalog.pg_has_role(session_user, 'creditdb_supervisor', 'MEMBER')
             OR pg_catalog.pg_has_role(session_user, 'creditdb_agency', 'MEMBER')
             OR pg_catalog.pg_has_role(session_user, 'creditdb_institution', 'MEMBER'));
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.trained_by_login := CAST(session_user AS pg_catalog.text);
        IF in_group AND NEW.status IS DISTINCT FROM 'candidate' THEN
            RAISE EXCEPTION 'creditdb: a model version is registered as a candidate (got %): approval is the supervisor''s',
                NEW.status USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END IF;
    NEW.trained_by_login := OLD.trained_by_login;
    IF in_group AND NEW.status IS DISTINCT FROM OLD.status THEN
        IF NOT pg_catalog.pg_has_role(session_user, 'creditdb_supervisor', 'MEMBER') THEN
            RAISE EXCEPTION 'creditdb: only a supervisor login may approve or retire model % (% refused for %)',
                OLD.version, NEW.status, session_user USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.status = 'approved'
           AND CAST(session_user AS pg_catalog.text) IS NOT DISTINCT FROM OLD.trained_by_login THEN
            RAISE EXCEPTION 'creditdb: % trained model % and may not approve it (four eyes)', session_user, OLD.version
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    RETURN NEW;
END
$fn$;
DO $four_eyes$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = CAST('public.model_version' AS pg_catalog.regclass)
                  AND a.attname = 'trained_by_login' AND NOT a.attisdropped) THEN
        DROP TRIGGER IF EXISTS model_version_four_eyes ON public.model_version;
        CREATE TRIGGER model_version_four_eyes BEFORE INSERT OR UPDATE ON public.model_version
            FOR EACH ROW EXECUTE FUNCTION public.creditdb_model_four_eyes();
    END IF;
END
$four_eyes$;
