//! Cluster backends: where a test's nodes run and how faults reach them (DESIGN.md §6).
//! Each backend implements [`nuclei::control::ClusterControl`], so the nemesis is the same on
//! all, and [`RunCluster`], what a run needs besides faults.
//!
//! - [`local`]: `fissure node` processes on loopback behind Fissure's link proxies.
//! - [`docker`]: a container per node ([`docker::cluster`]), built from an image Fissure makes
//!   itself ([`docker::image`]), and controlled only over SSH like any remote host
//!   ([`remote`]).
//! - [`existing`]: `--backend none`, a system the user already runs: clients only, no faults.
//! - [`state`]: a cluster's state directory (nodes, key pair, pinned host keys, fault ledger).

pub mod docker;
pub mod existing;
pub mod local;
pub mod remote;
pub mod ssh;
pub mod state;
pub mod status;
pub mod subnets;
pub mod vagrant;

use nuclei::control::{ClusterControl, NodeId};
use std::sync::Arc;

/// A started cluster, as `fissure run` uses it.
#[async_trait::async_trait]
pub trait RunCluster: ClusterControl {
    /// Where clients reach each node.
    fn client_addrs(&self) -> Vec<(NodeId, String)>;
    /// How clock faults are made: "libfaketime" or "offset-file".
    fn clock_mechanism(&self) -> &'static str;
    /// Heals everything, stops every node, keeps their logs in the run's directory, and
    /// removes what was made only for this run. Idempotent.
    async fn shutdown(&self) -> anyhow::Result<()>;
    /// The same cluster as the nemesis sees it.
    fn control(self: Arc<Self>) -> Arc<dyn ClusterControl>;
}

#[async_trait::async_trait]
impl RunCluster for local::LocalCluster {
    fn client_addrs(&self) -> Vec<(NodeId, String)> {
        local::LocalCluster::client_addrs(self)
    }

    fn clock_mechanism(&self) -> &'static str {
        local::LocalCluster::clock_mechanism(self)
    }

    async fn shutdown(&self) -> anyhow::Result<()> {
        local::LocalCluster::shutdown(self).await
    }

    fn control(self: Arc<Self>) -> Arc<dyn ClusterControl> {
        self
    }
}
