//! The dashboard's backup notice: plans whose newest backup failed, whose
//! newest verification or restore drill failed ([`crate::api::backups::attention`],
//! polled every 15 s while the tab is visible). Nothing to show: nothing
//! is drawn.

use std::time::Duration;

use leptos::prelude::*;
use opsdeck_wire::BackupAttention;

use crate::api;
use crate::live::use_interval;

#[component]
pub fn BackupAlerts() -> impl IntoView {
    let tick = RwSignal::new(0u32);
    use_interval(Duration::from_secs(15), move || tick.update(|t| *t += 1));
    let list = LocalResource::new(move || {
        tick.track();
        api::backups::attention()
    });
    // Keep the last answer while the next is on its way (no flicker).
    let shown = RwSignal::new(Vec::<BackupAttention>::new());
    Effect::new(move |_| {
        if let Some(Ok(v)) = list.get() {
            shown.set(v);
        }
    });
    move || {
        let v = shown.get();
        (!v.is_empty()).then(|| {
            view! {
                <section class="notice notice-error backup-alerts" role="alert" data-testid="backup-alerts">
                    <strong>{if v.len() == 1 { "A backup needs attention".to_string() } else { format!("{} backup problems", v.len()) }}</strong>
                    <ul class="plain-list">
                        {v.into_iter().map(|a| {
                            let href = match a.backup_id {
                                Some(id) => format!("/backups/{id}"),
                                None => "/backups".to_string(),
                            };
                            view! {
                                <li data-testid=format!("backup-alert-{}", a.plan)>
                                    <a href=href>{format!("{}: {}", a.plan, a.problem)}</a>
                                    {a.error.map(|e| view! { <span class="muted">{format!(" — {e}")}</span> })}
                                    " "<crate::backups::When at=a.at/>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                </section>
            }
        })
    }
}
