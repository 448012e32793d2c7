-- Backup catalog (server/src/backups/): storage targets, plans, backup sets
-- and their artifacts.

-- Where backups are stored: a local directory (S3-compatible storage later).
CREATE TABLE backup_targets (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    kind        text NOT NULL CHECK (kind IN ('local')),
    config      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- What to back up, where, how hard to compress, whether to verify.
CREATE TABLE backup_plans (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    sources     jsonb NOT NULL,
    target_id   bigint NOT NULL REFERENCES backup_targets (id) ON DELETE RESTRICT,
    zstd_level  integer NOT NULL DEFAULT 3 CHECK (zstd_level BETWEEN 1 AND 19),
    verify      boolean NOT NULL DEFAULT true,
    enabled     boolean NOT NULL DEFAULT true,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One backup set. `status` is `succeeded` only once every artifact is
-- stored and its checksum recorded; a crash leaves `running`, which the
-- sweep turns `interrupted` (partial files removed) when its run ended.
CREATE TABLE backups (
    id            bigserial PRIMARY KEY,
    plan_id       bigint REFERENCES backup_plans (id) ON DELETE SET NULL,
    plan_name     text NOT NULL,
    -- NULL once the target of a deleted backup is removed (the API refuses
    -- to remove a target that still holds backups).
    target_id     bigint REFERENCES backup_targets (id) ON DELETE SET NULL,
    run_id        bigint REFERENCES runs (id) ON DELETE SET NULL,
    trigger       text NOT NULL DEFAULT 'manual' CHECK (trigger IN ('manual', 'schedule', 'safety', 'drill')),
    requested_by  text NOT NULL,
    status        text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
    verification  text NOT NULL DEFAULT 'pending' CHECK (verification IN ('pending', 'verified', 'failed', 'skipped')),
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    bytes         bigint NOT NULL DEFAULT 0,
    raw_bytes     bigint NOT NULL DEFAULT 0,
    error         text,
    verified_at   timestamptz,
    verify_error  text,
    manifest      jsonb,
    deleted_at    timestamptz
);
CREATE INDEX backups_by_plan ON backups (plan_id, id DESC);
CREATE INDEX backups_running ON backups (id) WHERE status = 'running';

-- One stored object of a set (a database dump, the globals, …).
CREATE TABLE backup_artifacts (
    backup_id    bigint NOT NULL REFERENCES backups (id) ON DELETE CASCADE,
    idx          integer NOT NULL,
    source       text NOT NULL,
    kind         text NOT NULL,
    object_key   text NOT NULL,
    bytes        bigint NOT NULL DEFAULT 0,
    raw_bytes    bigint NOT NULL DEFAULT 0,
    sha256       text,
    tool         text NOT NULL DEFAULT '',
    duration_ms  bigint NOT NULL DEFAULT 0,
    stats        jsonb NOT NULL DEFAULT '{}',
    status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'stored', 'failed')),
    error        text,
    PRIMARY KEY (backup_id, idx)
);
