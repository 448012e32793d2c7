//! The service dependency graph.
//!
//! # Model
//!
//! Services are nodes identified by their (lowercase) name. An edge
//! `A → B` reads "A *requires* B": B must run for A to work. The inverse
//! relation is "B *supports* A". Everything here is phrased in those two
//! words:
//!
//! * [`DepGraph::requires`] / [`DepGraph::supports`] — direct neighbours;
//! * [`DepGraph::impact`] — transitive dependents ("what breaks if these
//!   are down");
//! * [`DepGraph::root_cause`] — the deepest failing transitive
//!   dependencies ("why is this broken");
//! * [`DepGraph::start_order`] / [`DepGraph::stop_order`] — dependency
//!   respecting orderings of any subset of services;
//! * [`DepGraph::layout`] — a layered (Sugiyama-style) drawing.
//!
//! # Invariants
//!
//! * **Acyclic.** A `DepGraph` can only be built from a cycle-free edge set:
//!   [`DepGraph::new`] refuses a cycle (including a self-edge `a → a`) and
//!   names one concrete simple cycle in the error. [`DepGraph::check_add`]
//!   answers whether extra edges would break this invariant without
//!   modifying the graph.
//! * **Closed.** Every edge endpoint is a known service; an unknown name in
//!   an edge or a query is an [`UnknownService`] error (the plain neighbour
//!   lookups return an empty list instead).
//! * **Deterministic.** Services are stored in name order (node index order
//!   equals alphabetical order) and duplicate services or edges are merged,
//!   so every answer — including which cycle is reported, start orders and
//!   the layout — depends only on the *sets* of services and edges, never on
//!   the order in which they were supplied. Lists of names are returned
//!   sorted unless they are an ordering (start/stop order).
//!
//! All queries are linear or near-linear in the size of the graph (the
//! subset start order is at worst `O(k·(V+E))` for `k` requested services),
//! so graphs with thousands of services are fine.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;

use petgraph::algo::{kosaraju_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, EdgeRef, Reversed};
use petgraph::Direction;

/// Width of a node box in the [`Layout`], in drawing units.
pub const NODE_W: f64 = 160.0;
/// Height of a node box in the [`Layout`], in drawing units.
pub const NODE_H: f64 = 44.0;
/// Horizontal gap between neighbouring node boxes in a row.
pub const H_GAP: f64 = 40.0;
/// Vertical gap between rows (layers).
pub const V_GAP: f64 = 90.0;
/// Empty border around the whole drawing.
pub const MARGIN: f64 = 30.0;

/// Number of alternating barycenter sweeps the layout runs.
const SWEEPS: usize = 8;
/// Upper bound on virtual "dummy" nodes used to route long edges through
/// intermediate layers during crossing reduction. Beyond it, edges spanning
/// more than one layer are ignored by the heuristic (the layout stays valid,
/// only possibly less tidy) so pathological graphs stay fast.
const DUMMY_BUDGET: usize = 50_000;

/// A dependency cycle, named in order: `a → b → c → a`.
///
/// The path starts and ends with the same service; each consecutive pair
/// `(x, y)` is an edge "x requires y". A self-edge is `["a", "a"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<String>);

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dependency cycle: {}", self.0.join(" → "))
    }
}

impl std::error::Error for Cycle {}

/// Unknown service name referenced by an edge or a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownService(pub String);

impl fmt::Display for UnknownService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown service {:?}", self.0)
    }
}

impl std::error::Error for UnknownService {}

/// Why a set of edges cannot form (or be added to) a [`DepGraph`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    /// An edge names a service that is not part of the graph.
    Unknown(UnknownService),
    /// The edges contain a dependency cycle.
    Cycle(Cycle),
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::Unknown(e) => e.fmt(f),
            GraphError::Cycle(c) => c.fmt(f),
        }
    }
}

impl std::error::Error for GraphError {}

impl From<UnknownService> for GraphError {
    fn from(e: UnknownService) -> Self {
        GraphError::Unknown(e)
    }
}

impl From<Cycle> for GraphError {
    fn from(c: Cycle) -> Self {
        GraphError::Cycle(c)
    }
}

/// Position of one service in a [`Layout`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodePos {
    /// Longest path (in edges) from this service down to a service that
    /// requires nothing; services that require nothing are layer 0.
    pub layer: u32,
    /// Position of the service within its layer, from the left, starting at 0.
    pub index: u32,
    /// Horizontal centre of the node box.
    pub x: f64,
    /// Vertical centre of the node box (y grows downward).
    pub y: f64,
}

/// A layered drawing of the graph: dependents above their dependencies.
///
/// The highest layer is the top row, layer 0 (services requiring nothing) is
/// the bottom row, so every "requires" arrow points downward. Each row is
/// centred on the widest row. Node boxes are [`NODE_W`] × [`NODE_H`].
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Position of every service, by name.
    pub nodes: BTreeMap<String, NodePos>,
    /// Width of the whole drawing, margins included.
    pub width: f64,
    /// Height of the whole drawing, margins included.
    pub height: f64,
}

/// The service dependency graph (acyclic; see the module docs).
#[derive(Debug, Clone)]
pub struct DepGraph {
    /// Edge `a → b` means "a requires b". Node weights are the names; node
    /// indices follow name order.
    graph: DiGraph<String, ()>,
    index: HashMap<String, NodeIndex>,
    /// All nodes, every dependency before its dependents.
    topo: Vec<NodeIndex>,
}

impl DepGraph {
    /// Builds the graph from a set of services and `(service, requires)`
    /// edges.
    ///
    /// Duplicate services and edges are merged. Errors: an edge naming a
    /// service not in `services` gives [`GraphError::Unknown`] (the first
    /// such name in edge order); a cycle gives [`GraphError::Cycle`] naming
    /// one concrete simple cycle — the shortest cycle through the
    /// alphabetically first service that lies on any cycle. A self-edge is
    /// the cycle `a → a`.
    pub fn new(
        services: impl IntoIterator<Item = String>,
        edges: impl IntoIterator<Item = (String, String)>,
    ) -> Result<DepGraph, GraphError> {
        let names: BTreeSet<String> = services.into_iter().collect();
        let mut graph = DiGraph::with_capacity(names.len(), 0);
        let mut index = HashMap::with_capacity(names.len());
        for name in names {
            let ix = graph.add_node(name.clone());
            index.insert(name, ix);
        }
        let mut pairs = BTreeSet::new();
        for (from, to) in edges {
            let a = lookup(&index, &from)?;
            let b = lookup(&index, &to)?;
            pairs.insert((a, b));
        }
        for (a, b) in pairs {
            graph.add_edge(a, b, ());
        }
        let topo = dependency_order(&graph).map_err(|path| name_cycle(&graph, &path))?;
        Ok(DepGraph { graph, index, topo })
    }

