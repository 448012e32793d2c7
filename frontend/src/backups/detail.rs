//! One backup (`/backups/:id`): status and verification, plan, target,
//! sizes, times, who asked and its run; the error and the verification
//! error; the artifacts with their checksums, tools, durations and row
//! counts, each downloadable by operators; Verify again (operators, a
//! succeeded backup) and Delete (admins). Polled every 5 s while it runs or
//! waits for its verification (and for a while after Verify again).
//!
//! Restore… (operators, per restorable artifact of a succeeded backup): a
//! dialog — over the original (a safety backup first) or into a new
//! database, stop the dependent services or not — then a confirmation
//! (restoring over the original: the database's name typed), then the
//! link to the run, which waits for a second person's approval.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};
use leptos_router::NavigateOptions;
use opsdeck_wire::{
    BackupArtifact, BackupDetail, BackupStatus, RestoreInto, RestoreRequest, Role, Verification,
    RESTORABLE_KINDS,
};

use super::{in_progress, ratio, size, trigger_text, BackupStatusPill, VerificationPill, When};
use crate::api;
use crate::time::now;

use crate::live::use_interval;
use crate::session::current_role;
use crate::time::{duration_ms, human_secs, use_now, LiveTime};
use crate::ui::{Confirm, Detail, DetailLoadError, ErrorState, Loading};

#[component]
pub fn BackupPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok())));
    move || match id.get() {
        Some(id) => view! { <BackupView id/> }.into_any(),
        None => view! {
            <nav class="crumbs"><a href="/backups">"Backups"</a></nav>
            <h1>"Backup"</h1>
            <ErrorState title="No such backup" message="This address names no backup.".to_string()/>
        }
        .into_any(),
    }
}

/// `ledger` of `postgres:ledger/ledger`: what follows the last `/` or `:`.
fn short_source(source: &str) -> &str {
    source.rsplit(['/', ':']).next().unwrap_or(source)
}

/// `25 000`: digits grouped by three (thin spaces), as counts read.
fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn kind_text(kind: &str) -> &str {
    match kind {
        "pg_dump" => "database dump",
        "pg_globals" => "globals (roles)",
        "mysqldump" => "MariaDB dump (SQL)",
        "volume_tar" => "volume archive (tar)",
        "files_tar" => "host files archive (tar)",
        other => other,
    }
}

