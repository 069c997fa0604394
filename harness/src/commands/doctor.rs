//! `fissure doctor [--backend B]`: checks what a backend needs and prints, for every fault,
//! whether it will work, how, and what to do when it will not.
//!
//! Exit code: 0 when every fault works (a fallback counts), 1 when some will not, 3 when the
//! backend itself is unusable (no Docker daemon, say).

use crate::backend::docker::{cluster, engine, image};
use crate::backend::{remote, state};
use crate::cli::DoctorArgs;
use crate::spec::BackendKind;
use crate::target::{shipped_names, Target};
use crate::{EXIT_ERROR, EXIT_INVALID, EXIT_VALID};
use anyhow::bail;
use nuclei::remote::Remote;
use nuclei::ssh_faults::commands;
use std::time::Duration;

/// One line of the report.
struct Check {
    what: String,
    ok: bool,
    how: String,
    fix: String,
}

impl Check {
    fn new(what: &str, ok: bool, how: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            what: what.into(),
            ok,
            how: how.into(),
            fix: if ok { String::new() } else { fix.into() },
        }
    }
}

fn print_table(title: &str, checks: &[Check]) {
    println!("{title}");
    let width = checks.iter().map(|c| c.what.len()).max().unwrap_or(0);
    for check in checks {
        let mark = if check.ok { "ok " } else { "NO " };
        println!("  {mark} {:<width$}  {}", check.what, check.how);
        if !check.fix.is_empty() {
            println!("      {:<width$}  fix: {}", "", check.fix);
        }
    }
}

pub fn run(args: DoctorArgs) -> anyhow::Result<u8> {
    let runtime = super::runtime()?;
    let (code, backend) = match args.backend.as_str() {
        "local" => (local(), BackendKind::Local),
        "docker" => (runtime.block_on(docker(args.cluster))?, BackendKind::Docker),
        "ssh" => (runtime.block_on(ssh(args))?, BackendKind::Ssh),
        "vagrant" => (
            runtime.block_on(vagrant(&args.provider))?,
            BackendKind::Vagrant,
        ),
        other => bail!("unknown backend {other:?}: local, docker, ssh or vagrant"),
    };
    println!();
    print_targets(backend);
    Ok(code)
}

/// Which faults each shipped target can take on `backend`, and why not where it cannot.
fn print_targets(backend: BackendKind) {
    use nuclei::nemesis::FaultKind;
    println!(
        "targets on the {} backend (a target file: fissure target check FILE)",
        backend.name()
    );
    for name in shipped_names() {
        let Ok(target) = Target::find(name) else {
            continue;
        };
        let def = &target.def;
        let mut refused = Vec::new();
        let mut can = Vec::new();
        for &fault in FaultKind::ALL {
            match def.cannot(fault, backend) {
                Some(why) => refused.push(format!("{}: {why}", fault.name())),
                None => can.push(fault.name()),
            }
        }
        if backend == BackendKind::Local && !def.install.packages.is_empty() {
            println!(
                "  {name:<8}   needs {} installed on this machine (the local backend installs nothing)",
                def.install.packages.join(", ")
            );
        }
        println!("  {name:<8} {}", can.join(", "));
        if backend == BackendKind::Docker && def.bundled.is_none() {
            println!(
                "  {:<8}   latency and loss only where the kernel has netem (see above): Fissure's \
                 link daemons cannot be put between its peers",
                ""
            );
        }
        for why in refused {
            println!("  {:<8}   not {why}", "");
        }
    }
}

fn local() -> u8 {
    let faketime = crate::backend::local::ClockMechanism::detect();
    let checks = vec![
        Check::new("partition", true, "Fissure's link proxies (no root needed)", ""),
        Check::new("latency, jitter", true, "link proxies", ""),
        Check::new("loss", true, "link proxies (held for a retransmission timeout)", ""),
        Check::new("kill, restart", true, "SIGKILL, then start with the same data", ""),
        Check::new("pause, resume", true, "SIGSTOP / SIGCONT", ""),
        Check::new(
            "clock",
            true,
            match faketime.name() {
                "libfaketime" => "libfaketime (the whole process's clock moves)",
                _ => "the targets' clock-offset file (install libfaketime for whole-process skew: apt-get install faketime)",
            },
            "",
        ),
    ];
    print_table("local backend: every fault works", &checks);
    EXIT_VALID
}

