-- Image updates (issue 20): what each service's image registry says
-- (discovery), the per-service update settings, the version history, the
-- crash journal of an update in progress, auto-heal policies, and Docker
-- clean-up previews. One migration for the whole capability.

-- Per-service update settings. A service without a row uses the defaults
-- (policy notify, moves patch, gate 120 s, auto-heal off).
CREATE TABLE service_update_settings (
    service_id     BIGINT PRIMARY KEY REFERENCES services (id) ON DELETE CASCADE,
    -- none: never; notify: tell people when an update is available;
    -- auto: update by itself inside a maintenance window.
    policy         TEXT NOT NULL DEFAULT 'notify' CHECK (policy IN ('none', 'notify', 'auto')),
    -- Which moves to a newer *tag* are offered for a pinned semver tag.
    moves          TEXT NOT NULL DEFAULT 'patch' CHECK (moves IN ('none', 'patch', 'minor', 'any')),
    -- How long the health gate waits for the updated service.
    gate_seconds   INTEGER NOT NULL DEFAULT 120 CHECK (gate_seconds BETWEEN 5 AND 3600),
    -- Auto-heal: restart (through the service-down runbook) when unhealthy
    -- for heal_after_minutes, at most heal_max_per_hour times an hour, then
    -- escalate. NULL heal_after_minutes = off.
    heal_after_minutes INTEGER CHECK (heal_after_minutes BETWEEN 1 AND 1440),
    heal_max_per_hour  INTEGER NOT NULL DEFAULT 3 CHECK (heal_max_per_hour BETWEEN 1 AND 60),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- What discovery last saw, one row per service.
CREATE TABLE image_status (
    service_id      BIGINT PRIMARY KEY REFERENCES services (id) ON DELETE CASCADE,
    -- The image reference the service's containers were created from.
    image_ref       TEXT NOT NULL,
    -- The manifest digest the running containers' image came from (its
    -- RepoDigests entry for this repository), when known.
    running_digest  TEXT,
    -- The registry's current digest for the tag.
    latest_digest   TEXT,
    -- When the registry's image was created, where it says.
    latest_created  TIMESTAMPTZ,
    -- Newer semver tags the service's policy allows, newest first.
    newer_tags      TEXT[] NOT NULL DEFAULT '{}',
    -- Built locally: no registry to ask.
    local_only      BOOLEAN NOT NULL DEFAULT false,
    -- The registry's error (unreachable, unauthorised, rate limited).
    error           TEXT,
    checked_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The latest digest a notification was sent for (notify once per digest).
    notified_digest TEXT
);

-- Which image ran when, one row per version a service moved to.
CREATE TABLE image_versions (
    id          BIGSERIAL PRIMARY KEY,
    service_id  BIGINT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    image_ref   TEXT NOT NULL,
    -- Manifest digest (sha256:…) when the image came from a registry.
    digest      TEXT,
    -- The local image id (sha256:…): what a rollback recreates from.
    image_id    TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at    TIMESTAMPTZ,
    run_id      BIGINT REFERENCES runs (id) ON DELETE SET NULL,
    -- Who moved the service to this version (user name, or system:<policy>).
    actor       TEXT NOT NULL,
    -- running: the gate has not decided yet; confirmed: the gate passed;
    -- rolled_back: the gate failed and the previous version came back;
    -- interrupted: Opsdeck stopped mid-update and recovery restored a
    -- good state; observed: seen by discovery, not moved by Opsdeck.
    outcome     TEXT NOT NULL CHECK (outcome IN ('running', 'confirmed', 'rolled_back', 'interrupted', 'observed'))
);
CREATE INDEX image_versions_service ON image_versions (service_id, started_at DESC);

-- The crash journal of an update in progress: one row per container being
-- replaced, written before each engine step, so a process that dies
-- mid-update leaves enough for recovery to put back a good state.
CREATE TABLE image_update_journal (
    id               BIGSERIAL PRIMARY KEY,
    run_id           BIGINT REFERENCES runs (id) ON DELETE SET NULL,
    service_id       BIGINT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    engine_id        BIGINT NOT NULL REFERENCES engines (id) ON DELETE CASCADE,
    -- The container's name (what the new one takes over).
    container_name   TEXT NOT NULL,
    old_container_id TEXT NOT NULL,
    old_image_id     TEXT NOT NULL,
    new_container_id TEXT,
    new_image_id     TEXT,
    -- Where the replacement is (see updates::apply for the steps).
    phase            TEXT NOT NULL,
    finished         BOOLEAN NOT NULL DEFAULT false,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX image_update_journal_open ON image_update_journal (engine_id) WHERE NOT finished;

-- Auto-heal attempts (the per-hour limit counts these).
CREATE TABLE autoheal_attempts (
    id          BIGSERIAL PRIMARY KEY,
    service_id  BIGINT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    run_id      BIGINT REFERENCES runs (id) ON DELETE SET NULL,
    incident_id BIGINT REFERENCES incidents (id) ON DELETE SET NULL,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX autoheal_attempts_service ON autoheal_attempts (service_id, started_at DESC);

-- A clean-up preview: exactly what a clean-up of an engine would remove.
CREATE TABLE cleanup_previews (
    id          BIGSERIAL PRIMARY KEY,
    engine_id   BIGINT NOT NULL REFERENCES engines (id) ON DELETE CASCADE,
    -- What was asked (kinds, age), as the request gave it.
    request     JSONB NOT NULL,
    -- The items: [{kind, id, name, size_bytes, reason}].
    items       JSONB NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The run that applied it (one run per preview).
    run_id      BIGINT UNIQUE REFERENCES runs (id) ON DELETE SET NULL
);
