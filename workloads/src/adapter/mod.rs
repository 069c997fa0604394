//! Clients in any language: an [`AdapterClient`] runs each operation by writing it as one JSON
//! line to an external program (the *adapter*) and reading its one-line JSON answer
//! (docs/adapters.md has the protocol for adapter authors).
//!
//! ```text
//! → {"id":17,"process":3,"f":"cas","key":4,"value":[1,2],"node":"n2","address":"127.0.0.1:7002","timeout_ms":5000}
//! ← {"id":17,"type":"fail","error":"compare failed"}
//! ```
//!
//! **One adapter process per logical process, pooled.** An adapter serves one operation at a
//! time, for one client at a time. It is not multiplexed over processes because:
//! - a crash, hang or babble then costs exactly one operation (it becomes `info`); in a shared
//!   adapter it would make every operation in flight in it `info`;
//! - a one-at-a-time adapter is a plain read-line/answer loop in any language, with no threads,
//!   no out-of-order answers, and no head-of-line blocking between processes to reason about.
//!
//! The runner retires a process after every `info` and builds a new client for its successor,
//! and adapters are slow to start (Python takes ~30 ms, a JVM far more, all of it inside the
//! next operation's latency). So a client does not own its adapter for good: when a client is
//! dropped while its adapter is healthy (it answered everything it was asked, `info` answers
//! included, and nothing is in flight), the adapter goes back to the [`AdapterPool`], keyed by
//! the node it talks to, and the next client for that node takes it. The `process` field of
//! each request says which logical process is asking. An adapter that crashed, hung or
//! babbled is killed (its whole process group, then reaped) and the client starts a fresh one
//! for its next operation.
//!
//! Outcomes: the adapter's `ok`, `fail` and `info` are recorded as they are. Anything else
//! after the request was written (exit, no answer by the operation's timeout, a line that is
//! not a valid answer to this request) is `info`, with a `tracing::warn!` saying what the
//! adapter did and what to fix. An adapter that cannot be started makes the operation `fail`
//! (nothing was sent). Each adapter's stderr is appended to a log file of its *seat* in
//! `log_dir` (`adapter-<node>-<seat>.log`, one seat per adapter alive at a time), with
//! Fissure's own `--- fissure: ... ---` lines marking starts and kills.

mod process;
mod wire;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::client::{Client, ClientReply};
use crate::generator::OpTemplate;
use crate::workload::{WorkloadKind, WorkloadOptions};
use process::{Adapter, Exchange, Idle};
use wire::{parse_answer, Request};

/// The adapter program: what to run, with which arguments and extra environment variables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdapterCommand {
    /// A path, or a name looked up on `PATH`.
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Added to Fissure's own environment.
    #[serde(default)]
    pub env: Vec<(String, String)>,
}

impl AdapterCommand {
    /// The command line, for messages.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|word| {
                if word.is_empty() || word.contains(char::is_whitespace) {
                    format!("{word:?}")
                } else {
                    word.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Whether `program` names an executable file (a path, or a name on `PATH`): for checking a
    /// spec before a run, so a typo is an error at once instead of a run of failed operations.
    pub fn check(&self) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let executable = |path: &std::path::Path| {
            path.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        };
        if self.program.is_empty() {
            return Err("the adapter command has an empty program".into());
        }
        let found = if self.program.contains('/') {
            executable(std::path::Path::new(&self.program))
        } else {
            std::env::var_os("PATH").is_some_and(|path| {
                std::env::split_paths(&path).any(|dir| executable(&dir.join(&self.program)))
            })
        };
        if found {
            Ok(())
        } else {
            Err(format!(
                "the adapter program {:?} is not an executable file{}",
                self.program,
                if self.program.contains('/') {
                    ""
                } else {
                    " on PATH"
                }
            ))
        }
    }
}

/// Ids of requests, unique in this Fissure process: an answer to an earlier request can never
/// pass for the answer to a later one.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Spawn failures are warned about at the first, then once in every this many.
const SPAWN_WARN_EVERY: u64 = 100;

/// Adapters for one run: makes [`AdapterClient`]s and keeps healthy adapters between them.
/// Cheap to clone (one shared pool). Idle adapters are killed when the last clone and the last
/// client are dropped, or by [`AdapterPool::close_idle`].
#[derive(Clone)]
pub struct AdapterPool {
    shared: Arc<Shared>,
}

struct Shared {
    command: AdapterCommand,
    /// What every adapter gets besides the command's own environment.
    env: Vec<(String, String)>,
    log_dir: PathBuf,
    seats: Mutex<HashMap<String, Seats>>,
    spawn_failures: AtomicU64,
}

/// The adapters of one node: idle ones with their log file, log files free for a new one, and
/// how many log files there are.
#[derive(Default)]
struct Seats {
    idle: Vec<(Adapter, PathBuf)>,
    free: Vec<PathBuf>,
    count: usize,
}

