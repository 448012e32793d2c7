//! `/admin/tokens`: API tokens for scripts and monitoring. The secret is shown
//! once, right after creation, with a copy button; revoking confirms with the
//! token's name.

use std::sync::Arc;

use leptos::prelude::*;
use opsdeck_wire::{ApiToken, CreateApiTokenRequest, CreatedApiToken, Role};
use wasm_bindgen::JsCast;

use crate::api;
use crate::dialog::{ConfirmDialog, ConfirmRequest, Modal};
use crate::icons::{Icon, IconName};
use crate::time::{use_clock, RelTime};
use crate::ui::{
    matches_filter, use_toasts, EmptyState, ErrorState, ListKind, Loader, PageHeader, Pill, Remote,
    RoleBadge, SearchBox, SkeletonRows, Tone,
};

const PATH: &str = "/api/v1/tokens";
const COLS: usize = 9;

#[component]
pub fn Tokens() -> impl IntoView {
    let tokens = Loader::<Vec<ApiToken>>::new();
    let reload = move || tokens.load(PATH.into());
    reload();
    let toasts = use_toasts();
    let clock = use_clock();
    let filter = RwSignal::new(String::new());
    let creating = RwSignal::new(false);
    let confirm = RwSignal::new(None::<ConfirmRequest>);
    let kind = Memo::new(move |_| tokens.state.with(ListKind::of));

    let revoke = move |id: i64, name: String| {
        confirm.set(Some(ConfirmRequest {
            title: format!("Revoke {name}?"),
            body: format!("Anything that uses {name} stops working at once. This cannot be undone; create a new token if it is needed again."),
            confirm: format!("Revoke {name}"),
            danger: true,
            action: Arc::new(move || {
                let name = name.clone();
                leptos::task::spawn_local(async move {
                    let r = api::delete_no_content(&format!("{PATH}/{id}")).await;
                    toasts.report(r.map(|()| format!("Revoked {name}.")));
                    reload();
                });
            }),
        }));
    };

    let body = move || match tokens.state.get() {
        Remote::Loading => view! { <SkeletonRows rows=3 cols=COLS/> }.into_any(),
        Remote::Failed(_) => ().into_any(),
        Remote::Ready(list) => {
            let f = filter.get().trim().to_lowercase();
            let now = clock.now();
            let shown: Vec<ApiToken> = list
                .into_iter()
                .filter(|t| {
                    matches_filter(
                        &f,
                        &[
                            &t.name,
                            &t.created_by,
                            &t.prefix,
                            t.role.as_str(),
                            status(t, now).1,
                        ],
                    )
                })
                .collect();
            if shown.is_empty() {
                view! {
                    <tr><td colspan=COLS class="table-empty">
                        "No tokens match “"{f}"”. "
                        <button type="button" class="btn btn-link" on:click=move |_| filter.set(String::new())>"Clear the filter"</button>
                    </td></tr>
                }
                .into_any()
            } else {
                shown
                    .into_iter()
                    .map(|t| {
                        let (tone, word, icon) = status(&t, now);
                        let target = (t.id, t.name.clone());
                        view! {
                            <tr data-testid=format!("token-{}", t.name)>
                                <td><strong>{t.name.clone()}</strong></td>
                                <td><RoleBadge role=t.role/></td>
                                <td><code>{t.prefix.clone()}"…"</code></td>
                                <td>{t.created_by.clone()}</td>
                                <td><RelTime at=Some(t.created_at)/></td>
                                <td><RelTime at=t.last_used_at/></td>
                                <td><RelTime at=t.expires_at empty="never"/></td>
                                <td><Pill tone word icon/></td>
                                <td>{(word != "revoked").then(|| view! {
                                    <button type="button" class="btn btn-danger-outline btn-small"
                                        on:click=move |_| revoke(target.0, target.1.clone())>"Revoke"</button>
                                })}</td>
                            </tr>
                        }
                    })
                    .collect_view()
                    .into_any()
            }
        }
    };

    view! {
        <PageHeader title="API tokens" lede="Tokens let scripts and monitoring call the API. A token acts with its role; treat it like a password.">
            <button type="button" class="btn btn-primary" data-testid="new-token" on:click=move |_| creating.set(true)>
                <Icon name=IconName::Plus/>"New token"
            </button>
        </PageHeader>
        {move || match kind.get() {
            ListKind::Failed(message) => view! { <ErrorState message retry=Callback::new(move |_| reload())/> }.into_any(),
            ListKind::Empty => view! {
                <EmptyState icon=IconName::Token title="No API tokens yet" testid="tokens-empty">
                    <p>"Create a token for each script or monitoring system that calls Opsdeck, with the smallest role it needs and an expiry. Scripts send it as "<code>"Authorization: Bearer <token>"</code></p>
                    <p><button type="button" class="btn btn-primary" on:click=move |_| creating.set(true)>
                        <Icon name=IconName::Plus/>"Create the first token"
                    </button></p>
                </EmptyState>
            }.into_any(),
            ListKind::Table => view! {
                <div class="toolbar">
                    <SearchBox value=filter placeholder="Filter by name, creator, role or status" label="Filter tokens" testid="tokens-filter"/>
                </div>
                <div class="table-wrap">
                    <table class="table" data-testid="tokens-table">
                        <thead><tr>
                            <th scope="col">"Name"</th>
                            <th scope="col">"Role"</th>
                            <th scope="col">"Prefix"</th>
                            <th scope="col">"Created by"</th>
                            <th scope="col">"Created"</th>
                            <th scope="col">"Last used"</th>
                            <th scope="col">"Expires"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col"><span class="sr-only">"Actions"</span></th>
                        </tr></thead>
                        <tbody>{body}</tbody>
                    </table>
                </div>
            }.into_any(),
        }}
        <ConfirmDialog request=confirm/>
        <NewTokenDialog open=creating on_created=Callback::new(move |_| reload())/>
    }
}

