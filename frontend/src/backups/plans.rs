//! The plans: each with its sources, target, zstd level, verify and enabled,
//! its last backup and Run now (operators); admins add, edit and delete
//! them ([`PlanForm`]).

use std::collections::{BTreeMap, BTreeSet};

use leptos::prelude::*;
use opsdeck_wire::{BackupPlan, BackupSource, PlanWrite};

use super::{
    in_progress, size, source_text, BackupStatusPill, FormError, FormMode, PageData,
    VerificationPill,
};
use crate::api;

use crate::time::LiveTime;
use crate::ui::{Crud, CrudDelete, CrudForm, CrudList, Notice};

#[component]
pub(super) fn Plans(data: PageData) -> impl IntoView {
    let crud = Crud::<BackupPlan>::new();
    // Run now, by plan id: the runs just started (or why not), and the
    // plans being started; here, not in the cards, which polling redraws.
    let runs = RunNow {
        started: RwSignal::new(BTreeMap::new()),
        starting: RwSignal::new(BTreeSet::new()),
    };
    let delete = Callback::new(move |(id, name): (i64, String)| {
        leptos::task::spawn_local(async move {
            let r = api::backups::remove_plan(id).await;
            crud.report(
                r.map(|_| format!("Deleted plan {name}; its backups stay in the catalog."))
                    .map_err(|e| e.message),
            );
            data.bump_plans();
            data.bump_targets();
        });
    });
    let plans = Signal::derive(move || {
        data.plans.get().map(|r| {
            r.map(|mut v| {
                v.sort_by(|a, b| a.def.name.cmp(&b.def.name));
                v
            })
        })
    });

    view! {
        <section class="card backup-section" data-testid="backups-plans">
            <div class="card-head">
                <h2>"Plans"</h2>
                {move || data.plans.with(|p| match p {
                    Some(Ok(v)) if !v.is_empty() => Some(view! { <span class="count">{v.len()}</span> }),
                    _ => None,
                })}
                <span class="spacer"></span>
                {data.admin.then(|| view! {
                    <button class="btn btn-primary btn-small" data-testid="plan-new"
                        on:click=move |_| crud.add()>"New plan"</button>
                })}
            </div>
            <Notice notice=crud.notice testid="plan-notice"/>
            <CrudForm crud form={move |mode: FormMode<BackupPlan>| {
                let on_saved = Callback::new(move |(created, p): (bool, BackupPlan)| {
                    crud.saved(format!("{} plan {}.", if created { "Added" } else { "Saved" }, p.def.name));
                    data.bump_plans();
                    data.bump_targets();
                });
                let on_cancel = Callback::new(move |_| crud.close());
                view! { <PlanForm existing=mode.existing() data on_saved on_cancel/> }
            }}/>
            <CrudList items=plans loading_rows=2 error_title="Cannot list the backup plans"
                retry=Callback::new(move |_| data.bump_plans())
                testid="plans-list" empty_title="No backup plans yet — an admin adds a target and a plan"
                empty=move || view! { <NoPlans data crud/> }
                show={move |v: Vec<BackupPlan>| {
                    let count = v.len().to_string();
                    view! {
                        <ul class="plain-list backup-plans" data-testid="plans-list" data-count=count>
                            {v.into_iter().map(|p| view! { <PlanCard plan=p data crud runs/> }).collect_view()}
                        </ul>
                    }
                }}/>
            <CrudDelete crud
                title=|n: String| format!("Delete plan {n}?")
                message=|_| "Its backups stay in the catalog (delete them there); nothing runs for this plan any more.".to_string()
                confirm_label="Delete plan" on_delete=delete/>
        </section>
    }
}

/// The body of the plans' empty state: what a plan is, and for admins the
/// next step (a target first, when there is none).
#[component]
fn NoPlans(data: PageData, crud: Crud<BackupPlan>) -> impl IntoView {
    let has_targets = move || {
        data.targets
            .with(|t| matches!(t, Some(Ok(v)) if !v.is_empty()))
    };
    view! {
        <p>"A plan names what to back up (Postgres or MariaDB databases, Docker volumes, host files), where to store it, the zstd level and whether to verify each backup by test-restoring it."</p>
        {data.admin.then(|| view! {
            <div class="btn-row">
                {move || if has_targets() {
                    view! { <button class="btn btn-primary" on:click=move |_| crud.add()>"Add a plan"</button> }.into_any()
                } else {
                    view! {
                        <button class="btn btn-primary" data-testid="plan-add-target-first"
                            on:click=move |_| data.target_form.set(Some(FormMode::Add))>"Add a storage target first"</button>
                    }.into_any()
                }}
            </div>
        })}
    }
}

