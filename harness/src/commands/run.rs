//! `fissure run`: the whole pipeline of one test (DESIGN.md §1): spec → cluster → clients and
//! nemesis → heal → final reads → teardown → check → store. Whatever happens after the cluster
//! is up (an error, Ctrl-C), every fault is healed, every node stopped, and the history that was
//! recorded is kept and checked.

use super::run_output::{self, Progress};
use crate::analysis;
use crate::backend::existing::ExistingCluster;
use crate::backend::local::{LocalCluster, LocalConfig};
use crate::backend::remote::file_target::FileTarget;
use crate::backend::remote::{Launch, RunRequest};
use crate::backend::{docker, ssh, vagrant, RunCluster};
use crate::cli::RunArgs;
use crate::runner::{self, recorder, RunInputs};
use crate::spec::{BackendKind, RunSpec, SpecFile};
use crate::store::RunDir;
use crate::{logging, EXIT_ERROR, EXIT_INVALID, EXIT_UNKNOWN, EXIT_VALID};
use anyhow::Context;
use checkers::Verdict;
use nuclei::control::ClusterControl;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long the checkers of a run may take before the verdict is `unknown`.
const CHECK_TIME_LIMIT: Duration = Duration::from_secs(120);

pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let launched = Instant::now();
    let file = match &args.spec {
        Some(path) => SpecFile::load(path)?,
        None => SpecFile::default(),
    };
    let spec = file.overridden_by(args.settings).resolve()?;
    if args.plan {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for entry in runner::plan::plan(&spec, args.plan_ops)? {
            // A closed pipe (`| head`) just ends the listing.
            if writeln!(out, "{entry}").is_err() {
                break;
            }
        }
        return Ok(EXIT_VALID);
    }
    let runtime = super::runtime()?;
    let result = runtime.block_on(execute(spec, launched));
    logging::close_run_log();
    // Client tasks still waiting on a partitioned node must not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Runs `spec` end to end and returns the exit code.
pub async fn execute(spec: RunSpec, launched: Instant) -> anyhow::Result<u8> {
    let run = RunDir::create(&spec.store, &spec.name)?;
    logging::log_to(&run.log())?;
    tracing::info!(dir = %run.path.display(), seed = spec.seed, "run starting");
    let mut workload = spec.build_workload()?;
    run.write_json(
        "test.json",
        &json!({
            "spec": spec.to_file(),
            "checkers": workload.checkers,
            "rerun": spec.rerun_command(&run.path),
            "command": std::env::args().collect::<Vec<_>>(),
            "fissure_version": env!("CARGO_PKG_VERSION"),
            "started": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        }),
    )?;
    let checker_specs = std::mem::take(&mut workload.checkers);

    let (stop_tx, stop_rx) = watch::channel(false);
    let interrupt = tokio::spawn(watch_ctrl_c(stop_tx, spec.backend));
    let progress = Progress::start(&spec);
    progress.set_stage("starting the cluster");

    let cluster = start_cluster(&spec, &run, stop_rx.clone()).await;
    let cluster = match cluster {
        Ok(cluster) => cluster,
        Err(e) => {
            progress.finish();
            interrupt.abort();
            return Err(e.context(format!("run stored in {}", run.path.display())));
        }
    };
    let client_addrs = cluster.client_addrs();
    let control: Arc<dyn ClusterControl> = cluster.clone().control();

    let (recorder, writer) = match recorder::open(&run.history(), Instant::now()) {
        Ok(opened) => opened,
        Err(e) => {
            if let Err(down) = cluster.shutdown().await {
                tracing::error!("shutting the cluster down: {down:#}");
            }
            progress.finish();
            interrupt.abort();
            return Err(e);
        }
    };
    run.link_latest();
    let cluster_ready = launched.elapsed();
    progress.set_stage("running");
    progress.attach(recorder.started());
    let report = runner::run_test(RunInputs {
        spec: spec.clone(),
        workload,
        control,
        client_addrs,
        recorder: recorder.clone(),
        stop: stop_rx.clone(),
        counters: progress.counters(),
        active_faults: progress.active_faults(),
        clients_dir: run.path.join("clients"),
    })
    .await;

    // Teardown, whatever happened: heal, stop the nodes, close the history.
    progress.set_stage("shutting down");
    let shutdown = cluster.shutdown().await;
    let events = writer.finish();
    interrupt.abort();
    progress.finish();
    let report = report?;
    if let Err(e) = &shutdown {
        tracing::error!("shutting the cluster down: {e:#}");
    }
    let events = events?;
    tracing::info!(events, "history closed");

    let first_op = report.first_op.map(|d| cluster_ready + d);
    let run_facts = json!({
        "interrupted": report.interrupted,
        "faults_requested": !spec.nemesis.is_empty(),
        "faults_applied": report.nemesis.applied,
        "fault_errors": report.nemesis.errors,
        "heal_error": report.nemesis.heal_error,
        "shutdown_error": shutdown.as_ref().err().map(|e| format!("{e:#}")),
        "clock_mechanism": cluster.clock_mechanism(),
        "first_op_ms": first_op.map(|d| d.as_secs_f64() * 1e3),
        "cluster_ready_ms": cluster_ready.as_secs_f64() * 1e3,
        "faults_off": (spec.backend == BackendKind::None)
            .then_some("--backend none: clients only, against a system already running"),
    });
    // What the run saw is stored before checking, so a check cut short (Ctrl-C) can be
    // redone later with `fissure check <run-dir>` without losing it.
    run.write_json(
        "results.json",
        &json!({
            "valid": "unknown",
            "reason": "not checked yet: run fissure check on this folder",
            "run": run_facts,
        }),
    )?;
    eprintln!("checking {events} events...");
    // Ctrl-C from here on cannot lose anything: the history is on disk.
    let history = run.history();
    let shown = run.path.display().to_string();
    let slo = spec.slo.clone();
    let checking = tokio::task::spawn_blocking(move || {
        analysis::check_history(&history, &checker_specs, slo.as_ref(), CHECK_TIME_LIMIT)
    });
    let mut results = tokio::select! {
        checked = checking => checked.context("the checker failed")??,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted while checking; the run is stored: fissure check {shown}");
            return Ok(EXIT_ERROR);
        }
    };
    results.apply_caveats(&analysis::caveats(Some(&run_facts)));
    let verdict = results.valid;
    let mut stored = serde_json::to_value(&results)?;
    stored["run"] = run_facts;
    run.write_json("results.json", &stored)?;
    super::report::refresh(&run.path);
    print!(
        "{}",
        run_output::summary(&spec, &run, &results, verdict, &report)
    );
    Ok(exit_code(verdict, results.slo_failed()))
}

