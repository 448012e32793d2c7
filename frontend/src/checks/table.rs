//! The checks table ([`CheckTable`]): shared by the checks page and the
//! service page; operators get "Run now", edit and delete.

use super::*;

/// A key that changes when what a check row shows changes.
pub(super) type CheckKey = (
    i64,
    String,
    Option<String>,
    CheckStatus,
    bool,
    Option<i64>,
    Option<String>,
    String,
    Option<i64>,
);

pub(super) fn check_key(c: &Check) -> CheckKey {
    (
        c.id,
        c.name.clone(),
        c.service.clone(),
        c.status,
        c.enabled,
        c.last.as_ref().map(|l| l.at.timestamp_millis()),
        c.last.as_ref().map(|l| l.message.clone()),
        target_of(&c.spec),
        c.status_since.map(|t| t.timestamp_millis()),
    )
}

/// The checks as a table. Clicking a name selects the check (its history
/// opens below, shown by the caller); operators get "Run now", edit and
/// delete.
#[component]
pub fn CheckTable(
    #[prop(into)] checks: Signal<Vec<Check>>,
    /// Adds a service column (the checks page).
    #[prop(optional)]
    show_service: bool,
    selected: RwSignal<Option<i64>>,
    on_edit: Callback<Check>,
    /// After a run or a deletion.
    on_changed: Callback<()>,
) -> impl IntoView {
    let operator = current_role() >= Role::Operator;
    let running = RwSignal::new(None::<i64>);
    let run_result = RwSignal::new(None::<(String, Result<ProbeResult, String>)>);
    let notice = RwSignal::new(None::<Result<String, String>>);
    let delete_target = RwSignal::new(None::<(i64, String)>);
    let delete_open = RwSignal::new(false);
    let limit = RwSignal::new(PAGE);

    let run = move |id: i64, name: String| {
        running.set(Some(id));
        run_result.set(None);
        leptos::task::spawn_local(async move {
            let r = api::checks::run(id).await;
            running.try_set(None);
            run_result.try_set(Some((name, r.map_err(|e| e.message))));
            on_changed.run(());
        });
    };
    let delete = Callback::new(move |_| {
        let Some((id, name)) = delete_target.get_untracked() else {
            return;
        };
        leptos::task::spawn_local(async move {
            let r = api::checks::remove(id).await;
            notice.try_set(Some(
                r.map(|_| format!("Deleted check {name}."))
                    .map_err(|e| e.message),
            ));
            if selected.try_get_untracked().flatten() == Some(id) {
                selected.try_set(None);
            }
            on_changed.run(());
        });
    });

    let row = move |c: Check| {
        let id = c.id;
        let name = c.name.clone();
        let for_edit = c.clone();
        let run_name = c.name.clone();
        let del_name = c.name.clone();
        let last_at = c.last.as_ref().map(|l| l.at);
        let message = c
            .last
            .as_ref()
            .map(|l| l.message.clone())
            .unwrap_or_default();
        let latency = latency_text(c.last.as_ref().and_then(|l| l.latency_ms));
        let target = target_of(&c.spec);
        view! {
            <tr data-testid=format!("check-row-{}", c.name) data-status=c.status.as_str()
                class:row-selected=move || selected.get() == Some(id)>
                <td class="cell-main">
                    <button type="button" class="link-button strong-link" data-testid=format!("check-open-{name}")
                        aria-expanded=move || (selected.get() == Some(id)).to_string()
                        title="Show the history"
                        on:click=move |_| selected.update(|s| *s = if *s == Some(id) { None } else { Some(id) })>
                        {name.clone()}
                    </button>
                    {(!c.enabled).then(|| view! { <span class="edited" title="Paused: not probed">"paused"</span> })}
                    <div class="muted small check-target" title=target.clone()>{target.clone()}</div>
                </td>
                {show_service.then(|| match (c.service_id, c.service.clone()) {
                    (Some(sid), name) => view! {
                        <td><a href=format!("/services/{sid}")>{name.unwrap_or_else(|| format!("#{sid}"))}</a></td>
                    }.into_any(),
                    (None, _) => view! { <td><span class="muted">"host"</span></td> }.into_any(),
                })}
                <td class="nowrap">{kind_label(c.spec.kind())}</td>
                <td>
                    <CheckStatusPill status=c.status testid=format!("check-status-{}", c.name)/>
                    {c.status_since.map(|at| view! { <div class="muted small">"since "<RelTime at=Some(at)/></div> })}
                </td>
                <td class="cell-error"><span class="clamp" title=message.clone()>{message.clone()}</span></td>
                <td class="num nowrap">{latency}</td>
                <td class="nowrap"><RelTime at=last_at/></td>
                {operator.then(|| view! {
                    <td><div class="actions">
                        <button class="btn btn-small" data-testid=format!("check-run-{}", run_name)
                            disabled=move || running.get().is_some()
                            on:click=move |_| run(id, run_name.clone())>
                            {move || if running.get() == Some(id) { "Running…" } else { "Run now" }}
                        </button>
                        <button class="btn btn-small" data-testid=format!("check-edit-{}", c.name)
                            on:click=move |_| on_edit.run(for_edit.clone())>"Edit"</button>
                        <button class="btn btn-small btn-danger" data-testid=format!("check-delete-{}", c.name)
                            on:click=move |_| { delete_target.set(Some((id, del_name.clone()))); delete_open.set(true); }>"Delete"</button>
                    </div></td>
                })}
            </tr>
        }
    };

    view! {
        {move || notice.get().map(|n| match n {
            Ok(m) => view! { <div class="notice notice-ok" role="status">{m}</div> }.into_any(),
            Err(m) => view! { <div class="notice notice-error" role="alert">{m}</div> }.into_any(),
        })}
        {move || run_result.get().map(|(name, r)| match r {
            Ok(p) => {
                let (kind, _, _) = check_status(p.status);
                view! {
                    <div class=format!("action-result run-result rr-{kind}") role="status" data-testid="run-result">
                        <div class="action-line">
                            <strong>{name}</strong>
                            <CheckStatusPill status=p.status/>
                            <span>{p.message.clone()}</span>
                            {p.latency_ms.map(|ms| view! { <span class="muted">{format!("· {}", duration_ms(ms.round() as i64))}</span> })}
                            <span class="spacer"></span>
                            <button class="btn btn-ghost btn-small" aria-label="Dismiss" on:click=move |_| run_result.set(None)>"✕"</button>
                        </div>
                        {(!p.metrics.is_empty()).then(|| view! {
                            <ul class="chips small">{p.metrics.iter().map(|m| view! {
                                <li><span class="muted">{m.name.clone()}</span>" "{format!("{}", (m.value * 100.0).round() / 100.0)}</li>
                            }).collect_view()}</ul>
                        })}
                    </div>
                }.into_any()
            }
            Err(m) => view! {
                <div class="action-result action-result-error" role="alert" data-testid="run-result">
                    <Pill kind="outage" icon="✕" word="refused"/>" "<strong>{name}</strong>" "<span>{m}</span>
                </div>
            }.into_any(),
        })}
        <Confirm open=delete_open
            title=Signal::derive(move || delete_target.get().map(|(_, n)| format!("Delete check {n}?")).unwrap_or_default())
            message=Signal::derive(move || delete_target.get().map(|(_, n)| format!("{n} stops being probed; its history goes with it.")).unwrap_or_default())
            confirm_label="Delete" on_confirm=delete/>
        <div class="table-wrap"><table class="table checks-table" data-testid="checks-table">
            <thead><tr>
                <th>"Check"</th>
                {show_service.then(|| view! { <th>"Service"</th> })}
                <th>"Kind"</th><th>"Status"</th><th>"Last result"</th><th class="num">"Latency"</th><th>"Last probe"</th>
                {operator.then(|| view! { <th><span class="sr-only">"Actions"</span></th> })}
            </tr></thead>
            <tbody>
                <For each=move || checks.with(|v| v.iter().take(limit.get()).cloned().collect::<Vec<_>>())
                    key=check_key children=row/>
            </tbody>
        </table></div>
        {move || {
            let n = checks.with(Vec::len);
            let l = limit.get();
            (n > l).then(|| view! {
                <div class="btn-row more-row">
                    <span class="muted small">{format!("{l} of {n} shown.")}</span>
                    <button class="btn" on:click=move |_| limit.set(usize::MAX)>{format!("Show all {n}")}</button>
                </div>
            })
        }}
    }
}
