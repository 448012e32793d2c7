//! `/admin/users`: the accounts, their roles and state; create users, change
//! roles, disable / enable, reset passwords and end sessions. Destructive
//! actions confirm with the user's name.

use std::sync::Arc;

use leptos::prelude::*;
use opsdeck_wire::{
    CreateUserRequest, EndedSessions, ResetPasswordRequest, Role, UpdateUserRequest, User,
};

use crate::api;
use crate::dialog::{ConfirmDialog, ConfirmRequest, Modal};
use crate::icons::{Icon, IconName};
use crate::session::use_session;
use crate::time::RelTime;
use crate::ui::{
    matches_filter, use_toasts, EmptyState, ErrorState, ListKind, Loader, PageHeader, Pill, Remote,
    SearchBox, SkeletonRows, Toasts, Tone,
};

const PATH: &str = "/api/v1/users";
const COLS: usize = 8;

/// What a row's actions need.
#[derive(Clone, Copy)]
struct Ctx {
    users: Loader<Vec<User>>,
    toasts: Toasts,
    confirm: RwSignal<Option<ConfirmRequest>>,
    resetting: RwSignal<Option<(i64, String)>>,
    my_id: Option<i64>,
}

impl Ctx {
    fn reload(self) {
        self.users.load(PATH.into());
    }

    fn update(self, id: i64, req: UpdateUserRequest, done: String) {
        leptos::task::spawn_local(async move {
            let r = api::patch::<_, User>(&format!("{PATH}/{id}"), &req).await;
            self.toasts.report(r.map(|_| done));
            self.reload();
        });
    }
}

#[component]
pub fn Users() -> impl IntoView {
    let session = use_session();
    let ctx = Ctx {
        users: Loader::new(),
        toasts: use_toasts(),
        confirm: RwSignal::new(None),
        resetting: RwSignal::new(None),
        my_id: session.me().map(|m| m.id),
    };
    ctx.reload();
    let filter = RwSignal::new(String::new());
    let creating = RwSignal::new(false);

    let count = move || {
        ctx.users.state.with(|s| match s {
            Remote::Ready(list) => {
                let active = list.iter().filter(|u| !u.disabled).count();
                let n = list.len();
                format!("{n} user{}, {active} active", if n == 1 { "" } else { "s" })
            }
            _ => String::new(),
        })
    };

    let body = move || match ctx.users.state.get() {
        Remote::Loading => view! { <SkeletonRows rows=4 cols=COLS/> }.into_any(),
        Remote::Failed(_) => ().into_any(),
        Remote::Ready(list) => {
            let f = filter.get().trim().to_lowercase();
            let shown: Vec<User> = list
                .into_iter()
                .filter(|u| {
                    let status = if u.disabled { "disabled" } else { "active" };
                    matches_filter(&f, &[&u.username, &u.display_name, u.role.as_str(), status])
                })
                .collect();
            if shown.is_empty() {
                view! {
                    <tr><td colspan=COLS class="table-empty">
                        "No users match “"{f}"”. "
                        <button type="button" class="btn btn-link" on:click=move |_| filter.set(String::new())>"Clear the filter"</button>
                    </td></tr>
                }
                .into_any()
            } else {
                shown
                    .into_iter()
                    .map(|u| user_row(u, ctx))
                    .collect_view()
                    .into_any()
            }
        }
    };

    let kind = Memo::new(move |_| ctx.users.state.with(ListKind::of));

    view! {
        <PageHeader title="Users" lede="Who can use Opsdeck, and with which role.">
            <button type="button" class="btn btn-primary" data-testid="new-user" on:click=move |_| creating.set(true)>
                <Icon name=IconName::Plus/>"New user"
            </button>
        </PageHeader>
        {move || match kind.get() {
            ListKind::Failed(message) => view! {
                <ErrorState message retry=Callback::new(move |_| ctx.reload())/>
            }.into_any(),
            ListKind::Empty => view! {
                <EmptyState icon=IconName::Users title="No users yet">
                    <p>"Add the people who run your stack. Each gets a role and chooses their own password at first login."</p>
                </EmptyState>
            }.into_any(),
            ListKind::Table => view! {
                <div class="toolbar">
                    <SearchBox value=filter placeholder="Filter by username, name, role or status" label="Filter users" testid="users-filter"/>
                    <span class="spacer"></span>
                    <span class="muted small">{count}</span>
                </div>
                <div class="table-wrap">
                    <table class="table" data-testid="users-table">
                        <thead><tr>
                            <th scope="col">"Username"</th>
                            <th scope="col">"Display name"</th>
                            <th scope="col">"Role"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col" title="Must choose a new password at the next login">"Must change password"</th>
                            <th scope="col">"Last login"</th>
                            <th scope="col" class="num">"Sessions"</th>
                            <th scope="col"><span class="sr-only">"Actions"</span></th>
                        </tr></thead>
                        <tbody aria-busy=move || matches!(ctx.users.state.get(), Remote::Loading).to_string()>{body}</tbody>
                    </table>
                </div>
            }.into_any(),
        }}
        <ConfirmDialog request=ctx.confirm/>
        <NewUserDialog open=creating on_created=Callback::new(move |_| ctx.reload())/>
        <ResetPasswordDialog target=ctx.resetting on_done=Callback::new(move |_| ctx.reload())/>
    }
}

