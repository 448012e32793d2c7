-- A counter that moves whenever the inventory a reader sees could change
-- (services, their dependencies, engine names): readers keep the whole
-- inventory in memory and reload it only when this differs from the
-- value they loaded with (server/src/inventory/cache.rs). Statement-level
-- triggers, so an import of thousands of rows bumps it once per statement;
-- inventory writes already serialise on their advisory lock.
CREATE TABLE inventory_version (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    v        BIGINT NOT NULL
);
INSERT INTO inventory_version (only_row, v) VALUES (TRUE, 0);

CREATE FUNCTION bump_inventory_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE inventory_version SET v = v + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER services_bump_inventory_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON services
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inventory_version();
CREATE TRIGGER service_dependencies_bump_inventory_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON service_dependencies
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inventory_version();
CREATE TRIGGER engines_bump_inventory_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON engines
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inventory_version();
