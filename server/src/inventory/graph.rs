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

mod layout;

#[cfg(test)]
mod tests;