    /// Whether `name` is a service of this graph.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Number of services.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// Whether the graph has no services.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// All service names, sorted.
    pub fn services(&self) -> impl Iterator<Item = &str> + '_ {
        self.graph.node_weights().map(String::as_str)
    }

    /// Direct dependencies of `name` (what it requires), sorted. Empty for
    /// an unknown name.
    pub fn requires(&self, name: &str) -> Vec<String> {
        self.neighbours(name, Direction::Outgoing)
    }

    /// Direct dependents of `name` (what it supports), sorted. Empty for an
    /// unknown name.
    pub fn supports(&self, name: &str) -> Vec<String> {
        self.neighbours(name, Direction::Incoming)
    }

    /// "What is affected if these are down": all transitive dependents of
    /// the given services, excluding the given ones themselves, sorted.
    pub fn impact(&self, names: &[String]) -> Result<Vec<String>, UnknownService> {
        let starts = self.resolve(names)?;
        let given = self.mark(&starts);
        let reached = self.closure(&starts, Direction::Incoming);
        Ok(self.sorted_names(reached.into_iter().filter(|n| !given[n.index()])))
    }

    /// "Why are these impacted": among the transitive dependencies of the
    /// given services (excluding the given ones), those for which
    /// `failing(name)` is true and none of whose own transitive dependencies
    /// is failing — the deepest failures, i.e. the root causes. Sorted.
    ///
    /// A given service that is itself failing is never reported (the query
    /// is about its dependencies), but it still counts as a failing
    /// dependency of the other services. `failing` is called at most once
    /// per service reachable from the given ones.
    pub fn root_cause(
        &self,
        names: &[String],
        failing: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, UnknownService> {
        let starts = self.resolve(names)?;
        let given = self.mark(&starts);
        let reached = self.closure(&starts, Direction::Outgoing);
        let n = self.graph.node_count();
        let mut in_reach = vec![false; n];
        let mut fails = vec![false; n];
        for &v in &reached {
            in_reach[v.index()] = true;
            fails[v.index()] = failing(&self.graph[v]);
        }
        // below[v]: some strict transitive dependency of v is failing.
        // `topo` lists dependencies first, and the reachable set is closed
        // under "requires", so every successor is final when v is visited.
        let mut below = vec![false; n];
        for &v in &self.topo {
            if in_reach[v.index()] {
                below[v.index()] = self
                    .graph
                    .neighbors(v)
                    .any(|w| fails[w.index()] || below[w.index()]);
            }
        }
        Ok(self.sorted_names(reached.into_iter().filter(|v| {
            let i = v.index();
            !given[i] && fails[i] && !below[i]
        })))
    }

    /// Start order of the given services: every dependency before its
    /// dependents, also through services outside the set (if `a` requires
    /// `x` requires `b` and only `{a, b}` are given, `b` comes first).
    ///
    /// Deterministic: Kahn's algorithm where, among services that are ready
    /// at the same time, the alphabetically first goes next. Only the given
    /// services appear in the output (duplicates once).
    pub fn start_order(&self, names: &[String]) -> Result<Vec<String>, UnknownService> {
        let mut set = self.resolve(names)?;
        set.sort_unstable();
        set.dedup();
        let n = self.graph.node_count();
        let member = self.mark(&set);

        // Induced "requires" edges between members: from each member, walk
        // its dependencies, stopping at the first member on every path
        // (anything beyond it is ordered transitively through it).
        let mut remaining = vec![0usize; n];
        let mut dependents: Vec<Vec<NodeIndex>> = vec![Vec::new(); n];
        let mut seen = vec![usize::MAX; n];
        let mut stack = Vec::new();
        for (stamp, &u) in set.iter().enumerate() {
            stack.extend(self.graph.neighbors(u));
            while let Some(w) = stack.pop() {
                if seen[w.index()] == stamp {
                    continue;
                }
                seen[w.index()] = stamp;
                if member[w.index()] {
                    remaining[u.index()] += 1;
                    dependents[w.index()].push(u);
                } else {
                    stack.extend(self.graph.neighbors(w));
                }
            }
        }

        let mut ready: BTreeSet<(&str, NodeIndex)> = set
            .iter()
            .filter(|u| remaining[u.index()] == 0)
            .map(|&u| (self.graph[u].as_str(), u))
            .collect();
        let mut order = Vec::with_capacity(set.len());
        while let Some((name, u)) = ready.pop_first() {
            order.push(name.to_owned());
            for &d in &dependents[u.index()] {
                remaining[d.index()] -= 1;
                if remaining[d.index()] == 0 {
                    ready.insert((self.graph[d].as_str(), d));
                }
            }
        }
        Ok(order)
    }

    /// Stop order of the given services: exactly the reverse of
    /// [`DepGraph::start_order`] (dependents stop before their dependencies).
    pub fn stop_order(&self, names: &[String]) -> Result<Vec<String>, UnknownService> {
        let mut order = self.start_order(names)?;
        order.reverse();
        Ok(order)
    }

    /// Would adding these `(service, requires)` edges create a cycle?
    ///
    /// Returns the cycle with the same naming rule as [`DepGraph::new`], or
    /// [`GraphError::Unknown`] for an unknown name. The graph itself is not
    /// modified.
    pub fn check_add(&self, edges: &[(String, String)]) -> Result<(), GraphError> {
        let mut graph = self.graph.clone();
        for (from, to) in edges {
            let a = self.node(from)?;
            let b = self.node(to)?;
            graph.update_edge(a, b, ());
        }
        dependency_order(&graph)
            .map(|_| ())
            .map_err(|path| name_cycle(&graph, &path).into())
    }

    /// Layered layout for drawing (Sugiyama-style).
    ///
    /// * Layer: services requiring nothing are layer 0; any other service is
    ///   one more than the highest layer of what it requires. Every edge
    ///   therefore points from a higher to a strictly lower layer.
    /// * Order within a layer: alphabetical, then eight alternating
    ///   down/up sweeps of the barycenter heuristic (long edges are routed
    ///   through virtual nodes in the intermediate layers; ties break by
    ///   name). The ordering with the fewest edge crossings seen is kept.
    /// * Coordinates: the highest layer is the top row; row `r` from the top
    ///   has its centre at `y = MARGIN + r·(NODE_H + V_GAP) + NODE_H/2`.
    ///   Boxes in a row are `H_GAP` apart and each row is centred on the
    ///   widest row.
    pub fn layout(&self) -> Layout {
        let n = self.graph.node_count();
        let layer = self.layers();
        let max_layer = layer.iter().copied().max().unwrap_or(0) as usize;
        let rows = self.order_rows(&layer).rows;

        let row_width = |count: usize| {
            if count == 0 {
                0.0
            } else {
                count as f64 * NODE_W + (count - 1) as f64 * H_GAP
            }
        };
        let widest = rows
            .iter()
            .map(|row| row.iter().filter(|&&v| v < n).count())
            .max()
            .unwrap_or(0);
        let inner_width = row_width(widest);
        let row_count = if n == 0 { 0 } else { max_layer + 1 };
        let inner_height = if row_count == 0 {
            0.0
        } else {
            row_count as f64 * NODE_H + (row_count - 1) as f64 * V_GAP
        };

        let mut nodes = BTreeMap::new();
        for (l, row) in rows.iter().enumerate() {
            let real: Vec<usize> = row.iter().copied().filter(|&v| v < n).collect();
            let left = MARGIN + (inner_width - row_width(real.len())) / 2.0;
            let y = MARGIN + (max_layer - l) as f64 * (NODE_H + V_GAP) + NODE_H / 2.0;
            for (i, &v) in real.iter().enumerate() {
                let x = left + i as f64 * (NODE_W + H_GAP) + NODE_W / 2.0;
                let pos = NodePos {
                    layer: l as u32,
                    index: i as u32,
                    x,
                    y,
                };
                nodes.insert(self.graph[NodeIndex::new(v)].clone(), pos);
            }
        }
        Layout {
            nodes,
            width: inner_width + 2.0 * MARGIN,
            height: inner_height + 2.0 * MARGIN,
        }
    }

    // ----- internals -------------------------------------------------------

    fn node(&self, name: &str) -> Result<NodeIndex, UnknownService> {
        lookup(&self.index, name)
    }

    fn resolve(&self, names: &[String]) -> Result<Vec<NodeIndex>, UnknownService> {
        names.iter().map(|n| self.node(n)).collect()
    }

    /// A per-node flag vector with the given nodes set.
    fn mark(&self, nodes: &[NodeIndex]) -> Vec<bool> {
        let mut flags = vec![false; self.graph.node_count()];
        for n in nodes {
            flags[n.index()] = true;
        }
        flags
    }

    fn neighbours(&self, name: &str, dir: Direction) -> Vec<String> {
        match self.index.get(name) {
            Some(&ix) => self.sorted_names(self.graph.neighbors_directed(ix, dir)),
            None => Vec::new(),
        }
    }

    fn sorted_names(&self, nodes: impl IntoIterator<Item = NodeIndex>) -> Vec<String> {
        let mut names: Vec<String> = nodes.into_iter().map(|n| self.graph[n].clone()).collect();
        names.sort_unstable();
        names
    }

    /// Every node reachable from `starts` (starts included) following
    /// "requires" (`Outgoing`) or "supports" (`Incoming`) edges.
    fn closure(&self, starts: &[NodeIndex], dir: Direction) -> Vec<NodeIndex> {
        let mut out = Vec::new();
        match dir {
            Direction::Outgoing => {
                let g = &self.graph;
                let mut dfs = Dfs::empty(g);
                dfs.stack.extend_from_slice(starts);
                while let Some(v) = dfs.next(g) {
                    out.push(v);
                }
            }
            Direction::Incoming => {
                let g = Reversed(&self.graph);
                let mut dfs = Dfs::empty(g);
                dfs.stack.extend_from_slice(starts);
                while let Some(v) = dfs.next(g) {
                    out.push(v);
                }
            }
        }
        out
    }

    /// Layer of every node (indexed by node index): longest path to a node
    /// that requires nothing.
    fn layers(&self) -> Vec<u32> {
        let mut layer = vec![0u32; self.graph.node_count()];
        for &v in &self.topo {
            layer[v.index()] = self
                .graph
                .neighbors(v)
                .map(|w| layer[w.index()] + 1)
                .max()
                .unwrap_or(0);
        }
        layer
    }

    /// Crossing reduction: orders every layer. Ids `< node_count` are real
    /// nodes (their node index), larger ids are virtual nodes on long edges.
    fn order_rows(&self, layer: &[u32]) -> RowOrder {
        let n = self.graph.node_count();
        let layer_count = layer.iter().copied().max().map_or(0, |m| m as usize + 1);
        let mut rows: Vec<Vec<usize>> = vec![Vec::new(); layer_count];
        // Node indices are in name order, so rows start alphabetical.
        for (v, &l) in layer.iter().enumerate() {
            rows[l as usize].push(v);
        }

        let span: usize = self
            .graph
            .edge_references()
            .map(|e| (layer[e.source().index()] - layer[e.target().index()]) as usize - 1)
            .sum();
        let use_virtual = span <= DUMMY_BUDGET;
        // up[v]: neighbours in the layer above; down[v]: in the layer below.
        let mut up: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut down: Vec<Vec<usize>> = vec![Vec::new(); n];
        for e in self.graph.edge_references() {
            let (a, b) = (e.source().index(), e.target().index());
            let (la, lb) = (layer[a] as usize, layer[b] as usize);
            if la == lb + 1 {
                down[a].push(b);
                up[b].push(a);
            } else if use_virtual {
                let mut prev = a;
                for l in (lb + 1..la).rev() {
                    let d = up.len();
                    up.push(vec![prev]);
                    down.push(Vec::new());
                    down[prev].push(d);
                    rows[l].push(d);
                    prev = d;
                }
                down[prev].push(b);
                up[b].push(prev);
            }
        }

        let mut pos = vec![0usize; up.len()];
        for row in &rows {
            for (i, &v) in row.iter().enumerate() {
                pos[v] = i;
            }
        }
        let initial = count_crossings(&rows, &down, &pos);
        let mut best = (initial, rows.clone());
        for sweep in 0..SWEEPS {
            if best.0 == 0 {
                break;
            }
            if sweep % 2 == 0 {
                // Downward: top row fixed, order each row by its upper neighbours.
                for row in rows.iter_mut().rev().skip(1) {
                    barycenter_sort(row, &up, &mut pos);
                }
            } else {
                // Upward: bottom row fixed, order each row by its lower neighbours.
                for row in rows.iter_mut().skip(1) {
                    barycenter_sort(row, &down, &mut pos);
                }
            }
            let c = count_crossings(&rows, &down, &pos);
            if c < best.0 {
                best = (c, rows.clone());
            }
        }
        RowOrder {
            rows: best.1,
            initial_crossings: initial,
            crossings: best.0,
        }
    }
}

