//! Fissure's analysis of recorded histories: the history model and its file formats, sequential
//! models, the linearizability checker, and the bank and set invariant checkers. Pure: no I/O
//! beyond reading a history.
//!
//! - [`counter`]: a counter's reads within the bounds its adds allow (Jepsen's counter checker).
//! - [`slo`]: service levels (latency, availability, error rate, recovery) per window and per
//!   fault phase, checked against optional thresholds.
//! - [`fuzzing`]: the fuzz targets' entry points (`fuzz/`), replayed over the saved corpus in tests.

pub mod bank;
pub mod counter;
pub mod formats;
pub mod fuzzing;
pub mod history;
pub mod linearizability;
pub mod model;
pub mod set;
pub mod slo;
pub mod txn;

pub use bank::{check_bank, BadRead, BankError, BankOptions, BankResult, OutcomeCounts, TotalSeen};
pub use counter::{check_counter, BadCounterRead, CounterResult, MalformedAdd};
pub use history::{Event, EventType, History, Operation, Outcome, Process};
pub use linearizability::{check, check_model, CheckOptions, LinearizabilityResult, Verdict};
pub use model::{FailureSemantics, Model, ModelKind};
pub use set::{
    check_set, Capped, Divergence, Duplicate, FinalRead, LostElement, MalformedRead, SetResult,
    Sighting,
};
pub use slo::{
    check_slo, Baseline, Breach, PhaseStats, Recovery, SloResult, SloSpec, SloVerdict, Thresholds,
    WindowStats,
};
