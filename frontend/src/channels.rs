//! Notification channels (`/admin/channels`, admins): webhook (signed with
//! an HMAC key), Slack- and Teams-compatible webhooks, e-mail over SMTP and
//! an SMS gateway. Each channel takes the severities it is checked for;
//! the list shows only the target's host (chat webhook URLs are
//! credentials), whether a secret is set (never the secret), and lets an
//! admin enable or disable, edit, delete (with confirmation) and send a test
//! message, whose result (delivered, or why not) is shown in place.

use leptos::prelude::*;
use opsdeck_wire::{
    Channel, ChannelConfig, ChannelInput, ChannelTestRequest, ChannelTestResult, Severity,
};

use crate::api;
use crate::ui::{Confirm, EmptyState, ErrorState, Loading};

const KINDS: [(&str, &str); 5] = [
    ("webhook", "Webhook (signed JSON)"),
    ("slack", "Slack-compatible webhook"),
    ("teams", "Teams-compatible webhook"),
    ("email", "E-mail (SMTP)"),
    ("sms", "SMS / phone gateway"),
];

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "webhook" => "Webhook",
        "slack" => "Slack",
        "teams" => "Teams",
        "email" => "E-mail",
        "sms" => "SMS gateway",
        _ => "Unknown",
    }
}

/// What the secret is for, per kind (`None`: the kind uses none).
fn secret_help(kind: &str) -> Option<&'static str> {
    match kind {
        "webhook" => Some("HMAC key: requests carry X-Opsdeck-Signature: sha256=HMAC(key, \"<timestamp>.<body>\")"),
        "sms" => Some("Gateway token, sent as Authorization: Bearer <token>"),
        "email" => Some("SMTP password (with the user name)"),
        _ => None,
    }
}

/// The host of a URL (the rest of a chat webhook URL is a credential).
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    host.rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(host)
        .to_string()
}

fn target_of(c: &Channel) -> String {
    if c.kind == "email" {
        format!(
            "{}:{} ({})",
            c.config.smtp_host.clone().unwrap_or_default(),
            c.config
                .smtp_port
                .map(|p| p.to_string())
                .unwrap_or_default(),
            c.config
                .smtp_tls
                .clone()
                .unwrap_or_else(|| "starttls".into())
        )
    } else {
        c.config.url.as_deref().map(host_of).unwrap_or_default()
    }
}

fn input_of(c: &Channel) -> ChannelInput {
    ChannelInput {
        name: c.name.clone(),
        kind: c.kind.clone(),
        config: c.config.clone(),
        secret: None,
        enabled: c.enabled,
        severities: c.severities.clone(),
    }
}

fn severity_pill_kind(s: Severity) -> &'static str {
    match s {
        Severity::P1 => "outage",
        Severity::P2 => "impacted",
        Severity::P3 => "degraded",
        Severity::P4 => "unknown",
    }
}

#[derive(Clone, PartialEq)]
enum FormMode {
    Add,
    Edit(Box<Channel>),
}

