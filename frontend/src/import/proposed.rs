//! The checks an import proposes, grouped per service: each can be
//! unticked; database checks ask for a password (write-only: typed here,
//! sent once with Apply, never shown again); a check the service already
//! has shows as "already monitored" and cannot be ticked.
//!
//! The ticks the user changed are kept by key across previews (a profile
//! switched on re-previews; the choices stay); keys the user never touched
//! follow the server's `selected`. Typing a password ticks its check.

use std::collections::BTreeMap;

use leptos::prelude::*;
use opsdeck_wire::{ImportPlan, ProposedCheck};

use crate::checks::{kind_label, target_of};
use crate::ui::Pill;

/// The user's choices about proposed checks.
#[derive(Clone, Copy)]
pub struct Choices {
    /// Ticks changed by the user, by key.
    pub ticked: RwSignal<BTreeMap<String, bool>>,
    /// Passwords typed, by key.
    pub passwords: RwSignal<BTreeMap<String, String>>,
}

impl Choices {
    pub fn new() -> Self {
        Choices {
            ticked: RwSignal::new(BTreeMap::new()),
            passwords: RwSignal::new(BTreeMap::new()),
        }
    }

    /// Whether the check is to be created: the user's tick, else the
    /// server's proposal; never for one that exists.
    pub fn is_ticked(&self, c: &ProposedCheck) -> bool {
        !c.exists
            && self
                .ticked
                .with(|t| t.get(&c.key).copied())
                .unwrap_or(c.selected)
    }

    /// `checks` and `check_passwords` for Apply: the ticked keys, and the
    /// passwords of ticked checks that need one.
    pub fn for_apply(&self, plan: &ImportPlan) -> (Vec<String>, BTreeMap<String, String>) {
        let keys: Vec<String> = plan
            .checks
            .iter()
            .filter(|c| self.is_ticked(c))
            .map(|c| c.key.clone())
            .collect();
        let passwords = self.passwords.with_untracked(|p| {
            p.iter()
                .filter(|(k, v)| !v.is_empty() && keys.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        });
        (keys, passwords)
    }

    /// Forgets the passwords (after Apply: they are not kept in the page).
    pub fn clear_passwords(&self) {
        self.passwords.set(BTreeMap::new());
    }
}

/// Proposed checks grouped by service, in the plan's order.
fn by_service(checks: &[ProposedCheck]) -> Vec<(String, Vec<ProposedCheck>)> {
    let mut out: Vec<(String, Vec<ProposedCheck>)> = Vec::new();
    for c in checks {
        match out.iter_mut().find(|(s, _)| *s == c.service) {
            Some((_, v)) => v.push(c.clone()),
            None => out.push((c.service.clone(), vec![c.clone()])),
        }
    }
    out
}

fn check_row(c: ProposedCheck, choices: Choices, applied: bool) -> impl IntoView {
    let key = c.key.clone();
    let (k_tick, k_pw, k_pw2) = (key.clone(), key.clone(), key.clone());
    let exists = c.exists;
    let needs_password = c.needs_password && !exists && !applied;
    let c2 = c.clone();
    let selected = c.selected;
    // Applied: what was created; before: the tick.
    let ticked = Signal::derive(move || {
        if applied {
            selected
        } else {
            choices.is_ticked(&c2)
        }
    });
    let kind = c.spec.kind();
    let state = if exists {
        view! { <Pill kind="ok" icon="✓" word="already monitored"/> }.into_any()
    } else if applied && c.selected {
        view! { <Pill kind="ok" icon="✓" word="created"/> }.into_any()
    } else if applied {
        view! { <Pill kind="unknown" icon="–" word="not created"/> }.into_any()
    } else {
        ().into_any()
    };
    view! {
        <li class="proposed-check" class:row-quiet=exists || (applied && !c.selected)
            data-testid=format!("check-{key}") data-selected=move || ticked.get().to_string()>
            <label class="proposed-tick">
                <input type="checkbox" data-testid=format!("check-tick-{key}")
                    disabled=exists || applied
                    prop:checked=ticked
                    on:change=move |e| {
                        let on = event_target_checked(&e);
                        choices.ticked.update(|t| { t.insert(k_tick.clone(), on); });
                    }/>
                <span>
                    <strong>{c.name.clone()}</strong>" "
                    <span class="muted small">
                        // The kind only when the name does not already say it.
                        {(c.name != kind_label(kind)).then(|| format!("{} · ", kind_label(kind)))}
                        <code class="wrap-anywhere">{target_of(&c.spec)}</code>
                    </span>
                </span>
            </label>
            <span class="proposed-state">{state}</span>
            <div class="proposed-reason small muted">{c.reason.clone()}</div>
            {needs_password.then(|| view! {
                <label class="proposed-password small">
                    <span>"Password "<span class="muted">"(not read from the compose file; stored sealed)"</span></span>
                    <input type="password" autocomplete="off" spellcheck="false"
                        data-testid=format!("check-password-{key}")
                        prop:value=move || choices.passwords.with(|p| p.get(&k_pw).cloned().unwrap_or_default())
                        on:input=move |e| {
                            let v = event_target_value(&e);
                            if !v.is_empty() {
                                choices.ticked.update(|t| { t.insert(k_pw2.clone(), true); });
                            }
                            choices.passwords.update(|p| { p.insert(k_pw2.clone(), v); });
                        }/>
                </label>
            })}
        </li>
    }
}

/// The proposed checks of a plan, or why there are none.
#[component]
pub fn ProposedChecks(plan: ImportPlan, choices: Choices) -> impl IntoView {
    let applied = plan.applied;
    let total = plan.checks.len();
    let groups = by_service(&plan.checks);
    let checks = plan.checks.clone();
    let count = move || checks.iter().filter(|c| choices.is_ticked(c)).count();
    let head = if applied {
        let created = plan
            .checks
            .iter()
            .filter(|c| c.selected && !c.exists)
            .count();
        format!("Checks: {created} created")
    } else {
        "Proposed checks".to_string()
    };
    view! {
        <section class="plan-section" data-testid="proposed-checks">
            <h2 class="plan-section-head">{head}
                {(!applied && total > 0).then(|| view! {
                    <span class="muted small">" · "{move || count()}" of "{total}" ticked"</span>
                })}
            </h2>
            {if groups.is_empty() {
                view! {
                    <p class="muted" data-testid="no-proposed-checks">
                        "No checks proposed for these services. Add them on the "<a href="/checks">"Checks"</a>" page after the import."
                    </p>
                }.into_any()
            } else {
                view! {
                    <div class="proposed-groups">
                        {groups.into_iter().map(|(service, list)| view! {
                            <div class="proposed-group" data-testid=format!("checks-of-{service}")>
                                <h3>{service.clone()}</h3>
                                <ul class="proposed-list">
                                    {list.into_iter().map(|c| check_row(c, choices, applied)).collect_view()}
                                </ul>
                            </div>
                        }).collect_view()}
                    </div>
                }.into_any()
            }}
        </section>
    }
}
