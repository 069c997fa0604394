//! Turning a [`Target`] into concrete nodes. Pure: the same nodes, primaries and rng state give
//! the same choice, which is what lets a schedule pre-draw a seed and stay repeatable.

use super::kinds::Target;
use crate::control::NodeId;
use anyhow::bail;
use rand::seq::index::sample;
use rand::Rng;

/// Nodes chosen for a fault, in node order, and a note when the choice had to deviate from what
/// was asked (no primary known).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub nodes: Vec<NodeId>,
    pub note: Option<String>,
}

/// The node list must be nonempty and without repeats, or every choice below is meaningless.
pub(crate) fn check_nodes(nodes: &[NodeId]) -> anyhow::Result<()> {
    if nodes.is_empty() {
        bail!("the cluster has no nodes");
    }
    for (i, node) in nodes.iter().enumerate() {
        if nodes[..i].contains(node) {
            bail!("node {node:?} appears twice in the cluster's node list");
        }
    }
    Ok(())
}

/// `k` distinct random nodes, in node order.
pub(crate) fn pick<R: Rng + ?Sized>(nodes: &[NodeId], k: usize, rng: &mut R) -> Vec<NodeId> {
    let mut indices = sample(rng, nodes.len(), k.min(nodes.len())).into_vec();
    indices.sort_unstable();
    indices.into_iter().map(|i| nodes[i].clone()).collect()
}

/// The known primaries that are nodes of this cluster, in node order, and a note naming any
/// that are not (a stale answer from the backend).
pub(crate) fn known_primaries(
    nodes: &[NodeId],
    primaries: &[NodeId],
) -> (Vec<NodeId>, Option<String>) {
    let known: Vec<NodeId> = nodes
        .iter()
        .filter(|n| primaries.contains(n))
        .cloned()
        .collect();
    let strangers: Vec<&str> = primaries
        .iter()
        .filter(|p| !nodes.contains(p))
        .map(String::as_str)
        .collect();
    let note = (!strangers.is_empty()).then(|| {
        format!(
            "ignored primaries that are not cluster nodes: {}",
            strangers.join(", ")
        )
    });
    (known, note)
}

impl Target {
    /// The smallest cluster this target makes sense for.
    pub fn min_nodes(self) -> usize {
        match self {
            // With one or two nodes no nonempty set is smaller than half.
            Target::Minority => 3,
            _ => 1,
        }
    }

    /// True if resolving needs the current primaries.
    pub fn needs_primaries(self) -> bool {
        self == Target::Primaries
    }

    /// Chooses the nodes. `primaries` is only read for [`Target::Primaries`]; with none known
    /// it falls back to one random node and says so in the note.
    pub fn resolve<R: Rng + ?Sized>(
        self,
        nodes: &[NodeId],
        primaries: &[NodeId],
        rng: &mut R,
    ) -> anyhow::Result<Resolved> {
        check_nodes(nodes)?;
        let n = nodes.len();
        if n < self.min_nodes() {
            bail!(
                "target {self} needs at least {} nodes, the cluster has {n}",
                self.min_nodes()
            );
        }
        let resolved = |nodes| Resolved { nodes, note: None };
        Ok(match self {
            Target::One => resolved(pick(nodes, 1, rng)),
            Target::Minority => {
                let k = rng.gen_range(1..=(n - 1) / 2);
                resolved(pick(nodes, k, rng))
            }
            Target::Majority => {
                let least = n / 2 + 1;
                let most = if least < n { n - 1 } else { n };
                let k = rng.gen_range(least..=most);
                resolved(pick(nodes, k, rng))
            }
            Target::All => resolved(nodes.to_vec()),
            Target::Primaries => {
                let (known, stale) = known_primaries(nodes, primaries);
                if known.is_empty() {
                    let chosen = pick(nodes, 1, rng);
                    let mut note = format!("no primary known; chose a random node ({})", chosen[0]);
                    if let Some(stale) = stale {
                        note = format!("{note}; {stale}");
                    }
                    Resolved {
                        nodes: chosen,
                        note: Some(note),
                    }
                } else {
                    Resolved {
                        nodes: known,
                        note: stale,
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn nodes(n: usize) -> Vec<NodeId> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn sizes(target: Target, n: usize) -> Vec<usize> {
        let mut rng = StdRng::seed_from_u64(7);
        (0..200)
            .map(|_| {
                let r = target.resolve(&nodes(n), &[], &mut rng).unwrap();
                assert!(r.nodes.windows(2).all(|w| w[0] < w[1]), "{:?}", r.nodes);
                r.nodes.len()
            })
            .collect()
    }

    #[test]
    fn sizes_match_the_target() {
        for n in [3, 5] {
            assert!(sizes(Target::One, n).iter().all(|&k| k == 1));
            assert!(sizes(Target::All, n).iter().all(|&k| k == n));
            assert!(sizes(Target::Minority, n)
                .iter()
                .all(|&k| k >= 1 && 2 * k < n));
            assert!(sizes(Target::Majority, n)
                .iter()
                .all(|&k| 2 * k > n && k < n));
        }
        // Both minority sizes of a 5-node cluster occur.
        let five = sizes(Target::Minority, 5);
        assert!(five.contains(&1) && five.contains(&2));
        // Two nodes have no proper majority, so it is both; one node is everything.
        assert!(sizes(Target::Majority, 2).iter().all(|&k| k == 2));
        assert!(sizes(Target::Majority, 1).iter().all(|&k| k == 1));
    }

    #[test]
    fn primaries_are_used_and_missing_ones_fall_back() {
        let mut rng = StdRng::seed_from_u64(1);
        let all = nodes(5);
        let r = Target::Primaries
            .resolve(&all, &["n4".into()], &mut rng)
            .unwrap();
        assert_eq!(
            r,
            Resolved {
                nodes: vec!["n4".into()],
                note: None
            }
        );
        let r = Target::Primaries.resolve(&all, &[], &mut rng).unwrap();
        assert_eq!(r.nodes.len(), 1);
        assert!(r.note.unwrap().starts_with("no primary known"));
        let r = Target::Primaries
            .resolve(&all, &["n9".into(), "n2".into()], &mut rng)
            .unwrap();
        assert_eq!(r.nodes, ["n2"]);
        assert!(r.note.unwrap().contains("n9"));
    }

    #[test]
    fn same_seed_same_nodes() {
        let all = nodes(7);
        let draw = |seed| {
            Target::Minority
                .resolve(&all, &[], &mut StdRng::seed_from_u64(seed))
                .unwrap()
        };
        assert_eq!(draw(42), draw(42));
        let distinct: std::collections::BTreeSet<_> = (0..20).map(|s| draw(s).nodes).collect();
        assert!(distinct.len() > 1);
    }

    #[test]
    fn bad_clusters_are_errors() {
        let mut rng = StdRng::seed_from_u64(1);
        let e = Target::One.resolve(&[], &[], &mut rng).unwrap_err();
        assert_eq!(e.to_string(), "the cluster has no nodes");
        let e = Target::Minority
            .resolve(&nodes(2), &[], &mut rng)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "target minority needs at least 3 nodes, the cluster has 2"
        );
        let twice = vec!["n1".to_string(), "n1".to_string()];
        let e = Target::All.resolve(&twice, &[], &mut rng).unwrap_err();
        assert!(e.to_string().contains("appears twice"));
    }
}
