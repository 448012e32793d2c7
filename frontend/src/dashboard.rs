//! The dashboard (`/`): the status board of every service, grouped by tier
//! (Critical, Application, Support), with the overall banner, the engines'
//! state, host checks, search and a health filter; and the status pill of the
//! top bar. Each tier shows its first [`PAGE_ROWS`] rows (problems first)
//! and more on request, so thousands of services never render at once.
//! Both read the [`StatusStore`] (`status_store.rs`).

use std::time::Duration;

use leptos::prelude::*;
use opsdeck_wire::{Overall, Role, Tier};

use crate::live::use_inventory_events;
use crate::session::current_role;
use crate::states::{
    health_from, health_help, health_pill, health_rank, is_health_problem, overall_state,
    overall_str, sparkline, tier_label, uptime_text, CheckStatusPill, EngineStatePill, ALL_HEALTH,
};
use crate::status_store::{use_status_store, Phase, Row, StatusStore};
use crate::time::{duration_ms, RelTime};
use crate::ui::{EmptyState, ErrorState, Loading, Pill};

/// Rows a tier shows until asked for more (problems come first, so they
/// are always among them): a fleet of thousands of services never renders
/// at once.
const PAGE_ROWS: usize = crate::status_store::FIRST_SCREEN;

/// Rows rendered per frame once more are asked for, so the page keeps
/// painting in between.
const STEP: usize = 200;

/// The top bar's status pill, linking to the dashboard.
#[component]
pub fn TopbarStatus() -> impl IntoView {
    let store = use_status_store();
    let monitored = store.monitored();
    let counts = store.counts();
    let state = Memo::new(move |_| {
        let ready = store.phase.with(|p| match p {
            Phase::Loading => Some(false),
            Phase::Failed(_) => None,
            Phase::Ready => Some(true),
        });
        match (ready, store.overall.get()) {
            (Some(false), _) => ("unknown", "…", "Status", "loading"),
            (None, _) | (Some(true), None) => ("unknown", "?", "Status unavailable", "unavailable"),
            (Some(true), Some(o)) => {
                let (kind, icon, word, _) = overall_state(o);
                (kind, icon, word, overall_str(o))
            }
        }
    });
    let title = move || {
        if store.phase.with(|p| matches!(p, Phase::Failed(_))) {
            return "The status board cannot be loaded".to_string();
        }
        if !monitored.get() {
            return "No health checks yet".to_string();
        }
        let n = counts.get();
        let parts: Vec<String> = ALL_HEALTH
            .iter()
            .enumerate()
            .filter(|(i, _)| n[*i] > 0)
            .map(|(i, h)| format!("{} {}", n[i], h.as_str()))
            .collect();
        format!("Services: {}", parts.join(", "))
    };
    view! {
        <a href="/" class="topbar-status" data-testid="topbar-status"
            data-overall=move || state.get().3 title=title>
            {move || {
                let (kind, icon, word, _) = state.get();
                view! { <Pill kind icon word/> }
            }}
            {move || (!store.live.get() && store.phase.with(|p| *p == Phase::Ready)).then(|| view! {
                <span class="sr-only">" (not live)"</span>
            })}
        </a>
    }
}

#[component]
pub fn Dashboard() -> impl IntoView {
    let store = use_status_store();
    let role = current_role();
    crate::updates::provide_update_statuses();
    // Services added or removed, engines: fetch the board again.
    let inventory = RwSignal::new(0u32);
    use_inventory_events(inventory);
    Effect::new(move |prev: Option<u32>| {
        let n = inventory.get();
        if prev.is_some() {
            store.fetch();
        }
        n
    });
    // Coming back to the dashboard after the stream broke: catch up.
    if store
        .phase
        .with_untracked(|p| matches!(p, Phase::Failed(_)))
    {
        store.retry();
    } else if store.phase.with_untracked(|p| *p == Phase::Ready) && !store.live.get_untracked() {
        store.fetch();
    }

    let phase = Memo::new(move |_| {
        store.phase.with(|p| match p {
            Phase::Loading => 0,
            Phase::Ready => 1,
            Phase::Failed(_) => 2,
        })
    });

    view! {
        <div class="page-head">
            <h1>"Dashboard"</h1>
            <span class="spacer"></span>
            <a class="btn" href="/checks">"Checks"</a>
            <a class="btn" href="/status" target="_blank" rel="external noopener" data-testid="public-status-link">
                "Public status page "<span aria-hidden="true">"↗"</span>
            </a>
        </div>
        <crate::backups::BackupAlerts/>
        <crate::resources::ForecastNotice/>
        {move || match phase.get() {
            0 => view! { <Loading rows=6/> }.into_any(),
            2 => {
                let message = store.phase.with_untracked(|p| match p {
                    Phase::Failed(e) => e.message.clone(),
                    _ => String::new(),
                });
                view! {
                    <ErrorState title="Cannot load the status board" message
                        retry=Callback::new(move |_| store.retry())/>
                }
                .into_any()
            }
            _ => view! { <Board store role/> }.into_any(),
        }}
    }
}

