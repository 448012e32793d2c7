//! A registry's tag list and image creation time, over the Distribution
//! API (`GET /v2/<repository>/tags/list`, manifests, the config blob).
//!
//! The digest of a tag is asked through the engine (`docker::distribution`);
//! tag lists and creation times are not in the Docker API, so Opsdeck asks
//! the registry itself, anonymously: on a `401` with a `WWW-Authenticate:
//! Bearer realm=…,service=…,scope=…` challenge it fetches an anonymous
//! token from the realm (Docker Hub, GHCR, Quay and most registries give
//! pull tokens for public repositories) and retries once. A registry that
//! wants credentials (a `Basic` challenge, or no token) gives an error,
//! shown per service. Docker Hub's `docker.io` is asked at
//! `registry-1.docker.io`.
//!
//! **Outbound addresses (SSRF).** The registry host comes from the
//! operator's own image reference, that is from a container the operator
//! runs, which the engine already pulls from that host; Opsdeck asks it
//! nothing the engine does not. So the host is not checked against the
//! notification guard's deny list. What is limited: plain `http` only for
//! loopback registries (`localhost`, `127.0.0.0/8`, `::1`: the engine's own
//! insecure default), `https` everywhere else; the token realm must be
//! `https` too unless the registry itself is on loopback; no redirects
//! except for the config blob (registries hand blobs out from storage
//! hosts); bodies are capped at [`MAX_BODY`]; every request has a timeout.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION, LINK, WWW_AUTHENTICATE};
use reqwest::{Client, StatusCode};
use serde::Deserialize;

use super::reference::ImageRef;

/// Time for one request to the registry.
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// Largest body read from a registry.
pub const MAX_BODY: usize = 4 << 20;
/// Pages of a tag list read at most (1000 tags each).
const MAX_PAGES: usize = 10;
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// What went wrong talking to a registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("rate limited by the registry ({0})")]
    RateLimited(String),
    #[error("the registry wants credentials ({0})")]
    Unauthorized(String),
    #[error("{0}")]
    Other(String),
}

/// Clients for registries: one without redirects, one with a few.
#[derive(Clone)]
pub struct Registries {
    plain: Client,
    follow: Client,
}

impl Default for Registries {
    fn default() -> Self {
        let build = |policy| {
            Client::builder()
                .timeout(TIMEOUT)
                .redirect(policy)
                .user_agent(concat!("opsdeck/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default()
        };
        Registries {
            plain: build(reqwest::redirect::Policy::none()),
            follow: build(reqwest::redirect::Policy::limited(3)),
        }
    }
}

/// Whether `host` (with an optional port) is a loopback name or address.
pub fn is_loopback(host: &str) -> bool {
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `http` for loopback registries, `https` otherwise.
pub fn base_url(r: &ImageRef) -> String {
    let host = r.api_host();
    let scheme = if is_loopback(host) { "http" } else { "https" };
    format!("{scheme}://{host}")
}

/// A parsed `WWW-Authenticate: Bearer …` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub service: Option<String>,
    pub scope: Option<String>,
}

/// Reads a `Bearer` challenge (`realm="…",service="…",scope="…"`).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let rest = header.trim();
    let (scheme, params) = rest.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    // key="value" pairs; values may hold commas (scopes do), so split on
    // the quotes rather than on commas.
    let mut s = params.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key.trim().trim_start_matches(',').trim();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value.to_owned()),
            "service" => service = Some(value.to_owned()),
            "scope" => scope = Some(value.to_owned()),
            _ => {}
        }
        s = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge {
        realm: realm?,
        service,
        scope,
    })
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