#[component]
pub fn Channels() -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let bump = move || {
        reload.try_update(|n| *n = n.wrapping_add(1));
    };
    let list = LocalResource::new(move || {
        reload.get();
        api::channels::list()
    });
    let data = Memo::new(move |_| list.get());
    let form = RwSignal::new(None::<FormMode>);
    let notice = RwSignal::new(None::<Result<String, String>>);
    let delete_target = RwSignal::new(None::<(i64, String)>);
    let delete_open = RwSignal::new(false);
    let toggling = RwSignal::new(None::<i64>);
    let testing = RwSignal::new(None::<Channel>);

    let toggle = move |c: Channel| {
        let mut body = input_of(&c);
        body.enabled = !c.enabled;
        toggling.set(Some(c.id));
        notice.set(None);
        leptos::task::spawn_local(async move {
            let r = api::channels::save(Some(c.id), &body).await;
            toggling.try_set(None);
            notice.try_set(Some(
                r.map(|c| {
                    format!(
                        "{} is {}.",
                        c.name,
                        if c.enabled { "enabled" } else { "disabled" }
                    )
                })
                .map_err(|e| e.message),
            ));
            bump();
        });
    };
    let delete = Callback::new(move |_| {
        let Some((id, name)) = delete_target.get_untracked() else {
            return;
        };
        leptos::task::spawn_local(async move {
            let r = api::channels::remove(id).await;
            notice.try_set(Some(
                r.map(|_| format!("Deleted channel {name}."))
                    .map_err(|e| e.message),
            ));
            bump();
        });
    });

    let row = move |c: Channel| {
        let name = c.name.clone();
        let id = c.id;
        let for_toggle = c.clone();
        let for_edit = c.clone();
        let for_test = c.clone();
        let del = (c.id, c.name.clone());
        view! {
            <tr data-testid=format!("channel-row-{name}") data-enabled=c.enabled.to_string() data-kind=c.kind.clone()>
                <td class="cell-main"><strong>{name.clone()}</strong></td>
                <td class="nowrap">{kind_label(&c.kind)}</td>
                <td><code class="small" data-testid=format!("channel-target-{name}")>{target_of(&c)}</code>
                    {(c.kind == "email").then(|| view! {
                        <div class="muted small">"from "{c.config.from.clone().unwrap_or_default()}</div>
                    })}
                </td>
                <td class="nowrap" data-testid=format!("channel-severities-{name}")>
                    {if c.severities.is_empty() {
                        view! { <span class="muted">"none"</span> }.into_any()
                    } else {
                        c.severities.iter().map(|s| view! {
                            <span class=format!("pill pill-{}", severity_pill_kind(*s)) title=s.meaning()>{s.as_str()}</span>" "
                        }).collect_view().into_any()
                    }}
                </td>
                <td class="nowrap">{match (secret_help(&c.kind), c.has_secret) {
                    (None, _) => view! { <span class="muted">"—"</span> }.into_any(),
                    (Some(_), true) => view! { <span class="pill pill-ok" data-testid=format!("channel-secret-{name}")>"set"</span> }.into_any(),
                    (Some(_), false) => view! { <span class="muted" data-testid=format!("channel-secret-{name}")>"not set"</span> }.into_any(),
                }}</td>
                <td>
                    <label class="check switch" title=if c.enabled { "Enabled: click to disable" } else { "Disabled: click to enable" }>
                        <input type="checkbox" data-testid=format!("channel-enabled-{name}") prop:checked=c.enabled
                            disabled=move || toggling.get() == Some(id)
                            on:change=move |_| toggle(for_toggle.clone())/>
                        {if c.enabled { "enabled" } else { "disabled" }}
                    </label>
                </td>
                <td><div class="actions">
                    <button class="btn btn-small" data-testid=format!("channel-test-{}", c.name)
                        on:click=move |_| { notice.set(None); testing.set(Some(for_test.clone())); }>"Send test"</button>
                    <button class="btn btn-small" data-testid=format!("channel-edit-{}", c.name)
                        on:click=move |_| { notice.set(None); form.set(Some(FormMode::Edit(Box::new(for_edit.clone())))); }>"Edit"</button>
                    <button class="btn btn-small btn-danger" data-testid=format!("channel-delete-{}", c.name)
                        on:click=move |_| { delete_target.set(Some(del.clone())); delete_open.set(true); }>"Delete"</button>
                </div></td>
            </tr>
        }
    };

    view! {
        <div class="page-head">
            <h1>"Notification channels"</h1>
            <span class="spacer"></span>
            <button class="btn btn-primary" data-testid="add-channel"
                on:click=move |_| { notice.set(None); form.set(Some(FormMode::Add)); }>"New channel"</button>
        </div>
        <p class="lede">"Where escalations and runbook notifications go, by severity. Targets are checked: http(s) only, never link-local or cloud metadata addresses."</p>
        {move || notice.get().map(|n| match n {
            Ok(m) => view! { <div class="notice notice-ok" role="status" data-testid="channel-notice">{m}</div> }.into_any(),
            Err(m) => view! { <div class="notice notice-error" role="alert" data-testid="channel-notice">{m}</div> }.into_any(),
        })}
        {move || form.get().map(|mode| {
            let on_saved = Callback::new(move |(created, c): (bool, Channel)| {
                form.set(None);
                notice.set(Some(Ok(format!("{} channel {}.", if created { "Added" } else { "Saved" }, c.name))));
                bump();
            });
            let on_cancel = Callback::new(move |_| form.set(None));
            let existing = match mode {
                FormMode::Add => None,
                FormMode::Edit(c) => Some(*c),
            };
            view! { <ChannelForm existing on_saved on_cancel/> }
        })}
        {move || testing.get().map(|c| {
            let on_close = Callback::new(move |_| testing.set(None));
            view! { <TestPanel channel=c on_close/> }
        })}
        {move || match data.get() {
            None => view! { <Loading rows=4/> }.into_any(),
            Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| bump())/> }.into_any(),
            Some(Ok(v)) if v.is_empty() => view! {
                <div data-testid="channels-table" data-count="0">
                    <EmptyState title="No notification channels yet">
                        <p>"Add one so escalations reach people: a chat webhook for the team, e-mail or SMS for whoever is on call."</p>
                    </EmptyState>
                </div>
            }.into_any(),
            Some(Ok(v)) => {
                let count = v.len().to_string();
                view! {
                    <div class="table-wrap"><table class="table" data-testid="channels-table" data-count=count>
                        <thead><tr>
                            <th>"Channel"</th><th>"Kind"</th><th>"Target"</th><th>"Severities"</th><th>"Secret"</th><th>"State"</th>
                            <th><span class="sr-only">"Actions"</span></th>
                        </tr></thead>
                        <tbody>{v.into_iter().map(row).collect_view()}</tbody>
                    </table></div>
                }.into_any()
            }
        }}
        <Confirm open=delete_open
            title=Signal::derive(move || delete_target.get().map(|(_, n)| format!("Delete channel {n}?")).unwrap_or_default())
            message=Signal::derive(move || delete_target.get().map(|(_, n)| format!("Nothing more is sent through {n}; messages still queued for it are cancelled. Sent messages stay in the history.")).unwrap_or_default())
            confirm_label="Delete" on_confirm=delete/>
    }
}