/// Run now state of the plans, by plan id.
#[derive(Clone, Copy)]
struct RunNow {
    /// The run started, or why it could not start.
    started: RwSignal<BTreeMap<i64, Result<i64, String>>>,
    starting: RwSignal<BTreeSet<i64>>,
}

#[component]
fn PlanCard(
    plan: BackupPlan,
    data: PageData,
    crud: Crud<BackupPlan>,
    runs: RunNow,
) -> impl IntoView {
    let id = plan.id;
    let name = plan.def.name.clone();
    let enabled = plan.def.enabled;
    let busy = move || runs.starting.with(|s| s.contains(&id));
    let started = move || runs.started.with(|m| m.get(&id).cloned());
    let running = plan.last.as_ref().is_some_and(in_progress);
    let run = move |_| {
        runs.starting.update(|s| {
            s.insert(id);
        });
        runs.started.update(|m| {
            m.remove(&id);
        });
        leptos::task::spawn_local(async move {
            let r = api::backups::run_plan(id).await;
            runs.starting.try_update(|s| s.remove(&id));
            runs.started
                .try_update(|m| m.insert(id, r.map(|s| s.run_id).map_err(|e| e.message)));
            data.hurry();
            data.bump_backups();
        });
    };
    let for_edit = plan.clone();
    let del = (id, name.clone());
    let last = plan.last.clone();
    let now = data.now;
    let started_name = name.clone();
    view! {
        <li class="backup-plan" data-testid=format!("plan-{name}") data-enabled=enabled.to_string()>
            <div class="backup-plan-head">
                <strong class="backup-plan-name wrap-anywhere">{name.clone()}</strong>
                {if enabled {
                    view! { <span class="pill pill-ok" title="Runs when asked (and on its schedule)"><span aria-hidden="true">"✓"</span>" enabled"</span> }.into_any()
                } else {
                    view! { <span class="pill pill-unknown" title="Disabled: it cannot run"><span aria-hidden="true">"‖"</span>" disabled"</span> }.into_any()
                }}
                <span class="spacer"></span>
                <div class="actions">
                    {data.operator.then(|| {
                        let name = name.clone();
                        view! {
                            <button class="btn btn-small btn-primary" data-testid=format!("plan-run-{name}")
                                disabled=move || busy() || !enabled
                                title=if enabled { "Back up now: follow it on its run page" } else { "Disabled: an admin enables it first" }
                                on:click=run>
                                {move || if busy() { "Starting…" } else if running { "▶ Run again" } else { "▶ Run now" }}
                            </button>
                        }
                    })}
                    {data.admin.then(|| {
                        let name = name.clone();
                        view! {
                            <button class="btn btn-small" data-testid=format!("plan-edit-{name}")
                                on:click=move |_| crud.edit(for_edit.clone())>"Edit"</button>
                            <button class="btn btn-small btn-danger" data-testid=format!("plan-delete-{name}")
                                on:click=move |_| crud.ask_delete(del.0, del.1.clone())>"Delete"</button>
                        }
                    })}
                </div>
            </div>
            {move || started().map(|r| match r {
                Ok(run_id) => view! {
                    <div class="notice notice-ok backup-plan-notice" role="status" data-testid=format!("plan-run-started-{started_name}")>
                        <span>"Backup started as run #"{run_id}": "</span>
                        <a href=format!("/runs/{run_id}") data-testid="plan-run-link">"follow progress"</a>
                    </div>
                }.into_any(),
                Err(m) => view! {
                    <div class="notice notice-error backup-plan-notice" role="alert" data-testid=format!("plan-run-error-{started_name}")>{m}</div>
                }.into_any(),
            })}
            <dl class="facts backup-plan-facts">
                <dt>"Sources"</dt>
                <dd>
                    <ul class="plain-list" data-testid=format!("plan-sources-{name}")>
                        {plan.def.sources.iter().map(|s| view! { <li class="wrap-anywhere">{source_text(s)}</li> }).collect_view()}
                    </ul>
                </dd>
                <dt>"Target"</dt><dd class="wrap-anywhere">{plan.def.target.clone()}</dd>
                <dt>"Compression"</dt><dd>"zstd level "{plan.def.zstd_level}</dd>
                <dt>"Verify"</dt>
                <dd>{if plan.def.verify {
                    "after every backup (read back, checksum, test restore, row or file counts)"
                } else {
                    "off"
                }}</dd>
                <dt>"Last backup"</dt>
                <dd data-testid=format!("plan-last-{name}")>{match last {
                    None => view! { <span class="muted">"none yet"</span> }.into_any(),
                    Some(b) => {
                        let bid = b.id;
                        view! {
                            <div class="backup-last">
                                <a class="strong-link" href=format!("/backups/{bid}")>"#"{bid}</a>
                                <BackupStatusPill status=b.status/>
                                <VerificationPill verification=b.verification title=b.verify_error.clone()/>
                                {(b.bytes > 0).then(|| view! { <span class="nowrap">{size(b.bytes)}</span> })}
                                <span class="muted"><LiveTime at=b.started_at now/></span>
                            </div>
                            {b.error.clone().map(|e| view! { <div class="error-text small clamp wrap-anywhere" title=e.clone()>{e.clone()}</div> })}
                        }.into_any()
                    }
                }}</dd>
                <super::scheduling::PlanTiming plan=plan.clone()/>
            </dl>
            <p class="muted small backup-plan-meta">
                <a href=format!("/backups?plan={}", api::enc(&name)) data-testid=format!("plan-backups-{name}")>"its backups"</a>
                " · by "{plan.created_by.clone()}", changed "<LiveTime at=plan.updated_at now/>
            </p>
        </li>
    }
}

