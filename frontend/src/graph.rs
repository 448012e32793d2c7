//! The dependency graph (`/graph`): services as boxes in the server's
//! layered layout, an arrow from each service to what it requires, coloured
//! by run state (with an icon and a word in every box). Pan by dragging the
//! background, zoom with the wheel or the buttons; the view fits on load.
//! Search dims what does not match; "impact of" highlights what a service
//! takes down. Live through the inventory events. No inline styles: the
//! pan/zoom is a `transform` attribute on an inner group.

use std::collections::{BTreeMap, BTreeSet};

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use leptos_router::NavigateOptions;
use opsdeck_wire::{GraphNode, GraphView, Role, Tier};

use crate::api::{self};
use crate::live::use_inventory_events;
use crate::session::current_role;
use crate::states::{run_state, RunStatePill, ALL_RUN_STATES};
use crate::ui::{EmptyState, ErrorState, Loading};

const NODE_W: f64 = 160.0;
const NODE_H: f64 = 44.0;
/// Below this scale labels get hard to read: the first view does not go
/// smaller (Fit does).
const READABLE: f64 = 0.7;
const MIN_SCALE: f64 = 0.05;
const MAX_SCALE: f64 = 3.0;

/// Pan and zoom: screen = graph × k + (tx, ty).
#[derive(Clone, Copy, PartialEq)]
struct View {
    tx: f64,
    ty: f64,
    k: f64,
}

/// Bounding box of the nodes: (min x, min y, max x, max y).
fn bounds(g: &GraphView) -> (f64, f64, f64, f64) {
    let mut b = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for n in &g.nodes {
        b.0 = b.0.min(n.x - NODE_W / 2.0);
        b.1 = b.1.min(n.y - NODE_H / 2.0);
        b.2 = b.2.max(n.x + NODE_W / 2.0);
        b.3 = b.3.max(n.y + NODE_H / 2.0);
    }
    if g.nodes.is_empty() {
        (0.0, 0.0, g.width.max(1.0), g.height.max(1.0))
    } else {
        b
    }
}

/// The view that shows the whole graph in a `cw`×`ch` viewport; with
/// `readable`, never smaller than [`READABLE`] (top of the graph shown).
fn fit(g: &GraphView, cw: f64, ch: f64, readable: bool) -> View {
    let (x0, y0, x1, y1) = bounds(g);
    let pad = 24.0;
    let (bw, bh) = ((x1 - x0).max(1.0), (y1 - y0).max(1.0));
    let mut k = ((cw - 2.0 * pad) / bw)
        .min((ch - 2.0 * pad) / bh)
        .clamp(MIN_SCALE, 1.25);
    let clipped = readable && k < READABLE;
    if clipped {
        k = READABLE;
    }
    let tx = if bw * k <= cw {
        (cw - bw * k) / 2.0
    } else {
        pad
    } - x0 * k;
    let ty = if bh * k <= ch && !clipped {
        (ch - bh * k) / 2.0
    } else {
        pad
    } - y0 * k;
    View { tx, ty, k }
}

/// Whether the layout puts layers in rows (same layer, same y).
fn layers_in_rows(nodes: &[GraphNode]) -> bool {
    let mut first: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
    let (mut same_y, mut same_x) = (0, 0);
    for n in nodes {
        match first.get(&n.layer) {
            None => {
                first.insert(n.layer, (n.x, n.y));
            }
            Some((x, y)) => {
                if (n.y - y).abs() < 1.0 {
                    same_y += 1;
                }
                if (n.x - x).abs() < 1.0 {
                    same_x += 1;
                }
            }
        }
    }
    same_y >= same_x
}

