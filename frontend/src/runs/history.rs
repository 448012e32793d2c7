//! The run history (`/runs`): every run, filtered by state and runbook,
//! live while something runs.

use super::*;

// ---------------------------------------------------------------- history

#[component]
pub fn Runs() -> impl IntoView {
    let query = use_query_map();
    let navigate = use_navigate();
    let status = Memo::new(move |_| query.with(|q| q.get("status").unwrap_or_default()));
    let runbook =
        Memo::new(move |_| query.with(|q| q.get("runbook").and_then(|s| s.parse::<i64>().ok())));
    let reload = RwSignal::new(0u32);
    let bump = move || {
        reload.try_update(|n| *n = n.wrapping_add(1));
    };
    let list = LocalResource::new(move || {
        reload.get();
        let st = status.get();
        let rb = runbook.get();
        async move { api::runs::list(&st, rb).await }
    });
    let runbooks = LocalResource::new(api::runbooks::list);
    let data = Memo::new(move |_| list.get());
    let any_active = Memo::new(move |_| {
        data.with(|d| matches!(d, Some(Ok(v)) if v.iter().any(|r| r.status.is_active())))
    });
    // Live while something runs.
    use_interval(Duration::from_secs(3), move || {
        if any_active.get_untracked() {
            bump();
        }
    });
    let now = RwSignal::new(now_utc());
    use_interval(Duration::from_secs(1), move || {
        if any_active.get_untracked() {
            now.set(now_utc());
        }
    });

    let set_filter = move |status: String, runbook: Option<i64>| {
        let mut q = Vec::new();
        if !status.is_empty() {
            q.push(format!("status={}", enc(&status)));
        }
        if let Some(rb) = runbook {
            q.push(format!("runbook={rb}"));
        }
        let url = if q.is_empty() {
            "/runs".to_string()
        } else {
            format!("/runs?{}", q.join("&"))
        };
        navigate(
            &url,
            NavigateOptions {
                replace: true,
                ..Default::default()
            },
        );
    };
    let set_status = {
        let set_filter = set_filter.clone();
        move |e: leptos::ev::Event| set_filter(event_target_value(&e), runbook.get_untracked())
    };
    let set_runbook = move |e: leptos::ev::Event| {
        set_filter(
            status.get_untracked(),
            event_target_value(&e).parse::<i64>().ok(),
        )
    };
    let filtered = move || !status.get().is_empty() || runbook.get().is_some();

    let row = move |r: RunSummary| {
        let id = r.id;
        view! {
            <tr data-testid=format!("run-row-{id}") data-status=r.status.as_str()>
                <td class="cell-main">
                    <a class="strong-link" href=format!("/runs/{id}")>{r.title.clone()}</a>
                    <div class="muted small">"#"{id}" · "<code>{r.runbook.clone()}</code>" v"{r.version}</div>
                </td>
                <td><RunStatusPill status=r.status testid=format!("run-status-{id}")/></td>
                <td class="wrap-anywhere">{target_text(&r.target)}</td>
                <td class="nowrap">{r.requested_by.clone()}
                    {r.schedule_id.map(|_| view! { <div class="muted small">"◷ schedule"</div> })}</td>
                <td class="cell-error"><span class="clamp" title=r.reason.clone()>{r.reason.clone()}</span></td>
                <td class="nowrap"><RelTime at=r.started_at.or(Some(r.created_at))/></td>
                <td class="nowrap num">{move || elapsed(r.started_at, r.finished_at, now.get()).unwrap_or_else(|| "—".into())}</td>
                <td><Progress done=r.done_steps total=r.total_steps/></td>
            </tr>
        }
    };

    view! {
        <div class="page-head">
            <h1>"Runs"</h1>
            <span class="spacer"></span>
            <a class="btn" href="/runbooks">"Runbooks"</a>
        </div>
        <p class="lede">"Every run of a runbook: who started it and why, what it did, how it ended."</p>
        <div class="toolbar">
            <select aria-label="Status filter" data-testid="runs-status-filter" on:change=set_status>
                <option value="" prop:selected=move || status.get().is_empty()>"All statuses"</option>
                {ALL_RUN_STATUSES.iter().map(|s| {
                    let s = *s;
                    view! { <option value=s.as_str() prop:selected=move || status.get() == s.as_str()>{s.as_str()}</option> }
                }).collect_view()}
            </select>
            <select aria-label="Runbook filter" data-testid="runs-runbook-filter" on:change=set_runbook>
                <option value="" prop:selected=move || runbook.get().is_none()>"All runbooks"</option>
                {move || runbooks.get().and_then(Result::ok).map(|mut v| {
                    v.sort_by(|a, b| a.title.cmp(&b.title));
                    v.into_iter().map(|rb| {
                        let id = rb.id;
                        view! { <option value=id.to_string() prop:selected=move || runbook.get() == Some(id)>{rb.title}</option> }
                    }).collect_view()
                })}
            </select>
            {move || any_active.get().then(|| view! {
                <span class="live-state muted"><span class="live-dot" aria-hidden="true"></span>"live"</span>
            })}
        </div>
        {move || match data.get() {
            None => view! { <Loading rows=5/> }.into_any(),
            Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| bump())/> }.into_any(),
            Some(Ok(v)) if v.is_empty() => if filtered() {
                view! {
                    <EmptyState title="No runs match">
                        <p>"Change the filters to see other runs."</p>
                        <a class="btn" href="/runs">"Show all runs"</a>
                    </EmptyState>
                }.into_any()
            } else {
                view! {
                    <div data-testid="runs-table" data-count="0">
                        <EmptyState title="No runs yet">
                            <p>"Start a runbook on the "<a href="/runbooks">"Runbooks"</a>" page; its runs appear here."</p>
                        </EmptyState>
                    </div>
                }.into_any()
            },
            Some(Ok(v)) => {
                let count = v.len().to_string();
                view! {
                    <div class="table-wrap"><table class="table runs-table" data-testid="runs-table" data-count=count>
                        <thead><tr>
                            <th>"Run"</th><th>"Status"</th><th>"Target"</th><th>"Requested by"</th><th>"Reason"</th>
                            <th>"Started"</th><th class="num">"Duration"</th><th>"Progress"</th>
                        </tr></thead>
                        <tbody>{v.into_iter().map(row).collect_view()}</tbody>
                    </table></div>
                }.into_any()
            }
        }}
    }
}
