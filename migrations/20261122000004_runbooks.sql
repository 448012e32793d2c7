-- Runbooks, runs (the one job/lease model of Opsdeck's background work),
-- approvals, schedules, and the shared timeline.

CREATE TABLE runbooks (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL CONSTRAINT runbooks_name_key UNIQUE
                    CONSTRAINT runbooks_name_check CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    builtin         boolean NOT NULL DEFAULT false,
    current_version integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Every version ever saved; a run records the version it ran.
CREATE TABLE runbook_versions (
    runbook_id  bigint NOT NULL REFERENCES runbooks (id) ON DELETE CASCADE,
    version     integer NOT NULL,
    definition  jsonb NOT NULL,
    yaml        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text,
    PRIMARY KEY (runbook_id, version)
);

CREATE TABLE schedules (
    id           bigserial PRIMARY KEY,
    runbook_id   bigint NOT NULL REFERENCES runbooks (id) ON DELETE CASCADE,
    name         text NOT NULL CONSTRAINT schedules_name_key UNIQUE,
    cron         text NOT NULL,
    timezone     text NOT NULL DEFAULT 'UTC',
    params       jsonb NOT NULL DEFAULT '{}',
    enabled      boolean NOT NULL DEFAULT true,
    missed       text NOT NULL DEFAULT 'skip' CHECK (missed IN ('skip', 'catch_up')),
    -- Ticks up to here are settled (run or skipped).
    checked_until timestamptz NOT NULL DEFAULT now(),
    created_by   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Runs are jobs: claimed with FOR UPDATE SKIP LOCKED, held by a heartbeated
-- lease; a lease that runs out turns the run `interrupted`.
CREATE TABLE runs (
    id               bigserial PRIMARY KEY,
    runbook_id       bigint NOT NULL REFERENCES runbooks (id) ON DELETE RESTRICT,
    version          integer NOT NULL,
    params           jsonb NOT NULL DEFAULT '{}',
    -- Concurrency key: the target parameter's value, or '*'.
    target           text NOT NULL,
    exclusive        boolean NOT NULL DEFAULT true,
    -- sha256(runbook id, version, canonical params): approvals bind to it.
    binding          bytea NOT NULL,
    status           text NOT NULL DEFAULT 'queued' CHECK (status IN
                     ('queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled', 'interrupted')),
    reason           text NOT NULL DEFAULT '',
    incident         text,
    requested_by     text NOT NULL,
    requested_by_id  bigint REFERENCES users (id) ON DELETE SET NULL,
    -- Audit actor kind of the requester: user, token or system (schedules).
    requested_kind   text NOT NULL DEFAULT 'user',
    schedule_id      bigint REFERENCES schedules (id) ON DELETE SET NULL,
    parent_run_id    bigint REFERENCES runs (id) ON DELETE SET NULL,
    parent_step      integer,
    -- Index of the next main step to run (resume point).
    next_step        integer NOT NULL DEFAULT 0,
    outputs          jsonb NOT NULL DEFAULT '{}',
    cancel_requested boolean NOT NULL DEFAULT false,
    lease_owner      text,
    lease_until      timestamptz,
    error            text,
    closed_by        text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    CHECK ((status = 'running') = (lease_owner IS NOT NULL))
);
CREATE INDEX runs_queued ON runs (id) WHERE status = 'queued';
CREATE INDEX runs_running ON runs (lease_until) WHERE status = 'running';
CREATE INDEX runs_by_runbook ON runs (runbook_id, id DESC);
-- One active run per (runbook, target) unless the definition allows more.
CREATE UNIQUE INDEX runs_one_active_per_target ON runs (runbook_id, target)
    WHERE exclusive AND status IN ('queued', 'running', 'waiting');

CREATE TABLE run_steps (
    run_id           bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    idx              integer NOT NULL,
    name             text NOT NULL,
    title            text NOT NULL DEFAULT '',
    kind             text NOT NULL,
    phase            text NOT NULL DEFAULT 'main' CHECK (phase IN ('main', 'rollback')),
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN
                     ('pending', 'running', 'waiting', 'succeeded', 'failed', 'skipped', 'cancelled', 'interrupted')),
    started_at       timestamptz,
    finished_at      timestamptz,
    output           text NOT NULL DEFAULT '',
    output_truncated boolean NOT NULL DEFAULT false,
    result           jsonb NOT NULL DEFAULT '{}',
    error            text,
    note             text,
    PRIMARY KEY (run_id, idx)
);

-- The one timeline model: append-only events about a subject
-- ('run', later 'incident', 'backup', 'maintenance').
CREATE TABLE timeline_events (
    id            bigserial PRIMARY KEY,
    subject_type  text NOT NULL,
    subject_id    bigint NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    kind          text NOT NULL,
    actor         text,
    actor_id      bigint,
    step          integer,
    message       text NOT NULL,
    data          jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX timeline_events_subject ON timeline_events (subject_type, subject_id, id);

CREATE FUNCTION timeline_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'timeline_events is append-only';
END $$;
CREATE TRIGGER timeline_events_append_only BEFORE UPDATE OR DELETE ON timeline_events
    FOR EACH ROW EXECUTE FUNCTION timeline_append_only();

CREATE TABLE approvals (
    id           bigserial PRIMARY KEY,
    run_id       bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    -- NULL: the runbook-level approval before the first step.
    step         integer,
    binding      bytea NOT NULL,
    subject      text NOT NULL,
    required     integer NOT NULL CHECK (required BETWEEN 1 AND 10),
    roles        text[] NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN
                 ('pending', 'approved', 'denied', 'expired', 'withdrawn')),
    requested_by_id bigint,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    decided_at   timestamptz
);
CREATE UNIQUE INDEX approvals_one_per_gate ON approvals (run_id, coalesce(step, -1), binding)
    WHERE status IN ('pending', 'approved');
CREATE INDEX approvals_pending ON approvals (id) WHERE status = 'pending';

CREATE TABLE approval_votes (
    approval_id  bigint NOT NULL REFERENCES approvals (id) ON DELETE CASCADE,
    user_id      bigint NOT NULL,
    username     text NOT NULL,
    approve      boolean NOT NULL,
    reason       text NOT NULL DEFAULT '',
    at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (approval_id, user_id)
);

-- Approvals required for an action kind wherever a runbook step does it.
CREATE TABLE approval_policies (
    action_kind  text PRIMARY KEY CHECK (action_kind ~ '^[a-z][a-z_.]{0,63}$'),
    required     integer NOT NULL CHECK (required BETWEEN 1 AND 10),
    roles        text[] NOT NULL,
    expires      text NOT NULL DEFAULT '1h',
    updated_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO approval_policies (action_kind, required, roles, expires) VALUES
    ('prune', 1, ARRAY['operator', 'admin'], '1h'),
    ('database.promote', 1, ARRAY['admin'], '30m'),
    ('container.stop.critical', 1, ARRAY['operator', 'admin'], '1h');

-- Each (schedule, tick) is claimed once, whatever the number of servers.
CREATE TABLE schedule_ticks (
    schedule_id  bigint NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    tick_at      timestamptz NOT NULL,
    run_id       bigint REFERENCES runs (id) ON DELETE SET NULL,
    claimed_by   text NOT NULL,
    outcome      text NOT NULL DEFAULT 'started',
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_id, tick_at)
);
