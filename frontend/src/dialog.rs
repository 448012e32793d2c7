//! The modal dialog, written once and reused: a native `<dialog>` opened with
//! `showModal()`, so the browser traps focus, makes the page behind inert,
//! closes on Escape and gives focus back afterwards.
//!
//! [`ConfirmDialog`] builds on it for destructive actions: the title and the
//! button name the target ("Disable alice"), and Cancel has the focus.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use leptos::prelude::*;

use crate::icons::{Icon, IconName};

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// A modal dialog. Its content exists only while it is open, so forms in it
/// start empty each time.
#[component]
pub fn Modal(
    /// Whether the dialog is shown.
    #[prop(into)]
    open: Signal<bool>,
    /// Called when the user closes it (Escape, the close button).
    on_close: Callback<()>,
    #[prop(into)] title: Signal<String>,
    #[prop(optional)] testid: Option<&'static str>,
    children: ChildrenFn,
) -> impl IntoView {
    let node = NodeRef::<leptos::html::Dialog>::new();
    let title_id = format!("dialog-title-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
    Effect::new(move |_| {
        let want = open.get();
        if let Some(d) = node.get() {
            if want && !d.open() {
                let _ = d.show_modal();
            } else if !want && d.open() {
                d.close();
            }
        }
    });
    let children = StoredValue::new(children);
    let tid = title_id.clone();
    view! {
        <dialog node_ref=node class="modal" aria-labelledby=title_id data-testid=testid
            on:close=move |_| on_close.run(())>
            <Show when=move || open.get()>
                <div class="modal-inner">
                    <header class="modal-header">
                        <h2 id=tid.clone()>{move || title.get()}</h2>
                        <button type="button" class="btn btn-ghost btn-icon" aria-label="Close"
                            on:click=move |_| on_close.run(())>
                            <Icon name=IconName::Close/>
                        </button>
                    </header>
                    {children.with_value(|c| c())}
                </div>
            </Show>
        </dialog>
    }
}

/// A destructive (or otherwise weighty) action waiting for confirmation.
#[derive(Clone)]
pub struct ConfirmRequest {
    /// The question, naming the target: "Disable alice?".
    pub title: String,
    /// What will happen.
    pub body: String,
    /// The confirm button, naming the target: "Disable alice".
    pub confirm: String,
    /// Red confirm button.
    pub danger: bool,
    /// Runs when confirmed (after the dialog closes).
    pub action: Arc<dyn Fn() + Send + Sync>,
}

/// One confirmation dialog per page: set the request to ask.
#[component]
pub fn ConfirmDialog(request: RwSignal<Option<ConfirmRequest>>) -> impl IntoView {
    let open = Signal::derive(move || request.with(Option::is_some));
    let title = Signal::derive(move || {
        request.with(|r| r.as_ref().map(|r| r.title.clone()).unwrap_or_default())
    });
    let close = Callback::new(move |_| request.set(None));
    view! {
        <Modal open on_close=close title testid="confirm-dialog">
            {move || request.get().map(|r| {
                let action = r.action.clone();
                view! {
                    <p class="modal-text">{r.body.clone()}</p>
                    <div class="modal-actions">
                        <button type="button" class="btn btn-secondary" autofocus data-testid="confirm-cancel"
                            on:click=move |_| request.set(None)>"Cancel"</button>
                        <button type="button" class=if r.danger { "btn btn-danger" } else { "btn btn-primary" } data-testid="confirm"
                            on:click=move |_| { request.set(None); action(); }>
                            {r.confirm.clone()}
                        </button>
                    </div>
                }
            })}
        </Modal>
    }
}
