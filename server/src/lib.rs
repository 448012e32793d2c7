//! Opsdeck server library.
//!
//! `main.rs` only calls [`cli::main`]; the router is built by [`http::app`] from
//! an [`state::AppState`], so tests can serve it on port 0 without the CLI.
//! See ARCHITECTURE.md for the code map and the invariants every module keeps.

pub mod actions;
pub mod audit;
pub mod auth;
pub mod backups;
pub mod checks;
pub mod cleanup;
pub mod cli;
pub mod config;
pub mod db;
pub mod docker;
pub mod embedded_pg;
pub mod engines;
pub mod error;
pub mod fanout;
pub mod fleet;
pub mod health;
pub mod http;
pub mod incidents;
pub mod inventory;
pub mod jobs;
pub mod logs;
pub mod maintenance;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod onboard;
pub mod oncall;
pub mod openapi;
pub mod resources;
pub mod runbooks;
pub mod scrape;
pub mod secrets;
pub mod serve;
pub mod sse;
pub mod state;
pub mod timeline;
pub mod updates;
pub mod users;
pub mod web;

pub use opsdeck_wire as wire;
