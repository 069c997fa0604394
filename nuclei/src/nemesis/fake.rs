//! An in-memory cluster for the executor's tests: records every control call, keeps the state
//! the calls produce, and fails the calls a test asks it to.

use crate::control::{ClusterControl, Grudge, LinkQuality, NodeId, NodeState};
use anyhow::bail;
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
pub struct State {
    pub nodes: Vec<NodeId>,
    pub primaries: Vec<NodeId>,
    /// Every call, as `"kill n2"`, `"offset n1 +250"`, `"degrade n1,n2 100/50/0"`, ...
    pub calls: Vec<String>,
    /// Calls starting with any of these fail, without effect.
    pub fail: BTreeSet<String>,
    pub grudge: Grudge,
    pub degraded: BTreeMap<NodeId, LinkQuality>,
    pub states: BTreeMap<NodeId, NodeState>,
    pub offsets: BTreeMap<NodeId, i64>,
}

impl State {
    /// True when no fault is left anywhere.
    pub fn healed(&self) -> bool {
        self.grudge.is_empty()
            && self.degraded.is_empty()
            && self.states.values().all(|s| *s == NodeState::Running)
            && self.offsets.values().all(|o| *o == 0)
    }
}

pub struct Fake(Mutex<State>);

pub fn nodes(n: usize) -> Vec<NodeId> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

impl Fake {
    pub fn new(n: usize) -> Fake {
        let nodes = nodes(n);
        Fake(Mutex::new(State {
            states: nodes
                .iter()
                .map(|n| (n.clone(), NodeState::Running))
                .collect(),
            offsets: nodes.iter().map(|n| (n.clone(), 0)).collect(),
            nodes,
            ..State::default()
        }))
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn fail(&self, prefix: &str) {
        self.state().fail.insert(prefix.to_string());
    }

    pub fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    /// Records the call; errors if it is set to fail.
    fn call(&self, call: String) -> anyhow::Result<MutexGuard<'_, State>> {
        let mut state = self.state();
        state.calls.push(call.clone());
        if state.fail.iter().any(|p| call.starts_with(p.as_str())) {
            bail!("injected failure: {call}");
        }
        Ok(state)
    }

    fn set_state(&self, verb: &str, node: &str, to: NodeState) -> anyhow::Result<()> {
        let mut state = self.call(format!("{verb} {node}"))?;
        match state.states.get_mut(node) {
            Some(s) => *s = to,
            None => bail!("no node {node}"),
        }
        Ok(())
    }
}

#[async_trait]
impl ClusterControl for Fake {
    fn nodes(&self) -> Vec<NodeId> {
        self.state().nodes.clone()
    }

    async fn partition(&self, grudge: &Grudge) -> anyhow::Result<()> {
        let json = serde_json::to_string(grudge)?;
        self.call(format!("partition {json}"))?.grudge = grudge.clone();
        Ok(())
    }

    async fn heal_partition(&self) -> anyhow::Result<()> {
        self.call("heal-partition".into())?.grudge = Grudge::default();
        Ok(())
    }

    async fn degrade(&self, nodes: &[NodeId], q: LinkQuality) -> anyhow::Result<()> {
        let call = format!(
            "degrade {} {}/{}/{}",
            nodes.join(","),
            q.latency.as_millis(),
            q.jitter.as_millis(),
            q.loss
        );
        let mut state = self.call(call)?;
        for node in nodes {
            state.degraded.insert(node.clone(), q);
        }
        Ok(())
    }

    async fn restore_links(&self) -> anyhow::Result<()> {
        self.call("restore-links".into())?.degraded.clear();
        Ok(())
    }

    async fn kill(&self, node: &str) -> anyhow::Result<()> {
        self.set_state("kill", node, NodeState::Killed)
    }

    async fn start(&self, node: &str) -> anyhow::Result<()> {
        self.set_state("start", node, NodeState::Running)
    }

    async fn pause(&self, node: &str) -> anyhow::Result<()> {
        self.set_state("pause", node, NodeState::Paused)
    }

    async fn resume(&self, node: &str) -> anyhow::Result<()> {
        let mut state = self.call(format!("resume {node}"))?;
        if state.states.get(node) == Some(&NodeState::Paused) {
            state.states.insert(node.to_string(), NodeState::Running);
        }
        Ok(())
    }

    async fn set_clock_offset(&self, node: &str, offset_ms: i64) -> anyhow::Result<()> {
        let mut state = self.call(format!("offset {node} {offset_ms:+}"))?;
        state.offsets.insert(node.to_string(), offset_ms);
        Ok(())
    }

    async fn primaries(&self) -> anyhow::Result<Vec<NodeId>> {
        Ok(self.call("primaries".into())?.primaries.clone())
    }

    fn node_states(&self) -> BTreeMap<NodeId, NodeState> {
        self.state().states.clone()
    }
}
