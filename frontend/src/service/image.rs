//! The service's image: what discovery last saw (reference, running and
//! latest digests, newer tags, the registry's error or "built locally",
//! when it was checked), "Check now", the update settings (policy, semver
//! moves, health gate, auto-heal), "Update" (the built-in `image-update`
//! runbook, then its run page for live progress), and the version history
//! with "Go back to this version".

use opsdeck_wire::{ImageStatus, ImageVersion, SemverMoves, UpdatePolicy, UpdateSettings};

use super::*;
use crate::updates::short;

fn policy_str(p: UpdatePolicy) -> &'static str {
    match p {
        UpdatePolicy::None => "none",
        UpdatePolicy::Notify => "notify",
        UpdatePolicy::Auto => "auto",
    }
}

fn moves_str(m: SemverMoves) -> &'static str {
    match m {
        SemverMoves::None => "none",
        SemverMoves::Patch => "patch",
        SemverMoves::Minor => "minor",
        SemverMoves::Any => "any",
    }
}

/// A digest shortened for reading, whole on hover.
fn digest_view(d: Option<String>, testid: &'static str) -> AnyView {
    match d {
        Some(d) => {
            view! { <code title=d.clone() data-testid=testid>{format!("sha256:{}", short(&d))}</code> }
                .into_any()
        }
        None => view! { <span class="muted" data-testid=testid>"unknown"</span> }.into_any(),
    }
}

/// Starts `image-update` to `to` and opens the run page.
fn start_update(
    name: String,
    to: String,
    reason: String,
    busy: RwSignal<bool>,
    error: RwSignal<Option<String>>,
    goto: RwSignal<Option<i64>>,
) {
    busy.set(true);
    error.set(None);
    leptos::task::spawn_local(async move {
        match api::updates::start_update(&name, &to, &reason).await {
            Ok(run) => {
                goto.try_set(Some(run.summary.id));
            }
            Err(e) => {
                busy.try_set(false);
                error.try_set(Some(e.message));
            }
        }
    });
}