async fn start_cluster(
    spec: &RunSpec,
    run: &RunDir,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Arc<dyn RunCluster>> {
    let launch = match &spec.def.bundled {
        Some(mode) => Launch::Bundled {
            mode: mode.clone(),
            node_args: (0..spec.nodes)
                .map(|i| {
                    spec.def
                        .bundled_args(spec.nodes, i, &spec.options, spec.bug.as_deref())
                })
                .collect::<anyhow::Result<_>>()?,
        },
        None => Launch::File(Box::new(FileTarget {
            def: spec.def.clone(),
            options: spec.options.clone(),
            bug: spec.bug.clone(),
            base_dir: spec.target_dir.clone(),
        })),
    };
    match spec.backend {
        BackendKind::None => Ok(Arc::new(ExistingCluster::new(&spec.endpoints))),
        BackendKind::Local => {
            let (target, node_args, file) = match launch {
                Launch::Bundled { mode, node_args } => (mode, node_args, None),
                Launch::File(file) => {
                    local_install_check(&file.def)?;
                    (
                        spec.def.name.clone(),
                        vec![Vec::new(); spec.nodes],
                        Some(file),
                    )
                }
            };
            let starting = LocalCluster::start(LocalConfig {
                target,
                file,
                nodes: spec.nodes,
                node_args,
                program: held_binary()?,
                program_args: vec!["node".into()],
                dir: run.nodes(),
                start_timeout: spec.def.ready_timeout()?,
            });
            tokio::select! {
                cluster = starting => Ok(Arc::new(cluster?)),
                _ = stop.changed() => anyhow::bail!("interrupted while the cluster was starting"),
            }
        }
        // Not cancelled midway: a half-made docker cluster would outlive us. Its steps are
        // bounded by timeouts; an interruption is honoured once it is up, by taking it down.
        BackendKind::Docker | BackendKind::Ssh | BackendKind::Vagrant => {
            let link_faults = spec.nemesis.iter().any(|f| {
                matches!(
                    f,
                    nuclei::nemesis::FaultKind::Latency | nuclei::nemesis::FaultKind::Loss
                )
            });
            let request = RunRequest {
                cluster: spec.cluster.clone(),
                launch,
                nodes: spec.nodes,
                packages: spec.def.install.packages.clone(),
                logs_dir: run.nodes(),
                start_timeout: spec.def.ready_timeout()?,
                link_faults,
            };
            let cluster = match spec.backend {
                BackendKind::Docker => docker::start_for_run(request).await?,
                BackendKind::Ssh => ssh::start_for_run(request, &spec.ssh_hosts).await?,
                _ => {
                    let machines = vagrant::cluster::Machines {
                        provider: spec.provider.parse()?,
                        dir: spec.vagrant_dir.clone(),
                        vagrant_box: spec.vagrant_box.clone(),
                    };
                    vagrant::cluster::start_for_run(machines, request).await?
                }
            };
            if *stop.borrow() {
                if let Err(e) = cluster.shutdown().await {
                    tracing::error!("shutting the cluster down: {e:#}");
                }
                anyhow::bail!("interrupted while the cluster was starting");
            }
            Ok(Arc::new(cluster))
        }
    }
}

/// The local backend installs nothing on this machine: a target file's packages must be there
/// already (checked with dpkg), and its install files and commands are refused.
fn local_install_check(def: &crate::target::TargetDef) -> anyhow::Result<()> {
    if !def.install.files.is_empty() || !def.install.commands.is_empty() {
        anyhow::bail!(
            "{}: the local backend does not copy files or run install commands on this machine; \
             use --backend docker",
            def.name
        );
    }
    let missing: Vec<&str> = (def.install.packages.iter())
        .filter(|p| {
            let status = std::process::Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p.as_str()])
                .output();
            !status
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "{} needs {} on this machine for the local backend: `apt-get install -y {}`, or use \
             --backend docker (its node image installs them)",
            def.name,
            missing.join(", "),
            missing.join(" ")
        );
    }
    Ok(())
}