/// An edge from the dependent `a` to its dependency `b`, as an SVG path.
fn edge_path(a: &GraphNode, b: &GraphNode, rows: bool) -> String {
    let (hw, hh) = (NODE_W / 2.0, NODE_H / 2.0);
    if rows && (a.y - b.y).abs() > NODE_H {
        let (sy, ey) = if b.y < a.y {
            (a.y - hh, b.y + hh)
        } else {
            (a.y + hh, b.y - hh)
        };
        let my = (sy + ey) / 2.0;
        format!(
            "M{:.1},{sy:.1} C{:.1},{my:.1} {:.1},{my:.1} {:.1},{ey:.1}",
            a.x, a.x, b.x, b.x
        )
    } else {
        let (sx, ex) = if b.x < a.x {
            (a.x - hw, b.x + hw)
        } else {
            (a.x + hw, b.x - hw)
        };
        let mx = (sx + ex) / 2.0;
        format!(
            "M{sx:.1},{:.1} C{mx:.1},{:.1} {mx:.1},{:.1} {ex:.1},{:.1}",
            a.y, a.y, b.y, b.y
        )
    }
}

fn short(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        name.to_string()
    } else {
        let mut s: String = name.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

#[component]
pub fn Graph() -> impl IntoView {
    let role = current_role();
    let reload = RwSignal::new(0u32);
    use_inventory_events(reload);
    let graph = LocalResource::new(move || {
        reload.get();
        api::graph::view()
    });
    let data = Memo::new(move |_| graph.get().and_then(Result::ok));
    let has_nodes =
        Signal::derive(move || data.with(|d| d.as_ref().is_some_and(|g| !g.nodes.is_empty())));
    let clipped = RwSignal::new(false);
    let query = RwSignal::new(String::new());
    let impact_of = RwSignal::new(String::new());
    let impact = RwSignal::new(None::<Result<BTreeSet<String>, String>>);

    // Impact of the chosen service.
    Effect::new(move |_| {
        let name = impact_of.get();
        if name.is_empty() {
            impact.set(None);
            return;
        }
        reload.track();
        leptos::task::spawn_local(async move {
            let r = api::graph::impact(&name).await;
            impact.set(Some(
                r.map(|q| q.services.into_iter().filter(|s| *s != name).collect())
                    .map_err(|e| e.message),
            ));
        });
    });
    let impacted =
        Memo::new(move |_| impact.with(|i| i.as_ref().and_then(|r| r.as_ref().ok()).cloned()));

    let names = Memo::new(move |_| {
        data.with(|d| {
            d.as_ref().map(|g| {
                let mut v: Vec<String> = g.nodes.iter().map(|n| n.name.clone()).collect();
                v.sort();
                v
            })
        })
        .unwrap_or_default()
    });

    view! {
        <div class="page-head">
            <h1>"Dependency graph"</h1>
            <span class="spacer"></span>
            <a class="btn" href="/services">"Services list"</a>
        </div>
        <div class="toolbar">
            <input class="search" type="search" placeholder="Find a service" aria-label="Find a service" data-testid="graph-search"
                prop:value=move || query.get() on:input=move |e| query.set(event_target_value(&e))/>
            <label class="inline">"Impact of"
                <select data-testid="graph-impact" on:change=move |e| impact_of.set(event_target_value(&e))>
                    <option value="">"—"</option>
                    {move || names.get().into_iter().map(|n| view! { <option value=n.clone() selected=impact_of.get_untracked() == n>{n.clone()}</option> }).collect_view()}
                </select>
            </label>
        </div>
        {move || match graph.get() {
            None => view! { <Loading rows=6/> }.into_any(),
            Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| reload.update(|n| *n += 1))/> }.into_any(),
            Some(Ok(g)) if g.nodes.is_empty() => view! {
                <EmptyState title="No services yet">
                    {if role >= Role::Admin {
                        view! { <p>"The graph draws itself from the inventory. "<a href="/inventory">"Import a docker-compose file"</a>" (its depends_on become edges) or add services on the "<a href="/services">"Services"</a>" page."</p> }.into_any()
                    } else {
                        view! { <p>"The graph draws itself from the inventory once an admin imports services."</p> }.into_any()
                    }}
                </EmptyState>
            }.into_any(),
            Some(Ok(_)) => ().into_any(),
        }}
        <ImpactNotice impact impact_of/>
        <GraphCanvas data has_nodes clipped query impact_of impacted/>
        <Show when=move || clipped.get() && has_nodes.get()>
            <p class="hint">"Large graph: shown at a readable size. Drag to pan, use the wheel or +/− to zoom, Fit to see everything."</p>
        </Show>
        <Show when=move || has_nodes.get()>
            <GraphLegend/>
            <GraphList data/>
        </Show>
    }
}

