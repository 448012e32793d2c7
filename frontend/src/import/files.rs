//! The files of a compose project being imported: chosen with a file input
//! (`multiple`) or dropped on the page, each listed with its path, its role
//! and its place in the load order.
//!
//! Decisions the issue left open:
//! - A browser gives only base names, so every path is editable (an
//!   included file is `monitoring/compose.yaml` relative to the project
//!   directory).
//! - Roles are guessed from the name: `.env`, `*.env` and `.env.*` are env
//!   files; compose's own names (`compose.yaml`, `docker-compose.yml`,
//!   `compose.<anything>.yaml`, …) are compose files; any other YAML file is
//!   a compose file when it is the first one, else "other" (a file that is
//!   included or extended, read only when a compose file names it). The
//!   role can be changed. A file whose name is in the list already (an
//!   included `monitoring/compose.yaml` beside the top `compose.yaml`) is
//!   added as "other", its path marked as taken until it is edited: the
//!   page never drops or replaces a file on its own.
//! - Compose files load in list order (like `-f` given in that order); a
//!   batch is sorted so that `compose.yaml` comes before its override file,
//!   as `docker compose` picks them up.

use std::sync::Arc;

use leptos::prelude::*;

use crate::ui::bytes;

/// What a file is for in the project.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// Loaded as `-f`, in list order.
    Compose,
    /// Interpolation variables (`--env-file`), in list order.
    Env,
    /// Read only when a compose file includes or extends it.
    Other,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Compose => "compose",
            Role::Env => "env",
            Role::Other => "other",
        }
    }

    fn from_str(s: &str) -> Role {
        match s {
            "compose" => Role::Compose,
            "env" => Role::Env,
            _ => Role::Other,
        }
    }
}

