-- Host and container resource history (issue 21): CPU, memory, network,
-- block I/O and disk kept as rollups, per service, per engine (all its
-- containers), for the Opsdeck host and for each of its mounts.
--
-- Like the check rollups, nothing is stored per sample: the sampler
-- (server/src/resources/) adds each sample into per-minute accumulators in
-- memory and writes one row per series and finished minute, to the minute
-- table and (added up) to the hour table, in one batched statement. Minute
-- rows are kept for health_settings.minute_retention_days (2 days), hour
-- rows for hour_retention_days (400 days).

-- What a series is about. A service's or engine's series goes with it.
CREATE TABLE resource_series (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       TEXT NOT NULL,
    service_id BIGINT REFERENCES services (id) ON DELETE CASCADE,
    engine_id  BIGINT REFERENCES engines (id) ON DELETE CASCADE,
    -- A mount point of the Opsdeck host (kind 'mount').
    mount      TEXT,
    CONSTRAINT resource_series_kind CHECK (kind IN ('service', 'engine', 'host', 'mount')),
    CONSTRAINT resource_series_shape CHECK (
        (kind = 'service') = (service_id IS NOT NULL)
        AND (kind = 'engine') = (engine_id IS NOT NULL)
        AND (kind = 'mount') = (mount IS NOT NULL))
);
CREATE UNIQUE INDEX resource_series_key
    ON resource_series (kind, COALESCE(service_id, 0), COALESCE(engine_id, 0), COALESCE(mount, ''));

-- One row per series and minute (bucket = start of the minute). Averages
-- are kept as sum + samples so partial writes of one bucket add up exactly.
-- CPU is in percent of one core (a service's containers summed; the host's
-- cores summed). Network and block I/O are the bytes moved in the bucket.
CREATE TABLE resource_rollups_minute (
    series_id  BIGINT NOT NULL REFERENCES resource_series (id) ON DELETE CASCADE,
    bucket     TIMESTAMPTZ NOT NULL,
    samples    INTEGER NOT NULL,
    cpu_sum    DOUBLE PRECISION NOT NULL DEFAULT 0,
    cpu_max    DOUBLE PRECISION,
    mem_sum    DOUBLE PRECISION NOT NULL DEFAULT 0,
    mem_max    BIGINT,
    -- The memory limit (containers; the RAM for the host), largest seen.
    mem_limit  BIGINT,
    net_rx     BIGINT NOT NULL DEFAULT 0,
    net_tx     BIGINT NOT NULL DEFAULT 0,
    blk_read   BIGINT NOT NULL DEFAULT 0,
    blk_write  BIGINT NOT NULL DEFAULT 0,
    -- Mounts: bytes used (largest in the bucket) and the filesystem's size
    -- as df counts it (used + available to unprivileged users).
    disk_used  BIGINT,
    disk_total BIGINT,
    PRIMARY KEY (series_id, bucket)
);
CREATE INDEX resource_rollups_minute_bucket_idx ON resource_rollups_minute (bucket);

-- Per-hour rollups, same shape (bucket = start of the hour).
CREATE TABLE resource_rollups_hour (LIKE resource_rollups_minute INCLUDING ALL);
ALTER TABLE resource_rollups_hour
    ADD CONSTRAINT resource_rollups_hour_series_fk FOREIGN KEY (series_id)
        REFERENCES resource_series (id) ON DELETE CASCADE;
