//! The docker backend (DESIGN.md §6): a container per node from an image Fissure builds itself
//! ([`image`]), on a bridge network of the cluster's own ([`cluster`]), controlled only over
//! SSH exactly as VMs and hosts are ([`crate::backend::remote`]).

pub mod cluster;
pub mod engine;
pub mod image;

use crate::backend::remote::{RemoteCluster, TargetConfig, TeardownFn};
use crate::backend::state::ClusterState;
use std::path::PathBuf;
use std::time::Duration;

/// The binary's path inside every node.
pub fn program() -> String {
    format!("{}/fissure", cluster::BIN_MOUNT)
}

/// What a run asks of the docker backend.
pub struct RunRequest {
    /// An existing cluster (`fissure cluster up`), or `None` for one made for this run.
    pub cluster: Option<String>,
    pub target: String,
    pub node_args: Vec<Vec<String>>,
    pub logs_dir: PathBuf,
}

/// Starts the target on a docker cluster: the named one, or a new one that the run's shutdown
/// removes. A cluster made here is removed again if the start fails.
pub async fn start_for_run(request: RunRequest) -> anyhow::Result<RemoteCluster> {
    let nodes = request.node_args.len();
    let (state, ephemeral) = match &request.cluster {
        Some(name) => {
            let state = ClusterState::load(name)?;
            cluster::install_binary(&state)?;
            (state, false)
        }
        None => {
            // The pid says which controller made it; the random part keeps runs of
            // containers that reuse pids (CI jobs on one daemon) from sharing a name.
            let name = format!(
                "fissure-{}-{:04x}",
                std::process::id(),
                rand::random::<u16>()
            );
            let (state, timings) = cluster::up(&name, nodes, true).await?;
            tracing::info!(?timings, "cluster {name} made for this run");
            (state, true)
        }
    };
    let name = state.name.clone();
    let teardown = ephemeral.then(|| {
        let name = name.clone();
        let down: TeardownFn =
            Box::new(move || Box::pin(async move { cluster::down(&name).await.map(drop) }));
        down
    });
    let config = TargetConfig {
        target: request.target,
        node_args: request.node_args,
        program: program(),
        logs_dir: request.logs_dir,
        start_timeout: Duration::from_secs(20),
    };
    match RemoteCluster::start(state, config, teardown).await {
        Ok(cluster) => Ok(cluster),
        Err(e) => {
            if ephemeral {
                if let Err(down) = cluster::down(&name).await {
                    tracing::warn!("removing cluster {name} after a failed start: {down:#}");
                }
            }
            Err(e)
        }
    }
}