/// A token's state: revoked, expired or active.
fn status(t: &ApiToken, now_ms: i64) -> (Tone, &'static str, IconName) {
    if t.revoked_at.is_some() {
        (Tone::Unknown, "revoked", IconName::Ban)
    } else if t.expires_at.is_some_and(|e| e.timestamp_millis() <= now_ms) {
        (Tone::Degraded, "expired", IconName::Warning)
    } else {
        (Tone::Operational, "active", IconName::CheckCircle)
    }
}

/// Copies `text` to the clipboard: the Clipboard API where the page is a
/// secure context, else by selecting `node` and `execCommand("copy")`.
async fn copy_text(text: String, node: Option<web_sys::HtmlElement>) -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let navigator = window.navigator();
    let has_clipboard = js_sys::Reflect::get(&navigator, &"clipboard".into())
        .is_ok_and(|c| !c.is_undefined() && !c.is_null());
    if has_clipboard {
        let promise = navigator.clipboard().write_text(&text);
        if wasm_bindgen_futures::JsFuture::from(promise).await.is_ok() {
            return true;
        }
    }
    // Plain-HTTP deployments: select the text and use the legacy command.
    let (Some(node), Ok(Some(selection))) = (node, window.get_selection()) else {
        return false;
    };
    let _ = selection.remove_all_ranges();
    if selection.select_all_children(&node).is_err() {
        return false;
    }
    window
        .document()
        .and_then(|d| d.dyn_into::<web_sys::HtmlDocument>().ok())
        .and_then(|d| d.exec_command("copy").ok())
        .unwrap_or(false)
}

