//! JSON calls to the Opsdeck API. Every state-changing call sends
//! `Content-Type: application/json` (the server's CSRF check needs it).
//! Errors carry the server's `{"error":{"code","message","field"}}`.
//!
//! This module is the only place that spells an API path: one submodule per
//! resource offers typed functions (ids in, decoded wire types out) and the
//! URLs of streams and downloads; pages call those, never the generic
//! helpers here with a path of their own.

pub mod admin;
pub mod approvals;
pub mod auth;
pub mod backups;
pub mod channels;
pub mod checks;
pub mod engines;
pub mod graph;
pub mod incidents;
pub mod inventory;
pub mod logs;
pub mod maintenance;
pub mod oncall;
pub mod reports;
pub mod resources;
pub mod runbooks;
pub mod runs;
pub mod schedules;
pub mod services;
pub mod status;
pub mod updates;

/// Where every path starts.
const BASE: &str = "/api/v1";

/// `BASE` followed by `rest` (which starts with `/`).
fn url(rest: &str) -> String {
    format!("{BASE}{rest}")
}

/// A query string (`?a=1&b=x%20y`, or empty when no pair has a value):
/// pairs without a value are left out, values are percent-encoded.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", enc(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// `Some(v)` unless `v` is empty: for optional filters.
pub fn non_empty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}

use gloo_net::http::{Request, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// The request field a validation error is about (`name`,
    /// `spec.url`, `sources[0].service`), when the server names one.
    pub field: Option<String>,
}

impl ApiError {
    fn network(e: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: 0,
            code: "network".into(),
            message: format!("cannot reach the Opsdeck server ({e})"),
            field: None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

async fn finish(res: Result<Response, gloo_net::Error>) -> Result<Response, ApiError> {
    let res = res.map_err(ApiError::network)?;
    if res.ok() {
        return Ok(res);
    }
    let status = res.status();
    let body: Option<opsdeck_wire::ErrorBody> = res.json().await.ok();
    let err = match body {
        Some(b) => ApiError {
            status,
            code: b.error.code,
            message: b.error.message,
            field: b.error.field,
        },
        None => ApiError {
            status,
            code: "http".into(),
            message: format!("the server answered {status}"),
            field: None,
        },
    };
    if status == 401 && err.code == "unauthenticated" {
        crate::session::expired();
    } else if err.code == "password_change_required" {
        crate::session::go("/change-password");
    }
    Err(err)
}

async fn decode<T: DeserializeOwned>(res: Response) -> Result<T, ApiError> {
    res.json().await.map_err(|e| ApiError {
        status: 0,
        code: "decode".into(),
        message: format!("unexpected answer: {e}"),
        field: None,
    })
}

pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    decode(finish(Request::get(path).send().await).await?).await
}

/// GET a text answer (logs).
pub async fn get_text(path: &str) -> Result<String, ApiError> {
    finish(Request::get(path).send().await)
        .await?
        .text()
        .await
        .map_err(|e| ApiError {
            status: 0,
            code: "decode".into(),
            message: format!("unexpected answer: {e}"),
            field: None,
        })
}

/// A query-string value, percent-encoded.
pub fn enc(s: &str) -> String {
    String::from(js_sys::encode_uri_component(s))
}

fn with_body<B: Serialize>(
    req: RequestBuilder,
    body: &B,
) -> Result<gloo_net::http::Request, ApiError> {
    req.json(body).map_err(|e| ApiError {
        status: 0,
        code: "encode".into(),
        message: e.to_string(),
        field: None,
    })
}

/// POST with a JSON body; the answer is decoded.
pub async fn post<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiError> {
    decode(finish(with_body(Request::post(path), body)?.send().await).await?).await
}

/// POST with a JSON body; the answer's status code with its decoded body
/// (where 200 and 202 mean different things).
pub async fn post_status<B: Serialize, T: DeserializeOwned>(
    path: &str,
    body: &B,
) -> Result<(u16, T), ApiError> {
    let res = finish(with_body(Request::post(path), body)?.send().await).await?;
    let status = res.status();
    Ok((status, decode(res).await?))
}

/// POST with a JSON body; the answer is ignored (204s).
pub async fn post_unit<B: Serialize>(path: &str, body: &B) -> Result<(), ApiError> {
    finish(with_body(Request::post(path), body)?.send().await)
        .await
        .map(|_| ())
}

pub async fn patch<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiError> {
    decode(finish(with_body(Request::patch(path), body)?.send().await).await?).await
}

pub async fn put<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiError> {
    decode(finish(with_body(Request::put(path), body)?.send().await).await?).await
}

/// DELETE that either happens (204: `None`) or is started as something to
/// follow (202 with a body: `Some`).
pub async fn delete_or_started<T: DeserializeOwned>(path: &str) -> Result<Option<T>, ApiError> {
    let res = finish(
        Request::delete(path)
            .header("Content-Type", "application/json")
            .send()
            .await,
    )
    .await?;
    if res.status() == 202 {
        Ok(Some(decode(res).await?))
    } else {
        Ok(None)
    }
}

pub async fn delete(path: &str) -> Result<(), ApiError> {
    finish(
        Request::delete(path)
            .header("Content-Type", "application/json")
            .send()
            .await,
    )
    .await
    .map(|_| ())
}