#[component]
pub(super) fn ImagePanel(id: i64, ov: Memo<Option<ServiceOverview>>) -> impl IntoView {
    let operator = current_role() >= Role::Operator;
    let status = RwSignal::new(None::<Result<Option<ImageStatus>, ApiError>>);
    let checking = RwSignal::new(false);
    let check_error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let run_error = RwSignal::new(None::<String>);
    let goto = RwSignal::new(None::<i64>);
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(run) = goto.get() {
            navigate(&format!("/runs/{run}"), NavigateOptions::default());
        }
    });
    let load = move || {
        leptos::task::spawn_local(async move {
            let r = api::updates::list()
                .await
                .map(|l| l.into_iter().find(|s| s.service_id == id));
            status.try_set(Some(r));
        });
    };
    load();
    let check_now = move |_| {
        checking.set(true);
        check_error.set(None);
        leptos::task::spawn_local(async move {
            match api::updates::check(Some(vec![id])).await {
                Ok(l) => match l.into_iter().find(|s| s.service_id == id) {
                    Some(s) => {
                        status.try_set(Some(Ok(Some(s))));
                    }
                    // Discovery looks at services with containers and a
                    // policy other than none.
                    None => {
                        check_error.try_set(Some(
                            "Nothing to check: the service has no containers on a connected engine, or its update policy is none."
                                .into(),
                        ));
                    }
                },
                Err(e) => {
                    check_error.try_set(Some(e.message));
                }
            }
            checking.try_set(false);
        });
    };
    let confirm_open = RwSignal::new(false);
    let name = move || name_of(ov);
    let do_update = Callback::new(move |_| {
        start_update(
            name(),
            String::new(),
            "Update to the latest image of the tag".into(),
            busy,
            run_error,
            goto,
        )
    });

    let facts = move || {
        status.get().map(|r| match r {
            Err(e) => view! {
                <ErrorState title="Cannot load the image status" message=e.message retry=Callback::new(move |_| load())/>
            }
            .into_any(),
            Ok(None) => view! {
                <EmptyState title="Not checked yet">
                    <p>{if operator {
                        "Opsdeck asks the registry about this service's image once a day. Check now to see whether a newer image exists."
                    } else {
                        "Opsdeck asks the registry about this service's image once a day; nothing has been checked yet."
                    }}</p>
                </EmptyState>
            }
            .into_any(),
            Ok(Some(s)) => {
                let state = if s.local_only {
                    view! { <Pill kind="unknown" icon="⌂" word="built locally" testid="image-state"
                        title="No registry knows this image: it was built on the engine's host."/> }.into_any()
                } else if let Some(e) = s.error.clone() {
                    view! { <Pill kind="degraded" icon="!" word="registry error" testid="image-state" title=e/> }.into_any()
                } else if s.update_available {
                    view! { <Pill kind="maintenance" icon="⬆" word="update available" testid="image-state"/> }.into_any()
                } else {
                    view! { <Pill kind="ok" icon="✓" word="up to date" testid="image-state"/> }.into_any()
                };
                view! {
                    <div class="btn-row">{state}</div>
                    {s.error.clone().map(|e| view! {
                        <div class="notice notice-error" role="alert" data-testid="image-error">{e}</div>
                    })}
                    <dl class="facts facts-2 image-facts">
                        <dt>"Reference"</dt><dd><code data-testid="image-ref">{s.image_ref.clone()}</code></dd>
                        <dt>"Running digest"</dt><dd>{digest_view(s.running_digest.clone(), "image-running")}</dd>
                        <dt>"Latest digest"</dt><dd>{digest_view(s.latest_digest.clone(), "image-latest")}
                            {s.latest_created.map(|at| view! { <span class="muted small">" built "<RelTime at=Some(at)/></span> })}</dd>
                        <dt>"Newer tags"</dt><dd data-testid="image-newer-tags">{if s.newer_tags.is_empty() {
                            view! { <span class="muted">"none"</span> }.into_any()
                        } else {
                            view! { <ul class="chips">{s.newer_tags.iter().map(|t| view! { <li><code>{t.clone()}</code></li> }).collect_view()}</ul> }.into_any()
                        }}</dd>
                        <dt>"Last checked"</dt><dd><RelTime at=Some(s.checked_at)/></dd>
                    </dl>
                }
                .into_any()
            }
        })
    };
    let update_available =
        move || status.with(|s| matches!(s, Some(Ok(Some(st))) if st.update_available));

    view! {
        <div id="image" data-testid="image-panel">
            {move || match status.get() {
                None => view! { <Loading rows=3/> }.into_any(),
                Some(_) => facts().into_any(),
            }}
            {operator.then(|| view! {
                <div class="btn-row section-actions">
                    <button class="btn" data-testid="image-check" disabled=move || checking.get() on:click=check_now>
                        {move || if checking.get() { "Checking…" } else { "Check now" }}
                    </button>
                    <button class="btn btn-primary" data-testid="image-update" disabled=move || busy.get() || !update_available()
                        title="Pull the tag's latest image and recreate the containers, gated on the health checks; rolled back by itself when the gate fails"
                        on:click=move |_| confirm_open.set(true)>
                        {move || if busy.get() { "Starting…" } else { "Update…" }}
                    </button>
                </div>
            })}
            {move || check_error.get().map(|m| view! { <div class="notice notice-error" role="alert">{m}</div> })}
            {move || run_error.get().map(|m| view! { <div class="notice notice-error" role="alert" data-testid="image-run-error">{m}</div> })}
            <Confirm open=confirm_open danger=false
                title=Signal::derive(move || format!("Update {}?", name()))
                message=Signal::derive(move || status.with(|s| match s {
                    Some(Ok(Some(st))) => format!(
                        "Pulls the latest image of {} ({}), recreates the containers with the same configuration and waits for the health checks. When they fail within the gate, the previous image comes back by itself. Progress shows on the run page.",
                        st.image_ref,
                        st.latest_digest.as_deref().map(short).unwrap_or_default()
                    ),
                    _ => String::new(),
                }))
                confirm_label="Update" on_confirm=do_update/>
            <h3>"Update settings"</h3>
            <SettingsForm id operator/>
            <h3>"Version history"</h3>
            <Versions id ov operator/>
        </div>
    }
}