/// The kinds of source the form offers: (value, label).
const SOURCE_KINDS: [(&str, &str); 4] = [
    ("postgres", "Postgres databases"),
    ("mariadb", "MariaDB/MySQL databases"),
    ("volume", "Docker volume"),
    ("files", "Host files"),
];

/// One source row of the form; the fields of the other kinds keep their
/// text while the kind changes.
#[derive(Clone, Copy)]
struct SourceRow {
    kind: RwSignal<String>,
    service: RwSignal<String>,
    /// Comma-separated; empty means all.
    databases: RwSignal<String>,
    volume: RwSignal<String>,
    /// Empty: the only engine.
    engine: RwSignal<String>,
    path: RwSignal<String>,
}

impl SourceRow {
    fn new(s: Option<&BackupSource>) -> SourceRow {
        let row = SourceRow {
            kind: RwSignal::new("postgres".to_string()),
            service: RwSignal::new(String::new()),
            databases: RwSignal::new(String::new()),
            volume: RwSignal::new(String::new()),
            engine: RwSignal::new(String::new()),
            path: RwSignal::new(String::new()),
        };
        match s {
            None => {}
            Some(BackupSource::Postgres { service, databases }) => {
                row.service.set(service.clone());
                row.databases.set(databases.join(", "));
            }
            Some(BackupSource::Mariadb { service, databases }) => {
                row.kind.set("mariadb".into());
                row.service.set(service.clone());
                row.databases.set(databases.join(", "));
            }
            Some(BackupSource::Volume { volume, engine }) => {
                row.kind.set("volume".into());
                row.volume.set(volume.clone());
                row.engine.set(engine.clone().unwrap_or_default());
            }
            Some(BackupSource::Files { path }) => {
                row.kind.set("files".into());
                row.path.set(path.clone());
            }
        }
        row
    }

    fn source(self) -> BackupSource {
        let databases = || {
            self.databases
                .get_untracked()
                .split([',', ' ', '\n'])
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(String::from)
                .collect()
        };
        let service = self.service.get_untracked().trim().to_string();
        match self.kind.get_untracked().as_str() {
            "mariadb" => BackupSource::Mariadb {
                service,
                databases: databases(),
            },
            "volume" => BackupSource::Volume {
                volume: self.volume.get_untracked().trim().to_string(),
                engine: Some(self.engine.get_untracked().trim().to_string())
                    .filter(|e| !e.is_empty()),
            },
            "files" => BackupSource::Files {
                path: self.path.get_untracked().trim().to_string(),
            },
            _ => BackupSource::Postgres {
                service,
                databases: databases(),
            },
        }
    }
}

