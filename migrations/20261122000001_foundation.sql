-- Foundation: accounts, sessions, API tokens, login throttling, audit log.

CREATE TYPE user_role AS ENUM ('viewer', 'operator', 'admin');

CREATE TABLE users (
    id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username             TEXT NOT NULL,
    display_name         TEXT NOT NULL DEFAULT '',
    role                 user_role NOT NULL,
    password_hash        TEXT NOT NULL,
    must_change_password BOOLEAN NOT NULL DEFAULT FALSE,
    disabled_at          TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    password_changed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_login_at        TIMESTAMPTZ,
    CONSTRAINT users_username_format CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,63}$')
);
CREATE UNIQUE INDEX users_username_key ON users (username);

-- Server-side sessions. Only the SHA-256 of the cookie token is stored, so a
-- database read does not hand out live sessions.
CREATE TABLE sessions (
    token_hash   BYTEA PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    source       TEXT,
    user_agent   TEXT
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

CREATE TABLE api_tokens (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   BYTEA NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    role         user_role NOT NULL,
    created_by   BIGINT NOT NULL REFERENCES users (id),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    CONSTRAINT api_tokens_name_length CHECK (char_length(name) BETWEEN 1 AND 100)
);
CREATE UNIQUE INDEX api_tokens_active_name_key ON api_tokens (name) WHERE revoked_at IS NULL;

-- Growing login delays per source address and per account (see auth/throttle.rs).
CREATE TABLE login_throttle (
    scope           TEXT NOT NULL CHECK (scope IN ('address', 'account')),
    key             TEXT NOT NULL,
    failures        INTEGER NOT NULL DEFAULT 0,
    last_failure_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    blocked_until   TIMESTAMPTZ,
    PRIMARY KEY (scope, key)
);

-- Addresses a user logged in from successfully: the per-account delay does
-- not apply to them, so an attacker cannot lock a victim out.
CREATE TABLE login_known_sources (
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source          TEXT NOT NULL,
    last_success_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, source)
);

-- The audit log: append-only (enforced below) and hash-chained.
CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor_id   BIGINT,
    actor      TEXT NOT NULL,
    actor_kind TEXT NOT NULL CHECK (actor_kind IN ('user', 'token', 'system', 'anonymous')),
    action     TEXT NOT NULL,
    target     TEXT,
    params     JSONB NOT NULL DEFAULT '{}'::jsonb,
    source     TEXT,
    outcome    TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    detail     TEXT,
    prev_hash  BYTEA NOT NULL,
    hash       BYTEA NOT NULL
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_action_idx ON audit_log (action, seq);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, seq);

-- The one definition of an entry's hash, used by the insert trigger and by
-- `opsdeck audit verify`. Every field is length-prefixed so that no two
-- different rows serialise alike; time is in integer microseconds so the
-- session's TimeZone setting cannot change the result.
CREATE FUNCTION audit_entry_hash(
    p_prev BYTEA, p_seq BIGINT, p_at TIMESTAMPTZ, p_actor_id BIGINT, p_actor TEXT,
    p_actor_kind TEXT, p_action TEXT, p_target TEXT, p_params JSONB, p_source TEXT,
    p_outcome TEXT, p_detail TEXT
) RETURNS BYTEA LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(p_prev || convert_to(
        concat_ws(E'\x1f',
            p_seq::text,
            (extract(epoch FROM p_at) * 1000000)::bigint::text,
            coalesce(p_actor_id::text, ''),
            length(p_actor) || ':' || p_actor,
            p_actor_kind,
            length(p_action) || ':' || p_action,
            coalesce(length(p_target) || ':' || p_target, '-'),
            length(p_params::text) || ':' || p_params::text,
            coalesce(length(p_source) || ':' || p_source, '-'),
            p_outcome,
            coalesce(length(p_detail) || ':' || p_detail, '-')
        ), 'UTF8'))
$$;

-- Assigns the chain position and hash. The advisory lock serialises writers,
-- so `seq` has no gaps and each entry chains onto the one committed before it.
CREATE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_seq  BIGINT;
    last_hash BYTEA;
BEGIN
    PERFORM pg_advisory_xact_lock(7262383316112251);
    SELECT seq, hash INTO last_seq, last_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(last_seq, 0) + 1;
    NEW.at := clock_timestamp();
    NEW.prev_hash := coalesce(last_hash, '\x'::bytea);
    NEW.hash := audit_entry_hash(NEW.prev_hash, NEW.seq, NEW.at, NEW.actor_id, NEW.actor,
        NEW.actor_kind, NEW.action, NEW.target, NEW.params, NEW.source, NEW.outcome, NEW.detail);
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_chain();

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
