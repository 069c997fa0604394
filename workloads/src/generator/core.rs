//! The generator contract: what a driver asks, what a generator answers.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// A client process number (DESIGN.md §3). A process has at most one open operation; a process
/// whose operation ends `info` is retired by the driver and replaced by a fresh number.
pub type Process = u64;

/// The invocation a client (or the nemesis) will run: `f`, an optional `key`, and the input
/// `value`. It maps one to one onto a history `invoke` line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpTemplate {
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<serde_json::Value>,
    pub value: serde_json::Value,
}

impl OpTemplate {
    /// An operation without a key.
    pub fn new(f: impl Into<String>, value: serde_json::Value) -> Self {
        Self {
            f: f.into(),
            key: None,
            value,
        }
    }

    /// The same operation on `key`.
    pub fn with_key(mut self, key: impl Into<serde_json::Value>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// How an operation ended (DESIGN.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It happened.
    Ok,
    /// It certainly did not happen.
    Fail,
    /// Unknown; the process is retired.
    Info,
}

/// A finished operation, told to [`Generator::observe`].
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// When it completed, since the test started.
    pub time: Duration,
    pub process: Process,
    /// The operation as invoked (`value` is the input, not the output).
    pub op: OpTemplate,
    pub outcome: Outcome,
    /// What the client returned (a read's value), `null` if nothing.
    pub output: serde_json::Value,
}

/// What a generator sees when asked for its next operation.
///
/// The driver owns the random number generator (seeded from the test's seed) and lends it here,
/// so all randomness of a run flows from one seed: the same seed and the same sequence of
/// contexts and completions give the same sequence of [`Next`] values.
pub struct Context<'a> {
    /// Time since the test started (the driver's monotonic clock, or a fake one in tests).
    pub now: Duration,
    /// Processes without an open operation, sorted ascending.
    pub free: &'a [Process],
    /// Number of operations in flight (invoked, not yet completed).
    pub busy: usize,
    pub rng: &'a mut StdRng,
}

impl Context<'_> {
    /// The same context with `free` narrowed to `free` (used by combinators that pick the process).
    pub fn with_free<'b>(&'b mut self, free: &'b [Process]) -> Context<'b> {
        Context {
            now: self.now,
            free,
            busy: self.busy,
            rng: &mut *self.rng,
        }
    }

    /// A free process chosen uniformly at random, `None` if all are busy.
    ///
    /// Random, not the lowest: processes map onto nodes and connections, and a source that
    /// always took the lowest free process would send nearly every operation of a lightly loaded
    /// run through the same few, leaving the rest (say, the connections to a deposed leader) all
    /// but idle. A single free process costs no random draw, so a lone nemesis process leaves
    /// the stream of random numbers untouched.
    pub fn some_free_process(&mut self) -> Option<Process> {
        match self.free {
            [] => None,
            [only] => Some(*only),
            free => Some(free[self.rng.gen_range(0..free.len())]),
        }
    }
}

/// A generator's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Invoke `op` on `process` now. `process` is always one of `Context::free`.
    Invoke { process: Process, op: OpTemplate },
    /// Nothing to do before `now + d`: ask again then, or sooner if an operation completes.
    /// `d` is never zero.
    Wait(Duration),
    /// Nothing to do until an operation completes (e.g. no process is free): ask again after
    /// the next completion. A driver with nothing in flight that gets `Pending` has a deadlock.
    Pending,
    /// This generator will never produce another operation.
    Done,
}

/// A pure, seeded source of operations. No I/O, no clocks, no threads: all time comes from
/// [`Context::now`] and all randomness from [`Context::rng`].
///
/// Driver contract: call [`next`](Generator::next) whenever something may have changed (after
/// an invocation, after a completion, when a `Wait` runs out), and call
/// [`observe`](Generator::observe) once for every completed operation before asking again.
/// After `Done`, the generator must not be asked again.
pub trait Generator: Send {
    /// The next thing to do.
    fn next(&mut self, ctx: &mut Context<'_>) -> Next;

    /// Told about every completed operation. Combinators forward it to their children.
    fn observe(&mut self, _completion: &Completion) {}

    /// This generator as a `Box<dyn Generator>`.
    fn boxed(self) -> Box<dyn Generator>
    where
        Self: Sized + 'static,
    {
        Box::new(self)
    }
}

impl Generator for Box<dyn Generator> {
    fn next(&mut self, ctx: &mut Context<'_>) -> Next {
        (**self).next(ctx)
    }

    fn observe(&mut self, completion: &Completion) {
        (**self).observe(completion)
    }

    fn boxed(self) -> Box<dyn Generator> {
        self
    }
}