#[component]
fn BackupView(id: i64) -> impl IntoView {
    let role = current_role();
    let operator = role >= Role::Operator;
    let admin = role >= Role::Admin;
    let detail = Detail::<BackupDetail>::new();
    let Detail { state, stale } = detail;
    let load = move || {
        leptos::task::spawn_local(async move {
            detail.show(api::backups::get_one(id).await, true);
        });
    };
    load();
    // Poll fast until then (a verification was just asked for).
    let fast_until = RwSignal::new(None::<chrono::DateTime<chrono::Utc>>);
    use_interval(Duration::from_secs(5), move || {
        let busy = state
            .try_with_untracked(|s| match s {
                Some(Ok(d)) => in_progress(&d.summary),
                _ => false,
            })
            .unwrap_or(false);
        let fast = fast_until
            .try_get_untracked()
            .flatten()
            .is_some_and(|t| t > now());
        if busy || fast {
            load();
        }
    });
    let now_sig = use_now();

    let detail = Memo::new(move |_| {
        state.with(|s| match s {
            Some(Ok(d)) => Some(d.clone()),
            _ => None,
        })
    });
    let phase = Memo::new(move |_| {
        state.with(|s| match s {
            None => 0,
            Some(Ok(_)) => 1,
            Some(Err(_)) => 2,
        })
    });

    // Verify again / delete.
    let busy = RwSignal::new(false);
    let notice = RwSignal::new(None::<Result<i64, String>>);
    // A deletion that waits for an approval: its run.
    let delete_waiting = RwSignal::new(None::<i64>);
    let verify = move |_| {
        busy.set(true);
        notice.set(None);
        leptos::task::spawn_local(async move {
            let r = api::backups::verify(id).await;
            busy.try_set(false);
            notice.try_set(Some(r.map(|s| s.run_id).map_err(|e| e.message)));
            fast_until.try_set(Some(now() + TimeDelta::minutes(10)));
            load();
        });
    };
    let delete_open = RwSignal::new(false);
    // The artifact whose restore dialog is open, and the run a restore
    // request started.
    let restore_for = RwSignal::new(None::<BackupArtifact>);
    let restored = RwSignal::new(None::<i64>);
    let open_restore = Callback::new(move |a: BackupArtifact| {
        restored.set(None);
        restore_for.set(Some(a));
    });
    let navigate = use_navigate();
    let gone = RwSignal::new(false);
    Effect::new(move |_| {
        if gone.get() {
            navigate("/backups", NavigateOptions::default());
        }
    });
    let delete = Callback::new(move |_| {
        busy.set(true);
        notice.set(None);
        leptos::task::spawn_local(async move {
            match api::backups::remove(id).await {
                Ok(None) => {
                    gone.try_set(true);
                }
                Ok(Some(started)) => {
                    busy.try_set(false);
                    delete_waiting.try_set(Some(started.run_id));
                }
                Err(e) => {
                    busy.try_set(false);
                    notice.try_set(Some(Err(e.message)));
                }
            }
        });
    });

    let header = move || {
        detail.get().map(|d| {
            let b = d.summary;
            let succeeded = b.status == BackupStatus::Succeeded;
            let running = b.status == BackupStatus::Running;
            view! {
                <nav class="crumbs"><a href="/backups">"Backups"</a>" / "<span>"#"{b.id}</span></nav>
                <div class="page-head backup-head">
                    <BackupStatusPill status=b.status testid="backup-status"/>
                    <VerificationPill verification=b.verification testid="backup-verification" title=b.verify_error.clone()/>
                    <h1 class="wrap-anywhere">"Backup #"{b.id}" of "{b.plan.clone()}</h1>
                    <span class="spacer"></span>
                    <div class="actions">
                        {(operator && succeeded).then(|| view! {
                            <button class="btn" data-testid="backup-verify" disabled=move || busy.get()
                                title="Read it back, check the checksums, test-restore and compare row counts"
                                on:click=verify>"Verify again"</button>
                        })}
                        {admin.then(|| view! {
                            <button class="btn btn-danger" data-testid="backup-delete" disabled=move || busy.get() || running
                                title=if running { "Running: delete it once it ended" } else { "Remove its stored objects" }
                                on:click=move |_| delete_open.set(true)>"Delete…"</button>
                        })}
                    </div>
                </div>
            }
        })
    };

    let artifacts = move || {
        detail.get().map(|d| {
            let v = d.artifacts;
            let bid = d.summary.id;
            let restorable = d.summary.status == BackupStatus::Succeeded;
            let count = v.len().to_string();
            let body = if v.is_empty() {
                view! {
                    <p class="muted" data-testid="backup-artifacts" data-count="0">
                        {if d.summary.status == BackupStatus::Running { "Nothing stored yet." } else { "No artifacts were stored." }}
                    </p>
                }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="table backup-artifacts" data-testid="backup-artifacts" data-count=count>
                            <thead><tr>
                                <th>"Source"</th><th>"Status"</th><th class="num">"Stored"</th><th class="num">"Raw"</th>
                                <th>"SHA-256"</th><th>"Tool"</th><th class="num">"Took"</th><th class="num">"Tables"</th>
                                {operator.then(|| view! { <th><span class="sr-only">"Download"</span></th> })}
                            </tr></thead>
                            <tbody>{v.into_iter().map(|a| view! { <ArtifactRows a backup=bid operator restorable on_restore=open_restore/> }).collect_view()}</tbody>
                        </table>
                    </div>
                }.into_any()
            };
            view! {
                <section class="card">
                    <div class="card-head">
                        <h2>"Artifacts"</h2>
                        <span class="muted small">"one stored object each, zstd-compressed"</span>
                    </div>
                    {body}
                </section>
            }
        })
    };

    move || {
        match phase.get() {
        0 => view! { <Loading rows=6/> }.into_any(),
        2 => view! {
            <DetailLoadError list_href="/backups" list_label="Backups" heading="Backup"
                title="Cannot show this backup" missing="There is no backup with this id (or it was deleted)."
                error=state.with_untracked(|s| s.as_ref().and_then(|r| r.as_ref().err()).cloned())
                retry=Callback::new(move |_| load())/>
        }
        .into_any(),
        _ => view! {
            <div data-testid="backup-detail" data-id=id.to_string()
                data-status=move || detail.with(|d| d.as_ref().map(|d| d.summary.status.as_str()).unwrap_or_default())>
                {header}
                {move || stale.get().map(|m| view! { <div class="notice notice-error" role="alert">"Showing the last known state: "{m}</div> })}
                {move || delete_waiting.get().map(|run| view! {
                    <div class="notice" role="status" data-testid="backup-delete-waiting">
                        <span>"Deleting this backup needs an approval; it waits as run #"{run}": "</span>
                        <a href=format!("/runs/{run}")>"follow it"</a>
                    </div>
                })}
                {move || notice.get().map(|n| match n {
                    Ok(run) => view! {
                        <div class="notice notice-ok" role="status" data-testid="backup-verify-started">
                            <span>"Verification started as run #"{run}": "</span>
                            <a href=format!("/runs/{run}") data-testid="backup-verify-run">"follow progress"</a>
                        </div>
                    }.into_any(),
                    Err(m) => view! {
                        <div class="notice notice-error" role="alert" data-testid="backup-action-error">
                            <span>{m}</span><span class="spacer"></span>
                            <button class="btn btn-ghost btn-small" aria-label="Dismiss" on:click=move |_| notice.set(None)>"✕"</button>
                        </div>
                    }.into_any(),
                })}
                {move || restored.get().map(|run| view! {
                    <div class="notice notice-ok" role="status" data-testid="backup-restore-started">
                        <span>"Restore requested as run #"{run}": it waits for a second person's approval, then runs. "</span>
                        <a href=format!("/runs/{run}") data-testid="backup-restore-run">"follow it"</a>
                    </div>
                })}
                <BackupCallouts detail/>
                <BackupFacts detail now_sig/>
                {artifacts}
            </div>
            <RestoreDialog backup=id artifact=restore_for
                verification=Signal::derive(move || detail.with(|d| d.as_ref().map(|d| d.summary.verification)))
                on_started=Callback::new(move |run| restored.set(Some(run)))/>
            <Confirm open=delete_open
                title=Signal::derive(move || format!("Delete backup #{id}?"))
                message=Signal::derive(move || {
                    let plan = detail.with(|d| d.as_ref().map(|d| d.summary.plan.clone()).unwrap_or_default());
                    format!("Its stored objects are removed from the target and it leaves the catalog of {plan}. This cannot be undone.")
                })
                confirm_label="Delete backup" on_confirm=delete/>
        }
        .into_any(),
    }
    }
}