/// What the chosen service takes down (or that nothing requires it).
#[component]
fn ImpactNotice(
    impact: RwSignal<Option<Result<BTreeSet<String>, String>>>,
    impact_of: RwSignal<String>,
) -> impl IntoView {
    move || {
        impact.get().map(|r| match r {
        Err(m) => view! { <div class="notice notice-error" role="alert">{m}</div> }.into_any(),
        Ok(set) if set.is_empty() => view! {
            <div class="notice notice-ok" role="status" data-testid="graph-impact-result">"Nothing else requires "{impact_of.get()}"."</div>
        }.into_any(),
        Ok(set) => view! {
            <div class="notice notice-warn" role="status" data-testid="graph-impact-result">
                <strong>{format!("If {} is down, {} service{} {} affected:", impact_of.get(), set.len(), if set.len() == 1 { "" } else { "s" }, if set.len() == 1 { "is" } else { "are" })}</strong>
                <span>{set.into_iter().collect::<Vec<_>>().join(", ")}</span>
                <button class="btn btn-small" on:click=move |_| impact_of.set(String::new())>"Clear"</button>
            </div>
        }.into_any(),
    })
    }
}

/// The drawing with its zoom buttons: pans by dragging the background,
/// zooms with the wheel; fits once when the first graph is shown (later
/// updates keep the view). `clipped` says the first view is larger than
/// the whole graph's.
#[component]
fn GraphCanvas(
    data: Memo<Option<GraphView>>,
    has_nodes: Signal<bool>,
    clipped: RwSignal<bool>,
    query: RwSignal<String>,
    impact_of: RwSignal<String>,
    impacted: Memo<Option<BTreeSet<String>>>,
) -> impl IntoView {
    let view_t = RwSignal::new(View {
        tx: 0.0,
        ty: 0.0,
        k: 1.0,
    });
    let fitted = RwSignal::new(false);
    let wrap = NodeRef::<leptos::html::Div>::new();
    let drag = StoredValue::new(None::<(f64, f64, View)>);
    let panning = RwSignal::new(false);

    let size = move || {
        wrap.get_untracked()
            .map(|el| (el.client_width() as f64, el.client_height() as f64))
            .filter(|(w, h)| *w > 0.0 && *h > 0.0)
    };
    let do_fit = move |readable: bool| {
        if let (Some(g), Some((cw, ch))) = (data.get_untracked(), size()) {
            let v = fit(&g, cw, ch, readable);
            let full = fit(&g, cw, ch, false);
            clipped.set(v.k > full.k + 1e-9);
            view_t.set(v);
            true
        } else {
            false
        }
    };
    // Fit once, when the first graph is shown (later updates keep the view).
    Effect::new(move |_| {
        if has_nodes.get() && wrap.get().is_some() && !fitted.get_untracked() {
            request_animation_frame(move || {
                if do_fit(true) {
                    fitted.set(true);
                }
            });
        }
    });
    let zoom_at = move |cx: f64, cy: f64, factor: f64| {
        view_t.update(|v| {
            let k = (v.k * factor).clamp(MIN_SCALE, MAX_SCALE);
            let r = k / v.k;
            v.tx = cx - (cx - v.tx) * r;
            v.ty = cy - (cy - v.ty) * r;
            v.k = k;
        });
    };
    let zoom_center = move |factor: f64| {
        if let Some((cw, ch)) = size() {
            zoom_at(cw / 2.0, ch / 2.0, factor);
        }
    };
    let local = move |x: i32, y: i32| {
        wrap.get_untracked()
            .map(|el| {
                let r = el.get_bounding_client_rect();
                (x as f64 - r.left(), y as f64 - r.top())
            })
            .unwrap_or((x as f64, y as f64))
    };

    view! {
        <div class="graph-wrap" class:hidden=move || !has_nodes.get() class:is-panning=move || panning.get() node_ref=wrap>
            <div class="graph-controls" role="group" aria-label="Zoom">
                <button class="btn btn-small" aria-label="Zoom in" title="Zoom in" data-testid="graph-zoom-in" on:click=move |_| zoom_center(1.25)>"+"</button>
                <button class="btn btn-small" aria-label="Zoom out" title="Zoom out" data-testid="graph-zoom-out" on:click=move |_| zoom_center(0.8)>"−"</button>
                <button class="btn btn-small" title="Show the whole graph" data-testid="graph-fit" on:click=move |_| { do_fit(false); }>"Fit"</button>
            </div>
            <svg class="graph-svg" data-testid="graph" role="img" aria-label="Service dependency graph"
                on:wheel=move |e| {
                    e.prevent_default();
                    let unit = match e.delta_mode() { 1 => 16.0, 2 => 400.0, _ => 1.0 };
                    let factor = (-e.delta_y() * unit * 0.0015).exp().clamp(0.5, 2.0);
                    let (x, y) = local(e.client_x(), e.client_y());
                    zoom_at(x, y, factor);
                }
                on:pointerdown=move |e| {
                    if e.button() != 0 { return; }
                    drag.set_value(Some((e.client_x() as f64, e.client_y() as f64, view_t.get_untracked())));
                    panning.set(true);
                    if let Some(t) = e.current_target() {
                        use wasm_bindgen::JsCast;
                        if let Ok(el) = t.dyn_into::<web_sys::Element>() {
                            let _ = el.set_pointer_capture(e.pointer_id());
                        }
                    }
                }
                on:pointermove=move |e| {
                    if let Some((x0, y0, v)) = drag.get_value() {
                        view_t.set(View { tx: v.tx + e.client_x() as f64 - x0, ty: v.ty + e.client_y() as f64 - y0, k: v.k });
                    }
                }
                on:pointerup=move |_| { drag.set_value(None); panning.set(false); }
                on:pointercancel=move |_| { drag.set_value(None); panning.set(false); }>
                <defs>
                    <marker id="graph-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                        <path class="graph-arrow" d="M0,0 L10,5 L0,10 z"></path>
                    </marker>
                </defs>
                <g transform=move || { let v = view_t.get(); format!("translate({:.2} {:.2}) scale({:.4})", v.tx, v.ty, v.k) }>
                    {move || data.get().map(|g| view! { <GraphScene g query impact_of impacted/> })}
                </g>
            </svg>
        </div>
    }
}