#[component]
fn SettingsForm(id: i64, operator: bool) -> impl IntoView {
    let loaded = RwSignal::new(None::<Result<UpdateSettings, ApiError>>);
    let policy = RwSignal::new(String::from("notify"));
    let moves = RwSignal::new(String::from("patch"));
    let gate = RwSignal::new(String::from("120"));
    let heal_on = RwSignal::new(false);
    let heal_after = RwSignal::new(String::from("5"));
    let heal_max = RwSignal::new(String::from("3"));
    let busy = RwSignal::new(false);
    let notice = RwSignal::new(None::<Result<String, String>>);
    let fill = move |s: &UpdateSettings| {
        policy.set(policy_str(s.policy).into());
        moves.set(moves_str(s.moves).into());
        gate.set(s.gate_seconds.to_string());
        heal_on.set(s.heal_after_minutes.is_some());
        heal_after.set(s.heal_after_minutes.unwrap_or(5).to_string());
        heal_max.set(s.heal_max_per_hour.to_string());
    };
    let load = move || {
        leptos::task::spawn_local(async move {
            let r = api::updates::settings(id).await;
            if let Ok(s) = &r {
                fill(s);
            }
            loaded.try_set(Some(r));
        });
    };
    load();
    let build = move || -> Result<UpdateSettings, String> {
        let num = |label: &str, v: String| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| format!("{label}: a whole number"))
        };
        Ok(UpdateSettings {
            policy: match policy.get_untracked().as_str() {
                "none" => UpdatePolicy::None,
                "auto" => UpdatePolicy::Auto,
                _ => UpdatePolicy::Notify,
            },
            moves: match moves.get_untracked().as_str() {
                "none" => SemverMoves::None,
                "minor" => SemverMoves::Minor,
                "any" => SemverMoves::Any,
                _ => SemverMoves::Patch,
            },
            gate_seconds: num("Health gate", gate.get_untracked())?,
            heal_after_minutes: if heal_on.get_untracked() {
                Some(num("Unhealthy for", heal_after.get_untracked())?)
            } else {
                None
            },
            heal_max_per_hour: num("Restarts per hour", heal_max.get_untracked())?,
        })
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = match build() {
            Ok(b) => b,
            Err(m) => return notice.set(Some(Err(m))),
        };
        busy.set(true);
        notice.set(None);
        leptos::task::spawn_local(async move {
            match api::updates::save_settings(id, &body).await {
                Ok(s) => {
                    fill(&s);
                    notice.try_set(Some(Ok("Saved.".into())));
                }
                Err(e) => {
                    notice.try_set(Some(Err(e.message)));
                }
            }
            busy.try_set(false);
        });
    };
    let select = move |label: &'static str,
                       testid: &'static str,
                       sig: RwSignal<String>,
                       options: &'static [(&'static str, &'static str)]| {
        view! {
            <label><span>{label}</span>
                <select data-testid=testid disabled=!operator on:change=move |e| sig.set(event_target_value(&e))>
                    {options.iter().map(|(v, l)| view! { <option value=*v selected=move || sig.get() == *v>{*l}</option> }).collect_view()}
                </select>
            </label>
        }
    };
    let number = move |label: &'static str,
                       testid: &'static str,
                       sig: RwSignal<String>,
                       hint: &'static str| {
        view! {
            <label><span>{label}</span>
                <input type="number" inputmode="numeric" data-testid=testid disabled=!operator title=hint
                    prop:value=move || sig.get() on:input=move |e| sig.set(event_target_value(&e))/>
            </label>
        }
    };
    move || {
        match loaded.get() {
        None => view! { <Loading rows=2/> }.into_any(),
        Some(Err(e)) => view! {
            <ErrorState title="Cannot load the update settings" message=e.message retry=Callback::new(move |_| load())/>
        }
        .into_any(),
        Some(Ok(_)) => view! {
            <form class="form-grid" data-testid="update-settings" on:submit=submit>
                {select("Policy", "update-policy", policy, &[
                    ("notify", "Notify (update by hand)"),
                    ("auto", "Auto (maintenance window)"),
                    ("none", "None (never offered)"),
                ])}
                {select("Newer tags offered", "update-moves", moves, &[
                    ("patch", "Patch (7.2.4 → 7.2.5)"),
                    ("minor", "Minor (7.2.4 → 7.4.0)"),
                    ("any", "Any newer"),
                    ("none", "None"),
                ])}
                {number("Health gate (seconds)", "update-gate", gate, "How long the updated service gets to pass its checks (5–3600 s)")}
                <label class="check"><input type="checkbox" data-testid="heal-on" disabled=!operator
                    prop:checked=move || heal_on.get() on:change=move |e| heal_on.set(event_target_checked(&e))/>
                    "Auto-heal: restart when unhealthy"</label>
                <Show when=move || heal_on.get()>
                    {number("Unhealthy for (minutes)", "heal-after", heal_after, "1–1440 minutes")}
                    {number("Restarts per hour, then escalate", "heal-max", heal_max, "1–60")}
                </Show>
                {operator.then(|| view! {
                    <div class="span-all btn-row">
                        <button class="btn btn-primary" type="submit" data-testid="update-settings-save" disabled=move || busy.get()>"Save settings"</button>
                    </div>
                })}
                {move || notice.get().map(|n| match n {
                    Ok(m) => view! { <div class="notice notice-ok span-all" role="status">{m}</div> }.into_any(),
                    Err(m) => view! { <div class="notice notice-error span-all" role="alert">{m}</div> }.into_any(),
                })}
            </form>
        }
        .into_any(),
    }
    }
}

