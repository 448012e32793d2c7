//! Schedules (`/schedules`): runbooks run by cron expression in a time
//! zone, with their parameters, what a tick missed while no server ran does
//! (skip or catch up once), the next runs and the last run. Admins add,
//! edit, pause and delete them; the form previews the next runs of the cron
//! expression as it is typed.

use std::collections::BTreeMap;
use std::time::Duration;

use leptos::prelude::*;
use opsdeck_wire::{CronPreview, MissedPolicy, Role, RunbookSummary, Schedule, ScheduleWrite};

use crate::api::{self, ApiError};
use crate::live::use_interval;
use crate::runbooks::{collect_params, initial_values, ParamFields};
use crate::runs::{ParamChips, RunStatusPill};
use crate::session::current_role;
use crate::time::RelTime;
use crate::ui::{
    Crud, CrudDelete, CrudForm, CrudList, CrudTable, EnabledPill, EnabledSwitch, ErrorState,
    FormMode, Loading, Notice,
};

fn missed_text(m: MissedPolicy) -> &'static str {
    match m {
        MissedPolicy::Skip => "skip",
        MissedPolicy::CatchUp => "catch up once",
    }
}

fn write_of(s: &Schedule) -> ScheduleWrite {
    ScheduleWrite {
        runbook_id: s.runbook_id,
        name: s.name.clone(),
        cron: s.cron.clone(),
        timezone: s.timezone.clone(),
        params: s.params.clone(),
        enabled: s.enabled,
        missed: s.missed,
    }
}

/// The browser's IANA time zone, when it tells.
fn browser_timezone() -> Option<String> {
    let options = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new())
        .resolved_options();
    js_sys::Reflect::get(&options, &"timeZone".into())
        .ok()?
        .as_string()
        .filter(|s| !s.is_empty())
}

#[component]
pub fn Schedules() -> impl IntoView {
    let role = current_role();
    let admin = role >= Role::Admin;
    let reload = RwSignal::new(0u32);
    let bump = move || {
        reload.try_update(|n| *n = n.wrapping_add(1));
    };
    let list = LocalResource::new(move || {
        reload.get();
        api::schedules::list()
    });
    let runbooks = LocalResource::new(api::runbooks::list);
    // Next runs move on and last runs arrive.
    use_interval(Duration::from_secs(30), bump);
    let data = Memo::new(move |_| {
        list.get().map(|r| {
            r.map(|mut v| {
                v.sort_by(|a, b| a.name.cmp(&b.name));
                v
            })
        })
    });
    let crud = Crud::<Schedule>::new();
    let toggling = RwSignal::new(None::<i64>);

    let toggle = move |s: Schedule| {
        let mut w = write_of(&s);
        w.enabled = !s.enabled;
        toggling.set(Some(s.id));
        crud.notice.set(None);
        leptos::task::spawn_local(async move {
            let r = api::schedules::save(Some(s.id), &w).await;
            toggling.try_set(None);
            crud.report(
                r.map(|s| {
                    format!(
                        "{} is {}.",
                        s.name,
                        if s.enabled { "enabled" } else { "paused" }
                    )
                })
                .map_err(|e| e.message),
            );
            bump();
        });
    };
    let delete = Callback::new(move |(id, name): (i64, String)| {
        leptos::task::spawn_local(async move {
            let r = api::schedules::remove(id).await;
            crud.report(
                r.map(|_| format!("Deleted schedule {name}."))
                    .map_err(|e| e.message),
            );
            bump();
        });
    });

    let row = move |s: Schedule| view! { <ScheduleRow s admin crud toggling toggle=Callback::new(toggle)/> };

    view! {
        <div class="page-head">
            <h1>"Schedules"</h1>
            <span class="spacer"></span>
            <a class="btn" href="/runbooks">"Runbooks"</a>
            {admin.then(|| view! {
                <button class="btn btn-primary" data-testid="add-schedule"
                    on:click=move |_| crud.add()>"New schedule"</button>
            })}
        </div>
        <p class="lede">"Runbooks that run by the clock: daily checks, weekly maintenance. One run per tick, even with several Opsdeck servers."</p>
        <Notice notice=crud.notice testid="schedule-notice"/>
        <CrudForm crud form={move |mode: FormMode<Schedule>| {
            let on_saved = Callback::new(move |(created, s): (bool, Schedule)| {
                crud.saved(format!("{} schedule {}.", if created { "Added" } else { "Saved" }, s.name));
                bump();
            });
            let on_cancel = Callback::new(move |_| crud.close());
            let existing = mode.existing();
            move || match runbooks.get() {
                None => view! { <Loading rows=3/> }.into_any(),
                Some(Err(e)) => view! { <ErrorState title="Cannot list the runbooks" message=e.message/> }.into_any(),
                Some(Ok(list)) => view! { <ScheduleForm existing=existing.clone() runbooks=list on_saved on_cancel/> }.into_any(),
            }
        }}/>
        <CrudList items=data loading_rows=4 retry=Callback::new(move |_| bump())
            testid="schedules-table" empty_title="No schedules yet"
            empty=move || view! {
                <p>{if admin {
                    "Add one to run a runbook by the clock, e.g. the daily health check at 07:00."
                } else {
                    "An admin adds them to run runbooks by the clock."
                }}</p>
            }
            show={move |v: Vec<Schedule>| view! {
                <CrudTable rows=v class="table schedules-table" testid="schedules-table" row=row>
                    <th>"Schedule"</th><th>"When"</th><th>"State"</th><th>"Missed ticks"</th><th>"Next runs"</th><th>"Last run"</th>
                    {admin.then(|| view! { <th><span class="sr-only">"Actions"</span></th> })}
                </CrudTable>
            }}/>
        <CrudDelete crud
            title=|n: String| format!("Delete schedule {n}?")
            message=|n: String| format!("{n} stops running; its past runs stay in the history.")
            on_delete=delete/>
    }
}

