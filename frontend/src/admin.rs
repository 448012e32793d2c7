//! Admin pages: users, API tokens, the audit log.

use leptos::prelude::*;
use opsdeck_wire::{
    AuditVerifyReport, CreateApiTokenRequest, CreateUserRequest, Outcome, Role, TokenScope,
    UpdateUserRequest, User,
};

use crate::api::{self, ApiError};
use crate::time::RelTime;
use crate::ui::{Confirm, EmptyState, ErrorState, Loading};

fn role_from(s: &str) -> Role {
    match s {
        "admin" => Role::Admin,
        "operator" => Role::Operator,
        _ => Role::Viewer,
    }
}

/// A pending destructive action, confirmed by the dialog.
#[derive(Clone)]
struct Pending {
    title: String,
    message: String,
    run: std::sync::Arc<dyn Fn() + Send + Sync>,
}

#[component]
pub fn Users() -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let users = LocalResource::new(move || {
        reload.get();
        api::admin::users()
    });
    let filter = RwSignal::new(String::new());
    let notice = RwSignal::new(None::<Result<String, String>>);
    let pending = RwSignal::new(None::<Pending>);
    let confirm_open = RwSignal::new(false);

    let report = move |r: Result<String, ApiError>| {
        notice.set(Some(r.map_err(|e| e.message)));
        reload.update(|n| *n += 1);
    };
    let ask = move |title: String, message: String, run: std::sync::Arc<dyn Fn() + Send + Sync>| {
        pending.set(Some(Pending {
            title,
            message,
            run,
        }));
        confirm_open.set(true);
    };

    // New user form.
    let new_name = RwSignal::new(String::new());
    let new_display = RwSignal::new(String::new());
    let new_role = RwSignal::new("viewer".to_string());
    let new_password = RwSignal::new(String::new());
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let req = CreateUserRequest {
            username: new_name.get_untracked(),
            display_name: Some(new_display.get_untracked()).filter(|s| !s.is_empty()),
            role: role_from(&new_role.get_untracked()),
            password: new_password.get_untracked(),
        };
        leptos::task::spawn_local(async move {
            let r = api::admin::create_user(&req).await;
            if r.is_ok() {
                new_name.set(String::new());
                new_display.set(String::new());
                new_password.set(String::new());
            }
            report(r.map(|u| {
                format!(
                    "Created {}. They choose their own password at first login.",
                    u.username
                )
            }));
        });
    };

    let row = move |u: User| {
        let id = u.id;
        let name = u.username.clone();
        let (n1, n2, n3) = (name.clone(), name.clone(), name.clone());
        let disabled = u.disabled;
        let reset_pw = RwSignal::new(String::new());
        view! {
            <tr data-testid=format!("user-{}", u.username)>
                <td><strong>{u.username.clone()}</strong><div class="muted small">{u.display_name.clone()}</div></td>
                <td>
                    <select aria-label="Role" on:change=move |e| {
                        let role = role_from(&event_target_value(&e));
                        let n = n1.clone();
                        leptos::task::spawn_local(async move {
                            let req = UpdateUserRequest { display_name: None, role: Some(role), disabled: None };
                            report(api::admin::update_user(id, &req).await
                                .map(|_| format!("{n} is now {}", role.as_str())));
                        });
                    }>
                        {Role::ALL.iter().map(|r| view! { <option value=r.as_str() selected=*r == u.role>{r.as_str()}</option> }).collect_view()}
                    </select>
                </td>
                <td>{if disabled {
                        view! { <span class="pill pill-outage"><span aria-hidden="true">"✕"</span>" disabled"</span> }.into_any()
                    } else {
                        view! { <span class="pill pill-ok"><span aria-hidden="true">"✓"</span>" active"</span> }.into_any()
                    }}
                    {u.must_change_password.then(|| view! { <div class="muted small">"must change password"</div> })}
                </td>
                <td><RelTime at=u.last_login_at/></td>
                <td class="num">{u.active_sessions}</td>
                <td class="actions">
                    <button class="btn btn-small" on:click=move |_| {
                        let n = n2.clone();
                        let verb = if disabled { "Enable" } else { "Disable" };
                        ask(format!("{verb} {n}?"),
                            if disabled { format!("{n} will be able to log in again.") } else { format!("{n} will be logged out everywhere and cannot log in until enabled.") },
                            std::sync::Arc::new(move || {
                                let n = n.clone();
                                leptos::task::spawn_local(async move {
                                    let req = UpdateUserRequest { display_name: None, role: None, disabled: Some(!disabled) };
                                    report(api::admin::update_user(id, &req).await
                                        .map(|_| format!("{n} {}", if disabled { "enabled" } else { "disabled" })));
                                });
                            }));
                    }>{if disabled { "Enable" } else { "Disable" }}</button>
                    <button class="btn btn-small" on:click=move |_| {
                        let n = n3.clone();
                        ask(format!("End all sessions of {n}?"), format!("{n} will have to log in again on every device."),
                            std::sync::Arc::new(move || {
                                let n = n.clone();
                                leptos::task::spawn_local(async move {
                                    report(api::admin::end_sessions(id).await.map(|_| format!("Ended the sessions of {n}")));
                                });
                            }));
                    }>"End sessions"</button>
                    <details class="inline-form">
                        <summary class="btn btn-small">"Reset password"</summary>
                        <form on:submit=move |ev: leptos::ev::SubmitEvent| {
                            ev.prevent_default();
                            let n = name.clone();
                            let req = opsdeck_wire::ResetPasswordRequest { new_password: reset_pw.get_untracked() };
                            leptos::task::spawn_local(async move {
                                report(api::admin::reset_password(id, &req).await
                                    .map(|_| format!("New password set for {n}; their sessions ended and they must change it at next login.")));
                            });
                        }>
                            <input type="password" placeholder="New password (12+)" aria-label="New password" required minlength="12"
                                on:input=move |e| reset_pw.set(event_target_value(&e))/>
                            <button class="btn btn-small btn-primary" type="submit">"Set"</button>
                        </form>
                    </details>
                </td>
            </tr>
        }
    };

    view! {
        <h1>"Users"</h1>
        <Notice notice/>
        <Confirm open=confirm_open
            title=Signal::derive(move || pending.get().map(|p| p.title).unwrap_or_default())
            message=Signal::derive(move || pending.get().map(|p| p.message).unwrap_or_default())
            confirm_label="Confirm"
            on_confirm=Callback::new(move |_| if let Some(p) = pending.get_untracked() { (p.run)() })/>
        <div class="toolbar">
            <input class="search" type="search" placeholder="Filter users" aria-label="Filter users"
                on:input=move |e| filter.set(event_target_value(&e).to_lowercase())/>
        </div>
        <Suspense fallback=|| view! { <Loading rows=4/> }>
            {move || users.get().map(|r| match r {
                Err(e) => view! { <ErrorState message=e.message retry=Callback::new(move |_| reload.update(|n| *n += 1))/> }.into_any(),
                Ok(list) => {
                    let f = filter.get();
                    let shown: Vec<User> = list.into_iter()
                        .filter(|u| f.is_empty() || u.username.contains(&f) || u.display_name.to_lowercase().contains(&f))
                        .collect();
                    if shown.is_empty() {
                        view! { <EmptyState title="No users match"><p>"Change the filter, or add a user below."</p></EmptyState> }.into_any()
                    } else {
                        view! {
                            <div class="table-wrap"><table class="table" data-testid="users-table">
                                <thead><tr><th>"User"</th><th>"Role"</th><th>"Status"</th><th>"Last login"</th><th class="num">"Sessions"</th><th></th></tr></thead>
                                <tbody>{shown.into_iter().map(row).collect_view()}</tbody>
                            </table></div>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
        <form class="card form-grid" on:submit=create>
            <h2>"New user"</h2>
            <label>"Username"<input required placeholder="e.g. jdoe" prop:value=move || new_name.get() on:input=move |e| new_name.set(event_target_value(&e))/></label>
            <label>"Display name"<input placeholder="optional" prop:value=move || new_display.get() on:input=move |e| new_display.set(event_target_value(&e))/></label>
            <label>"Role"
                <select on:change=move |e| new_role.set(event_target_value(&e))>
                    <option value="viewer">"viewer"</option><option value="operator">"operator"</option><option value="admin">"admin"</option>
                </select>
            </label>
            <label>"Initial password"<input type="password" required minlength="12" prop:value=move || new_password.get() on:input=move |e| new_password.set(event_target_value(&e))/></label>
            <button class="btn btn-primary" type="submit">"Create user"</button>
        </form>
    }
}

#[component]
fn Notice(notice: RwSignal<Option<Result<String, String>>>) -> impl IntoView {
    move || {
        notice.get().map(|n| match n {
            Ok(msg) => view! { <div class="notice notice-ok" role="status">{msg}</div> }.into_any(),
            Err(msg) => {
                view! { <div class="notice notice-error" role="alert">{msg}</div> }.into_any()
            }
        })
    }
}

#[component]
pub fn Tokens() -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let tokens = LocalResource::new(move || {
        reload.get();
        api::admin::tokens()
    });
    let notice = RwSignal::new(None::<Result<String, String>>);
    let secret = RwSignal::new(None::<String>);
    let name = RwSignal::new(String::new());
    let role = RwSignal::new("viewer".to_string());
    let days = RwSignal::new(String::new());
    let scope = RwSignal::new("full".to_string());
    let revoke_target = RwSignal::new(None::<(i64, String)>);
    let confirm_open = RwSignal::new(false);

    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let expires = days.get_untracked().trim().parse::<u32>().ok();
        let req = CreateApiTokenRequest {
            name: name.get_untracked(),
            role: role_from(&role.get_untracked()),
            expires_in_days: expires,
            scopes: vec![TokenScope::parse(&scope.get_untracked()).unwrap_or(TokenScope::Full)],
        };
        leptos::task::spawn_local(async move {
            match api::admin::create_token(&req).await {
                Ok(c) => {
                    secret.set(Some(c.token));
                    notice.set(None);
                    name.set(String::new());
                }
                Err(e) => notice.set(Some(Err(e.message))),
            }
            reload.update(|n| *n += 1);
        });
    };

    view! {
        <h1>"API tokens"</h1>
        <p class="lede">"Tokens let scripts and monitoring call the API with "<code>"Authorization: Bearer …"</code>". A token never has more rights than its creator, and its scope narrows them further: give Alertmanager an "<code>"alerts:write"</code>" token, a dashboard a "<code>"read"</code>" one."</p>
        <Notice notice/>
        {move || secret.get().map(|s| view! {
            <div class="notice notice-ok" data-testid="token-secret">
                <strong>"Copy this token now: it is shown only once."</strong>
                <code class="secret">{s}</code>
                <button class="btn btn-small" on:click=move |_| secret.set(None)>"Done"</button>
            </div>
        })}
        <Confirm open=confirm_open
            title=Signal::derive(move || revoke_target.get().map(|(_, n)| format!("Revoke {n}?")).unwrap_or_default())
            message=Signal::derive(move || revoke_target.get().map(|(_, n)| format!("Anything using {n} stops working at once.")).unwrap_or_default())
            confirm_label="Revoke"
            on_confirm=Callback::new(move |_| if let Some((id, n)) = revoke_target.get_untracked() {
                leptos::task::spawn_local(async move {
                    notice.set(Some(api::admin::revoke_token(id).await.map(|_| format!("Revoked {n}")).map_err(|e| e.message)));
                    reload.update(|x| *x += 1);
                });
            })/>
        <Suspense fallback=|| view! { <Loading rows=3/> }>
            {move || tokens.get().map(|r| match r {
                Err(e) => view! { <ErrorState message=e.message retry=Callback::new(move |_| reload.update(|n| *n += 1))/> }.into_any(),
                Ok(list) if list.is_empty() => view! {
                    <EmptyState title="No API tokens"><p>"Create one below for a script or a monitoring system."</p></EmptyState>
                }.into_any(),
                Ok(list) => view! {
                    <div class="table-wrap"><table class="table">
                        <thead><tr><th>"Name"</th><th>"Role"</th><th>"Scopes"</th><th>"Prefix"</th><th>"Created"</th><th>"Last used"</th><th>"Expires"</th><th>"Status"</th><th></th></tr></thead>
                        <tbody>{list.into_iter().map(|t| {
                            let revoked = t.revoked_at.is_some();
                            let target = (t.id, t.name.clone());
                            view! {
                                <tr>
                                    <td><strong>{t.name.clone()}</strong><div class="muted small">"by "{t.created_by.clone()}</div></td>
                                    <td><span class="role-badge">{t.role.as_str()}</span></td>
                                    <td data-testid="token-scopes">{t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")}</td>
                                    <td><code>{t.prefix.clone()}"…"</code></td>
                                    <td><RelTime at=Some(t.created_at)/></td>
                                    <td><RelTime at=t.last_used_at/></td>
                                    <td>{match t.expires_at { Some(_) => view! { <RelTime at=t.expires_at/> }.into_any(), None => view! { <span class="muted">"never"</span> }.into_any() }}</td>
                                    <td>{if revoked {
                                        view! { <span class="pill pill-unknown"><span aria-hidden="true">"⊘"</span>" revoked"</span> }.into_any()
                                    } else {
                                        view! { <span class="pill pill-ok"><span aria-hidden="true">"✓"</span>" active"</span> }.into_any()
                                    }}</td>
                                    <td>{(!revoked).then(|| view! {
                                        <button class="btn btn-small btn-danger" on:click=move |_| { revoke_target.set(Some(target.clone())); confirm_open.set(true); }>"Revoke"</button>
                                    })}</td>
                                </tr>
                            }
                        }).collect_view()}</tbody>
                    </table></div>
                }.into_any(),
            })}
        </Suspense>
        <form class="card form-grid" on:submit=create>
            <h2>"New token"</h2>
            <label>"Name"<input required maxlength="100" placeholder="e.g. backup cron" prop:value=move || name.get() on:input=move |e| name.set(event_target_value(&e))/></label>
            <label>"Role"
                <select on:change=move |e| role.set(event_target_value(&e))>
                    <option value="viewer">"viewer"</option><option value="operator">"operator"</option><option value="admin">"admin"</option>
                </select>
            </label>
            <label>"Scope"
                <select data-testid="token-scope" on:change=move |e| scope.set(event_target_value(&e))>
                    <option value="full">"full: everything the role allows"</option>
                    <option value="read">"read: GET requests only"</option>
                    <option value="alerts:write">"alerts:write: the Alertmanager webhook only"</option>
                    <option value="heartbeat">"heartbeat: heartbeat pings only"</option>
                    <option value="metrics:read">"metrics:read: /metrics only"</option>
                </select>
            </label>
            <label>"Expires after (days)"<input type="number" min="1" max="3650" placeholder="never" on:input=move |e| days.set(event_target_value(&e))/></label>
            <button class="btn btn-primary" type="submit">"Create token"</button>
        </form>
    }
}

#[component]
pub fn Audit() -> impl IntoView {
    let actor = RwSignal::new(String::new());
    let action = RwSignal::new(String::new());
    let outcome = RwSignal::new(String::new());
    let text = RwSignal::new(String::new());
    let before = RwSignal::new(None::<i64>);
    let pages = RwSignal::new(Vec::<opsdeck_wire::AuditEntry>::new());
    let next = RwSignal::new(None::<i64>);
    let state = RwSignal::new(Ok::<bool, String>(true)); // Ok(loading?)
    let verify = RwSignal::new(None::<Result<AuditVerifyReport, String>>);

    let load = move |append: bool| {
        let q = api::query(&[
            ("limit", Some("50".to_string())),
            ("actor", api::non_empty(&actor.get_untracked())),
            ("action", api::non_empty(&action.get_untracked())),
            ("outcome", api::non_empty(&outcome.get_untracked())),
            ("q", api::non_empty(&text.get_untracked())),
            (
                "before",
                append
                    .then(|| before.get_untracked())
                    .flatten()
                    .map(|b| b.to_string()),
            ),
        ]);
        state.set(Ok(true));
        leptos::task::spawn_local(async move {
            match api::admin::audit(&q).await {
                Ok(page) => {
                    next.set(page.next_before);
                    before.set(page.next_before);
                    if append {
                        pages.update(|p| p.extend(page.entries))
                    } else {
                        pages.set(page.entries)
                    }
                    state.set(Ok(false));
                }
                Err(e) => state.set(Err(e.message)),
            }
        });
    };
    load(false);

    view! {
        <h1>"Audit log"</h1>
        <form class="toolbar" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); load(false); }>
            <input type="search" placeholder="Actor" aria-label="Actor" on:input=move |e| actor.set(event_target_value(&e))/>
            <input type="search" placeholder="Action (e.g. user.)" aria-label="Action" on:input=move |e| action.set(event_target_value(&e))/>
            <select aria-label="Outcome" on:change=move |e| outcome.set(event_target_value(&e))>
                <option value="">"Any outcome"</option><option value="success">"success"</option>
                <option value="failure">"failure"</option><option value="denied">"denied"</option>
            </select>
            <input type="search" placeholder="Text" aria-label="Text" on:input=move |e| text.set(event_target_value(&e))/>
            <button class="btn" type="submit">"Filter"</button>
            <span class="spacer"></span>
            <button class="btn" type="button" on:click=move |_| {
                verify.set(None);
                leptos::task::spawn_local(async move {
                    verify.set(Some(api::admin::verify_audit().await.map_err(|e| e.message)));
                });
            }>"Verify chain"</button>
        </form>
        {move || verify.get().map(|v| match v {
            Ok(r) if r.ok => view! { <div class="notice notice-ok" role="status">"✓ Chain intact: "{r.checked}" entries verified."</div> }.into_any(),
            Ok(r) => view! { <div class="notice notice-error" role="alert">"✕ Tampering detected: "{r.problem.unwrap_or_default()}</div> }.into_any(),
            Err(e) => view! { <div class="notice notice-error" role="alert">{e}</div> }.into_any(),
        })}
        {move || match state.get() {
            Err(e) => view! { <ErrorState message=e retry=Callback::new(move |_| load(false))/> }.into_any(),
            Ok(true) if pages.with(|p| p.is_empty()) => view! { <Loading rows=6/> }.into_any(),
            Ok(_) if pages.with(|p| p.is_empty()) => view! {
                <EmptyState title="No entries match"><p>"Change the filters to see more."</p></EmptyState>
            }.into_any(),
            Ok(_) => view! {
                <div class="table-wrap"><table class="table" data-testid="audit-table">
                    <thead><tr><th>"When"</th><th>"Actor"</th><th>"Action"</th><th>"Target"</th><th>"Outcome"</th><th>"Source"</th><th>"Details"</th></tr></thead>
                    <tbody>{move || pages.get().into_iter().map(|e| {
                        let (cls, icon, word) = match e.outcome {
                            Outcome::Success => ("pill pill-ok", "✓", "success"),
                            Outcome::Failure => ("pill pill-outage", "✕", "failure"),
                            Outcome::Denied => ("pill pill-degraded", "⊘", "denied"),
                        };
                        let params = serde_json::to_string_pretty(&e.params).unwrap_or_default();
                        view! {
                            <tr>
                                <td><RelTime at=Some(e.at)/></td>
                                <td>{e.actor.clone()}</td>
                                <td><code>{e.action.clone()}</code></td>
                                <td>{e.target.clone().unwrap_or_default()}</td>
                                <td><span class=cls><span aria-hidden="true">{icon}</span>" "{word}</span></td>
                                <td class="muted">{e.source.clone().unwrap_or_default()}</td>
                                <td><details><summary>{e.detail.clone().unwrap_or_else(|| "parameters".into())}</summary><pre>{params}</pre></details></td>
                            </tr>
                        }
                    }).collect_view()}</tbody>
                </table></div>
                <Show when=move || next.get().is_some()>
                    <button class="btn" on:click=move |_| load(true)>"Load older"</button>
                </Show>
            }.into_any(),
        }}
    }
}
