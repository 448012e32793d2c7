-- S3-compatible backup targets (server/src/backups/storage.rs).
--
-- `config` of an `s3` target holds the non-secret settings (endpoint,
-- region, bucket, prefix, access_key_id, allow_http); `secret` is the
-- secret access key: write-only in the API (never returned, reads say
-- `secret_set`), stored like notification channel secrets.
ALTER TABLE backup_targets DROP CONSTRAINT backup_targets_kind_check;
ALTER TABLE backup_targets ADD CONSTRAINT backup_targets_kind_check CHECK (kind IN ('local', 's3'));
ALTER TABLE backup_targets ADD COLUMN secret text;
-- A local target has no secret; an S3 target always has one.
ALTER TABLE backup_targets ADD CONSTRAINT backup_targets_secret_check
    CHECK ((kind = 's3') = (secret IS NOT NULL));
