//! Approvals (four-eyes). The inbox (`/approvals`, operators): pending
//! requests with what they approve (runbook, version, parameters), who asked,
//! the votes so far and the time left; approve or deny with a reason. The
//! approval policies by action kind (admins edit them). [`ApprovalPanel`] is
//! the request as the run page shows it too; [`ApprovalsBadge`] the count in
//! the navigation, polled every 15 s while the tab is visible.

use std::time::Duration;

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use opsdeck_wire::{ActionPolicy, Approval, ApprovalPolicy, ApprovalStatus, Role, Vote};

use crate::api::{self};
use crate::live::use_interval;
use crate::runs::ParamChips;
use crate::session::{current_role, use_session};
use crate::time::RelTime;
use crate::ui::{Confirm, EmptyState, ErrorState, Loading};

// ---------------------------------------------------------------- badge

/// The number of approvals the user could vote on, for the navigation.
#[derive(Clone, Copy)]
pub struct ApprovalBadge {
    count: RwSignal<Option<i64>>,
}

impl ApprovalBadge {
    /// Creates the badge's store, provides it as context and polls the
    /// count (operators and admins; called by the shell).
    pub fn start() -> ApprovalBadge {
        let badge = ApprovalBadge {
            count: RwSignal::new(None),
        };
        provide_context(badge);
        badge.refresh();
        use_interval(Duration::from_secs(15), move || badge.refresh());
        badge
    }

    pub fn refresh(self) {
        let count = self.count;
        leptos::task::spawn_local(async move {
            if let Ok(c) = api::approvals::count().await {
                if count.try_get_untracked() != Some(Some(c.pending)) {
                    count.try_set(Some(c.pending));
                }
            }
        });
    }
}

/// Refreshes the navigation badge, when there is one (after a vote).
fn use_badge() -> Option<ApprovalBadge> {
    use_context::<ApprovalBadge>()
}

#[component]
pub fn ApprovalsBadge() -> impl IntoView {
    let badge = use_badge();
    move || {
        badge
            .and_then(|b| b.count.get())
            .filter(|n| *n > 0)
            .map(|n| {
                view! {
                    <span class="nav-badge" data-testid="approvals-badge" data-count=n.to_string()
                        title=format!("{n} waiting for your approval")>
                        {n}
                    </span>
                }
            })
    }
}

// ---------------------------------------------------------------- pieces

pub fn approval_status_look(s: ApprovalStatus) -> (&'static str, &'static str) {
    match s {
        ApprovalStatus::Pending => ("degraded", "‖"),
        ApprovalStatus::Approved => ("ok", "✓"),
        ApprovalStatus::Denied => ("outage", "✕"),
        ApprovalStatus::Expired => ("unknown", "◷"),
        ApprovalStatus::Withdrawn => ("unknown", "↶"),
    }
}

#[component]
pub fn ApprovalStatusPill(status: ApprovalStatus) -> impl IntoView {
    let (kind, icon) = approval_status_look(status);
    view! {
        <span class=format!("pill pill-{kind}") data-status=status.as_str()>
            <span aria-hidden="true">{icon}</span>" "{status.as_str()}
        </span>
    }
}

/// "operator or admin".
pub fn roles_text(roles: &[Role]) -> String {
    let words: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    match words.len() {
        0 => "anyone".into(),
        1 => words[0].into(),
        n => format!("{} or {}", words[..n - 1].join(", "), words[n - 1]),
    }
}

/// Time left until `until`: "42 min 10 s", "expired".
pub fn countdown(until: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (until - now).num_seconds();
    match secs {
        i64::MIN..=0 => "expired".into(),
        1..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min {} s", secs / 60, secs % 60),
        3600..=86_399 => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
        _ => format!("{} days {} h", secs / 86_400, (secs % 86_400) / 3600),
    }
}