/// What, where, how big, when and by whom.
#[component]
fn BackupFacts(
    detail: Memo<Option<BackupDetail>>,
    now_sig: RwSignal<DateTime<Utc>>,
) -> impl IntoView {
    move || {
        detail.get().map(|d| {
            let b = d.summary;
            let started = b.started_at;
            view! {
                <section class="card facts-card backup-facts">
                    <dl class="facts facts-2">
                        <dt>"Plan"</dt>
                        <dd><a href=format!("/backups?plan={}", api::enc(&b.plan)) data-testid="backup-plan">{b.plan.clone()}</a></dd>
                        <dt>"Target"</dt><dd data-testid="backup-target">{b.target.clone()}</dd>
                        <dt>"Stored"</dt>
                        <dd data-testid="backup-size" title=format!("{} bytes", b.bytes)>
                            {if b.bytes == 0 && b.status != BackupStatus::Succeeded {
                                view! { <span class="muted">{if b.status == BackupStatus::Running { "nothing yet" } else { "nothing kept" }}</span> }.into_any()
                            } else {
                                view! {
                                    {size(b.bytes)}
                                    {ratio(b.bytes, b.raw_bytes).map(|r| view! { " "<span class="muted">"("{r}" smaller)"</span> })}
                                }.into_any()
                            }}
                        </dd>
                        <dt>"Before compression"</dt><dd title=format!("{} bytes", b.raw_bytes)>{size(b.raw_bytes)}</dd>
                        <dt>"Started"</dt>
                        <dd><When at=started/>" "<span class="muted">"("<LiveTime at=started now=now_sig/>")"</span></dd>
                        <dt>"Finished"</dt>
                        <dd>{match b.finished_at {
                            Some(end) => view! { <When at=end/>" "<span class="muted">"(took "{human_secs((end - started).num_seconds())}")"</span> }.into_any(),
                            None if b.status == BackupStatus::Running => view! {
                                <span class="muted">"running for "{move || human_secs((now_sig.get() - started).num_seconds())}</span>
                            }.into_any(),
                            None => view! { <span class="muted">"—"</span> }.into_any(),
                        }}</dd>
                        <dt>"Requested by"</dt>
                        <dd>{b.requested_by.clone()}" "<span class="muted">"("{trigger_text(&b.trigger).to_string()}")"</span></dd>
                        <dt>"Run"</dt>
                        <dd>{match b.run_id {
                            Some(r) => view! { <a href=format!("/runs/{r}") data-testid="backup-run">"run #"{r}</a> }.into_any(),
                            None => view! { <span class="muted">"—"</span> }.into_any(),
                        }}</dd>
                        <dt>"Verified"</dt>
                        <dd>{match d.verified_at {
                            Some(at) => view! { <When at/> }.into_any(),
                            None => view! { <span class="muted">"not yet"</span> }.into_any(),
                        }}</dd>
                    </dl>
                </section>
            }
        })
    }
}

