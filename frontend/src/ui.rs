//! Small shared pieces: theme, loading/empty/error states, the
//! confirmation dialog, a detail page's record ([`Detail`]), the
//! parts of a list-with-CRUD section ([`crud`]) and time charts ([`chart`]).

use leptos::prelude::*;

pub mod chart;
mod crud;
pub use crud::{
    Crud, CrudDelete, CrudForm, CrudList, CrudTable, EnabledPill, EnabledSwitch, FormMode, Notice,
};

const THEME_KEY: &str = "opsdeck-theme";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

fn root() -> Option<web_sys::Element> {
    web_sys::window()?.document()?.document_element()
}

/// Applies the saved theme, else the system preference.
pub fn apply_saved_theme() {
    let saved = storage().and_then(|s| s.get_item(THEME_KEY).ok().flatten());
    let theme = saved.unwrap_or_else(|| {
        let dark = web_sys::window()
            .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
            .is_some_and(|m| m.matches());
        if dark {
            "dark".into()
        } else {
            "light".into()
        }
    });
    if let Some(r) = root() {
        let _ = r.set_attribute("data-theme", &theme);
    }
}

pub fn toggle_theme() {
    let Some(r) = root() else { return };
    let next = if r.get_attribute("data-theme").as_deref() == Some("dark") {
        "light"
    } else {
        "dark"
    };
    let _ = r.set_attribute("data-theme", next);
    if let Some(s) = storage() {
        let _ = s.set_item(THEME_KEY, next);
    }
}

#[component]
pub fn Loading(#[prop(default = 3)] rows: usize) -> impl IntoView {
    view! {
        <div class="skeleton" aria-busy="true" aria-label="Loading">
            {(0..rows).map(|_| view! { <div class="skeleton-row"></div> }).collect_view()}
        </div>
    }
}

/// A detail page that could not load: crumbs back to its list, the page's
/// heading, and the error with a retry (a 404 says `missing` instead).
#[component]
pub fn DetailLoadError(
    list_href: &'static str,
    list_label: &'static str,
    heading: &'static str,
    title: &'static str,
    missing: &'static str,
    error: Option<crate::api::ApiError>,
    retry: Callback<()>,
) -> impl IntoView {
    let message = error
        .map(|e| {
            if e.status == 404 {
                missing.to_string()
            } else {
                e.message
            }
        })
        .unwrap_or_default();
    view! {
        <nav class="crumbs"><a href=list_href>{list_label}</a></nav>
        <h1>{heading}</h1>
        <ErrorState title=title message=message retry=retry/>
    }
}

#[component]
pub fn ErrorState(
    message: String,
    #[prop(optional)] retry: Option<Callback<()>>,
    /// Defaults to "Something went wrong".
    #[prop(optional)]
    title: Option<&'static str>,
) -> impl IntoView {
    view! {
        <div class="state state-error" role="alert">
            <span class="state-icon" aria-hidden="true">"⚠"</span>
            <div>
                <strong>{title.unwrap_or("Something went wrong")}</strong>
                <p>{message}</p>
                {retry.map(|r| view! { <button class="btn" on:click=move |_| r.run(())>"Try again"</button> })}
            </div>
        </div>
    }
}

#[component]
pub fn EmptyState(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <div class="state state-empty">
            <span class="state-icon" aria-hidden="true">"○"</span>
            <div>
                <strong>{title}</strong>
                <div class="state-body">{children()}</div>
            </div>
        </div>
    }
}