/// Result of [`DepGraph::order_rows`].
struct RowOrder {
    /// Node ids per layer (layer 0 first), left to right.
    rows: Vec<Vec<usize>>,
    /// Crossings of the alphabetical start ordering (virtual nodes included).
    #[cfg_attr(not(test), allow(dead_code))]
    initial_crossings: u64,
    /// Crossings of the returned ordering (virtual nodes included).
    #[cfg_attr(not(test), allow(dead_code))]
    crossings: u64,
}

fn lookup(index: &HashMap<String, NodeIndex>, name: &str) -> Result<NodeIndex, UnknownService> {
    index
        .get(name)
        .copied()
        .ok_or_else(|| UnknownService(name.to_owned()))
}

/// All nodes with every dependency before its dependents, or — if the graph
/// has a cycle — one concrete cycle as a node path (first node repeated at
/// the end).
fn dependency_order(graph: &DiGraph<String, ()>) -> Result<Vec<NodeIndex>, Vec<NodeIndex>> {
    match toposort(graph, None) {
        Ok(mut order) => {
            // toposort puts each node before what it requires.
            order.reverse();
            Ok(order)
        }
        Err(cycle) => Err(find_cycle(graph, cycle.node_id())),
    }
}

/// A simple cycle in a graph known to be cyclic: the shortest cycle through
/// the lowest-index (alphabetically first) node that lies on any cycle.
/// `hint` is a node petgraph's toposort reported on a cycle.
fn find_cycle(graph: &DiGraph<String, ()>, hint: NodeIndex) -> Vec<NodeIndex> {
    let start = kosaraju_scc(graph)
        .into_iter()
        .filter(|scc| scc.len() > 1 || scc.iter().any(|&v| graph.contains_edge(v, v)))
        .filter_map(|scc| scc.into_iter().min())
        .min()
        .unwrap_or(hint);
    shortest_cycle_through(graph, start)
        .or_else(|| shortest_cycle_through(graph, hint))
        // Unreachable: both nodes lie on a cycle. Keep the report non-empty.
        .unwrap_or_else(|| vec![hint, hint])
}

