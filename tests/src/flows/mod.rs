//! API flows the test modules share, one module per resource: each is what
//! an operator would do through the API (log in, create, start, wait for a
//! state), asserting that every step succeeded, so a test reads as its
//! scenario. Logging in is [`auth::login`] (also
//! [`crate::server::TestServer::login`] and
//! [`crate::process::OpsdeckProcess::login`]): one login per client.

pub mod audit;
pub mod auth;
pub mod backups;
pub mod checks;
pub mod containers;
pub mod escalation;
pub mod incidents;
pub mod runbooks;
pub mod services;