/// Sends a test message through one channel and shows the answer.
#[component]
fn TestPanel(channel: Channel, on_close: Callback<()>) -> impl IntoView {
    let needs_to = matches!(channel.kind.as_str(), "email" | "sms");
    let to = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let result = RwSignal::new(None::<Result<ChannelTestResult, String>>);
    let id = channel.id;
    let kind = channel.kind.clone();
    let send = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = ChannelTestRequest {
            to: Some(to.get_untracked().trim().to_string()).filter(|t| !t.is_empty()),
        };
        busy.set(true);
        result.set(None);
        leptos::task::spawn_local(async move {
            let r = api::channels::test(id, &body).await.map_err(|e| e.message);
            busy.try_set(false);
            result.try_set(Some(r));
        });
    };
    view! {
        <form class="card form-grid" data-testid="channel-test-panel" on:submit=send>
            <h2>"Send a test through "{channel.name.clone()}</h2>
            {needs_to.then(|| view! {
                <label>{if kind == "email" { "Send to (e-mail address)" } else { "Send to (phone number)" }}
                    <input required data-testid="channel-test-to" autocomplete="off"
                        placeholder=if kind == "email" { "oncall@example.com" } else { "+49 151 2345678" }
                        prop:value=move || to.get() on:input=move |e| to.set(event_target_value(&e))/>
                </label>
            })}
            <div class="span-all btn-row">
                <button class="btn btn-primary" type="submit" data-testid="channel-test-send" disabled=move || busy.get()>
                    {move || if busy.get() { "Sending…" } else { "Send test" }}
                </button>
                <button class="btn" type="button" on:click=move |_| on_close.run(())>"Close"</button>
            </div>
            {move || result.get().map(|r| match r {
                Ok(r) if r.ok => view! {
                    <div class="notice notice-ok span-all" role="status" data-testid="channel-test-result" data-ok="true">
                        "Delivered: "{r.detail}
                    </div>
                }.into_any(),
                Ok(r) => view! {
                    <div class="notice notice-error span-all" role="alert" data-testid="channel-test-result" data-ok="false">
                        "Not delivered: "{r.detail}
                    </div>
                }.into_any(),
                Err(m) => view! {
                    <div class="notice notice-error span-all" role="alert" data-testid="channel-test-result" data-ok="false">{m}</div>
                }.into_any(),
            })}
        </form>
    }
}

