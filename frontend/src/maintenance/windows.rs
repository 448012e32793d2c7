//! Scheduled maintenance windows: the list (summary, scope, next
//! occurrence, enabled) and, for operators, the form (title, reason, scope,
//! actuation, first start and end, repetition, time zone, last day) with a
//! live preview of the next occurrences.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc, Weekday};
use leptos::prelude::*;
use opsdeck_wire::{MaintenanceWindow, Occurrence, Repeat, WindowPreview, WindowWrite};

use super::{
    browser_timezone, local, local_input, local_text, now, parse_local_input, scope_text, PageData,
    ScopeFields, ScopeState,
};
use crate::api::{self, ApiError};
use crate::time::relative;
use crate::ui::{
    Crud, CrudDelete, CrudForm, CrudList, CrudTable, EnabledPill, EnabledSwitch, FormMode, Notice,
};

const WEEKDAYS: [(&str, &str); 7] = [
    ("mon", "Mon"),
    ("tue", "Tue"),
    ("wed", "Wed"),
    ("thu", "Thu"),
    ("fri", "Fri"),
    ("sat", "Sat"),
    ("sun", "Sun"),
];

fn weekday_key(d: Weekday) -> &'static str {
    WEEKDAYS[d.num_days_from_monday() as usize].0
}

fn repeat_text(r: Repeat) -> &'static str {
    match r {
        Repeat::Once => "once",
        Repeat::Daily => "daily",
        Repeat::Weekly => "weekly",
    }
}

fn write_of(w: &MaintenanceWindow) -> WindowWrite {
    w.def.clone()
}

/// The next occurrence as it reads now: in progress, or when.
#[component]
fn NextOccurrence(next: Vec<Occurrence>) -> impl IntoView {
    let t = now();
    match next.into_iter().find(|o| o.ends_at > t) {
        None => view! { <span class="muted">"none"</span> }.into_any(),
        Some(o) if o.starts_at <= t => view! {
            <span class="pill pill-maintenance" title=format!("until {}", local_text(o.ends_at))>
                <span aria-hidden="true">"⚒"</span>" in progress"
            </span>
            <div class="muted small">"until "{local_text(o.ends_at)}</div>
        }
        .into_any(),
        Some(o) => view! {
            <time datetime=o.starts_at.to_rfc3339() title=o.starts_at.format("%Y-%m-%d %H:%M UTC").to_string()>
                {local_text(o.starts_at)}
            </time>
            <div class="muted small">{relative(o.starts_at)}</div>
        }
        .into_any(),
    }
}