/// The first field a source leaves empty, as the server would name it.
fn missing_field(i: usize, s: &BackupSource) -> Option<FormError> {
    match s {
        BackupSource::Postgres { service, .. } | BackupSource::Mariadb { service, .. }
            if service.is_empty() =>
        {
            Some(FormError::at(
                format!("sources[{i}].service"),
                "choose a service.",
            ))
        }
        BackupSource::Volume { volume, .. } if volume.is_empty() => Some(FormError::at(
            format!("sources[{i}].volume"),
            "give the name of the Docker volume.",
        )),
        BackupSource::Files { path } if !path.starts_with('/') => Some(FormError::at(
            format!("sources[{i}].path"),
            "an absolute path on the Opsdeck host, e.g. /etc/nginx.",
        )),
        _ => None,
    }
}

/// By check kind: the services with such a check, then the others.
type ServiceChoices = BTreeMap<&'static str, (Vec<String>, Vec<String>)>;

/// For the source rows: by check kind (`postgres`, `mysql`), the services
/// with such a check, then the others; and the engines' names.
fn source_choices() -> (Memo<ServiceChoices>, Memo<Vec<String>>) {
    let services = LocalResource::new(api::services::list);
    let checks = LocalResource::new(api::checks::list);
    let engines = LocalResource::new(api::engines::list);
    let service_names = Memo::new(move |_| {
        let with = |kind: &str| -> BTreeSet<String> {
            match checks.get() {
                Some(Ok(v)) => v
                    .into_iter()
                    .filter(|c| c.spec.kind() == kind)
                    .filter_map(|c| c.service)
                    .collect(),
                _ => BTreeSet::new(),
            }
        };
        let all: BTreeSet<String> = match services.get() {
            Some(Ok(v)) => v.into_iter().map(|o| o.service.name).collect(),
            _ => BTreeSet::new(),
        };
        let mut out = BTreeMap::new();
        for kind in ["postgres", "mysql"] {
            let w = with(kind);
            let others: Vec<String> = all.difference(&w).cloned().collect();
            out.insert(kind, (w.into_iter().collect::<Vec<_>>(), others));
        }
        out
    });
    let engine_names = Memo::new(move |_| match engines.get() {
        Some(Ok(v)) => v.into_iter().map(|e| e.name).collect::<Vec<_>>(),
        _ => Vec::new(),
    });
    (service_names, engine_names)
}

/// The plan form's fields, as signals.
#[derive(Clone, Copy)]
struct PlanDraft {
    name: RwSignal<String>,
    target: RwSignal<String>,
    sources: RwSignal<Vec<SourceRow>>,
    level: RwSignal<String>,
    verify: RwSignal<bool>,
    enabled: RwSignal<bool>,
    timing: super::scheduling::Timing,
}

impl PlanDraft {
    /// The fields of `def`, or of a new plan (one Postgres source, level 3,
    /// verified, enabled).
    fn new(def: Option<&PlanWrite>) -> PlanDraft {
        PlanDraft {
            name: RwSignal::new(def.map(|d| d.name.clone()).unwrap_or_default()),
            target: RwSignal::new(def.map(|d| d.target.clone()).unwrap_or_default()),
            sources: RwSignal::new(match def {
                Some(d) if !d.sources.is_empty() => {
                    d.sources.iter().map(|s| SourceRow::new(Some(s))).collect()
                }
                _ => vec![SourceRow::new(None)],
            }),
            level: RwSignal::new(def.map(|d| d.zstd_level).unwrap_or(3).to_string()),
            verify: RwSignal::new(def.is_none_or(|d| d.verify)),
            enabled: RwSignal::new(def.is_none_or(|d| d.enabled)),
            timing: super::scheduling::Timing::new(def),
        }
    }