#[component]
fn NewTokenDialog(open: RwSignal<bool>, on_created: Callback<()>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Viewer);
    let days = RwSignal::new(String::from("90"));
    let error = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let created = RwSignal::new(None::<CreatedApiToken>);
    let copied = RwSignal::new(None::<bool>);
    let secret_node = NodeRef::<leptos::html::Code>::new();

    let close = Callback::new(move |_| {
        open.set(false);
        name.set(String::new());
        role.set(Role::Viewer);
        days.set("90".into());
        error.set(String::new());
        created.set(None);
        copied.set(None);
    });
    let title = Signal::derive(move || {
        if created.with(Option::is_some) {
            "Token created".to_owned()
        } else {
            "New API token".to_owned()
        }
    });

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let d = days.get_untracked();
        let d = d.trim();
        let expires_in_days = if d.is_empty() {
            None
        } else {
            match d.parse::<u32>() {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    error.set("Expiry must be a whole number of days (1 or more), or empty for a token that does not expire.".into());
                    return;
                }
            }
        };
        let req = CreateApiTokenRequest {
            name: name.get_untracked().trim().to_owned(),
            role: role.get_untracked(),
            expires_in_days,
        };
        busy.set(true);
        error.set(String::new());
        leptos::task::spawn_local(async move {
            let r = api::post::<_, CreatedApiToken>(PATH, &req).await;
            busy.set(false);
            match r {
                Ok(c) => {
                    created.set(Some(c));
                    on_created.run(());
                }
                Err(e) => error.set(e.message),
            }
        });
    };

    let copy = move |_| {
        let Some(c) = created.get_untracked() else {
            return;
        };
        let node = secret_node.get_untracked();
        leptos::task::spawn_local(async move {
            copied.set(Some(copy_text(c.token, node).await));
        });
    };

    view! {
        <Modal open on_close=close title testid="new-token-dialog">
            {move || match created.get() {
                Some(c) => view! {
                    <div class="secret-box">
                        <p class="notice notice-warn" role="alert">
                            <Icon name=IconName::Warning/>
                            <span><strong>"Copy this token now."</strong>" Opsdeck keeps only a hash of it and will never show it again."</span>
                        </p>
                        <p class="modal-text">"Token "<strong>{c.info.name.clone()}</strong>" ("{c.info.role.as_str()}
                            {c.info.expires_at.map(|_| ", expires ")}
                            {c.info.expires_at.map(|e| view! { <RelTime at=Some(e)/> })}
                            "):"</p>
                        <div class="secret-row">
                            <code class="secret" node_ref=secret_node data-testid="token-secret">{c.token.clone()}</code>
                            <button type="button" class="btn btn-secondary" data-testid="copy-token" on:click=copy>
                                <Icon name=IconName::Copy/>
                                {move || match copied.get() { Some(true) => "Copied", _ => "Copy" }}
                            </button>
                        </div>
                        {move || (copied.get() == Some(false)).then(|| view! {
                            <p class="form-error">"Copying is not possible here: select the token and copy it by hand."</p>
                        })}
                        <p class="hint">"Send it in the header "<code>"Authorization: Bearer <token>"</code>"."</p>
                        <div class="modal-actions">
                            <button type="button" class="btn btn-primary" data-testid="token-done" on:click=move |_| close.run(())>
                                "I have copied it"
                            </button>
                        </div>
                    </div>
                }.into_any(),
                None => view! {
                    <form class="form" on:submit=submit novalidate>
                        <div class="field">
                            <label for="token-name">"Name"</label>
                            <input id="token-name" autocomplete="off" maxlength="100" autofocus placeholder="e.g. nightly-backup-check"
                                prop:value=move || name.get() on:input=move |e| name.set(event_target_value(&e))/>
                            <p class="hint">"Say what uses it, so you know what breaks when you revoke it."</p>
                        </div>
                        <div class="field">
                            <label for="token-role">"Role"</label>
                            <select id="token-role" on:change=move |e| role.set(super::role_from(&event_target_value(&e)))>
                                {Role::ALL.iter().map(|r| view! {
                                    <option value=r.as_str() selected=move || role.get() == *r>{r.as_str()}</option>
                                }).collect_view()}
                            </select>
                            <p class="hint">{move || super::role_help(role.get())}</p>
                        </div>
                        <div class="field">
                            <label for="token-expiry">"Expires after (days) " <span class="muted">"(empty: never)"</span></label>
                            <input id="token-expiry" type="number" min="1" max="3650" inputmode="numeric"
                                prop:value=move || days.get() on:input=move |e| days.set(event_target_value(&e))/>
                        </div>
                        <p class="form-error" data-testid="form-error" role="alert">{move || error.get()}</p>
                        <div class="modal-actions">
                            <button type="button" class="btn btn-secondary" on:click=move |_| close.run(())>"Cancel"</button>
                            <button type="submit" class="btn btn-primary" data-testid="create-token-submit" disabled=move || busy.get()>
                                {move || if busy.get() { "Creating…" } else { "Create token" }}
                            </button>
                        </div>
                    </form>
                }.into_any(),
            }}
        </Modal>
    }
}
