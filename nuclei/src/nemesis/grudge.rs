//! Partitions as grudges (Jepsen's partitioners), pure and seeded so a schedule's pre-drawn seed
//! always cuts the same way for the same nodes and primaries.

use super::kinds::PartitionKind;
use super::target::{check_nodes, known_primaries, pick};
use crate::control::{Grudge, NodeId};
use anyhow::bail;
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::BTreeSet;

/// The grudge a partition installs, and a note when it could not be what was asked (no primary
/// known), so the history says what really happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    pub grudge: Grudge,
    pub note: Option<String>,
}

impl PartitionKind {
    /// The smallest cluster this partition means anything for.
    pub fn min_nodes(self) -> usize {
        match self {
            // A bridge needs a node on each side besides itself; with two nodes every
            // "majority" is the whole cluster, so a ring would cut nothing.
            PartitionKind::Bridge | PartitionKind::MajoritiesRing => 3,
            _ => 2,
        }
    }

    /// True if cutting needs the current primaries.
    pub fn needs_primaries(self) -> bool {
        self == PartitionKind::IsolatePrimary
    }

    /// The grudge for `nodes`. `primaries` is only read by isolate-primary, which with no
    /// known primary isolates a random node and says so in the note.
    pub fn cut<R: Rng + ?Sized>(
        self,
        nodes: &[NodeId],
        primaries: &[NodeId],
        rng: &mut R,
    ) -> anyhow::Result<Cut> {
        check_nodes(nodes)?;
        let n = nodes.len();
        if n < self.min_nodes() {
            bail!(
                "partition {self} needs at least {} nodes, the cluster has {n}",
                self.min_nodes()
            );
        }
        let mut shuffled = || {
            let mut v = nodes.to_vec();
            v.shuffle(rng);
            v
        };
        let plain = |grudge| Cut { grudge, note: None };
        Ok(match self {
            PartitionKind::Halves => plain(halves(nodes)),
            PartitionKind::RandomHalves => plain(halves(&shuffled())),
            PartitionKind::Bridge => plain(bridge(&shuffled())),
            PartitionKind::MajoritiesRing => plain(majorities_ring(&shuffled())),
            PartitionKind::IsolateOne => plain(isolate(nodes, &pick(nodes, 1, rng)[0])),
            PartitionKind::IsolatePrimary => {
                let (known, stale) = known_primaries(nodes, primaries);
                let (node, note) = match known.len() {
                    0 => {
                        let node = pick(nodes, 1, rng).remove(0);
                        let note = format!("no primary known; isolated a random node ({node})");
                        (node, Some(note))
                    }
                    1 => (known[0].clone(), None),
                    _ => {
                        let node = pick(&known, 1, rng).remove(0);
                        let note =
                            format!("several primaries ({}); isolated {node}", known.join(", "));
                        (node, Some(note))
                    }
                };
                let note = match (note, stale) {
                    (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                    (a, b) => a.or(b),
                };
                Cut {
                    grudge: isolate(nodes, &node),
                    note,
                }
            }
        })
    }
}

/// The first ⌊n/2⌋ nodes against the rest.
fn halves(nodes: &[NodeId]) -> Grudge {
    let (a, b) = nodes.split_at(nodes.len() / 2);
    Grudge::between(a, b)
}

/// The first ⌊n/2⌋ nodes against all but the next, which talks to both sides.
fn bridge(nodes: &[NodeId]) -> Grudge {
    let mid = nodes.len() / 2;
    Grudge::between(&nodes[..mid], &nodes[mid + 1..])
}

fn isolate(nodes: &[NodeId], node: &NodeId) -> Grudge {
    let rest: Vec<NodeId> = nodes.iter().filter(|n| *n != node).cloned().collect();
    Grudge::between(std::slice::from_ref(node), &rest)
}

/// Jepsen's perfect majorities ring: around the ring, each window of m = ⌊n/2⌋+1 consecutive
/// nodes is the majority its middle node hears from; every node is the middle of exactly one
/// window, so each hears a different majority. For n=5 a node hears itself and its two
/// neighbours; for even m the window leans back, so some links are cut one way only.
fn majorities_ring(ring: &[NodeId]) -> Grudge {
    let n = ring.len();
    let m = n / 2 + 1;
    let mut grudge = Grudge::default();
    for start in 0..n {
        let window: Vec<&NodeId> = (0..m).map(|j| &ring[(start + j) % n]).collect();
        let dropped: BTreeSet<NodeId> = ring
            .iter()
            .filter(|node| !window.contains(node))
            .cloned()
            .collect();
        grudge.0.insert(window[m / 2].clone(), dropped);
    }
    grudge
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn nodes(n: usize) -> Vec<NodeId> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn ids(names: &[&str]) -> Vec<NodeId> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// The nodes `node` hears from (itself included).
    fn hears(g: &Grudge, all: &[NodeId], node: &str) -> BTreeSet<NodeId> {
        all.iter().filter(|s| g.allows(s, node)).cloned().collect()
    }

    /// The nodes that hear from `node` (itself included).
    fn heard_by(g: &Grudge, all: &[NodeId], node: &str) -> BTreeSet<NodeId> {
        all.iter().filter(|r| g.allows(node, r)).cloned().collect()
    }

    fn cut(kind: PartitionKind, n: usize, primaries: &[&str], seed: u64) -> Cut {
        let mut rng = StdRng::seed_from_u64(seed);
        kind.cut(&nodes(n), &ids(primaries), &mut rng).unwrap()
    }

    #[test]
    fn halves_split_in_node_order() {
        let g = cut(PartitionKind::Halves, 3, &[], 0).grudge;
        assert_eq!(g, Grudge::between(&ids(&["n1"]), &ids(&["n2", "n3"])));
        let g = cut(PartitionKind::Halves, 5, &[], 0).grudge;
        assert_eq!(
            g,
            Grudge::between(&ids(&["n1", "n2"]), &ids(&["n3", "n4", "n5"]))
        );
        let json = serde_json::to_value(&g).unwrap();
        assert_eq!(json["n1"], serde_json::json!(["n3", "n4", "n5"]));
    }

    #[test]
    fn random_halves_are_complete_cuts_of_the_right_sizes() {
        for n in [3, 5] {
            let all = nodes(n);
            let mut seen = BTreeSet::new();
            for seed in 0..20 {
                let g = cut(PartitionKind::RandomHalves, n, &[], seed).grudge;
                let small: Vec<NodeId> = all
                    .iter()
                    .filter(|x| hears(&g, &all, x).len() == n / 2)
                    .cloned()
                    .collect();
                let big: Vec<NodeId> = all.iter().filter(|x| !small.contains(x)).cloned().collect();
                assert_eq!(small.len(), n / 2);
                assert_eq!(g, Grudge::between(&small, &big));
                seen.insert(small);
            }
            assert!(seen.len() > 1, "random halves never varied for n={n}");
        }
    }

    #[test]
    fn bridge_node_reaches_everyone_and_the_sides_are_cut() {
        for n in [3, 5] {
            let all = nodes(n);
            for seed in 0..10 {
                let g = cut(PartitionKind::Bridge, n, &[], seed).grudge;
                let bridges: Vec<&NodeId> = all
                    .iter()
                    .filter(|x| hears(&g, &all, x).len() == n && heard_by(&g, &all, x).len() == n)
                    .collect();
                assert_eq!(bridges.len(), 1, "n={n} {g:?}");
                for x in all.iter().filter(|x| x != &bridges[0]) {
                    let side = hears(&g, &all, x);
                    assert_eq!(side, heard_by(&g, &all, x), "cuts are both ways");
                    // Its own half plus the bridge.
                    assert_eq!(side.len(), n / 2 + 1, "n={n} {x} hears {side:?}");
                }
            }
        }
    }

    #[test]
    fn majorities_ring_gives_each_node_its_own_majority() {
        for n in [3, 4, 5, 7] {
            let all = nodes(n);
            let majority = n / 2 + 1;
            let g = cut(PartitionKind::MajoritiesRing, n, &[], n as u64).grudge;
            let mut majorities = BTreeSet::new();
            for x in &all {
                let heard = hears(&g, &all, x);
                assert!(heard.contains(x));
                assert_eq!(heard.len(), majority, "n={n}: {x} hears {heard:?}");
                assert_eq!(heard_by(&g, &all, x).len(), majority, "n={n}: {x}");
                majorities.insert(heard);
            }
            assert_eq!(majorities.len(), n, "no two nodes share a majority (n={n})");
        }
        // For five nodes the links kept form a ring: each node and its two neighbours, both
        // ways, so walking neighbours from any node visits all five before returning.
        let all = nodes(5);
        let g = cut(PartitionKind::MajoritiesRing, 5, &[], 3).grudge;
        let neighbours = |x: &str| -> Vec<NodeId> {
            let h = hears(&g, &all, x);
            assert_eq!(h, heard_by(&g, &all, x));
            h.into_iter().filter(|y| y != x).collect()
        };
        let (mut prev, mut at) = (String::new(), all[0].clone());
        let mut visited = BTreeSet::new();
        for _ in 0..5 {
            visited.insert(at.clone());
            let next = neighbours(&at).into_iter().find(|y| *y != prev).unwrap();
            (prev, at) = (at, next);
        }
        assert_eq!(at, all[0]);
        assert_eq!(visited.len(), 5);
    }

    #[test]
    fn isolate_one_cuts_exactly_one_node() {
        for n in [3, 5] {
            let all = nodes(n);
            let g = cut(PartitionKind::IsolateOne, n, &[], 9).grudge;
            let alone: Vec<&NodeId> = all
                .iter()
                .filter(|x| hears(&g, &all, x).len() == 1)
                .collect();
            assert_eq!(alone.len(), 1);
            for x in all.iter().filter(|x| x != &alone[0]) {
                assert_eq!(hears(&g, &all, x).len(), n - 1);
            }
        }
    }

    #[test]
    fn isolate_primary_isolates_it_or_says_why_not() {
        let all = nodes(5);
        let c = cut(PartitionKind::IsolatePrimary, 5, &["n3"], 0);
        assert_eq!(c.note, None);
        let rest = ids(&["n1", "n2", "n4", "n5"]);
        assert_eq!(c.grudge, Grudge::between(&ids(&["n3"]), &rest));

        let c = cut(PartitionKind::IsolatePrimary, 3, &[], 0);
        let note = c.note.unwrap();
        assert!(
            note.starts_with("no primary known; isolated a random node"),
            "{note}"
        );
        let three = nodes(3);
        let alone: Vec<&NodeId> = three
            .iter()
            .filter(|x| hears(&c.grudge, &three, x).len() == 1)
            .collect();
        assert_eq!(alone.len(), 1);
        assert!(note.contains(alone[0].as_str()));

        let c = cut(PartitionKind::IsolatePrimary, 5, &["n2", "n4"], 0);
        assert!(c.note.unwrap().starts_with("several primaries (n2, n4)"));
        let isolated = ["n2", "n4"]
            .iter()
            .filter(|x| hears(&c.grudge, &all, x).len() == 1)
            .count();
        assert_eq!(isolated, 1);
    }

    #[test]
    fn same_seed_same_cut() {
        for &kind in PartitionKind::ALL {
            assert_eq!(cut(kind, 5, &[], 11), cut(kind, 5, &[], 11), "{kind}");
        }
    }

    #[test]
    fn too_small_clusters_are_errors() {
        let mut rng = StdRng::seed_from_u64(0);
        let e = PartitionKind::Bridge
            .cut(&nodes(2), &[], &mut rng)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "partition bridge needs at least 3 nodes, the cluster has 2"
        );
        let e = PartitionKind::Halves
            .cut(&nodes(1), &[], &mut rng)
            .unwrap_err();
        assert!(e.to_string().contains("at least 2 nodes"));
        let e = PartitionKind::IsolateOne
            .cut(&[], &[], &mut rng)
            .unwrap_err();
        assert_eq!(e.to_string(), "the cluster has no nodes");
    }
}
