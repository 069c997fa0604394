//! The transaction dependency graph in compressed adjacency form (CSR), with one bit per edge
//! kind, and its strongly connected components (iterative Tarjan).
//!
//! Transactions are `u32` vertices (their `Txn::id`); a million transactions with tens of
//! millions of edges fit in a few hundred megabytes this way, where a map per vertex would not.

use super::result::EdgeKind;

/// Bit of an edge kind in an edge's kind mask.
pub(crate) const WW: u8 = 1;
pub(crate) const WR: u8 = 2;
pub(crate) const RW: u8 = 4;
pub(crate) const RT: u8 = 8;
pub(crate) const PROC: u8 = 16;

pub(crate) fn bit(kind: EdgeKind) -> u8 {
    match kind {
        EdgeKind::Ww => WW,
        EdgeKind::Wr => WR,
        EdgeKind::Rw => RW,
        EdgeKind::Realtime => RT,
        EdgeKind::Process => PROC,
    }
}

/// The kinds in a mask, weakest dependency first.
pub(crate) fn kinds(mask: u8) -> impl Iterator<Item = EdgeKind> {
    [
        EdgeKind::Ww,
        EdgeKind::Wr,
        EdgeKind::Rw,
        EdgeKind::Process,
        EdgeKind::Realtime,
    ]
    .into_iter()
    .filter(move |k| mask & bit(*k) != 0)
}

/// An edge that is both a ww/wr dependency and an anti-dependency counts as the dependency: the
/// data explain it without an rw edge, so a cycle through it is not reported as a stronger
/// anomaly than its transactions show (Elle's explainer names such edges the same way).
/// Realtime and process order stay beside any data kind: they make the `-realtime` and
/// `-process` variants.
fn weakest(mask: u8) -> u8 {
    if mask & (WW | WR) != 0 {
        mask & !RW
    } else {
        mask
    }
}

/// Edges as they are inferred, in any order and with duplicates.
#[derive(Default)]
pub(crate) struct EdgeList {
    edges: Vec<(u32, u32, u8)>,
}

impl EdgeList {
    /// Adds `from -> to` of `kind`; self-edges carry no dependency and are dropped.
    pub(crate) fn add(&mut self, from: u32, to: u32, kind: u8) {
        if from != to {
            self.edges.push((from, to, kind));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.edges.len()
    }

    pub(crate) fn extend(&mut self, other: EdgeList) {
        self.edges.extend(other.edges);
    }
}

/// Compressed adjacency: the out-edges of `v` are `targets[offsets[v]..offsets[v + 1]]`, sorted,
/// each target once with the union of its kinds.
pub(crate) struct Graph {
    offsets: Vec<u32>,
    targets: Vec<u32>,
    masks: Vec<u8>,
}

impl Graph {
    /// Builds the adjacency of `n` vertices by a counting sort on the source vertex.
    pub(crate) fn build(n: usize, list: EdgeList) -> Graph {
        let mut counts = vec![0u32; n + 1];
        for &(from, _, _) in &list.edges {
            counts[from as usize + 1] += 1;
        }
        for i in 0..n {
            counts[i + 1] += counts[i];
        }
        let mut cursor = counts.clone();
        let mut raw = vec![(0u32, 0u8); list.edges.len()];
        for (from, to, kind) in list.edges {
            let slot = &mut cursor[from as usize];
            raw[*slot as usize] = (to, kind);
            *slot += 1;
        }
        // Sort each vertex's targets and merge duplicates into one edge with all its kinds.
        let mut offsets = Vec::with_capacity(n + 1);
        let mut targets = Vec::with_capacity(raw.len());
        let mut masks = Vec::with_capacity(raw.len());
        offsets.push(0u32);
        for v in 0..n {
            let span = &mut raw[counts[v] as usize..counts[v + 1] as usize];
            span.sort_unstable_by_key(|e| e.0);
            for &(to, kind) in span.iter() {
                if targets.len() > *offsets.last().unwrap() as usize
                    && *targets.last().unwrap() == to
                {
                    *masks.last_mut().unwrap() |= kind;
                } else {
                    targets.push(to);
                    masks.push(kind);
                }
            }
            offsets.push(targets.len() as u32);
        }
        for m in &mut masks {
            *m = weakest(*m);
        }
        Graph {
            offsets,
            targets,
            masks,
        }
    }

    pub(crate) fn vertices(&self) -> usize {
        self.offsets.len() - 1
    }

    pub(crate) fn edge_count(&self) -> usize {
        self.targets.len()
    }

