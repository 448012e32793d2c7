//! The audit log: who did what, to what, from where, with which outcome.
//!
//! Invariants (enforced by the database, see the foundation migration):
//! - append-only: UPDATE, DELETE and TRUNCATE on `audit_log` raise errors;
//! - hash-chained: each entry's `hash` covers its fields and the previous
//!   entry's hash, computed by the insert trigger with `audit_entry_hash`;
//!   [`verify`] recomputes the chain and reports the first changed, missing
//!   or reordered entry.
//!
//! Every mutating handler records its entry with [`RequestCtx::audit`] on the
//! same transaction as its change and commits with [`RequestCtx::commit`].
//! Mutating requests that fail before that are recorded by the
//! `http::audit_requests` middleware, so every mutating request leaves a trace.

use futures::TryStreamExt;
use opsdeck_wire::{AuditEntry, AuditPage, AuditVerifyReport, Outcome};
use serde::Deserialize;
use serde_json::{Map, Value};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Admin, Auth, Principal, RequestCtx, Via};
use crate::error::{ApiError, ApiResult, Json, Query};
use crate::state::AppState;

/// Who acted.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Option<i64>,
    pub name: String,
    pub kind: &'static str,
}

impl Actor {
    pub fn system(name: &str) -> Actor {
        Actor {
            id: None,
            name: name.to_owned(),
            kind: "system",
        }
    }
    pub fn anonymous() -> Actor {
        Actor {
            id: None,
            name: "anonymous".into(),
            kind: "anonymous",
        }
    }
    pub fn of(p: &Principal) -> Actor {
        match &p.via {
            Via::Session { .. } => Actor {
                id: Some(p.user_id),
                name: p.username.clone(),
                kind: "user",
            },
            Via::Token { id, name } => Actor {
                id: Some(*id),
                name: format!("token:{name} ({})", p.username),
                kind: "token",
            },
        }
    }
}

/// An entry to append.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub actor: Actor,
    pub action: String,
    pub target: Option<String>,
    pub params: Value,
    pub source: Option<String>,
    pub outcome: Outcome,
    pub detail: Option<String>,
}

fn outcome_str(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
        Outcome::Denied => "denied",
    }
}

/// Keys whose values never reach the audit log.
const SECRET_KEYS: &[&str] = &[
    "password",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
];

