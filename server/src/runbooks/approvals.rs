//! Four-eyes approvals in the browser, and approval policies per action kind.
//!
//! A request is created by the engine when a run reaches a gate (the
//! runbook's `approval`, a step's `approval`, an `approval` step, or the
//! policy of the step's action kind) and the run parks as `waiting`. A vote:
//!
//! * must echo the request's `binding` (sha256 of runbook, version and
//!   parameters) — what the voter saw is what runs; anything else is 409;
//! * is refused from the requester (never self-approval), from a role the
//!   policy does not list, twice from the same person, and after expiry
//!   (the request turns `expired` and the run fails);
//! * a denial needs a reason and fails the run at once;
//! * the N-th approval queues the run again; the engine continues at the
//!   gate.
//!
//! Every vote is audited (`approval.approve|deny`) and appears on the run's
//! timeline, in the vote's transaction.

use std::collections::BTreeMap;

use axum::extract::State;
use opsdeck_wire::{
    ActionPolicy, Approval, ApprovalCount, ApprovalPolicy, ApprovalStatus, ApprovalVote, Role, Vote,
};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::{PgConnection, Row};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::engine::fail_parked;
use crate::audit::Actor;
use crate::auth::{Admin, Auth, Operator, Principal, RequestCtx, Viewer};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::state::AppState;
use crate::timeline;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(count))
        .routes(routes!(approve))
        .routes(routes!(deny))
        .routes(routes!(policies))
        .routes(routes!(put_policy, delete_policy))
}

fn role_of(s: &str) -> Option<Role> {
    match s {
        "viewer" => Some(Role::Viewer),
        "operator" => Some(Role::Operator),
        "admin" => Some(Role::Admin),
        _ => None,
    }
}

const SELECT: &str =
    "SELECT a.id, a.run_id, a.step, a.binding, a.subject, a.required, a.roles, a.status,
        a.created_at, a.expires_at, a.requested_by_id, r.params, r.version, r.requested_by,
        b.name AS runbook, s.name AS step_name
     FROM approvals a JOIN runs r ON r.id = a.run_id JOIN runbooks b ON b.id = r.runbook_id
     LEFT JOIN run_steps s ON s.run_id = a.run_id AND s.idx = a.step";

async fn votes(conn: &mut PgConnection, id: i64) -> sqlx::Result<Vec<(i64, ApprovalVote)>> {
    let rows = sqlx::query(
        "SELECT user_id, username, approve, reason, at FROM approval_votes WHERE approval_id = $1 ORDER BY at",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get("user_id"),
                ApprovalVote {
                    user: r.get("username"),
                    approve: r.get("approve"),
                    reason: r.get("reason"),
                    at: r.get("at"),
                },
            )
        })
        .collect())
}

async fn to_wire(
    conn: &mut PgConnection,
    r: &sqlx::postgres::PgRow,
    me: Option<&Principal>,
) -> sqlx::Result<Approval> {
    let id: i64 = r.get("id");
    let votes = votes(conn, id).await?;
    let roles: Vec<Role> = r
        .get::<Vec<String>, _>("roles")
        .iter()
        .filter_map(|s| role_of(s))
        .collect();
    let status =
        ApprovalStatus::parse(r.get::<&str, _>("status")).unwrap_or(ApprovalStatus::Pending);
    let expires_at: chrono::DateTime<chrono::Utc> = r.get("expires_at");
    let requester: Option<i64> = r.get("requested_by_id");
    let can_vote = me.is_some_and(|p| {
        status == ApprovalStatus::Pending
            && expires_at > chrono::Utc::now()
            && requester != Some(p.user_id)
            && roles.contains(&p.role)
            && !votes.iter().any(|(u, _)| *u == p.user_id)
    });
    let params: BTreeMap<String, Value> =
        serde_json::from_value(r.get("params")).unwrap_or_default();
    Ok(Approval {
        id,
        run_id: r.get("run_id"),
        runbook: r.get("runbook"),
        step: r.get("step"),
        step_name: r.get("step_name"),
        subject: r.get("subject"),
        params,
        version: r.get("version"),
        requested_by: r.get("requested_by"),
        required: r.get("required"),
        roles,
        status,
        created_at: r.get("created_at"),
        expires_at,
        binding: hex::encode(r.get::<Vec<u8>, _>("binding")),
        votes: votes.into_iter().map(|(_, v)| v).collect(),
        can_vote,
    })
}

