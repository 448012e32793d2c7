//! Small shared pieces every page uses: the page header (which also sets the
//! document title), empty / error / no-access states, skeleton rows, status
//! pills (colour + icon + word, never colour alone), toasts, and [`Remote`],
//! the state of data loaded from the API.

use std::time::Duration;

use leptos::prelude::*;

use crate::api::ApiError;
use crate::icons::{Icon, IconName};

/// The `<h1>` of a page (only the title, nothing else in it), an optional
/// one-line description, and actions on the right.
#[component]
pub fn PageHeader(
    title: &'static str,
    #[prop(optional)] lede: Option<&'static str>,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
        doc.set_title(&format!("{title} · Opsdeck"));
    }
    view! {
        <header class="page-header">
            <div class="page-title">
                <h1>{title}</h1>
                {lede.map(|l| view! { <p class="lede">{l}</p> })}
            </div>
            {children.map(|c| view! { <div class="page-actions">{c()}</div> })}
        </header>
    }
}

/// A calm empty state: what belongs here and what to do next.
#[component]
pub fn EmptyState(
    icon: IconName,
    title: &'static str,
    #[prop(optional)] testid: Option<&'static str>,
    children: Children,
) -> impl IntoView {
    view! {
        <section class="state state-empty" data-testid=testid>
            <span class="state-icon"><Icon name=icon/></span>
            <div class="state-text">
                <h2>{title}</h2>
                {children()}
            </div>
        </section>
    }
}

/// A failed load, with the server's message and a retry button.
#[component]
pub fn ErrorState(
    #[prop(into)] message: String,
    #[prop(optional)] retry: Option<Callback<()>>,
) -> impl IntoView {
    view! {
        <section class="state state-error" role="alert" data-testid="error-state">
            <span class="state-icon"><Icon name=IconName::Warning/></span>
            <div class="state-text">
                <h2>"This could not be loaded"</h2>
                <p>{message}</p>
                {retry.map(|r| view! {
                    <button type="button" class="btn btn-secondary" on:click=move |_| r.run(())>
                        <Icon name=IconName::Refresh/>"Try again"
                    </button>
                })}
            </div>
        </section>
    }
}

/// Shown instead of a page the user's role may not use.
#[component]
pub fn NoAccess() -> impl IntoView {
    view! {
        <PageHeader title="No access"/>
        <section class="state state-empty" data-testid="no-access">
            <span class="state-icon"><Icon name=IconName::Lock/></span>
            <div class="state-text">
                <h2>"You don't have access to this page"</h2>
                <p>"Your role does not include this part of Opsdeck. If you need it, ask an admin to change your role."</p>
                <p><a href="/">"Back to the dashboard"</a></p>
            </div>
        </section>
    }
}

/// Placeholder rows while a table loads: same columns, same row height, so
/// nothing jumps when the data arrives.
#[component]
pub fn SkeletonRows(rows: usize, cols: usize) -> impl IntoView {
    (0..rows)
        .map(|_| {
            view! {
                <tr class="skeleton-row" aria-hidden="true">
                    {(0..cols).map(|_| view! { <td><span class="skeleton-bar"></span></td> }).collect_view()}
                </tr>
            }
        })
        .collect_view()
}

/// The kinds of status the panel shows. Each has a colour, an icon and a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Operational,
    Degraded,
    Outage,
    Maintenance,
    Unknown,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Operational => "pill pill-operational",
            Tone::Degraded => "pill pill-degraded",
            Tone::Outage => "pill pill-outage",
            Tone::Maintenance => "pill pill-maintenance",
            Tone::Unknown => "pill pill-unknown",
        }
    }

    fn icon(self) -> IconName {
        match self {
            Tone::Operational => IconName::CheckCircle,
            Tone::Degraded => IconName::Warning,
            Tone::Outage => IconName::XCircle,
            Tone::Maintenance => IconName::Maintenance,
            Tone::Unknown => IconName::Question,
        }
    }
}

/// A status pill: colour, icon and word. `icon` overrides the tone's icon.
#[component]
pub fn Pill(
    tone: Tone,
    #[prop(into)] word: String,
    #[prop(optional)] icon: Option<IconName>,
    #[prop(optional, into)] title: Option<String>,
) -> impl IntoView {
    view! {
        <span class=tone.class() title=title>
            <Icon name=icon.unwrap_or(tone.icon())/>
            <span>{word}</span>
        </span>
    }
}

/// A role as a small badge.
#[component]
pub fn RoleBadge(role: opsdeck_wire::Role) -> impl IntoView {
    view! { <span class="role-badge">{role.as_str()}</span> }
}

/// The state of data loaded from the API.
#[derive(Debug, Clone, PartialEq)]
pub enum Remote<T> {
    Loading,
    Ready(T),
    Failed(String),
}

/// Loads API data into a [`Remote`]. Create it in a component (it keeps the
/// toasts from context); `load` may then be called from anywhere.
pub struct Loader<T: Send + Sync + 'static> {
    pub state: RwSignal<Remote<T>>,
    toasts: Toasts,
}