/// Replaces the values of secret-looking keys, at any depth, with `"***"`.
pub fn mask_secrets(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                let key = k.to_ascii_lowercase();
                if SECRET_KEYS.iter().any(|s| key.contains(s)) {
                    *val = Value::String("***".into());
                } else {
                    mask_secrets(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

/// Appends an entry on the given connection (normally the change's transaction).
pub async fn record(conn: &mut PgConnection, mut entry: NewEntry) -> sqlx::Result<()> {
    mask_secrets(&mut entry.params);
    sqlx::query!(
        r#"INSERT INTO audit_log (actor_id, actor, actor_kind, action, target, params, source, outcome, detail)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"#,
        entry.actor.id,
        entry.actor.name,
        entry.actor.kind,
        entry.action,
        entry.target,
        entry.params,
        entry.source,
        outcome_str(entry.outcome),
        entry.detail,
    )
    .execute(conn)
    .await?;
    Ok(())
}

impl RequestCtx {
    /// Records a successful action by `principal` on `tx`.
    pub async fn audit(
        &self,
        tx: &mut PgConnection,
        principal: &Principal,
        action: &str,
        target: Option<String>,
        params: Value,
    ) -> sqlx::Result<()> {
        self.audit_as(
            tx,
            Actor::of(principal),
            action,
            target,
            params,
            Outcome::Success,
            None,
        )
        .await
    }

    /// Records an entry with an explicit actor and outcome.
    #[allow(clippy::too_many_arguments)]
    pub async fn audit_as(
        &self,
        tx: &mut PgConnection,
        actor: Actor,
        action: &str,
        target: Option<String>,
        params: Value,
        outcome: Outcome,
        detail: Option<String>,
    ) -> sqlx::Result<()> {
        record(
            tx,
            NewEntry {
                actor,
                action: action.into(),
                target,
                params,
                source: self.source.clone(),
                outcome,
                detail,
            },
        )
        .await
    }

    /// Commits the change together with its audit entry, and marks the
    /// request as audited for the middleware.
    pub async fn commit(&self, tx: Transaction<'_, Postgres>) -> ApiResult<()> {
        tx.commit().await?;
        self.slots.mark_audited();
        Ok(())
    }
}

/// Result of walking the chain.
pub async fn verify(pool: &PgPool) -> anyhow::Result<AuditVerifyReport> {
    let mut rows = sqlx::query!(
        r#"SELECT seq, prev_hash, hash,
                  audit_entry_hash(prev_hash, seq, at, actor_id, actor, actor_kind, action, target,
                                   params, source, outcome, detail) AS "recomputed!"
           FROM audit_log ORDER BY seq"#
    )
    .fetch(pool);
    let mut expected_seq = 1i64;
    let mut prev: Vec<u8> = Vec::new();
    let mut checked = 0i64;
    while let Some(row) = rows.try_next().await? {
        let problem = if row.seq != expected_seq {
            Some(format!(
                "entry {expected_seq} is missing (next present entry is {})",
                row.seq
            ))
        } else if row.prev_hash != prev {
            Some(format!(
                "entry {} does not chain onto entry {} (an entry was removed or reordered)",
                row.seq,
                row.seq - 1
            ))
        } else if row.recomputed != row.hash {
            Some(format!(
                "entry {} was changed after it was written",
                row.seq
            ))
        } else {
            None
        };
        if problem.is_some() {
            return Ok(AuditVerifyReport {
                ok: false,
                checked,
                problem,
            });
        }
        checked += 1;
        expected_seq += 1;
        prev = row.hash;
    }
    Ok(AuditVerifyReport {
        ok: true,
        checked,
        problem: None,
    })
}

/// Filters for `GET /api/v1/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Entries with `seq` below this (for paging back).
    pub before: Option<i64>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Exact actor name.
    pub actor: Option<String>,
    /// Action name or prefix (e.g. `user.` for all user actions).
    pub action: Option<String>,
    pub outcome: Option<Outcome>,
    /// Text to find in target, detail or parameters.
    pub q: Option<String>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(verify_chain))
}

/// Browse the audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditFilter),
    responses((status = 200, body = AuditPage)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn list(
    _auth: Auth<Admin>,
    axum::extract::State(state): axum::extract::State<AppState>,
    Query(f): Query<AuditFilter>,
) -> ApiResult<Json<AuditPage>> {
    let limit = f.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 200".into(),
        ));
    }
    let outcome = f.outcome.map(outcome_str);
    let action_prefix = f.action.as_deref().map(|a| {
        format!(
            "{}%",
            a.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let q = f.q.as_deref().filter(|q| !q.is_empty()).map(|q| {
        format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let rows = sqlx::query!(
        r#"SELECT seq, at, actor, actor_kind, action, target, params, source, outcome, detail
           FROM audit_log
           WHERE ($1::bigint IS NULL OR seq < $1)
             AND ($2::text IS NULL OR actor = $2)
             AND ($3::text IS NULL OR action LIKE $3)
             AND ($4::text IS NULL OR outcome = $4)
             AND ($5::text IS NULL OR target ILIKE $5 OR detail ILIKE $5 OR params::text ILIKE $5)
           ORDER BY seq DESC LIMIT $6"#,
        f.before,
        f.actor,
        action_prefix,
        outcome,
        q,
        limit + 1,
    )
    .fetch_all(&state.pool)
    .await?;
    let more = rows.len() as i64 > limit;
    let entries: Vec<AuditEntry> = rows
        .into_iter()
        .take(limit as usize)
        .map(|r| AuditEntry {
            seq: r.seq,
            at: r.at,
            actor: r.actor,
            actor_kind: r.actor_kind,
            action: r.action,
            target: r.target,
            params: r.params,
            source: r.source,
            outcome: match r.outcome.as_str() {
                "success" => Outcome::Success,
                "denied" => Outcome::Denied,
                _ => Outcome::Failure,
            },
            detail: r.detail,
        })
        .collect();
    let next_before = if more {
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(Json(AuditPage {
        entries,
        next_before,
    }))
}

/// Check the hash chain of the whole audit log.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditVerifyReport)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn verify_chain(
    _auth: Auth<Admin>,
    axum::extract::State(state): axum::extract::State<AppState>,
) -> ApiResult<Json<AuditVerifyReport>> {
    Ok(Json(verify(&state.pool).await?))
}

/// Builds a JSON object from pairs (for audit parameters).
pub fn params<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Map<_, _>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_masked_at_any_depth() {
        let mut v = json!({"username": "bob", "password": "x", "nested": [{"api_token": "t", "ok": 1}], "New_Password": "y"});
        mask_secrets(&mut v);
        assert_eq!(
            v,
            json!({"username": "bob", "password": "***", "nested": [{"api_token": "***", "ok": 1}], "New_Password": "***"})
        );
    }
}