async fn docker(cluster_name: Option<String>) -> anyhow::Result<u8> {
    let mut setup = Vec::new();
    let daemon = engine::daemon_version().await;
    setup.push(Check::new(
        "docker daemon",
        daemon.is_ok(),
        daemon
            .as_ref()
            .map_or_else(|e| format!("{e:#}"), |v| format!("version {v}")),
        "start the daemon (systemctl start docker, or dockerd &), or install docker.io",
    ));
    let reference = image::reference();
    let cached = daemon.is_ok() && engine::image_exists(&reference).await.unwrap_or(false);
    // Building needs mmdebstrap (installed on the fly with apt) and root.
    let root = nix::unistd::geteuid().is_root();
    let mmdebstrap =
        root && (image::which("mmdebstrap").is_some() || image::which("apt-get").is_some());
    setup.push(Check::new(
        "node image",
        cached || mmdebstrap,
        if cached {
            format!("{reference} is built")
        } else if mmdebstrap {
            format!("{reference} will be built with mmdebstrap on first use (about 30 s)")
        } else if !root {
            format!("{reference} is not built, and building it needs root")
        } else {
            format!("{reference} is not built and mmdebstrap is missing")
        },
        "as root: apt-get install mmdebstrap, then fissure image build",
    ));
    let keygen = image::which("ssh-keygen").is_some();
    setup.push(Check::new(
        "ssh-keygen",
        keygen,
        "makes each cluster's key pair",
        "apt-get install openssh-client",
    ));
    if daemon.is_err() || !keygen || !(cached || mmdebstrap) {
        print_table("docker backend: cannot start clusters", &setup);
        return Ok(EXIT_ERROR);
    }
    // Probe real nodes: the named cluster's, or one container made for the check.
    let (probe_state, made) = match cluster_name {
        Some(name) => (state::ClusterState::load(&name)?, false),
        None => {
            let name = format!(
                "doctor-{}-{:04x}",
                std::process::id(),
                rand::random::<u16>()
            );
            eprintln!("starting a probe container ({name}) to check what nodes can do...");
            (cluster::up(&name, 1, true).await?.0, true)
        }
    };
    let probed = probe_nodes(&probe_state, &mut setup).await;
    if made {
        cluster::down(&probe_state.name).await?;
    }
    let faults = probed?;
    let all_ok = faults.iter().all(|c| c.ok);
    print_table("docker backend: setup", &setup);
    print_table(
        if all_ok {
            "faults: every one works"
        } else {
            "faults: some will not work"
        },
        &faults,
    );
    Ok(if all_ok { EXIT_VALID } else { EXIT_INVALID })
}

/// `doctor --backend ssh`: logs in to the hosts (of a cluster, or given), checks root through
/// sudo on each, then what each fault needs. Installs nothing: `cluster up` and `run` do.
async fn ssh(args: DoctorArgs) -> anyhow::Result<u8> {
    let mut setup = Vec::new();
    let (probe_state, made) = match &args.cluster {
        Some(name) => (state::ClusterState::load(name)?, false),
        None => {
            let hosts = crate::spec::SpecFile {
                hosts: args.hosts.clone(),
                hosts_file: args.hosts_file.clone(),
                ssh_key: args.ssh_key.clone(),
                ..Default::default()
            }
            .ssh_hosts(BackendKind::Ssh)?;
            let name = format!(
                "doctor-{}-{:04x}",
                std::process::id(),
                rand::random::<u16>()
            );
            (ssh_probe_state(&name, &hosts)?, true)
        }
    };
    let mut probe_state = probe_state;
    let probed = async {
        let fleet = remote::probe_fleet(&probe_state)?;
        if probe_state.latency.is_empty() {
            let peer = probe_state.nodes.get(1).map(|n| n.ip.clone());
            probe_state.latency = remote::probe_latency_mechanism(&fleet, peer.as_deref()).await?;
        }
        for (node, answer) in fleet.exec_all("id -u", Duration::from_secs(10)).await {
            let user = fleet.get(&node)?.target().user.clone();
            let root = matches!(&answer, Ok(out) if out.code == 0 && out.stdout.trim() == "0");
            setup.push(Check::new(
                &format!("root on {node}"),
                root,
                if user == "root" {
                    "logged in as root".to_string()
                } else {
                    format!("{user} through sudo -n")
                },
                format!(
                    "log in as root, or give {user} passwordless sudo (`{user} ALL=(ALL) \
                     NOPASSWD: ALL` in /etc/sudoers.d/fissure)"
                ),
            ));
        }
        probe_nodes(&probe_state, &mut setup).await
    }
    .await;
    if made {
        let _ = std::fs::remove_dir_all(probe_state.dir());
    }
    let faults = probed?;
    let all_ok = setup.iter().chain(&faults).all(|c| c.ok);
    print_table("ssh backend: hosts", &setup);
    print_table(
        if all_ok {
            "faults: every one works"
        } else {
            "faults: some will not work (missing tools are installed by `fissure cluster up` \
             and `fissure run` where the host has apt)"
        },
        &faults,
    );
    Ok(if all_ok { EXIT_VALID } else { EXIT_INVALID })
}