#[component]
pub(super) fn Windows(data: PageData) -> impl IntoView {
    let operator = data.operator;
    let list = LocalResource::new(move || {
        data.windows_reload.get();
        api::maintenance::windows()
    });
    let list = Memo::new(move |_| {
        list.get().map(|r| {
            r.map(|mut v| {
                v.sort_by_key(|a| a.def.title.to_lowercase());
                v
            })
        })
    });
    let crud = Crud::<MaintenanceWindow>::new();
    let toggling = RwSignal::new(None::<i64>);

    let toggle = Callback::new(move |w: MaintenanceWindow| {
        let mut body = write_of(&w);
        body.enabled = !w.def.enabled;
        toggling.set(Some(w.id));
        crud.notice.set(None);
        leptos::task::spawn_local(async move {
            let r = api::maintenance::save_window(Some(w.id), &body).await;
            toggling.try_set(None);
            crud.report(
                r.map(|w| {
                    format!(
                        "{} is {}.",
                        w.def.title,
                        if w.def.enabled { "enabled" } else { "paused" }
                    )
                })
                .map_err(|e| e.message),
            );
            data.bump_windows();
        });
    });
    let delete = Callback::new(move |(id, title): (i64, String)| {
        leptos::task::spawn_local(async move {
            let r = api::maintenance::remove_window(id).await;
            crud.report(
                r.map(|_| format!("Deleted window {title}."))
                    .map_err(|e| e.message),
            );
            data.bump_windows();
        });
    });

    view! {
        <section class="card maint-section" data-testid="maint-windows">
            <div class="card-head">
                <h2>"Scheduled windows"</h2>
                <span class="spacer"></span>
                {operator.then(|| view! {
                    <button class="btn btn-primary btn-small" data-testid="window-new"
                        on:click=move |_| crud.add()>"New window"</button>
                })}
            </div>
            <p class="muted small maint-section-lede">"Each occurrence becomes one maintenance period at its start and ends by itself at its end."</p>
            <Notice notice=crud.notice testid="window-notice"/>
            <CrudForm crud form={move |mode: FormMode<MaintenanceWindow>| {
                let on_saved = Callback::new(move |(created, w): (bool, MaintenanceWindow)| {
                    crud.saved(format!("{} window {}.", if created { "Added" } else { "Saved" }, w.def.title));
                    data.bump_windows();
                });
                let on_cancel = Callback::new(move |_| crud.close());
                view! { <WindowForm existing=mode.existing() data on_saved on_cancel/> }
            }}/>
            <CrudList items=list loading_rows=2 error_title="Cannot list the windows"
                retry=Callback::new(move |_| data.bump_windows())
                testid="windows-table" empty_title="No windows scheduled"
                empty=move || view! {
                    <p>{if operator {
                        "Add one for regular work, e.g. every Wednesday 22:00–23:00."
                    } else {
                        "Operators schedule them for regular work, e.g. every Wednesday 22:00–23:00."
                    }}</p>
                }
                show={move |v: Vec<MaintenanceWindow>| view! {
                    <CrudTable rows=v class="table maint-windows-table" testid="windows-table"
                        row=move |w| view! { <WindowRow w operator crud toggling toggle/> }>
                        <th>"Window"</th><th>"When"</th><th>"Scope"</th><th>"Next"</th><th>"State"</th>
                        {operator.then(|| view! { <th><span class="sr-only">"Actions"</span></th> })}
                    </CrudTable>
                }}/>
            <CrudDelete crud
                title=|t: String| format!("Delete window {t}?")
                message=|_| "No further occurrence starts; one in progress runs to its end.".to_string()
                on_delete=delete/>
        </section>
    }
}

/// One window in the table.
#[component]
fn WindowRow(
    w: MaintenanceWindow,
    operator: bool,
    crud: Crud<MaintenanceWindow>,
    toggling: RwSignal<Option<i64>>,
    toggle: Callback<MaintenanceWindow>,
) -> impl IntoView {
    let id = w.id;
    let for_toggle = w.clone();
    let for_edit = w.clone();
    let del = (w.id, w.def.title.clone());
    let enabled = w.def.enabled;
    view! {
        <tr data-testid=format!("window-row-{id}") data-enabled=enabled.to_string()>
            <td class="cell-main">
                <strong class="wrap-anywhere">{w.def.title.clone()}</strong>
                {(!w.def.reason.trim().is_empty()).then(|| view! { <div class="muted small clamp wrap-anywhere">{w.def.reason.clone()}</div> })}
            </td>
            <td data-testid=format!("window-summary-{id}")>{w.summary.clone()}
                {w.def.until.map(|d| view! { <div class="muted small">"until "{d.format("%Y-%m-%d").to_string()}</div> })}
            </td>
            <td class="wrap-anywhere">{scope_text(&w.def.scope)}
                {(w.def.actuate && matches!(w.def.scope, opsdeck_wire::MaintenanceScope::Stack { .. })).then(|| view! { <div class="muted small">"with actuation"</div> })}
            </td>
            <td class="nowrap">{if enabled {
                view! { <NextOccurrence next=w.next.clone()/> }.into_any()
            } else {
                view! { <span class="muted">"—"</span> }.into_any()
            }}</td>
            <td>{if operator {
                view! {
                    <EnabledSwitch enabled testid=format!("window-enabled-{id}")
                        busy=Signal::derive(move || toggling.get() == Some(id))
                        on_toggle=Callback::new(move |_| toggle.run(for_toggle.clone()))/>
                }.into_any()
            } else {
                view! { <EnabledPill enabled/> }.into_any()
            }}</td>
            {operator.then(|| view! {
                <td><div class="actions">
                    <button class="btn btn-small" data-testid=format!("window-edit-{id}")
                        on:click=move |_| crud.edit(for_edit.clone())>"Edit"</button>
                    <button class="btn btn-small btn-danger" data-testid=format!("window-delete-{id}")
                        on:click=move |_| crud.ask_delete(del.0, del.1.clone())>"Delete"</button>
                </div></td>
            })}
        </tr>
    }
}

