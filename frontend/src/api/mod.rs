//! JSON calls to the Opsdeck API. Every state-changing call sends
//! `Content-Type: application/json` (the server's CSRF check needs it).
//! Errors carry the server's `{"error":{"code","message"}}`.

use gloo_net::http::{Request, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    fn network(e: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: 0,
            code: "network".into(),
            message: format!("cannot reach the Opsdeck server ({e})"),
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
        },
        None => ApiError {
            status,
            code: "http".into(),
            message: format!("the server answered {status}"),
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
