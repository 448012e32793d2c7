//! Storage targets: the list (everyone), and for admins the form (name,
//! kind: a local directory or an S3-compatible bucket) and delete (refused
//! while a plan or a backup uses one).
//!
//! The S3 secret access key is a password field that is never filled in:
//! the API never returns it (only `secret_set`); left empty on edit, the
//! stored one is kept.

use leptos::prelude::*;
use opsdeck_wire::{BackupTarget, S3Settings, TargetKind, TargetWrite};

use super::{FormError, FormMode, PageData};
use crate::api;

use crate::time::LiveTime;
use crate::ui::{Confirm, EmptyState, ErrorState, Loading};

fn kind_text(k: TargetKind) -> &'static str {
    match k {
        TargetKind::Local => "local directory",
        TargetKind::S3 => "S3-compatible",
    }
}

/// Where a target stores: the directory, or `s3://bucket/prefix`.
pub(super) fn target_place(t: &BackupTarget) -> String {
    match (&t.def.kind, &t.def.s3) {
        (TargetKind::S3, Some(s3)) if s3.prefix.is_empty() => format!("s3://{}", s3.bucket),
        (TargetKind::S3, Some(s3)) => format!("s3://{}/{}", s3.bucket, s3.prefix),
        _ => t.def.path.clone(),
    }
}