#[component]
fn Board(store: StatusStore, role: Role) -> impl IntoView {
    let query = RwSignal::new(String::new());
    let filter = RwSignal::new("all".to_string());
    // Bumped when the search or the filter changes: the tier groups show
    // their first page again.
    let epoch = RwSignal::new(0u64);
    let bump = move || epoch.update(|e| *e += 1);
    let monitored = store.monitored();
    let has_services = Memo::new(move |_| store.services.with(|v| !v.is_empty()));

    let filtered = Memo::new(move |_| {
        let q = query.get().trim().to_lowercase();
        let f = filter.get();
        let only = health_from(&f);
        let problems = f == "problems";
        let mut rows: Vec<Row> = store.services.with(|v| {
            v.iter()
                .filter(|r| {
                    (!problems || is_health_problem(r.s.health))
                        && only.is_none_or(|h| r.s.health == h)
                        && (q.is_empty()
                            || r.s.name.to_lowercase().contains(&q)
                            || r.s
                                .public_name
                                .as_deref()
                                .is_some_and(|p| p.to_lowercase().contains(&q)))
                })
                .cloned()
                .collect()
        });
        // Stable: names stay in order within the same tier and health.
        rows.sort_by_key(|r| (r.s.tier, health_rank(r.s.health)));
        rows
    });

    view! {
        <Banner store monitored/>
        {move || store.stale.get().map(|m| view! {
            <div class="notice notice-error" role="alert">"Showing the last known status: "{m}</div>
        })}
        <EngineStrip store/>
        <Show when=move || has_services.get() fallback=move || view! {
            <EmptyState title="No services yet">
                {if role >= Role::Admin {
                    view! {
                        <p>"Import a compose file on the "<a href="/inventory">"Inventory import"</a>" page: its services appear here with their health."</p>
                        <a class="btn btn-primary" href="/inventory">"Import a compose file"</a>
                    }.into_any()
                } else {
                    view! { <p>"An admin imports them from a docker-compose file ("<a href="/inventory">"Inventory import"</a>")."</p> }.into_any()
                }}
            </EmptyState>
        }>
            <Show when=move || !monitored.get()>
                <div class="notice" role="status" data-testid="no-checks">
                    <span aria-hidden="true">"ℹ"</span>
                    <span><strong>"No checks yet. "</strong>"Services show as unknown until they have health checks: open a service to add some, or add host checks on the "<a href="/checks">"Checks"</a>" page."</span>
                </div>
            </Show>
            <div class="toolbar">
                <input class="search" type="search" placeholder="Search services" aria-label="Search services"
                    data-testid="dashboard-search"
                    prop:value=move || query.get() on:input=move |e| { bump(); query.set(event_target_value(&e)); }/>
                <select aria-label="Health filter" data-testid="dashboard-filter"
                    on:change=move |e| { bump(); filter.set(event_target_value(&e)); }>
                    <option value="all" prop:selected=move || filter.get() == "all">"All services"</option>
                    <option value="problems" prop:selected=move || filter.get() == "problems">"Problems only"</option>
                    {ALL_HEALTH.iter().map(|h| {
                        let v = h.as_str();
                        view! { <option value=v prop:selected=move || filter.get() == v>{health_pill(*h).2}</option> }
                    }).collect_view()}
                </select>
                <span class="muted small" data-testid="dashboard-shown">{move || {
                    let shown = filtered.with(Vec::len);
                    let total = store.services.with(Vec::len);
                    if let Some(all) = store.tier_totals.with(|t| t.as_ref().map(|t| t.values().sum::<u32>())) {
                        return format!("first {shown} of {all} services (loading the rest…)");
                    }
                    if shown == total { format!("{total} service{}", if total == 1 { "" } else { "s" }) } else { format!("{shown} of {total} services") }
                }}</span>
            </div>
            <Show when=move || filtered.with(Vec::is_empty)>
                <EmptyState title="No services match">
                    <p>"Change the search, or show all services."</p>
                    <button class="btn" on:click=move |_| { bump(); query.set(String::new()); filter.set("all".into()); }>"Show all"</button>
                </EmptyState>
            </Show>
            {Tier::ALL.into_iter().map(|tier| {
                let rows = Memo::new(move |_| {
                    filtered.with(|v| v.iter().filter(|r| r.s.tier == tier).cloned().collect::<Vec<_>>())
                });
                // While only the first screen is here, the tier's real size.
                let total = Signal::derive(move || {
                    let unfiltered = query.with(|q| q.trim().is_empty()) && filter.with(|f| f == "all");
                    store.tier_totals.with(|t| t.as_ref().filter(|_| unfiltered).map(|t| t.get(&tier).copied().unwrap_or(0) as usize))
                });
                view! { <TierGroup tier rows known_total=total epoch/> }
            }).collect_view()}
        </Show>
        <HostChecks store/>
    }
}