impl AdapterPool {
    /// A pool running `command` for the `workload` with its `options`; adapter stderr goes to
    /// files in `log_dir` (created when needed). Every adapter's environment has
    /// `FISSURE_WORKLOAD` (register, bank, set or counter), `FISSURE_WORKLOAD_OPTIONS` (the
    /// options as JSON), `FISSURE_NODE` and `FISSURE_ADDRESS`, then the command's own `env`.
    pub fn new(
        command: AdapterCommand,
        workload: WorkloadKind,
        options: &WorkloadOptions,
        log_dir: PathBuf,
    ) -> AdapterPool {
        let options = serde_json::to_string(options).expect("options serialize");
        AdapterPool {
            shared: Arc::new(Shared {
                command,
                env: vec![
                    ("FISSURE_WORKLOAD".into(), workload.name().into()),
                    ("FISSURE_WORKLOAD_OPTIONS".into(), options),
                ],
                log_dir,
                seats: Mutex::default(),
                spawn_failures: AtomicU64::new(0),
            }),
        }
    }

    /// The client of logical `process`, whose operations go to `node` (its name, e.g. `n2`)
    /// at `address` (its client endpoint, `host:port`). It takes an idle adapter of that node
    /// if there is one; otherwise it starts one at its first operation.
    pub fn client(&self, process: u64, node: String, address: String) -> Box<dyn Client> {
        Box::new(self.adapter_client(process, node, address))
    }

    /// [`AdapterPool::client`] as its concrete type.
    pub fn adapter_client(&self, process: u64, node: String, address: String) -> AdapterClient {
        let shared = &self.shared;
        let (adapter, log) = {
            let mut seats = shared.seats.lock().expect("seats lock");
            let seats = seats.entry(address.clone()).or_default();
            match seats.idle.pop() {
                Some((adapter, log)) => (Some(adapter), log),
                None => {
                    let log = seats.free.pop().unwrap_or_else(|| {
                        seats.count += 1;
                        let name = format!("adapter-{}-{}.log", file_safe(&node), seats.count);
                        shared.log_dir.join(name)
                    });
                    (None, log)
                }
            }
        };
        AdapterClient {
            shared: shared.clone(),
            process,
            node,
            address,
            log,
            adapter,
            in_flight: false,
        }
    }

    /// Kills every idle adapter now (the end of a run).
    pub fn close_idle(&self) {
        let mut seats = self.shared.seats.lock().expect("seats lock");
        for node in seats.values_mut() {
            for (adapter, log) in node.idle.drain(..) {
                process::note(&log, &format!("pid {}: closed at the end", adapter.pid()));
                node.free.push(log);
            }
        }
    }
}

fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A [`Client`] running operations through an adapter program (see the module docs).
pub struct AdapterClient {
    shared: Arc<Shared>,
    process: u64,
    node: String,
    address: String,
    /// This client's seat: where its adapters' stderr goes.
    log: PathBuf,
    adapter: Option<Adapter>,
    /// A request was written and its answer not yet read (the invocation was abandoned).
    in_flight: bool,
}

impl AdapterClient {
    /// The pid of the adapter this client holds now, if any (for tests and diagnostics).
    pub fn adapter_pid(&self) -> Option<u32> {
        self.adapter.as_ref().map(Adapter::pid)
    }

    /// Where this client's adapters write their stderr.
    pub fn log_path(&self) -> &std::path::Path {
        &self.log
    }

