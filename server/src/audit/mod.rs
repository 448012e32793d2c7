//! The audit log: who did what, to what, from where, with which outcome.
//!
//! Invariants (enforced by the database, see the foundation migration):
//! - append-only: UPDATE, DELETE and TRUNCATE on `audit_log` raise errors;
//! - hash-chained: a transaction's entries join one of 16 chains (by
//!   transaction id, so unrelated writers seldom wait for each other's
//!   commit); each entry's `hash` covers its fields and the hash of the
//!   entry before it in its chain, computed by the insert trigger with
//!   `audit_entry_hash`; [`verify`] recomputes every chain and reports the
//!   first changed, missing or reordered entry; `seq` is the entry's id and
//!   order across chains.
//!
//! Every mutating handler records its entry with `RequestCtx::audit` (in
//! `auth`) on the same transaction as its change and commits with
//! `RequestCtx::commit`. Mutating requests that fail before that are
//! recorded by the `http::audit_requests` middleware, so every mutating
//! request leaves a trace.
//!
//! Layering: this module is *below* `auth` and every capability: it knows
//! nothing of principals, requests or HTTP. `auth` builds an [`Actor`] from
//! a principal (`Actor::of`) and owns the request context; the log's
//! routes are `auth::audit_log`. The SQL is in [`store`]; errors are
//! [`AuditError`].

pub mod checkpoint;
pub mod store;

use futures::TryStreamExt;
use opsdeck_wire::{AuditEntry, AuditPage, AuditVerifyReport, Outcome};
use serde::Deserialize;
use serde_json::{Map, Value};
use sqlx::{PgConnection, PgPool};
use utoipa::IntoParams;

/// What can go wrong reading the log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A filter out of range (400).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

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

pub(crate) fn outcome_str(o: Outcome) -> &'static str {
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
    store::insert(conn, &entry, outcome_str(entry.outcome)).await
}

/// Result of walking every chain: in each, links 1, 2, … without a gap,
/// each entry's `prev_hash` the hash of the entry before it, and each hash
/// what the entry's fields give. (Removing a chain's newest entries leaves
/// no trace in the walk; the signed checkpoint catches that.)
pub async fn verify(pool: &PgPool) -> Result<AuditVerifyReport, AuditError> {
    let mut rows = store::chain(pool);
    let mut at: Option<(i16, i64)> = None; // (chain, seq) of the previous entry
    let mut expected_link = 1i64;
    let mut prev: Vec<u8> = Vec::new();
    let mut checked = 0i64;
    while let Some(row) = rows.try_next().await? {
        if at.is_none_or(|(c, _)| c != row.chain) {
            at = None;
            expected_link = 1;
            prev = Vec::new();
        }
        let after = match at {
            Some((_, seq)) => format!("after entry {seq}"),
            None => "at its start".to_owned(),
        };
        let problem = if row.link != expected_link {
            Some(format!(
                "an entry is missing in chain {} {after} (the next present entry is {}, link {} where {expected_link} was due)",
                row.chain, row.seq, row.link
            ))
        } else if row.prev_hash != prev {
            Some(format!(
                "entry {} does not chain onto the entry before it in chain {} (an entry was removed or reordered)",
                row.seq, row.chain
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
        expected_link += 1;
        at = Some((row.chain, row.seq));
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

/// A page of the log, newest first (`limit` 1–200, default 50).
pub async fn list(pool: &PgPool, f: &AuditFilter) -> Result<AuditPage, AuditError> {
    let limit = f.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(AuditError::Invalid(
            "limit must be between 1 and 200".into(),
        ));
    }
    let outcome = f.outcome.map(outcome_str);
    let action_prefix = f.action.as_deref().map(|a| format!("{}%", like_escape(a)));
    let q =
        f.q.as_deref()
            .filter(|q| !q.is_empty())
            .map(|q| format!("%{}%", like_escape(q)));
    let rows = store::page(
        pool,
        store::PageFilter {
            before: f.before,
            actor: f.actor.as_deref(),
            action_prefix: action_prefix.as_deref(),
            outcome,
            q: q.as_deref(),
        },
        limit + 1,
    )
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
    Ok(AuditPage {
        entries,
        next_before,
    })
}

/// `s` with LIKE's wildcards and escape character escaped.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
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