#[component]
fn Versions(id: i64, ov: Memo<Option<ServiceOverview>>, operator: bool) -> impl IntoView {
    let versions = LocalResource::new(move || api::updates::versions(id));
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let goto = RwSignal::new(None::<i64>);
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(run) = goto.get() {
            navigate(&format!("/runs/{run}"), NavigateOptions::default());
        }
    });
    let target = RwSignal::new(None::<ImageVersion>);
    let open = RwSignal::new(false);
    let back = Callback::new(move |_| {
        if let Some(v) = target.get_untracked() {
            let to = v.digest.clone().unwrap_or_else(|| v.image_id.clone());
            start_update(
                name_of(ov),
                to,
                format!(
                    "Go back to the version of {}",
                    v.started_at.format("%Y-%m-%d %H:%M UTC")
                ),
                busy,
                error,
                goto,
            );
        }
    });
    let rows = move || {
        versions.get().map(|r| match r {
            Err(e) => view! {
                <ErrorState title="Cannot load the version history" message=e.message retry=Callback::new(move |_| versions.refetch())/>
            }
            .into_any(),
            Ok(list) if list.is_empty() => view! {
                <EmptyState title="No versions recorded yet">
                    <p>"Each update (and each image discovery sees) is listed here, with who moved the service to it and how it ended."</p>
                </EmptyState>
            }
            .into_any(),
            Ok(list) => view! {
                <div class="table-wrap"><table class="table image-versions" data-testid="image-versions">
                    <thead><tr><th>"Since"</th><th>"Until"</th><th>"Image"</th><th>"By"</th><th>"Outcome"</th><th>"Run"</th><th></th></tr></thead>
                    <tbody>{list.into_iter().map(|v| {
                        let current = v.ended_at.is_none();
                        let image = v.digest.clone().unwrap_or_else(|| v.image_id.clone());
                        let pick = v.clone();
                        view! {
                            <tr data-testid=format!("image-version-{}", v.id)>
                                <td><RelTime at=Some(v.started_at)/></td>
                                <td>{match v.ended_at { Some(at) => view! { <RelTime at=Some(at)/> }.into_any(), None => view! { <span class="muted">"now"</span> }.into_any() }}</td>
                                <td><code title=image.clone()>{format!("{} @ {}", v.image_ref, short(&image))}</code></td>
                                <td>{v.actor.clone()}</td>
                                <td>{v.outcome.replace('_', " ")}</td>
                                <td>{v.run_id.map(|r| view! { <a href=format!("/runs/{r}")>{format!("#{r}")}</a> })}</td>
                                <td>{(operator && !current).then(|| view! {
                                    <button class="btn btn-small" data-testid="image-go-back" disabled=move || busy.get()
                                        on:click=move |_| { target.set(Some(pick.clone())); open.set(true); }>"Go back to this version"</button>
                                })}</td>
                            </tr>
                        }
                    }).collect_view()}</tbody>
                </table></div>
            }
            .into_any(),
        })
    };
    view! {
        <Transition fallback=|| view! { <Loading rows=2/> }>{rows}</Transition>
        {move || error.get().map(|m| view! { <div class="notice notice-error" role="alert">{m}</div> })}
        <Confirm open danger=false
            title=Signal::derive(move || format!("Go back to this version of {}?", name_of(ov)))
            message=Signal::derive(move || target.with(|t| t.as_ref().map(|v| format!(
                "Recreates the containers from {} ({}) with the same configuration, gated on the health checks like any update.",
                v.image_ref,
                short(v.digest.as_deref().unwrap_or(&v.image_id))
            )).unwrap_or_default()))
            confirm_label="Go back" on_confirm=back/>
    }
}