/// The binary nodes (and a campaign's runs) are started with: this very binary, held open for
/// the whole run, so that a restart in the middle of a run starts the same build even if the
/// file was replaced or removed meanwhile (a `cargo build`, say). Falls back to the path where
/// /proc is missing.
pub fn held_binary() -> anyhow::Result<std::path::PathBuf> {
    use std::os::fd::AsRawFd;
    static HELD: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();
    if let Ok(file) = std::fs::File::open("/proc/self/exe") {
        let file = HELD.get_or_init(|| file);
        let held = format!("/proc/{}/fd/{}", std::process::id(), file.as_raw_fd());
        if std::path::Path::new(&held).exists() {
            return Ok(held.into());
        }
    }
    std::env::current_exe().context("cannot find the fissure binary to start nodes with")
}

/// First Ctrl-C: stop the run gracefully (heal, shut down, check what was recorded). A second
/// one is left to the default handler... which tokio has replaced, so exit at once instead.
/// Local nodes die with us (they are tied to our lifetime); docker nodes and their faults do
/// not, so say how to clean them up.
async fn watch_ctrl_c(stop: watch::Sender<bool>, backend: BackendKind) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    eprintln!("\ninterrupted: healing faults and stopping the cluster (Ctrl-C again to abort)");
    tracing::warn!("interrupted by the user");
    let _ = stop.send(true);
    if tokio::signal::ctrl_c().await.is_ok() {
        eprintln!("aborted");
        if backend.over_ssh() {
            eprintln!(
                "faults and containers may remain: see `fissure cluster status`, then \
                 `fissure heal` (and `fissure cluster down <name>` for a cluster made for this run)"
            );
        }
        std::process::exit(i32::from(EXIT_ERROR));
    }
}

/// The exit code of a checked run (DESIGN.md §8, plus 4): the safety verdict decides, except
/// that a valid run that breached a declared SLO exits 4 (safe, but not within its service
/// levels). An invalid or unknown run keeps 1 or 2 whatever its SLOs.
pub fn exit_code(verdict: Verdict, slo_failed: bool) -> u8 {
    match verdict {
        Verdict::Valid if slo_failed => crate::EXIT_SLO_BREACHED,
        Verdict::Valid => EXIT_VALID,
        Verdict::Invalid => EXIT_INVALID,
        Verdict::Unknown => EXIT_UNKNOWN,
    }
}
