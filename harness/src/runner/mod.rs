//! One test run's middle stages (DESIGN.md §1): clients and nemesis side by side for the main
//! phase, heal, a recovery phase, final reads. The cluster comes from a backend and the history
//! goes to a [`recorder::Recorder`]; checking happens afterwards, from the stored history.

pub mod driver;
pub mod nemesis_task;
pub mod plan;
pub mod recorder;

use crate::spec::RunSpec;
use driver::{ClientFactory, Counters, Driver, PhaseEnd};
use nemesis_task::{ActiveFaults, NemesisReport};
use nuclei::control::{ClusterControl, NodeId};
use nuclei::nemesis::Nemesis;
use rand::rngs::StdRng;
use rand::SeedableRng;
use recorder::Recorder;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use workloads::generator::{rate, time_limit, Generator};
use workloads::workload::Workload;

/// Seeds of a run's independent random streams, all derived from the one `--seed`.
pub fn client_seed(seed: u64) -> u64 {
    seed
}
pub fn nemesis_seed(seed: u64) -> u64 {
    seed ^ 0x6e65_6d65_7369_7321 // "nemesis!"
}

/// What a run needs from its surroundings.
pub struct RunInputs {
    pub spec: RunSpec,
    /// The spec's workload, built (its checkers are the caller's to keep).
    pub workload: Workload,
    pub control: Arc<dyn ClusterControl>,
    /// Where clients connect, per node (in node order).
    pub client_addrs: Vec<(NodeId, String)>,
    pub recorder: Recorder,
    pub stop: watch::Receiver<bool>,
    /// Shared with the progress bar.
    pub counters: Arc<Counters>,
    pub active_faults: ActiveFaults,
    /// Where client adapters' logs go.
    pub clients_dir: PathBuf,
}

/// How the run went (the verdict comes later, from the checkers).
#[derive(Debug)]
pub struct RunReport {
    pub interrupted: bool,
    pub nemesis: NemesisReport,
    /// Time from the test's start to the first invocation.
    pub first_op: Option<Duration>,
}

/// One client per process, talking to node `(process % concurrency) % nodes`: a retired
/// process's replacement talks to the same node.
pub fn client_factory(
    spec: &RunSpec,
    client_addrs: &[(NodeId, String)],
    clients_dir: &Path,
) -> ClientFactory {
    let addrs = client_addrs.to_vec();
    let concurrency = spec.concurrency as u64;
    let kind = spec.workload;
    let options = spec.workload_options();
    let clients = ClientKind::of(spec, clients_dir);
    Arc::new(move |process| {
        let (node, addr) = &addrs[((process % concurrency) as usize) % addrs.len()];
        let client = match &clients {
            ClientKind::Bundled(mode) => {
                workloads::workload::target_client(kind, mode, addr.clone(), &options)
            }
            ClientKind::Etcd(etcd) => {
                workloads::etcd::etcd_client(kind, format!("http://{addr}"), etcd)
            }
            ClientKind::Postgres(pg) => workloads::postgres::postgres_client(kind, addr, pg),
            ClientKind::Adapter(pool) => pool.client(process, node.clone(), addr.clone()),
        };
        (client, node.clone())
    })
}

/// Which client a run's target is driven with.
enum ClientKind {
    /// Fissure's own protocol, for a mode of its node binary.
    Bundled(String),
    Etcd(workloads::etcd::EtcdOptions),
    Postgres(workloads::postgres::PostgresOptions),
    /// A program speaking the adapter protocol (docs/adapters.md).
    Adapter(workloads::adapter::AdapterPool),
}