    /// The plan as the form says it, or the first field it lacks.
    fn write(self) -> Result<PlanWrite, FormError> {
        let n = self.name.get_untracked().trim().to_string();
        if n.is_empty() {
            return Err(FormError::at(
                "name",
                "give the plan a name (lower-case letters, digits, . _ -).",
            ));
        }
        let t = self.target.get_untracked();
        if t.is_empty() {
            return Err(FormError::at(
                "target",
                "choose a storage target (add one under Targets first).",
            ));
        }
        let srcs: Vec<BackupSource> = self
            .sources
            .get_untracked()
            .into_iter()
            .map(SourceRow::source)
            .collect();
        if let Some(m) = srcs
            .iter()
            .enumerate()
            .find_map(|(i, s)| missing_field(i, s))
        {
            return Err(m);
        }
        let zstd_level = match self.level.get_untracked().trim().parse::<i32>() {
            Ok(l) if (1..=19).contains(&l) => l,
            _ => return Err(FormError::at("zstd_level", "1 (fast) to 19 (small).")),
        };
        Ok(PlanWrite {
            name: n,
            sources: srcs,
            target: t,
            zstd_level,
            verify: self.verify.get_untracked(),
            enabled: self.enabled.get_untracked(),
            retention: self.timing.retention()?,
            schedules: self.timing.schedules(),
            timezone: self.timing.timezone(),
        })
    }
}

#[component]
fn PlanForm(
    existing: Option<BackupPlan>,
    data: PageData,
    on_saved: Callback<(bool, BackupPlan)>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let editing = existing.as_ref().map(|p| p.id);
    let def = existing.map(|p| p.def);
    let draft = PlanDraft::new(def.as_ref());
    let PlanDraft {
        name,
        target,
        sources,
        level,
        verify,
        enabled,
        timing,
    } = draft;
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<FormError>);
    let field = Memo::new(move |_| error.with(|e| e.as_ref().and_then(|e| e.field.clone())));
    let invalid =
        move |f: &'static str| move || field.with(|x| x.as_deref() == Some(f)).then_some("true");

    // Services: those with the source kind's check first (only they can be
    // backed up), by check kind (`postgres`, `mysql`); the engines' names.
    let (service_names, engine_names) = source_choices();
    // A new plan starts on the first target.
    Effect::new(move |_| {
        let first = data.targets.with(|t| match t {
            Some(Ok(v)) => v.first().map(|t| t.def.name.clone()),
            _ => None,
        });
        if let Some(first) = first {
            if target.with_untracked(String::is_empty) {
                target.set(first);
            }
        }
    });

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = match draft.write() {
            Ok(b) => b,
            Err(m) => return error.set(Some(m)),
        };
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let r = match editing {
                Some(id) => api::backups::save_plan(Some(id), &body).await,
                None => api::backups::save_plan(None, &body).await,
            };
            busy.try_set(false);
            match r {
                Ok(p) => on_saved.run((editing.is_none(), p)),
                Err(e) => {
                    error.try_set(Some(e.into()));
                }
            }
        });
    };

    let source_rows = move || {
        let rows = sources.get();
        let single = rows.len() == 1;
        rows.into_iter()
            .enumerate()
            .map(|(i, row)| {
                view! { <SourceRowView i row single sources field service_names engine_names/> }
            })
            .collect_view()
    };

    view! {
        <form class="card form-grid backup-form" data-testid="plan-form" on:submit=submit>
            <h2>{if editing.is_some() { "Edit plan" } else { "New plan" }}</h2>
            <label>"Name"
                <input required maxlength="63" placeholder="e.g. ledger" data-testid="plan-name" spellcheck="false" autocomplete="off"
                    aria-invalid=invalid("name")
                    prop:value=move || name.get() on:input=move |e| name.set(event_target_value(&e))/>
                <span class="hint">"Lower-case letters, digits, . _ -"</span>
            </label>
            <label>"Target"
                <TargetSelect data target invalid=Signal::derive(invalid("target"))/>
            </label>
            <label>"zstd level"
                <input type="number" min="1" max="19" step="1" required data-testid="plan-zstd" aria-invalid=invalid("zstd_level")
                    prop:value=move || level.get() on:input=move |e| level.set(event_target_value(&e))/>
                <span class="hint">"1 fast … 19 small; 3 is a good default"</span>
            </label>
            <fieldset class="span-all backup-sources">
                <legend>"Sources"</legend>
                <p class="hint">"Postgres or MariaDB/MySQL databases of a service with such a check (its connection is used, with the local client tools; databases empty: all of them, and for Postgres the globals too), a Docker volume (archived through its engine with a busybox helper container), or a file or directory on the Opsdeck host (symbolic links kept as links)."</p>
                <ol class="plain-list backup-source-list" aria-invalid=invalid("sources")>{source_rows}</ol>
                <div class="btn-row">
                    <button type="button" class="btn btn-small" data-testid="plan-source-add"
                        on:click=move |_| sources.update(|v| v.push(SourceRow::new(None)))>"+ Add a source"</button>
                </div>
            </fieldset>
            <super::scheduling::TimingFields timing=timing invalid=field/>
            <div class="span-all backup-checks">
                <label class="check">
                    <input type="checkbox" data-testid="plan-verify" prop:checked=move || verify.get()
                        on:change=move |e| verify.set(event_target_checked(&e))/>
                    "Verify each backup (read back, checksum, test restore into a scratch database or volume, row or file counts)"
                </label>
                <label class="check">
                    <input type="checkbox" data-testid="plan-enabled" prop:checked=move || enabled.get()
                        on:change=move |e| enabled.set(event_target_checked(&e))/>
                    "Enabled"
                </label>
            </div>
            {move || error.get().map(|e| view! { <div class="notice notice-error span-all" role="alert" data-testid="plan-error">{e.message}</div> })}
            <div class="span-all btn-row">
                <button class="btn btn-primary" type="submit" data-testid="plan-save" disabled=move || busy.get()>
                    {if editing.is_some() { "Save plan" } else { "Add plan" }}
                </button>
                <button class="btn" type="button" on:click=move |_| on_cancel.run(())>"Cancel"</button>
            </div>
        </form>
    }
}

