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
use crate::ui::{Confirm, EmptyState, ErrorState, Loading};

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

#[derive(Clone, PartialEq)]
enum FormMode {
    Add,
    Edit(Box<MaintenanceWindow>),
}

#[component]
pub(super) fn Windows(data: PageData) -> impl IntoView {
    let operator = data.operator;
    let list = LocalResource::new(move || {
        data.windows_reload.get();
        api::maintenance::windows()
    });
    let list = Memo::new(move |_| list.get());
    let form = RwSignal::new(None::<FormMode>);
    let notice = RwSignal::new(None::<Result<String, String>>);
    let delete_target = RwSignal::new(None::<(i64, String)>);
    let delete_open = RwSignal::new(false);
    let toggling = RwSignal::new(None::<i64>);

    let toggle = move |w: MaintenanceWindow| {
        let mut body = write_of(&w);
        body.enabled = !w.def.enabled;
        toggling.set(Some(w.id));
        notice.set(None);
        leptos::task::spawn_local(async move {
            let r = api::maintenance::save_window(Some(w.id), &body).await;
            toggling.try_set(None);
            notice.try_set(Some(
                r.map(|w| {
                    format!(
                        "{} is {}.",
                        w.def.title,
                        if w.def.enabled { "enabled" } else { "paused" }
                    )
                })
                .map_err(|e| e.message),
            ));
            data.bump_windows();
        });
    };
    let delete = Callback::new(move |_| {
        let Some((id, title)) = delete_target.get_untracked() else {
            return;
        };
        leptos::task::spawn_local(async move {
            let r = api::maintenance::remove_window(id).await;
            notice.try_set(Some(
                r.map(|_| format!("Deleted window {title}."))
                    .map_err(|e| e.message),
            ));
            data.bump_windows();
        });
    });

    let row = move |w: MaintenanceWindow| {
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
                        <label class="check switch" title=if enabled { "Enabled: click to pause" } else { "Paused: click to enable" }>
                            <input type="checkbox" data-testid=format!("window-enabled-{id}") prop:checked=enabled
                                disabled=move || toggling.get() == Some(id)
                                on:change=move |_| toggle(for_toggle.clone())/>
                            {if enabled { "enabled" } else { "paused" }}
                        </label>
                    }.into_any()
                } else if enabled {
                    view! { <span class="pill pill-ok"><span aria-hidden="true">"✓"</span>" enabled"</span> }.into_any()
                } else {
                    view! { <span class="pill pill-unknown"><span aria-hidden="true">"‖"</span>" paused"</span> }.into_any()
                }}</td>
                {operator.then(|| view! {
                    <td><div class="actions">
                        <button class="btn btn-small" data-testid=format!("window-edit-{id}")
                            on:click=move |_| { notice.set(None); form.set(Some(FormMode::Edit(Box::new(for_edit.clone())))); }>"Edit"</button>
                        <button class="btn btn-small btn-danger" data-testid=format!("window-delete-{id}")
                            on:click=move |_| { delete_target.set(Some(del.clone())); delete_open.set(true); }>"Delete"</button>
                    </div></td>
                })}
            </tr>
        }
    };

    view! {
        <section class="card maint-section" data-testid="maint-windows">
            <div class="card-head">
                <h2>"Scheduled windows"</h2>
                <span class="spacer"></span>
                {operator.then(|| view! {
                    <button class="btn btn-primary btn-small" data-testid="window-new"
                        on:click=move |_| { notice.set(None); form.set(Some(FormMode::Add)); }>"New window"</button>
                })}
            </div>
            <p class="muted small maint-section-lede">"Each occurrence becomes one maintenance period at its start and ends by itself at its end."</p>
            {move || notice.get().map(|n| match n {
                Ok(m) => view! { <div class="notice notice-ok" role="status" data-testid="window-notice">{m}</div> }.into_any(),
                Err(m) => view! { <div class="notice notice-error" role="alert" data-testid="window-notice">{m}</div> }.into_any(),
            })}
            {move || form.get().map(|mode| {
                let on_saved = Callback::new(move |(created, w): (bool, MaintenanceWindow)| {
                    form.set(None);
                    notice.set(Some(Ok(format!("{} window {}.", if created { "Added" } else { "Saved" }, w.def.title))));
                    data.bump_windows();
                });
                let on_cancel = Callback::new(move |_| form.set(None));
                let existing = match mode {
                    FormMode::Add => None,
                    FormMode::Edit(w) => Some(*w),
                };
                view! { <WindowForm existing data on_saved on_cancel/> }
            })}
            {move || match list.get() {
                None => view! { <Loading rows=2/> }.into_any(),
                Some(Err(e)) => view! { <ErrorState title="Cannot list the windows" message=e.message retry=Callback::new(move |_| data.bump_windows())/> }.into_any(),
                Some(Ok(v)) if v.is_empty() => view! {
                    <div data-testid="windows-table" data-count="0">
                        <EmptyState title="No windows scheduled">
                            <p>{if operator {
                                "Add one for regular work, e.g. every Wednesday 22:00–23:00."
                            } else {
                                "Operators schedule them for regular work, e.g. every Wednesday 22:00–23:00."
                            }}</p>
                        </EmptyState>
                    </div>
                }.into_any(),
                Some(Ok(mut v)) => {
                    v.sort_by_key(|a| a.def.title.to_lowercase());
                    let count = v.len().to_string();
                    view! {
                        <div class="table-wrap"><table class="table maint-windows-table" data-testid="windows-table" data-count=count>
                            <thead><tr>
                                <th>"Window"</th><th>"When"</th><th>"Scope"</th><th>"Next"</th><th>"State"</th>
                                {operator.then(|| view! { <th><span class="sr-only">"Actions"</span></th> })}
                            </tr></thead>
                            <tbody>{v.into_iter().map(row).collect_view()}</tbody>
                        </table></div>
                    }.into_any()
                }
            }}
            <Confirm open=delete_open
                title=Signal::derive(move || delete_target.get().map(|(_, t)| format!("Delete window {t}?")).unwrap_or_default())
                message=Signal::derive(|| "No further occurrence starts; one in progress runs to its end.".to_string())
                confirm_label="Delete" on_confirm=delete/>
        </section>
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

#[component]
fn WindowForm(
    existing: Option<MaintenanceWindow>,
    data: PageData,
    on_saved: Callback<(bool, MaintenanceWindow)>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let editing = existing.as_ref().map(|w| w.id);
    let def = existing.map(|w| w.def);
    let first_start = def.as_ref().map(|d| d.starts_at).unwrap_or_else(next_hour);
    let first_end = def
        .as_ref()
        .map(|d| d.ends_at)
        .unwrap_or(first_start + TimeDelta::hours(1));
    let title = RwSignal::new(def.as_ref().map(|d| d.title.clone()).unwrap_or_default());
    let reason = RwSignal::new(def.as_ref().map(|d| d.reason.clone()).unwrap_or_default());
    let scope = ScopeState::new(
        def.as_ref().map(|d| &d.scope),
        def.as_ref().is_none_or(|d| d.actuate),
    );
    let starts = RwSignal::new(local_input(first_start));
    let ends = RwSignal::new(local_input(first_end));
    let repeat = RwSignal::new(def.as_ref().map(|d| d.repeat).unwrap_or(Repeat::Weekly));
    let weekdays = RwSignal::new(
        def.as_ref()
            .map(|d| d.weekdays.clone())
            .unwrap_or_else(|| vec![weekday_key(local(first_start).weekday()).to_string()]),
    );
    let time_zone = RwSignal::new(
        def.as_ref()
            .map(|d| d.time_zone.clone())
            .or_else(browser_timezone)
            .unwrap_or_else(|| "UTC".into()),
    );
    let until = RwSignal::new(
        def.as_ref()
            .and_then(|d| d.until)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
    );
    let enabled = RwSignal::new(def.as_ref().is_none_or(|d| d.enabled));

    // Moving the start keeps the length (when the end was after it).
    let move_start = move |value: String| {
        let old = parse_local_input(&starts.get_untracked());
        let end = parse_local_input(&ends.get_untracked());
        if let (Some(old), Some(end), Some(new)) = (old, end, parse_local_input(&value)) {
            if end > old {
                ends.set(local_input(new + (end - old)));
            }
        }
        starts.set(value);
    };

    // The window as the form says it (tracked); `strict` asks for a title.
    let build = move |strict: bool| -> Result<WindowWrite, String> {
        let t = title.get().trim().to_string();
        if strict && t.is_empty() {
            return Err("Give the window a title.".into());
        }
        let scope_v = scope.scope()?;
        let starts_at = parse_local_input(&starts.get()).ok_or("Give the first start.")?;
        let ends_at = parse_local_input(&ends.get()).ok_or("Give the first end.")?;
        let until_v = until.get();
        let until_v = until_v.trim();
        let until_d = if until_v.is_empty() {
            None
        } else {
            Some(
                NaiveDate::parse_from_str(until_v, "%Y-%m-%d")
                    .map_err(|_| "The last day is not a date.".to_string())?,
            )
        };
        let r = repeat.get();
        let tz = time_zone.get().trim().to_string();
        Ok(WindowWrite {
            title: if t.is_empty() { "(untitled)".into() } else { t },
            reason: reason.get().trim().to_string(),
            scope: scope_v,
            actuate: scope.actuate_value(),
            starts_at,
            ends_at,
            repeat: r,
            weekdays: if r == Repeat::Weekly {
                weekdays.get()
            } else {
                Vec::new()
            },
            time_zone: if tz.is_empty() { "UTC".into() } else { tz },
            until: if r == Repeat::Once { None } else { until_d },
            enabled: enabled.get(),
        })
    };

    // The next occurrences, a moment after the form stops changing.
    let preview = RwSignal::new(None::<Result<WindowPreview, String>>);
    // What the form still lacks for a preview.
    let lacking = RwSignal::new(None::<String>);
    let generation = StoredValue::new(0u32);
    Effect::new(move |_| {
        let body = build(false);
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

    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = match untrack(|| build(true)) {
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
    let browser_tz = browser_timezone();

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
            <ScopeFields state=scope data prefix="window"/>
            <label>"First start"
                <input type="datetime-local" required data-testid="window-start"
                    prop:value=move || starts.get() on:input=move |e| move_start(event_target_value(&e))/>
            </label>
            <label>"First end"
                <input type="datetime-local" required data-testid="window-end"
                    prop:value=move || ends.get() on:input=move |e| ends.set(event_target_value(&e))/>
            </label>
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
            <label class="check">
                <input type="checkbox" data-testid="window-enabled" prop:checked=move || enabled.get()
                    on:change=move |e| enabled.set(event_target_checked(&e))/>
                "Enabled"
            </label>
            <p class="hint span-all">"Start and end are on your browser's clock; the repetition keeps the start's time of day in the time zone above."</p>
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