/// The next full hour.
fn next_hour() -> DateTime<Utc> {
    let t = now() + TimeDelta::hours(1);
    t.with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t)
}

/// The window form's fields, as signals.
#[derive(Clone, Copy)]
struct WindowDraft {
    title: RwSignal<String>,
    reason: RwSignal<String>,
    scope: ScopeState,
    starts: RwSignal<String>,
    ends: RwSignal<String>,
    repeat: RwSignal<Repeat>,
    weekdays: RwSignal<Vec<String>>,
    time_zone: RwSignal<String>,
    until: RwSignal<String>,
    enabled: RwSignal<bool>,
}

impl WindowDraft {
    /// The fields of `def`, or of a new weekly window at the next full hour.
    fn new(def: Option<&WindowWrite>) -> WindowDraft {
        let first_start = def.map(|d| d.starts_at).unwrap_or_else(next_hour);
        let first_end = def
            .map(|d| d.ends_at)
            .unwrap_or(first_start + TimeDelta::hours(1));
        WindowDraft {
            title: RwSignal::new(def.map(|d| d.title.clone()).unwrap_or_default()),
            reason: RwSignal::new(def.map(|d| d.reason.clone()).unwrap_or_default()),
            scope: ScopeState::new(def.map(|d| &d.scope), def.is_none_or(|d| d.actuate)),
            starts: RwSignal::new(local_input(first_start)),
            ends: RwSignal::new(local_input(first_end)),
            repeat: RwSignal::new(def.map(|d| d.repeat).unwrap_or(Repeat::Weekly)),
            weekdays: RwSignal::new(
                def.map(|d| d.weekdays.clone())
                    .unwrap_or_else(|| vec![weekday_key(local(first_start).weekday()).to_string()]),
            ),
            time_zone: RwSignal::new(
                def.map(|d| d.time_zone.clone())
                    .or_else(browser_timezone)
                    .unwrap_or_else(|| "UTC".into()),
            ),
            until: RwSignal::new(
                def.and_then(|d| d.until)
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
            ),
            enabled: RwSignal::new(def.is_none_or(|d| d.enabled)),
        }
    }

    /// Moving the start keeps the length (when the end was after it).
    fn move_start(self, value: String) {
        let old = parse_local_input(&self.starts.get_untracked());
        let end = parse_local_input(&self.ends.get_untracked());
        if let (Some(old), Some(end), Some(new)) = (old, end, parse_local_input(&value)) {
            if end > old {
                self.ends.set(local_input(new + (end - old)));
            }
        }
        self.starts.set(value);
    }

    /// The window as the form says it (tracked); `strict` asks for a title.
    fn build(self, strict: bool) -> Result<WindowWrite, String> {
        let t = self.title.get().trim().to_string();
        if strict && t.is_empty() {
            return Err("Give the window a title.".into());
        }
        let scope_v = self.scope.scope()?;
        let starts_at = parse_local_input(&self.starts.get()).ok_or("Give the first start.")?;
        let ends_at = parse_local_input(&self.ends.get()).ok_or("Give the first end.")?;
        let until_v = self.until.get();
        let until_v = until_v.trim();
        let until_d = if until_v.is_empty() {
            None
        } else {
            Some(
                NaiveDate::parse_from_str(until_v, "%Y-%m-%d")
                    .map_err(|_| "The last day is not a date.".to_string())?,
            )
        };
        let r = self.repeat.get();
        let tz = self.time_zone.get().trim().to_string();
        Ok(WindowWrite {
            title: if t.is_empty() { "(untitled)".into() } else { t },
            reason: self.reason.get().trim().to_string(),
            scope: scope_v,
            actuate: self.scope.actuate_value(),
            starts_at,
            ends_at,
            repeat: r,
            weekdays: if r == Repeat::Weekly {
                self.weekdays.get()
            } else {
                Vec::new()
            },
            time_zone: if tz.is_empty() { "UTC".into() } else { tz },
            until: if r == Repeat::Once { None } else { until_d },
            enabled: self.enabled.get(),
        })
    }
}