/// The plan form's target: the targets by name and path (one no longer
/// listed stays choosable), or why there are none.
#[component]
fn TargetSelect(
    data: PageData,
    target: RwSignal<String>,
    invalid: Signal<Option<&'static str>>,
) -> impl IntoView {
    view! {
        <select data-testid="plan-target" aria-invalid=move || invalid.get() on:change=move |e| target.set(event_target_value(&e))>
            {move || match data.targets.get() {
                Some(Ok(v)) if !v.is_empty() => {
                    let current = target.get_untracked();
                    let unknown = !current.is_empty() && !v.iter().any(|t| t.def.name == current);
                    view! {
                        {unknown.then(|| view! { <option value=current.clone() selected>{current.clone()}</option> })}
                        {v.into_iter().map(|t| {
                            let n = t.def.name.clone();
                            let n2 = n.clone();
                            view! { <option value=n.clone() prop:selected=move || target.with(|c| *c == n2)>{format!("{n} ({})", t.def.path)}</option> }
                        }).collect_view()}
                    }.into_any()
                }
                Some(Ok(_)) => view! { <option value="">"No targets: add one under Targets"</option> }.into_any(),
                Some(Err(_)) => view! { <option value="">"Cannot list the targets"</option> }.into_any(),
                None => view! { <option value="">"Loading…"</option> }.into_any(),
            }}
        </select>
    }
}

