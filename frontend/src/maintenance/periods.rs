//! The maintenance page's periods: those in effect (with End now and
//! Extend), turning maintenance on, and the recent ones.

use super::*;

/// End now / Extend for the periods of a page: created once by the page
/// (the confirm dialog lives outside the rows, which polling re-renders).
#[derive(Clone, Copy)]
pub(crate) struct PeriodControls {
    /// The period an action is under way for.
    busy: RwSignal<Option<i64>>,
    end_target: RwSignal<Option<MaintenancePeriod>>,
    end_open: RwSignal<bool>,
    /// Gets the answer of an action.
    on_done: Callback<Result<MaintenancePeriod, ApiError>>,
}

impl PeriodControls {
    pub(super) fn new(on_done: Callback<Result<MaintenancePeriod, ApiError>>) -> PeriodControls {
        PeriodControls {
            busy: RwSignal::new(None),
            end_target: RwSignal::new(None),
            end_open: RwSignal::new(false),
            on_done,
        }
    }

    pub(super) fn extend(self, id: i64, until: DateTime<Utc>) {
        self.busy.set(Some(id));
        leptos::task::spawn_local(async move {
            let r = extend_period(id, until).await;
            self.busy.try_set(None);
            self.on_done.run(r);
        });
    }

    pub(super) fn end(self) {
        let Some(p) = self.end_target.get_untracked() else {
            return;
        };
        let id = p.id;
        self.busy.set(Some(id));
        leptos::task::spawn_local(async move {
            let r = end_period(id).await;
            self.busy.try_set(None);
            self.on_done.run(r);
        });
    }
}

/// The End now confirmation of a page (the shared dialog: `confirm`).
#[component]
pub(super) fn EndDialog(ctl: PeriodControls) -> impl IntoView {
    let title = Signal::derive(move || {
        ctl.end_target
            .with(|p| {
                p.as_ref()
                    .map(|p| format!("End maintenance “{}” now?", p.title))
            })
            .unwrap_or_default()
    });
    let message = Signal::derive(move || {
        ctl.end_target.with(|p| match p {
            None => String::new(),
            Some(p) if p.status == PeriodStatus::Requested => {
                "It has not started yet: it is cancelled.".to_string()
            }
            Some(p) => format!(
                "The actuation is undone and {} maintenance; alarms are raised again from now on.",
                if p.services.len() == 1 {
                    format!("{} leaves", p.services[0])
                } else {
                    format!("its {} services leave", p.services.len())
                }
            ),
        })
    });
    view! {
        <Confirm open=ctl.end_open title message confirm_label="End now"
            on_confirm=Callback::new(move |_| ctl.end())/>
    }
}

/// The End now / Extend buttons of an open period.
#[component]
pub(super) fn PeriodActions(
    period: MaintenancePeriod,
    ctl: PeriodControls,
    #[prop(optional)] small: bool,
) -> impl IntoView {
    let id = period.id;
    let until = period.ends_at;
    let busy = move || ctl.busy.get() == Some(id);
    let class = if small { "btn btn-small" } else { "btn" };
    view! {
        <div class="actions maint-actions">
            {EXTENSIONS.into_iter().map(|(label, minutes, suffix)| view! {
                <button class=class data-testid=format!("maint-extend-{id}{suffix}") disabled=busy
                    title=format!("Extend to {}", local_hm(until + TimeDelta::minutes(minutes)))
                    on:click=move |_| ctl.extend(id, until + TimeDelta::minutes(minutes))>{label}</button>
            }).collect_view()}
            <button class=format!("{class} btn-danger") data-testid=format!("maint-end-{id}") disabled=busy
                on:click={
                    let p = period.clone();
                    move |_| { ctl.end_target.set(Some(p.clone())); ctl.end_open.set(true); }
                }>"End now…"</button>
        </div>
    }
}

