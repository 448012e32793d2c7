-- The audit log as 16 hash chains instead of one (issue 27).
--
-- Before, every audited transaction took one advisory lock in the insert
-- trigger and held it until its commit, so audited commits anywhere in the
-- panel happened one after the other. Now a transaction's entries go to
-- chain `txid % 16`, each chain with its own lock and its own gapless
-- `link` numbers, so unrelated writers rarely wait for each other. `seq`
-- stays the entry's unique id and order (from a sequence: a rolled-back
-- transaction leaves a gap, which says nothing); the chain walk goes by
-- (chain, link), and the signed checkpoint covers every chain's head
-- (`audit/checkpoint.rs`).
--
-- The entries written before this migration form chain 0 with link = seq:
-- their hashes (which cover seq and the previous entry's hash) are unchanged.

ALTER TABLE audit_log
    ADD COLUMN chain SMALLINT NOT NULL DEFAULT 0 CHECK (chain BETWEEN 0 AND 15),
    ADD COLUMN link BIGINT;

ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update;
UPDATE audit_log SET link = seq;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;

ALTER TABLE audit_log ALTER COLUMN link SET NOT NULL;
CREATE UNIQUE INDEX audit_log_chain_link_idx ON audit_log (chain, link);

CREATE SEQUENCE audit_log_seq OWNED BY audit_log.seq;
SELECT setval('audit_log_seq', coalesce(max(seq), 0) + 1, false) FROM audit_log;

-- Assigns the entry's id, chain, link and hash. The chain's advisory lock
-- (held until commit) serialises the writers of that chain only, so each
-- link number has no gap and each entry chains onto the one committed
-- before it in its chain.
CREATE OR REPLACE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c         SMALLINT := (txid_current() % 16)::smallint;
    last_link BIGINT;
    last_hash BYTEA;
BEGIN
    PERFORM pg_advisory_xact_lock(1690922233, c);
    SELECT link, hash INTO last_link, last_hash
        FROM audit_log WHERE chain = c ORDER BY link DESC LIMIT 1;
    NEW.seq := nextval('audit_log_seq');
    NEW.chain := c;
    NEW.link := coalesce(last_link, 0) + 1;
    NEW.at := clock_timestamp();
    NEW.prev_hash := coalesce(last_hash, '\x'::bytea);
    NEW.hash := audit_entry_hash(NEW.prev_hash, NEW.seq, NEW.at, NEW.actor_id, NEW.actor,
        NEW.actor_kind, NEW.action, NEW.target, NEW.params, NEW.source, NEW.outcome, NEW.detail);
    RETURN NEW;
END
$$;
