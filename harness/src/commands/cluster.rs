//! `fissure cluster up|down|status`, `fissure heal` and `fissure image`: clusters that outlive
//! one run, and cleaning up after a controller that died.

use super::runtime;
use crate::backend::docker::{cluster, image};
use crate::backend::{remote, ssh, state, vagrant};
use crate::cli::{ClusterAction, HealArgs, ImageAction};
use crate::spec::{BackendKind, SpecFile};
use crate::{EXIT_ERROR, EXIT_VALID};
use anyhow::bail;
use std::time::Duration;

fn spinner(message: String) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn check_backend(backend: &str) -> anyhow::Result<BackendKind> {
    let kind: BackendKind = backend.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    match kind {
        BackendKind::Local => bail!(
            "local clusters live only as long as their run; `fissure cluster` manages docker, \
             ssh and vagrant clusters"
        ),
        BackendKind::None => bail!("--backend none has no cluster to manage"),
        kind => Ok(kind),
    }
}

pub fn run(action: ClusterAction) -> anyhow::Result<u8> {
    let runtime = runtime()?;
    match action {
        ClusterAction::Up {
            name,
            backend,
            nodes,
            target,
            hosts,
            hosts_file,
            ssh_key,
            vagrant_dir,
            provider,
            vagrant_box,
        } => {
            let kind = check_backend(&backend)?;
            let packages = match &target {
                Some(target) => crate::target::Target::find(target)?.def.install.packages,
                None => Vec::new(),
            };
            let host_list = SpecFile {
                backend: Some(backend.clone()),
                hosts,
                hosts_file,
                ssh_key,
                ..SpecFile::default()
            }
            .ssh_hosts(kind)?;
            let bar = spinner(format!("bringing up {backend} cluster {name}"));
            let up = match kind {
                BackendKind::Ssh => runtime
                    .block_on(ssh::up(&name, "ssh", &host_list, &packages, false))
                    .map(|(state, timings)| {
                        let took = format!(
                            "SSH ready in {:.1} s, hosts prepared in {:.1} s more",
                            timings.ssh_ready.as_secs_f64(),
                            timings.prepared.as_secs_f64()
                        );
                        (state, took)
                    }),
                BackendKind::Vagrant => {
                    let machines = vagrant::cluster::Machines {
                        provider: provider.parse()?,
                        dir: vagrant_dir,
                        vagrant_box,
                    };
                    runtime.block_on(vagrant_up(&name, nodes, &machines, &packages))
                }
                _ => runtime
                    .block_on(cluster::up_with(&name, nodes, false, &packages))
                    .map(|(state, timings)| {
                        let took = format!(
                            "took {:.1} s (image {:.1} s, containers {:.1} s, SSH ready {:.1} s)",
                            (timings.image + timings.containers + timings.ssh_ready).as_secs_f64(),
                            timings.image.as_secs_f64(),
                            timings.containers.as_secs_f64(),
                            timings.ssh_ready.as_secs_f64(),
                        );
                        (state, took)
                    }),
            };
            bar.finish_and_clear();
            let (state, took) = up?;
            println!(
                "cluster {} is up: {} {} nodes{}",
                state.name,
                state.nodes.len(),
                state.backend,
                if state.image.is_empty() {
                    String::new()
                } else {
                    format!(" on {}, image {}", state.subnet, state.image)
                }
            );
            for node in &state.nodes {
                println!("  {:<4} {:<28} {}", node.id, node.container, node.ip);
            }
            println!(
                "{took}; latency faults by {}",
                describe_latency(&state.latency)
            );
            println!(
                "run on it: fissure run --backend {} --cluster {}",
                state.backend, state.name
            );
            Ok(EXIT_VALID)
        }
        ClusterAction::Down {
            name,
            backend,
            force,
        } => {
            let flagged = check_backend(&backend)?;
            let loaded = state::ClusterState::load(&name);
            let lock = match &loaded {
                Ok(cluster) if !force => {
                    Some(cluster.lock("fissure cluster down").map_err(|e| {
                        e.context("stop that run first, or remove it anyway with --force")
                    })?)
                }
                _ => None,
            };
            // The cluster's own record says what it is; the flag only matters without one.
            let kind = match &loaded {
                Ok(cluster) => cluster.backend.parse().unwrap_or(flagged),
                Err(_) => flagged,
            };
            let removed = runtime.block_on(down(&name, kind, force))?;
            drop(lock);
            if removed {
                println!(
                    "cluster {name} removed ({})",
                    match kind {
                        BackendKind::Ssh => "its hosts cleaned of everything Fissure put there",
                        BackendKind::Vagrant => "its machines destroyed",
                        _ => "containers, network and state",
                    }
                );
            } else {
                println!(
                    "no cluster named {name}: nothing to remove (state is looked for in {})",
                    state::root().display()
                );
            }
            Ok(EXIT_VALID)
        }
        ClusterAction::Status { name, backend } => {
            check_backend(&backend)?;
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

/// Removes a cluster of any backend; `force` forgets hosts that no longer answer.
async fn down(name: &str, kind: BackendKind, force: bool) -> anyhow::Result<bool> {
    match kind {
        BackendKind::Ssh => ssh::down(name, force).await,
        BackendKind::Vagrant => vagrant_down(name).await,
        _ => cluster::down(name).await,
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
        "{}: {} backend, {} nodes{}{}",
        state.name,
        state.backend,
        state.nodes.len(),
        if state.image.is_empty() {
            String::new()
        } else {
            format!(" on {}, image {}", state.subnet, state.image)
        },
        if state.ephemeral {
            " (made for one run: its controller did not finish)"
        } else {
            ""
        }
    );
    let containers = match state.backend.as_str() {
        "docker" => cluster::container_states(&state).await,
        _ => (state.nodes.iter())
            .map(|n| (n.id.clone(), "host".to_string()))
            .collect(),
    };
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
    // Hosts and machines registered for one run whose controller died: nothing of the run
    // may stay on them.
    if state.ephemeral && state.backend != "docker" {
        let kind = state.backend.parse().unwrap_or(BackendKind::Ssh);
        drop(_lock);
        down(name, kind, false).await?;
        println!(
            "{name}: made for a run that did not finish: removed ({} backend)",
            state.backend
        );
    }
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

/// `cluster up --backend vagrant`: the machines, then their hosts made ready.
async fn vagrant_up(
    name: &str,
    nodes: usize,
    machines: &vagrant::cluster::Machines,
    packages: &[String],
) -> anyhow::Result<(state::ClusterState, String)> {
    let (state, timings) = vagrant::cluster::up(name, nodes, machines, packages, false).await?;
    let took = format!(
        "machines up in {:.1} s, SSH ready {:.1} s later, hosts prepared in {:.1} s more; \
         plain `vagrant` commands work in {}",
        timings.machines.as_secs_f64(),
        timings.hosts.ssh_ready.as_secs_f64(),
        timings.hosts.prepared.as_secs_f64(),
        state
            .vagrant_dir
            .as_deref()
            .unwrap_or(std::path::Path::new("?"))
            .display()
    );
    Ok((state, took))
}

async fn vagrant_down(name: &str) -> anyhow::Result<bool> {
    vagrant::cluster::down(name).await
}
