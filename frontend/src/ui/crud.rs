//! The shared parts of a list-with-CRUD section (schedules, maintenance
//! windows, backup plans, people, engines, …): the section's state
//! ([`Crud`]: the open form, the last notice, the delete awaiting
//! confirmation) and the pieces every such section draws the same way —
//! the notice ([`Notice`]), the form slot ([`CrudForm`]), the list's
//! loading / error / empty / shown states ([`CrudList`]), a table of the
//! records ([`CrudTable`]) and the delete confirmation ([`CrudDelete`]).
//!
//! The pieces are separate rather than one section component because the
//! sections differ in where they put the heading, the "add" button and the
//! form (a page head, a card head, a tab's button row); each keeps its own
//! markup and test ids, these keep the behaviour in one place.

use leptos::prelude::*;

use super::{Confirm, EmptyState, ErrorState, ErrorStateProps, Loading};
use crate::api::ApiError;

/// What a section's form is open for.
#[derive(Clone, PartialEq)]
pub enum FormMode<T> {
    Add,
    Edit(Box<T>),
}

impl<T> FormMode<T> {
    /// The record being edited; `None` when adding.
    pub fn existing(self) -> Option<T> {
        match self {
            FormMode::Add => None,
            FormMode::Edit(t) => Some(*t),
        }
    }
}

/// What a list-with-CRUD section keeps: which form is open, the last
/// notice (`Ok` for done, `Err` for refused), and the record (id, name) a
/// delete waits to be confirmed for.
pub struct Crud<T: Send + Sync + 'static> {
    pub form: RwSignal<Option<FormMode<T>>>,
    pub notice: RwSignal<Option<Result<String, String>>>,
    delete_target: RwSignal<Option<(i64, String)>>,
    delete_open: RwSignal<bool>,
}

impl<T: Send + Sync + 'static> Clone for Crud<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for Crud<T> {}

impl<T: Send + Sync + 'static> Default for Crud<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + Sync + 'static> Crud<T> {
    pub fn new() -> Self {
        Crud {
            form: RwSignal::new(None),
            notice: RwSignal::new(None),
            delete_target: RwSignal::new(None),
            delete_open: RwSignal::new(false),
        }
    }

    /// Opens the form for a new record (the last notice goes).
    pub fn add(self) {
        self.notice.set(None);
        self.form.set(Some(FormMode::Add));
    }

    /// Opens the form on `record` (the last notice goes).
    pub fn edit(self, record: T) {
        self.notice.set(None);
        self.form.set(Some(FormMode::Edit(Box::new(record))));
    }

    pub fn close(self) {
        self.form.set(None);
    }

    /// Closes the form and says what was saved.
    pub fn saved(self, message: String) {
        self.form.set(None);
        self.notice.set(Some(Ok(message)));
    }

    /// Says how an action ended (after an await: the section may be gone).
    pub fn report(self, outcome: Result<String, String>) {
        self.notice.try_set(Some(outcome));
    }

    /// Asks to confirm deleting the record `id` called `name`.
    pub fn ask_delete(self, id: i64, name: String) {
        self.delete_target.set(Some((id, name)));
        self.delete_open.set(true);
    }
}

/// A section's notice: `notice-ok` with role status, or `notice-error`
/// with role alert; nothing while there is none.
#[component]
pub fn Notice(
    notice: RwSignal<Option<Result<String, String>>>,
    #[prop(optional)] testid: Option<&'static str>,
) -> impl IntoView {
    move || {
        notice.get().map(|n| match n {
            Ok(m) => {
                view! { <div class="notice notice-ok" role="status" data-testid=testid>{m}</div> }
                    .into_any()
            }
            Err(m) => {
                view! { <div class="notice notice-error" role="alert" data-testid=testid>{m}</div> }
                    .into_any()
            }
        })
    }
}

/// The form slot: what `form` draws for the open form, nothing while none
/// is open.
#[component]
pub fn CrudForm<T, F, V>(crud: Crud<T>, form: F) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
    F: Fn(FormMode<T>) -> V + Send + Sync + 'static,
    V: IntoView + 'static,
{
    move || crud.form.get().map(|mode| form(mode).into_any())
}

