//! Outbound network rules shared by every capability that connects where a
//! user points it: the SSRF [`guard`] (notifications, HTTP checks, runbook
//! `http` steps). Foundation layer: no capability, no HTTP types of the
//! router.

pub mod guard;