fn user_row(u: User, ctx: Ctx) -> impl IntoView {
    let id = u.id;
    let name = u.username.clone();
    let is_me = ctx.my_id == Some(id);
    let disabled = u.disabled;
    let sessions = u.active_sessions;

    let change_role = {
        let name = name.clone();
        move |ev: leptos::ev::Event| {
            let role = super::role_from(&event_target_value(&ev));
            let req = UpdateUserRequest {
                display_name: None,
                role: Some(role),
                disabled: None,
            };
            ctx.update(id, req, format!("{name} is now {}.", role.as_str()));
        }
    };

    let toggle_disabled = {
        let name = name.clone();
        move |_| {
            let n = name.clone();
            let req = ConfirmRequest {
                title: if disabled {
                    format!("Enable {n}?")
                } else {
                    format!("Disable {n}?")
                },
                body: if disabled {
                    format!("{n} can log in again with their current password.")
                } else {
                    format!("{n} is signed out everywhere and cannot log in until an admin enables the account again. Their API tokens are not revoked.")
                },
                confirm: if disabled {
                    format!("Enable {n}")
                } else {
                    format!("Disable {n}")
                },
                danger: !disabled,
                action: Arc::new(move || {
                    let req = UpdateUserRequest {
                        display_name: None,
                        role: None,
                        disabled: Some(!disabled),
                    };
                    let verb = if disabled { "enabled" } else { "disabled" };
                    ctx.update(id, req, format!("{n} is {verb}."));
                }),
            };
            ctx.confirm.set(Some(req));
        }
    };

    let end_sessions = {
        let name = name.clone();
        move |_| {
            let n = name.clone();
            let body = if is_me {
                "You are signed out everywhere, including this browser.".to_owned()
            } else {
                format!(
                    "{n} is signed out on every device ({sessions} active session{}).",
                    if sessions == 1 { "" } else { "s" }
                )
            };
            ctx.confirm.set(Some(ConfirmRequest {
                title: format!("End all sessions of {n}?"),
                body,
                confirm: format!("End sessions of {n}"),
                danger: true,
                action: Arc::new(move || {
                    let n = n.clone();
                    leptos::task::spawn_local(async move {
                        let r =
                            api::delete::<EndedSessions>(&format!("{PATH}/{id}/sessions")).await;
                        ctx.toasts.report(r.map(|e| {
                            format!(
                                "Ended {} session{} of {n}.",
                                e.ended,
                                if e.ended == 1 { "" } else { "s" }
                            )
                        }));
                        ctx.reload();
                    });
                }),
            }));
        }
    };

    let reset = {
        let name = name.clone();
        move |_| ctx.resetting.set(Some((id, name.clone())))
    };

    view! {
        <tr data-testid=format!("user-{}", u.username)>
            <td class="nowrap">
                <strong>{u.username.clone()}</strong>
                {is_me.then(|| view! { <span class="muted small">" (you)"</span> })}
            </td>
            <td>{u.display_name.clone()}</td>
            <td>
                <select class="select-compact" aria-label=format!("Role of {name}") disabled=is_me
                    title=if is_me { "Another admin must change your role" } else { "" }
                    on:change=change_role>
                    {Role::ALL.iter().map(|r| view! {
                        <option value=r.as_str() selected=*r == u.role>{r.as_str()}</option>
                    }).collect_view()}
                </select>
            </td>
            <td>{if disabled {
                view! { <Pill tone=Tone::Unknown icon=IconName::Ban word="disabled"/> }.into_any()
            } else {
                view! { <Pill tone=Tone::Operational word="active"/> }.into_any()
            }}</td>
            <td>{if u.must_change_password {
                view! { <span class="flag"><Icon name=IconName::Lock/>"yes"</span> }.into_any()
            } else {
                view! { <span class="muted">"no"</span> }.into_any()
            }}</td>
            <td><RelTime at=u.last_login_at/></td>
            <td class="num">{sessions}</td>
            <td>
                <div class="row-actions">
                    <button type="button" class="btn btn-secondary btn-small" on:click=reset>"Reset password"</button>
                    <button type="button" class="btn btn-secondary btn-small" on:click=end_sessions>"End sessions"</button>
                    {(!is_me).then(|| view! {
                        <button type="button" class=if disabled { "btn btn-secondary btn-small" } else { "btn btn-danger-outline btn-small" }
                            on:click=toggle_disabled>
                            {if disabled { "Enable" } else { "Disable" }}
                        </button>
                    })}
                </div>
            </td>
        </tr>
    }
}

