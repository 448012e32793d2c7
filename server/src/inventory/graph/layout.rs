//! The layered (Sugiyama-style) layout of the dependency graph: layers by
//! longest path, crossing reduction by barycenter sweeps over virtual nodes,
//! coordinates.

use super::*;

impl DepGraph {
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

    /// Layer of every node (indexed by node index): longest path to a node
    /// that requires nothing.
    pub(super) fn layers(&self) -> Vec<u32> {
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
    pub(super) fn order_rows(&self, layer: &[u32]) -> RowOrder {
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
pub(super) struct RowOrder {
    /// Node ids per layer (layer 0 first), left to right.
    pub(super) rows: Vec<Vec<usize>>,
    /// Crossings of the alphabetical start ordering (virtual nodes included).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) initial_crossings: u64,
    /// Crossings of the returned ordering (virtual nodes included).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) crossings: u64,
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
