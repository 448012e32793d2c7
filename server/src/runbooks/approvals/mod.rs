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
//!
//! Layers: [`api`] (routes), this module (the rules, [`RunbookError`]),
//! [`store`] (the SQL).

pub mod api;
pub mod store;

pub use api::router;

use std::collections::BTreeMap;

use opsdeck_wire::{ActionPolicy, Approval, ApprovalPolicy, ApprovalStatus, ApprovalVote, Role};
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::engine::fail_parked;
use super::error::{RunbookError, RunbookResult};
use crate::audit::Actor;
use crate::auth::{Principal, RequestCtx};
use crate::state::AppState;
use crate::timeline;

fn role_of(s: &str) -> Option<Role> {
    match s {
        "viewer" => Some(Role::Viewer),
        "operator" => Some(Role::Operator),
        "admin" => Some(Role::Admin),
        _ => None,
    }
}

async fn to_wire(
    conn: &mut PgConnection,
    r: store::ApprovalRow,
    me: Option<&Principal>,
) -> sqlx::Result<Approval> {
    let votes = store::votes(conn, r.id).await?;
    let roles: Vec<Role> = r.roles.iter().filter_map(|s| role_of(s)).collect();
    let status = ApprovalStatus::parse(&r.status).unwrap_or(ApprovalStatus::Pending);
    let can_vote = me.is_some_and(|p| {
        status == ApprovalStatus::Pending
            && r.expires_at > chrono::Utc::now()
            && r.requested_by_id != Some(p.user_id)
            && roles.contains(&p.role)
            && !votes.iter().any(|v| v.user_id == p.user_id)
    });
    let params: BTreeMap<String, Value> = serde_json::from_value(r.params).unwrap_or_default();
    Ok(Approval {
        id: r.id,
        run_id: r.run_id,
        runbook: r.runbook,
        step: r.step,
        step_name: r.step_name,
        subject: r.subject,
        params,
        version: r.version,
        requested_by: r.requested_by,
        required: r.required,
        roles,
        status,
        created_at: r.created_at,
        expires_at: r.expires_at,
        binding: hex::encode(r.binding),
        votes: votes
            .into_iter()
            .map(|v| ApprovalVote {
                user: v.username,
                approve: v.approve,
                reason: v.reason,
                at: v.at,
            })
            .collect(),
        can_vote,
    })
}

/// A run's approval requests, oldest first.
pub async fn for_run(
    conn: &mut PgConnection,
    run: i64,
    me: Option<&Principal>,
) -> sqlx::Result<Vec<Approval>> {
    let rows = store::for_run(conn, run).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(to_wire(conn, r, me).await?);
    }
    Ok(out)
}

/// Approval requests (pending unless `all`), newest first, as `me` sees them.
pub async fn list(state: &AppState, me: &Principal, all: bool) -> RunbookResult<Vec<Approval>> {
    let mut conn = state.pool.acquire().await?;
    let rows = store::list(&mut conn, all).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(to_wire(&mut conn, r, Some(me)).await?);
    }
    Ok(out)
}

/// How many pending requests `p` could vote on.
pub async fn votable(state: &AppState, p: &Principal) -> RunbookResult<i64> {
    Ok(store::votable(&state.pool, p.user_id, p.role.as_str()).await?)
}