/// One uploaded file. Path and role are signals of their own, so editing
/// them does not redraw the list (the input keeps its focus).
#[derive(Clone, Debug)]
pub struct Upload {
    pub id: u32,
    /// The name the browser gave.
    pub name: String,
    pub content: Arc<str>,
    pub path: RwSignal<String>,
    pub role: RwSignal<Role>,
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// `.env`, `prod.env`, `.env.local`.
pub fn is_env_name(name: &str) -> bool {
    let n = base_name(name);
    n == ".env" || n.ends_with(".env") || n.starts_with(".env.")
}

/// compose's names: `compose.yaml`, `docker-compose.yml`, and the
/// `compose.<x>.yaml` family (`compose.override.yaml`, `compose.prod.yml`).
fn is_compose_name(name: &str) -> bool {
    let n = base_name(name);
    is_yaml(n) && (n.starts_with("compose.") || n.starts_with("docker-compose."))
}

/// The role a file of this name most likely has.
pub fn guess_role(name: &str, have_compose: bool) -> Role {
    if is_env_name(name) {
        Role::Env
    } else if is_compose_name(name) || (is_yaml(name) && !have_compose) {
        Role::Compose
    } else {
        Role::Other
    }
}

/// Where a file goes in a batch: the base compose file, other compose
/// files, override files, then the rest.
fn batch_rank(name: &str) -> u8 {
    let n = base_name(name);
    match n {
        "compose.yaml" | "compose.yml" | "docker-compose.yaml" | "docker-compose.yml" => 0,
        _ if is_compose_name(n) && n.contains(".override.") => 2,
        _ if is_compose_name(n) => 1,
        _ if is_yaml(n) => 3,
        _ => 4,
    }
}

/// Adds read files `(name, text)` to the list, in load order.
pub fn add(list: RwSignal<Vec<Upload>>, next_id: RwSignal<u32>, mut read: Vec<(String, String)>) {
    read.sort_by_key(|(n, _)| batch_rank(n));
    for (name, text) in read {
        let (have_compose, taken) = list.with_untracked(|l| {
            (
                l.iter().any(|u| u.role.get_untracked() == Role::Compose),
                l.iter().any(|u| u.path.get_untracked() == name),
            )
        });
        let role = if taken {
            Role::Other
        } else {
            guess_role(&name, have_compose)
        };
        let id = next_id.get_untracked();
        next_id.set(id + 1);
        let upload = Upload {
            id,
            role: RwSignal::new(role),
            path: RwSignal::new(name.clone()),
            name,
            content: Arc::from(text),
        };
        list.update(|l| l.push(upload));
    }
}

/// Reads every file of a `FileList` as text, then adds them in one batch.
pub fn read_all(
    files: web_sys::FileList,
    list: RwSignal<Vec<Upload>>,
    next_id: RwSignal<u32>,
    error: RwSignal<Option<String>>,
) {
    let files: Vec<web_sys::File> = (0..files.length()).filter_map(|i| files.get(i)).collect();
    if files.is_empty() {
        return;
    }
    leptos::task::spawn_local(async move {
        let mut read = Vec::new();
        for f in files {
            match wasm_bindgen_futures::JsFuture::from(f.text()).await {
                Ok(v) => match v.as_string() {
                    Some(s) => read.push((f.name(), s)),
                    None => {
                        error.set(Some(format!("{} is not a text file.", f.name())));
                        return;
                    }
                },
                Err(_) => {
                    error.set(Some(format!("The browser could not read {}.", f.name())));
                    return;
                }
            }
        }
        add(list, next_id, read);
    });
}

/// The load position of each compose file (1-based) and env file, by id.
fn order_label(list: &[Upload], id: u32) -> String {
    let Some(me) = list.iter().find(|u| u.id == id) else {
        return String::new();
    };
    let role = me.role.get();
    let pos = list
        .iter()
        .filter(|u| u.role.get() == role)
        .position(|u| u.id == id)
        .map(|p| p + 1)
        .unwrap_or(0);
    match role {
        Role::Compose => format!("-f {pos}"),
        Role::Env => format!("env {pos}"),
        Role::Other => "—".into(),
    }
}

fn index_of(list: RwSignal<Vec<Upload>>, id: u32) -> usize {
    list.with(|l| l.iter().position(|u| u.id == id).unwrap_or(0))
}

fn swap(list: RwSignal<Vec<Upload>>, id: u32, up: bool) {
    list.update(|l| {
        let Some(i) = l.iter().position(|u| u.id == id) else {
            return;
        };
        let j = if up { i.checked_sub(1) } else { Some(i + 1) };
        if let Some(j) = j.filter(|j| *j < l.len()) {
            l.swap(i, j);
        }
    });
}

/// Paths given twice, which the server could not tell apart.
pub fn duplicate_path(list: &[Upload]) -> Option<String> {
    let mut seen = std::collections::BTreeSet::new();
    list.iter()
        .map(|u| u.path.get_untracked().trim().to_owned())
        .find(|p| !seen.insert(p.clone()))
}

/// The drop zone and file input, then the list of files.
#[component]
pub fn FileList(
    list: RwSignal<Vec<Upload>>,
    next_id: RwSignal<u32>,
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    let over = RwSignal::new(false);
    let on_pick = move |e: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&e);
        if let Some(files) = input.files() {
            read_all(files, list, next_id, error);
        }
        // The same file chosen again must fire `change` again.
        input.set_value("");
    };
    let on_drop = move |e: leptos::ev::DragEvent| {
        e.prevent_default();
        over.set(false);
        if let Some(files) = e.data_transfer().and_then(|d| d.files()) {
            read_all(files, list, next_id, error);
        }
    };
    let row = move |u: Upload| {
        let id = u.id;
        let (path, role) = (u.path, u.role);
        let name = u.name.clone();
        let size = bytes(u.content.len() as u64);
        let idx = move || index_of(list, id);
        let is_last = move || idx() + 1 >= list.with(Vec::len);
        let taken = move || {
            let mine = path.get();
            list.with(|l| {
                l.iter()
                    .filter(|x| x.path.get().trim() == mine.trim())
                    .count()
                    > 1
            })
        };
        view! {
            <li class="compose-file" class:path-taken=taken data-testid=move || format!("file-row-{}", idx())
                data-path=move || path.get()>
                <span class="file-order mono" data-testid=move || format!("file-order-{}", idx())>
                    {move || list.with(|l| order_label(l, id))}
                </span>
                <input class="mono file-path" spellcheck="false" autocomplete="off"
                    aria-label=format!("Path of {name} in the project")
                    data-testid=move || format!("file-path-{}", idx())
                    prop:value=move || path.get() on:input=move |e| path.set(event_target_value(&e))/>
                <select class="file-role" aria-label=format!("Role of {}", u.name)
                    data-testid=move || format!("file-role-{}", idx())
                    on:change=move |e| role.set(Role::from_str(&event_target_value(&e)))>
                    {[(Role::Compose, "Compose file"), (Role::Env, "Env file"), (Role::Other, "Other (included, extended)")]
                        .into_iter()
                        .map(|(r, label)| view! { <option value=r.as_str() selected=move || role.get() == r>{label}</option> })
                        .collect_view()}
                </select>
                <span class="muted small file-size">{size}</span>
                {move || taken().then(|| view! {
                    <span class="path-taken-hint small" role="alert">"Another file has this path: give this one its folder, e.g. "<code>"monitoring/"{path.get()}</code></span>
                })}
                <span class="file-actions">
                    <button type="button" class="btn btn-small" aria-label="Move up" title="Earlier in the load order"
                        data-testid=move || format!("file-up-{}", idx())
                        disabled=move || idx() == 0 on:click=move |_| swap(list, id, true)>"↑"</button>
                    <button type="button" class="btn btn-small" aria-label="Move down" title="Later in the load order"
                        data-testid=move || format!("file-down-{}", idx())
                        disabled=is_last on:click=move |_| swap(list, id, false)>"↓"</button>
                    <button type="button" class="btn btn-small" aria-label="Remove"
                        data-testid=move || format!("file-remove-{}", idx())
                        on:click=move |_| list.update(|l| l.retain(|x| x.id != id))>"✕"</button>
                </span>
            </li>
        }
    };
    view! {
        <div class="drop-zone span-all" class:drop-over=move || over.get() data-testid="compose-drop"
            on:dragover=move |e: leptos::ev::DragEvent| { e.prevent_default(); over.set(true); }
            on:dragleave=move |_| over.set(false)
            on:drop=on_drop>
            <label class="file-load">
                <span><strong>"Add files"</strong>" — drop them here or choose: compose files, the files they include or extend, and "<code>".env"</code></span>
                <input type="file" multiple data-testid="compose-files" on:change=on_pick/>
            </label>
        </div>
        <Show when=move || list.with(|l| !l.is_empty())>
            <div class="span-all">
                <ol class="compose-files" data-testid="compose-file-list" aria-label="Files of the project">
                    <For each=move || list.get() key=|u| u.id children=row/>
                </ol>
                <p class="hint small">"Compose files load in this order (like "<code>"-f"</code>"); later files override earlier ones. Paths are relative to the project directory: give an included file the path its "<code>"include:"</code>" names."</p>
            </div>
        </Show>
    }
}
