//! `/oncall`: a card per rotation saying who is on call now (with phone and
//! e-mail links) and until when, and who is next from when.

use super::*;

// ------------------------------------------------------------------ on call

#[component]
pub fn OnCallPage() -> impl IntoView {
    let admin = current_role() >= Role::Admin;
    let reload = RwSignal::new(0u32);
    let bump = move || {
        reload.try_update(|n| *n = n.wrapping_add(1));
    };
    let list = LocalResource::new(move || {
        reload.get();
        api::oncall::on_call()
    });
    // Shifts end and relative times move on.
    use_interval(Duration::from_secs(60), bump);
    let data = Memo::new(move |_| list.get());
    view! {
        <div class="page-head">
            <h1>"On-call"</h1>
            <span class="spacer"></span>
            {admin.then(|| view! { <a class="btn" href="/admin/contacts">"Contacts & escalation"</a> })}
        </div>
        <p class="lede">"Who is on call now and who is next, per rotation. Holiday overrides are marked."</p>
        {move || match data.get() {
            None => view! { <Loading rows=3/> }.into_any(),
            Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| bump())/> }.into_any(),
            Some(Ok(v)) if v.is_empty() => view! {
                <div data-testid="oncall-empty">
                    <EmptyState title="No rotations yet">
                        <p>"An admin can set up rotations at "
                            {if admin {
                                view! { <a href="/admin/contacts">"Contacts & escalation"</a> }.into_any()
                            } else {
                                view! { <strong>"Contacts & escalation"</strong> }.into_any()
                            }}
                            "."</p>
                    </EmptyState>
                </div>
            }.into_any(),
            Some(Ok(v)) => {
                let count = v.len().to_string();
                view! {
                <div class="oncall-grid" data-testid="oncall-cards" data-count=count>
                    {v.into_iter().map(|o| view! { <OnCallCard oncall=o/> }).collect_view()}
                </div>
                }.into_any()
            }
        }}
    }
}

#[component]
pub(super) fn OnCallCard(oncall: OnCall) -> impl IntoView {
    let name = oncall.rotation.clone();
    let now_view = match oncall.current.clone() {
        Some(s) => view! {
            <div class="oncall-now" data-testid=format!("oncall-now-{name}")
                data-person=s.person.name.clone() data-override=s.is_override.to_string()>
                <span class="oncall-label">"On call now"</span>
                <div class="oncall-person">
                    <strong>{s.person.name.clone()}</strong>
                    {s.is_override.then(|| view! { <span class="pill pill-maintenance" title="Covered by an override"><span aria-hidden="true">"⇄"</span>" override"</span> })}
                </div>
                <Contact shift=s.clone()/>
                <div class="small">"until "<When at=s.until/></div>
            </div>
        }
        .into_any(),
        None => view! {
            <div class="oncall-now oncall-nobody" data-testid=format!("oncall-now-{name}") data-person="">
                <span class="oncall-label">"On call now"</span>
                <div class="warn-text"><span aria-hidden="true">"⚠ "</span>"Nobody"</div>
            </div>
        }
        .into_any(),
    };
    let next_view = match oncall.next.clone() {
        Some(s) => view! {
            <div class="oncall-next small" data-testid=format!("oncall-next-{name}")
                data-person=s.person.name.clone() data-override=s.is_override.to_string()>
                "Next: "<strong>{s.person.name.clone()}</strong>
                {s.is_override.then(|| view! { " "<span class="pill pill-maintenance"><span aria-hidden="true">"⇄"</span>" override"</span> })}
                " from "<When at=s.from/>
            </div>
        }
        .into_any(),
        None => view! {
            <div class="oncall-next small muted" data-testid=format!("oncall-next-{name}") data-person="">"Next: nobody scheduled"</div>
        }
        .into_any(),
    };
    view! {
        <section class="card oncall-card" data-testid=format!("oncall-card-{name}")>
            <h2>{name.clone()}</h2>
            {now_view}
            {next_view}
        </section>
    }
}

#[component]
pub(super) fn Contact(shift: OnCallShift) -> impl IntoView {
    let phone = shift.phone.map(|p| {
        let href = format!("tel:{}", p.replace([' ', '-'], ""));
        view! { <a href=href data-testid="oncall-phone"><span aria-hidden="true">"☎ "</span>{p}</a> }
    });
    let email = shift.email.map(|e| {
        let href = format!("mailto:{e}");
        view! { <a href=href data-testid="oncall-email"><span aria-hidden="true">"✉ "</span>{e}</a> }
    });
    view! { <div class="oncall-contact">{phone}{email}</div> }
}