/// A run's approval requests, oldest first.
pub async fn for_run(
    conn: &mut PgConnection,
    run: i64,
    me: Option<&Principal>,
) -> sqlx::Result<Vec<Approval>> {
    let rows = sqlx::query(&format!("{SELECT} WHERE a.run_id = $1 ORDER BY a.id"))
        .bind(run)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(to_wire(conn, r, me).await?);
    }
    Ok(out)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalFilter {
    /// `pending` (default) or `all`.
    pub status: Option<String>,
}

/// Approval requests (pending by default), newest first.
#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals", params(ApprovalFilter),
    responses((status = 200, body = Vec<Approval>)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn list(
    auth: Auth<Operator>,
    State(state): State<AppState>,
    Query(f): Query<ApprovalFilter>,
) -> ApiResult<Json<Vec<Approval>>> {
    let all = match f.status.as_deref() {
        None | Some("pending") => false,
        Some("all") => true,
        Some(_) => return Err(ApiError::BadRequest("status: pending or all".into())),
    };
    let mut conn = state.pool.acquire().await?;
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE ($1 OR (a.status = 'pending' AND a.expires_at > now())) ORDER BY a.id DESC LIMIT 200"
    ))
    .bind(all)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(to_wire(&mut conn, r, Some(&auth.principal)).await?);
    }
    Ok(Json(out))
}