/// The server's preview of a draft (or why it failed), once asked.
type PreviewState = RwSignal<Option<Result<WindowPreview, String>>>;

/// The server's preview of the draft's next occurrences, a moment after
/// the form stops changing: (the preview, what the form still lacks for
/// one).
fn use_preview(draft: WindowDraft) -> (PreviewState, RwSignal<Option<String>>) {
    let preview: PreviewState = RwSignal::new(None);
    let lacking = RwSignal::new(None::<String>);
    let generation = StoredValue::new(0u32);
    Effect::new(move |_| {
        let body = draft.build(false);
        let gen = generation.get_value().wrapping_add(1);
        generation.set_value(gen);
        let body = match body {
            Ok(b) => b,
            Err(m) => {
                lacking.set(Some(m));
                return;
            }
        };
        lacking.set(None);
        set_timeout(
            move || {
                if generation.try_get_value() != Some(gen) {
                    return;
                }
                leptos::task::spawn_local(async move {
                    let r = api::maintenance::preview_window(&body).await;
                    if generation.try_get_value() == Some(gen) {
                        preview.try_set(Some(r.map_err(|e: ApiError| e.message)));
                    }
                });
            },
            Duration::from_millis(400),
        );
    });
    (preview, lacking)
}

#[component]
fn WindowForm(
    existing: Option<MaintenanceWindow>,
    data: PageData,
    on_saved: Callback<(bool, MaintenanceWindow)>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let editing = existing.as_ref().map(|w| w.id);
    let def = existing.map(|w| w.def);
    let draft = WindowDraft::new(def.as_ref());
    let WindowDraft {
        title,
        reason,
        starts,
        ends,
        enabled,
        ..
    } = draft;
    let (preview, lacking) = use_preview(draft);

    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = match untrack(|| draft.build(true)) {
            Ok(b) => b,
            Err(m) => return error.set(Some(m)),
        };
        if body.repeat == Repeat::Weekly && body.weekdays.is_empty() {
            return error.set(Some("Choose at least one weekday.".into()));
        }
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let r = match editing {
                Some(id) => api::maintenance::save_window(Some(id), &body).await,
                None => api::maintenance::save_window(None, &body).await,
            };
            busy.try_set(false);
            match r {
                Ok(w) => on_saved.run((editing.is_none(), w)),
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };

    view! {
        <form class="card form-grid maint-form window-form" data-testid="window-form" on:submit=submit>
            <h2>{if editing.is_some() { "Edit window" } else { "New window" }}</h2>
            <label>"Title"
                <input required maxlength="200" placeholder="e.g. Weekly database upkeep" data-testid="window-title"
                    prop:value=move || title.get() on:input=move |e| title.set(event_target_value(&e))/>
            </label>
            <label class="span-2">"Reason "
                <input maxlength="2000" placeholder="Shown in the panel's banner while it runs" data-testid="window-reason"
                    prop:value=move || reason.get() on:input=move |e| reason.set(event_target_value(&e))/>
            </label>
            <ScopeFields state=draft.scope data prefix="window"/>
            <label>"First start"
                <input type="datetime-local" required data-testid="window-start"
                    prop:value=move || starts.get() on:input=move |e| draft.move_start(event_target_value(&e))/>
            </label>
            <label>"First end"
                <input type="datetime-local" required data-testid="window-end"
                    prop:value=move || ends.get() on:input=move |e| ends.set(event_target_value(&e))/>
            </label>
            <RepeatFields draft/>
            <label class="check">
                <input type="checkbox" data-testid="window-enabled" prop:checked=move || enabled.get()
                    on:change=move |e| enabled.set(event_target_checked(&e))/>
                "Enabled"
            </label>
            <p class="hint span-all">"Start and end are on your browser's clock; the repetition keeps the start's time of day in the time zone above."</p>
            <PreviewView preview lacking/>
            {move || error.get().map(|m| view! { <div class="notice notice-error span-all" role="alert" data-testid="window-error">{m}</div> })}
            <div class="span-all btn-row">
                <button class="btn btn-primary" type="submit" data-testid="window-save" disabled=move || busy.get()>
                    {if editing.is_some() { "Save window" } else { "Add window" }}
                </button>
                <button class="btn" type="button" on:click=move |_| on_cancel.run(())>"Cancel"</button>
            </div>
        </form>
    }
}