#[component]
fn Banner(store: StatusStore, monitored: Memo<bool>) -> impl IntoView {
    let counts = store.counts();
    // Before the first board arrives nothing is known: never "operational".
    let overall = Memo::new(move |_| store.overall.get().unwrap_or(Overall::Unmonitored));
    view! {
        <section class=move || format!("banner banner-{}", overall_state(overall.get()).0)
            data-testid="dashboard-banner" data-overall=move || overall_str(overall.get()) role="status" aria-live="polite">
            <span class="banner-icon" aria-hidden="true">{move || overall_state(overall.get()).1}</span>
            <div class="banner-text">
                <strong class="banner-title">{move || overall_state(overall.get()).3}</strong>
                <div class="banner-counts">
                    {move || {
                        let n = counts.get();
                        if n.iter().all(|c| *c == 0) {
                            return view! { <span class="muted">"No services yet"</span> }.into_any();
                        }
                        ALL_HEALTH.iter().enumerate().filter(|(i, _)| n[*i] > 0).map(|(i, h)| {
                            let (kind, icon, word) = health_pill(*h);
                            view! {
                                <span class=format!("count-chip ck-{kind}") data-testid=format!("count-{}", h.as_str())>
                                    <span aria-hidden="true">{icon}</span>" "<strong>{n[i]}</strong>" "{word}
                                </span>
                            }
                        }).collect_view().into_any()
                    }}
                    {move || (!monitored.get()).then(|| view! { <span class="muted">"· no checks yet"</span> })}
                    {move || (overall.get() == Overall::Unmonitored).then(|| view! {
                        <span data-testid="banner-add-checks">" · "<a href="/checks">"Add checks"</a>
                            " (or import a compose file with its proposed checks on the "<a href="/inventory">"Inventory import"</a>" page)"</span>
                    })}
                </div>
            </div>
            <span class="spacer"></span>
            {move || if store.live.get() {
                view! { <span class="live-state" title="Updates arrive live"><span class="live-dot" aria-hidden="true"></span>" Live"</span> }.into_any()
            } else {
                view! { <span class="live-state muted" title="The live connection is down: reconnecting">"○ Reconnecting…"</span> }.into_any()
            }}
        </section>
    }
}

#[component]
fn EngineStrip(store: StatusStore) -> impl IntoView {
    move || {
        store.engines.with(|engines| {
            (!engines.is_empty()).then(|| {
                view! {
                    <div class="engine-strip" data-testid="engine-strip">
                        <a href="/engines" class="muted small">"Engines"</a>
                        {engines.iter().map(|e| view! {
                            <span class="engine-chip" title=e.last_error.clone().unwrap_or_else(|| e.endpoint.clone())>
                                <strong>{e.name.clone()}</strong>" "
                                <EngineStatePill state=e.state testid=format!("dashboard-engine-{}", e.name)/>
                            </span>
                        }).collect_view()}
                    </div>
                }
            })
        })
    }
}