/// A modal confirmation that names its target. `on_confirm` runs on "confirm".
///
/// With `expected` set, the dialog asks to type that name (input
/// `confirm-name`) and the confirm button stays disabled until it matches:
/// for actions that take a critical service away.
#[component]
pub fn Confirm(
    open: RwSignal<bool>,
    title: Signal<String>,
    message: Signal<String>,
    confirm_label: &'static str,
    #[prop(default = true)] danger: bool,
    #[prop(optional, into)] expected: MaybeProp<String>,
    on_confirm: Callback<()>,
) -> impl IntoView {
    let typed = RwSignal::new(String::new());
    let input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if open.get() {
            typed.set(String::new());
            if let Some(el) = input.get() {
                let _ = el.focus();
            }
        }
    });
    let matches = move || match expected.get() {
        Some(name) => typed.get() == name,
        None => true,
    };
    let confirm = move || {
        if matches() {
            open.set(false);
            on_confirm.run(());
        }
    };
    view! {
        <Show when=move || open.get()>
            <div class="modal-backdrop">
                <div class="modal" role="dialog" aria-modal="true"
                    on:keydown=move |e| if e.key() == "Escape" { open.set(false) }>
                    <h2>{move || title.get()}</h2>
                    <p>{move || message.get()}</p>
                    {move || expected.get().map(|name| view! {
                        <label class="confirm-typed">
                            <span>"Type "<code>{name.clone()}</code>" to confirm"</span>
                            <input data-testid="confirm-name" autocomplete="off" spellcheck="false" node_ref=input
                                prop:value=move || typed.get()
                                on:input=move |e| typed.set(event_target_value(&e))
                                on:keydown=move |e| if e.key() == "Enter" { confirm() }/>
                        </label>
                    })}
                    <div class="modal-actions">
                        <button class="btn" on:click=move |_| open.set(false)>"Cancel"</button>
                        <button
                            class=if danger { "btn btn-danger" } else { "btn btn-primary" }
                            data-testid="confirm"
                            disabled=move || !matches()
                            on:click=move |_| confirm()
                        >{confirm_label}</button>
                    </div>
                </div>
            </div>
        </Show>
    }
}

/// A status pill: colour, icon and word (never colour alone).
#[component]
pub fn Pill(
    /// `ok`, `degraded`, `outage`, `maintenance` or `unknown`.
    kind: &'static str,
    icon: &'static str,
    #[prop(into)] word: String,
    #[prop(optional, into)] testid: MaybeProp<String>,
    #[prop(optional, into)] title: MaybeProp<String>,
) -> impl IntoView {
    view! {
        <span class=format!("pill pill-{kind}") data-testid=move || testid.get() title=move || title.get()>
            <span aria-hidden="true">{icon}</span>" "{word}
        </span>
    }
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `230 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if v < 10.0 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.0} {}", UNITS[unit])
    }
}

/// The Opsdeck mark (inline SVG: no extra request, no hashed-name lookup).
#[component]
pub fn Logo() -> impl IntoView {
    view! {
        <svg class="brand-mark" viewBox="0 0 32 32" aria-hidden="true">
            <rect width="32" height="32" rx="7" fill="#1f6feb"/>
            <path d="M8 17h4l3-7 4 13 3-6h2" fill="none" stroke="#fff" stroke-width="2.5" stroke-linecap="round" stroke-linejoin="round"/>
        </svg>
    }
}

/// A detail page's record as loaded: `state` is what is shown (or why it
/// cannot be), `stale` says a refetch failed while the last record is kept.
pub struct Detail<T: Send + Sync + 'static> {
    pub state: RwSignal<Option<Result<T, crate::api::ApiError>>>,
    pub stale: RwSignal<Option<String>>,
}

impl<T: Send + Sync + 'static> Clone for Detail<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for Detail<T> {}

impl<T: Clone + PartialEq + Send + Sync + 'static> Default for Detail<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + PartialEq + Send + Sync + 'static> Detail<T> {
    pub fn new() -> Self {
        Detail {
            state: RwSignal::new(None),
            stale: RwSignal::new(None),
        }
    }

    /// Shows an answer: a record replaces what is shown (with
    /// `only_changes`, only when it differs: open parts stay open); an error
    /// replaces it too, unless a record is shown and the error is passing
    /// (not a 404): then the record stays and `stale` says why.
    pub fn show(self, r: Result<T, crate::api::ApiError>, only_changes: bool) {
        let had = self
            .state
            .try_with_untracked(|s| matches!(s, Some(Ok(_))))
            .unwrap_or(false);
        match r {
            Ok(d) => {
                self.stale.try_set(None);
                let changed = !only_changes
                    || self
                        .state
                        .try_with_untracked(|s| s.as_ref() != Some(&Ok(d.clone())))
                        == Some(true);
                if changed {
                    self.state.try_set(Some(Ok(d)));
                }
            }
            // Keep what is shown through a passing network error.
            Err(e) if had && e.status != 404 => {
                self.stale.try_set(Some(e.message));
            }
            Err(e) => {
                self.state.try_set(Some(Err(e)));
            }
        }
    }
}
