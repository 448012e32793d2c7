//! Serving the SPA built by trunk (`frontend/dist`).
//!
//! - Precompressed `.br`/`.gz` siblings (written by `scripts/precompress.sh`)
//!   are served when the client accepts them.
//! - Files whose names carry trunk's content hash (`name-<hex>.ext`) are
//!   cached for a year (`immutable`); everything else is revalidated.
//! - Any other GET outside `/api/` answers `index.html`, so deep links survive
//!   a reload; unknown `/api/` paths answer a JSON 404.
//! - The Content-Security-Policy allows the app's own origin and the SHA-256
//!   of the inline bootstrap script trunk writes into `index.html`, computed
//!   here at start-up, and nothing else.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::error::error_response;
use crate::state::AppState;

/// The built SPA, loaded once at start-up.
#[derive(Debug, Clone)]
pub struct WebAssets {
    root: PathBuf,
    index: Option<String>,
    pub csp: String,
}

const NOT_BUILT: &str = "<!doctype html><title>Opsdeck</title><p>The Opsdeck web app is not built. Run <code>make run</code> (or point OPSDECK_WEB_ROOT at trunk's dist directory).</p>";

impl WebAssets {
    pub fn load(root: &Path) -> WebAssets {
        let index = std::fs::read_to_string(root.join("index.html")).ok();
        if index.is_none() {
            tracing::warn!(web_root = %root.display(), "no index.html in the web root; the SPA is not built");
        }
        let hashes: Vec<String> = index
            .as_deref()
            .map(inline_script_hashes)
            .unwrap_or_default();
        let script_src = std::iter::once("'self' 'wasm-unsafe-eval'".to_owned())
            .chain(hashes.iter().map(|h| format!("'sha256-{h}'")))
            .collect::<Vec<_>>()
            .join(" ");
        let csp = format!(
            "default-src 'self'; script-src {script_src}; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'"
        );
        WebAssets {
            root: root.to_owned(),
            index,
            csp,
        }
    }

    pub fn is_built(&self) -> bool {
        self.index.is_some()
    }
}

/// Base64 SHA-256 of the body of each inline `<script>` (no `src`).
fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        rest = &rest[start..];
        let Some(tag_end) = rest.find('>') else { break };
        let tag = &rest[..tag_end];
        let body_start = tag_end + 1;
        let Some(close) = rest[body_start..].find("</script>") else {
            break;
        };
        let body = &rest[body_start..body_start + close];
        if !tag.contains(" src=") && !body.trim().is_empty() {
            out.push(
                base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body.as_bytes())),
            );
        }
        rest = &rest[body_start + close..];
    }
    out
}

/// Whether a file name carries trunk's content hash.
fn is_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.split('.').next().unwrap_or(name);
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    // trunk writes the 64-bit hash in hex without leading zeros: up to 16 digits.
    stem.rsplit_once('-').is_some_and(|(_, h)| {
        (12..=16).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

fn index_response(web: &WebAssets) -> Response {
    let body = web.index.clone().unwrap_or_else(|| NOT_BUILT.to_owned());
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// The router's fallback: static files, the SPA's index, or a JSON 404 under `/api/`.
pub async fn fallback(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if path == "/api" || path.starts_with("/api/") {
        return error_response(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no API route {path}"),
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "only GET is allowed here",
        );
    }
    if path != "/" && path != "/index.html" && state.web().is_built() {
        // `make` writes `.br`/`.gz` next to the built files (brotli -q 11
        // beats on-the-fly compression by a fifth on the WASM bundle).
        let served = ServeDir::new(&state.web().root)
            .precompressed_br()
            .precompressed_gzip()
            .append_index_html_on_directories(false)
            .oneshot(req)
            .await;
        let Ok(mut res) = served;
        if res.status().is_success() {
            let cache = if is_hashed(&path) {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            return res.map(Body::new);
        }
    }
    index_response(state.web())
}

impl AppState {
    /// The SPA's files (a part, see [`crate::state`]).
    pub fn web(&self) -> &std::sync::Arc<WebAssets> {
        self.part()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_inline_scripts_only() {
        let html =
            r#"<script src="/a.js"></script><script type="module">init('/x.wasm');</script>"#;
        let hashes = inline_script_hashes(html);
        assert_eq!(hashes.len(), 1);
        let expected =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"init('/x.wasm');"));
        assert_eq!(hashes[0], expected);
    }

    #[test]
    fn hashed_names() {
        assert!(is_hashed("/opsdeck-frontend-4b1c0f2a9e8d7c6b_bg.wasm"));
        assert!(is_hashed("/app-0123456789abcdef.css"));
        assert!(
            is_hashed("/app-acd8870b116b5be.css"),
            "15 digits: a leading zero dropped"
        );
        assert!(!is_hashed("/favicon.svg"));
        assert!(!is_hashed("/app-xyz.css"));
    }
}