/// One source row of the plan form: its kind, the kind's fields, and the
/// remove button (disabled on the only row).
#[component]
fn SourceRowView(
    i: usize,
    row: SourceRow,
    single: bool,
    sources: RwSignal<Vec<SourceRow>>,
    field: Memo<Option<String>>,
    service_names: Memo<ServiceChoices>,
    engine_names: Memo<Vec<String>>,
) -> impl IntoView {
    let invalid_for = move |f: &'static str| {
        let name = format!("sources[{i}].{f}");
        move || {
            field
                .with(|x| x.as_deref() == Some(name.as_str()))
                .then_some("true")
        }
    };
    let fields = move || {
        match row.kind.get().as_str() {
        kind @ ("postgres" | "mariadb") => {
            let (check_kind, check_label) = if kind == "mariadb" {
                ("mysql", "MariaDB/MySQL")
            } else {
                ("postgres", "Postgres")
            };
            view! {
                <label>"Service"
                    <select data-testid=format!("plan-source-service-{i}") aria-invalid=invalid_for("service")
                        on:change=move |e| row.service.set(event_target_value(&e))>
                        <option value="" prop:selected=move || row.service.with(String::is_empty)>"Choose a service…"</option>
                        {move || service_options(row.service, service_names, check_kind, check_label)}
                    </select>
                </label>
                <label>"Databases"
                    <input data-testid=format!("plan-source-databases-{i}") placeholder="all (empty), or e.g. ledger, billing"
                        spellcheck="false" autocomplete="off" aria-invalid=invalid_for("databases")
                        prop:value=move || row.databases.get() on:input=move |e| row.databases.set(event_target_value(&e))/>
                </label>
            }.into_any()
        }
        "volume" => view! {
            <label>"Volume"
                <input data-testid=format!("plan-source-volume-{i}") placeholder="e.g. shop_pgdata"
                    spellcheck="false" autocomplete="off" aria-invalid=invalid_for("volume")
                    prop:value=move || row.volume.get() on:input=move |e| row.volume.set(event_target_value(&e))/>
            </label>
            <label>"Engine"
                <select data-testid=format!("plan-source-engine-{i}") aria-invalid=invalid_for("engine")
                    on:change=move |e| row.engine.set(event_target_value(&e))>
                    <option value="" prop:selected=move || row.engine.with(String::is_empty)>"The only engine"</option>
                    {move || {
                        let mut names = engine_names.get();
                        let current = row.engine.get_untracked();
                        if !current.is_empty() && !names.contains(&current) {
                            names.insert(0, current);
                        }
                        names.into_iter().map(|n| {
                            let n2 = n.clone();
                            let label = n.clone();
                            view! { <option value=n prop:selected=move || row.engine.with(|c| *c == n2)>{label}</option> }
                        }).collect_view()
                    }}
                </select>
            </label>
        }.into_any(),
        _ => view! {
            <label class="backup-source-wide">"Path on the Opsdeck host"
                <input data-testid=format!("plan-source-path-{i}") placeholder="e.g. /etc/nginx"
                    spellcheck="false" autocomplete="off" aria-invalid=invalid_for("path")
                    prop:value=move || row.path.get() on:input=move |e| row.path.set(event_target_value(&e))/>
            </label>
        }.into_any(),
    }
    };
    view! {
        <li class="backup-source-row" data-testid=format!("plan-source-{i}") data-kind=move || row.kind.get()>
            <label>"Kind"
                <select data-testid=format!("plan-source-kind-{i}")
                    on:change=move |e| row.kind.set(event_target_value(&e))>
                    {SOURCE_KINDS.into_iter().map(|(v, label)| view! {
                        <option value=v prop:selected=move || row.kind.with(|k| k == v)>{label}</option>
                    }).collect_view()}
                </select>
            </label>
            <div class="backup-source-fields">{fields}</div>
            <button type="button" class="btn btn-small btn-ghost backup-source-remove" data-testid=format!("plan-source-remove-{i}")
                disabled=single aria-label="Remove this source" title="Remove this source"
                on:click=move |_| sources.update(|v| { if v.len() > 1 { v.remove(i); } })>"✕"</button>
        </li>
    }
}

/// A database source's service options: the current one if no longer
/// listed, those with the kind's check, then the others.
fn service_options(
    service: RwSignal<String>,
    service_names: Memo<ServiceChoices>,
    check_kind: &'static str,
    check_label: &'static str,
) -> impl IntoView {
    let (with, others) = service_names.with(|m| m.get(check_kind).cloned().unwrap_or_default());
    let current = service.get_untracked();
    let unknown = !current.is_empty() && !with.contains(&current) && !others.contains(&current);
    let opt = move |s: String| {
        let s2 = s.clone();
        let label = s.clone();
        view! { <option value=s prop:selected=move || service.with(|c| *c == s2)>{label}</option> }
    };
    view! {
        {unknown.then(|| opt(current.clone()))}
        <optgroup label=format!("With a {check_label} check")>
            {with.into_iter().map(opt).collect_view()}
        </optgroup>
        {(!others.is_empty()).then(|| view! {
            <optgroup label=format!("Other services (no {check_label} check yet)")>
                {others.into_iter().map(opt).collect_view()}
            </optgroup>
        })}
    }
}
