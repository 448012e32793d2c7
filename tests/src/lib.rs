//! Opsdeck's end-to-end test harness: real parts, never mocks.
//!
//! - [`pg`]: one ephemeral Postgres cluster per test run (the server's own
//!   embedded-cluster code), a fresh migrated database per test.
//! - [`server`]: the real router served on a loopback port, with users of
//!   each role and logged-in HTTP clients.
//! - [`dockerd`]: a private Docker Engine (bridge none, own socket and data
//!   root) and busybox images built `FROM scratch`.
//! - [`relay`]: a Unix-socket relay in front of the engine, to take it
//!   away mid-request and bring it back.
//! - [`stack`]: a busybox stand-in of the MosAIc stack on the private
//!   engine (compose labels, health endpoints), and its compose file.
//! - [`browser`]: headless Chromium driven over WebDriver (chromedriver).
//! - [`mariadb`]: one MariaDB server per test process, with a check user.
//! - [`process`]: a real `opsdeck serve` process on a given database
//!   (several servers on one database, kill mid-work).
//! - [`prometheus`]: a real Prometheus scraping a target whose traffic
//!   the test controls.
//! - [`redis`]: Redis servers (one shared, or a test's own) and a raw RESP
//!   client.
//! - [`targets`]: misbehaving HTTP/TCP targets whose behaviour a test
//!   switches at runtime (status, slow, reset, hang, redirect).
//! - [`tlscert`]: a TLS endpoint with a short-lived (or expired)
//!   certificate.
//! - [`receiver`]: an in-process webhook receiver recording requests, with
//!   a switchable answer status.
//! - [`smtp`]: a real SMTP sink (aiosmtpd) whose maildir the test reads.
//! - [`s3`]: a real S3-compatible server (moto) checking SigV4 signatures,
//!   with buckets per test and signed inspection calls.
//! - [`flows`]: API flows per resource (log in, create a runbook and wait
//!   for its run, declare an incident, make a backup plan, ...).
//! - [`fixtures`]: data for the backup tests (databases on the test
//!   cluster, row counts, digests, the files a backup leaves).
//! - [`util`]: answer checks, SSE, polling, the shared engine.
//! - [`require`]: a missing part skips locally but fails under `CI=true`.
//! - [`proc`]: free loopback ports, children that die with the test
//!   process (`PR_SET_PDEATHSIG`), stopping a child by its pid.
//!
//! Every helper that starts a process stops it on drop, and processes started
//! for the whole run die with the test process (`PR_SET_PDEATHSIG`).

pub mod browser;
pub mod dockerd;
pub mod fixtures;
pub mod flows;
pub mod mariadb;
pub mod pg;
pub mod proc;
pub mod process;
pub mod prometheus;
pub mod receiver;
pub mod redis;
pub mod registry;
pub mod relay;
pub mod require;
pub mod s3;
pub mod server;
pub mod smtp;
pub mod sshd;
pub mod stack;
pub mod targets;
pub mod tlscert;
pub mod util;
