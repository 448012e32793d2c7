-- Secrets at rest (server/src/secrets/). The values themselves are sealed
-- by the server at its first start after this migration (it needs the key,
-- which the database never sees), in one transaction with the row below.

-- Present once the secret columns hold sealed values: `key_id` names the
-- key they are sealed with, `key_check` is a known text sealed with it so
-- a start with a wrong key is refused before anything is read.
CREATE TABLE secrets_state (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    key_id     text NOT NULL,
    key_check  text NOT NULL,
    sealed_at  timestamptz NOT NULL DEFAULT now(),
    rotated_at timestamptz
);

-- Heartbeat pings are looked up by SHA-256 of the token; the token itself
-- (heartbeat_token) is kept only sealed, to show the URL again.
ALTER TABLE checks ADD COLUMN heartbeat_token_hash bytea;
CREATE UNIQUE INDEX checks_heartbeat_token_hash_key ON checks (heartbeat_token_hash);

-- Server keys are kept sealed (`sealed`); `key` is the pre-sealing
-- plaintext, emptied at the first start.
ALTER TABLE server_keys ALTER COLUMN key DROP NOT NULL;
ALTER TABLE server_keys ADD COLUMN sealed text;
ALTER TABLE server_keys ADD CONSTRAINT server_keys_one_form CHECK (num_nonnulls(key, sealed) = 1);
