//! The JSON client for `/api/v1` (same origin, session cookie).
//!
//! - Every state-changing request sends `Content-Type: application/json` and a
//!   JSON body (`{}` when there is nothing to say): the server's CSRF check
//!   refuses anything else.
//! - Every error answer is `{"error":{"code","message"}}` ([`opsdeck_wire::ErrorBody`]);
//!   it becomes an [`ApiError`] whose `message` is shown to the user as is.
//! - A 401 from any call means the session is gone: the app goes to `/login`
//!   (keeping the current address to come back to). A 403 with the code
//!   `password_change_required` goes to `/change-password`. Both are full page
//!   loads, so nothing the old session loaded stays in memory.

use gloo_net::http::{Request, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A failed call, with the server's message (or a description of what
/// happened on the way) ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status; 0 when the request did not get an answer.
    pub status: u16,
    pub code: String,
    pub message: String,
    /// Seconds from the `Retry-After` header (429 answers).
    pub retry_after: Option<u32>,
}

impl ApiError {
    fn local(code: &str, message: String) -> ApiError {
        ApiError {
            status: 0,
            code: code.into(),
            message,
            retry_after: None,
        }
    }

    fn network(e: gloo_net::Error) -> ApiError {
        ApiError::local(
            "network",
            format!("Cannot reach the Opsdeck server. Check your connection and try again. ({e})"),
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Whether a failed call should move the browser elsewhere, and where.
fn redirect_for(path: &str, err: &ApiError) -> Option<String> {
    let here = crate::session::current_path();
    if err.status == 401 && err.code != "invalid_credentials" && path != LOGIN {
        if here.starts_with("/login") {
            return None;
        }
        return Some(crate::session::login_url(&here));
    }
    if err.status == 403 && err.code == "password_change_required" && here != "/change-password" {
        return Some("/change-password".into());
    }
    None
}

const LOGIN: &str = "/api/v1/auth/login";

/// Reads an error answer into an [`ApiError`].
async fn error_from(res: Response) -> ApiError {
    let status = res.status();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.trim().parse::<u32>().ok());
    let body: Option<opsdeck_wire::ErrorBody> = res.json().await.ok();
    let (code, message) = match body {
        Some(b) => (b.error.code, b.error.message),
        None => (
            "http".to_owned(),
            match status {
                502..=504 => format!(
                    "The Opsdeck server is not answering (HTTP {status}). Try again in a moment."
                ),
                _ => format!("The server answered HTTP {status} without an explanation."),
            },
        ),
    };
    ApiError {
        status,
        code,
        message,
        retry_after,
    }
}

/// Sends a request. Errors are decoded; the session redirects happen here
/// unless `quiet`.
async fn send(
    path: &str,
    req: Result<Request, gloo_net::Error>,
    quiet: bool,
) -> Result<Response, ApiError> {
    let req = req.map_err(|e| ApiError::local("encode", e.to_string()))?;
    let res = req.send().await.map_err(ApiError::network)?;
    if res.ok() {
        return Ok(res);
    }
    let err = error_from(res).await;
    if !quiet {
        if let Some(to) = redirect_for(path, &err) {
            crate::session::hard_navigate(&to);
        }
    }
    Err(err)
}

async fn decode<T: DeserializeOwned>(res: Response) -> Result<T, ApiError> {
    res.json().await.map_err(|e| {
        ApiError::local(
            "decode",
            format!(
                "The server sent an answer this page does not understand ({e}). Reload the page."
            ),
        )
    })
}

fn with_json<B: Serialize>(req: RequestBuilder, body: &B) -> Result<Request, gloo_net::Error> {
    // `json` sets `Content-Type: application/json`.
    req.json(body)
}

/// An empty JSON object, for state-changing calls that carry no data.
#[derive(Serialize)]
pub struct Empty {}

/// `GET`, decoding the answer.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    decode(send(path, Request::get(path).build(), false).await?).await
}

/// `GET` without the session redirects: for `/api/v1/me`, whose 401 simply
/// means "nobody is logged in".
pub async fn get_quiet<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    decode(send(path, Request::get(path).build(), true).await?).await
}

/// `POST` with a JSON body, decoding the answer.
pub async fn post<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiError> {
    decode(send(path, with_json(Request::post(path), body), false).await?).await
}

/// `POST` with a JSON body whose answer has no body (204).
pub async fn post_no_content<B: Serialize>(path: &str, body: &B) -> Result<(), ApiError> {
    send(path, with_json(Request::post(path), body), false)
        .await
        .map(drop)
}

/// `PATCH` with a JSON body, decoding the answer.
pub async fn patch<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiError> {
    decode(send(path, with_json(Request::patch(path), body), false).await?).await
}

/// `DELETE` (with an empty JSON body, for the CSRF check), decoding the answer.
pub async fn delete<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    decode(send(path, with_json(Request::delete(path), &Empty {}), false).await?).await
}

/// `DELETE` whose answer has no body (204).
pub async fn delete_no_content(path: &str) -> Result<(), ApiError> {
    send(path, with_json(Request::delete(path), &Empty {}), false)
        .await
        .map(drop)
}

/// Percent-encodes a query value.
pub fn enc(value: &str) -> String {
    String::from(js_sys::encode_uri_component(value))
}
