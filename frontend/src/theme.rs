//! Light and dark themes: `data-theme` on `<html>`, chosen by the user and
//! kept in `localStorage`, else taken from `prefers-color-scheme`.

use leptos::prelude::*;

use crate::icons::{Icon, IconName};

const KEY: &str = "opsdeck-theme";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
}

impl Theme {
    fn as_str(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

fn apply(theme: Theme) {
    if let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = root.set_attribute("data-theme", theme.as_str());
    }
}

/// The saved choice, else the system preference.
fn initial() -> Theme {
    match storage()
        .and_then(|s| s.get_item(KEY).ok().flatten())
        .as_deref()
    {
        Some("dark") => Theme::Dark,
        Some("light") => Theme::Light,
        _ => {
            let dark = web_sys::window()
                .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
                .is_some_and(|m| m.matches());
            if dark {
                Theme::Dark
            } else {
                Theme::Light
            }
        }
    }
}

#[derive(Clone, Copy)]
struct ThemeState(RwSignal<Theme>);

/// Applies the initial theme (before the first render, so nothing flashes)
/// and puts the theme in context.
pub fn provide() {
    let theme = initial();
    apply(theme);
    provide_context(ThemeState(RwSignal::new(theme)));
}

/// The button in the top bar that switches between light and dark.
#[component]
pub fn ThemeToggle() -> impl IntoView {
    let state = expect_context::<ThemeState>().0;
    let toggle = move |_| {
        let next = match state.get_untracked() {
            Theme::Light => Theme::Dark,
            Theme::Dark => Theme::Light,
        };
        apply(next);
        if let Some(s) = storage() {
            let _ = s.set_item(KEY, next.as_str());
        }
        state.set(next);
    };
    let label = move || match state.get() {
        Theme::Light => "Switch to dark theme",
        Theme::Dark => "Switch to light theme",
    };
    view! {
        <button type="button" class="btn btn-ghost btn-icon" data-testid="theme-toggle"
            aria-label=label title=label on:click=toggle>
            {move || match state.get() {
                Theme::Light => view! { <Icon name=IconName::Moon/> },
                Theme::Dark => view! { <Icon name=IconName::Sun/> },
            }}
        </button>
    }
}