/// Asks before a delete: the dialog names the record (`title` and
/// `message` get its name) and `on_delete` runs with its id and name once
/// confirmed.
#[component]
pub fn CrudDelete<T: Send + Sync + 'static>(
    crud: Crud<T>,
    #[prop(into)] title: Callback<String, String>,
    #[prop(into)] message: Callback<String, String>,
    #[prop(default = "Delete")] confirm_label: &'static str,
    on_delete: Callback<(i64, String)>,
) -> impl IntoView {
    let target = crud.delete_target;
    view! {
        <Confirm open=crud.delete_open
            title=Signal::derive(move || target.get().map(|(_, n)| title.run(n)).unwrap_or_default())
            message=Signal::derive(move || target.get().map(|(_, n)| message.run(n)).unwrap_or_default())
            confirm_label=confirm_label
            on_confirm=Callback::new(move |_| {
                if let Some(t) = target.get_untracked() {
                    on_delete.run(t);
                }
            })/>
    }
}

/// A section's records as they stand: loading (skeleton rows), could not
/// load (with a retry when given), none (the empty state: `empty_title`
/// over `empty`, wrapped in an element carrying `testid` and
/// `data-count="0"` when `testid` is given), or shown by `show`.
#[component]
pub fn CrudList<T, F, V>(
    #[prop(into)] items: Signal<Option<Result<Vec<T>, ApiError>>>,
    #[prop(default = 3)] loading_rows: usize,
    #[prop(optional)] error_title: Option<&'static str>,
    #[prop(optional)] retry: Option<Callback<()>>,
    empty_title: &'static str,
    #[prop(into)] empty: ViewFn,
    #[prop(optional)] testid: Option<&'static str>,
    show: F,
) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
    F: Fn(Vec<T>) -> V + Send + Sync + 'static,
    V: IntoView + 'static,
{
    move || match items.get() {
        None => view! { <Loading rows=loading_rows/> }.into_any(),
        Some(Err(e)) => ErrorState(ErrorStateProps {
            message: e.message,
            retry,
            title: error_title,
        })
        .into_any(),
        Some(Ok(v)) if v.is_empty() => {
            let body = empty.run();
            let state = view! { <EmptyState title=empty_title>{body}</EmptyState> };
            match testid {
                Some(id) => view! { <div data-testid=id data-count="0">{state}</div> }.into_any(),
                None => state.into_any(),
            }
        }
        Some(Ok(v)) => show(v).into_any(),
    }
}

/// The records as a table (`class`, `testid` and `data-count` on the
/// table): the children are the header row's cells, `row` draws a record.
#[component]
pub fn CrudTable<T, R, V>(
    rows: Vec<T>,
    class: &'static str,
    testid: &'static str,
    row: R,
    children: Children,
) -> impl IntoView
where
    R: Fn(T) -> V + 'static,
    V: IntoView + 'static,
{
    let count = rows.len().to_string();
    view! {
        <div class="table-wrap"><table class=class data-testid=testid data-count=count>
            <thead><tr>{children()}</tr></thead>
            <tbody>{rows.into_iter().map(row).collect_view()}</tbody>
        </table></div>
    }
}

/// A record's enabled switch (for those who may change it): the box and
/// the word, disabled while `busy`.
#[component]
pub fn EnabledSwitch(
    enabled: bool,
    testid: String,
    #[prop(into)] busy: Signal<bool>,
    on_toggle: Callback<()>,
) -> impl IntoView {
    view! {
        <label class="check switch" title=if enabled { "Enabled: click to pause" } else { "Paused: click to enable" }>
            <input type="checkbox" data-testid=testid prop:checked=enabled
                disabled=move || busy.get()
                on:change=move |_| on_toggle.run(())/>
            {if enabled { "enabled" } else { "paused" }}
        </label>
    }
}

/// Enabled or paused as a pill (for those who cannot change it).
#[component]
pub fn EnabledPill(enabled: bool) -> impl IntoView {
    if enabled {
        view! { <span class="pill pill-ok"><span aria-hidden="true">"✓"</span>" enabled"</span> }
            .into_any()
    } else {
        view! { <span class="pill pill-unknown"><span aria-hidden="true">"‖"</span>" paused"</span> }.into_any()
    }
}
