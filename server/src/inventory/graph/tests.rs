//! Tests of the dependency graph: analyses, cycles, layout.

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
    let rc =
        |names: &[&str], failing: &[&str]| g.root_cause(&strings(names), |s| failing.contains(&s));
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
    let g =
        build(&["a", "b", "a"], &[("a", "b"), ("a", "b"), ("a", "b")]).map_err(|e| e.to_string());
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