/// Why the backup or its verification failed, when they did.
#[component]
fn BackupCallouts(detail: Memo<Option<BackupDetail>>) -> impl IntoView {
    move || {
        detail.get().map(|d| {
            let b = d.summary;
            let title = match b.status {
                BackupStatus::Interrupted => "The backup was interrupted",
                _ => "The backup failed",
            };
            view! {
                {b.error.clone().map(|e| view! {
                    <div class="state state-error backup-callout" role="alert" data-testid="backup-error">
                        <span class="state-icon" aria-hidden="true">"⚠"</span>
                        <div>
                            <strong>{title}</strong>
                            <p class="pre-line wrap-anywhere">{e}</p>
                        </div>
                    </div>
                })}
                {b.verify_error.clone().map(|e| view! {
                    <div class="state state-error backup-callout" role="alert" data-testid="backup-verify-error">
                        <span class="state-icon" aria-hidden="true">"⚠"</span>
                        <div>
                            <strong>"Verification failed"</strong>
                            <p class="pre-line wrap-anywhere">{e}</p>
                        </div>
                    </div>
                })}
            }
        })
    }
}

/// An artifact's row, and under it its row counts (database dumps).
#[component]
fn ArtifactRows(
    a: BackupArtifact,
    backup: i64,
    operator: bool,
    /// The backup succeeded: its stored artifacts can be restored.
    restorable: bool,
    on_restore: Callback<BackupArtifact>,
) -> impl IntoView {
    let idx = a.idx;
    let can_restore =
        restorable && a.status == "stored" && RESTORABLE_KINDS.contains(&a.kind.as_str());
    let for_dialog = a.clone();
    let tables = a.stats.len();
    let rows: i64 = a.stats.values().sum();
    let stored = a.status == "stored";
    let status_pill = match a.status.as_str() {
        "stored" => view! { <span class="pill pill-ok" data-status="stored"><span aria-hidden="true">"✓"</span>" stored"</span> }.into_any(),
        "running" => view! { <span class="pill pill-maintenance" data-status="running"><span aria-hidden="true">"…"</span>" running"</span> }.into_any(),
        other => view! { <span class="pill pill-outage" data-status=other.to_string()><span aria-hidden="true">"✕"</span>" "{other.to_string()}</span> }.into_any(),
    };
    let counts = (!a.stats.is_empty()).then(|| {
        let cols = if operator { "9" } else { "8" };
        let list: Vec<(String, i64)> = a.stats.clone().into_iter().collect();
        view! {
            <tr class="artifact-counts-row">
                <td colspan=cols>
                    <details class="artifact-counts" data-testid=format!("artifact-counts-{idx}")>
                        <summary>{if a.kind.ends_with("_tar") {
                            let n = |k: &str| a.stats.get(k).copied().unwrap_or(0);
                            format!("Contents of {} ({} files, {}, {} directories)", short_source(&a.source), count(n("files")), size(n("bytes")), count(n("dirs")))
                        } else {
                            format!("Row counts of {} ({tables} table{}, {} rows)", short_source(&a.source), if tables == 1 { "" } else { "s" }, count(rows))
                        }}</summary>
                        <table class="table backup-counts">
                            {if a.kind.ends_with("_tar") {
                                view! { <thead><tr><th>"Figure"</th><th class="num">"At dump time"</th></tr></thead> }.into_any()
                            } else {
                                view! { <thead><tr><th>"Table"</th><th class="num">"Rows at dump time"</th></tr></thead> }.into_any()
                            }}
                            <tbody>{list.into_iter().map(|(t, n)| view! {
                                <tr><td><code class="wrap-anywhere">{t}</code></td><td class="num">{count(n)}</td></tr>
                            }).collect_view()}</tbody>
                        </table>
                    </details>
                </td>
            </tr>
        }
    });
    view! {
        <tr data-testid=format!("artifact-{idx}") data-status=a.status.clone() data-kind=a.kind.clone()>
            <td class="cell-main artifact-source">
                <strong class="wrap-anywhere">{a.source.clone()}</strong>
                <div class="muted small">{kind_text(&a.kind).to_string()}</div>
                <div class="muted small wrap-anywhere" title="Object key on the target"><code>{a.object_key.clone()}</code></div>
                {a.error.clone().map(|e| view! { <div class="error-text small pre-line wrap-anywhere">{e}</div> })}
            </td>
            <td>{status_pill}</td>
            <td class="num nowrap" title=format!("{} bytes", a.bytes)>{size(a.bytes)}
                {ratio(a.bytes, a.raw_bytes).map(|r| view! { <div class="muted small">{r}</div> })}
            </td>
            <td class="num nowrap" title=format!("{} bytes", a.raw_bytes)>{size(a.raw_bytes)}</td>
            <td>{match a.sha256.clone() {
                Some(h) => view! {
                    <code class="backup-sha" title=h.clone() data-testid=format!("artifact-sha-{idx}") data-sha256=h.clone()>{h.clone()}</code>
                }.into_any(),
                None => view! { <span class="muted">"—"</span> }.into_any(),
            }}</td>
            <td class="small artifact-tool">{if a.tool.is_empty() { "—".to_string() } else { a.tool.clone() }}</td>
            <td class="num nowrap">{duration_ms(a.duration_ms)}</td>
            <td class="num nowrap">{if tables == 0 {
                view! { <span class="muted">"—"</span> }.into_any()
            } else {
                view! { {tables}<div class="muted small">{format!("{} rows", count(rows))}</div> }.into_any()
            }}</td>
            {operator.then(|| view! {
                <td class="artifact-actions">{stored.then(|| view! {
                    <a class="btn btn-small" href=api::backups::artifact_url(backup, idx) download=""
                        data-testid=format!("artifact-download-{idx}") title="Download the stored object (zstd)">"Download"</a>
                })}
                {can_restore.then(|| view! {
                    <button class="btn btn-small" data-testid=format!("artifact-restore-{idx}")
                        title="Restore it: over the original or into a new one, after a second person's approval"
                        on:click=move |_| on_restore.run(for_dialog.clone())>"Restore…"</button>
                })}</td>
            })}
        </tr>
        {counts}
    }
}