    /// An adapter ready for a request: the one held if it is still healthy, else a new one.
    async fn ready(&mut self) -> Result<(), String> {
        if let Some(mut adapter) = self.adapter.take() {
            let problem = if let Some(status) = adapter.exited() {
                Some(format!("exited ({status}) between operations"))
            } else {
                match adapter.idle_output().await {
                    Idle::Quiet => None,
                    Idle::Closed => Some("closed its stdout between operations".into()),
                    Idle::Printed(text) => Some(format!(
                        "printed {text} between operations; stdout is for answers only, log \
                         to stderr"
                    )),
                }
            };
            match problem {
                None => self.adapter = Some(adapter),
                Some(problem) => {
                    tracing::warn!(
                        process = self.process,
                        node = %self.node,
                        "adapter {} (pid {}) {problem}; restarting it (its stderr is in {})",
                        self.shared.command.display(),
                        adapter.pid(),
                        adapter.log().display()
                    );
                    adapter.kill(&problem).await;
                }
            }
        }
        if self.adapter.is_none() {
            let mut env = self.shared.env.clone();
            env.push(("FISSURE_NODE".into(), self.node.clone()));
            env.push(("FISSURE_ADDRESS".into(), self.address.clone()));
            match Adapter::spawn(&self.shared.command, &env, &self.log) {
                Ok(adapter) => self.adapter = Some(adapter),
                Err(e) => {
                    let n = self.shared.spawn_failures.fetch_add(1, Ordering::Relaxed) + 1;
                    if n % SPAWN_WARN_EVERY == 1 {
                        tracing::warn!(
                            process = self.process,
                            failures = n,
                            "{e}; the operations fail until it can be started"
                        );
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Gives up on the adapter after `what` it did during `request`: warns, kills it, and
    /// returns the operation's `info`.
    async fn give_up(&mut self, op: &OpTemplate, id: u64, what: String, fix: &str) -> ClientReply {
        let Some(adapter) = self.adapter.take() else {
            return ClientReply::info(what);
        };
        let (pid, log) = (adapter.pid(), adapter.log().to_path_buf());
        let status = adapter.kill(&what).await;
        let status = status.map_or(String::new(), |s| format!(" (then {s})"));
        tracing::warn!(
            process = self.process,
            node = %self.node,
            "adapter {} (pid {pid}) {what} on request {id} ({}{}); the operation is info, the \
             adapter was killed{status} and will be restarted. {fix} Its stderr is in {}",
            self.shared.command.display(),
            op.f,
            op.key.as_ref().map_or(String::new(), |k| format!(" on key {k}")),
            log.display()
        );
        ClientReply::info(format!("adapter {what}"))
    }
}

#[async_trait::async_trait]
impl Client for AdapterClient {
    async fn invoke(&mut self, op: &OpTemplate, timeout: Duration) -> ClientReply {
        let deadline = Instant::now() + timeout;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let line = Request {
            id,
            process: self.process,
            f: &op.f,
            key: op.key.as_ref(),
            value: &op.value,
            node: &self.node,
            address: &self.address,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        }
        .line();
        if let Err(e) = self.ready().await {
            // Nothing was sent: it certainly did not happen.
            return ClientReply::fail(e);
        }
        let adapter = self.adapter.as_mut().expect("ready");
        self.in_flight = true;
        let exchange = adapter.exchange(&line, deadline).await;
        self.in_flight = false;
        match exchange {
            Exchange::Line(answer) => match parse_answer(&answer, id) {
                Ok(reply) => reply,
                Err(babble) => {
                    let fix = "Print exactly one answer line per request, with its id, and \
                               nothing else on stdout.";
                    self.give_up(op, id, babble, fix).await
                }
            },
            Exchange::Closed { partial } => {
                let what = match partial {
                    Some(text) => format!("closed its stdout after printing {text} (no newline)"),
                    None => "exited (or closed its stdout) without answering".into(),
                };
                let fix = "An adapter must keep running and answer every request; see why it \
                           stopped in its stderr.";
                self.give_up(op, id, what, fix).await
            }
            Exchange::TimedOut => {
                let what = format!("did not answer within the operation's timeout ({timeout:?})");
                let fix = "Flush stdout after each answer, and give calls to the system a \
                           deadline shorter than timeout_ms (then answer info).";
                self.give_up(op, id, what, fix).await
            }
            Exchange::Broken(e) => {
                let what = format!("could not be spoken to ({e})");
                let fix = "It probably exited; see its stderr.";
                self.give_up(op, id, what, fix).await
            }
            Exchange::TooLong => {
                let what = format!("printed a line longer than {} bytes", wire::MAX_LINE);
                self.give_up(op, id, what, "Answers are one line each.")
                    .await
            }
        }
    }
}

impl Drop for AdapterClient {
    fn drop(&mut self) {
        let log = std::mem::take(&mut self.log);
        let Ok(mut seats) = self.shared.seats.lock() else {
            return;
        };
        let seats = seats.entry(self.address.clone()).or_default();
        match self.adapter.take() {
            // Healthy and between requests: the next client of this node takes it.
            Some(adapter) if !self.in_flight => seats.idle.push((adapter, log)),
            // Abandoned mid-request: its late answer must not reach anyone; it is killed.
            abandoned => {
                if let Some(adapter) = &abandoned {
                    process::note(
                        &log,
                        &format!("pid {}: abandoned with a request in flight", adapter.pid()),
                    );
                }
                drop(abandoned);
                seats.free.push(log);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_deserialize_with_optional_args_and_env() {
        let c: AdapterCommand = serde_json::from_str(r#"{"program":"python3"}"#).unwrap();
        assert_eq!((c.args.len(), c.env.len()), (0, 0));
        let c: AdapterCommand = serde_json::from_str(
            r#"{"program":"python3","args":["a.py","x y"],"env":[["K","v"]]}"#,
        )
        .unwrap();
        assert_eq!(c.env, vec![("K".to_string(), "v".to_string())]);
        assert_eq!(c.display(), "python3 a.py \"x y\"");
    }

    #[test]
    fn check_finds_programs_on_path_and_refuses_missing_ones() {
        let command = |program: &str| AdapterCommand {
            program: program.into(),
            args: vec![],
            env: vec![],
        };
        assert_eq!(command("sh").check(), Ok(()));
        assert_eq!(command("/bin/sh").check(), Ok(()));
        let err = command("no-such-adapter-program").check().unwrap_err();
        assert!(err.contains("on PATH"), "{err}");
        assert!(command("/etc/passwd").check().is_err(), "not executable");
        assert!(command("").check().is_err());
    }

    #[test]
    fn log_names_are_file_safe() {
        assert_eq!(file_safe("n1"), "n1");
        assert_eq!(file_safe("db/1:2"), "db_1_2");
    }
}
