//! The one door to Docker Engines (bollard). No other module talks to an
//! engine directly.
//!
//! Engines of many ages are in use (Debian 12's 20.10 speaks API 1.41 at
//! most): every connection negotiates the API version with the engine instead
//! of assuming the newest.

use std::time::Duration;

use anyhow::Context;
use bollard::Docker;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Connects to `host` (`unix:///path`, a plain socket path, or
/// `tcp://host:port` / `http://…`), or the local default, and negotiates the
/// API version.
pub async fn connect(host: Option<&str>) -> anyhow::Result<Docker> {
    let host = host.unwrap_or("unix:///var/run/docker.sock");
    let docker = if let Some(path) = host.strip_prefix("unix://") {
        Docker::connect_with_unix(path, TIMEOUT.as_secs(), bollard::API_DEFAULT_VERSION)
    } else if host.starts_with('/') {
        Docker::connect_with_unix(host, TIMEOUT.as_secs(), bollard::API_DEFAULT_VERSION)
    } else {
        let url = host.replacen("tcp://", "http://", 1);
        Docker::connect_with_http(&url, TIMEOUT.as_secs(), bollard::API_DEFAULT_VERSION)
    }
    .with_context(|| format!("Docker engine at {host}"))?;
    docker
        .negotiate_version()
        .await
        .with_context(|| format!("negotiating the API version with {host}"))
}

/// What Opsdeck shows about an engine.
#[derive(Debug, Clone)]
pub struct EngineInfo {
    pub version: String,
    pub api_version: String,
}

pub async fn engine_info(docker: &Docker) -> anyhow::Result<EngineInfo> {
    let v = docker
        .version()
        .await
        .context("asking the engine for its version")?;
    Ok(EngineInfo {
        version: v.version.unwrap_or_default(),
        api_version: v.api_version.unwrap_or_default(),
    })
}
