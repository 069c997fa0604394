//! The docker backend (DESIGN.md §6): a container per node from an image Fissure builds itself
//! ([`image`]), on a bridge network of the cluster's own ([`cluster`]), controlled only over
//! SSH exactly as VMs and hosts are ([`crate::backend::remote`]).

pub mod cluster;
pub mod engine;
pub mod image;

use crate::backend::remote::{RemoteCluster, Removal, RemoveFn, RunRequest};
use crate::backend::state::ClusterState;

/// The binary's path inside every node.
pub fn program() -> String {
    format!("{}/fissure", cluster::BIN_MOUNT)
}

/// Starts the target on a docker cluster: the named one, or a new one that the run's shutdown
/// removes. A cluster made here is removed again if the start fails.
pub async fn start_for_run(request: RunRequest) -> anyhow::Result<RemoteCluster> {
    let nodes = request.nodes;
    let (state, ephemeral) = match &request.cluster {
        Some(name) => {
            let state = ClusterState::load(name)?;
            check_packages(&state, &request.packages)?;
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
            let (state, timings) = cluster::up_with(&name, nodes, true, &request.packages).await?;
            tracing::info!(?timings, "cluster {name} made for this run");
            (state, true)
        }
    };
    let remove = ephemeral.then_some(remove_containers as RemoveFn);
    RemoteCluster::start_for_run(state, request.target_config(program()), remove).await
}

fn remove_containers(name: String) -> Removal {
    Box::pin(async move { cluster::down(&name).await.map(drop) })
}

/// An existing cluster runs a target only if its image has the target's packages.
fn check_packages(state: &ClusterState, packages: &[String]) -> anyhow::Result<()> {
    if packages.is_empty() || state.image == image::reference_with(packages) {
        return Ok(());
    }
    anyhow::bail!(
        "cluster {} was made without this target's packages ({}): make one for it with \
         `fissure cluster up --target TARGET`, or run without --cluster",
        state.name,
        packages.join(", ")
    )
}