/// Records `p`'s vote on request `id` (see the module doc for the rules);
/// the request as it is now.
pub async fn vote(
    state: &AppState,
    p: &Principal,
    ctx: &RequestCtx,
    id: i64,
    binding: &str,
    reason: &str,
    approve: bool,
) -> RunbookResult<Approval> {
    let reason = reason.trim().to_owned();
    if reason.len() > 2000 {
        return Err(RunbookError::Invalid(
            "reason: at most 2000 characters".into(),
        ));
    }
    if !approve && reason.is_empty() {
        return Err(RunbookError::Invalid("reason: say why you deny it".into()));
    }
    let mut tx = state.pool.begin().await?;
    let row = store::lock(&mut tx, id)
        .await?
        .ok_or_else(|| RunbookError::NotFound(format!("approval {id}")))?;
    let run = row.run_id;
    let step = row.step;
    let actor = Actor::of(p);
    let target = Some(format!("run:{run}"));
    if row.status != "pending" {
        return Err(RunbookError::Conflict(format!(
            "approval {id} is already {}",
            row.status
        )));
    }
    let action = if approve {
        "approval.approve"
    } else {
        "approval.deny"
    };
    if row.expired {
        // Record the expiry now rather than waiting for the reaper.
        store::decide(&mut tx, id, "expired").await?;
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
            action,
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
        state.runs().changed(run).await;
        return Err(RunbookError::Conflict(format!(
            "approval {id} has expired; the run failed — start it again to ask anew"
        )));
    }
    if hex::encode(&row.binding) != binding.trim().to_ascii_lowercase() {
        return Err(RunbookError::Conflict(
            "this request is not what you reviewed (runbook version or parameters differ): reload it and review again".into(),
        ));
    }
    if row.requested_by_id == Some(p.user_id) {
        return Err(RunbookError::Forbidden(
            "you requested this run: someone else must approve it".into(),
        ));
    }
    if !row.roles.iter().any(|r| r == p.role.as_str()) {
        return Err(RunbookError::Forbidden(format!(
            "this approval needs the role {}",
            row.roles.join(" or ")
        )));
    }
    let mut denied_ended = false;
    if !store::insert_vote(&mut tx, id, (p.user_id, &p.username), approve, &reason).await? {
        return Err(RunbookError::Conflict(
            "you have already voted on this request".into(),
        ));
    }
    let why = if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    };
    if approve {
        let yes = store::approvals_so_far(&mut tx, id).await?;
        let required = row.required;
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
            store::decide(&mut tx, id, "approved").await?;
            store::release_run(&mut tx, run).await?;
        }
    } else {
        store::decide(&mut tx, id, "denied").await?;
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
        action,
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
    state.runs().changed(run).await;
    let mut conn = state.pool.acquire().await?;
    let row = store::get(&mut conn, id).await?;
    Ok(to_wire(&mut conn, row, Some(p)).await?)
}

/// Approval policies per action kind.
pub async fn policies(state: &AppState) -> RunbookResult<Vec<ActionPolicy>> {
    Ok(store::policies(&state.pool)
        .await?
        .into_iter()
        .map(|r| ActionPolicy {
            action_kind: r.action_kind,
            policy: ApprovalPolicy {
                required: r.required as u32,
                roles: r.roles.iter().filter_map(|r| role_of(r)).collect(),
                expires: r.expires,
            },
        })
        .collect())
}

/// Action kinds a policy can name (see `steps::kind_gate`).
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
    "image.update",
];

/// Sets the approval policy of an action kind (audited).
pub async fn put_policy(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    kind: &str,
    policy: &ApprovalPolicy,
) -> RunbookResult<()> {
    if !ACTION_KINDS.contains(&kind) {
        return Err(RunbookError::Invalid(format!(
            "action kind: one of {}",
            ACTION_KINDS.join(", ")
        )));
    }
    super::def::check_policy(policy).map_err(RunbookError::Invalid)?;
    let roles: Vec<String> = policy.roles.iter().map(|r| r.as_str().to_owned()).collect();
    let mut tx = state.pool.begin().await?;
    store::put_policy(
        &mut tx,
        kind,
        policy.required as i32,
        &roles,
        &policy.expires,
    )
    .await?;
    ctx.audit(
        &mut tx,
        p,
        "approval_policy.set",
        Some(format!("action:{kind}")),
        json!({"required": policy.required, "roles": roles, "expires": policy.expires}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(())
}

/// Removes the approval policy of an action kind (audited).
pub async fn delete_policy(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    kind: &str,
) -> RunbookResult<()> {
    let mut tx = state.pool.begin().await?;
    if !store::delete_policy(&mut tx, kind).await? {
        return Err(RunbookError::NotFound(format!(
            "approval policy for {kind}"
        )));
    }
    ctx.audit(
        &mut tx,
        p,
        "approval_policy.delete",
        Some(format!("action:{kind}")),
        json!({}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(())
}