#[component]
fn TierGroup(
    tier: Tier,
    rows: Memo<Vec<Row>>,
    /// The tier's size while only its first screen is loaded.
    known_total: Signal<Option<usize>>,
    epoch: RwSignal<u64>,
) -> impl IntoView {
    // (epoch, rows asked for, rows rendered): a new search or filter starts
    // again from one page.
    let state = RwSignal::new((0u64, PAGE_ROWS, PAGE_ROWS));
    let current = move || {
        let e = epoch.get();
        state.with(|&(se, want, have)| {
            if se == e {
                (want, have)
            } else {
                (PAGE_ROWS, PAGE_ROWS)
            }
        })
    };
    let limit = move || current().1;
    let ask = move |more: usize| {
        let e = epoch.get_untracked();
        state.update(|s| {
            if s.0 != e {
                *s = (e, PAGE_ROWS, PAGE_ROWS);
            }
            s.1 = s.1.saturating_add(more);
        });
    };
    // Render what was asked for in steps, letting the browser paint in
    // between.
    Effect::new(move |_| {
        let (want, have) = current();
        if have < want && rows.with(Vec::len) > have {
            request_animation_frame(move || {
                set_timeout(
                    move || {
                        let Some(e) = epoch.try_get_untracked() else {
                            return;
                        };
                        state.try_update(|s| {
                            if s.0 == e {
                                s.2 = (s.2 + STEP).min(s.1);
                            }
                        });
                    },
                    Duration::ZERO,
                )
            });
        }
    });
    let problems = Memo::new(move |_| {
        rows.with(|v| v.iter().filter(|r| is_health_problem(r.s.health)).count())
    });
    let slug = tier.as_str();
    view! {
        <Show when=move || rows.with(|v| !v.is_empty())>
            <section class="tier-group" data-testid=format!("status-tier-{slug}")>
                <h2>
                    {tier_label(tier)}" "<span class="count">{move || known_total.get().unwrap_or_else(|| rows.with(Vec::len))}</span>
                    {move || match problems.get() {
                        0 => ().into_any(),
                        n => view! { <span class="problem-text small">{format!("▲ {n} need{} attention", if n == 1 { "s" } else { "" })}</span> }.into_any(),
                    }}
                </h2>
                <ul class="health-list">
                    <For each=move || { let l = limit(); rows.with(|v| v.iter().take(l).cloned().collect::<Vec<_>>()) }
                        key=|r: &Row| r.rev
                        children=service_row/>
                </ul>
                {move || {
                    let (total, (want, have)) = (rows.with(Vec::len), current());
                    if let Some(all) = known_total.get().filter(|&all| all > total) {
                        view! { <p class="muted small more-row" role="status">{format!("{total} of {all} shown; loading the rest…")}</p> }.into_any()
                    } else if have < want.min(total) {
                        view! { <p class="muted small more-row" role="status">"Showing more…"</p> }.into_any()
                    } else if total > have {
                        let rest = total - have;
                        view! {
                            <p class="more-row">
                                <span class="muted small">{format!("{have} of {total} shown")}</span>" "
                                <button class="btn btn-small" data-testid=format!("show-more-{slug}")
                                    on:click=move |_| ask(PAGE_ROWS)>{format!("Show {} more", rest.min(PAGE_ROWS))}</button>
                                {(rest > PAGE_ROWS).then(|| view! {
                                    " "<button class="btn btn-small" data-testid=format!("show-all-{slug}")
                                        on:click=move |_| ask(usize::MAX)>{format!("Show all {total}")}</button>
                                })}
                            </p>
                        }.into_any()
                    } else {
                        ().into_any()
                    }
                }}
            </section>
        </Show>
    }
}