#[component]
pub(super) fn Targets(data: PageData) -> impl IntoView {
    let admin = data.admin;
    let form = data.target_form;
    let notice = RwSignal::new(None::<Result<String, String>>);
    let delete_target = RwSignal::new(None::<(i64, String)>);
    let delete_open = RwSignal::new(false);
    let delete = Callback::new(move |_| {
        let Some((id, name)) = delete_target.get_untracked() else {
            return;
        };
        leptos::task::spawn_local(async move {
            let r = api::backups::remove_target(id).await;
            notice.try_set(Some(
                r.map(|_| format!("Deleted target {name}; its files stay where they are."))
                    .map_err(|e| e.message),
            ));
            data.bump_targets();
        });
    });
    // Which plans store on each target.
    let used_by = move |target: &str| -> Vec<String> {
        data.plan_list()
            .into_iter()
            .filter(|p| p.def.target == target)
            .map(|p| p.def.name)
            .collect()
    };

    let row = move |t: BackupTarget| {
        let name = t.def.name.clone();
        let for_edit = t.clone();
        let del = (t.id, name.clone());
        let target_name = name.clone();
        view! {
            <tr data-testid=format!("target-{name}")>
                <td class="cell-main"><strong class="wrap-anywhere">{name.clone()}</strong></td>
                <td class="nowrap">{kind_text(t.def.kind)}</td>
                <td>
                    <code class="wrap-anywhere" data-testid=format!("target-path-{name}")>{target_place(&t)}</code>
                    {t.def.s3.as_ref().map(|s3| view! {
                        <div class="muted small wrap-anywhere" data-testid=format!("target-endpoint-{name}")>
                            {format!("{} · {}", s3.endpoint, s3.region)}
                            {(!t.secret_set).then(|| view! { " · " <span class="tag tag-approval">"no secret stored"</span> })}
                        </div>
                    })}
                </td>
                <td>{move || {
                    let plans = used_by(&target_name);
                    if plans.is_empty() {
                        view! { <span class="muted">"no plan"</span> }.into_any()
                    } else {
                        view! { <ul class="chips">{plans.into_iter().map(|p| view! { <li class="tag">{p}</li> }).collect_view()}</ul> }.into_any()
                    }
                }}</td>
                <td class="nowrap muted"><LiveTime at=t.created_at now=data.now/></td>
                {admin.then(|| view! {
                    <td><div class="actions">
                        <button class="btn btn-small" data-testid=format!("target-edit-{name}")
                            on:click=move |_| { notice.set(None); form.set(Some(FormMode::Edit(Box::new(for_edit.clone())))); }>"Edit"</button>
                        <button class="btn btn-small btn-danger" data-testid=format!("target-delete-{name}")
                            on:click=move |_| { delete_target.set(Some(del.clone())); delete_open.set(true); }>"Delete"</button>
                    </div></td>
                })}
            </tr>
        }
    };

    view! {
        <section class="card backup-section" data-testid="backups-targets">
            <div class="card-head">
                <h2>"Targets"</h2>
                <span class="spacer"></span>
                {admin.then(|| view! {
                    <button class="btn btn-small" data-testid="target-new"
                        on:click=move |_| { notice.set(None); form.set(Some(FormMode::Add)); }>"New target"</button>
                })}
            </div>
            <p class="muted small backup-section-lede">"Where backups are stored. Objects are named "<code>"<plan>/<backup id>/<n>-<source>.<kind>.zst"</code>"."</p>
            {move || notice.get().map(|n| match n {
                Ok(m) => view! { <div class="notice notice-ok" role="status" data-testid="target-notice">{m}</div> }.into_any(),
                Err(m) => view! { <div class="notice notice-error" role="alert" data-testid="target-notice">{m}</div> }.into_any(),
            })}
            {move || (admin).then(|| form.get()).flatten().map(|mode| {
                let on_saved = Callback::new(move |(created, t): (bool, BackupTarget)| {
                    form.set(None);
                    notice.set(Some(Ok(format!("{} target {}.", if created { "Added" } else { "Saved" }, t.def.name))));
                    data.bump_targets();
                    data.bump_plans();
                });
                let on_cancel = Callback::new(move |_| form.set(None));
                let existing = match mode {
                    FormMode::Add => None,
                    FormMode::Edit(t) => Some(*t),
                };
                view! { <TargetForm existing on_saved on_cancel/> }
            })}
            {move || match data.targets.get() {
                None => view! { <Loading rows=1/> }.into_any(),
                Some(Err(e)) => view! {
                    <ErrorState title="Cannot list the storage targets" message=e.message retry=Callback::new(move |_| data.bump_targets())/>
                }.into_any(),
                Some(Ok(v)) if v.is_empty() => view! {
                    <div data-testid="targets-table" data-count="0">
                        <EmptyState title="No storage targets yet">
                            <p>{if admin {
                                "Add a directory on the Opsdeck host (created if missing, mode 0700) or an S3-compatible bucket; plans store their backups there."
                            } else {
                                "An admin adds one: a directory on the Opsdeck host or an S3-compatible bucket where plans store their backups."
                            }}</p>
                        </EmptyState>
                    </div>
                }.into_any(),
                Some(Ok(v)) => {
                    let count = v.len().to_string();
                    view! {
                        <div class="table-wrap"><table class="table backup-targets-table" data-testid="targets-table" data-count=count>
                            <thead><tr>
                                <th>"Name"</th><th>"Kind"</th><th>"Where"</th><th>"Used by"</th><th>"Added"</th>
                                {admin.then(|| view! { <th><span class="sr-only">"Actions"</span></th> })}
                            </tr></thead>
                            <tbody>{v.into_iter().map(row).collect_view()}</tbody>
                        </table></div>
                    }.into_any()
                }
            }}
            <Confirm open=delete_open
                title=Signal::derive(move || delete_target.get().map(|(_, n)| format!("Delete target {n}?")).unwrap_or_default())
                message=Signal::derive(|| "Only the definition goes; objects already stored stay in the directory or bucket. Refused while a plan or a backup in the catalog uses it.".to_string())
                confirm_label="Delete target" on_confirm=delete/>
        </section>
    }
}

