-- Maintenance mode and maintenance windows (server/src/maintenance/).

-- What a stack's (compose project's) maintenance does besides marking and
-- suppressing, and the actuation's durable state. `state` moves
-- off -> enabling -> on -> disabling -> off; `saved` holds what proxy mode
-- replaced (per "<engine id>/<container id>", per path: base64 content or
-- null for "absent")
-- from before the first write until the restore is done, so a crash midway
-- is undone by the next enable or disable.
CREATE TABLE maintenance_actuators (
    stack       text PRIMARY KEY CHECK (stack ~ '^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$'),
    mode        text NOT NULL CHECK (mode IN ('none', 'proxy', 'runbook')),
    config      jsonb NOT NULL DEFAULT '{}',
    state       text NOT NULL DEFAULT 'off' CHECK (state IN ('off', 'enabling', 'on', 'disabling')),
    saved       jsonb,
    changed_at  timestamptz,
    error       text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A scheduled window: once, daily or weekly at a local time in a zone.
CREATE TABLE maintenance_windows (
    id             bigserial PRIMARY KEY,
    title          text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    reason         text NOT NULL DEFAULT '',
    scope          jsonb NOT NULL,
    actuate        boolean NOT NULL DEFAULT true,
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL CHECK (ends_at > starts_at),
    repeat         text NOT NULL CHECK (repeat IN ('once', 'daily', 'weekly')),
    weekdays       text[] NOT NULL DEFAULT '{}',
    time_zone      text NOT NULL,
    until          date,
    enabled        boolean NOT NULL DEFAULT true,
    created_by     text NOT NULL,
    created_by_id  bigint,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- One stretch of maintenance: by hand, or one occurrence of a window (each
-- occurrence starts once, whatever the number of servers).
CREATE TABLE maintenance_periods (
    id               bigserial PRIMARY KEY,
    window_id        bigint REFERENCES maintenance_windows (id) ON DELETE SET NULL,
    occurrence_start timestamptz,
    title            text NOT NULL,
    reason           text NOT NULL DEFAULT '',
    scope            jsonb NOT NULL,
    -- Compose project when the scope is a stack (its actuator applies).
    stack            text,
    service_ids      bigint[] NOT NULL,
    actuate          boolean NOT NULL DEFAULT true,
    status           text NOT NULL DEFAULT 'requested' CHECK (status IN
                     ('requested', 'enabling', 'active', 'disabling', 'ended', 'failed', 'cancelled')),
    started_by       text NOT NULL,
    started_by_id    bigint,
    starts_at        timestamptz NOT NULL DEFAULT now(),
    ends_at          timestamptz NOT NULL,
    enabled_at       timestamptz,
    ended_at         timestamptz,
    ended_by         text,
    error            text,
    enable_run_id    bigint REFERENCES runs (id) ON DELETE SET NULL,
    disable_run_id   bigint REFERENCES runs (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX maintenance_periods_one_per_occurrence
    ON maintenance_periods (window_id, occurrence_start) WHERE window_id IS NOT NULL;
CREATE INDEX maintenance_periods_open ON maintenance_periods (ends_at)
    WHERE status IN ('requested', 'enabling', 'active', 'disabling');
CREATE INDEX maintenance_periods_by_time ON maintenance_periods (starts_at DESC);

-- Alarms held back by a period: each (source, key) once per period.
CREATE TABLE maintenance_suppressions (
    period_id  bigint NOT NULL REFERENCES maintenance_periods (id) ON DELETE CASCADE,
    source     text NOT NULL CHECK (source IN ('health', 'alertmanager', 'escalation')),
    key        text NOT NULL,
    message    text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period_id, source, key)
);