#[component]
fn ChannelForm(
    existing: Option<Channel>,
    on_saved: Callback<(bool, Channel)>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let editing = existing.as_ref().map(|c| c.id);
    let had_secret = existing.as_ref().is_some_and(|c| c.has_secret);
    let cfg = existing
        .as_ref()
        .map(|c| c.config.clone())
        .unwrap_or_default();
    let name = RwSignal::new(
        existing
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or_default(),
    );
    let kind = RwSignal::new(
        existing
            .as_ref()
            .map(|c| c.kind.clone())
            .unwrap_or_else(|| "webhook".into()),
    );
    let url = RwSignal::new(cfg.url.clone().unwrap_or_default());
    let smtp_host = RwSignal::new(cfg.smtp_host.clone().unwrap_or_default());
    let smtp_port = RwSignal::new(cfg.smtp_port.map(|p| p.to_string()).unwrap_or_default());
    let smtp_tls = RwSignal::new(cfg.smtp_tls.clone().unwrap_or_else(|| "starttls".into()));
    let smtp_username = RwSignal::new(cfg.smtp_username.clone().unwrap_or_default());
    let from = RwSignal::new(cfg.from.clone().unwrap_or_default());
    let secret = RwSignal::new(String::new());
    let clear_secret = RwSignal::new(false);
    let enabled = RwSignal::new(existing.as_ref().is_none_or(|c| c.enabled));
    let severities = RwSignal::new(
        existing
            .as_ref()
            .map(|c| c.severities.clone())
            .unwrap_or_else(|| vec![Severity::P1, Severity::P2]),
    );
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    // The API's field error on `secret`, shown at the secret field.
    let secret_error = RwSignal::new(None::<String>);
    let is_email = move || kind.get() == "email";
    // The stored secret never follows the channel to another server: when
    // the URL's origin or the SMTP server differs from the saved one, the
    // form asks for the secret again.
    let place = move || {
        if kind.get() == "email" {
            format!(
                "email|{}|{}|{}|{}",
                smtp_host.get().trim().to_ascii_lowercase(),
                smtp_port.get().trim(),
                smtp_tls.get(),
                smtp_username.get().trim()
            )
        } else {
            let u = url.get();
            let (scheme, rest) = u.trim().split_once("://").unwrap_or(("", u.trim()));
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            format!("{}|{scheme}|{}", kind.get(), host.to_ascii_lowercase())
        }
    };
    let saved_place = place();
    let moved = Memo::new(move |_| had_secret && place() != saved_place);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let k = kind.get_untracked();
        let config = if k == "email" {
            let port = smtp_port.get_untracked().trim().to_string();
            let port = if port.is_empty() {
                None
            } else {
                match port.parse::<u16>() {
                    Ok(p) => Some(p),
                    Err(_) => return error.set(Some("smtp_port: 1–65535".into())),
                }
            };
            ChannelConfig {
                smtp_host: Some(smtp_host.get_untracked().trim().to_string()),
                smtp_port: port,
                smtp_tls: Some(smtp_tls.get_untracked()),
                smtp_username: Some(smtp_username.get_untracked().trim().to_string())
                    .filter(|u| !u.is_empty()),
                from: Some(from.get_untracked().trim().to_string()),
                ..Default::default()
            }
        } else {
            ChannelConfig {
                url: Some(url.get_untracked().trim().to_string()),
                ..Default::default()
            }
        };
        let typed = secret.get_untracked();
        let secret_value = if secret_help(&k).is_none() {
            // Kinds without a secret: drop a stored one.
            if had_secret {
                Some(String::new())
            } else {
                None
            }
        } else if clear_secret.get_untracked() {
            Some(String::new())
        } else if typed.is_empty() {
            None
        } else {
            Some(typed)
        };
        let mut sev = severities.get_untracked();
        sev.sort();
        let body = ChannelInput {
            name: name.get_untracked().trim().to_string(),
            kind: k,
            config,
            secret: secret_value,
            enabled: enabled.get_untracked(),
            severities: sev,
        };
        busy.set(true);
        error.set(None);
        secret_error.set(None);
        leptos::task::spawn_local(async move {
            let r = match editing {
                Some(id) => api::channels::save(Some(id), &body).await,
                None => api::channels::save(None, &body).await,
            };
            busy.try_set(false);
            match r {
                Ok(c) => on_saved.run((editing.is_none(), c)),
                Err(e) => {
                    if e.field.as_deref() == Some("secret") {
                        let m = e.message.strip_prefix("secret: ").unwrap_or(&e.message);
                        secret_error.try_set(Some(m.to_string()));
                    } else {
                        error.try_set(Some(e.message));
                    }
                }
            }
        });
    };

    view! {
        <form class="card form-grid" on:submit=submit data-testid="channel-form">
            <h2>{if editing.is_some() { "Edit channel" } else { "New channel" }}</h2>
            <label>"Name"
                <input required maxlength="100" placeholder="e.g. ops-chat" data-testid="channel-name"
                    prop:value=move || name.get() on:input=move |e| name.set(event_target_value(&e))/>
            </label>
            <label>"Kind"
                <select data-testid="channel-kind" on:change=move |e| kind.set(event_target_value(&e))>
                    {KINDS.iter().map(|(value, label)| {
                        let value = *value;
                        view! { <option value=value prop:selected=move || kind.get() == value>{*label}</option> }
                    }).collect_view()}
                </select>
            </label>
            <Show when=move || !is_email()>
                <label class="span-all">{move || if kind.get() == "sms" { "Gateway URL" } else { "Webhook URL" }}
                    <input required type="url" class="mono" autocomplete="off" spellcheck="false" data-testid="channel-url"
                        placeholder="https://hooks.example.com/…"
                        prop:value=move || url.get() on:input=move |e| url.set(event_target_value(&e))/>
                    <span class="hint">"http:// or https:// only; the address is checked when saved and again before each send."</span>
                </label>
            </Show>
            <Show when=is_email>
                <label>"SMTP host"
                    <input required autocomplete="off" spellcheck="false" data-testid="channel-smtp-host" placeholder="smtp.example.com"
                        prop:value=move || smtp_host.get() on:input=move |e| smtp_host.set(event_target_value(&e))/>
                </label>
                <label>"Port"
                    <input inputmode="numeric" data-testid="channel-smtp-port" placeholder="default by TLS"
                        prop:value=move || smtp_port.get() on:input=move |e| smtp_port.set(event_target_value(&e))/>
                </label>
                <label>"TLS"
                    <select data-testid="channel-smtp-tls" on:change=move |e| smtp_tls.set(event_target_value(&e))>
                        <option value="starttls" prop:selected=move || smtp_tls.get() == "starttls">"STARTTLS (587)"</option>
                        <option value="tls" prop:selected=move || smtp_tls.get() == "tls">"TLS (465)"</option>
                        <option value="none" prop:selected=move || smtp_tls.get() == "none">"None (25, trusted relays only)"</option>
                    </select>
                </label>
                <label>"User name"
                    <input autocomplete="off" data-testid="channel-smtp-username" placeholder="optional"
                        prop:value=move || smtp_username.get() on:input=move |e| smtp_username.set(event_target_value(&e))/>
                </label>
                <label>"From"
                    <input required autocomplete="off" data-testid="channel-from" placeholder="Opsdeck <opsdeck@example.com>"
                        prop:value=move || from.get() on:input=move |e| from.set(event_target_value(&e))/>
                </label>
            </Show>
            {move || secret_help(&kind.get()).map(|help| view! {
                <label class="span-all" class:field-invalid=move || secret_error.get().is_some()>{move || if kind.get() == "email" { "SMTP password" } else { "Secret" }}
                    <input type="password" autocomplete="new-password" data-testid="channel-secret"
                        placeholder=move || if moved.get() { "required again: the server changed" } else if had_secret { "set — leave empty to keep it" } else { "optional" }
                        aria-invalid=move || if secret_error.get().is_some() { "true" } else { "false" }
                        disabled=move || clear_secret.get()
                        prop:value=move || secret.get() on:input=move |e| secret.set(event_target_value(&e))/>
                    {move || secret_error.get().map(|m| view! { <span class="field-error" role="alert" data-testid="channel-secret-error">{m}</span> })}
                    {move || (moved.get() && secret_error.get().is_none() && !clear_secret.get()).then(|| view! {
                        <span class="hint" data-testid="channel-secret-again">"The server changed: enter the secret again (or remove it)."</span>
                    })}
                    <span class="hint">{help}". Write-only: it is never shown again."</span>
                </label>
                {had_secret.then(|| view! {
                    <label class="check">
                        <input type="checkbox" data-testid="channel-clear-secret" prop:checked=move || clear_secret.get()
                            on:change=move |e| clear_secret.set(event_target_checked(&e))/>
                        "Remove the stored secret"
                    </label>
                })}
            })}
            <fieldset class="span-all" data-testid="channel-severities">
                <legend>"Severities sent through this channel"</legend>
                <div class="btn-row">
                    {Severity::ALL.iter().map(|s| {
                        let s = *s;
                        view! {
                            <label class="check" title=s.meaning()>
                                <input type="checkbox" data-testid=format!("channel-severity-{}", s.as_str())
                                    prop:checked=move || severities.get().contains(&s)
                                    on:change=move |e| {
                                        let on = event_target_checked(&e);
                                        severities.update(|v| {
                                            v.retain(|x| *x != s);
                                            if on { v.push(s); }
                                        });
                                    }/>
                                {s.as_str()}" · "{s.meaning()}
                            </label>
                        }
                    }).collect_view()}
                </div>
            </fieldset>
            <label class="check">
                <input type="checkbox" data-testid="channel-enabled" prop:checked=move || enabled.get()
                    on:change=move |e| enabled.set(event_target_checked(&e))/>
                "Enabled"
            </label>
            {move || error.get().map(|m| view! { <div class="notice notice-error span-all" role="alert" data-testid="channel-error">{m}</div> })}
            <div class="span-all btn-row">
                <button class="btn btn-primary" type="submit" data-testid="save-channel" disabled=move || busy.get()>
                    {if editing.is_some() { "Save channel" } else { "Add channel" }}
                </button>
                <button class="btn" type="button" on:click=move |_| on_cancel.run(())>"Cancel"</button>
            </div>
        </form>
    }
}
