"""PostgreSQL knows who is connected: staff sessions, sign-in and event functions, read gate.

On PostgreSQL each staff account becomes its own login (``nvadmin db roles`` makes the group
roles and the logins; ``nvadmin/auth/db_roles.py`` grants). This revision adds what those
logins need and may only use through SECURITY DEFINER functions with a fixed search_path:

* ``staff_sign_in_attempts``: nvadmin's own lockout for its sign-in path. Before a password is
  tried, ``nvadmin_sign_in_attempt`` reserves an attempt on the account's locked row; it is
  refused while the account is locked or while failures + attempts in flight reach the limit,
  so at most ``max_failed_sign_ins`` passwords are checked. An attempt never confirmed counts
  as a failure after two minutes.
* ``staff_sessions`` and ``staff_session_backends``: a session exists once the password (the
  server checked it when the login connected) and, for accounts with one, the TOTP code
  (checked here, by ``nvadmin_sign_in``) were right. Each pooled connection joins it with the
  session key (``nvadmin_resume_session``). Row-level security on every table gives the staff
  groups rows only on a connection that belongs to a live session: psql with a staff
  password but no code reads nothing.
* ``nvadmin_record_access`` and the sign-in/staff functions append events themselves, sealed
  into the chain in the same transaction, with the actor taken from ``session_user``.
* The partition function refuses months outside a bounded window for anyone but the owner.

SQLite is unchanged (a local, single-user file).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from alembic import op

from nvadmin.db.taxonomy import ACTIONS

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The actions these functions may write, with their categories (from the taxonomy).
_WRITTEN = (
    "activity_log.view",
    "activity_log.export",
    "staff.sign_in",
    "staff.sign_in_failed",
    "staff.sign_out",
    "staff.session_locked",
    "staff.account_created",
    "staff.account_disabled",
    "staff.account_enabled",
    "staff.account_unlocked",
    "staff.password_reset",
    "staff.role_changed",
    "staff.second_factor_changed",
)
_CATEGORIES = ", ".join(f"('{action}', '{ACTIONS[action][0]}')" for action in _WRITTEN)

SQL = r"""
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE staff_sign_in_attempts (
    token_hash bytea PRIMARY KEY,
    staff_id integer REFERENCES staff(id),
    email text NOT NULL,
    created_at timestamptz NOT NULL,
    outcome text
);
CREATE INDEX ix_staff_sign_in_attempts_pending
    ON staff_sign_in_attempts (staff_id, created_at) WHERE outcome IS NULL;
CREATE INDEX ix_staff_sign_in_attempts_created ON staff_sign_in_attempts (created_at);

CREATE TABLE staff_sessions (
    id bigserial PRIMARY KEY,
    staff_id integer NOT NULL REFERENCES staff(id),
    key_hash bytea NOT NULL UNIQUE,
    second_factor boolean NOT NULL,
    started_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    ended_at timestamptz
);

CREATE TABLE staff_session_backends (
    pid integer NOT NULL,
    backend_start timestamptz NOT NULL,
    login name NOT NULL,
    session_id bigint NOT NULL REFERENCES staff_sessions(id),
    PRIMARY KEY (pid, backend_start)
);

-- A session lives at most a working day; the idle lock and sign-out end it sooner.
CREATE FUNCTION nvadmin_policy(key text, fallback integer, low integer, high integer)
RETURNS integer LANGUAGE plpgsql STABLE AS $$
DECLARE
    value integer;
BEGIN
    SELECT m.value::integer INTO value FROM nvadmin_meta m WHERE m.key = 'security.' || $1;
    IF value IS NULL OR value < low OR value > high THEN
        RETURN fallback;
    END IF;
    RETURN value;
EXCEPTION WHEN invalid_text_representation THEN
    RETURN fallback;
END $$;

