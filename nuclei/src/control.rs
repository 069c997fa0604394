//! The backend-neutral interface the nemesis drives (DESIGN.md §5, §6).
//!
//! A cluster backend (local processes, docker over SSH, VMs) implements [`ClusterControl`]; fault
//! schedules and targeting in [`crate::nemesis`] only ever talk to this trait, so the same schedule
//! runs unchanged on every backend.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A node's name, as the target knows it: `n1`, `n2`, ...
pub type NodeId = String;

/// Who drops whose packets: `grudge[a]` is the set of nodes whose packets `a` drops (Jepsen's
/// grudge). A symmetric partition lists each side's members under every node of the other side;
/// a one-way partition lists only one direction. Nodes absent from the map drop nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Grudge(pub BTreeMap<NodeId, BTreeSet<NodeId>>);

impl Grudge {
    /// Every packet between the two groups dropped, both ways.
    pub fn between(a: &[NodeId], b: &[NodeId]) -> Grudge {
        let mut grudge = Grudge::default();
        grudge.drop_one_way(a, b);
        grudge.drop_one_way(b, a);
        grudge
    }

    /// Packets from every node of `from` dropped at every node of `to` (a one-way partition:
    /// `from` cannot reach `to`, but `to` can still reach `from`).
    pub fn drop_one_way(&mut self, from: &[NodeId], to: &[NodeId]) {
        for receiver in to {
            for sender in from {
                if sender != receiver {
                    self.0
                        .entry(receiver.clone())
                        .or_default()
                        .insert(sender.clone());
                }
            }
        }
    }

    /// True if packets from `from` reach `to`.
    pub fn allows(&self, from: &str, to: &str) -> bool {
        self.0.get(to).is_none_or(|senders| !senders.contains(from))
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(BTreeSet::is_empty)
    }

    /// Adds every cut of `other` to this one (two faults' partitions in force at once).
    pub fn union_with(&mut self, other: &Grudge) {
        for (receiver, senders) in &other.0 {
            self.0
                .entry(receiver.clone())
                .or_default()
                .extend(senders.iter().cloned());
        }
    }
}

/// How a degraded network link behaves: every packet delayed by `latency` ± `jitter` (uniform),
/// and a share `loss` (0..=1) of packets lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkQuality {
    #[serde(with = "duration_ms")]
    pub latency: Duration,
    #[serde(with = "duration_ms")]
    pub jitter: Duration,
    pub loss: f64,
}

impl LinkQuality {
    pub fn is_perfect(&self) -> bool {
        self.latency.is_zero() && self.jitter.is_zero() && self.loss <= 0.0
    }
}

/// What a node is doing, as the backend sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Running,
    Paused,
    Killed,
}

/// Control over a running cluster, for the nemesis. Every method is idempotent where that makes
/// sense (killing a killed node, resuming a running one, healing a healed network are no-ops),
/// so heal-everything can be run at any time, any number of times.
///
/// Errors are `anyhow` errors that say what failed on which node and what to do about it.
#[async_trait]
pub trait ClusterControl: Send + Sync {
    /// The nodes, in order (n1, n2, ...).
    fn nodes(&self) -> Vec<NodeId>;

    /// Replaces the network's grudge: afterwards exactly the pairs in `grudge` are cut, node to
    /// node (client traffic is not affected, as with iptables rules on the nodes' peers).
    async fn partition(&self, grudge: &Grudge) -> anyhow::Result<()>;

    /// Removes every partition.
    async fn heal_partition(&self) -> anyhow::Result<()>;

    /// Degrades every link into and out of `nodes` (peer and client traffic, as tc netem on the
    /// nodes' interfaces would), replacing any earlier degradation of those nodes.
    async fn degrade(&self, nodes: &[NodeId], quality: LinkQuality) -> anyhow::Result<()>;

    /// Restores every link to full quality.
    async fn restore_links(&self) -> anyhow::Result<()>;

    /// SIGKILLs the node's process (no-op if it is not running).
    async fn kill(&self, node: &str) -> anyhow::Result<()>;

    /// Starts a killed node again with its data (no-op if it runs; resumes it if paused).
    async fn start(&self, node: &str) -> anyhow::Result<()>;

    /// SIGSTOPs the node's process.
    async fn pause(&self, node: &str) -> anyhow::Result<()>;

    /// SIGCONTs the node's process.
    async fn resume(&self, node: &str) -> anyhow::Result<()>;

    /// Sets the node's wall clock to run `offset_ms` milliseconds ahead (negative: behind) of
    /// the real clock; 0 resets it.
    async fn set_clock_offset(&self, node: &str, offset_ms: i64) -> anyhow::Result<()>;

    /// The node(s) that currently lead (a Raft leader, a 2PC coordinator); empty when none is
    /// known or the system has no primary.
    async fn primaries(&self) -> anyhow::Result<Vec<NodeId>>;

    /// What each node is doing.
    fn node_states(&self) -> BTreeMap<NodeId, NodeState>;

    /// Undoes every fault: heals partitions, restores links, resets clocks, resumes paused and
    /// starts killed nodes. Tries every step even when one fails, and reports all failures.
    async fn heal_all(&self) -> anyhow::Result<()> {
        let mut failures = Vec::new();
        if let Err(e) = self.heal_partition().await {
            failures.push(format!("healing partitions: {e:#}"));
        }
        if let Err(e) = self.restore_links().await {
            failures.push(format!("restoring links: {e:#}"));
        }
        for node in self.nodes() {
            if let Err(e) = self.set_clock_offset(&node, 0).await {
                failures.push(format!("resetting {node}'s clock: {e:#}"));
            }
            if let Err(e) = self.resume(&node).await {
                failures.push(format!("resuming {node}: {e:#}"));
            }
            if let Err(e) = self.start(&node).await {
                failures.push(format!("starting {node}: {e:#}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("heal incomplete: {}", failures.join("; "))
        }
    }
}

/// Durations as integer milliseconds in JSON (history values, test.json).
pub mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<NodeId> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn grudges_cut_what_they_say() {
        let g = Grudge::between(&ids(&["n1", "n2"]), &ids(&["n3"]));
        assert!(!g.allows("n1", "n3") && !g.allows("n3", "n1"));
        assert!(g.allows("n1", "n2"));
        let mut one_way = Grudge::default();
        one_way.drop_one_way(&ids(&["n1"]), &ids(&["n2"]));
        assert!(!one_way.allows("n1", "n2"));
        assert!(one_way.allows("n2", "n1"));
        assert!(Grudge::default().is_empty());
    }
}