/// How many pending requests the caller could vote on (the navigation badge).
#[utoipa::path(get, path = "/api/v1/approvals/count", tag = "approvals",
    responses((status = 200, body = ApprovalCount)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn count(
    auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<ApprovalCount>> {
    let p = &auth.principal;
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM approvals a
         WHERE a.status = 'pending' AND a.expires_at > now()
           AND a.requested_by_id IS DISTINCT FROM $1 AND $2 = ANY(a.roles)
           AND NOT EXISTS (SELECT 1 FROM approval_votes v WHERE v.approval_id = a.id AND v.user_id = $1)",
    )
    .bind(p.user_id)
    .bind(p.role.as_str())
    .fetch_one(&state.pool)
    .await?;
    Ok(Json(ApprovalCount { pending }))
}

/// Approve a request. `binding` must be the digest shown with it.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "approvals",
    params(("id" = i64, Path)), request_body = Vote,
    responses((status = 200, body = Approval), (status = 403, description = "own request, or a role the policy does not list"),
        (status = 404), (status = 409, description = "decided, expired, already voted, or the request changed")),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn approve(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(v): Json<Vote>,
) -> ApiResult<Json<Approval>> {
    vote(&state, &auth.principal, &ctx, id, v, true).await
}

/// Deny a request (a reason is required); the run fails.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/deny", tag = "approvals",
    params(("id" = i64, Path)), request_body = Vote,
    responses((status = 200, body = Approval), (status = 400), (status = 403), (status = 404), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn deny(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(v): Json<Vote>,
) -> ApiResult<Json<Approval>> {
    vote(&state, &auth.principal, &ctx, id, v, false).await
}

async fn vote(
    state: &AppState,
    p: &Principal,
    ctx: &RequestCtx,
    id: i64,
    v: Vote,
    approve: bool,
) -> ApiResult<Json<Approval>> {
    let reason = v.reason.trim().to_owned();
    if reason.len() > 2000 {
        return Err(ApiError::BadRequest(
            "reason: at most 2000 characters".into(),
        ));
    }
    if !approve && reason.is_empty() {
        return Err(ApiError::BadRequest("reason: say why you deny it".into()));
    }
    let mut tx = state.pool.begin().await?;
    let row = sqlx::query(
        "SELECT a.run_id, a.step, a.binding, a.required, a.roles, a.status, a.requested_by_id,
                a.expires_at < now() AS expired
         FROM approvals a WHERE a.id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("approval {id}")))?;
    let run: i64 = row.get("run_id");
    let step: Option<i32> = row.get("step");
    let status: String = row.get("status");
    let actor = Actor::of(p);
    let target = Some(format!("run:{run}"));
    if status != "pending" {
        return Err(ApiError::Conflict(format!(
            "approval {id} is already {status}"
        )));
    }
    if row.get::<bool, _>("expired") {
        // Record the expiry now rather than waiting for the reaper.
        sqlx::query("UPDATE approvals SET status = 'expired', decided_at = now() WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let msg = format!("approval #{id} expired before enough approvals");
        let ended = fail_parked(&mut tx, run, step, &msg).await?;
        timeline::append(
            &mut tx,
            "run",
            run,
            "approval.expired",
            None,
            step,
            &msg,
            json!({}),
        )
        .await?;
        ctx.audit_as(
            &mut tx,
            actor,
            if approve {
                "approval.approve"
            } else {
                "approval.deny"
            },
            target,
            json!({"approval": id}),
            opsdeck_wire::Outcome::Denied,
            Some("expired".into()),
        )
        .await?;
        ctx.commit(tx).await?;
        if ended {
            state
                .metrics
                .runs_finished_by_id(&state.pool, &[run], "failed")
                .await;
        }
        state.runs.changed(run).await;
        return Err(ApiError::Conflict(format!(
            "approval {id} has expired; the run failed — start it again to ask anew"
        )));
    }
    if hex::encode(row.get::<Vec<u8>, _>("binding")) != v.binding.trim().to_ascii_lowercase() {
        return Err(ApiError::Conflict(
            "this request is not what you reviewed (runbook version or parameters differ): reload it and review again".into(),
        ));
    }
    if row.get::<Option<i64>, _>("requested_by_id") == Some(p.user_id) {
        return Err(ApiError::Forbidden(
            "you requested this run: someone else must approve it".into(),
        ));
    }
    let roles: Vec<String> = row.get("roles");
    if !roles.iter().any(|r| r == p.role.as_str()) {
        return Err(ApiError::Forbidden(format!(
            "this approval needs the role {}",
            roles.join(" or ")
        )));
    }
    let mut denied_ended = false;
    let inserted = sqlx::query(
        "INSERT INTO approval_votes (approval_id, user_id, username, approve, reason)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(p.user_id)
    .bind(&p.username)
    .bind(approve)
    .bind(&reason)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(ApiError::Conflict(
            "you have already voted on this request".into(),
        ));
    }
    let why = if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    };
    if approve {
        let yes: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM approval_votes WHERE approval_id = $1 AND approve",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let required: i32 = row.get("required");
        timeline::append(
            &mut tx,
            "run",
            run,
            "approval.approved",
            Some(&actor),
            step,
            &format!("Approved by {} ({yes} of {required}){why}", p.username),
            json!({"approval": id}),
        )
        .await?;
        if yes >= i64::from(required) {
            sqlx::query(
                "UPDATE approvals SET status = 'approved', decided_at = now() WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE runs SET status = 'queued' WHERE id = $1 AND status = 'waiting'")
                .bind(run)
                .execute(&mut *tx)
                .await?;
        }
    } else {
        sqlx::query("UPDATE approvals SET status = 'denied', decided_at = now() WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let msg = format!("denied by {}{why}", p.username);
        denied_ended = fail_parked(&mut tx, run, step, &msg).await?;
        timeline::append(
            &mut tx,
            "run",
            run,
            "approval.denied",
            Some(&actor),
            step,
            &format!("Denied by {}{why}; the run stops", p.username),
            json!({"approval": id}),
        )
        .await?;
    }
    ctx.audit(
        &mut tx,
        p,
        if approve {
            "approval.approve"
        } else {
            "approval.deny"
        },
        target,
        json!({"approval": id, "reason": reason}),
    )
    .await?;
    ctx.commit(tx).await?;
    if denied_ended {
        state
            .metrics
            .runs_finished_by_id(&state.pool, &[run], "failed")
            .await;
    }
    state.runs.changed(run).await;
    let mut conn = state.pool.acquire().await?;
    let row = sqlx::query(&format!("{SELECT} WHERE a.id = $1"))
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(Json(to_wire(&mut conn, &row, Some(p)).await?))
}

/// Approval policies per action kind.
#[utoipa::path(get, path = "/api/v1/approval-policies", tag = "approvals",
    responses((status = 200, body = Vec<ActionPolicy>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn policies(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<ActionPolicy>>> {
    let rows: Vec<(String, i32, Vec<String>, String)> = sqlx::query_as(
        "SELECT action_kind, required, roles, expires FROM approval_policies ORDER BY action_kind",
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|(action_kind, required, roles, expires)| ActionPolicy {
                action_kind,
                policy: ApprovalPolicy {
                    required: required as u32,
                    roles: roles.iter().filter_map(|r| role_of(r)).collect(),
                    expires,
                },
            })
            .collect(),
    ))
}

/// Action kinds a policy can name (see `steps::policy_kind`).
pub const ACTION_KINDS: &[&str] = &[
    "container.stop.critical",
    "stack.stop",
    "prune",
    "exec",
    "scale",
    "database.promote",
    "database.terminate",
    "database.maintenance",
    "maintenance.enable",
    "backup.delete",
];

/// Set the approval policy of an action kind.
#[utoipa::path(put, path = "/api/v1/approval-policies/{kind}", tag = "approvals",
    params(("kind" = String, Path)), request_body = ApprovalPolicy,
    responses((status = 200, body = ActionPolicy), (status = 400)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn put_policy(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Json(policy): Json<ApprovalPolicy>,
) -> ApiResult<Json<ActionPolicy>> {
    if !ACTION_KINDS.contains(&kind.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "action kind: one of {}",
            ACTION_KINDS.join(", ")
        )));
    }
    super::def::check_policy(&policy).map_err(ApiError::BadRequest)?;
    let roles: Vec<&str> = policy.roles.iter().map(|r| r.as_str()).collect();
    let mut tx = state.pool.begin().await?;
    sqlx::query(
        "INSERT INTO approval_policies (action_kind, required, roles, expires) VALUES ($1, $2, $3, $4)
         ON CONFLICT (action_kind) DO UPDATE SET required = $2, roles = $3, expires = $4, updated_at = now()",
    )
    .bind(&kind)
    .bind(policy.required as i32)
    .bind(&roles)
    .bind(&policy.expires)
    .execute(&mut *tx)
    .await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "approval_policy.set",
        Some(format!("action:{kind}")),
        json!({"required": policy.required, "roles": roles, "expires": policy.expires}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(Json(ActionPolicy {
        action_kind: kind,
        policy,
    }))
}

/// Remove the approval policy of an action kind.
#[utoipa::path(delete, path = "/api/v1/approval-policies/{kind}", tag = "approvals",
    params(("kind" = String, Path)),
    responses((status = 204), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn delete_policy(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(kind): Path<String>,
) -> ApiResult<axum::http::StatusCode> {
    let mut tx = state.pool.begin().await?;
    let n = sqlx::query("DELETE FROM approval_policies WHERE action_kind = $1")
        .bind(&kind)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::NotFound(format!("approval policy for {kind}")));
    }
    ctx.audit(
        &mut tx,
        &auth.principal,
        "approval_policy.delete",
        Some(format!("action:{kind}")),
        json!({}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
