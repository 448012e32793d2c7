-- ssh:// engines (server/src/docker/ssh.rs): the pinned host key
-- ("<type> <base64>", public) and the private key's path on the Opsdeck
-- host (the key itself is never stored). Every ssh:// engine has a pinned
-- key; no other engine has SSH fields.
ALTER TABLE engines
    ADD COLUMN ssh_host_key TEXT,
    ADD COLUMN ssh_key      TEXT,
    ADD CONSTRAINT engines_ssh_pinned CHECK ((endpoint LIKE 'ssh://%') = (ssh_host_key IS NOT NULL)),
    ADD CONSTRAINT engines_ssh_key_ssh_only CHECK (ssh_key IS NULL OR ssh_host_key IS NOT NULL);