    /// Out-edges of `v` as (target, kind mask).
    pub(crate) fn out(&self, v: u32) -> impl Iterator<Item = (u32, u8)> + '_ {
        let (a, b) = (
            self.offsets[v as usize] as usize,
            self.offsets[v as usize + 1] as usize,
        );
        self.targets[a..b]
            .iter()
            .copied()
            .zip(self.masks[a..b].iter().copied())
    }

    /// The kinds of the edge `from -> to` (0 when there is none).
    pub(crate) fn mask(&self, from: u32, to: u32) -> u8 {
        let (a, b) = (
            self.offsets[from as usize] as usize,
            self.offsets[from as usize + 1] as usize,
        );
        match self.targets[a..b].binary_search(&to) {
            Ok(i) => self.masks[a + i],
            Err(_) => 0,
        }
    }

    /// Strongly connected components with more than one vertex (no self-edges exist), each
    /// sorted, found by Tarjan's algorithm without recursion.
    pub(crate) fn sccs(&self) -> Vec<Vec<u32>> {
        const UNSEEN: u32 = u32::MAX;
        let n = self.vertices();
        let mut index = vec![UNSEEN; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack: Vec<u32> = Vec::new();
        // Call frames: (vertex, next out-edge position).
        let mut frames: Vec<(u32, u32)> = Vec::new();
        let mut next = 0u32;
        let mut out = Vec::new();
        for root in 0..n as u32 {
            if index[root as usize] != UNSEEN || self.out(root).next().is_none() {
                continue;
            }
            frames.push((root, self.offsets[root as usize]));
            index[root as usize] = next;
            low[root as usize] = next;
            next += 1;
            stack.push(root);
            on_stack[root as usize] = true;
            while let Some(&mut (v, ref mut pos)) = frames.last_mut() {
                let end = self.offsets[v as usize + 1];
                if *pos < end {
                    let w = self.targets[*pos as usize];
                    *pos += 1;
                    if index[w as usize] == UNSEEN {
                        index[w as usize] = next;
                        low[w as usize] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[w as usize] = true;
                        frames.push((w, self.offsets[w as usize]));
                    } else if on_stack[w as usize] {
                        low[v as usize] = low[v as usize].min(index[w as usize]);
                    }
                    continue;
                }
                frames.pop();
                if let Some(&(parent, _)) = frames.last() {
                    low[parent as usize] = low[parent as usize].min(low[v as usize]);
                }
                if low[v as usize] == index[v as usize] {
                    let mut component = Vec::new();
                    loop {
                        let w = stack.pop().expect("Tarjan stack holds the component");
                        on_stack[w as usize] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        component.sort_unstable();
                        out.push(component);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(n: usize, edges: &[(u32, u32, u8)]) -> Graph {
        let mut list = EdgeList::default();
        for &(a, b, k) in edges {
            list.add(a, b, k);
        }
        Graph::build(n, list)
    }

    #[test]
    fn duplicate_edges_merge_their_kinds() {
        let g = graph(3, &[(0, 1, WW), (0, 1, RW), (0, 2, WR), (1, 1, WW)]);
        assert_eq!(g.edge_count(), 2);
        assert_eq!(g.mask(0, 1), WW, "ww explains the edge without rw");
        assert_eq!(g.mask(0, 2), WR);
        assert_eq!(g.mask(1, 1), 0, "self-edges are dropped");
        assert_eq!(g.out(0).collect::<Vec<_>>(), vec![(1, WW), (2, WR)]);
        let g = graph(
            2,
            &[(0, 1, RT), (0, 1, RW), (1, 0, WR), (1, 0, RT), (1, 0, RW)],
        );
        assert_eq!(g.mask(0, 1), RW | RT);
        assert_eq!(g.mask(1, 0), WR | RT);
    }

    #[test]
    fn sccs_are_the_cycles_only() {
        // 0 -> 1 -> 2 -> 0 is a cycle; 3 -> 4 is not; 4 <-> 5 is.
        let g = graph(
            6,
            &[
                (0, 1, WW),
                (1, 2, WW),
                (2, 0, WR),
                (3, 4, RW),
                (4, 5, WW),
                (5, 4, WW),
                (2, 3, WW),
            ],
        );
        let mut sccs = g.sccs();
        sccs.sort();
        assert_eq!(sccs, vec![vec![0, 1, 2], vec![4, 5]]);
    }

    #[test]
    fn long_chains_do_not_overflow_the_stack() {
        let n = 200_000u32;
        let mut edges: Vec<(u32, u32, u8)> = (0..n - 1).map(|i| (i, i + 1, WW)).collect();
        edges.push((n - 1, 0, RW));
        let g = graph(n as usize, &edges);
        let sccs = g.sccs();
        assert_eq!(sccs.len(), 1);
        assert_eq!(sccs[0].len(), n as usize);
    }
}