/// The periods in effect (and requested), polled.
#[component]
pub(super) fn InEffect(data: PageData) -> impl IntoView {
    let list = LocalResource::new(move || {
        data.periods_reload.get();
        api::maintenance::periods("open")
    });
    let list = Memo::new(move |_| list.get());
    let notice = RwSignal::new(None::<Result<String, String>>);
    let on_done = Callback::new(move |r: Result<MaintenancePeriod, ApiError>| {
        notice.set(Some(match r {
            Ok(p) if p.status.is_open() && p.status != PeriodStatus::Disabling => Ok(format!(
                "“{}” now ends at {}.",
                p.title,
                local_hm(p.ends_at)
            )),
            Ok(p) => Ok(format!("“{}” is ending.", p.title)),
            Err(e) => Err(e.message),
        }));
        data.bump_periods();
    });
    let ctl = PeriodControls::new(on_done);
    let now = data.now;
    let row = move |p: MaintenancePeriod| {
        let id = p.id;
        let until = p.ends_at;
        let act = data.operator && can_act(p.status);
        let actions = p.clone();
        view! {
            <li class=format!("maint-period mp-{}", p.status.as_str()) data-testid=format!("maint-period-{id}")
                data-status=p.status.as_str()>
                <div class="maint-period-head">
                    <PeriodStatusPill status=p.status/>
                    <a class="strong-link wrap-anywhere" href=format!("/maintenance/{id}")>{p.title.clone()}</a>
                    <span class="muted small">{scope_text(&p.scope)}</span>
                    <span class="spacer"></span>
                    {act.then(|| view! { <PeriodActions period=actions ctl small=true/> })}
                </div>
                {(!p.reason.trim().is_empty()).then(|| view! { <p class="maint-reason pre-line wrap-anywhere">{p.reason.clone()}</p> })}
                <div class="maint-period-meta small">
                    <span>"started by "<strong>{p.started_by.clone()}</strong>" "<LiveTime at=p.starts_at now/></span>
                    <span>"until "<When at=until/>" "
                        <span class="maint-countdown" data-testid=format!("maint-countdown-{id}")>{move || format!("({})", ends_in(until, now.get()))}</span>
                    </span>
                    {p.window_id.map(|_| view! { <span class="tag">"window"</span> })}
                    {(p.suppressed > 0).then(|| view! { <span class="muted">{format!("{} suppressed", p.suppressed)}</span> })}
                    {p.error.clone().map(|e| view! { <span class="error-text">{e}</span> })}
                </div>
            </li>
        }
    };
    view! {
        <section class="card maint-section" data-testid="maint-in-effect">
            <div class="card-head">
                <h2>"In effect"</h2>
                {move || list.with(|l| match l {
                    Some(Ok(v)) if !v.is_empty() => Some(view! { <span class="count">{v.len()}</span> }),
                    _ => None,
                })}
            </div>
            {move || notice.get().map(|n| match n {
                Ok(m) => view! { <div class="notice notice-ok" role="status" data-testid="maint-notice">{m}</div> }.into_any(),
                Err(m) => view! { <div class="notice notice-error" role="alert" data-testid="maint-notice">{m}</div> }.into_any(),
            })}
            {move || match list.get() {
                None => view! { <Loading rows=2/> }.into_any(),
                Some(Err(e)) => view! { <ErrorState title="Cannot list the maintenance periods" message=e.message retry=Callback::new(move |_| data.bump_periods())/> }.into_any(),
                Some(Ok(v)) if v.is_empty() => view! {
                    <div data-testid="maint-active" data-count="0">
                        <EmptyState title="No maintenance in effect">
                            <p>"Services are monitored and alarms raised as usual."</p>
                        </EmptyState>
                    </div>
                }.into_any(),
                Some(Ok(v)) => {
                    let count = v.len().to_string();
                    view! {
                        <ul class="plain-list maint-list" data-testid="maint-active" data-count=count>
                            {v.into_iter().map(row).collect_view()}
                        </ul>
                    }.into_any()
                }
            }}
            <EndDialog ctl/>
        </section>
    }
}

