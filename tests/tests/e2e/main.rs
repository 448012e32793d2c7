//! The one end-to-end test binary (one binary keeps linking cheap).
//!
//! Every test runs against real parts: a real Postgres (a database per test
//! on one ephemeral cluster), the real router on a loopback port, a private
//! dockerd, headless Chromium. See `opsdeck_e2e` (tests/src) for the harness.

mod audit;
mod auth;
mod backups;
mod backups_restore;
mod backups_s3;
mod backups_sources;
mod backups_timing;
mod browser;
mod checks;
mod checks_containers;
mod checks_logs;
mod cleanup;
mod cleanup_ui;
mod cli;
mod compose_load;
mod containers;
mod discovered_files;
mod docker;
mod embedded_pg;
mod error_fields;
mod escalation;
mod faults;
mod fuzz;
mod harness_parts;
mod import_checks;
mod import_ui;
mod incidents;
mod incidents_ui;
mod inventory;
mod inventory_ui;
mod jobs;
mod logs_search;
mod logs_ui;
mod maintenance;
mod maintenance_ui;
mod metrics;
mod notify;
mod oncall;
mod read_only;
mod replicas;
mod role_matrix;
mod runbooks;
mod runbooks_containers;
mod runbooks_db;
mod runbooks_ui;
mod schedules;
mod security_audit;
mod security_authz;
mod security_edge;
mod security_exec;
mod security_injection;
mod security_runs;
mod security_secrets;
mod security_sessions;
mod security_ssrf;
mod status_ui;
mod updates_apply;
mod updates_auto;
mod updates_discover;
mod updates_heal;
mod updates_ui;
mod web;