/// The edges and the nodes of the graph, in graph coordinates: an edge is
/// hot when both its ends are in the chosen service's impact; a node is
/// dimmed when the search or the impact leaves it out.
#[component]
fn GraphScene(
    g: GraphView,
    query: RwSignal<String>,
    impact_of: RwSignal<String>,
    impacted: Memo<Option<BTreeSet<String>>>,
) -> impl IntoView {
    let navigate = use_navigate();
    let by_name: BTreeMap<&str, &GraphNode> =
        g.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let rows = layers_in_rows(&g.nodes);
    let edges = g
        .edges
        .iter()
        .filter_map(|e| {
            let (a, b) = (by_name.get(e.from.as_str())?, by_name.get(e.to.as_str())?);
            let d = edge_path(a, b, rows);
            let (from, to) = (e.from.clone(), e.to.clone());
            let hot = move || {
                let src = impact_of.get();
                impacted.with(|i| {
                    i.as_ref().is_some_and(|set| {
                        (set.contains(&from) || from == src) && (set.contains(&to) || to == src)
                    })
                })
            };
            Some(view! {
                <path class="graph-edge" class:edge-manual=e.source == "manual" class:is-hot=hot d=d marker-end="url(#graph-arrow)">
                    <title>{format!("{} requires {}", e.from, e.to)}</title>
                </path>
            })
        })
        .collect_view();
    let nodes = g
        .nodes
        .iter()
        .map(|n| {
            let (kind, icon, word) = run_state(n.run_state);
            let name = n.name.clone();
            let id = n.id;
            let (m1, m2, m3) = (name.clone(), name.clone(), name.clone());
            let go = navigate.clone();
            let go2 = navigate.clone();
            let href = format!("/services/{id}");
            let href2 = href.clone();
            let matches = move |q: &str| q.is_empty() || m1.to_lowercase().contains(q);
            view! {
                <g class=format!("graph-node gk-{kind}") class:tier-critical=n.tier == Tier::Critical
                    class:is-dim=move || {
                        let q = query.get().trim().to_lowercase();
                        let by_query = !matches(&q);
                        let by_impact = impacted.with(|i| i.as_ref().is_some_and(|s| !s.contains(&m2))) && impact_of.get() != m2;
                        by_query || by_impact
                    }
                    class:is-source=move || impact_of.get() == m3
                    data-testid=format!("graph-node-{name}")
                    transform=format!("translate({:.1} {:.1})", n.x - NODE_W / 2.0, n.y - NODE_H / 2.0)
                    tabindex="0" role="link"
                    aria-label=format!("{name}: {word}, {} tier", n.tier.as_str())
                    on:pointerdown=move |e| e.stop_propagation()
                    on:click=move |_| go(&href, NavigateOptions::default())
                    on:keydown=move |e| if e.key() == "Enter" { go2(&href2, NavigateOptions::default()) }>
                    <title>{format!("{name}: {word} ({} tier)", n.tier.as_str())}</title>
                    <rect class="node-box" width=NODE_W height=NODE_H rx="8" ry="8"></rect>
                    <text class="node-name" x="12" y="19">{short(&name, 19)}</text>
                    <text class="node-state" x="12" y="35">{format!("{icon} {word}")}{(n.tier == Tier::Critical).then_some(" · critical")}</text>
                </g>
            }
        })
        .collect_view();
    view! { <g class="edges">{edges}</g><g class="nodes">{nodes}</g> }
}