#[component]
fn NewUserDialog(open: RwSignal<bool>, on_created: Callback<()>) -> impl IntoView {
    let toasts = use_toasts();
    let username = RwSignal::new(String::new());
    let display = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Viewer);
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let close = Callback::new(move |_| {
        open.set(false);
        username.set(String::new());
        display.set(String::new());
        role.set(Role::Viewer);
        password.set(String::new());
        error.set(String::new());
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let req = CreateUserRequest {
            username: username.get_untracked().trim().to_owned(),
            display_name: Some(display.get_untracked().trim().to_owned()).filter(|s| !s.is_empty()),
            role: role.get_untracked(),
            password: password.get_untracked(),
        };
        busy.set(true);
        error.set(String::new());
        leptos::task::spawn_local(async move {
            let r = api::post::<_, User>(PATH, &req).await;
            busy.set(false);
            match r {
                Ok(u) => {
                    toasts.success(format!(
                        "Created {} ({}). They choose their own password at first login.",
                        u.username,
                        u.role.as_str()
                    ));
                    close.run(());
                    on_created.run(());
                }
                Err(e) => error.set(e.message),
            }
        });
    };
    view! {
        <Modal open on_close=close title="New user" testid="new-user-dialog">
            <form class="form" on:submit=submit novalidate>
                <div class="field">
                    <label for="new-username">"Username"</label>
                    <input id="new-username" autocomplete="off" autocapitalize="none" spellcheck="false" autofocus
                        aria-describedby="new-username-hint"
                        prop:value=move || username.get() on:input=move |e| username.set(event_target_value(&e))/>
                    <p class="hint" id="new-username-hint">"2 to 64 characters: lowercase letters, digits, and . _ -"</p>
                </div>
                <div class="field">
                    <label for="new-display-name">"Display name " <span class="muted">"(optional)"</span></label>
                    <input id="new-display-name" autocomplete="off"
                        prop:value=move || display.get() on:input=move |e| display.set(event_target_value(&e))/>
                </div>
                <div class="field">
                    <label for="new-role">"Role"</label>
                    <select id="new-role" on:change=move |e| role.set(super::role_from(&event_target_value(&e)))>
                        {Role::ALL.iter().map(|r| view! {
                            <option value=r.as_str() selected=move || role.get() == *r>{r.as_str()}</option>
                        }).collect_view()}
                    </select>
                    <p class="hint">{move || super::role_help(role.get())}</p>
                </div>
                <div class="field">
                    <label for="new-password-initial">"Initial password"</label>
                    <input id="new-password-initial" type="password" autocomplete="new-password" maxlength="128"
                        prop:value=move || password.get() on:input=move |e| password.set(event_target_value(&e))/>
                    <p class="hint">"At least 12 characters. Tell it to them on another channel; they must change it when they first log in."</p>
                </div>
                <p class="form-error" data-testid="form-error" role="alert">{move || error.get()}</p>
                <div class="modal-actions">
                    <button type="button" class="btn btn-secondary" on:click=move |_| close.run(())>"Cancel"</button>
                    <button type="submit" class="btn btn-primary" data-testid="create-user-submit" disabled=move || busy.get()>
                        {move || if busy.get() { "Creating…" } else { "Create user" }}
                    </button>
                </div>
            </form>
        </Modal>
    }
}

