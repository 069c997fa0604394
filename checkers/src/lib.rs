//! Fissure's analysis of recorded histories: the history model and its file formats, sequential
//! models, and the linearizability checker. Pure: no I/O beyond reading a history.

pub mod formats;
pub mod history;
pub mod linearizability;
pub mod model;

pub use history::{Event, EventType, History, Operation, Outcome, Process};
pub use linearizability::{check, check_model, CheckOptions, LinearizabilityResult, Verdict};
pub use model::{FailureSemantics, Model, ModelKind};
