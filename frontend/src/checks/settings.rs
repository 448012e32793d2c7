//! For admins on the checks page: the check engine's figures and the
//! retention and report settings.

use super::*;

#[component]
pub(super) fn EngineStatsCard() -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let stats = LocalResource::new(move || {
        reload.get();
        api::checks::engine_stats()
    });
    use_interval(Duration::from_secs(10), move || {
        reload.try_update(|n| *n += 1);
    });
    let stats = Memo::new(move |_| stats.get());
    view! {
        <section class="card" data-testid="engine-stats">
            <div class="card-head"><h2>"Check engine"</h2><span class="muted small">"Refreshed every 10 s."</span></div>
            {move || match stats.get() {
                None => view! { <Loading rows=2/> }.into_any(),
                Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| reload.update(|n| *n += 1))/> }.into_any(),
                Some(Ok(s)) => view! {
                    <dl class="facts facts-2">
                        <dt>"This instance"</dt>
                        <dd>{if s.leader {
                            view! { <Pill kind="ok" icon="✓" word="runs the probes"/> }.into_any()
                        } else {
                            view! { <Pill kind="unknown" icon="‖" word="standby"/> }.into_any()
                        }}</dd>
                        <dt>"Checks"</dt><dd>{s.checks}</dd>
                        <dt>"Probes run"</dt><dd>{s.probes_total}</dd>
                        <dt>"In flight"</dt><dd>{s.in_flight}</dd>
                        <dt>"Start lag p50 / p99"</dt><dd>{format!("{} / {}", duration_ms(s.lag_p50_ms.round() as i64), duration_ms(s.lag_p99_ms.round() as i64))}</dd>
                        <dt>"Start lag max"</dt><dd>{duration_ms(s.lag_max_ms.round() as i64)}</dd>
                        <dt>"Rollup rows written"</dt><dd>{s.rollup_rows_written}</dd>
                        <dt>"State changes written"</dt><dd>{s.events_written}</dd>
                    </dl>
                }.into_any(),
            }}
        </section>
    }
}

#[component]
pub(super) fn SettingsForm() -> impl IntoView {
    let minute = RwSignal::new(String::new());
    let hour = RwSignal::new(String::new());
    let events = RwSignal::new(String::new());
    let report_time = RwSignal::new(String::new());
    let state = RwSignal::new(None::<Result<(), ApiError>>);
    let busy = RwSignal::new(false);
    let notice = RwSignal::new(None::<Result<String, String>>);
    let fill = move |s: HealthSettings| {
        minute.set(s.minute_retention_days.to_string());
        hour.set(s.hour_retention_days.to_string());
        events.set(s.event_retention_days.to_string());
        report_time.set(s.report_time);
    };
    let load = move || {
        leptos::task::spawn_local(async move {
            match api::checks::settings().await {
                Ok(s) => {
                    fill(s);
                    state.try_set(Some(Ok(())));
                }
                Err(e) => {
                    state.try_set(Some(Err(e)));
                }
            }
        });
    };
    load();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let parse = |sig: RwSignal<String>, what: &str| -> Result<u32, String> {
            match sig.get_untracked().trim().parse::<u32>() {
                Ok(v) if v > 0 => Ok(v),
                _ => Err(format!("{what}: a whole number of days, at least 1.")),
            }
        };
        let input = (|| -> Result<HealthSettings, String> {
            Ok(HealthSettings {
                minute_retention_days: parse(minute, "Minute rollups")?,
                hour_retention_days: parse(hour, "Hourly rollups")?,
                event_retention_days: parse(events, "State changes")?,
                report_time: report_time.get_untracked().trim().to_string(),
            })
        })();
        let input = match input {
            Ok(i) => i,
            Err(m) => return notice.set(Some(Err(m))),
        };
        busy.set(true);
        notice.set(None);
        leptos::task::spawn_local(async move {
            match api::checks::save_settings(&input).await {
                Ok(s) => {
                    fill(s);
                    notice.try_set(Some(Ok("Settings saved.".into())));
                }
                Err(e) => {
                    notice.try_set(Some(Err(e.message)));
                }
            }
            busy.try_set(false);
        });
    };
    let days = move |label: &'static str, testid: &'static str, sig: RwSignal<String>| {
        view! {
            <label>{label}
                <input type="number" min="1" step="1" data-testid=testid
                    prop:value=move || sig.get() on:input=move |e| sig.set(event_target_value(&e))/>
            </label>
        }
    };
    view! {
        <section class="card" data-testid="health-settings">
            <h2>"Retention and daily report"</h2>
            {move || match state.get() {
                None => view! { <Loading rows=2/> }.into_any(),
                Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| load())/> }.into_any(),
                Some(Ok(())) => view! {
                    <form class="form-grid" on:submit=submit>
                        {days("Minute rollups kept (days)", "settings-minute-days", minute)}
                        {days("Hourly rollups kept (days)", "settings-hour-days", hour)}
                        {days("State changes kept (days)", "settings-event-days", events)}
                        <label>"Daily report at (UTC)"
                            <input type="time" data-testid="settings-report-time"
                                prop:value=move || report_time.get() on:input=move |e| report_time.set(event_target_value(&e))/>
                        </label>
                        <div class="span-all btn-row">
                            <button class="btn btn-primary" type="submit" data-testid="settings-save" disabled=move || busy.get()>"Save settings"</button>
                        </div>
                        {move || notice.get().map(|n| match n {
                            Ok(m) => view! { <div class="notice notice-ok span-all" role="status">{m}</div> }.into_any(),
                            Err(m) => view! { <div class="notice notice-error span-all" role="alert">{m}</div> }.into_any(),
                        })}
                    </form>
                }.into_any(),
            }}
        </section>
    }
}