/// The repetition part of the window form: repeat, time zone, the weekdays
/// (weekly) and the last day (when it repeats).
#[component]
fn RepeatFields(draft: WindowDraft) -> impl IntoView {
    let WindowDraft {
        repeat,
        weekdays,
        time_zone,
        until,
        ..
    } = draft;
    let browser_tz = browser_timezone();
    view! {
        <label>"Repeat"
            <select data-testid="window-repeat" on:change=move |e| {
                let v = event_target_value(&e);
                repeat.set(match v.as_str() { "once" => Repeat::Once, "daily" => Repeat::Daily, _ => Repeat::Weekly });
            }>
                {[Repeat::Once, Repeat::Daily, Repeat::Weekly].into_iter().map(|r| view! {
                    <option value=repeat_text(r) prop:selected=move || repeat.get() == r>{repeat_text(r)}</option>
                }).collect_view()}
            </select>
        </label>
        <label>"Time zone"
            <input placeholder="UTC" data-testid="window-timezone" spellcheck="false" autocomplete="off"
                prop:value=move || time_zone.get() on:input=move |e| time_zone.set(event_target_value(&e))/>
            {browser_tz.filter(|tz| *tz != time_zone.get_untracked()).map(|tz| {
                let label = format!("Use {tz}");
                view! { <button type="button" class="link-button small" on:click=move |_| time_zone.set(tz.clone())>{label}</button> }
            })}
        </label>
        <Show when=move || repeat.get() == Repeat::Weekly>
            <fieldset class="span-all">
                <legend>"On"</legend>
                <div class="maint-weekdays">
                    {WEEKDAYS.into_iter().map(|(key, label)| view! {
                        <label class="check">
                            <input type="checkbox" data-testid=format!("window-weekday-{key}")
                                prop:checked=move || weekdays.with(|w| w.iter().any(|d| d == key))
                                on:change=move |e| {
                                    let on = event_target_checked(&e);
                                    weekdays.update(|w| {
                                        w.retain(|d| d != key);
                                        if on { w.push(key.to_string()); }
                                        w.sort_by_key(|d| WEEKDAYS.iter().position(|(k, _)| k == d));
                                    });
                                }/>
                            {label}
                        </label>
                    }).collect_view()}
                </div>
            </fieldset>
        </Show>
        <Show when=move || repeat.get() != Repeat::Once>
            <label>"Last day "
                <input type="date" data-testid="window-until"
                    prop:value=move || until.get() on:input=move |e| until.set(event_target_value(&e))/>
                <span class="hint">"Optional: none repeats forever."</span>
            </label>
        </Show>
    }
}

/// The preview of the next occurrences under the window form.
#[component]
fn PreviewView(preview: PreviewState, lacking: RwSignal<Option<String>>) -> impl IntoView {
    view! {
        <div class="span-all cron-preview" data-testid="window-preview" aria-live="polite">
            {move || match (lacking.get(), preview.get()) {
                (Some(m), _) => view! { <span class="muted small">"Preview: "{m}</span> }.into_any(),
                (None, None) => view! { <span class="muted small">"The next occurrences appear here."</span> }.into_any(),
                (None, Some(Err(m))) => view! { <span class="field-error" data-testid="window-preview-error">{m}</span> }.into_any(),
                (None, Some(Ok(p))) => {
                    let summary = p.summary.clone();
                    let items: Vec<String> = p.next.iter().take(5).map(|o| {
                        let end = if local(o.ends_at).date() == local(o.starts_at).date() {
                            local(o.ends_at).format("%H:%M").to_string()
                        } else {
                            local_text(o.ends_at)
                        };
                        format!("{}–{}", local_text(o.starts_at), end)
                    }).collect();
                    view! {
                        <strong data-testid="window-preview-summary">{summary}</strong>
                        {if items.is_empty() {
                            view! { <span class="muted small">"No further occurrence."</span> }.into_any()
                        } else {
                            view! {
                                <span class="muted small">"Next: "</span>
                                <ul class="chips small">{items.into_iter().map(|t| view! { <li>{t}</li> }).collect_view()}</ul>
                            }.into_any()
                        }}
                    }.into_any()
                }
            }}
        </div>
    }
}
