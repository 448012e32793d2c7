-- Backup retention, plan schedules and restore drills
-- (server/src/backups/retention.rs, schedule.rs).

ALTER TABLE backup_plans
    ADD COLUMN keep_last     integer NOT NULL DEFAULT 3  CHECK (keep_last BETWEEN 1 AND 1000),
    ADD COLUMN keep_daily    integer NOT NULL DEFAULT 7  CHECK (keep_daily BETWEEN 0 AND 1000),
    ADD COLUMN keep_weekly   integer NOT NULL DEFAULT 4  CHECK (keep_weekly BETWEEN 0 AND 1000),
    ADD COLUMN keep_monthly  integer NOT NULL DEFAULT 12 CHECK (keep_monthly BETWEEN 0 AND 1000),
    ADD COLUMN max_age_days  integer CHECK (max_age_days BETWEEN 1 AND 36500),
    ADD COLUMN timezone      text NOT NULL DEFAULT 'UTC',
    -- The newest restore drill.
    ADD COLUMN drilled_at       timestamptz,
    ADD COLUMN drill_backup_id  bigint,
    ADD COLUMN drill_error      text;

-- A plan's timetables are ordinary runbook schedules of `backup-run` /
-- `backup-drill`, owned by the plan (rewritten with it, removed with it).
ALTER TABLE schedules
    ADD COLUMN backup_plan_id bigint REFERENCES backup_plans (id) ON DELETE CASCADE;
CREATE INDEX schedules_by_backup_plan ON schedules (backup_plan_id) WHERE backup_plan_id IS NOT NULL;

-- Who removed a backup: a user's name, or `retention` for pruning.
ALTER TABLE backups ADD COLUMN deleted_by text;
