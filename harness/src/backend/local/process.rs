//! Node processes: spawned so that they never outlive the controller, signalled, and reaped.
//!
//! Every node is forked by one dedicated thread that lives exactly as long as the cluster. Each
//! node asks the kernel (`PR_SET_PDEATHSIG`) to SIGKILL it when its parent goes away, and the
//! "parent" the kernel watches is the forking *thread*: forking from tokio's workers would kill
//! nodes whenever the runtime retires a blocking thread, so the spawner thread is ours. Each node
//! also gets its own process group, so a Ctrl-C at the terminal reaches only the controller,
//! which heals and shuts the cluster down in order.

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

type Request = (Command, oneshot::Sender<io::Result<Owned>>);

/// The thread that forks every node of one cluster.
pub struct Spawner {
    requests: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl Spawner {
    pub fn new() -> anyhow::Result<Spawner> {
        let (requests, incoming) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("fissure-spawner".into())
            .spawn(move || {
                for (command, reply) in incoming {
                    // Owned at once: if the asker has gone (its start was cancelled), the
                    // returned child is dropped here and so killed and reaped.
                    let _ = reply.send(spawn_here(command).map(Owned::new));
                }
            })
            .context("cannot start the thread that spawns nodes")?;
        Ok(Spawner {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// Spawns `command` from the spawner thread.
    pub async fn spawn(&self, command: Command) -> io::Result<Owned> {
        let (reply, answer) = oneshot::channel();
        let gone = || io::Error::other("the node spawner thread has stopped");
        self.requests
            .as_ref()
            .ok_or_else(gone)?
            .send((command, reply))
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

impl Drop for Spawner {
    /// Ends the thread; call only once every node is dead (their death signal fires now).
    fn drop(&mut self) {
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn spawn_here(mut command: Command) -> io::Result<Child> {
    let parent = nix::unistd::getpid();
    command.process_group(0);
    // SAFETY: the closure runs between fork and exec and only makes two async-signal-safe
    // system calls (prctl, getppid); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            // The controller may have died between fork and prctl: then nobody would kill us.
            if nix::unistd::getppid() != parent {
                return Err(io::Error::other("the controller exited while spawning"));
            }
            Ok(())
        });
    }
    command.spawn()
}

/// A node process in hand: SIGKILLed and reaped if dropped before it is handed over, so a
/// start that fails or is cancelled (its future dropped) leaves no process behind.
pub struct Owned(Option<Child>);

impl Owned {
    pub fn new(child: Child) -> Owned {
        Owned(Some(child))
    }

    pub fn child(&mut self) -> &mut Child {
        self.0
            .as_mut()
            .expect("an Owned holds its child until into_inner")
    }

    pub fn into_inner(mut self) -> Child {
        self.0
            .take()
            .expect("an Owned holds its child until into_inner")
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            kill_and_reap_blocking(child);
        }
    }
}

/// Sends `signal` to the process `pid`; a process that is already gone is not an error.
pub fn signal(pid: u32, signal: Signal) -> anyhow::Result<()> {
    match kill(Pid::from_raw(pid as i32), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => bail!("cannot send {signal} to process {pid}: {e}"),
    }
}

/// How long a SIGKILLed process may take to go (a node in the middle of an fsync is not
/// killable until the disk answers).
const KILL_LIMIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(5);

/// SIGKILLs `child` (stopped or not) and reaps it.
pub async fn kill_and_reap(child: &mut Child) -> anyhow::Result<()> {
    let _ = child.kill(); // fails only if it was reaped already
    match wait_exit(child, KILL_LIMIT).await? {
        Some(_) => Ok(()),
        None => bail!("process {} survived SIGKILL for {KILL_LIMIT:?}", child.id()),
    }
}

/// Waits up to `limit` for `child` to exit, reaping it; `None` if it still runs.
pub async fn wait_exit(child: &mut Child, limit: Duration) -> anyhow::Result<Option<ExitStatus>> {
    let started = Instant::now();
    loop {
        if let Some(status) = reap(child)? {
            return Ok(Some(status));
        }
        if started.elapsed() >= limit {
            return Ok(None);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// [`kill_and_reap`] for `Drop`, where nothing can be awaited.
pub fn kill_and_reap_blocking(child: &mut Child) {
    let _ = child.kill();
    let started = Instant::now();
    while started.elapsed() < KILL_LIMIT {
        if !matches!(reap(child), Ok(None)) {
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// The exit status if `child` has exited (reaping it), `None` if it runs.
pub fn reap(child: &mut Child) -> anyhow::Result<Option<ExitStatus>> {
    child
        .try_wait()
        .with_context(|| format!("cannot wait for process {}", child.id()))
}
