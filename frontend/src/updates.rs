//! Image updates in lists: one shared copy of what discovery last saw
//! (`GET /api/v1/updates`, reloaded every five minutes while a page shows
//! it), and the "update available" badge the dashboard and the services
//! page put on a service's row (tag, short digests, age of the new image).
//!
//! A page calls [`provide_update_statuses`] once; rows call [`badge`],
//! which reads the context (no badge when there is none). A failed load
//! shows no badges: the lists never wait for or fail on registries.

use std::collections::HashMap;
use std::time::Duration;

use leptos::prelude::*;
use opsdeck_wire::ImageStatus;

use crate::api;
use crate::live::use_interval;
use crate::time::relative;

/// What discovery last saw, by service id.
#[derive(Clone, Copy)]
pub struct UpdateStatuses(pub RwSignal<HashMap<i64, ImageStatus>>);

/// Loads the statuses for this page (and every five minutes).
pub fn provide_update_statuses() -> UpdateStatuses {
    let map = RwSignal::new(HashMap::new());
    let load = move || {
        leptos::task::spawn_local(async move {
            if let Ok(list) = api::updates::list().await {
                map.try_set(list.into_iter().map(|s| (s.service_id, s)).collect());
            }
        });
    };
    load();
    use_interval(Duration::from_secs(300), load);
    let s = UpdateStatuses(map);
    provide_context(s);
    s
}

/// `sha256:0123456` (7 hex digits, like `docker images`).
pub fn short(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.chars().take(7).collect()
}

/// The tag of a reference (`latest` when it names none).
pub fn tag_of(reference: &str) -> String {
    let name = reference.split('@').next().unwrap_or(reference);
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, t)) => t.to_string(),
        None if reference.contains('@') => "digest".into(),
        None => "latest".into(),
    }
}

/// What the badge says: `None` when there is nothing to offer.
pub fn badge_text(s: &ImageStatus) -> Option<(String, String)> {
    if s.update_available {
        let mut detail = format!(
            "{} · {} → {}",
            tag_of(&s.image_ref),
            s.running_digest.as_deref().map(short).unwrap_or_default(),
            s.latest_digest.as_deref().map(short).unwrap_or_default(),
        );
        if let Some(at) = s.latest_created {
            detail.push_str(&format!(" · built {}", relative(at)));
        }
        Some(("update available".into(), detail))
    } else {
        s.newer_tags.first().map(|t| {
            (
                format!("newer tag {t}"),
                format!("{} → {t}", tag_of(&s.image_ref)),
            )
        })
    }
}

/// The badge of service `id` (reactive; empty when nothing is offered).
pub fn badge(id: i64, name: String) -> impl IntoView {
    let ctx = use_context::<UpdateStatuses>();
    move || {
        let ctx = ctx?;
        let (word, detail) = ctx.0.with(|m| m.get(&id).and_then(badge_text))?;
        let title = format!("{word}: {detail}");
        Some(view! {
            <a class="pill pill-update" href=format!("/services/{id}#image")
                data-testid=format!("update-badge-{name}") title=title.clone() aria-label=title>
                <span aria-hidden="true">"⬆"</span>" "{word}
                <span class="pill-detail">{detail}</span>
            </a>
        })
    }
}
