-- Health checks, their state changes and rollups, the public status page
-- opt-in, the daily check report.
--
-- Storage stays small: a probe result is never stored as a row. The engine
-- (server/src/checks/) keeps the latest result in memory, writes a row to
-- check_events only when a check's settled state changes, and adds each
-- probe into per-minute and per-hour rollups flushed once a minute.

ALTER TABLE services
    ADD COLUMN public_status BOOLEAN NOT NULL DEFAULT false,
    -- The name the public status page shows; the service name when NULL.
    ADD COLUMN public_name TEXT,
    ADD CONSTRAINT services_public_name_length CHECK (public_name IS NULL OR length(public_name) BETWEEN 1 AND 80);

CREATE TABLE checks (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- NULL: a check of the Opsdeck host itself.
    service_id      BIGINT REFERENCES services (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    -- The wire type CheckSpec (tagged by kind), validated by the server.
    spec            JSONB NOT NULL,
    -- Password of a database check. Never sent back, never logged.
    secret          TEXT,
    -- The secret path segment of a heartbeat check's URL.
    heartbeat_token TEXT,
    interval_s      INTEGER NOT NULL,
    timeout_ms      INTEGER NOT NULL,
    fail_after      INTEGER NOT NULL,
    recover_after   INTEGER NOT NULL,
    enabled         BOOLEAN NOT NULL DEFAULT true,
    -- Settled state, written on every change (with the event) so a restart
    -- resumes from it instead of from "unknown".
    status          TEXT NOT NULL DEFAULT 'unknown',
    status_since    TIMESTAMPTZ,
    -- The probe result that caused the last change (wire ProbeResult).
    last_result     JSONB,
    last_heartbeat_at TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT checks_name_length CHECK (length(name) BETWEEN 1 AND 100),
    CONSTRAINT checks_kind_matches CHECK (spec->>'kind' = kind),
    CONSTRAINT checks_interval_min CHECK (interval_s BETWEEN 5 AND 86400),
    CONSTRAINT checks_timeout_range CHECK (timeout_ms BETWEEN 100 AND 120000),
    CONSTRAINT checks_fail_after_range CHECK (fail_after BETWEEN 1 AND 20),
    CONSTRAINT checks_recover_after_range CHECK (recover_after BETWEEN 1 AND 20),
    CONSTRAINT checks_status_known CHECK (status IN ('unknown', 'ok', 'warning', 'critical')),
    CONSTRAINT checks_heartbeat_token CHECK ((kind = 'heartbeat') = (heartbeat_token IS NOT NULL))
);
CREATE UNIQUE INDEX checks_name_key ON checks (COALESCE(service_id, 0), name);
CREATE UNIQUE INDEX checks_heartbeat_token_key ON checks (heartbeat_token);
CREATE INDEX checks_service_idx ON checks (service_id);

-- A settled state change of a check.
CREATE TABLE check_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    check_id    BIGINT NOT NULL REFERENCES checks (id) ON DELETE CASCADE,
    at          TIMESTAMPTZ NOT NULL,
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    message     TEXT NOT NULL
);
CREATE INDEX check_events_check_at_idx ON check_events (check_id, at DESC);
CREATE INDEX check_events_at_idx ON check_events (at);

-- Per-minute rollups (bucket = start of the minute). Latency is kept as
-- sum + count so partial flushes of the same bucket add up exactly.
CREATE TABLE check_rollups_minute (
    check_id      BIGINT NOT NULL REFERENCES checks (id) ON DELETE CASCADE,
    bucket        TIMESTAMPTZ NOT NULL,
    probes        INTEGER NOT NULL,
    ok            INTEGER NOT NULL,
    warning       INTEGER NOT NULL,
    critical      INTEGER NOT NULL,
    latency_min   DOUBLE PRECISION,
    latency_max   DOUBLE PRECISION,
    latency_sum   DOUBLE PRECISION NOT NULL DEFAULT 0,
    latency_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (check_id, bucket)
);
CREATE INDEX check_rollups_minute_bucket_idx ON check_rollups_minute (bucket);

-- Per-hour rollups, same shape (bucket = start of the hour).
CREATE TABLE check_rollups_hour (LIKE check_rollups_minute INCLUDING ALL);
ALTER TABLE check_rollups_hour
    ADD CONSTRAINT check_rollups_hour_check_fk FOREIGN KEY (check_id) REFERENCES checks (id) ON DELETE CASCADE;

-- One row of settings for the health engine.
CREATE TABLE health_settings (
    id                     BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    minute_retention_days  INTEGER NOT NULL DEFAULT 2 CHECK (minute_retention_days BETWEEN 1 AND 31),
    hour_retention_days    INTEGER NOT NULL DEFAULT 400 CHECK (hour_retention_days BETWEEN 7 AND 3660),
    event_retention_days   INTEGER NOT NULL DEFAULT 400 CHECK (event_retention_days BETWEEN 7 AND 3660),
    -- HH:MM, UTC.
    report_time            TEXT NOT NULL DEFAULT '07:00' CHECK (report_time ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$')
);
INSERT INTO health_settings DEFAULT VALUES;

-- The daily check report (the handbooks' morning checklist).
CREATE TABLE reports (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    day          DATE NOT NULL,
    generated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- 'schedule' or the username who asked for it.
    trigger      TEXT NOT NULL,
    overall      TEXT NOT NULL CHECK (overall IN ('unknown', 'ok', 'warning', 'critical')),
    -- Wire ReportItem[].
    items        JSONB NOT NULL
);
CREATE INDEX reports_day_idx ON reports (day DESC, id DESC);
-- At most one scheduled report per day, whatever the number of instances.
CREATE UNIQUE INDEX reports_scheduled_day_key ON reports (day) WHERE trigger = 'schedule';