/// "Turn on maintenance" (operators).
#[component]
pub(super) fn StartForm(data: PageData) -> impl IntoView {
    let scope = ScopeState::new(None, true);
    let reason = RwSignal::new(String::new());
    let until = RwSignal::new(local_input(now() + TimeDelta::hours(1)));
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    // (already open before, the period)
    let done = RwSignal::new(None::<(bool, MaintenancePeriod)>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        done.set(None);
        let sc = match untrack(|| scope.scope()) {
            Ok(s) => s,
            Err(m) => return error.set(Some(m)),
        };
        let why = reason.get_untracked().trim().to_string();
        if why.is_empty() {
            return error.set(Some("Say why (the banner shows it).".into()));
        }
        let Some(until) = parse_local_input(&until.get_untracked()) else {
            return error.set(Some("Give the expected end.".into()));
        };
        if until <= now() {
            return error.set(Some("The expected end is in the past.".into()));
        }
        let body = StartMaintenance {
            scope: sc,
            reason: why,
            until,
            actuate: untrack(|| scope.actuate_value()),
        };
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let r = api::maintenance::start_period(&body).await;
            busy.try_set(false);
            match r {
                Ok((status, p)) => {
                    let already = status == 200;
                    if !already {
                        reason.try_set(String::new());
                    }
                    done.try_set(Some((already, p)));
                    data.bump_periods();
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    let set_in = move |minutes: i64| {
        until.set(local_input(now() + TimeDelta::minutes(minutes)));
    };
    view! {
        <form class="card form-grid maint-form" data-testid="maint-start-form" on:submit=submit>
            <h2>"Turn on maintenance"</h2>
            <ScopeFields state=scope data prefix="maint"/>
            <label class="span-all">"Reason"
                <textarea rows="2" required maxlength="2000" data-testid="maint-reason"
                    placeholder="e.g. Upgrading Postgres to 16 (shown in the panel's banner, never on the public page)"
                    prop:value=move || reason.get() on:input=move |e| reason.set(event_target_value(&e))></textarea>
            </label>
            <div class="maint-until">
                <label>"Until"
                    <input type="datetime-local" required data-testid="maint-until"
                        prop:value=move || until.get() on:input=move |e| until.set(event_target_value(&e))/>
                </label>
                <div class="btn-row maint-quick" role="group" aria-label="Until, from now">
                    <span class="muted small">"from now:"</span>
                    {[("30 min", 30), ("1 h", 60), ("2 h", 120), ("4 h", 240)].into_iter().map(|(label, m)| view! {
                        <button type="button" class="btn btn-small btn-ghost" on:click=move |_| set_in(m)>{label}</button>
                    }).collect_view()}
                </div>
                <span class="hint">"Ends by itself then (extend it if needed); at most 7 days ahead."</span>
            </div>
            {move || error.get().map(|m| view! { <div class="notice notice-error span-all" role="alert" data-testid="maint-start-error">{m}</div> })}
            {move || done.get().map(|(already, p)| {
                let link = format!("/maintenance/{}", p.id);
                if already {
                    view! {
                        <div class="notice span-all" role="status" data-testid="maint-start-notice" data-already="true">
                            <span>"Already in maintenance — nothing changed: "</span>
                            <a href=link>{p.title.clone()}</a>
                            <span>" until "{local_hm(p.ends_at)}"."</span>
                        </div>
                    }.into_any()
                } else {
                    view! {
                        <div class="notice notice-ok span-all" role="status" data-testid="maint-start-notice" data-already="false">
                            <span>"Maintenance requested: "</span>
                            <a href=link>{p.title.clone()}</a>
                            <span>" until "{local_hm(p.ends_at)}"."</span>
                        </div>
                    }.into_any()
                }
            })}
            <div class="span-all btn-row">
                <button class="btn btn-primary" type="submit" data-testid="maint-submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Turning on…" } else { "⚒ Turn on maintenance" }}
                </button>
                <span class="hint">"Checks keep running; incidents and pages for these services are recorded as suppressed instead."</span>
            </div>
        </form>
    }
}

/// The last periods, newest first.
#[component]
pub(super) fn Recent(data: PageData) -> impl IntoView {
    let list = LocalResource::new(move || {
        data.periods_reload.get();
        api::maintenance::periods("all")
    });
    let list = Memo::new(move |_| list.get());
    view! {
        <section class="card maint-section" data-testid="maint-recent-section">
            <h2>"Recent"</h2>
            {move || match list.get() {
                None => view! { <Loading rows=3/> }.into_any(),
                Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| data.bump_periods())/> }.into_any(),
                Some(Ok(v)) if v.is_empty() => view! {
                    <div data-testid="maint-recent" data-count="0">
                        <EmptyState title="No maintenance yet">
                            <p>"Periods turned on by hand and occurrences of windows are listed here."</p>
                        </EmptyState>
                    </div>
                }.into_any(),
                Some(Ok(v)) => {
                    let count = v.len().to_string();
                    view! {
                        <div class="table-wrap"><table class="table maint-recent-table" data-testid="maint-recent" data-count=count>
                            <thead><tr>
                                <th>"Status"</th><th>"Maintenance"</th><th>"Scope"</th><th>"Started by"</th>
                                <th>"From"</th><th>"To"</th><th class="num">"Suppressed"</th>
                            </tr></thead>
                            <tbody>{v.into_iter().map(|p| {
                                let end = p.ended_at.unwrap_or(p.ends_at);
                                view! {
                                    <tr data-testid=format!("maint-recent-{}", p.id) data-status=p.status.as_str()>
                                        <td><PeriodStatusPill status=p.status/></td>
                                        <td class="cell-main"><a class="strong-link" href=format!("/maintenance/{}", p.id)>{p.title.clone()}</a>
                                            {p.window_id.map(|_| view! { " "<span class="tag">"window"</span> })}</td>
                                        <td class="wrap-anywhere">{scope_text(&p.scope)}</td>
                                        <td>{p.started_by.clone()}</td>
                                        <td class="nowrap" title=p.starts_at.format("%Y-%m-%d %H:%M UTC").to_string()>{local_text(p.starts_at)}</td>
                                        <td class="nowrap" title=end.format("%Y-%m-%d %H:%M UTC").to_string()>
                                            {local_text(end)}
                                            {p.ended_by.clone().map(|b| view! { <div class="muted small">"ended by "{b}</div> })}
                                        </td>
                                        <td class="num">{p.suppressed}</td>
                                    </tr>
                                }
                            }).collect_view()}</tbody>
                        </table></div>
                    }.into_any()
                }
            }}
        </section>
    }
}
