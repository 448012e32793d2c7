//! The scope part of the start and window forms: a whole stack (with its
//! actuation) or chosen services.

use super::*;

// ------------------------------------------------------------------ scope fields

/// The scope part of the start and window forms.
#[derive(Clone, Copy)]
pub(crate) struct ScopeState {
    by_stack: RwSignal<bool>,
    stack: RwSignal<String>,
    services: RwSignal<Vec<String>>,
    /// Apply the stack's actuation (stack scope only).
    actuate: RwSignal<bool>,
}

impl ScopeState {
    pub(super) fn new(scope: Option<&MaintenanceScope>, actuate: bool) -> ScopeState {
        let (by_stack, stack, services) = match scope {
            None => (true, String::new(), Vec::new()),
            Some(MaintenanceScope::Stack { stack }) => (true, stack.clone(), Vec::new()),
            Some(MaintenanceScope::Services { services }) => {
                (false, String::new(), services.clone())
            }
        };
        ScopeState {
            by_stack: RwSignal::new(by_stack),
            stack: RwSignal::new(stack),
            services: RwSignal::new(services),
            actuate: RwSignal::new(actuate),
        }
    }

    /// The scope chosen (tracked: the window preview follows it).
    pub(super) fn scope(self) -> Result<MaintenanceScope, String> {
        if self.by_stack.get() {
            let stack = self.stack.get();
            if stack.is_empty() {
                return Err("Choose a stack.".into());
            }
            Ok(MaintenanceScope::Stack { stack })
        } else {
            let services = self.services.get();
            if services.is_empty() {
                return Err("Choose at least one service.".into());
            }
            Ok(MaintenanceScope::Services { services })
        }
    }

    pub(super) fn actuate_value(self) -> bool {
        self.by_stack.get() && self.actuate.get()
    }
}

/// Scope radio (whole stack or chosen services), the stack select with its
/// actuation, or the service checkboxes. Test ids start with `prefix`:
/// `{prefix}-scope-stack`, `{prefix}-scope-services`, `{prefix}-stack-select`,
/// `{prefix}-actuate`, `{prefix}-service-<name>`.
#[component]
pub(super) fn ScopeFields(
    state: ScopeState,
    data: PageData,
    prefix: &'static str,
) -> impl IntoView {
    let filter = RwSignal::new(String::new());
    // A new form picks the first stack once they are known; without any
    // stack it starts on "chosen services".
    Effect::new(move |_| {
        let first = data.stacks.with(|s| match s {
            Some(Ok(v)) => Some(v.first().map(|s| s.stack.clone())),
            _ => None,
        });
        match first {
            Some(Some(first)) if state.stack.with_untracked(String::is_empty) => {
                state.stack.set(first)
            }
            Some(None) => state.by_stack.set(false),
            _ => {}
        }
    });
    let radio = format!("{prefix}-scope");
    let radio2 = radio.clone();
    let chosen_stack = Memo::new(move |_| {
        let name = state.stack.get();
        data.stacks.with(|s| match s {
            Some(Ok(v)) => v.iter().find(|s| s.stack == name).cloned(),
            _ => None,
        })
    });
    let stack_part = move || {
        let stacks = data.stacks.get();
        match stacks {
            None => view! { <Loading rows=1/> }.into_any(),
            Some(Err(e)) => view! { <p class="error-text">"Cannot list the stacks: "{e.message}</p> }.into_any(),
            Some(Ok(list)) if list.is_empty() => view! {
                <p class="muted small" data-testid=format!("{prefix}-no-stacks")>"No stacks: the inventory has no compose project. Choose services instead."</p>
            }.into_any(),
            Some(Ok(list)) => view! {
                <div class="maint-stack-pick">
                    <label>"Stack"
                        <select data-testid=format!("{prefix}-stack-select")
                            on:change=move |e| state.stack.set(event_target_value(&e))>
                            {list.into_iter().map(|s| {
                                let name = s.stack.clone();
                                let n2 = name.clone();
                                let count = s.services.len();
                                view! {
                                    <option value=name.clone() prop:selected=move || state.stack.with(|c| *c == n2)>
                                        {format!("{name} ({count} service{})", if count == 1 { "" } else { "s" })}
                                    </option>
                                }
                            }).collect_view()}
                        </select>
                    </label>
                    {move || chosen_stack.get().map(|s| {
                        let mode = stack_mode(&s);
                        let none = mode == ActuationMode::None;
                        view! {
                            <div class="maint-actuation">
                                <p class="muted small maint-stack-services">{s.services.join(", ")}</p>
                                <label class="check" title=if none { "This stack has no actuation yet: an admin sets one under Stacks." } else { "" }>
                                    <input type="checkbox" data-testid=format!("{prefix}-actuate")
                                        prop:checked=move || state.actuate.get()
                                        on:change=move |e| state.actuate.set(event_target_checked(&e))/>
                                    "Apply the stack's actuation "
                                    <span class=format!("tag maint-mode maint-mode-{}", mode_text(mode)) data-testid=format!("{prefix}-mode")>{mode_text(mode)}</span>
                                </label>
                                <span class="hint">{mode_help(mode)}</span>
                            </div>
                        }
                    })}
                </div>
            }.into_any(),
        }
    };
    let services_part = move || {
        let q = filter.get().to_lowercase();
        let names: Vec<String> = data
            .service_names
            .get()
            .into_iter()
            .filter(|n| q.is_empty() || n.to_lowercase().contains(&q))
            .collect();
        view! {
            <div class="maint-services-pick">
                <input type="search" class="search" placeholder="Filter services" aria-label="Filter services"
                    prop:value=move || filter.get() on:input=move |e| filter.set(event_target_value(&e))/>
                <span class="muted small">{move || {
                    let n = state.services.with(Vec::len);
                    if n == 0 { "none chosen".to_string() } else { format!("{n} chosen") }
                }}</span>
                <div class="check-grid">
                    {if names.is_empty() {
                        view! { <p class="muted">"No services match."</p> }.into_any()
                    } else {
                        names.into_iter().map(|name| {
                            let n1 = name.clone();
                            let n2 = name.clone();
                            view! {
                                <label class="check">
                                    <input type="checkbox" data-testid=format!("{prefix}-service-{name}")
                                        prop:checked=move || state.services.with(|c| c.contains(&n1))
                                        on:change=move |e| {
                                            let on = event_target_checked(&e);
                                            let n = n2.clone();
                                            state.services.update(|c| {
                                                c.retain(|x| *x != n);
                                                if on { c.push(n); c.sort(); }
                                            });
                                        }/>
                                    {name}
                                </label>
                            }
                        }).collect_view().into_any()
                    }}
                </div>
            </div>
        }
    };
    view! {
        <fieldset class="span-all maint-scope">
            <legend>"Scope"</legend>
            <div class="maint-scope-choice" role="radiogroup" aria-label="Scope">
                <label class="check">
                    <input type="radio" name=radio value="stack" data-testid=format!("{prefix}-scope-stack")
                        prop:checked=move || state.by_stack.get() on:change=move |_| state.by_stack.set(true)/>
                    "Whole stack"
                </label>
                <label class="check">
                    <input type="radio" name=radio2 value="services" data-testid=format!("{prefix}-scope-services")
                        prop:checked=move || !state.by_stack.get() on:change=move |_| state.by_stack.set(false)/>
                    "Chosen services"
                </label>
            </div>
            {move || if state.by_stack.get() { stack_part().into_any() } else { services_part().into_any() }}
        </fieldset>
    }
}
