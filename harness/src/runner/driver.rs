//! Drives a generator in real time against real clients (the runner's half of the contract in
//! `workloads::generator`; `workloads::generator::sim` is the reference it follows).
//!
//! One task per operation, at most one operation per logical process (DESIGN.md §3). A process
//! whose operation ends `info` is retired: its client is dropped (a late answer can never be
//! taken for the next operation's) and a fresh process number takes its place, `concurrency`
//! higher, as in Jepsen, so `process % concurrency` names a stable client slot.

use super::recorder::{Entry, Recorder};
use checkers::{EventType, Process as HistoryProcess};
use rand::rngs::StdRng;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use workloads::client::{Client, ClientReply};
use workloads::generator::{Completion, Context, Generator, Next, OpTemplate, Outcome, Process};

/// Opens a client for a process: the client and the node it talks to.
pub type ClientFactory = Arc<dyn Fn(Process) -> (Box<dyn Client>, String) + Send + Sync>;

/// Counts for the progress bar and the summary.
#[derive(Debug, Default)]
pub struct Counters {
    pub invoked: AtomicU64,
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
}

impl Counters {
    pub fn completed(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
            + self.fail.load(Ordering::Relaxed)
            + self.info.load(Ordering::Relaxed)
    }
}

/// What persists from one phase to the next: which processes exist, their clients, the rng.
pub struct Driver {
    concurrency: u64,
    /// Processes without an open operation, sorted (what `Context::free` wants, as is).
    free: Vec<Process>,
    clients: HashMap<Process, (Box<dyn Client>, String)>,
    factory: ClientFactory,
    op_timeout: Duration,
    rng: StdRng,
    recorder: Recorder,
    first_invoke: Option<Duration>,
    pub counters: Arc<Counters>,
}

struct Done {
    process: Process,
    /// `None` when the client is gone (it failed, or never answered).
    client: Option<Box<dyn Client>>,
    node: String,
    completion: Completion,
}

/// How a phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseEnd {
    /// The generator finished and every operation completed.
    Finished,
    /// Stopped early (Ctrl-C, or an error elsewhere); operations still open stay open in the
    /// history, which makes them indeterminate.
    Stopped,
}

impl Driver {
    pub fn new(
        concurrency: usize,
        op_timeout: Duration,
        rng: StdRng,
        factory: ClientFactory,
        recorder: Recorder,
    ) -> Driver {
        Driver {
            concurrency: concurrency as u64,
            free: (0..concurrency as u64).collect(),
            clients: HashMap::new(),
            factory,
            op_timeout,
            rng,
            recorder,
            first_invoke: None,
            counters: Arc::default(),
        }
    }

    /// When the first operation was invoked, since the test started.
    pub fn first_invoke(&self) -> Option<Duration> {
        self.first_invoke
    }

