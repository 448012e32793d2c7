-- Runbooks bound to alerts (issue 25): a binding names a runbook for the
-- incidents an alert opens, as a suggestion (shown on the incident with its
-- parameters filled in) or to be started automatically by the system.
CREATE TABLE runbook_bindings (
    id            bigserial PRIMARY KEY,
    runbook_id    bigint NOT NULL REFERENCES runbooks (id) ON DELETE CASCADE,
    mode          text NOT NULL CHECK (mode IN ('suggested', 'automatic')),
    -- What it matches; every field given must match, at least one is given
    -- (checked by the server). check_id: that check is critical;
    -- check_kind (with or without service_id): a check of that kind on the
    -- service is critical; service_id alone: the incident is on the
    -- service; alert_name and alert_labels: an Alertmanager alert with that
    -- alertname and those label values; severity: the incident is at least
    -- that severe (1 = P1).
    check_id      bigint REFERENCES checks (id) ON DELETE CASCADE,
    check_kind    text CHECK (check_kind ~ '^[a-z_]{1,32}$'),
    service_id    bigint REFERENCES services (id) ON DELETE CASCADE,
    alert_name    text CHECK (length(alert_name) BETWEEN 1 AND 200),
    alert_labels  jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(alert_labels) = 'object'),
    severity      smallint CHECK (severity BETWEEN 1 AND 4),
    -- Fixed parameters; service/container/database parameters left out are
    -- filled from the incident.
    params        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    -- Automatic only: at most this many runs an hour (per binding), and not
    -- again on the same target within the cooldown.
    max_per_hour  integer NOT NULL DEFAULT 3 CHECK (max_per_hour BETWEEN 1 AND 60),
    cooldown_s    integer NOT NULL DEFAULT 600 CHECK (cooldown_s BETWEEN 0 AND 86400),
    enabled       boolean NOT NULL DEFAULT true,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runbook_bindings_by_runbook ON runbook_bindings (runbook_id);

-- Each (automatic binding, incident) is decided once, whatever the number
-- of server processes: started (with its run), suppressed (maintenance),
-- limited (per hour or cooldown) or refused (the run engine said no).
CREATE TABLE runbook_binding_firings (
    id            bigserial PRIMARY KEY,
    binding_id    bigint NOT NULL REFERENCES runbook_bindings (id) ON DELETE CASCADE,
    incident_id   bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    target        text NOT NULL,
    outcome       text NOT NULL CHECK (outcome IN ('started', 'suppressed', 'limited', 'refused')),
    run_id        bigint REFERENCES runs (id) ON DELETE SET NULL,
    detail        text NOT NULL DEFAULT '',
    at            timestamptz NOT NULL DEFAULT now(),
    -- Set once the started run has ended (and, when it failed, its failure
    -- was put on the incident and escalated).
    settled_at    timestamptz,
    UNIQUE (binding_id, incident_id)
);
CREATE INDEX runbook_binding_firings_recent ON runbook_binding_firings (binding_id, at DESC);
CREATE INDEX runbook_binding_firings_unsettled ON runbook_binding_firings (run_id)
    WHERE outcome = 'started' AND settled_at IS NULL;
