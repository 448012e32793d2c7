//! `/admin/audit`: the append-only, hash-chained audit log, newest first.
//! Filters (actor, action, outcome, free text), "Load older" paging, each
//! entry's parameters on demand, and a check of the whole chain.

use leptos::prelude::*;
use opsdeck_wire::{AuditEntry, AuditPage, AuditVerifyReport, Outcome};

use crate::api::{self, enc};
use crate::icons::{Icon, IconName};
use crate::time::RelTime;
use crate::ui::{use_toasts, EmptyState, ErrorState, PageHeader, Pill, SkeletonRows, Tone};

const COLS: usize = 7;
const PAGE: u32 = 50;

#[derive(Debug, Clone, Default, PartialEq)]
struct Filters {
    actor: String,
    action: String,
    outcome: String,
    text: String,
}

impl Filters {
    fn is_empty(&self) -> bool {
        self == &Filters::default()
    }

    fn query(&self, before: Option<i64>) -> String {
        let mut q = format!("/api/v1/audit?limit={PAGE}");
        for (k, v) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("outcome", &self.outcome),
            ("q", &self.text),
        ] {
            let v = v.trim();
            if !v.is_empty() {
                q.push_str(&format!("&{k}={}", enc(v)));
            }
        }
        if let Some(b) = before {
            q.push_str(&format!("&before={b}"));
        }
        q
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Status {
    /// First page loading, nothing to show yet.
    Loading,
    Ready,
    Failed(String),
}

#[component]
pub fn Audit() -> impl IntoView {
    let toasts = use_toasts();
    // What the inputs hold, and what the shown entries were loaded with.
    let draft = RwSignal::new(Filters::default());
    let applied = RwSignal::new(Filters::default());
    let entries = RwSignal::new(Vec::<AuditEntry>::new());
    let next_before = RwSignal::new(None::<i64>);
    let status = RwSignal::new(Status::Loading);
    let refreshing = RwSignal::new(false);
    let loading_more = RwSignal::new(false);
    let verify = RwSignal::new(None::<Result<AuditVerifyReport, String>>);
    let verifying = RwSignal::new(false);
    // Answers to an older request are dropped when a newer one was made.
    let generation = StoredValue::new(0u64);

    let load = move |more: bool| {
        let filters = if more {
            applied.get_untracked()
        } else {
            draft.get_untracked()
        };
        let before = if more {
            next_before.get_untracked()
        } else {
            None
        };
        if more && before.is_none() {
            return;
        }
        let gen = generation.get_value() + 1;
        generation.set_value(gen);
        if more {
            loading_more.set(true);
        } else if status.get_untracked() == Status::Ready {
            refreshing.set(true);
        } else {
            status.set(Status::Loading);
        }
        let path = filters.query(before);
        leptos::task::spawn_local(async move {
            let r = api::get::<AuditPage>(&path).await;
            if generation.try_get_value() != Some(gen) {
                return;
            }
            loading_more.set(false);
            refreshing.set(false);
            match r {
                Ok(page) => {
                    next_before.set(page.next_before);
                    if more {
                        entries.update(|e| e.extend(page.entries));
                    } else {
                        entries.set(page.entries);
                        applied.set(filters);
                    }
                    status.set(Status::Ready);
                }
                Err(e) if more || status.get_untracked() == Status::Ready => {
                    toasts.error(e.message)
                }
                Err(e) => status.set(Status::Failed(e.message)),
            }
        });
    };
    load(false);

    let run_verify = move |_| {
        verifying.set(true);
        verify.set(None);
        leptos::task::spawn_local(async move {
            let r = api::get::<AuditVerifyReport>("/api/v1/audit/verify").await;
            verifying.set(false);
            verify.set(Some(r.map_err(|e| e.message)));
        });
    };

    let clear = move || {
        draft.set(Filters::default());
        load(false);
    };

    let set = move |f: fn(&mut Filters, String)| {
        move |e: leptos::ev::Event| draft.update(|d| f(d, event_target_value(&e)))
    };

    view! {
        <PageHeader title="Audit log" lede="Every sign-in and change, newest first. Entries are chained by hashes, so changes to old entries are detected.">
            <button type="button" class="btn btn-secondary" data-testid="verify-chain" disabled=move || verifying.get() on:click=run_verify>
                <Icon name=IconName::Shield/>{move || if verifying.get() { "Verifying…" } else { "Verify chain" }}
            </button>
        </PageHeader>
        {move || verify.get().map(|v| {
            let dismiss = move |_| verify.set(None);
            match v {
                Ok(r) if r.ok => view! {
                    <div class="notice notice-ok" role="status" data-testid="verify-result">
                        <Icon name=IconName::CheckCircle/>
                        <span><strong>"Chain intact."</strong>" "{r.checked}" entries checked; none was changed or removed."</span>
                        <button type="button" class="btn btn-ghost btn-icon btn-small" aria-label="Dismiss" on:click=dismiss><Icon name=IconName::Close/></button>
                    </div>
                }.into_any(),
                Ok(r) => view! {
                    <div class="notice notice-error" role="alert" data-testid="verify-result">
                        <Icon name=IconName::XCircle/>
                        <span><strong>"Chain broken."</strong>" "{r.problem.unwrap_or_else(|| "The log does not match its hashes.".into())}
                            " ("{r.checked}" entries checked.) Treat the log as tampered with and investigate."</span>
                        <button type="button" class="btn btn-ghost btn-icon btn-small" aria-label="Dismiss" on:click=dismiss><Icon name=IconName::Close/></button>
                    </div>
                }.into_any(),
                Err(e) => view! {
                    <div class="notice notice-error" role="alert" data-testid="verify-result">
                        <Icon name=IconName::Warning/>
                        <span>"Could not verify the chain: "{e}</span>
                        <button type="button" class="btn btn-ghost btn-icon btn-small" aria-label="Dismiss" on:click=dismiss><Icon name=IconName::Close/></button>
                    </div>
                }.into_any(),
            }
        })}
        <form class="toolbar filters" role="search" aria-label="Filter the audit log"
            on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); load(false); }>
            <input type="search" placeholder="Actor" aria-label="Actor" data-testid="audit-actor"
                prop:value=move || draft.with(|d| d.actor.clone()) on:input=set(|d, v| d.actor = v)/>
            <input type="search" placeholder="Action, e.g. user." aria-label="Action" data-testid="audit-action"
                prop:value=move || draft.with(|d| d.action.clone()) on:input=set(|d, v| d.action = v)/>
            <select aria-label="Outcome" data-testid="audit-outcome"
                prop:value=move || draft.with(|d| d.outcome.clone())
                on:change=move |e| { draft.update(|d| d.outcome = event_target_value(&e)); load(false); }>
                <option value="">"Any outcome"</option>
                <option value="success">"Success"</option>
                <option value="failure">"Failure"</option>
                <option value="denied">"Denied"</option>
            </select>
            <input type="search" class="grow" placeholder="Text in target, parameters or detail" aria-label="Text" data-testid="audit-text"
                prop:value=move || draft.with(|d| d.text.clone()) on:input=set(|d, v| d.text = v)/>
            <button type="submit" class="btn btn-secondary" data-testid="audit-apply"><Icon name=IconName::Search/>"Apply"</button>
            <Show when=move || !draft.with(Filters::is_empty) || !applied.with(Filters::is_empty)>
                <button type="button" class="btn btn-ghost" on:click=move |_| clear()>"Clear"</button>
            </Show>
        </form>
        {move || match status.get() {
            Status::Failed(message) => view! { <ErrorState message retry=Callback::new(move |_| load(false))/> }.into_any(),
            Status::Ready if entries.with(Vec::is_empty) => {
                if applied.with(Filters::is_empty) {
                    view! {
                        <EmptyState icon=IconName::Audit title="The audit log is empty">
                            <p>"Sign-ins, user and token changes appear here as they happen."</p>
                        </EmptyState>
                    }.into_any()
                } else {
                    view! {
                        <EmptyState icon=IconName::Search title="No entries match these filters" testid="audit-empty">
                            <p>"Loosen the filters, or clear them to see the whole log."</p>
                            <p><button type="button" class="btn btn-secondary" on:click=move |_| clear()>"Clear filters"</button></p>
                        </EmptyState>
                    }.into_any()
                }
            }
            _ => view! {
                <div class="table-wrap" class:refreshing=move || refreshing.get()>
                    <table class="table table-audit" data-testid="audit-table">
                        <thead><tr>
                            <th scope="col">"When"</th>
                            <th scope="col">"Actor"</th>
                            <th scope="col">"Action"</th>
                            <th scope="col">"Target"</th>
                            <th scope="col">"Outcome"</th>
                            <th scope="col">"Source"</th>
                            <th scope="col"><span class="sr-only">"Details"</span></th>
                        </tr></thead>
                        <tbody>
                            {move || if status.get() == Status::Loading {
                                view! { <SkeletonRows rows=8 cols=COLS/> }.into_any()
                            } else {
                                view! {
                                    <For each=move || entries.get() key=|e| e.seq let:e>
                                        <AuditRow entry=e/>
                                    </For>
                                }.into_any()
                            }}
                        </tbody>
                    </table>
                </div>
                <div class="list-footer">
                    <span class="muted small">{move || {
                        let n = entries.with(Vec::len);
                        if n == 0 { String::new() } else { format!("Showing the newest {n} entr{}", if n == 1 { "y" } else { "ies" }) }
                    }}</span>
                    {move || match (status.get(), next_before.get()) {
                        (Status::Ready, Some(_)) => view! {
                            <button type="button" class="btn btn-secondary" data-testid="load-older"
                                disabled=move || loading_more.get() on:click=move |_| load(true)>
                                {move || if loading_more.get() { "Loading…" } else { "Load older" }}
                            </button>
                        }.into_any(),
                        (Status::Ready, None) => view! { <span class="muted small">"Start of the log."</span> }.into_any(),
                        _ => ().into_any(),
                    }}
                </div>
            }.into_any(),
        }}
    }
}