/// The run states' colours and the two kinds of edge.
#[component]
fn GraphLegend() -> impl IntoView {
    view! {
        <div class="legend" aria-label="Legend">
            {ALL_RUN_STATES.into_iter().map(|s| view! { <RunStatePill state=s/> }).collect_view()}
            <span class="legend-edge"><svg width="34" height="10" aria-hidden="true"><line x1="2" y1="5" x2="26" y2="5" class="graph-edge" marker-end="url(#graph-arrow)"></line></svg>"requires"</span>
            <span class="legend-edge"><svg width="34" height="10" aria-hidden="true"><line x1="2" y1="5" x2="26" y2="5" class="graph-edge edge-manual" marker-end="url(#graph-arrow)"></line></svg>"added by hand"</span>
        </div>
    }
}

/// The graph as a list (for screen readers and for reading): each service,
/// its state, and what it requires.
#[component]
fn GraphList(data: Memo<Option<GraphView>>) -> impl IntoView {
    view! {
        <details class="graph-list">
            <summary>"The graph as a list"</summary>
            <ul>
                {move || data.get().map(|g| {
                    let mut nodes = g.nodes.clone();
                    nodes.sort_by(|a, b| a.name.cmp(&b.name));
                    nodes.into_iter().map(|n| {
                        let req: Vec<String> = g.edges.iter().filter(|e| e.from == n.name).map(|e| e.to.clone()).collect();
                        view! {
                            <li>
                                <a href=format!("/services/{}", n.id)>{n.name.clone()}</a>" "<RunStatePill state=n.run_state/>
                                <span class="muted">{if req.is_empty() { " requires nothing".to_string() } else { format!(" requires {}", req.join(", ")) }}</span>
                            </li>
                        }
                    }).collect_view()
                })}
            </ul>
        </details>
    }
}
