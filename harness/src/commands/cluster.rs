//! `fissure cluster up|down|status`, `fissure heal` and `fissure image`: clusters that outlive
//! one run, and cleaning up after a controller that died.

use super::runtime;
use crate::backend::docker::{cluster, image};
use crate::backend::{remote, state};
use crate::cli::{ClusterAction, HealArgs, ImageAction};
use crate::{EXIT_ERROR, EXIT_VALID};
use anyhow::bail;
use std::time::Duration;

fn docker_only(backend: &str) -> anyhow::Result<()> {
    match backend {
        "docker" => Ok(()),
        "local" => bail!(
            "local clusters live only as long as their run; `fissure cluster` manages docker \
             clusters (--backend docker)"
        ),
        other => bail!("the {other} backend is not built yet; use --backend docker"),
    }
}

fn spinner(message: String) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

pub fn run(action: ClusterAction) -> anyhow::Result<u8> {
    let runtime = runtime()?;
    match action {
        ClusterAction::Up {
            name,
            backend,
            nodes,
            target,
        } => {
            docker_only(&backend)?;
            let packages = match &target {
                Some(target) => crate::target::Target::find(target)?.def.install.packages,
                None => Vec::new(),
            };
            let bar = spinner(format!("bringing up cluster {name} ({nodes} nodes)"));
            let up = runtime.block_on(cluster::up_with(&name, nodes, false, &packages));
            bar.finish_and_clear();
            let (state, timings) = up?;
            println!(
                "cluster {} is up: {} nodes on {}, image {}",
                state.name,
                state.nodes.len(),
                state.subnet,
                state.image
            );
            for node in &state.nodes {
                println!("  {:<4} {:<24} {}", node.id, node.container, node.ip);
            }
            println!(
                "took {:.1} s (image {:.1} s, containers {:.1} s, SSH ready {:.1} s); latency \
                 faults by {}",
                (timings.image + timings.containers + timings.ssh_ready).as_secs_f64(),
                timings.image.as_secs_f64(),
                timings.containers.as_secs_f64(),
                timings.ssh_ready.as_secs_f64(),
                describe_latency(&state.latency)
            );
            println!(
                "run on it: fissure run --backend docker --cluster {}",
                state.name
            );
            Ok(EXIT_VALID)
        }
        ClusterAction::Down {
            name,
            backend,
            force,
        } => {
            docker_only(&backend)?;
            let lock = match state::ClusterState::load(&name) {
                Ok(cluster) if !force => {
                    Some(cluster.lock("fissure cluster down").map_err(|e| {
                        e.context("stop that run first, or remove it anyway with --force")
                    })?)
                }
                _ => None,
            };
            let removed = runtime.block_on(cluster::down(&name))?;
            drop(lock);
            if removed {
                println!("cluster {name} removed (containers, network and state)");
            } else {
                println!(
                    "no cluster named {name}: nothing to remove (state is looked for in {})",
                    state::root().display()
                );
            }
            Ok(EXIT_VALID)
        }
        ClusterAction::Status { name, backend } => {
            docker_only(&backend)?;
            let names = match name {
                Some(name) => vec![name],
                None => state::list(),
            };
            if names.is_empty() {
                println!(
                    "no clusters (state in {}); start one with `fissure cluster up`",
                    state::root().display()
                );
            }
            for name in names {
                runtime.block_on(print_status(&name))?;
            }
            Ok(EXIT_VALID)
        }
    }
}

fn describe_latency(mechanism: &str) -> String {
    match mechanism {
        "link-daemon" => "link daemons (this kernel has no tc netem)".into(),
        other => other.replace("netem:", "tc netem on "),
    }
}

async fn print_status(name: &str) -> anyhow::Result<()> {
    let state = state::ClusterState::load(name)?;
    println!(
        "{}: {} backend, {} nodes on {}, image {}{}",
        state.name,
        state.backend,
        state.nodes.len(),
        state.subnet,
        state.image,
        if state.ephemeral {
            " (made for one run: its controller did not finish)"
        } else {
            ""
        }
    );
    let containers = cluster::container_states(&state).await;
    let containers_gone = containers.iter().any(|(_, c)| c == "missing");
    let fleet = remote::probe_fleet(&state)?;
    let answers = fleet.exec_all("true", Duration::from_secs(3)).await;
    for (node, (id, container)) in state.nodes.iter().zip(containers) {
        let ssh =
            answers
                .iter()
                .find(|(n, _)| *n == id)
                .map_or("?".to_string(), |(_, r)| match r {
                    Ok(_) => "ssh ok".into(),
                    Err(_) => "no ssh".into(),
                });
        println!(
            "  {:<4} {:<24} {:<15} {:<8} {ssh}",
            id, node.container, node.ip, container
        );
    }
    if containers_gone {
        println!(
            "  its containers are gone: remove what is left with `fissure cluster down {name}`"
        );
    }
    let outstanding = nuclei::ssh_faults::ledger::read_outstanding(&state.ledger())?;
    if outstanding.is_empty() {
        println!("  no fault in force according to the ledger");
    } else {
        println!("  faults the ledger says may be in force (undo with `fissure heal {name}`):");
        for fault in outstanding {
            println!(
                "    {} on {}: {}",
                fault.kind.name(),
                fault.node,
                fault.detail
            );
        }
    }
    Ok(())
}

/// `fissure heal [CLUSTER]`.
pub fn heal(args: HealArgs) -> anyhow::Result<u8> {
    let names = match args.cluster {
        Some(name) => vec![name],
        None => state::list(),
    };
    if names.is_empty() {
        println!("no clusters to heal");
        return Ok(EXIT_VALID);
    }
    let runtime = runtime()?;
    let mut code = EXIT_VALID;
    for name in names {
        match runtime.block_on(heal_one(&name, args.force)) {
            Ok(()) => {}
            Err(e) => {
                eprintln!("error: healing {name}: {e:#}");
                code = EXIT_ERROR;
            }
        }
    }
    Ok(code)
}

async fn heal_one(name: &str, force: bool) -> anyhow::Result<()> {
    let state = state::ClusterState::load(name)?;
    let _lock = match force {
        true => None,
        false => Some(state.lock("fissure heal").map_err(|e| {
            e.context("let that run end (it heals on exit), or heal anyway with --force")
        })?),
    };
    let faults = remote::faults(&state)?;
    // Heal what answers; the report names the nodes that do not.
    if let Err(e) = faults.fleet().wait_ready(Duration::from_secs(10)).await {
        eprintln!(
            "warning: {name}: not every node answers SSH ({e:#}); healing the others \
             (see `fissure cluster status {name}`)"
        );
    }
    let report = faults.heal_everything().await?;
    for fault in &report.undone {
        println!("{name}: undid {} on {}", fault.kind.name(), fault.node);
    }
    if !report.failures.is_empty() {
        bail!("{}", report.failures.join("; "));
    }
    println!(
        "{name}: healed: no Fissure chain, paused target or skewed clock on its {} nodes",
        state.nodes.len()
    );
    Ok(())
}

/// `fissure image build|name`.
pub fn image(action: ImageAction) -> anyhow::Result<u8> {
    match action {
        ImageAction::Name => println!("{}", image::reference()),
        ImageAction::Build => println!("{}", runtime()?.block_on(image::build())?),
        ImageAction::Ensure => println!("{}", runtime()?.block_on(image::ensure())?),
    }
    Ok(EXIT_VALID)
}
