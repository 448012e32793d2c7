-- Incidents, contacts, on-call rotations, escalation policies and
-- notification channels (issue 6).
--
-- Incidents are never deleted: their history is the record. Their events live
-- in `timeline_events` (subject_type 'incident'), append-only.

-- SLA targets per severity (seconds from `triggered_at`; NULL = no target).
-- Defaults: P1 from the handbooks; P2–P4 scaled from it (ARCHITECTURE.md).
CREATE TABLE sla_targets (
    severity        smallint PRIMARY KEY CHECK (severity BETWEEN 1 AND 4),
    ack_secs        integer CHECK (ack_secs > 0),
    diagnose_secs   integer CHECK (diagnose_secs > 0),
    mitigate_secs   integer CHECK (mitigate_secs > 0),
    resolve_secs    integer CHECK (resolve_secs > 0),
    postmortem_secs integer CHECK (postmortem_secs > 0)
);
INSERT INTO sla_targets VALUES
    (1,   300,   900,  1800,    7200,   86400),
    (2,   900,  3600,  7200,   28800,  259200),
    (3,  3600, 14400, 86400,  259200,    NULL),
    (4, 86400,  NULL,  NULL, 1209600,    NULL);

-- People who can be notified (not necessarily Opsdeck users).
CREATE TABLE people (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    title       text NOT NULL DEFAULT '',
    email       text,
    phone       text,
    chat_handle text,
    user_id     bigint UNIQUE REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE teams (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE team_members (
    team_id   bigint NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    person_id bigint NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, person_id)
);

-- A rotation hands off daily or weekly at a local time in a time zone,
-- counting from `starts_on`; members take turns in `position` order.
CREATE TABLE rotations (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    team_id         bigint REFERENCES teams (id) ON DELETE SET NULL,
    handoff         text NOT NULL DEFAULT 'weekly' CHECK (handoff IN ('daily', 'weekly')),
    handoff_time    time NOT NULL DEFAULT '09:00',
    -- ISO weekday of the weekly handoff (1 = Monday).
    handoff_weekday smallint CHECK (handoff_weekday BETWEEN 1 AND 7),
    time_zone       text NOT NULL DEFAULT 'UTC',
    starts_on       date NOT NULL DEFAULT current_date,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((handoff = 'weekly') = (handoff_weekday IS NOT NULL))
);
CREATE TABLE rotation_members (
    rotation_id bigint NOT NULL REFERENCES rotations (id) ON DELETE CASCADE,
    position    integer NOT NULL CHECK (position >= 0),
    person_id   bigint NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    PRIMARY KEY (rotation_id, position)
);
-- Holidays and swaps: someone else is on call for a while.
CREATE TABLE rotation_overrides (
    id          bigserial PRIMARY KEY,
    rotation_id bigint NOT NULL REFERENCES rotations (id) ON DELETE CASCADE,
    person_id   bigint NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    reason      text NOT NULL DEFAULT '',
    created_by  text NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX rotation_overrides_by_time ON rotation_overrides (rotation_id, starts_at);

-- Escalation: levels with a delay from the incident's trigger time.
CREATE TABLE escalation_policies (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    description text NOT NULL DEFAULT '',
    is_default  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX escalation_policies_one_default ON escalation_policies (is_default) WHERE is_default;
CREATE TABLE escalation_levels (
    policy_id  bigint NOT NULL REFERENCES escalation_policies (id) ON DELETE CASCADE,
    level      integer NOT NULL CHECK (level >= 0),
    delay_secs integer NOT NULL CHECK (delay_secs >= 0),
    PRIMARY KEY (policy_id, level)
);
CREATE TABLE escalation_targets (
    id          bigserial PRIMARY KEY,
    policy_id   bigint NOT NULL,
    level       integer NOT NULL,
    person_id   bigint REFERENCES people (id) ON DELETE CASCADE,
    rotation_id bigint REFERENCES rotations (id) ON DELETE CASCADE,
    team_id     bigint REFERENCES teams (id) ON DELETE CASCADE,
    FOREIGN KEY (policy_id, level) REFERENCES escalation_levels (policy_id, level) ON DELETE CASCADE,
    CHECK (num_nonnulls(person_id, rotation_id, team_id) = 1)
);
CREATE INDEX escalation_targets_by_level ON escalation_targets (policy_id, level);

-- Notification channels. `config` holds the non-secret settings (per kind:
-- url; or SMTP host, port, tls, username, from); `secret` is write-only
-- (HMAC key, SMTP password, gateway token) and never leaves the server.
CREATE TABLE channels (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    kind       text NOT NULL CHECK (kind IN ('webhook', 'slack', 'teams', 'email', 'sms')),
    config     jsonb NOT NULL DEFAULT '{}',
    secret     text,
    enabled    boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- Channels by severity (low → chat; medium → e-mail + chat; …).
CREATE TABLE channel_rules (
    severity   smallint NOT NULL CHECK (severity BETWEEN 1 AND 4),
    channel_id bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    PRIMARY KEY (severity, channel_id)
);

CREATE TABLE incident_settings (
    id                boolean PRIMARY KEY DEFAULT true CHECK (id),
    -- Health checks open incidents for root-cause services.
    auto_open         boolean NOT NULL DEFAULT true,
    -- On recovery: 'propose' (timeline + flag) or 'resolve' (automatically).
    on_recovery       text NOT NULL DEFAULT 'propose' CHECK (on_recovery IN ('propose', 'resolve')),
    default_policy_id bigint REFERENCES escalation_policies (id) ON DELETE SET NULL,
    ack_link_ttl_secs integer NOT NULL DEFAULT 86400 CHECK (ack_link_ttl_secs BETWEEN 60 AND 604800)
);
INSERT INTO incident_settings DEFAULT VALUES;

CREATE TABLE incidents (
    id                   bigserial PRIMARY KEY,
    title                text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    severity             smallint NOT NULL CHECK (severity BETWEEN 1 AND 4),
    status               text NOT NULL DEFAULT 'triggered' CHECK (status IN
                         ('triggered', 'acknowledged', 'mitigated', 'resolved', 'postmortem_done')),
    source               text NOT NULL DEFAULT 'manual' CHECK (source IN
                         ('manual', 'health', 'alertmanager', 'backup', 'runbook')),
    -- Automatic sources deduplicate on it: one open incident per key.
    dedup_key            text,
    summary              text NOT NULL DEFAULT '',
    commander_id         bigint REFERENCES users (id) ON DELETE SET NULL,
    escalation_policy_id bigint REFERENCES escalation_policies (id) ON DELETE SET NULL,
    -- The next escalation level to notify and when; NULL when nothing is due
    -- (acknowledged, resolved, policy exhausted or none).
    escalation_level     integer NOT NULL DEFAULT 0,
    next_escalation_at   timestamptz,
    triggered_at         timestamptz NOT NULL DEFAULT now(),
    acknowledged_at      timestamptz,
    acknowledged_by      text,
    diagnosed_at         timestamptz,
    mitigated_at         timestamptz,
    resolved_at          timestamptz,
    postmortem_done_at   timestamptz,
    -- Health recovery seen while open (resolution proposed).
    recovered_at         timestamptz,
    -- SLA milestones already marked as breached (each marked once).
    sla_breaches         text[] NOT NULL DEFAULT '{}',
    postmortem           jsonb,
    created_by           text NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX incidents_one_open_per_key ON incidents (dedup_key)
    WHERE dedup_key IS NOT NULL AND status IN ('triggered', 'acknowledged', 'mitigated');
CREATE INDEX incidents_escalation_due ON incidents (next_escalation_at) WHERE next_escalation_at IS NOT NULL;
CREATE INDEX incidents_open ON incidents (id) WHERE status IN ('triggered', 'acknowledged', 'mitigated');
CREATE INDEX incidents_by_time ON incidents (triggered_at DESC);

CREATE TABLE incident_services (
    incident_id bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    service_id  bigint NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    -- 'root' (the cause health detection saw), 'symptom' (impacted by it)
    -- or 'affected' (named by a person).
    role        text NOT NULL DEFAULT 'affected' CHECK (role IN ('root', 'symptom', 'affected')),
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, service_id)
);
CREATE INDEX incident_services_by_service ON incident_services (service_id);

-- The outbox: one row per message to send; claimed with a lease, retried
-- with backoff. An escalation step's messages are unique per (incident,
-- level, channel, person): one notification per step, whatever the number
-- of server processes.
CREATE TABLE notifications (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('escalation', 'update', 'runbook', 'test')),
    incident_id     bigint REFERENCES incidents (id) ON DELETE CASCADE,
    run_id          bigint REFERENCES runs (id) ON DELETE SET NULL,
    level           integer,
    channel_id      bigint REFERENCES channels (id) ON DELETE SET NULL,
    channel_name    text NOT NULL,
    channel_kind    text NOT NULL,
    person_id       bigint REFERENCES people (id) ON DELETE SET NULL,
    person_name     text,
    -- Where it goes, for people (e-mail address, phone number, chat, URL host).
    address         text NOT NULL DEFAULT '',
    severity        smallint NOT NULL CHECK (severity BETWEEN 1 AND 4),
    subject         text NOT NULL,
    body            text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_owner     text,
    lease_until     timestamptz,
    last_error      text,
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX notifications_once_per_step ON notifications
    (incident_id, level, channel_id, coalesce(person_id, 0)) WHERE kind = 'escalation';
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_by_incident ON notifications (incident_id, id);

CREATE TABLE notification_attempts (
    notification_id bigint NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    attempt         integer NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    outcome         text NOT NULL CHECK (outcome IN ('sent', 'failed')),
    detail          text NOT NULL DEFAULT '',
    duration_ms     integer NOT NULL DEFAULT 0,
    PRIMARY KEY (notification_id, attempt)
);

-- Acknowledge links: signed (HMAC with a server key), expiring, single-use.
CREATE TABLE ack_links (
    id              bigserial PRIMARY KEY,
    incident_id     bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    notification_id bigint REFERENCES notifications (id) ON DELETE SET NULL,
    person_id       bigint REFERENCES people (id) ON DELETE SET NULL,
    person_name     text,
    nonce_hash      bytea NOT NULL,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Keys the server generates once (the ack-link HMAC key).
CREATE TABLE server_keys (
    name       text PRIMARY KEY,
    key        bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Work taken while an incident is open is linked to it.
ALTER TABLE runs ADD COLUMN incident_id bigint REFERENCES incidents (id) ON DELETE SET NULL;
CREATE INDEX runs_by_incident ON runs (incident_id) WHERE incident_id IS NOT NULL;
ALTER TABLE container_actions ADD COLUMN incident_id bigint REFERENCES incidents (id) ON DELETE SET NULL;
CREATE INDEX container_actions_by_incident ON container_actions (incident_id) WHERE incident_id IS NOT NULL;