impl<T: Send + Sync + 'static> Clone for Loader<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for Loader<T> {}

impl<T> Loader<T>
where
    T: serde::de::DeserializeOwned + Send + Sync + 'static,
{
    pub fn new() -> Self {
        Loader {
            state: RwSignal::new(Remote::Loading),
            toasts: use_toasts(),
        }
    }

    /// Loads `path`. A reload keeps the data already shown (no flash of
    /// skeletons) and reports a failure as a toast instead.
    pub fn load(self, path: String) {
        let state = self.state;
        let toasts = self.toasts;
        let had_data = state.with_untracked(|s| matches!(s, Remote::Ready(_)));
        if !had_data {
            state.set(Remote::Loading);
        }
        leptos::task::spawn_local(async move {
            match crate::api::get::<T>(&path).await {
                Ok(v) => state.set(Remote::Ready(v)),
                Err(e) if had_data => toasts.error(format!("Could not refresh: {}", e.message)),
                Err(e) => state.set(Remote::Failed(e.message)),
            }
        });
    }
}

/// One message in the corner of the screen.
#[derive(Debug, Clone, PartialEq)]
struct Toast {
    id: u64,
    ok: bool,
    text: String,
}

/// Short messages after an action: success fades after a few seconds,
/// errors stay until dismissed. Fixed in a corner, so the page never jumps.
#[derive(Clone, Copy)]
pub struct Toasts {
    list: RwSignal<Vec<Toast>>,
    next: StoredValue<u64>,
}

impl Toasts {
    fn push(self, ok: bool, text: String) {
        let id = self.next.get_value();
        self.next.set_value(id + 1);
        self.list.update(|l| {
            l.push(Toast { id, ok, text });
            // Keep the stack short during a burst.
            if l.len() > 4 {
                l.remove(0);
            }
        });
        if ok {
            let list = self.list;
            set_timeout(
                move || list.update(|l| l.retain(|t| t.id != id)),
                Duration::from_secs(5),
            );
        }
    }

    pub fn success(self, text: impl Into<String>) {
        self.push(true, text.into());
    }

    pub fn error(self, text: impl Into<String>) {
        self.push(false, text.into());
    }

    /// Shows the outcome of an API call.
    pub fn report(self, r: Result<String, ApiError>) {
        match r {
            Ok(msg) => self.success(msg),
            Err(e) => self.error(e.message),
        }
    }
}

pub fn provide_toasts() {
    provide_context(Toasts {
        list: RwSignal::new(Vec::new()),
        next: StoredValue::new(0),
    });
}

pub fn use_toasts() -> Toasts {
    expect_context::<Toasts>()
}

/// Where toasts appear (once, in the app root).
#[component]
pub fn ToastRegion() -> impl IntoView {
    let toasts = use_toasts();
    view! {
        <div class="toasts" role="status" aria-live="polite" data-testid="toasts">
            <For each=move || toasts.list.get() key=|t| t.id let:t>
                <div class=if t.ok { "toast toast-ok" } else { "toast toast-error" } data-testid="toast">
                    <Icon name=if t.ok { IconName::CheckCircle } else { IconName::Warning }/>
                    <span class="toast-text">{t.text.clone()}</span>
                    <button type="button" class="btn btn-ghost btn-icon btn-small" aria-label="Dismiss"
                        on:click=move |_| toasts.list.update(|l| l.retain(|x| x.id != t.id))>
                        <Icon name=IconName::Close/>
                    </button>
                </div>
            </For>
        </div>
    }
}

/// A filter box for a list.
#[component]
pub fn SearchBox(
    value: RwSignal<String>,
    placeholder: &'static str,
    label: &'static str,
    #[prop(optional)] testid: Option<&'static str>,
) -> impl IntoView {
    view! {
        <label class="search">
            <Icon name=IconName::Search/>
            <input type="search" placeholder=placeholder aria-label=label data-testid=testid
                prop:value=move || value.get() on:input=move |e| value.set(event_target_value(&e))/>
        </label>
    }
}

/// Whether any of `fields` contains `needle` (already lower-case), ignoring case.
pub fn matches_filter(needle: &str, fields: &[&str]) -> bool {
    needle.is_empty() || fields.iter().any(|f| f.to_lowercase().contains(needle))
}

/// What a list page shows. Changes less often than the data itself, so the
/// toolbar (and the filter box's focus) survive a reload.
#[derive(Debug, Clone, PartialEq)]
pub enum ListKind {
    Table,
    Empty,
    Failed(String),
}

impl ListKind {
    pub fn of<T>(s: &Remote<Vec<T>>) -> ListKind {
        match s {
            Remote::Failed(m) => ListKind::Failed(m.clone()),
            Remote::Ready(l) if l.is_empty() => ListKind::Empty,
            _ => ListKind::Table,
        }
    }
}
