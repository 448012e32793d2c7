-- API token scopes (see server/src/auth/scope.rs): what a token may do
-- within its role. Existing tokens keep `full`, today's behaviour.
ALTER TABLE api_tokens
    ADD COLUMN scopes TEXT[] NOT NULL DEFAULT '{full}',
    ADD CONSTRAINT api_tokens_scopes_valid CHECK (
        cardinality(scopes) BETWEEN 1 AND 5
        AND scopes <@ ARRAY['full', 'read', 'alerts:write', 'heartbeat', 'metrics:read']::TEXT[]
    );