#[component]
fn TargetForm(
    existing: Option<BackupTarget>,
    on_saved: Callback<(bool, BackupTarget)>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let editing = existing.as_ref().map(|t| t.id);
    let secret_set = existing.as_ref().is_some_and(|t| t.secret_set);
    let def = existing.map(|t| t.def);
    let s3 = def.as_ref().and_then(|d| d.s3.clone());
    let name = RwSignal::new(def.as_ref().map(|d| d.name.clone()).unwrap_or_default());
    let kind = RwSignal::new(def.as_ref().map(|d| d.kind).unwrap_or(TargetKind::Local));
    let path = RwSignal::new(def.as_ref().map(|d| d.path.clone()).unwrap_or_default());
    let s3_field =
        |f: fn(&S3Settings) -> String| RwSignal::new(s3.as_ref().map(f).unwrap_or_default());
    let endpoint = s3_field(|s| s.endpoint.clone());
    let region = s3_field(|s| s.region.clone());
    let bucket = s3_field(|s| s.bucket.clone());
    let prefix = s3_field(|s| s.prefix.clone());
    let key_id = s3_field(|s| s.access_key_id.clone());
    let allow_http = RwSignal::new(s3.as_ref().is_some_and(|s| s.allow_http));
    let secret = RwSignal::new(String::new());
    // The stored key never follows the target elsewhere: a new endpoint,
    // bucket, access key id or plain-HTTP setting needs it again.
    let place = move || {
        (
            endpoint.get().trim().trim_end_matches('/').to_string(),
            bucket.get().trim().to_string(),
            key_id.get().trim().to_string(),
            allow_http.get(),
        )
    };
    let saved_place = place();
    let moved = Memo::new(move |_| secret_set && secret.get().is_empty() && place() != saved_place);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<FormError>);
    let field = Memo::new(move |_| error.with(|e| e.as_ref().and_then(|e| e.field.clone())));
    let invalid =
        move |f: &'static str| move || field.with(|x| x.as_deref() == Some(f)).then_some("true");
    let input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(el) = input.get() {
            let _ = el.focus();
        }
    });
    let is_s3 = move || kind.get() == TargetKind::S3;
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let k = kind.get_untracked();
        let body = match k {
            TargetKind::Local => TargetWrite {
                name: name.get_untracked().trim().to_string(),
                kind: k,
                path: path.get_untracked().trim().to_string(),
                s3: None,
                secret_access_key: None,
            },
            TargetKind::S3 => TargetWrite {
                name: name.get_untracked().trim().to_string(),
                kind: k,
                path: String::new(),
                s3: Some(S3Settings {
                    endpoint: endpoint.get_untracked().trim().to_string(),
                    region: region.get_untracked().trim().to_string(),
                    bucket: bucket.get_untracked().trim().to_string(),
                    prefix: prefix.get_untracked().trim().to_string(),
                    access_key_id: key_id.get_untracked().trim().to_string(),
                    allow_http: allow_http.get_untracked(),
                }),
                secret_access_key: Some(secret.get_untracked()).filter(|s| !s.is_empty()),
            },
        };
        if body.name.is_empty() {
            return error.set(Some(FormError::at("name", "give the target a name.")));
        }
        match (&body.kind, &body.s3) {
            (TargetKind::Local, _) if !body.path.starts_with('/') => {
                return error.set(Some(FormError::at(
                    "path",
                    "must be absolute (start with /).",
                )));
            }
            (TargetKind::S3, Some(s)) => {
                if s.endpoint.is_empty() {
                    return error.set(Some(FormError::at(
                        "s3.endpoint",
                        "the URL of the S3 service, e.g. https://s3.eu-central-1.amazonaws.com",
                    )));
                }
                if s.endpoint.starts_with("http://") && !s.allow_http {
                    return error.set(Some(FormError::at("s3.endpoint", "http:// sends keys and backups unencrypted; use https:// or tick “Allow plain HTTP”.")));
                }
                if s.bucket.is_empty() {
                    return error.set(Some(FormError::at("s3.bucket", "the bucket's name.")));
                }
                if s.access_key_id.is_empty() {
                    return error.set(Some(FormError::at(
                        "s3.access_key_id",
                        "the access key id.",
                    )));
                }
                if body.secret_access_key.is_none() && !secret_set {
                    return error.set(Some(FormError::at(
                        "secret_access_key",
                        "the secret access key.",
                    )));
                }
            }
            _ => {}
        }
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let r = match editing {
                Some(id) => api::backups::save_target(Some(id), &body).await,
                None => api::backups::save_target(None, &body).await,
            };
            busy.try_set(false);
            match r {
                Ok(t) => {
                    secret.try_set(String::new());
                    on_saved.run((editing.is_none(), t))
                }
                Err(e) => {
                    error.try_set(Some(e.into()));
                }
            }
        });
    };
    let text = move |label: &'static str,
                     testid: &'static str,
                     err: &'static str,
                     value: RwSignal<String>,
                     placeholder: &'static str,
                     hint: &'static str| {
        view! {
            <label>{label}
                <input placeholder=placeholder data-testid=testid spellcheck="false" autocomplete="off"
                    class="mono" aria-invalid=invalid(err)
                    prop:value=move || value.get() on:input=move |e| value.set(event_target_value(&e))/>
                {(!hint.is_empty()).then(|| view! { <span class="hint">{hint}</span> })}
            </label>
        }
    };
    view! {
        <form class="card form-grid backup-form" data-testid="target-form" on:submit=submit>
            <h2>{if editing.is_some() { "Edit target" } else { "New target" }}</h2>
            <label>"Name"
                <input required maxlength="63" placeholder="e.g. local" data-testid="target-name" spellcheck="false" autocomplete="off"
                    node_ref=input aria-invalid=invalid("name")
                    prop:value=move || name.get() on:input=move |e| name.set(event_target_value(&e))/>
                <span class="hint">"Lower-case letters, digits, . _ -"</span>
            </label>
            <label>"Kind"
                <select data-testid="target-kind" on:change=move |e| {
                    kind.set(if event_target_value(&e) == "s3" { TargetKind::S3 } else { TargetKind::Local });
                    error.set(None);
                }>
                    <option value="local" prop:selected=move || !is_s3()>"Local directory"</option>
                    <option value="s3" prop:selected=is_s3>"S3-compatible bucket"</option>
                </select>
            </label>
            {move || if is_s3() {
                view! {
                    <fieldset class="span-all form-grid backup-s3-fields" data-testid="target-s3-fields">
                        <legend>"S3-compatible bucket"</legend>
                        <div class="span-2">{text("Endpoint", "target-s3-endpoint", "s3.endpoint", endpoint,
                            "https://s3.eu-central-1.amazonaws.com",
                            "The service's URL without the bucket (path-style requests): AWS, MinIO, Ceph, Garage, …")}</div>
                        {text("Region", "target-s3-region", "s3.region", region, "us-east-1", "Empty: us-east-1")}
                        {text("Bucket", "target-s3-bucket", "s3.bucket", bucket, "backups", "It must exist already.")}
                        {text("Prefix", "target-s3-prefix", "s3.prefix", prefix, "opsdeck", "Optional: objects go under <prefix>/")}
                        {text("Access key id", "target-s3-key-id", "s3.access_key_id", key_id, "AKIA…", "")}
                        <label>"Secret access key"
                            <input type="password" data-testid="target-s3-secret" autocomplete="new-password" spellcheck="false"
                                aria-invalid=invalid("secret_access_key")
                                placeholder=move || if moved.get() { "required again: the bucket or endpoint changed" } else if secret_set { "leave empty to keep the stored key" } else { "" }
                                prop:value=move || secret.get() on:input=move |e| secret.set(event_target_value(&e))/>
                            {move || moved.get().then(|| view! {
                                <span class="hint" data-testid="target-s3-secret-again">"The endpoint, bucket or key id changed: enter the secret access key again."</span>
                            })}
                            <span class="hint">{if secret_set {
                                "Stored, never shown. Leave empty to keep it."
                            } else {
                                "Stored on the server, never shown again."
                            }}</span>
                        </label>
                        <label class="check span-all">
                            <input type="checkbox" data-testid="target-s3-allow-http" prop:checked=move || allow_http.get()
                                on:change=move |e| allow_http.set(event_target_checked(&e))/>
                            "Allow plain HTTP (keys and backups cross the network unencrypted; only for a trusted local network)"
                        </label>
                        <p class="muted small span-all">"Saving writes, reads back and removes a small test object in the bucket: a target that cannot store backups is refused with the reason."</p>
                    </fieldset>
                }.into_any()
            } else {
                view! {
                    <label class="span-2">"Directory"
                        <input required placeholder="/var/backups/opsdeck" data-testid="target-path" spellcheck="false" autocomplete="off"
                            class="mono" aria-invalid=invalid("path")
                            prop:value=move || path.get() on:input=move |e| path.set(event_target_value(&e))/>
                        <span class="hint">"An absolute path on the Opsdeck host, without “..”; created (mode 0700) when missing."</span>
                    </label>
                }.into_any()
            }}
            {move || error.get().map(|e| view! { <div class="notice notice-error span-all" role="alert" data-testid="target-error">{e.message}</div> })}
            <div class="span-all btn-row">
                <button class="btn btn-primary" type="submit" data-testid="target-save" disabled=move || busy.get()>
                    {move || match (busy.get(), editing.is_some()) {
                        (true, _) => "Checking…",
                        (false, true) => "Save target",
                        (false, false) => "Add target",
                    }}
                </button>
                <button class="btn" type="button" on:click=move |_| on_cancel.run(())>"Cancel"</button>
            </div>
        </form>
    }
}
