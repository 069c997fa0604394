//! `--backend none`: a system the user already runs, reached at the client addresses they give.
//! Nothing is installed, started or stopped, and no fault is made: Fissure only drives clients
//! and checks what they saw (a smoke test of a staging cluster). The run's spec has no nemesis,
//! so none of the fault methods below is ever asked for; they refuse, to be safe.

use super::RunCluster;
use anyhow::bail;
use nuclei::control::{ClusterControl, Grudge, LinkQuality, NodeId, NodeState};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Someone else's cluster: only its client addresses.
pub struct ExistingCluster {
    /// `(n1, host:port)`, ... in the order given.
    endpoints: Vec<(NodeId, String)>,
}

impl ExistingCluster {
    pub fn new(addresses: &[String]) -> ExistingCluster {
        ExistingCluster {
            endpoints: (addresses.iter().enumerate())
                .map(|(i, a)| (format!("n{}", i + 1), a.clone()))
                .collect(),
        }
    }
}

fn refuse<T>(what: &str) -> anyhow::Result<T> {
    bail!("{what}: --backend none makes no faults (the system is not Fissure's to break)")
}

#[async_trait::async_trait]
impl ClusterControl for ExistingCluster {
    fn nodes(&self) -> Vec<NodeId> {
        self.endpoints.iter().map(|(n, _)| n.clone()).collect()
    }
    async fn partition(&self, _: &Grudge) -> anyhow::Result<()> {
        refuse("partition")
    }
    async fn heal_partition(&self) -> anyhow::Result<()> {
        Ok(())
    }
    async fn degrade(&self, _: &[NodeId], _: LinkQuality) -> anyhow::Result<()> {
        refuse("latency and loss")
    }
    async fn restore_links(&self) -> anyhow::Result<()> {
        Ok(())
    }
    async fn kill(&self, _: &str) -> anyhow::Result<()> {
        refuse("kill")
    }
    async fn start(&self, _: &str) -> anyhow::Result<()> {
        Ok(())
    }
    async fn pause(&self, _: &str) -> anyhow::Result<()> {
        refuse("pause")
    }
    async fn resume(&self, _: &str) -> anyhow::Result<()> {
        Ok(())
    }
    async fn set_clock_offset(&self, _: &str, _: i64) -> anyhow::Result<()> {
        refuse("clock")
    }
    async fn primaries(&self) -> anyhow::Result<Vec<NodeId>> {
        Ok(Vec::new())
    }
    fn node_states(&self) -> BTreeMap<NodeId, NodeState> {
        (self.endpoints.iter())
            .map(|(n, _)| (n.clone(), NodeState::Running))
            .collect()
    }
    async fn heal_all(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl RunCluster for ExistingCluster {
    fn client_addrs(&self) -> Vec<(NodeId, String)> {
        self.endpoints.clone()
    }
    fn clock_mechanism(&self) -> &'static str {
        "none"
    }
    async fn shutdown(&self) -> anyhow::Result<()> {
        Ok(())
    }
    fn control(self: Arc<Self>) -> Arc<dyn ClusterControl> {
        self
    }
}
