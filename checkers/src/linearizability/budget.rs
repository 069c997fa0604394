//! Time and memory limits shared by every partition's search, and progress counters.
//!
//! A search that runs out of either gives up with an `unknown` verdict instead of hanging or being
//! killed for memory. Memory is the search's own estimate of its cache, interned states and memo
//! tables: close enough to stop well before the machine suffers.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a search gave up.
#[derive(Clone, Debug, PartialEq)]
pub enum Abort {
    TimeLimit(Duration),
    MemoryLimit(u64),
    /// Another partition exhausted the budget, or was proven invalid, first.
    Cancelled,
}

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Abort::TimeLimit(d) if d.as_secs() == 0 => {
                write!(f, "time limit of {} ms reached", d.as_millis())
            }
            Abort::TimeLimit(d) => write!(f, "time limit of {:.1} s reached", d.as_secs_f64()),
            Abort::MemoryLimit(b) if *b < 1 << 20 => {
                write!(f, "memory budget of {} KiB reached", b >> 10)
            }
            Abort::MemoryLimit(b) => write!(f, "memory budget of {} MiB reached", b >> 20),
            Abort::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// Live counters a caller can poll to draw progress.
#[derive(Debug, Default)]
pub struct Progress {
    pub partitions_total: AtomicUsize,
    pub partitions_done: AtomicUsize,
    /// Search steps taken so far, summed over partitions (updated every few thousand steps).
    pub steps: AtomicU64,
    /// Estimated bytes held by searches in flight.
    pub memory: AtomicUsize,
}

pub(crate) struct Budget {
    started: Instant,
    time_limit: Option<Duration>,
    memory_limit: Option<u64>,
    cancelled: AtomicBool,
    first_abort: Mutex<Option<Abort>>,
    pub(crate) progress: Arc<Progress>,
}

impl Budget {
    pub(crate) fn new(
        time_limit: Option<Duration>,
        memory_limit: Option<u64>,
        progress: Arc<Progress>,
    ) -> Budget {
        Budget {
            started: Instant::now(),
            time_limit,
            memory_limit,
            cancelled: AtomicBool::new(false),
            first_abort: Mutex::new(None),
            progress,
        }
    }

    /// Accounts a search's memory (it last reported `reported` bytes, now holds `bytes`) and its
    /// steps, then says whether it may go on.
    pub(crate) fn check(
        &self,
        reported: &mut usize,
        bytes: usize,
        steps: u64,
    ) -> Result<(), Abort> {
        let memory = &self.progress.memory;
        if bytes >= *reported {
            memory.fetch_add(bytes - *reported, Ordering::Relaxed);
        } else {
            memory.fetch_sub(*reported - bytes, Ordering::Relaxed);
        }
        *reported = bytes;
        self.progress.steps.fetch_add(steps, Ordering::Relaxed);
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(Abort::Cancelled);
        }
        if let Some(limit) = self.time_limit {
            if self.started.elapsed() >= limit {
                return Err(self.abort(Abort::TimeLimit(limit)));
            }
        }
        if let Some(limit) = self.memory_limit {
            if memory.load(Ordering::Relaxed) as u64 >= limit {
                return Err(self.abort(Abort::MemoryLimit(limit)));
            }
        }
        Ok(())
    }

    /// A finished search gives its memory back.
    pub(crate) fn release(&self, reported: usize) {
        self.progress.memory.fetch_sub(reported, Ordering::Relaxed);
    }

    fn abort(&self, reason: Abort) -> Abort {
        self.cancelled.store(true, Ordering::Relaxed);
        let mut first = self.first_abort.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(reason).clone()
    }

    /// The reason the first search gave up, if any did.
    pub(crate) fn abort_reason(&self) -> Option<Abort> {
        self.first_abort
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.time_limit
            .map(|limit| limit.saturating_sub(self.started.elapsed()))
    }
}