/// Breadth-first search from `start` back to itself; neighbours are tried
/// in index (name) order so the result is deterministic.
fn shortest_cycle_through(graph: &DiGraph<String, ()>, start: NodeIndex) -> Option<Vec<NodeIndex>> {
    let mut parent: Vec<Option<NodeIndex>> = vec![None; graph.node_count()];
    let mut queue = VecDeque::from([start]);
    while let Some(u) = queue.pop_front() {
        let mut succ: Vec<NodeIndex> = graph.neighbors(u).collect();
        succ.sort_unstable();
        for w in succ {
            if w == start {
                // Walk the BFS tree back from u; only `start` has no parent.
                let mut path = vec![u];
                let mut cur = u;
                while let Some(p) = parent[cur.index()] {
                    path.push(p);
                    cur = p;
                }
                path.reverse();
                path.push(start);
                return Some(path);
            }
            if parent[w.index()].is_none() {
                parent[w.index()] = Some(u);
                queue.push_back(w);
            }
        }
    }
    None
}

fn name_cycle(graph: &DiGraph<String, ()>, path: &[NodeIndex]) -> Cycle {
    Cycle(path.iter().map(|&v| graph[v].clone()).collect())
}

/// Reorders `row` by the mean position of each node's neighbours in the
/// adjacent (already fixed) row; nodes without such neighbours keep their
/// current position as key. Ties break by id, i.e. by name for real nodes.
fn barycenter_sort(row: &mut [usize], neighbours: &[Vec<usize>], pos: &mut [usize]) {
    let mut keyed: Vec<(f64, usize)> = row
        .iter()
        .map(|&v| {
            let ns = &neighbours[v];
            let key = if ns.is_empty() {
                pos[v] as f64
            } else {
                ns.iter().map(|&u| pos[u] as f64).sum::<f64>() / ns.len() as f64
            };
            (key, v)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (i, &(_, v)) in keyed.iter().enumerate() {
        row[i] = v;
        pos[v] = i;
    }
}

/// Number of pairwise edge crossings between adjacent rows, counted as
/// inversions with a Fenwick tree: `O(E log E)`.
fn count_crossings(rows: &[Vec<usize>], down: &[Vec<usize>], pos: &[usize]) -> u64 {
    let mut total = 0u64;
    for l in 1..rows.len() {
        let mut edges: Vec<(usize, usize)> = rows[l]
            .iter()
            .flat_map(|&u| down[u].iter().map(move |&w| (pos[u], pos[w])))
            .collect();
        edges.sort_unstable();
        let size = rows[l - 1].len();
        let mut tree = vec![0u64; size + 1];
        for (seen, &(_, lower)) in edges.iter().enumerate() {
            // Earlier edges ending at or left of `lower` do not cross this one.
            let mut not_crossing = 0u64;
            let mut i = lower + 1;
            while i > 0 {
                not_crossing += tree[i];
                i &= i - 1;
            }
            total += seen as u64 - not_crossing;
            let mut i = lower + 1;
            while i <= size {
                tree[i] += 1;
                i += i & i.wrapping_neg();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn build(services: &[&str], edges: &[(&str, &str)]) -> Result<DepGraph, GraphError> {
        DepGraph::new(
            strings(services),
            edges.iter().map(|(a, b)| (a.to_string(), b.to_string())),
        )
    }

    const MOSAIC_EDGES: &[(&str, &str)] = &[
        ("gitea", "mariadb"),
        ("gitea", "redis"),
        ("bookstack", "mariadb"),
        ("woodpecker", "postgres"),
        ("woodpecker", "gitea"),
        ("mcp", "redis"),
    ];

    fn mosaic() -> DepGraph {
        let services = [
            "gitea",
            "mariadb",
            "redis",
            "bookstack",
            "woodpecker",
            "postgres",
            "mcp",
            "npm",
            "portainer",
        ];
        match build(&services, MOSAIC_EDGES) {
            Ok(g) => g,
            Err(e) => panic!("mosaic graph refused: {e}"),
        }
    }

    fn position(order: &[String], name: &str) -> usize {
        order
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("{name} missing from {order:?}"))
    }

    /// Asserts `cycle` is a simple closed path whose every step is an edge.
    fn assert_real_cycle(cycle: &Cycle, edges: &HashSet<(String, String)>) {
        let path = &cycle.0;
        assert!(path.len() >= 2, "too short: {path:?}");
        assert_eq!(path.first(), path.last(), "not closed: {path:?}");
        let inner: HashSet<&String> = path[..path.len() - 1].iter().collect();
        assert_eq!(inner.len(), path.len() - 1, "not simple: {path:?}");
        for pair in path.windows(2) {
            assert!(
                edges.contains(&(pair[0].clone(), pair[1].clone())),
                "{} → {} is not an edge (cycle {path:?})",
                pair[0],
                pair[1]
            );
        }
    }

    fn edge_set(edges: &[(&str, &str)]) -> HashSet<(String, String)> {
        edges
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    // ----- the MosAIc handbook graph ---------------------------------------

    #[test]
    fn mosaic_direct_neighbours() {
        let g = mosaic();
        assert_eq!(g.len(), 9);
        assert!(g.contains("gitea"));
        assert!(!g.contains("jenkins"));
        assert_eq!(g.requires("gitea"), strings(&["mariadb", "redis"]));
        assert_eq!(g.requires("woodpecker"), strings(&["gitea", "postgres"]));
        assert_eq!(g.supports("redis"), strings(&["gitea", "mcp"]));
        assert_eq!(g.supports("mariadb"), strings(&["bookstack", "gitea"]));
        assert!(g.requires("npm").is_empty());
        assert!(g.supports("woodpecker").is_empty());
        assert!(g.requires("jenkins").is_empty());
        let all: Vec<&str> = g.services().collect();
        assert_eq!(
            all,
            [
                "bookstack",
                "gitea",
                "mariadb",
                "mcp",
                "npm",
                "portainer",
                "postgres",
                "redis",
                "woodpecker"
            ]
        );
    }

    #[test]
    fn mosaic_impact() {
        let g = mosaic();
        let impact = |names: &[&str]| g.impact(&strings(names));
        assert_eq!(
            impact(&["redis"]),
            Ok(strings(&["gitea", "mcp", "woodpecker"]))
        );
        assert_eq!(
            impact(&["mariadb"]),
            Ok(strings(&["bookstack", "gitea", "woodpecker"]))
        );
        // The given services are excluded even when they impact each other.
        assert_eq!(
            impact(&["redis", "gitea"]),
            Ok(strings(&["mcp", "woodpecker"]))
        );
        assert_eq!(impact(&["npm"]), Ok(vec![]));
        assert_eq!(impact(&["woodpecker"]), Ok(vec![]));
        assert_eq!(impact(&[]), Ok(vec![]));
    }

    #[test]
    fn mosaic_root_cause() {
        let g = mosaic();
        let rc = |names: &[&str], failing: &[&str]| {
            g.root_cause(&strings(names), |s| failing.contains(&s))
        };
        // gitea fails only because mariadb does: gitea is a symptom.
        assert_eq!(
            rc(&["woodpecker"], &["mariadb", "gitea"]),
            Ok(strings(&["mariadb"]))
        );
        assert_eq!(rc(&["woodpecker"], &["gitea"]), Ok(strings(&["gitea"])));
        assert_eq!(
            rc(&["woodpecker"], &["gitea", "mariadb", "postgres"]),
            Ok(strings(&["mariadb", "postgres"]))
        );
        assert_eq!(
            rc(&["woodpecker"], &["gitea", "mariadb", "redis"]),
            Ok(strings(&["mariadb", "redis"]))
        );
        // Failures outside the dependency closure are irrelevant.
        assert_eq!(rc(&["woodpecker"], &["npm", "bookstack"]), Ok(vec![]));
        assert_eq!(rc(&["woodpecker"], &[]), Ok(vec![]));
        // The queried service itself is never its own root cause ...
        assert_eq!(rc(&["woodpecker"], &["woodpecker"]), Ok(vec![]));
        assert_eq!(rc(&["mariadb"], &["mariadb"]), Ok(vec![]));
        // ... but its failing dependencies are.
        assert_eq!(rc(&["gitea"], &["gitea", "redis"]), Ok(strings(&["redis"])));
        assert_eq!(
            rc(&["mcp", "bookstack"], &["redis", "mariadb"]),
            Ok(strings(&["mariadb", "redis"]))
        );
    }

    #[test]
    fn root_cause_calls_failing_only_on_reachable_services() {
        let g = mosaic();
        let asked = std::cell::RefCell::new(Vec::new());
        let result = g.root_cause(&strings(&["mcp"]), |s| {
            asked.borrow_mut().push(s.to_string());
            false
        });
        assert_eq!(result, Ok(vec![]));
        let mut asked = asked.into_inner();
        asked.sort();
        assert_eq!(asked, strings(&["mcp", "redis"]));
    }

    #[test]
    fn mosaic_start_and_stop_order() {
        let g = mosaic();
        let all: Vec<String> = g.services().map(str::to_string).collect();
        let start = g.start_order(&all).map_err(|e| e.to_string());
        let expected = strings(&[
            "mariadb",
            "bookstack",
            "npm",
            "portainer",
            "postgres",
            "redis",
            "gitea",
            "mcp",
            "woodpecker",
        ]);
        assert_eq!(start, Ok(expected.clone()));
        for (a, b) in MOSAIC_EDGES {
            assert!(position(&expected, b) < position(&expected, a), "{a} → {b}");
        }
        let mut reversed = expected;
        reversed.reverse();
        assert_eq!(g.stop_order(&all), Ok(reversed));
        // Input order does not matter.
        let mut shuffled = all.clone();
        shuffled.reverse();
        assert_eq!(g.start_order(&shuffled), g.start_order(&all));
    }

    #[test]
    fn start_order_through_services_outside_the_set() {
        let g = mosaic();
        // woodpecker → gitea → mariadb, gitea not given.
        assert_eq!(
            g.start_order(&strings(&["woodpecker", "mariadb"])),
            Ok(strings(&["mariadb", "woodpecker"]))
        );
        // Alphabetically "npm" < "redis" < "woodpecker"; redis must still
        // precede woodpecker, npm is unconstrained.
        assert_eq!(
            g.start_order(&strings(&["woodpecker", "redis", "npm"])),
            Ok(strings(&["npm", "redis", "woodpecker"]))
        );
        assert_eq!(
            g.stop_order(&strings(&["woodpecker", "redis", "npm"])),
            Ok(strings(&["woodpecker", "redis", "npm"]))
        );
        // Without constraints the order is alphabetical; duplicates once.
        assert_eq!(
            g.start_order(&strings(&["redis", "bookstack", "redis", "npm"])),
            Ok(strings(&["bookstack", "npm", "redis"]))
        );
        assert_eq!(g.start_order(&[]), Ok(vec![]));
    }

    #[test]
    fn start_order_transitive_chain_beats_alphabet() {
        // a requires x requires b: b first although "a" < "b".
        let g = build(&["a", "b", "x"], &[("a", "x"), ("x", "b")]);
        let g = g.map_err(|e| e.to_string());
        assert_eq!(
            g.as_ref().map(|g| g.start_order(&strings(&["a", "b"]))),
            Ok(Ok(strings(&["b", "a"])))
        );
    }

    // ----- errors -----------------------------------------------------------

    #[test]
    fn three_cycle_is_named() {
        let edges = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a"), ("c", "e")];
        let err = build(&["a", "b", "c", "d", "e"], &edges).map(|_| ());
        let Err(GraphError::Cycle(cycle)) = err else {
            panic!("expected a cycle, got {err:?}");
        };
        assert_real_cycle(&cycle, &edge_set(&edges));
        let members: BTreeSet<&str> = cycle.0.iter().map(String::as_str).collect();
        assert_eq!(members, BTreeSet::from(["a", "b", "c"]));
        assert_eq!(cycle.0.len(), 4);
        // Some rotation of a → b → c → a.
        let text = cycle.to_string();
        assert!(
            [
                "dependency cycle: a → b → c → a",
                "dependency cycle: b → c → a → b",
                "dependency cycle: c → a → b → c",
            ]
            .contains(&text.as_str()),
            "{text}"
        );
        assert_eq!(GraphError::Cycle(cycle.clone()).to_string(), text);
    }

    #[test]
    fn cycle_display() {
        let c = Cycle(strings(&["a", "b", "c", "a"]));
        assert_eq!(c.to_string(), "dependency cycle: a → b → c → a");
    }

    #[test]
    fn self_loop_is_a_cycle() {
        let err = build(&["a", "b"], &[("b", "a"), ("a", "a")]).map(|_| ());
        assert_eq!(err, Err(GraphError::Cycle(Cycle(strings(&["a", "a"])))));
        if let Err(e) = err {
            assert_eq!(e.to_string(), "dependency cycle: a → a");
        }
    }

    #[test]
    fn reported_cycle_is_simple_among_overlapping_cycles() {
        // Two cycles sharing b: b→c→d→b and b→e→b, plus a long way round.
        let edges = [
            ("a", "b"),
            ("b", "c"),
            ("c", "d"),
            ("d", "b"),
            ("b", "e"),
            ("e", "b"),
            ("d", "f"),
            ("f", "a"),
        ];
        let err = build(&["a", "b", "c", "d", "e", "f"], &edges).map(|_| ());
        let Err(GraphError::Cycle(cycle)) = err else {
            panic!("expected a cycle, got {err:?}");
        };
        assert_real_cycle(&cycle, &edge_set(&edges));
        // Deterministic choice: shortest cycle through the first cyclic name.
        assert_eq!(cycle.0, strings(&["a", "b", "c", "d", "f", "a"]), "{cycle}");
    }

    #[test]
    fn unknown_services() {
        let err = build(&["a"], &[("a", "ghost")]).map(|_| ());
        assert_eq!(
            err,
            Err(GraphError::Unknown(UnknownService("ghost".into())))
        );
        if let Err(e) = err {
            assert_eq!(e.to_string(), "unknown service \"ghost\"");
        }
        let err = build(&["a"], &[("ghost", "a")]).map(|_| ());
        assert_eq!(
            err,
            Err(GraphError::Unknown(UnknownService("ghost".into())))
        );

        let g = mosaic();
        let ghost = UnknownService("ghost".into());
        let names = strings(&["gitea", "ghost"]);
        assert_eq!(g.impact(&names), Err(ghost.clone()));
        assert_eq!(g.root_cause(&names, |_| true), Err(ghost.clone()));
        assert_eq!(g.start_order(&names), Err(ghost.clone()));
        assert_eq!(g.stop_order(&names), Err(ghost.clone()));
        assert_eq!(
            g.check_add(&[("gitea".into(), "ghost".into())]),
            Err(GraphError::Unknown(ghost))
        );
    }

    #[test]
    fn duplicates_are_merged() {
        let g = build(&["a", "b", "a"], &[("a", "b"), ("a", "b"), ("a", "b")])
            .map_err(|e| e.to_string());
        let g = match g {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(g.len(), 2);
        assert_eq!(g.requires("a"), strings(&["b"]));
        assert_eq!(g.supports("b"), strings(&["a"]));
    }

    #[test]
    fn check_add_refuses_closing_edges() {
        let g = mosaic();
        let err = g.check_add(&[("mariadb".into(), "woodpecker".into())]);
        let Err(GraphError::Cycle(cycle)) = err else {
            panic!("expected a cycle, got {err:?}");
        };
        let mut edges = edge_set(MOSAIC_EDGES);
        edges.insert(("mariadb".into(), "woodpecker".into()));
        assert_real_cycle(&cycle, &edges);
        assert_eq!(
            cycle.to_string(),
            "dependency cycle: gitea → mariadb → woodpecker → gitea"
        );

        // Two edges that only together close a cycle.
        let pair = [
            ("npm".to_string(), "portainer".to_string()),
            ("portainer".to_string(), "npm".to_string()),
        ];
        assert_eq!(
            g.check_add(&pair),
            Err(GraphError::Cycle(Cycle(strings(&[
                "npm",
                "portainer",
                "npm"
            ]))))
        );
        assert_eq!(
            g.check_add(&[("redis".into(), "redis".into())]),
            Err(GraphError::Cycle(Cycle(strings(&["redis", "redis"]))))
        );

        // Harmless edges, including an existing one.
        assert_eq!(
            g.check_add(&[
                ("npm".into(), "redis".into()),
                ("portainer".into(), "woodpecker".into()),
                ("gitea".into(), "redis".into()),
            ]),
            Ok(())
        );
        assert_eq!(g.check_add(&[]), Ok(()));
        // The graph was not modified.
        assert!(g.requires("npm").is_empty());
        assert!(g.requires("mariadb").is_empty());
    }

    // ----- layout -----------------------------------------------------------

    #[test]
    fn mosaic_layout() {
        let g = mosaic();
        let layout = g.layout();
        let layer = |n: &str| layout.nodes.get(n).map(|p| p.layer);
        for n in ["mariadb", "redis", "postgres", "npm", "portainer"] {
            assert_eq!(layer(n), Some(0), "{n}");
        }
        for n in ["gitea", "bookstack", "mcp"] {
            assert_eq!(layer(n), Some(1), "{n}");
        }
        assert_eq!(layer("woodpecker"), Some(2));
        assert_eq!(layout.nodes.len(), 9);
        // Widest row: 5 boxes; 3 rows.
        assert_eq!(layout.width, 5.0 * NODE_W + 4.0 * H_GAP + 2.0 * MARGIN);
        assert_eq!(layout.height, 3.0 * NODE_H + 2.0 * V_GAP + 2.0 * MARGIN);
        // Highest layer on top, rows centred on the widest one.
        let wp = layout.nodes.get("woodpecker").copied();
        assert_eq!(
            wp.map(|p| (p.index, p.x, p.y)),
            Some((0, layout.width / 2.0, MARGIN + NODE_H / 2.0))
        );
        let bottom = layout.nodes.get("mariadb").map(|p| p.y);
        assert_eq!(bottom, Some(layout.height - MARGIN - NODE_H / 2.0));
        assert_layout_sound(&g, &layout);
    }

    #[test]
    fn layout_disconnected_and_empty() {
        let g = match build(&["zeta", "alpha", "mu"], &[]) {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        };
        let layout = g.layout();
        let got: Vec<(&str, u32, u32)> = layout
            .nodes
            .iter()
            .map(|(n, p)| (n.as_str(), p.layer, p.index))
            .collect();
        assert_eq!(got, [("alpha", 0, 0), ("mu", 0, 1), ("zeta", 0, 2)]);
        assert_eq!(layout.height, NODE_H + 2.0 * MARGIN);
        assert_layout_sound(&g, &layout);

        let empty = match build(&[], &[]) {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        };
        assert!(empty.is_empty());
        let layout = empty.layout();
        assert!(layout.nodes.is_empty());
        assert_eq!((layout.width, layout.height), (2.0 * MARGIN, 2.0 * MARGIN));
        assert_eq!(empty.start_order(&[]), Ok(vec![]));
    }

    #[test]
    fn layout_uncrosses_a_simple_crossing() {
        // Alphabetical rows [a, b] over [x, y] with a→y, b→x cross once.
        let g = match build(&["a", "b", "x", "y"], &[("a", "y"), ("b", "x")]) {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        };
        let layout = g.layout();
        let idx = |n: &str| layout.nodes.get(n).map(|p| p.index);
        assert_eq!(idx("a") < idx("b"), idx("y") < idx("x"), "{layout:?}");
        let order = g.order_rows(&g.layers());
        assert_eq!((order.initial_crossings, order.crossings), (1, 0));
    }

    /// Layering and geometry invariants.
    fn assert_layout_sound(g: &DepGraph, layout: &Layout) {
        assert_eq!(layout.nodes.len(), g.len());
        let pos = |n: &str| match layout.nodes.get(n) {
            Some(p) => *p,
            None => panic!("{n} not laid out"),
        };
        let max_layer = layout.nodes.values().map(|p| p.layer).max().unwrap_or(0);
        for name in g.services() {
            let p = pos(name);
            let deps = g.requires(name);
            // Longest-path layering.
            let expected = deps.iter().map(|d| pos(d).layer + 1).max().unwrap_or(0);
            assert_eq!(p.layer, expected, "{name}");
            for d in &deps {
                let q = pos(d);
                assert!(p.layer > q.layer, "{name} → {d}");
                assert!(p.y < q.y, "{name} must be drawn above {d}");
            }
            let row_y = MARGIN + f64::from(max_layer - p.layer) * (NODE_H + V_GAP) + NODE_H / 2.0;
            assert!((p.y - row_y).abs() < 1e-9, "{name}: y {} vs {row_y}", p.y);
            assert!(p.x - NODE_W / 2.0 >= -1e-9, "{name} left of the drawing");
            assert!(p.x + NODE_W / 2.0 <= layout.width + 1e-9, "{name} right");
            assert!(p.y - NODE_H / 2.0 >= -1e-9, "{name} above the drawing");
            assert!(p.y + NODE_H / 2.0 <= layout.height + 1e-9, "{name} below");
        }
        let mut rows: BTreeMap<u32, Vec<NodePos>> = BTreeMap::new();
        for p in layout.nodes.values() {
            rows.entry(p.layer).or_default().push(*p);
        }
        for (layer, mut row) in rows {
            row.sort_by_key(|p| p.index);
            let indices: Vec<u32> = row.iter().map(|p| p.index).collect();
            let expected: Vec<u32> = (0..row.len() as u32).collect();
            assert_eq!(indices, expected, "layer {layer} indices");
            for pair in row.windows(2) {
                assert!(
                    pair[1].x - pair[0].x >= NODE_W + H_GAP - 1e-9,
                    "overlap in layer {layer}"
                );
            }
        }
    }

    // ----- generated graphs -------------------------------------------------

    /// xorshift64* — small deterministic PRNG for generated graphs.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A random DAG: `nodes` services whose names are scrambled relative to
    /// their generation index (so name order ≠ topological order), edges
    /// only from a higher to a lower generation index.
    struct RandomDag {
        names: Vec<String>,
        edges: Vec<(usize, usize)>,
        adj: Vec<Vec<usize>>,
    }

    impl RandomDag {
        fn new(seed: u64, nodes: usize, edges: usize) -> Self {
            let mut rng = Rng(seed);
            // 7919 is coprime to 10_000: distinct names for < 10_000 nodes.
            let names = (0..nodes)
                .map(|i| format!("svc-{:04}", (i * 7919) % 10_000))
                .collect();
            let mut list = Vec::new();
            let mut adj = vec![Vec::new(); nodes];
            while list.len() < edges {
                let (a, b) = (rng.below(nodes), rng.below(nodes));
                if a == b {
                    continue;
                }
                let (hi, lo) = (a.max(b), a.min(b));
                list.push((hi, lo));
                adj[hi].push(lo);
            }
            RandomDag {
                names,
                edges: list,
                adj,
            }
        }

        fn edge_names(&self) -> Vec<(String, String)> {
            self.edges
                .iter()
                .map(|&(a, b)| (self.names[a].clone(), self.names[b].clone()))
                .collect()
        }

        fn graph(&self) -> DepGraph {
            match DepGraph::new(self.names.clone(), self.edge_names()) {
                Ok(g) => g,
                Err(e) => panic!("random DAG refused: {e}"),
            }
        }

        /// Brute force: reach[i][j] iff i transitively requires j (i ≠ j).
        fn reach(&self) -> Vec<Vec<bool>> {
            let n = self.names.len();
            let mut reach = vec![vec![false; n]; n];
            for (i, row) in reach.iter_mut().enumerate() {
                let mut stack = self.adj[i].clone();
                while let Some(j) = stack.pop() {
                    if !row[j] {
                        row[j] = true;
                        stack.extend(self.adj[j].iter().copied());
                    }
                }
            }
            reach
        }

        fn subset(&self, rng: &mut Rng, size: usize) -> Vec<usize> {
            let mut picked = BTreeSet::new();
            while picked.len() < size {
                picked.insert(rng.below(self.names.len()));
            }
            picked.into_iter().collect()
        }

        fn names_of(&self, ids: &[usize]) -> Vec<String> {
            ids.iter().map(|&i| self.names[i].clone()).collect()
        }
    }

    const SEEDS: [u64; 3] = [0x9E37_79B9_7F4A_7C15, 42, 0xDEAD_BEEF];

    #[test]
    fn random_start_order_respects_transitive_requirements() {
        for seed in SEEDS {
            let dag = RandomDag::new(seed, 200, 600);
            let g = dag.graph();
            let reach = dag.reach();
            let mut rng = Rng(seed ^ 0x5555);

            let all = g.start_order(&dag.names).map_err(|e| e.to_string());
            let all = match all {
                Ok(o) => o,
                Err(e) => panic!("{e}"),
            };
            assert_eq!(all.len(), 200);
            let at: HashMap<&str, usize> = all
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i))
                .collect();
            for &(a, b) in &dag.edges {
                assert!(at[dag.names[b].as_str()] < at[dag.names[a].as_str()]);
            }
            let mut stop = all.clone();
            stop.reverse();
            assert_eq!(g.stop_order(&dag.names), Ok(stop));

            for size in [2, 5, 20, 60, 150] {
                let ids = dag.subset(&mut rng, size);
                let names = dag.names_of(&ids);
                let order = match g.start_order(&names) {
                    Ok(o) => o,
                    Err(e) => panic!("{e}"),
                };
                let got: BTreeSet<&String> = order.iter().collect();
                let want: BTreeSet<&String> = names.iter().collect();
                assert_eq!(got, want, "exactly the given services");
                assert_eq!(order.len(), names.len());
                for &i in &ids {
                    for &j in &ids {
                        if reach[i][j] {
                            assert!(
                                position(&order, &dag.names[j]) < position(&order, &dag.names[i]),
                                "{} requires {} transitively",
                                dag.names[i],
                                dag.names[j]
                            );
                        }
                    }
                }
                // Kahn with alphabetical ties: whenever a service starts, no
                // alphabetically smaller one was ready (all its in-set
                // requirements started) and still waiting.
                let at: HashMap<&str, usize> = order
                    .iter()
                    .enumerate()
                    .map(|(k, n)| (n.as_str(), k))
                    .collect();
                let step = |i: usize| at[dag.names[i].as_str()];
                for &i in &ids {
                    for &other in &ids {
                        let ready = !ids.iter().any(|&d| reach[other][d] && step(d) >= step(i));
                        if step(other) > step(i) && ready {
                            assert!(
                                dag.names[i] < dag.names[other],
                                "{} was ready before {}",
                                dag.names[other],
                                dag.names[i]
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn random_impact_and_root_cause_match_brute_force() {
        for seed in SEEDS {
            let dag = RandomDag::new(seed, 200, 600);
            let g = dag.graph();
            let reach = dag.reach();
            let n = dag.names.len();
            let mut rng = Rng(seed ^ 0xAAAA);
            for size in [1, 1, 2, 3, 10] {
                let ids = dag.subset(&mut rng, size);
                let given: HashSet<usize> = ids.iter().copied().collect();

                let mut want: Vec<String> = (0..n)
                    .filter(|&d| !given.contains(&d) && ids.iter().any(|&i| reach[d][i]))
                    .map(|d| dag.names[d].clone())
                    .collect();
                want.sort();
                assert_eq!(g.impact(&dag.names_of(&ids)), Ok(want));

                let failing: HashSet<usize> = (0..n).filter(|_| rng.below(4) == 0).collect();
                let mut want: Vec<String> = (0..n)
                    .filter(|&d| {
                        !given.contains(&d)
                            && failing.contains(&d)
                            && ids.iter().any(|&i| reach[i][d])
                            && !(0..n).any(|e| reach[d][e] && failing.contains(&e))
                    })
                    .map(|d| dag.names[d].clone())
                    .collect();
                want.sort();
                let failing_names: HashSet<&str> =
                    failing.iter().map(|&i| dag.names[i].as_str()).collect();
                let got = g.root_cause(&dag.names_of(&ids), |s| failing_names.contains(s));
                assert_eq!(got, Ok(want));
            }
        }
    }

    #[test]
    fn random_layout_is_sound() {
        for seed in SEEDS {
            let dag = RandomDag::new(seed, 200, 600);
            let g = dag.graph();
            let layout = g.layout();
            assert_layout_sound(&g, &layout);
            let order = g.order_rows(&g.layers());
            assert!(
                order.crossings < order.initial_crossings,
                "barycenter should improve on alphabetical: {} vs {}",
                order.crossings,
                order.initial_crossings
            );
        }
        // A smaller, drawable one: 50 services, some isolated.
        let dag = RandomDag::new(7, 50, 60);
        let g = dag.graph();
        assert_layout_sound(&g, &g.layout());
    }

    #[test]
    fn random_back_edge_is_refused_with_a_real_cycle() {
        for seed in SEEDS {
            let dag = RandomDag::new(seed, 200, 600);
            let reach = dag.reach();
            let mut rng = Rng(seed ^ 0x1234);
            // Pick a service with a deep-ish dependency and close the loop.
            let (top, bottom) = loop {
                let top = rng.below(200);
                let deps: Vec<usize> = (0..200).filter(|&d| reach[top][d]).collect();
                if deps.len() >= 3 {
                    break (top, deps[rng.below(deps.len())]);
                }
            };
            let back = (dag.names[bottom].clone(), dag.names[top].clone());
            let mut edges = dag.edge_names();
            let mut all: HashSet<(String, String)> = edges.iter().cloned().collect();
            all.insert(back.clone());

            let g = dag.graph();
            let err = g.check_add(std::slice::from_ref(&back));
            let Err(GraphError::Cycle(via_check)) = err else {
                panic!("check_add accepted {back:?}: {err:?}");
            };
            assert_real_cycle(&via_check, &all);

            edges.insert(rng.below(edges.len()), back.clone());
            let err = DepGraph::new(dag.names.clone(), edges).map(|_| ());
            let Err(GraphError::Cycle(cycle)) = err else {
                panic!("new accepted a back edge: {err:?}");
            };
            assert_real_cycle(&cycle, &all);
            assert!(cycle.0.contains(&back.0) && cycle.0.contains(&back.1));
            // Same naming rule for both entry points.
            assert_eq!(cycle, via_check);

            // A forward edge (higher requires lower index) is always fine.
            let forward = (dag.names[199].clone(), dag.names[0].clone());
            assert_eq!(g.check_add(&[forward]), Ok(()));
        }
    }

    #[test]
    fn large_graph_stays_fast() {
        // 2,000 services, 8,000 edges: every query must be near-linear.
        let dag = RandomDag::new(99, 2000, 8000);
        let g = dag.graph();
        let all = match g.start_order(&dag.names) {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(all.len(), 2000);
        let half: Vec<String> = dag.names.iter().step_by(2).cloned().collect();
        assert_eq!(g.start_order(&half).map(|o| o.len()), Ok(1000));
        assert!(g.impact(&dag.names[..10]).is_ok());
        assert!(g
            .root_cause(&dag.names[1990..], |s| s.ends_with('7'))
            .is_ok());
        let layout = g.layout();
        assert_eq!(layout.nodes.len(), 2000);
        let back = (dag.names[0].clone(), dag.names[1999].clone());
        let mut all: HashSet<(String, String)> = dag.edge_names().into_iter().collect();
        all.insert(back.clone());
        match g.check_add(&[back]) {
            Ok(()) => {}
            Err(GraphError::Cycle(c)) => assert_real_cycle(&c, &all),
            Err(e) => panic!("{e}"),
        }
    }
}