    /// Runs `generator` until it is done and its operations complete, or until `stop` turns
    /// true. Errors only on a broken generator (it asked for a busy process, or waits forever).
    pub async fn run_phase(
        &mut self,
        generator: &mut dyn Generator,
        stop: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<PhaseEnd> {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let mut busy = 0usize;
        let mut finished = false;
        loop {
            while let Ok(done) = done_rx.try_recv() {
                busy -= 1;
                self.complete(done, generator);
            }
            if *stop.borrow() {
                return Ok(self.drain(&mut done_rx, busy, generator).await);
            }
            if finished {
                if busy == 0 {
                    return Ok(PhaseEnd::Finished);
                }
                if let Some(done) = recv_or_stop(&mut done_rx, stop, None).await {
                    busy -= 1;
                    self.complete(done, generator);
                }
                continue;
            }
            let now = self.recorder.started().elapsed();
            let next = generator.next(&mut Context {
                now,
                free: &self.free,
                busy,
                rng: &mut self.rng,
            });
            match next {
                Next::Invoke { process, op } => {
                    let Ok(at) = self.free.binary_search(&process) else {
                        anyhow::bail!("the generator invoked process {process}, which is busy");
                    };
                    self.free.remove(at);
                    busy += 1;
                    self.invoke(process, op, done_tx.clone());
                }
                // Tokio's timers tick in milliseconds; a shorter wait (rates above 1000/s)
                // would become a whole tick, so yield and ask again, or, with no process free
                // to invoke anything, wait for a completion instead of spinning.
                Next::Wait(d) if d < Duration::from_millis(1) => {
                    if !self.free.is_empty() {
                        tokio::task::yield_now().await;
                    } else if let Some(done) = recv_or_stop(&mut done_rx, stop, Some(d)).await {
                        busy -= 1;
                        self.complete(done, generator);
                    }
                }
                Next::Wait(d) => {
                    if let Some(done) = recv_or_stop(&mut done_rx, stop, Some(d)).await {
                        busy -= 1;
                        self.complete(done, generator);
                    }
                }
                Next::Pending if busy == 0 => {
                    anyhow::bail!("the generator waits for a completion with nothing in flight")
                }
                Next::Pending => {
                    if let Some(done) = recv_or_stop(&mut done_rx, stop, None).await {
                        busy -= 1;
                        self.complete(done, generator);
                    }
                }
                Next::Done => finished = true,
            }
        }
    }

    fn invoke(&mut self, process: Process, op: OpTemplate, done: mpsc::UnboundedSender<Done>) {
        let (mut client, node) = match self.clients.remove(&process) {
            Some(open) => open,
            None => (self.factory)(process),
        };
        self.recorder.record(Entry {
            process: HistoryProcess::Client(process),
            kind: EventType::Invoke,
            f: op.f.clone(),
            key: op.key.clone(),
            value: op.value.clone(),
            node: Some(node.clone()),
            error: None,
        });
        self.counters.invoked.fetch_add(1, Ordering::Relaxed);
        self.first_invoke
            .get_or_insert_with(|| self.recorder.started().elapsed());
        let recorder = self.recorder.clone();
        let timeout = self.op_timeout;
        tokio::spawn(async move {
            // The client runs in a task of its own, so that even a panicking client ends its
            // operation (as `info`) instead of leaving the process busy forever. It promises
            // to give up within `timeout`; the backstop is a second more.
            let call_op = op.clone();
            let mut call = tokio::spawn(async move {
                let reply = client.invoke(&call_op, timeout).await;
                (client, reply)
            });
            let backstop = tokio::time::sleep(timeout.saturating_add(Duration::from_secs(1)));
            let (client, reply) = tokio::select! {
                joined = &mut call => match joined {
                    Ok((client, reply)) => (Some(client), reply),
                    Err(e) => (None, info(format!("the client failed: {e}"))),
                },
                _ = backstop => {
                    call.abort();
                    (None, info(format!("no outcome within {timeout:?}")))
                }
            };
            // Recorded here, not when the driver gets to it, so latencies are the client's.
            recorder.record(Entry {
                process: HistoryProcess::Client(process),
                kind: match reply.outcome {
                    Outcome::Ok => EventType::Ok,
                    Outcome::Fail => EventType::Fail,
                    Outcome::Info => EventType::Info,
                },
                f: op.f.clone(),
                key: op.key.clone(),
                value: completion_value(&op, &reply),
                node: Some(node.clone()),
                error: reply.error.clone(),
            });
            let completion = Completion {
                time: recorder.started().elapsed(),
                process,
                op,
                outcome: reply.outcome,
                output: reply.output,
            };
            let _ = done.send(Done {
                process,
                client,
                node,
                completion,
            });
        });
    }

    fn free_up(&mut self, process: Process) {
        if let Err(at) = self.free.binary_search(&process) {
            self.free.insert(at, process);
        }
    }

    fn complete(&mut self, done: Done, generator: &mut dyn Generator) {
        let counter = match done.completion.outcome {
            Outcome::Ok => &self.counters.ok,
            Outcome::Fail => &self.counters.fail,
            Outcome::Info => &self.counters.info,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        match done.client {
            Some(client) if done.completion.outcome != Outcome::Info => {
                self.clients.insert(done.process, (client, done.node));
                self.free_up(done.process);
            }
            // Retired; its client goes with it. The fresh number keeps the slot
            // (`process % concurrency`), and so the node, of the one it replaces.
            _ => {
                self.free_up(done.process + self.concurrency);
            }
        }
        generator.observe(&done.completion);
    }

    /// After a stop: waits a bounded time for what is in flight, so most operations still get
    /// their real outcome.
    async fn drain(
        &mut self,
        done_rx: &mut mpsc::UnboundedReceiver<Done>,
        mut busy: usize,
        generator: &mut dyn Generator,
    ) -> PhaseEnd {
        let deadline = tokio::time::Instant::now() + self.op_timeout + Duration::from_secs(2);
        while busy > 0 {
            match tokio::time::timeout_at(deadline, done_rx.recv()).await {
                Ok(Some(done)) => {
                    busy -= 1;
                    self.complete(done, generator);
                }
                _ => break,
            }
        }
        PhaseEnd::Stopped
    }
}

fn info(error: String) -> ClientReply {
    ClientReply {
        outcome: Outcome::Info,
        output: Value::Null,
        error: Some(error),
    }
}

/// What the completion line carries: the result when there is one (a read's value), else the
/// invocation's value, as Jepsen writes it. A read that found nothing keeps `null`.
fn completion_value(op: &OpTemplate, reply: &ClientReply) -> Value {
    if !reply.output.is_null() || (op.f == "read" && reply.outcome == Outcome::Ok) {
        reply.output.clone()
    } else {
        op.value.clone()
    }
}

/// The next completion, waiting at most `wait` (forever if `None`), or `None` on timeout or stop.
async fn recv_or_stop(
    done_rx: &mut mpsc::UnboundedReceiver<Done>,
    stop: &mut watch::Receiver<bool>,
    wait: Option<Duration>,
) -> Option<Done> {
    let sleep = async {
        match wait {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        done = done_rx.recv() => done,
        _ = sleep => None,
        _ = stop.changed() => None,
    }
}