async fn body(res: reqwest::Response) -> Result<Vec<u8>, RegistryError> {
    let mut res = res;
    let mut out = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| RegistryError::Other(format!("reading the answer: {e}")))?
    {
        if out.len() + chunk.len() > MAX_BODY {
            return Err(RegistryError::Other(format!(
                "answer larger than {} MiB",
                MAX_BODY >> 20
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn transport(e: reqwest::Error) -> RegistryError {
    let what = if e.is_timeout() {
        "no answer in time".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    // reqwest's text names the URL, which holds nothing secret here.
    RegistryError::Other(format!("{what}: {e}"))
}

fn refused(status: StatusCode) -> RegistryError {
    match status {
        StatusCode::TOO_MANY_REQUESTS => RegistryError::RateLimited("HTTP 429".into()),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            RegistryError::Unauthorized(format!("HTTP {}", status.as_u16()))
        }
        s => RegistryError::Other(format!("the registry answered HTTP {}", s.as_u16())),
    }
}

impl Registries {
    /// GET `url` (on the registry of `r`), answering one bearer challenge
    /// with an anonymous token.
    async fn get(
        &self,
        r: &ImageRef,
        url: &str,
        accept: Option<&str>,
        follow: bool,
        token: &mut Option<String>,
    ) -> Result<reqwest::Response, RegistryError> {
        let client = if follow { &self.follow } else { &self.plain };
        for attempt in 0..2 {
            let mut req = client.get(url);
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            if let Some(t) = token.as_deref() {
                req = req.header(AUTHORIZATION, format!("Bearer {t}"));
            }
            let res = req.send().await.map_err(transport)?;
            if res.status() == StatusCode::UNAUTHORIZED && attempt == 0 {
                let challenge = res
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|h| h.to_str().ok())
                    .and_then(parse_challenge)
                    .ok_or_else(|| {
                        RegistryError::Unauthorized("no anonymous token offered".into())
                    })?;
                *token = Some(self.anonymous_token(r, &challenge).await?);
                continue;
            }
            if !res.status().is_success() {
                return Err(refused(res.status()));
            }
            return Ok(res);
        }
        Err(RegistryError::Unauthorized(
            "the anonymous token was refused".into(),
        ))
    }

    async fn anonymous_token(&self, r: &ImageRef, c: &Challenge) -> Result<String, RegistryError> {
        let realm = reqwest::Url::parse(&c.realm)
            .map_err(|_| RegistryError::Other("the token realm is not a URL".into()))?;
        let loopback_ok = is_loopback(r.api_host());
        if realm.scheme() != "https" && !(realm.scheme() == "http" && loopback_ok) {
            return Err(RegistryError::Other(
                "the token realm is not https; refused".into(),
            ));
        }
        let scope = c
            .scope
            .clone()
            .unwrap_or_else(|| format!("repository:{}:pull", r.repository));
        let mut url = realm;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = &c.service {
                q.append_pair("service", s);
            }
            q.append_pair("scope", &scope);
        }
        let res = self.plain.get(url).send().await.map_err(transport)?;
        if !res.status().is_success() {
            return Err(match res.status() {
                StatusCode::TOO_MANY_REQUESTS => RegistryError::RateLimited("HTTP 429".into()),
                s => RegistryError::Unauthorized(format!(
                    "token service answered HTTP {}",
                    s.as_u16()
                )),
            });
        }
        let t: TokenAnswer = serde_json::from_slice(&body(res).await?)
            .map_err(|_| RegistryError::Other("the token service's answer is not JSON".into()))?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RegistryError::Unauthorized("no anonymous token offered".into()))
    }

    /// Every tag of `r`'s repository (up to [`MAX_PAGES`] pages).
    pub async fn tags(&self, r: &ImageRef) -> Result<Vec<String>, RegistryError> {
        let base = base_url(r);
        let mut url = format!("{base}/v2/{}/tags/list?n=1000", r.repository);
        let mut token = None;
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let res = self.get(r, &url, None, false, &mut token).await?;
            let next = res
                .headers()
                .get(LINK)
                .and_then(|l| l.to_str().ok())
                .and_then(next_link);
            let list: TagList = serde_json::from_slice(&body(res).await?)
                .map_err(|_| RegistryError::Other("the tag list is not JSON".into()))?;
            out.extend(list.tags.unwrap_or_default());
            match next {
                // Only paths on the same registry are followed.
                Some(n) if n.starts_with('/') => url = format!("{base}{n}"),
                _ => break,
            }
        }
        Ok(out)
    }

    /// When the image of manifest `digest` was created (its config's
    /// `created`), for the first platform of an index. `None` when the
    /// registry does not say.
    pub async fn created(
        &self,
        r: &ImageRef,
        digest: &str,
    ) -> Result<Option<DateTime<Utc>>, RegistryError> {
        let base = base_url(r);
        let mut token = None;
        let mut manifest = self.manifest(r, &base, digest, &mut token).await?;
        if let Some(first) = manifest
            .manifests
            .as_ref()
            .and_then(|m| pick_platform(m))
            .map(str::to_owned)
        {
            manifest = self.manifest(r, &base, &first, &mut token).await?;
        }
        let Some(config) = manifest.config.and_then(|c| c.digest) else {
            return Ok(None);
        };
        let url = format!("{base}/v2/{}/blobs/{config}", r.repository);
        let res = self.get(r, &url, None, true, &mut token).await?;
        let config: ImageConfig = serde_json::from_slice(&body(res).await?)
            .map_err(|_| RegistryError::Other("the image config is not JSON".into()))?;
        Ok(config
            .created
            .as_deref()
            .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    async fn manifest(
        &self,
        r: &ImageRef,
        base: &str,
        reference: &str,
        token: &mut Option<String>,
    ) -> Result<Manifest, RegistryError> {
        let url = format!("{base}/v2/{}/manifests/{reference}", r.repository);
        let res = self
            .get(r, &url, Some(MANIFEST_TYPES), false, token)
            .await?;
        serde_json::from_slice(&body(res).await?)
            .map_err(|_| RegistryError::Other("the manifest is not JSON".into()))
    }
}

#[derive(Deserialize)]
struct Descriptor {
    digest: Option<String>,
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    architecture: Option<String>,
    os: Option<String>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Option<Descriptor>,
    manifests: Option<Vec<Descriptor>>,
}

#[derive(Deserialize)]
struct ImageConfig {
    created: Option<String>,
}

/// linux/amd64 when the index has it, else its first real image (not an
/// attestation, whose platform is `unknown`).
fn pick_platform(m: &[Descriptor]) -> Option<&str> {
    let plat = |d: &Descriptor, os: &str, arch: Option<&str>| {
        d.platform.as_ref().is_some_and(|p| {
            p.os.as_deref() == Some(os) && arch.is_none_or(|a| p.architecture.as_deref() == Some(a))
        })
    };
    m.iter()
        .find(|d| plat(d, "linux", Some("amd64")))
        .or_else(|| m.iter().find(|d| plat(d, "linux", None)))
        .or_else(|| m.first())
        .and_then(|d| d.digest.as_deref())
}

/// The target of a `Link: <…>; rel="next"` header.
fn next_link(h: &str) -> Option<String> {
    h.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback() {
        let url = |s: &str| base_url(&ImageRef::parse(s).unwrap());
        assert_eq!(url("127.0.0.1:5000/app:v1"), "http://127.0.0.1:5000");
        assert_eq!(url("localhost:5000/app"), "http://localhost:5000");
        assert_eq!(url("[::1]:5000/app"), "http://[::1]:5000");
        assert_eq!(url("redis:7"), "https://registry-1.docker.io");
        assert_eq!(url("10.0.0.5:5000/app"), "https://10.0.0.5:5000");
        assert_eq!(
            url("registry.local:5000/app"),
            "https://registry.local:5000"
        );
    }

    #[test]
    fn bearer_challenges_are_read() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/redis:pull""#,
        )
        .unwrap();
        assert_eq!(c.realm, "https://auth.docker.io/token");
        assert_eq!(c.service.as_deref(), Some("registry.docker.io"));
        assert_eq!(c.scope.as_deref(), Some("repository:library/redis:pull"));
        let c = parse_challenge(
            r#"Bearer realm="https://ghcr.io/token",scope="repository:o/r:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scope.as_deref(), Some("repository:o/r:pull,push"));
        assert_eq!(c.service, None);
        assert!(parse_challenge(r#"Basic realm="Registry""#).is_none());
        assert!(parse_challenge(r#"Bearer service="x""#).is_none());
    }

    #[test]
    fn next_pages_are_found() {
        assert_eq!(
            next_link(r#"</v2/app/tags/list?last=b&n=1000>; rel="next""#).as_deref(),
            Some("/v2/app/tags/list?last=b&n=1000")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }
}
