//! Fissure's analysis of recorded histories: the history model and its file formats, sequential
//! models, the linearizability checker, and the bank and set invariant checkers. Pure: no I/O
//! beyond reading a history.

pub mod bank;
pub mod formats;
pub mod history;
pub mod linearizability;
pub mod model;
pub mod set;

pub use bank::{check_bank, BadRead, BankError, BankOptions, BankResult, OutcomeCounts, TotalSeen};
pub use history::{Event, EventType, History, Operation, Outcome, Process};
pub use linearizability::{check, check_model, CheckOptions, LinearizabilityResult, Verdict};
pub use model::{FailureSemantics, Model, ModelKind};
pub use set::{
    check_set, Capped, Divergence, Duplicate, FinalRead, LostElement, MalformedRead, SetResult,
    Sighting,
};