/// One schedule in the table.
#[component]
fn ScheduleRow(
    s: Schedule,
    admin: bool,
    crud: Crud<Schedule>,
    toggling: RwSignal<Option<i64>>,
    toggle: Callback<Schedule>,
) -> impl IntoView {
    let name = s.name.clone();
    let for_toggle = s.clone();
    let for_edit = s.clone();
    let del = (s.id, s.name.clone());
    let id = s.id;
    let next: Vec<_> = s.next_runs.iter().take(3).cloned().collect();
    view! {
        <tr data-testid=format!("schedule-row-{name}") data-enabled=s.enabled.to_string()>
            <td class="cell-main">
                <strong>{name.clone()}</strong>
                <div class="muted small"><a href=format!("/runs?runbook={}", s.runbook_id)><code>{s.runbook.clone()}</code></a></div>
                {(!s.params.is_empty()).then(|| view! { <div class="small"><ParamChips params=s.params.clone()/></div> })}
            </td>
            <td class="nowrap"><code>{s.cron.clone()}</code><div class="muted small">{s.timezone.clone()}</div></td>
            <td>{if admin {
                view! {
                    <EnabledSwitch enabled=s.enabled testid=format!("schedule-enabled-{name}")
                        busy=Signal::derive(move || toggling.get() == Some(id))
                        on_toggle=Callback::new(move |_| toggle.run(for_toggle.clone()))/>
                }.into_any()
            } else {
                view! { <EnabledPill enabled=s.enabled/> }.into_any()
            }}</td>
            <td class="nowrap">{missed_text(s.missed)}</td>
            <td class="nowrap">{if !s.enabled {
                view! { <span class="muted">"—"</span> }.into_any()
            } else if next.is_empty() {
                view! { <span class="muted">"none"</span> }.into_any()
            } else {
                view! { <ul class="plain-list small">{next.into_iter().map(|t| view! { <li><RelTime at=Some(t)/></li> }).collect_view()}</ul> }.into_any()
            }}</td>
            <td class="nowrap">{match (s.last_run_id, s.last_run_status) {
                (Some(run), status) => view! {
                    <a href=format!("/runs/{run}")>"#"{run}</a>" "
                    {status.map(|st| view! { <RunStatusPill status=st/> })}
                    <div class="muted small"><RelTime at=s.last_tick_at/></div>
                }.into_any(),
                (None, _) => view! { <span class="muted">"never"</span> }.into_any(),
            }}</td>
            {admin.then(|| view! {
                <td><div class="actions">
                    <button class="btn btn-small" data-testid=format!("schedule-edit-{}", s.name)
                        on:click=move |_| crud.edit(for_edit.clone())>"Edit"</button>
                    <button class="btn btn-small btn-danger" data-testid=format!("schedule-delete-{}", s.name)
                        on:click=move |_| crud.ask_delete(del.0, del.1.clone())>"Delete"</button>
                </div></td>
            })}
        </tr>
    }
}