/// A throwaway state directory for probing hosts (pinned host keys need a home).
fn ssh_probe_state(
    name: &str,
    hosts: &[crate::backend::ssh::HostSpec],
) -> anyhow::Result<state::ClusterState> {
    let state = state::ClusterState {
        name: name.into(),
        backend: "ssh".into(),
        image: String::new(),
        network: String::new(),
        subnet: String::new(),
        nodes: hosts.iter().map(crate::backend::ssh::record).collect(),
        latency: String::new(),
        ephemeral: true,
        created: String::new(),
        vagrant_dir: None,
        own_clocks: false,
    };
    state.create_dir()?;
    Ok(state)
}

/// `doctor --backend vagrant`: vagrant itself, the provider and its box or image.
async fn vagrant(provider: &str) -> anyhow::Result<u8> {
    let provider: crate::backend::vagrant::Provider = provider.parse()?;
    let checks = crate::backend::vagrant::doctor(provider, None).await;
    let all_ok = checks.iter().all(|c| c.ok);
    let checks: Vec<Check> = checks
        .into_iter()
        .map(|c| Check::new(&c.name, c.ok, c.detail, c.fix.unwrap_or_default()))
        .collect();
    print_table(&format!("vagrant backend ({provider} provider)"), &checks);
    Ok(if all_ok { EXIT_VALID } else { EXIT_ERROR })
}

/// SSH to every node, then what each fault needs, asked of the first node.
async fn probe_nodes(
    cluster: &state::ClusterState,
    setup: &mut Vec<Check>,
) -> anyhow::Result<Vec<Check>> {
    let fleet = remote::probe_fleet(cluster)?;
    for (node, answer) in fleet.exec_all("true", Duration::from_secs(5)).await {
        setup.push(Check::new(
            &format!("ssh to {node}"),
            answer.is_ok(),
            answer.map_or_else(|e| format!("{e:#}"), |_| "answers".into()),
            format!(
                "is the cluster up? fissure cluster status {}; else fissure cluster down {} and up again",
                cluster.name, cluster.name
            ),
        ));
    }
    let Some(first) = cluster.nodes.first() else {
        bail!(
            "cluster {} has no nodes: remove it with `fissure cluster down {}`",
            cluster.name,
            cluster.name
        );
    };
    let node = fleet.get(&first.id)?;
    let ask = |command: String| async move { succeeds(node, &command).await };
    // A chain of our own that nothing jumps to (heal removes it should this be cut short).
    let chain = commands::DOCTOR_CHAIN;
    let iptables = ask(format!(
        "{{ iptables -w 5 -N {chain} 2>/dev/null; iptables -w 5 -F {chain}; }} && \
         iptables -w 5 -A {chain} -s 192.0.2.1 -j DROP"
    ))
    .await;
    let statistic = ask(format!(
        "iptables -w 5 -A {chain} -m statistic --mode random --probability 0.5 -j DROP"
    ))
    .await;
    ask(format!(
        "iptables -w 5 -F {chain}; iptables -w 5 -X {chain}"
    ))
    .await;
    let netem = ask(commands::probe_netem()).await;
    let faketime = ask("ls /usr/lib/*/faketime/libfaketime.so.1".into()).await;
    let procps = ask("command -v ps && command -v kill".into()).await;
    let link_daemon = cluster.latency == "link-daemon";
    Ok(vec![
        Check::new(
            "partition",
            iptables,
            "iptables DROP rules in Fissure's own chain",
            "the node needs iptables and the container --cap-add NET_ADMIN",
        ),
        Check::new(
            "loss",
            statistic,
            "iptables statistic match, both ways, sparing SSH",
            "the kernel needs xt_statistic (modprobe xt_statistic on the host)",
        ),
        Check::new(
            "latency, jitter",
            netem || link_daemon,
            if netem {
                "tc netem".to_string()
            } else {
                "Fissure's link daemons in each node (this kernel has no sch_netem): bundled \
                 targets, or any target whose peer addresses can be pointed at them"
                    .to_string()
            },
            "modprobe sch_netem on the host (Debian: linux-modules-extra), then recreate the cluster",
        ),
        Check::new(
            "kill, restart",
            procps,
            "SIGKILL by pid file, restart by the node's launch script",
            "the node needs procps",
        ),
        Check::new(
            "pause, resume",
            procps,
            "SIGSTOP / SIGCONT by pid file",
            "the node needs procps",
        ),
        Check::new(
            "clock bump, strobe, reset",
            faketime,
            "libfaketime timestamp file (realtime clock only; the host's clock never moves)",
            "the node needs libfaketime (apt-get install faketime; rebuild: fissure image build)",
        ),
    ])
}

async fn succeeds(node: &Remote, command: &str) -> bool {
    matches!(node.exec(command, Duration::from_secs(10)).await, Ok(out) if out.code == 0)
}