fn outcome_pill(o: Outcome) -> impl IntoView {
    match o {
        Outcome::Success => view! { <Pill tone=Tone::Operational word="success"/> },
        Outcome::Failure => view! { <Pill tone=Tone::Outage word="failure"/> },
        Outcome::Denied => view! { <Pill tone=Tone::Degraded icon=IconName::Ban word="denied"/> },
    }
}

#[component]
fn AuditRow(entry: AuditEntry) -> impl IntoView {
    let open = RwSignal::new(false);
    let has_params =
        !(entry.params.is_null() || entry.params.as_object().is_some_and(|o| o.is_empty()));
    let params = if has_params {
        serde_json::to_string_pretty(&entry.params).unwrap_or_default()
    } else {
        String::new()
    };
    let detail = entry.detail.clone();
    let seq = entry.seq;
    view! {
        <tr class:row-open=move || open.get()>
            <td class="nowrap"><RelTime at=Some(entry.at)/></td>
            <td>
                <span>{entry.actor.clone()}</span>
                <span class="muted small block">{entry.actor_kind.clone()}</span>
            </td>
            <td><code>{entry.action.clone()}</code></td>
            <td class="wrap-anywhere">{entry.target.clone().unwrap_or_default()}</td>
            <td>{outcome_pill(entry.outcome)}</td>
            <td class="muted small wrap-anywhere">{entry.source.clone().unwrap_or_default()}</td>
            <td class="num">
                <button type="button" class="btn btn-ghost btn-small" aria-expanded=move || open.get().to_string()
                    aria-controls=format!("audit-detail-{seq}")
                    on:click=move |_| open.update(|o| *o = !*o)>
                    {move || if open.get() { view! { <Icon name=IconName::ChevronDown/> } } else { view! { <Icon name=IconName::ChevronRight/> } }}
                    "Details"
                </button>
            </td>
        </tr>
        <Show when=move || open.get()>
            <tr class="detail-row" id=format!("audit-detail-{seq}")>
                <td colspan=COLS>
                    <dl class="facts facts-compact">
                        <dt>"Entry"</dt><dd>"#"{seq}</dd>
                        <dt>"Exact time"</dt><dd>{crate::time::exact(entry.at)}</dd>
                        {detail.clone().map(|d| view! { <dt>"Detail"</dt><dd>{d}</dd> })}
                        <dt>"Parameters"</dt>
                        <dd>{if has_params {
                            view! { <pre class="json">{params.clone()}</pre> }.into_any()
                        } else {
                            view! { <span class="muted">"none"</span> }.into_any()
                        }}</dd>
                    </dl>
                </td>
            </tr>
        </Show>
    }
}