/// What an artifact restores into, in words: (noun, its name).
fn restore_object(a: &BackupArtifact) -> (&'static str, String) {
    let noun = match a.kind.as_str() {
        "volume_tar" => "volume",
        "files_tar" => "directory",
        _ => "database",
    };
    let name = match a.kind.as_str() {
        // `files:/srv/app/config`: the whole path.
        "files_tar" => a
            .source
            .split_once(':')
            .map(|(_, p)| p.to_string())
            .unwrap_or_else(|| a.source.clone()),
        _ => short_source(&a.source).to_string(),
    };
    (noun, name)
}

/// The restore dialog: where to, whether to stop the dependents, the
/// warning; then the confirmation; then `on_started` with the run id.
#[component]
fn RestoreDialog(
    backup: i64,
    artifact: RwSignal<Option<BackupArtifact>>,
    verification: Signal<Option<Verification>>,
    on_started: Callback<i64>,
) -> impl IntoView {
    let into_new = RwSignal::new(false);
    let new_name = RwSignal::new(String::new());
    let stop_deps = RwSignal::new(false);
    // Second stage: the confirmation.
    let confirming = RwSignal::new(false);
    let typed = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if let Some(a) = artifact.get() {
            let (_, name) = restore_object(&a);
            into_new.set(false);
            new_name.set(format!(
                "{}_restored",
                name.replace(['-', '.', ' '], "_").to_lowercase()
            ));
            stop_deps.set(false);
            confirming.set(false);
            typed.set(String::new());
            busy.set(false);
            error.set(None);
        }
    });
    let close = move || artifact.set(None);
    let submit = move || {
        let Some(a) = artifact.get_untracked() else {
            return;
        };
        let into = if into_new.get_untracked() {
            RestoreInto::New {
                name: new_name.get_untracked().trim().to_string(),
            }
        } else {
            RestoreInto::Original
        };
        let req = RestoreRequest {
            artifact: a.idx,
            into,
            stop_dependents: stop_deps.get_untracked(),
        };
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let r = api::backups::restore(backup, &req).await;
            busy.try_set(false);
            match r {
                Ok(s) => {
                    artifact.try_set(None);
                    on_started.run(s.run_id);
                }
                Err(e) => {
                    confirming.try_set(false);
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    move || {
        artifact.get().map(|a| {
        let (noun, name) = restore_object(&a);
        let name_c = name.clone();
        let name_w = name.clone();
        let name_t = name.clone();
        let expected = name.clone();
        let source = a.source.clone();
        let dependents = a.kind != "files_tar" && a.kind != "volume_tar";
        let unverified = move || match verification.get() {
            Some(Verification::Verified) | None => None,
            Some(v) => Some(match v {
                Verification::Failed => "Its verification failed: the checksum is checked again before anything is written, but the data may not be what you expect.",
                Verification::Pending => "It has not been verified yet.",
                _ => "Its plan does not verify backups: it was never test-restored.",
            }),
        };
        view! {
            <div class="modal-backdrop">
                <div class="modal modal-wide restore-dialog" role="dialog" aria-modal="true" aria-labelledby="restore-title"
                    data-testid="restore-dialog" data-artifact=a.idx.to_string()
                    on:keydown=move |e| if e.key() == "Escape" { close() }>
                    <h2 id="restore-title">{format!("Restore {noun} {name} from backup #{backup}")}</h2>
                    <p class="muted small wrap-anywhere"><code>{source}</code></p>
                    <Show when=move || !confirming.get() fallback=move || {
                        let what = if into_new.get() {
                            format!("A new {noun} {} is created and the backup restored into it. Nothing existing changes.", new_name.get().trim())
                        } else {
                            format!("The {noun} {name_c} is backed up as it is now (a safety backup), then overwritten with the backup's content.")
                        };
                        view! {
                            <div class="form-stack">
                                <p data-testid="restore-summary">{what}</p>
                                {move || stop_deps.get().then(|| view! {
                                    <p>"The services that depend on it are stopped first and started again afterwards."</p>
                                })}
                                <p>"The run waits for a second person's approval (an operator or admin other than you) before anything happens."</p>
                                {
                                    let expected = expected.clone();
                                    move || (!into_new.get()).then(|| {
                                        let expected = expected.clone();
                                        view! {
                                            <label class="confirm-typed">
                                                <span>"Type "<code>{expected.clone()}</code>" to confirm"</span>
                                                <input data-testid="restore-confirm-name" autocomplete="off" spellcheck="false"
                                                    prop:value=move || typed.get()
                                                    on:input=move |e| typed.set(event_target_value(&e))/>
                                            </label>
                                        }
                                    })
                                }
                            </div>
                        }
                    }>
                        <div class="form-stack">
                            <fieldset class="restore-into">
                                <legend>"Restore into"</legend>
                                <label class="check">
                                    <input type="radio" name="restore-into" data-testid="restore-into-original"
                                        prop:checked=move || !into_new.get() on:change=move |_| into_new.set(false)/>
                                    {format!("The original {noun} {name_w} (overwritten; a safety backup of it is taken first)")}
                                </label>
                                <label class="check">
                                    <input type="radio" name="restore-into" data-testid="restore-into-new"
                                        prop:checked=move || into_new.get() on:change=move |_| into_new.set(true)/>
                                    {format!("A new {noun}")}
                                </label>
                                {move || into_new.get().then(|| view! {
                                    <label>{format!("Name of the new {noun}")}
                                        <input data-testid="restore-new-name" autocomplete="off" spellcheck="false"
                                            prop:value=move || new_name.get()
                                            on:input=move |e| new_name.set(event_target_value(&e))/>
                                    </label>
                                })}
                            </fieldset>
                            {dependents.then(|| view! {
                                <label class="check">
                                    <input type="checkbox" data-testid="restore-stop-dependents" prop:checked=move || stop_deps.get()
                                        on:change=move |e| stop_deps.set(event_target_checked(&e))/>
                                    "Stop the services that depend on it during the restore (dependents first) and start them again afterwards"
                                </label>
                            })}
                            {
                                let warning = format!("Everything written to {name_t} since this backup is replaced by the backup's content. The safety backup keeps the current state.");
                                move || (!into_new.get()).then(|| view! {
                                    <div class="notice notice-warn" role="note" data-testid="restore-warning">{warning.clone()}</div>
                                })
                            }
                            {move || unverified().map(|m| view! {
                                <div class="notice notice-warn" role="note" data-testid="restore-unverified">{m}</div>
                            })}
                        </div>
                    </Show>
                    {move || error.get().map(|m| view! { <div class="notice notice-error" role="alert" data-testid="restore-error">{m}</div> })}
                    <div class="modal-actions">
                        <button class="btn" data-testid="restore-cancel" on:click=move |_| {
                            if confirming.get_untracked() { confirming.set(false) } else { close() }
                        }>{move || if confirming.get() { "Back" } else { "Cancel" }}</button>
                        {
                            let expected = name.clone();
                            move || if confirming.get() {
                                let expected = expected.clone();
                                view! {
                                    <button class="btn btn-danger" data-testid="restore-submit"
                                        disabled=move || busy.get() || (!into_new.get() && typed.get().trim() != expected)
                                        on:click=move |_| submit()>"Request the restore"</button>
                                }.into_any()
                            } else {
                                view! {
                                    <button class="btn btn-primary" data-testid="restore-next"
                                        disabled=move || into_new.get() && new_name.get().trim().is_empty()
                                        on:click=move |_| { typed.set(String::new()); confirming.set(true) }>"Continue…"</button>
                                }.into_any()
                            }
                        }
                    </div>
                </div>
            </div>
        }
    })
    }
}
