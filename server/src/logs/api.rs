//! `POST /api/v1/logs/search`: operators (logs carry what a viewer should
//! not see, as for a service's own logs), audited with the query before
//! the first line is read. The only file of `logs` that speaks HTTP.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use opsdeck_wire::{LogEvent, LogSearch};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::search;
use crate::auth::{Auth, Operator, RequestCtx};
use crate::error::{ApiResult, Json, Query};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search_logs))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct SearchParams {
    /// `ndjson` (default): one JSON event per line, streamed; `text`: the
    /// lines as a file download (`ts container: line`, `-` for context).
    pub format: Option<String>,
}

/// Search the logs of services and whole stacks (all services when none is
/// named) over a time range, merged by timestamp. The answer streams one
/// JSON object per line: `line` (hit or context), `error` (a container
/// that could not be read to the end), and `end` last (counts per service,
/// `truncated`, errors).
#[utoipa::path(post, path = "/api/v1/logs/search", tag = "logs",
    params(SearchParams), request_body = LogSearch,
    responses((status = 200, content_type = "application/x-ndjson", body = LogEvent),
        (status = 400), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn search_logs(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Query(params): Query<SearchParams>,
    Json(q): Json<LogSearch>,
) -> ApiResult<Response> {
    let text = match params.format.as_deref() {
        None | Some("ndjson") => false,
        Some("text") => true,
        Some(_) => {
            return Err(crate::error::ApiError::from_validation(
                "format: ndjson or text".into(),
            ))
        }
    };
    let plan = search::plan(&state, &q).await?;
    let p = &auth.principal;
    let mut tx = state.pool.begin().await?;
    ctx.audit(
        &mut tx,
        p,
        "logs.search",
        None,
        json!({
            "query": q.query,
            "regex": q.regex,
            "level": q.level,
            "services": q.services,
            "projects": q.projects,
            "since": plan.since,
            "until": plan.until,
            "containers": plan.sources.len(),
        }),
    )
    .await?;
    ctx.commit(tx).await?;

    let events = search::run(&state, plan)
        .take_until(state.engines.closed())
        .take_until(crate::auth::credential_ended(state.pool.clone(), p));
    if text {
        let body = events.filter_map(|ev| async move { text_line(&ev).map(Ok::<_, Infallible>) });
        let name = format!(
            "opsdeck-logs-{}.log",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        );
        return Ok((
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            Body::from_stream(body),
        )
            .into_response());
    }
    let body = events.map(|ev| {
        let mut bytes = serde_json::to_vec(&ev).unwrap_or_default();
        bytes.push(b'\n');
        Ok::<_, Infallible>(Bytes::from(bytes))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            // Proxies must hand each line on as it comes.
            (header::CACHE_CONTROL, "no-store"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// One event as a line of the text download (grep's `name:` for a hit,
/// `name-` for context).
fn text_line(ev: &LogEvent) -> Option<Bytes> {
    let s = match ev {
        LogEvent::Line(h) => format!(
            "{} {}{} {}\n",
            h.ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            h.container,
            if h.hit { ':' } else { '-' },
            h.line
        ),
        LogEvent::Error(e) => format!("# error: {} {}: {}\n", e.service, e.container, e.message),
        LogEvent::End(end) => {
            let hits: u64 = end.counts.iter().map(|c| c.hits).sum();
            format!(
                "# {hits} hits in {} containers from {} to {}{}\n",
                end.containers,
                end.since.to_rfc3339(),
                end.until.to_rfc3339(),
                if end.truncated { " (truncated)" } else { "" }
            )
        }
    };
    Some(Bytes::from(s))
}