-- Python's json encoder (ensure_ascii=False) for one string, exactly: the chain's hash covers
-- these bytes, and verification recomputes them in Python.
CREATE FUNCTION nvadmin_json_text(value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    out text;
BEGIN
    IF value IS NULL THEN
        RETURN 'null';
    END IF;
    out := replace(replace(value, '\', '\\'), '"', '\"');
    IF out ~ '[\x01-\x1f]' THEN
        out := replace(out, E'\b', '\b');
        out := replace(out, E'\f', '\f');
        out := replace(out, E'\n', '\n');
        out := replace(out, E'\r', '\r');
        out := replace(out, E'\t', '\t');
        FOR code IN 1..31 LOOP
            out := replace(out, chr(code), '\u' || lpad(to_hex(code), 4, '0'));
        END LOOP;
    END IF;
    RETURN '"' || out || '"';
END $$;

-- Append one event to a workspace's chain, as audit/chain.py's seal() does.
CREATE FUNCTION nvadmin_seal(
    workspace integer, action_name text, outcome_name text, reason text,
    actor_id integer, actor_email text, actor_name text, actor_role text,
    resource_type text, resource_id text, user_agent text, session_ref text, details text
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    category_name text;
    at timestamptz := clock_timestamp();
    seq bigint;
    prev bytea;
    digest bytea;
    layout text;
    address text := host(inet_client_addr());
BEGIN
    SELECT c.category INTO category_name
        FROM (VALUES __CATEGORIES__) AS c(action, category) WHERE c.action = action_name;
    IF category_name IS NULL THEN
        RAISE EXCEPTION 'nvadmin: % is not an action nvadmin records', action_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF details IS NOT NULL THEN
        BEGIN
            PERFORM details::jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            RAISE EXCEPTION 'nvadmin: event details must be JSON'
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.id = workspace) THEN
        RAISE EXCEPTION 'nvadmin: no workspace %', workspace
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM nvadmin_ensure_event_partition((at AT TIME ZONE 'UTC')::date);
    UPDATE chain_heads h SET last_seq = h.last_seq WHERE h.workspace_id = workspace
        RETURNING h.last_seq, h.last_hash INTO seq, prev;
    IF NOT FOUND THEN
        INSERT INTO chain_heads (workspace_id, last_seq, last_hash)
            VALUES (workspace, 0, decode(repeat('00', 32), 'hex')) ON CONFLICT DO NOTHING;
        UPDATE chain_heads h SET last_seq = h.last_seq WHERE h.workspace_id = workspace
            RETURNING h.last_seq, h.last_hash INTO seq, prev;
    END IF;
    seq := seq + 1;
    layout := '[' || concat_ws(',',
        workspace::text, seq::text,
        '"' || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '"',
        nvadmin_json_text('staff'), coalesce(actor_id::text, 'null'),
        nvadmin_json_text(actor_email), nvadmin_json_text(actor_name),
        nvadmin_json_text(actor_role), nvadmin_json_text(action_name),
        nvadmin_json_text(category_name), nvadmin_json_text(outcome_name),
        nvadmin_json_text(reason), nvadmin_json_text(resource_type),
        nvadmin_json_text(resource_id), 'null', nvadmin_json_text(address),
        nvadmin_json_text(user_agent), nvadmin_json_text(session_ref), 'null',
        nvadmin_json_text(details)) || ']';
    digest := sha256(convert_to('nvadmin-event-v1', 'UTF8') || '\x00'::bytea || prev
                     || convert_to(layout, 'UTF8'));
    INSERT INTO activity_events (
        workspace_id, seq, occurred_at, actor_type, actor_id, actor_email, actor_name,
        actor_role, action, category, outcome, failure_reason, resource_type, resource_id,
        patient_id, ip, user_agent, session_id, request_id, details, prev_hash, hash)
    VALUES (
        workspace, seq, at, 'staff', actor_id, actor_email, actor_name,
        actor_role, action_name, category_name, outcome_name, reason, resource_type,
        resource_id, NULL, address, user_agent, session_ref, NULL, details, prev, digest);
    UPDATE chain_heads h SET last_seq = seq, last_hash = digest WHERE h.workspace_id = workspace;
    RETURN seq;
END $$;

CREATE FUNCTION nvadmin_staff_workspace() RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT id FROM workspaces WHERE slug = 'nvadmin-staff'
$$;

-- The connection's own session, if it belongs to a live one. PARALLEL RESTRICTED: it must
-- run in the backend the client is connected to (a parallel worker has another pid), and so
-- it does, once per query, while the rest of the query may still use parallel workers.
CREATE FUNCTION nvadmin_current_session() RETURNS bigint
LANGUAGE sql STABLE PARALLEL RESTRICTED AS $$
    SELECT s.id
    FROM staff_session_backends b
    JOIN staff_sessions s ON s.id = b.session_id
    JOIN staff st ON st.id = s.staff_id
    WHERE b.pid = pg_backend_pid()
      AND b.backend_start = (SELECT backend_start
                             FROM pg_stat_get_activity(pg_backend_pid()))
      AND b.login = session_user
      AND st.email = session_user
      AND NOT st.disabled
      AND s.ended_at IS NULL
      AND s.expires_at > now()
$$;

-- The read gate of every row-level security policy.
CREATE FUNCTION nvadmin_session_verified() RETURNS boolean
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER AS $$
    SELECT nvadmin_current_session() IS NOT NULL
$$;

CREATE FUNCTION nvadmin_join_session(session bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM staff_session_backends b
        WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                          WHERE a.pid = b.pid AND a.backend_start = b.backend_start);
    INSERT INTO staff_session_backends (pid, backend_start, login, session_id)
        SELECT pg_backend_pid(), a.backend_start, session_user, session
        FROM pg_stat_get_activity(pg_backend_pid()) a
    ON CONFLICT (pid, backend_start) DO UPDATE SET session_id = EXCLUDED.session_id,
                                                   login = EXCLUDED.login;
END $$;

CREATE FUNCTION nvadmin_random_token() RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT translate(encode(gen_random_bytes(32), 'base64'), '+/=', '-_')
$$;

-- RFC 4648 base32 (the TOTP secret's form) to bytes.
CREATE FUNCTION nvadmin_base32_decode(value text) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    alphabet constant text := 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    bits text := '';
    out bytea := '';
    position integer;
BEGIN
    FOR i IN 1..length(value) LOOP
        position := strpos(alphabet, upper(substr(value, i, 1)));
        CONTINUE WHEN position = 0;  -- padding
        bits := bits || lpad((position - 1)::bit(5)::text, 5, '0');
    END LOOP;
    FOR i IN 0..(length(bits) / 8) - 1 LOOP
        out := out || set_byte('\x00'::bytea, 0, substr(bits, i * 8 + 1, 8)::bit(8)::integer);
    END LOOP;
    RETURN out;
END $$;

-- RFC 6238 with SHA-1, 6 digits, 30-second steps (what authenticator apps use).
CREATE FUNCTION nvadmin_totp(secret text, step bigint) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    mac bytea := hmac(int8send(step), nvadmin_base32_decode(secret), 'sha1');
    offset_ integer := get_byte(mac, 19) & 15;
    code bigint;
BEGIN
    code := ((get_byte(mac, offset_) & 127)::bigint << 24)
          | (get_byte(mac, offset_ + 1)::bigint << 16)
          | (get_byte(mac, offset_ + 2)::bigint << 8)
          | get_byte(mac, offset_ + 3)::bigint;
    RETURN lpad((code % 1000000)::text, 6, '0');
END $$;

-- Count failures and lock: the one rule, on the account's locked row.
CREATE FUNCTION nvadmin_count_failure(account integer) RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    failures integer;
    lock_at timestamptz;
BEGIN
    UPDATE staff s SET
        failed_attempts = CASE WHEN s.locked_until IS NOT NULL AND s.locked_until <= now()
                               THEN 1 ELSE s.failed_attempts + 1 END,
        locked_until = CASE WHEN s.locked_until IS NOT NULL AND s.locked_until <= now()
                            THEN NULL ELSE s.locked_until END
        WHERE s.id = account RETURNING s.failed_attempts INTO failures;
    IF failures >= nvadmin_policy('max_failed_sign_ins', 5, 1, 100) THEN
        lock_at := now() + make_interval(mins => nvadmin_policy('lockout_minutes', 15, 1, 1440));
        UPDATE staff SET locked_until = lock_at WHERE id = account AND locked_until IS NULL;
    END IF;
    RETURN lock_at;
END $$;

CREATE FUNCTION nvadmin_refuse_sign_in(
    account staff, typed_email text, reason text, purpose text, user_agent text
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    locked timestamptz;
    details jsonb := jsonb_build_object('purpose', purpose);
BEGIN
    IF account.id IS NOT NULL THEN
        SELECT locked_until INTO locked FROM staff WHERE id = account.id;
        IF locked > now() THEN
            details := details || jsonb_build_object(
                'locked_until',
                to_char(locked AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US+00:00'));
        END IF;
    END IF;
    IF account.id IS NULL THEN
        -- No account's address: perhaps a password typed in the wrong field. Kept masked
        -- (auth/signin.py mask_address does the same).
        typed_email := btrim(typed_email);
        typed_email := CASE
            WHEN typed_email ~ '^[^@\s]+@[^@\s]+$'
            THEN left(typed_email, 1) || '…@' || left(split_part(typed_email, '@', 2), 200)
            ELSE '(not an e-mail address)' END;
    END IF;
    PERFORM nvadmin_seal(nvadmin_staff_workspace(), 'staff.sign_in_failed', 'failure', reason,
        account.id, coalesce(account.email, typed_email),
        coalesce(account.display_name, typed_email), account.role,
        NULL, NULL, user_agent, NULL, details::text);
END $$;

-- The gate: may this account try a password now? Returns an attempt token, or NULL (locked,
-- disabled, or as many attempts in flight as failures are left before the lock).
CREATE FUNCTION nvadmin_sign_in_attempt(typed_email text, user_agent text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    address text := lower(btrim(typed_email));
    account staff;
    token text := nvadmin_random_token();
    stale integer;
    in_flight integer;
    limit_ integer := nvadmin_policy('max_failed_sign_ins', 5, 1, 100);
BEGIN
    IF address IS NULL OR length(address) > 320 OR length(coalesce(user_agent, '')) > 300 THEN
        RAISE EXCEPTION 'nvadmin: not an e-mail address' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Attempts older than a day count for nothing any more: the table holds a day at most,
    -- however many attempts anyone makes.
    DELETE FROM staff_sign_in_attempts WHERE created_at < now() - interval '1 day';
    SELECT * INTO account FROM staff WHERE email = address FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO staff_sign_in_attempts VALUES (sha256(convert_to(token, 'UTF8')), NULL,
                                                   address, now(), NULL);
        RETURN token;  -- the connection will fail as for a wrong password
    END IF;
    -- Attempts never confirmed within two minutes count as failures.
    FOR stale IN
        UPDATE staff_sign_in_attempts SET outcome = 'expired'
        WHERE staff_id = account.id AND outcome IS NULL
          AND created_at < now() - interval '2 minutes'
        RETURNING 1
    LOOP
        PERFORM nvadmin_count_failure(account.id);
    END LOOP;
    SELECT * INTO account FROM staff WHERE id = account.id;
    IF account.disabled THEN
        PERFORM nvadmin_refuse_sign_in(account, address, 'account_disabled', 'sign_in', user_agent);
        RETURN NULL;
    END IF;
    IF account.locked_until > now() THEN
        PERFORM nvadmin_refuse_sign_in(account, address, 'account_locked', 'sign_in', user_agent);
        RETURN NULL;
    END IF;
    SELECT count(*) INTO in_flight FROM staff_sign_in_attempts
        WHERE staff_id = account.id AND outcome IS NULL;
    IF (CASE WHEN account.locked_until IS NULL THEN account.failed_attempts ELSE 0 END)
       + in_flight >= limit_ THEN
        PERFORM nvadmin_refuse_sign_in(account, address, 'account_locked', 'sign_in', user_agent);
        RETURN NULL;
    END IF;
    INSERT INTO staff_sign_in_attempts VALUES (sha256(convert_to(token, 'UTF8')), account.id,
                                               address, now(), NULL);
    RETURN token;
END $$;

-- The gate, after the server refused the password of an attempt.
CREATE FUNCTION nvadmin_sign_in_failed(token text, user_agent text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    attempt staff_sign_in_attempts;
    account staff;
BEGIN
    UPDATE staff_sign_in_attempts SET outcome = 'wrong_password'
        WHERE token_hash = sha256(convert_to(token, 'UTF8')) AND outcome IS NULL
        RETURNING * INTO attempt;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF attempt.staff_id IS NULL THEN
        PERFORM nvadmin_refuse_sign_in(NULL, attempt.email, 'unknown_account', 'sign_in',
                                       left(user_agent, 300));
        RETURN;
    END IF;
    PERFORM 1 FROM staff WHERE id = attempt.staff_id FOR UPDATE;
    PERFORM nvadmin_count_failure(attempt.staff_id);
    SELECT * INTO account FROM staff WHERE id = attempt.staff_id;
    PERFORM nvadmin_refuse_sign_in(account, attempt.email, 'wrong_password', 'sign_in',
                                   left(user_agent, 300));
END $$;

-- Sign in on this connection (the server has checked the password): the account must be
-- enabled and unlocked, and the second factor passed: the TOTP code, or a ``proof`` that it
-- was passed before -- a remember-me token (purpose 'sign_in') or, to unlock an idle-locked
-- window, the key of its live session (purpose 'unlock', which rejoins that session).
-- Returns the session's key (for the pool's other connections) and, if asked, a new
-- remember-me token whose expiry the server sets (at most the policy's hours, at most 12).
CREATE FUNCTION nvadmin_sign_in(
    attempt_token text, code text, purpose text, remember boolean,
    proof text, user_agent text
) RETURNS TABLE (status text, session_key text, new_remember_token text, staff_id integer,
                 email text, display_name text, role text)
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    account staff;
    attempt_hash bytea := sha256(convert_to(coalesce(attempt_token, ''), 'UTF8'));
    current_step bigint := floor(extract(epoch FROM now()) / 30);
    matched bigint;
    key text := nvadmin_random_token();
    token text;
    session bigint;
    method text := 'password';
    agent text := left(user_agent, 300);
BEGIN
    IF purpose IS NULL OR purpose NOT IN ('sign_in', 'unlock') THEN
        RAISE EXCEPTION 'nvadmin: unknown purpose' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO account FROM staff s WHERE s.email = session_user FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'nvadmin: % is not a staff login', session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE staff_sign_in_attempts a SET outcome = 'password_ok'
        WHERE a.token_hash = attempt_hash AND a.staff_id = account.id AND a.outcome IS NULL;
    IF account.locked_until IS NOT NULL AND account.locked_until <= now() THEN
        UPDATE staff SET failed_attempts = 0, locked_until = NULL WHERE id = account.id;
        account.locked_until := NULL;
    END IF;
    IF account.disabled THEN
        PERFORM nvadmin_refuse_sign_in(account, session_user, 'account_disabled', purpose, agent);
        RETURN QUERY SELECT 'refused', NULL::text, NULL::text, NULL::integer, NULL::text,
                            NULL::text, NULL::text;
        RETURN;
    END IF;
    IF account.locked_until IS NOT NULL THEN
        PERFORM nvadmin_refuse_sign_in(account, session_user, 'account_locked', purpose, agent);
        RETURN QUERY SELECT 'refused', NULL::text, NULL::text, NULL::integer, NULL::text,
                            NULL::text, NULL::text;
        RETURN;
    END IF;
    IF purpose = 'unlock' THEN
        SELECT s.id INTO session FROM staff_sessions s
            WHERE s.staff_id = account.id AND s.key_hash = sha256(convert_to(proof, 'UTF8'))
              AND s.ended_at IS NULL AND s.expires_at > now();
        IF session IS NULL THEN
            PERFORM nvadmin_refuse_sign_in(account, session_user, 'session_ended', purpose, agent);
            RETURN QUERY SELECT 'refused', NULL::text, NULL::text, NULL::integer, NULL::text,
                                NULL::text, NULL::text;
            RETURN;
        END IF;
        key := proof;
        method := 'password+session';
    ELSIF proof IS NOT NULL AND EXISTS (
        -- A remember-me token stands in for the second factor until it expires; a stale one
        -- is simply not a proof (the code is asked for).
        SELECT 1 FROM remember_tokens t
        WHERE t.staff_id = account.id AND t.token_hash = sha256(convert_to(proof, 'UTF8'))
          AND t.revoked_at IS NULL AND t.expires_at > now()) THEN
        method := 'remember_token';
    END IF;
    IF method = 'password' AND account.totp_secret IS NOT NULL THEN
        IF code IS NULL OR btrim(code) = '' THEN
            RETURN QUERY SELECT 'code_required', NULL::text, NULL::text, NULL::integer,
                                NULL::text, NULL::text, NULL::text;
            RETURN;
        END IF;
        SELECT step INTO matched FROM generate_series(current_step - 1, current_step + 1) step
            WHERE (account.totp_last_step IS NULL OR step > account.totp_last_step)
              AND nvadmin_totp(account.totp_secret, step) = replace(btrim(code), ' ', '')
            ORDER BY step LIMIT 1;
        IF matched IS NULL THEN
            PERFORM nvadmin_count_failure(account.id);
            PERFORM nvadmin_refuse_sign_in(account, session_user, 'wrong_code', purpose, agent);
            RETURN QUERY SELECT 'refused', NULL::text, NULL::text, NULL::integer, NULL::text,
                                NULL::text, NULL::text;
            RETURN;
        END IF;
        method := 'password+totp';
    END IF;
    UPDATE staff s SET failed_attempts = 0, locked_until = NULL,
        totp_last_step = coalesce(matched, s.totp_last_step),
        last_sign_in_at = CASE WHEN purpose = 'sign_in' THEN now() ELSE s.last_sign_in_at END
        WHERE s.id = account.id;
    IF session IS NULL THEN
        INSERT INTO staff_sessions (staff_id, key_hash, second_factor, started_at, expires_at)
            VALUES (account.id, sha256(convert_to(key, 'UTF8')), method <> 'password', now(),
                    now() + interval '12 hours')
            RETURNING id INTO session;
    END IF;
    PERFORM nvadmin_join_session(session);
    IF remember AND purpose = 'sign_in' THEN
        token := nvadmin_random_token();
        INSERT INTO remember_tokens (staff_id, token_hash, created_at, expires_at)
            VALUES (account.id, sha256(convert_to(token, 'UTF8')), now(),
                    now() + make_interval(hours => nvadmin_policy('remember_hours', 12, 1, 12)));
    END IF;
    PERFORM nvadmin_seal(nvadmin_staff_workspace(), 'staff.sign_in', 'success', NULL,
        account.id, account.email, account.display_name, account.role, NULL, NULL, agent,
        session::text, jsonb_build_object('method', method, 'purpose', purpose)::text);
    RETURN QUERY SELECT 'ok', key, token, account.id, account.email::text,
                        account.display_name::text, account.role::text;
END $$;

-- Another pooled connection of a signed-in session joins it.
CREATE FUNCTION nvadmin_resume_session(key text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    session bigint;
BEGIN
    SELECT s.id INTO session FROM staff_sessions s JOIN staff st ON st.id = s.staff_id
        WHERE s.key_hash = sha256(convert_to(key, 'UTF8')) AND st.email = session_user
          AND NOT st.disabled AND s.ended_at IS NULL AND s.expires_at > now();
    IF session IS NULL THEN
        RETURN false;
    END IF;
    PERFORM nvadmin_join_session(session);
    RETURN true;
END $$;

-- The session's own events: viewing or exporting the log, locking.
CREATE FUNCTION nvadmin_record_access(
    workspace integer, action_name text, details text,
    resource_type text, resource_id text, user_agent text
) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    account staff;
    session bigint := nvadmin_current_session();
BEGIN
    IF session IS NULL THEN
        RAISE EXCEPTION 'nvadmin: sign in first' USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Signing out goes through nvadmin_sign_out, which also ends the session.
    IF action_name IS NULL
       OR action_name NOT IN ('activity_log.view', 'activity_log.export', 'staff.session_locked')
    THEN
        RAISE EXCEPTION 'nvadmin: % is not recorded by staff', action_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(details) > 65536 OR length(resource_type) > 40 OR length(resource_id) > 100 THEN
        RAISE EXCEPTION 'nvadmin: event too large' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO account FROM staff WHERE email = session_user;
    RETURN nvadmin_seal(workspace, action_name, 'success', NULL, account.id, account.email,
        account.display_name, account.role, resource_type, resource_id, left(user_agent, 300),
        session::text, details);
END $$;

-- Sign out: the session ends (every pooled connection loses its rows) and the remember-me
-- token, if given, is revoked.
CREATE FUNCTION nvadmin_sign_out(reason text, remember_token text, user_agent text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    account staff;
    session bigint := nvadmin_current_session();
BEGIN
    SELECT * INTO account FROM staff WHERE email = session_user;
    IF session IS NULL OR account.id IS NULL THEN
        RETURN;
    END IF;
    IF remember_token IS NOT NULL THEN
        UPDATE remember_tokens SET revoked_at = now()
            WHERE staff_id = account.id AND revoked_at IS NULL
              AND token_hash = sha256(convert_to(remember_token, 'UTF8'));
    END IF;
    PERFORM nvadmin_seal(nvadmin_staff_workspace(), 'staff.sign_out', 'success', NULL,
        account.id, account.email, account.display_name, account.role, NULL, NULL,
        left(user_agent, 300), session::text,
        jsonb_build_object('reason', left(reason, 40))::text);
    UPDATE staff_sessions SET ended_at = now() WHERE id = session;
END $$;

-- Who is acting, for the functions that change accounts: an admin's verified session, or
-- the database owner (the command line run by whoever owns the audit tables).
CREATE FUNCTION nvadmin_account_actor() RETURNS staff LANGUAGE plpgsql STABLE AS $$
DECLARE
    account staff;
BEGIN
    SELECT * INTO account FROM staff WHERE email = session_user;
    IF FOUND THEN
        IF account.role <> 'admin' OR nvadmin_current_session() IS NULL THEN
            RAISE EXCEPTION 'nvadmin: only a signed-in admin manages staff'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN account;
    END IF;
    IF NOT pg_has_role(session_user,
            (SELECT relowner FROM pg_class WHERE oid = 'staff'::regclass), 'MEMBER') THEN
        RAISE EXCEPTION 'nvadmin: only a signed-in admin manages staff'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    account.display_name := format('database owner (%s)', session_user);
    account.email := session_user;
    account.role := 'admin';
    RETURN account;
END $$;

-- Staff accounts are PostgreSQL logins: this function keeps the login, its group and the
-- staff row together. ``verifier`` is a SCRAM-SHA-256 verifier computed by the client (the
-- password itself never reaches the server); ``totp`` a new base32 secret or NULL.
CREATE FUNCTION nvadmin_manage_staff(
    operation text, address text, new_name text, new_role text, verifier text, totp text
) RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    actor staff := nvadmin_account_actor();
    target staff;
    groups constant jsonb := '{"support": "nvadmin_support", "compliance": "nvadmin_compliance",
                               "admin": "nvadmin_admin"}';
    action_name text;
    details jsonb := '{}';
BEGIN
    address := lower(btrim(address));
    IF address IS NULL OR address !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'
       OR octet_length(address) > 63 THEN
        RAISE EXCEPTION 'nvadmin: not an e-mail address usable as a login (at most 63 bytes)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF verifier IS NOT NULL AND verifier !~
       '^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$' THEN
        RAISE EXCEPTION 'nvadmin: the password must arrive as a SCRAM-SHA-256 verifier'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF totp IS NOT NULL AND totp !~ '^[A-Z2-7]{16,64}$' THEN
        RAISE EXCEPTION 'nvadmin: not a TOTP secret' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF new_role IS NOT NULL AND NOT groups ? new_role THEN
        RAISE EXCEPTION 'nvadmin: unknown role %', new_role
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF operation = 'add' THEN
        IF verifier IS NULL OR new_role IS NULL THEN
            RAISE EXCEPTION 'nvadmin: a new account needs a password and a role'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF EXISTS (SELECT 1 FROM staff WHERE email = address) THEN
            RAISE EXCEPTION 'nvadmin: a staff account for % already exists', address
                USING ERRCODE = 'unique_violation';
        END IF;
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = address) THEN
            RAISE EXCEPTION 'nvadmin: a database login named % already exists', address
                USING ERRCODE = 'duplicate_object';
        END IF;
        EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION '
                       'PASSWORD %L IN ROLE %I', address, verifier, groups ->> new_role);
        INSERT INTO staff (email, display_name, role, password_hash, disabled, failed_attempts,
                           totp_secret, created_at)
            VALUES (address,
                    left(coalesce(nullif(btrim(new_name), ''), split_part(address, '@', 1)), 200),
                    new_role, '', false, 0, totp, now())
            RETURNING * INTO target;
        action_name := 'staff.account_created';
        details := jsonb_build_object('totp', totp IS NOT NULL);
    ELSE
        SELECT * INTO target FROM staff WHERE email = address FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'nvadmin: no staff account for %', address
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF operation IN ('disable', 'set_role') AND target.role = 'admin'
           AND coalesce(new_role, '') <> 'admin'
           AND NOT EXISTS (SELECT 1 FROM staff WHERE role = 'admin' AND NOT disabled
                           AND id <> target.id) THEN
            RAISE EXCEPTION 'nvadmin: % is the only active admin: add another admin first', address
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF operation = 'disable' THEN
            EXECUTE format('ALTER ROLE %I NOLOGIN', address);
            UPDATE staff SET disabled = true WHERE id = target.id;
            action_name := 'staff.account_disabled';
        ELSIF operation = 'enable' THEN
            EXECUTE format('ALTER ROLE %I LOGIN', address);
            UPDATE staff SET disabled = false WHERE id = target.id;
            action_name := 'staff.account_enabled';
        ELSIF operation = 'unlock' THEN
            UPDATE staff SET failed_attempts = 0, locked_until = NULL WHERE id = target.id;
            UPDATE staff_sign_in_attempts SET outcome = 'unlocked'
                WHERE staff_id = target.id AND outcome IS NULL;
            action_name := 'staff.account_unlocked';
        ELSIF operation = 'reset_password' THEN
            IF verifier IS NULL THEN
                RAISE EXCEPTION 'nvadmin: a new password is needed'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            EXECUTE format('ALTER ROLE %I PASSWORD %L', address, verifier);
            UPDATE staff SET failed_attempts = 0, locked_until = NULL, password_hash = ''
                WHERE id = target.id;
            action_name := 'staff.password_reset';
        ELSIF operation = 'set_role' AND new_role IS NOT NULL THEN
            EXECUTE format('REVOKE %I FROM %I', groups ->> target.role, address);
            EXECUTE format('GRANT %I TO %I', groups ->> new_role, address);
            UPDATE staff SET role = new_role WHERE id = target.id;
            action_name := 'staff.role_changed';
            details := jsonb_build_object('new_role', new_role);
        ELSIF operation = 'set_totp' THEN
            UPDATE staff SET totp_secret = totp, totp_last_step = NULL WHERE id = target.id;
            action_name := 'staff.second_factor_changed';
            details := jsonb_build_object('totp', totp IS NOT NULL);
        ELSE
            RAISE EXCEPTION 'nvadmin: unknown staff operation %', operation
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF operation IN ('disable', 'reset_password', 'set_role') THEN
            UPDATE remember_tokens SET revoked_at = now()
                WHERE staff_id = target.id AND revoked_at IS NULL;
            UPDATE staff_sessions SET ended_at = now()
                WHERE staff_id = target.id AND ended_at IS NULL;
        END IF;
        SELECT * INTO target FROM staff WHERE id = target.id;
    END IF;
    PERFORM nvadmin_seal(nvadmin_staff_workspace(), action_name, 'success', NULL,
        actor.id, actor.email, actor.display_name, actor.role, 'staff', target.id::text, NULL,
        NULL, (jsonb_build_object('staff_email', target.email, 'staff_role', target.role)
               || details)::text);
END $$;

-- A workspace's working hours (the after-hours flags' notion of "open"): compliance and
-- admin staff change them; they are local hours, ``day_end`` exclusive.
CREATE FUNCTION nvadmin_set_working_hours(workspace integer, day_start integer, day_end integer)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF nvadmin_current_session() IS NULL THEN
        RAISE EXCEPTION 'nvadmin: sign in first' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF day_start IS NULL OR day_end IS NULL OR day_start NOT BETWEEN 0 AND 23
       OR day_end NOT BETWEEN 1 AND 24 OR day_start = day_end THEN
        RAISE EXCEPTION 'nvadmin: working hours must be two different hours between 0 and 24'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE workspaces SET work_day_start = day_start, work_day_end = day_end
        WHERE id = workspace AND NOT is_system;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'nvadmin: workspace % does not exist in this database', workspace
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END $$;

-- The Staff dialog's list (never a secret; whether TOTP is on).
CREATE VIEW staff_directory AS
    SELECT id, email, display_name, role, disabled, failed_attempts, locked_until,
           totp_secret IS NOT NULL AS has_totp, created_at, last_sign_in_at
    FROM staff
    WHERE nvadmin_session_verified();

-- Partitions: anyone but the table owner gets only months in a bounded window (two years
-- back for late writers, three months ahead for the app's start-up), so a loop of calls
-- cannot grow the catalogue; nobody gets a month before year 1 or past 9999, or infinity.
CREATE OR REPLACE FUNCTION nvadmin_ensure_event_partition(month_start date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    first_day date;
    part text;
    owner_call boolean := pg_has_role(session_user,
        (SELECT relowner FROM pg_class WHERE oid = 'activity_events'::regclass), 'MEMBER');
BEGIN
    IF month_start IS NULL OR NOT isfinite(month_start)
       OR month_start < '0001-01-01'::date OR month_start >= '10000-01-01'::date THEN
        RAISE EXCEPTION 'nvadmin: no partition for month %', month_start
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    first_day := date_trunc('month', month_start)::date;
    IF NOT owner_call AND (
        first_day < (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '2 years')::date
        OR first_day > (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months')::date)
    THEN
        RAISE EXCEPTION 'nvadmin: month % is outside the partitions nvadmin creates', first_day
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    part := format('activity_events_%s', to_char(first_day, 'YYYY_MM'));
    IF to_regclass(part) IS NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext('nvadmin_event_partitions'));
        BEGIN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF activity_events FOR VALUES FROM (%L) TO (%L)',
                part,
                first_day::timestamp AT TIME ZONE 'UTC',
                (first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC');
            EXECUTE format(
                'CREATE TRIGGER activity_events_no_truncate BEFORE TRUNCATE ON %I '
                'FOR EACH STATEMENT EXECUTE FUNCTION nvadmin_refuse_event_change()', part);
        EXCEPTION WHEN duplicate_table THEN
            NULL;  -- another writer created it first
        END;
    END IF;
    RETURN part;
END $$;
"""


# Every nvadmin function resolves names in this schema only (no search_path hijacking). Run
# again after any revision replaces a function: a replaced function loses its settings.
SEARCH_PATH = r"""
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
             WHERE p.pronamespace = current_schema()::regnamespace
               AND p.proname LIKE 'nvadmin\_%'
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp',
                       f, current_schema());
    END LOOP;
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(SQL.replace("__CATEGORIES__", _CATEGORIES))
    op.execute(SEARCH_PATH)


def downgrade() -> None:  # pragma: no cover - nvadmin never downgrades an audit database
    raise NotImplementedError