impl ClientKind {
    fn of(spec: &RunSpec, clients_dir: &Path) -> ClientKind {
        let client = &spec.def.client;
        if let Some(adapter) = &client.adapter {
            let command = workloads::adapter::AdapterCommand {
                program: resolve_path(&spec.target_dir, &adapter.program),
                args: (adapter.args.iter())
                    .map(|a| resolve_path(&spec.target_dir, a))
                    .collect(),
                env: std::iter::once((
                    "FISSURE_OPTIONS".to_string(),
                    serde_json::to_string(&spec.options).unwrap_or_default(),
                ))
                .chain(adapter.env.iter().map(|(k, v)| (k.clone(), v.clone())))
                .collect(),
            };
            let pool = workloads::adapter::AdapterPool::new(
                command,
                spec.workload,
                &spec.workload_options(),
                clients_dir.to_path_buf(),
            );
            return ClientKind::Adapter(pool);
        }
        match client.builtin.as_deref() {
            Some("etcd") => ClientKind::Etcd(workloads::etcd::EtcdOptions {
                reads: match spec.options.get("reads").map(String::as_str) {
                    Some("serializable") => workloads::etcd::EtcdReads::Serializable,
                    _ => workloads::etcd::EtcdReads::Linearizable,
                },
                ..Default::default()
            }),
            Some("postgres") => ClientKind::Postgres(workloads::postgres::PostgresOptions {
                // The target file's choices are the client's levels.
                isolation: (spec.options.get("isolation"))
                    .and_then(|level| level.parse().ok())
                    .unwrap_or_default(),
                ..Default::default()
            }),
            _ => ClientKind::Bundled(spec.def.bundled.clone().unwrap_or_default()),
        }
    }
}

/// A relative path in a target file that names a file next to it, made absolute (so that an
/// adapter runs from anywhere); anything else as it is.
fn resolve_path(base: &Path, item: &str) -> String {
    let path = Path::new(item);
    if path.is_relative() && item.contains('/') || path.extension().is_some() {
        let joined = base.join(path);
        if joined.exists() {
            return joined.display().to_string();
        }
    }
    item.to_string()
}

/// The workload's operations at the spec's total rate, through the main phase and recovery: the
/// same schedule for a run and for its `--plan`.
pub fn paced_main(spec: &RunSpec, main: Box<dyn Generator>) -> impl Generator {
    time_limit(spec.time_limit + spec.recovery, rate(spec.rate, main))
}

/// Runs the test: main phase with the nemesis, heal, recovery, final reads.
pub async fn run_test(inputs: RunInputs) -> anyhow::Result<RunReport> {
    let RunInputs {
        spec,
        workload,
        control,
        client_addrs,
        recorder,
        mut stop,
        counters,
        active_faults,
        clients_dir,
    } = inputs;
    let factory = client_factory(&spec, &client_addrs, &clients_dir);
    let mut driver = Driver::new(
        spec.concurrency,
        spec.op_timeout,
        StdRng::seed_from_u64(client_seed(spec.seed)),
        factory,
        recorder.clone(),
    );
    driver.counters = counters.clone();

    let nemesis = if spec.nemesis.is_empty() {
        None
    } else {
        let packages = nemesis_task::packages(&spec.nemesis_config(), nemesis_seed(spec.seed))?;
        let nemesis = Nemesis::new(control.clone(), nemesis_seed(spec.seed));
        Some(tokio::spawn(nemesis_task::run(
            nemesis,
            packages,
            spec.time_limit,
            recorder.clone(),
            active_faults.clone(),
            stop.clone(),
        )))
    };

    // The clients keep going through the heal and a recovery period, so the history shows
    // whether the system came back.
    let mut main = paced_main(&spec, workload.main);
    tracing::info!(
        target = %spec.def.name,
        workload = %spec.workload,
        "main phase: {:?} with faults, then {:?} healed",
        spec.time_limit,
        spec.recovery
    );
    let main_end = driver.run_phase(&mut main, &mut stop).await;
    let nemesis_report = match nemesis {
        Some(task) => task.await.unwrap_or_else(|e| NemesisReport {
            heal_error: Some(format!("the nemesis task failed: {e}")),
            ..Default::default()
        }),
        None => NemesisReport::default(),
    };
    let mut interrupted = main_end? == PhaseEnd::Stopped;
    if !interrupted {
        if let Some(mut reads) = workload.final_reads {
            tracing::info!("final reads");
            interrupted = driver
                .run_phase(&mut reads as &mut dyn Generator, &mut stop)
                .await?
                == PhaseEnd::Stopped;
        }
    }
    Ok(RunReport {
        interrupted,
        nemesis: nemesis_report,
        first_op: driver.first_invoke(),
    })
}
