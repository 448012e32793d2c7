-- Inventory: Docker engines, services, the dependency graph, container actions.

CREATE TYPE service_tier AS ENUM ('critical', 'application', 'support');

-- A Docker Engine Opsdeck talks to. Reachability, version and the container
-- cache are runtime state held by the engine hub (server/src/docker/), not here.
CREATE TABLE engines (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL,
    -- unix:///path/docker.sock, or tcp://host:port (TLS when the paths below are set)
    endpoint   TEXT NOT NULL,
    -- Paths on the Opsdeck host of the PEM files for TLS client authentication.
    tls_ca     TEXT,
    tls_cert   TEXT,
    tls_key    TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT engines_name_format CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    CONSTRAINT engines_tls_complete CHECK (
        (tls_ca IS NULL AND tls_cert IS NULL AND tls_key IS NULL)
        OR (tls_ca IS NOT NULL AND tls_cert IS NOT NULL AND tls_key IS NOT NULL))
);
CREATE UNIQUE INDEX engines_name_key ON engines (name);

-- A service of the inventory and the containers it maps to: on `engine_id`
-- (NULL: any engine), the containers labelled with compose project + service,
-- or the container named `container_name`.
CREATE TABLE services (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    tier            service_tier NOT NULL DEFAULT 'application',
    owner_team      TEXT,
    docs_url        TEXT,
    repo_url        TEXT,
    engine_id       BIGINT REFERENCES engines (id) ON DELETE SET NULL,
    compose_project TEXT,
    compose_service TEXT,
    container_name  TEXT,
    image           TEXT,
    ports           JSONB NOT NULL DEFAULT '[]',
    volumes         JSONB NOT NULL DEFAULT '[]',
    labels          JSONB NOT NULL DEFAULT '{}',
    -- Where the service came from: manual, compose, discovered, yaml.
    source          TEXT NOT NULL,
    -- Fields changed by hand since the last import; re-imports leave them alone.
    edited_fields   TEXT[] NOT NULL DEFAULT '{}',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT services_name_format CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    CONSTRAINT services_source_known CHECK (source IN ('manual', 'compose', 'discovered', 'yaml'))
);
CREATE UNIQUE INDEX services_name_key ON services (name);
CREATE INDEX services_compose_idx ON services (compose_project, compose_service);

-- "service requires requires_id" (its inverse is "supports"). The graph is
-- kept acyclic by the application (checked in the transaction that adds edges).
CREATE TABLE service_dependencies (
    service_id  BIGINT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    requires_id BIGINT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    PRIMARY KEY (service_id, requires_id),
    CONSTRAINT service_dependencies_not_self CHECK (service_id <> requires_id),
    CONSTRAINT service_dependencies_source_known CHECK (source IN ('compose', 'manual'))
);
CREATE INDEX service_dependencies_requires_idx ON service_dependencies (requires_id);

-- Every container or stack action: who, what, when, how long, how it ended.
-- Written as `running` before the engine is asked, finished afterwards; a row
-- left `running` by a crash is closed as `interrupted` by the upkeep task.
CREATE TABLE container_actions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            TEXT NOT NULL,
    target          TEXT NOT NULL,
    service_id      BIGINT REFERENCES services (id) ON DELETE SET NULL,
    compose_project TEXT,
    params          JSONB NOT NULL DEFAULT '{}',
    actor           TEXT NOT NULL,
    actor_id        BIGINT,
    started_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at     TIMESTAMPTZ,
    outcome         TEXT NOT NULL DEFAULT 'running',
    error           TEXT,
    steps           JSONB NOT NULL DEFAULT '[]',
    CONSTRAINT container_actions_outcome_known
        CHECK (outcome IN ('running', 'succeeded', 'failed', 'interrupted'))
);
CREATE INDEX container_actions_service_idx ON container_actions (service_id, started_at DESC);
CREATE INDEX container_actions_project_idx ON container_actions (compose_project, started_at DESC);
CREATE INDEX container_actions_running_idx ON container_actions (started_at) WHERE outcome = 'running';