#[component]
fn ResetPasswordDialog(
    target: RwSignal<Option<(i64, String)>>,
    on_done: Callback<()>,
) -> impl IntoView {
    let toasts = use_toasts();
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let open = Signal::derive(move || target.with(Option::is_some));
    let name = move || target.with(|t| t.as_ref().map(|(_, n)| n.clone()).unwrap_or_default());
    let title = Signal::derive(move || format!("Reset password for {}", name()));
    let close = Callback::new(move |_| {
        target.set(None);
        password.set(String::new());
        error.set(String::new());
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some((id, n)) = target.get_untracked() else {
            return;
        };
        if busy.get_untracked() {
            return;
        }
        let req = ResetPasswordRequest {
            new_password: password.get_untracked(),
        };
        busy.set(true);
        error.set(String::new());
        leptos::task::spawn_local(async move {
            let r = api::post_no_content(&format!("{PATH}/{id}/password"), &req).await;
            busy.set(false);
            match r {
                Ok(()) => {
                    toasts.success(format!(
                        "New password set for {n}. Their sessions ended; they must change it at next login."
                    ));
                    close.run(());
                    on_done.run(());
                }
                Err(e) => error.set(e.message),
            }
        });
    };
    view! {
        <Modal open on_close=close title testid="reset-password-dialog">
            <form class="form" on:submit=submit novalidate>
                <p class="modal-text">{move || format!(
                    "{} is signed out everywhere and must choose a new password at the next login.", name()
                )}</p>
                <div class="field">
                    <label for="reset-password">"Temporary password"</label>
                    <input id="reset-password" type="password" autocomplete="new-password" maxlength="128" autofocus
                        prop:value=move || password.get() on:input=move |e| password.set(event_target_value(&e))/>
                    <p class="hint">"At least 12 characters. Give it to them on another channel."</p>
                </div>
                <p class="form-error" data-testid="form-error" role="alert">{move || error.get()}</p>
                <div class="modal-actions">
                    <button type="button" class="btn btn-secondary" on:click=move |_| close.run(())>"Cancel"</button>
                    <button type="submit" class="btn btn-danger" data-testid="reset-password-submit" disabled=move || busy.get()>
                        {move || format!("Reset password for {}", name())}
                    </button>
                </div>
            </form>
        </Modal>
    }
}