fn plural(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A pending approval request: what it approves, the votes so far, the
/// time left, and Approve / Deny with a reason for those who may vote.
#[component]
pub fn ApprovalPanel(
    approval: Approval,
    #[prop(into)] testid: String,
    /// Links to the run and names the runbook (the inbox).
    #[prop(optional)]
    show_run: bool,
    /// After a vote, with the request as it is now.
    on_voted: Callback<Approval>,
) -> impl IntoView {
    let me = use_session()
        .0
        .get_untracked()
        .flatten()
        .map(|m| m.username)
        .unwrap_or_default();
    let badge = use_badge();
    let a = approval;
    let id = a.id;
    let binding = StoredValue::new(a.binding.clone());
    let reason = RwSignal::new(String::new());
    let busy = RwSignal::new(None::<bool>);
    let error = RwSignal::new(None::<String>);
    let now = RwSignal::new(crate::time::now_utc());
    use_interval(Duration::from_secs(1), move || {
        now.set(crate::time::now_utc())
    });
    let expires = a.expires_at;

    let approvals = a.votes.iter().filter(|v| v.approve).count() as i64;
    let required = i64::from(a.required.max(1));
    let missing = (required - approvals).max(0);
    let own = a.requested_by == me;
    let voted = a.votes.iter().any(|v| v.user == me);
    let role = current_role();
    let why_not = if own {
        "you cannot approve your own request.".to_string()
    } else if voted {
        "you have voted already.".to_string()
    } else if !a.roles.contains(&role) {
        format!("your role ({}) cannot vote on it.", role.as_str())
    } else {
        "you cannot vote on it now.".to_string()
    };

    let vote = move |approve: bool| {
        busy.set(Some(approve));
        error.set(None);
        let body = Vote {
            binding: binding.get_value(),
            reason: reason.get_untracked().trim().to_string(),
        };
        leptos::task::spawn_local(async move {
            let r = api::approvals::vote(id, approve, &body).await;
            busy.try_set(None);
            match r {
                Ok(a) => {
                    if let Some(b) = badge {
                        b.refresh();
                    }
                    on_voted.run(a);
                }
                Err(e) => {
                    let m = if e.status == 409 {
                        format!("{} Reload to see the request as it is now.", e.message)
                    } else {
                        e.message
                    };
                    error.try_set(Some(m));
                }
            }
        });
    };

    let step_text = match (&a.step_name, a.step) {
        (Some(n), _) => format!("before step {n}"),
        (None, Some(i)) => format!("before step {}", i + 1),
        (None, None) => "before the first step".to_string(),
    };

    view! {
        <section class="card approval-panel" data-testid=testid data-approval-id=id.to_string()
            data-status=a.status.as_str()>
            <div class="card-head">
                <h2>"Approval needed"</h2>
                <ApprovalStatusPill status=a.status/>
                <span class="muted small">{format!("{} of {}", plural(approvals, "approval", "approvals"), required)}</span>
                <span class="spacer"></span>
                <span class="countdown small" class:warn-text=move || (expires - now.get()).num_seconds() < 300
                    title=format!("Expires {}", expires.format("%Y-%m-%d %H:%M:%S UTC"))>
                    "◷ "{move || {
                        let left = countdown(expires, now.get());
                        if left == "expired" { left } else { format!("expires in {left}") }
                    }}
                </span>
            </div>
            <p class="approval-subject" data-testid="approval-subject">{a.subject.clone()}</p>
            <dl class="facts facts-2">
                <dt>"Runbook"</dt>
                <dd><code>{a.runbook.clone()}</code>" v"{a.version}" · "{step_text}</dd>
                <dt>"Requested by"</dt><dd>{a.requested_by.clone()}" · "<RelTime at=Some(a.created_at)/></dd>
                <dt>"Approvers"</dt><dd>{format!("{} from {}", plural(required, "approval", "approvals"), roles_text(&a.roles))}</dd>
                {show_run.then(|| view! {
                    <dt>"Run"</dt><dd><a href=format!("/runs/{}", a.run_id) data-testid="approval-run-link">"Run #"{a.run_id}</a></dd>
                })}
                <dt class="row-start">"Parameters"</dt><dd class="span-3"><ParamChips params=a.params.clone()/></dd>
            </dl>
            {(!a.votes.is_empty()).then(|| view! {
                <ul class="vote-list" data-testid="approval-votes">
                    {a.votes.iter().map(|v| view! {
                        <li class:vote-deny=!v.approve>
                            <span aria-hidden="true">{if v.approve { "✓" } else { "✕" }}</span>" "
                            <strong>{v.user.clone()}</strong>" "{if v.approve { "approved" } else { "denied" }}
                            {(!v.reason.is_empty()).then(|| view! { ": "<span>{v.reason.clone()}</span> })}
                            " "<span class="muted small"><RelTime at=Some(v.at)/></span>
                        </li>
                    }).collect_view()}
                </ul>
            })}
            {if a.can_vote {
                view! {
                    <div class="vote-form">
                        <label>"Reason"
                            <input data-testid="vote-reason" maxlength="500" placeholder="Why you approve or deny (recorded)"
                                prop:value=move || reason.get() on:input=move |e| reason.set(event_target_value(&e))/>
                        </label>
                        <button class="btn btn-primary" data-testid="approve" disabled=move || busy.get().is_some()
                            on:click=move |_| vote(true)>
                            {move || if busy.get() == Some(true) { "Approving…" } else { "✓ Approve" }}
                        </button>
                        <button class="btn btn-danger" data-testid="deny" disabled=move || busy.get().is_some()
                            on:click=move |_| vote(false)>
                            {move || if busy.get() == Some(false) { "Denying…" } else { "✕ Deny" }}
                        </button>
                    </div>
                }.into_any()
            } else {
                view! {
                    <p class="muted" data-testid="approval-waiting">
                        {format!("Waiting for {} from {}; {}", plural(missing, "approval", "approvals"), roles_text(&a.roles), why_not)}
                    </p>
                }.into_any()
            }}
            {move || error.get().map(|m| view! { <div class="notice notice-error" role="alert" data-testid="vote-error">{m}</div> })}
        </section>
    }
}

// ---------------------------------------------------------------- inbox

#[component]
pub fn Approvals() -> impl IntoView {
    let role = current_role();
    let badge = use_badge();
    let reload = RwSignal::new(0u32);
    let bump = move || {
        reload.try_update(|n| *n = n.wrapping_add(1));
    };
    let list = LocalResource::new(move || {
        reload.get();
        api::approvals::pending()
    });
    use_interval(Duration::from_secs(10), bump);
    let data = Memo::new(move |_| list.get());
    let phase = Memo::new(move |_| {
        data.with(|d| match d {
            None => 0,
            Some(Err(_)) => 1,
            Some(Ok(v)) if v.is_empty() => 2,
            Some(Ok(_)) => 3,
        })
    });
    // Soonest to expire first.
    let pending = Memo::new(move |_| {
        let mut v = data.with(|d| match d {
            Some(Ok(v)) => v.clone(),
            _ => Vec::new(),
        });
        v.sort_by_key(|a| a.expires_at);
        v
    });
    // Keep the badge in step with what the inbox shows.
    Effect::new(move |_| {
        if data.with(|d| d.is_some()) {
            if let Some(b) = badge {
                b.refresh();
            }
        }
    });
    let notice = RwSignal::new(None::<String>);
    let on_voted = Callback::new(move |a: Approval| {
        notice.set(Some(format!(
            "{}: {}.",
            a.subject,
            match a.status {
                ApprovalStatus::Pending => "your vote is recorded",
                ApprovalStatus::Approved => "approved, the run goes on",
                ApprovalStatus::Denied => "denied, the run stops",
                ApprovalStatus::Expired => "expired",
                ApprovalStatus::Withdrawn => "withdrawn",
            }
        )));
        bump();
    });

    view! {
        <div class="page-head">
            <h1>"Approvals"</h1>
            <span class="spacer"></span>
            <a class="btn" href="/runs?status=waiting">"Waiting runs"</a>
        </div>
        <p class="lede">"Dangerous steps wait here until someone other than the requester approves them. An approval holds for the exact runbook version and parameters shown."</p>
        {move || notice.get().map(|m| view! {
            <div class="notice notice-ok" role="status" data-testid="vote-notice">
                <span>{m}</span><span class="spacer"></span>
                <button class="btn btn-ghost btn-small" aria-label="Dismiss" on:click=move |_| notice.set(None)>"✕"</button>
            </div>
        })}
        {move || match phase.get() {
            0 => view! { <Loading rows=3/> }.into_any(),
            1 => {
                let m = data.with_untracked(|d| match d { Some(Err(e)) => e.message.clone(), _ => String::new() });
                view! { <ErrorState message=m retry=Callback::new(move |_| bump())/> }.into_any()
            }
            2 => view! {
                <div data-testid="approvals-list" data-count="0">
                    <EmptyState title="Nothing waits for your approval">
                        <p>"Runs that need a second person (prunes, stopping critical services, failovers) appear here."</p>
                    </EmptyState>
                </div>
            }.into_any(),
            _ => view! {
                <div class="approvals-list" data-testid="approvals-list" data-count=move || pending.with(Vec::len).to_string()>
                    <For each=move || pending.get() key=|a| (a.id, a.votes.len(), a.can_vote, a.binding.clone())
                        children=move |a| {
                            let testid = format!("approval-row-{}", a.id);
                            view! { <ApprovalPanel approval=a testid show_run=true on_voted/> }
                        }/>
                </div>
            }.into_any(),
        }}
        <Policies admin={role >= Role::Admin}/>
    }
}

// ---------------------------------------------------------------- policies

/// Action kinds the server knows policies for (suggestions; others are
/// accepted as typed).
const ACTION_KINDS: [&str; 9] = [
    "container.stop.critical",
    "prune",
    "database.promote",
    "database.terminate",
    "database.maintenance",
    "exec",
    "scale",
    "stack.stop",
    "maintenance.enable",
];

#[component]
fn Policies(admin: bool) -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let bump = move || {
        reload.try_update(|n| *n = n.wrapping_add(1));
    };
    let list = LocalResource::new(move || {
        reload.get();
        api::approvals::policies()
    });
    let kind = RwSignal::new(String::new());
    let required = RwSignal::new("1".to_string());
    let operator_votes = RwSignal::new(true);
    let admin_votes = RwSignal::new(true);
    let expires = RwSignal::new("1h".to_string());
    let busy = RwSignal::new(false);
    let notice = RwSignal::new(None::<Result<String, String>>);
    let delete_target = RwSignal::new(None::<String>);
    let delete_open = RwSignal::new(false);

    let edit = move |p: ActionPolicy| {
        kind.set(p.action_kind);
        required.set(p.policy.required.to_string());
        operator_votes.set(p.policy.roles.contains(&Role::Operator));
        admin_votes.set(p.policy.roles.contains(&Role::Admin));
        expires.set(p.policy.expires);
        notice.set(None);
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let k = kind.get_untracked().trim().to_string();
        if k.is_empty() {
            notice.set(Some(Err("Name the action kind.".into())));
            return;
        }
        let Ok(n) = required.get_untracked().trim().parse::<u32>() else {
            notice.set(Some(Err("Approvals required: a whole number.".into())));
            return;
        };
        let mut roles = Vec::new();
        if operator_votes.get_untracked() {
            roles.push(Role::Operator);
        }
        if admin_votes.get_untracked() {
            roles.push(Role::Admin);
        }
        let policy = ApprovalPolicy {
            required: n,
            roles,
            expires: expires.get_untracked().trim().to_string(),
        };
        busy.set(true);
        notice.set(None);
        leptos::task::spawn_local(async move {
            let r = api::approvals::save_policy(&k, &policy).await;
            busy.try_set(false);
            match r {
                Ok(_) => {
                    notice.try_set(Some(Ok(format!("Saved the policy for {k}."))));
                    bump();
                }
                Err(e) => {
                    notice.try_set(Some(Err(e.message)));
                }
            }
        });
    };
    let delete = Callback::new(move |_| {
        let Some(k) = delete_target.get_untracked() else {
            return;
        };
        leptos::task::spawn_local(async move {
            let r = api::approvals::remove_policy(&k).await;
            notice.try_set(Some(
                r.map(|_| format!("Removed the policy for {k}."))
                    .map_err(|e| e.message),
            ));
            bump();
        });
    });

    view! {
        <section class="card" data-testid="approval-policies">
            <div class="card-head">
                <h2>"Policies by action kind"</h2>
                <span class="muted small">"Apply wherever the action runs in a runbook, on top of the runbook's own approvals."</span>
            </div>
            {move || notice.get().map(|n| match n {
                Ok(m) => view! { <div class="notice notice-ok" role="status">{m}</div> }.into_any(),
                Err(m) => view! { <div class="notice notice-error" role="alert">{m}</div> }.into_any(),
            })}
            {move || match list.get() {
                None => view! { <Loading rows=2/> }.into_any(),
                Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| bump())/> }.into_any(),
                Some(Ok(v)) if v.is_empty() => view! { <p class="muted">"No policies: only runbooks' own approvals apply."</p> }.into_any(),
                Some(Ok(v)) => view! {
                    <div class="table-wrap"><table class="table">
                        <thead><tr><th>"Action kind"</th><th class="num">"Approvals"</th><th>"From"</th><th>"Expires after"</th>
                            {admin.then(|| view! { <th><span class="sr-only">"Actions"</span></th> })}</tr></thead>
                        <tbody>{v.into_iter().map(|p| {
                            let for_edit = p.clone();
                            let k = p.action_kind.clone();
                            view! {
                                <tr data-testid=format!("policy-row-{}", p.action_kind)>
                                    <td><code>{p.action_kind.clone()}</code></td>
                                    <td class="num">{p.policy.required}</td>
                                    <td>{roles_text(&p.policy.roles)}</td>
                                    <td>{p.policy.expires.clone()}</td>
                                    {admin.then(|| view! {
                                        <td><div class="actions">
                                            <button class="btn btn-small" on:click=move |_| edit(for_edit.clone())>"Edit"</button>
                                            <button class="btn btn-small btn-danger" on:click=move |_| { delete_target.set(Some(k.clone())); delete_open.set(true); }>"Remove"</button>
                                        </div></td>
                                    })}
                                </tr>
                            }
                        }).collect_view()}</tbody>
                    </table></div>
                }.into_any(),
            }}
            {admin.then(|| view! {
                <form class="form-grid policy-form" on:submit=submit data-testid="policy-form">
                    <label>"Action kind"
                        <input list="action-kinds" required placeholder="e.g. prune" data-testid="policy-kind"
                            prop:value=move || kind.get() on:input=move |e| kind.set(event_target_value(&e))/>
                        <datalist id="action-kinds">{ACTION_KINDS.iter().map(|k| view! { <option value=*k></option> }).collect_view()}</datalist>
                    </label>
                    <label>"Approvals required"
                        <input type="number" min="1" max="10" step="1" data-testid="policy-required"
                            prop:value=move || required.get() on:input=move |e| required.set(event_target_value(&e))/>
                    </label>
                    <label>"Expires after"
                        <input placeholder="1h" data-testid="policy-expires"
                            prop:value=move || expires.get() on:input=move |e| expires.set(event_target_value(&e))/>
                    </label>
                    <fieldset>
                        <legend>"Who may approve"</legend>
                        <label class="check"><input type="checkbox" prop:checked=move || operator_votes.get()
                            on:change=move |e| operator_votes.set(event_target_checked(&e))/>"operator"</label>
                        <label class="check"><input type="checkbox" prop:checked=move || admin_votes.get()
                            on:change=move |e| admin_votes.set(event_target_checked(&e))/>"admin"</label>
                    </fieldset>
                    <div class="span-all btn-row">
                        <button class="btn btn-primary" type="submit" data-testid="policy-save" disabled=move || busy.get()>"Save policy"</button>
                        <span class="hint">"Saving a kind that exists replaces its policy. The requester never approves their own request."</span>
                    </div>
                </form>
            })}
            <Confirm open=delete_open
                title=Signal::derive(move || delete_target.get().map(|k| format!("Remove the policy for {k}?")).unwrap_or_default())
                message=Signal::derive(|| "Runs started from now on no longer need these approvals (runbooks' own approvals still apply).".to_string())
                confirm_label="Remove" on_confirm=delete/>
        </section>
    }
}