#[component]
fn ScheduleForm(
    existing: Option<Schedule>,
    runbooks: Vec<RunbookSummary>,
    on_saved: Callback<(bool, Schedule)>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let editing = existing.as_ref().map(|s| s.id);
    let mut runbooks = runbooks;
    runbooks.sort_by(|a, b| a.title.cmp(&b.title));
    let runbooks = StoredValue::new(runbooks);
    let runbook_id = RwSignal::new(
        existing
            .as_ref()
            .map(|s| s.runbook_id)
            .or_else(|| runbooks.with_value(|v| v.first().map(|r| r.id))),
    );
    let name = RwSignal::new(
        existing
            .as_ref()
            .map(|s| s.name.clone())
            .unwrap_or_default(),
    );
    let cron = RwSignal::new(
        existing
            .as_ref()
            .map(|s| s.cron.clone())
            .unwrap_or_else(|| "0 7 * * *".to_string()),
    );
    let timezone = RwSignal::new(
        existing
            .as_ref()
            .map(|s| s.timezone.clone())
            .unwrap_or_else(|| "UTC".to_string()),
    );
    let enabled = RwSignal::new(existing.as_ref().is_none_or(|s| s.enabled));
    let missed = RwSignal::new(existing.as_ref().map(|s| s.missed).unwrap_or_default());
    let existing_params: StoredValue<Option<(i64, BTreeMap<String, serde_json::Value>)>> =
        StoredValue::new(existing.as_ref().map(|s| (s.runbook_id, s.params.clone())));
    let values = RwSignal::new(BTreeMap::<String, String>::new());
    let defs = Memo::new(move |_| {
        let id = runbook_id.get();
        runbooks.with_value(|v| {
            v.iter()
                .find(|r| Some(r.id) == id)
                .map(|r| r.params.clone())
                .unwrap_or_default()
        })
    });
    // New parameters for another runbook; the saved ones for its own.
    Effect::new(move |_| {
        let id = runbook_id.get();
        let d = defs.get();
        let saved = existing_params.with_value(|e| e.clone().filter(|(rb, _)| Some(*rb) == id));
        values.set(initial_values(&d, saved.as_ref().map(|(_, p)| p)));
    });

    // The next runs of the expression, a moment after typing stops.
    let preview = RwSignal::new(None::<Result<CronPreview, String>>);
    let generation = StoredValue::new(0u32);
    Effect::new(move |_| {
        let c = cron.get().trim().to_string();
        let tz = timezone.get().trim().to_string();
        let gen = generation.get_value().wrapping_add(1);
        generation.set_value(gen);
        if c.is_empty() {
            preview.set(None);
            return;
        }
        set_timeout(
            move || {
                if generation.try_get_value() != Some(gen) {
                    return;
                }
                let tz = if tz.is_empty() { "UTC".to_string() } else { tz };
                leptos::task::spawn_local(async move {
                    let r = api::schedules::preview(&c, &tz).await;
                    if generation.try_get_value() == Some(gen) {
                        preview.try_set(Some(r.map_err(|e: ApiError| e.message)));
                    }
                });
            },
            Duration::from_millis(400),
        );
    });

    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(rb) = runbook_id.get_untracked() else {
            error.set(Some("Choose a runbook.".into()));
            return;
        };
        let params = match collect_params(&defs.get_untracked(), &values.get_untracked()) {
            Ok(p) => p,
            Err(m) => return error.set(Some(m)),
        };
        let tz = timezone.get_untracked().trim().to_string();
        let body = ScheduleWrite {
            runbook_id: rb,
            name: name.get_untracked().trim().to_string(),
            cron: cron.get_untracked().trim().to_string(),
            timezone: if tz.is_empty() { "UTC".into() } else { tz },
            params,
            enabled: enabled.get_untracked(),
            missed: missed.get_untracked(),
        };
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let r = api::schedules::save(editing, &body).await;
            busy.try_set(false);
            match r {
                Ok(s) => on_saved.run((editing.is_none(), s)),
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    let browser_tz = browser_timezone().filter(|t| t != "UTC");

    view! {
        <form class="card form-grid schedule-form" on:submit=submit data-testid="schedule-form">
            <h2>{if editing.is_some() { "Edit schedule" } else { "New schedule" }}</h2>
            <label>"Name"
                <input required maxlength="100" placeholder="e.g. daily-health-check" data-testid="schedule-name"
                    prop:value=move || name.get() on:input=move |e| name.set(event_target_value(&e))/>
            </label>
            <label>"Runbook"
                <select data-testid="schedule-runbook" on:change=move |e| runbook_id.set(event_target_value(&e).parse().ok())>
                    {runbooks.with_value(|v| v.iter().map(|r| {
                        let id = r.id;
                        view! { <option value=id.to_string() prop:selected=move || runbook_id.get() == Some(id)>{r.title.clone()}</option> }
                    }).collect_view())}
                </select>
            </label>
            <label>"Cron expression"
                <input required class="mono" placeholder="0 7 * * *" data-testid="schedule-cron" spellcheck="false" autocomplete="off"
                    prop:value=move || cron.get() on:input=move |e| cron.set(event_target_value(&e))/>
                <span class="hint">"minute hour day month weekday (or seconds first, 6 fields)"</span>
            </label>
            <label>"Time zone"
                <input placeholder="UTC" data-testid="schedule-timezone" spellcheck="false" autocomplete="off"
                    prop:value=move || timezone.get() on:input=move |e| timezone.set(event_target_value(&e))/>
                {browser_tz.map(|tz| {
                    let label = format!("Use {tz}");
                    view! {
                        <button type="button" class="link-button small" on:click=move |_| timezone.set(tz.clone())>{label}</button>
                    }
                })}
            </label>
            <div class="span-all cron-preview" data-testid="cron-preview" aria-live="polite">
                {move || match preview.get() {
                    None => view! { <span class="muted small">"The next runs appear here."</span> }.into_any(),
                    Some(Err(m)) => view! { <span class="field-error" data-testid="cron-error">{m}</span> }.into_any(),
                    Some(Ok(p)) if p.next_runs.is_empty() && p.local.is_empty() => view! { <span class="muted small">"This expression never fires."</span> }.into_any(),
                    Some(Ok(p)) => {
                        let items: Vec<String> = if p.local.is_empty() {
                            p.next_runs.iter().map(|t| t.format("%a %Y-%m-%d %H:%M UTC").to_string()).collect()
                        } else {
                            p.local.clone()
                        };
                        view! {
                            <span class="muted small">"Next runs: "</span>
                            <ul class="chips small">{items.into_iter().take(5).map(|t| view! { <li>{t}</li> }).collect_view()}</ul>
                        }.into_any()
                    }
                }}
            </div>
            <fieldset class="span-all">
                <legend>"Parameters"</legend>
                {move || {
                    let d = defs.get();
                    view! { <ParamFields params=d values/> }
                }}
            </fieldset>
            <label>"Missed ticks (while no server ran)"
                <select data-testid="schedule-missed" on:change=move |e| missed.set(if event_target_value(&e) == "catch_up" { MissedPolicy::CatchUp } else { MissedPolicy::Skip })>
                    <option value="skip" prop:selected=move || missed.get() == MissedPolicy::Skip>"Skip them"</option>
                    <option value="catch_up" prop:selected=move || missed.get() == MissedPolicy::CatchUp>"Catch up once"</option>
                </select>
            </label>
            <label class="check">
                <input type="checkbox" data-testid="schedule-enabled" prop:checked=move || enabled.get()
                    on:change=move |e| enabled.set(event_target_checked(&e))/>
                "Enabled"
            </label>
            {move || error.get().map(|m| view! { <div class="notice notice-error span-all" role="alert" data-testid="schedule-error">{m}</div> })}
            <div class="span-all btn-row">
                <button class="btn btn-primary" type="submit" data-testid="save-schedule" disabled=move || busy.get()>
                    {if editing.is_some() { "Save schedule" } else { "Add schedule" }}
                </button>
                <button class="btn" type="button" on:click=move |_| on_cancel.run(())>"Cancel"</button>
            </div>
        </form>
    }
}