fn service_row(r: Row) -> impl IntoView {
    let s = r.s;
    let (kind, icon, word) = health_pill(s.health);
    let problems = s.problems.len();
    let shown: Vec<String> = s.problems.iter().take(2).cloned().collect();
    let all_problems = s.problems.join("\n");
    view! {
        <li class=format!("health-row hr-{kind}") data-testid=format!("service-row-{}", s.name) data-health=s.health.as_str()>
            <div class="hr-main">
                <a class="strong-link" href=format!("/services/{}", s.service_id)>{s.name.clone()}</a>
                {crate::updates::badge(s.service_id, s.name.clone())}
                <div class="hr-state">
                    // The pill without a component (no reactive props): rows are many.
                    <span class=format!("pill pill-{kind}") title=health_help(s.health)>
                        <span aria-hidden="true">{icon}</span>" "{word}
                    </span>
                    {s.since.map(|at| view! { <span class="muted small">"since "<RelTime at=Some(at)/></span> })}
                </div>
            </div>
            <div class="hr-detail">
                {(!s.impacted_by.is_empty()).then(|| view! {
                    <div class="impacted small">"impacted by "<strong>{s.impacted_by.join(", ")}</strong></div>
                })}
                {(problems > 0).then(|| view! {
                    <ul class="problems small" title=all_problems>
                        {shown.into_iter().map(|p| view! { <li class="clamp-1">{p}</li> }).collect_view()}
                        {(problems > 2).then(|| view! { <li class="muted">{format!("+{} more", problems - 2)}</li> })}
                    </ul>
                })}
                {(s.checks == 0).then(|| view! { <span class="muted small">"no checks"</span> })}
                {s.maintenance.as_ref().map(|m| crate::maintenance::service_mark(m, &s.name))}
            </div>
            <div class="hr-spark" title="Latency, last 30 minutes">{sparkline(&s.sparkline)}</div>
            <div class="hr-uptime" title="Uptime, last 24 hours">
                <strong>{uptime_text(s.uptime.day)}</strong>
                <span class="muted small">"24 h"</span>
            </div>
        </li>
    }
}

/// One line per host: its worst state, what fails, the services on it.
#[component]
fn Hosts(store: StatusStore) -> impl IntoView {
    move || {
        store.hosts.with(|hosts| {
            (hosts.iter().any(|h| h.engine.is_some())).then(|| {
                view! {
                    <ul class="host-list" data-testid="hosts">
                        {hosts.iter().map(|h| {
                            let detail = if h.problems.is_empty() {
                                format!("{} checks", h.checks)
                            } else {
                                h.problems.join("; ")
                            };
                            let services = (!h.services.is_empty())
                                .then(|| format!("Services on it: {}", h.services.join(", ")));
                            view! {
                                <li data-testid=format!("host-{}", h.name) data-status=h.status.as_str()>
                                    <CheckStatusPill status=h.status/>" "
                                    <strong>{h.name.clone()}</strong>": "{detail}
                                    {services.map(|s| view! { <div class="muted small">{s}</div> })}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }
            })
        })
    }
}

#[component]
fn HostChecks(store: StatusStore) -> impl IntoView {
    move || {
        store.host_checks.with(|list| {
            (!list.is_empty()).then(|| {
                view! {
                    <section class="tier-group" data-testid="host-checks">
                        <h2>"Host checks "<span class="count">{list.len()}</span></h2>
                        <Hosts store=store/>
                        <div class="table-wrap"><table class="table">
                            <thead><tr><th class="col-state">"Status"</th><th>"Check"</th><th>"Last result"</th><th class="num">"Latency"</th><th>"Last probe"</th></tr></thead>
                            <tbody>{list.iter().map(|c| view! {
                                <tr data-testid=format!("host-check-{}", c.name) data-status=c.status.as_str()>
                                    <td><CheckStatusPill status=c.status/></td>
                                    <td class="cell-main"><a class="strong-link" href="/checks">{c.name.clone()}</a>
                                        <div class="muted small">{crate::checks::kind_label(c.spec.kind())}</div></td>
                                    <td class="cell-error">{c.last.as_ref().map(|l| l.message.clone()).unwrap_or_default()}</td>
                                    <td class="num">{c.last.as_ref().and_then(|l| l.latency_ms).map(|ms| duration_ms(ms.round() as i64)).unwrap_or_else(|| "—".into())}</td>
                                    <td><RelTime at=c.last.as_ref().map(|l| l.at)/></td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table></div>
                    </section>
                }
            })
        })
    }
}
