//! Sequential specifications that the linearizability checker tests histories against.
//!
//! A [`Model`] is a small trait: an initial state, a way to turn a recorded [`Operation`] into the
//! model's own compact operation (`prepare`, done once), and a pure `step` that says whether the
//! operation could have happened in a state and what state follows. The checker interns states and
//! memoizes steps, so a model may use any hashable state and need not be clever about speed.

mod atom;
mod counter;
mod kv;
mod multi_register;
mod mutex;
mod queue;
mod register;
mod set;

pub use atom::Atom;
pub use counter::Counter;
pub use kv::{KeyValue, KeyValueByKey};
pub use multi_register::MultiRegister;
pub use mutex::Mutex;
pub use queue::FifoQueue;
pub use register::Register;
pub use set::SetModel;

use crate::history::Operation;
use serde_json::Value;
use std::fmt;
use std::hash::Hash;
use std::str::FromStr;
use thiserror::Error;

/// A sequential specification of one object (or, for keyed models, of a whole map of objects).
pub trait Model: Send + Sync {
    /// The object's state. Interned by the checker: make it hashable, not necessarily small.
    type State: Clone + Eq + Hash + Send + Sync + fmt::Debug;
    /// An operation compiled from the history: its input and its observed output.
    type Op: Clone + Send + Sync + fmt::Debug;

    /// The name shown in results, e.g. `cas-register`.
    fn name(&self) -> &'static str;

    fn init(&self) -> Self::State;

    /// Compiles a recorded operation once, before the search. Rejects functions or values the
    /// model does not understand, with a message that says what it expected.
    ///
    /// `op.outcome` is `Ok` (output observed), `Info` (output unknown: the operation may or may not
    /// have taken effect) or, under [`FailureSemantics::Observed`], `Fail` (it ran and reported
    /// failure). Under [`FailureSemantics::DidNotHappen`] failed operations never reach the model.
    fn prepare(&self, op: &Operation) -> Result<Self::Op, ModelError>;

    /// `Some(next)` if `op` could take effect in `state` producing its observed output.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;

    /// `step` in place, for replaying a sequence where the state before is not needed again:
    /// applies `op` to `state` and returns true, or returns false and leaves `state` as it was.
    /// Worth overriding when a state is costly to copy.
    fn apply(&self, state: &mut Self::State, op: &Self::Op) -> bool {
        match self.step(state, op) {
            Some(next) => {
                *state = next;
                true
            }
            None => false,
        }
    }

    /// Whether a read-only `op` could take effect in `state`: `step` without building the
    /// unchanged state again. Worth overriding when a state is costly to copy.
    fn admits(&self, state: &Self::State, op: &Self::Op) -> bool {
        self.step(state, op).is_some()
    }

    /// True if `op` never changes any state (a read). Removing such an operation from a
    /// linearizable history leaves it linearizable, so a history that stays non-linearizable
    /// without some reads proves the original wrong too: that makes shrinking sound.
    fn is_read_only(&self, _op: &Self::Op) -> bool {
        false
    }

    /// Optional pruning: `false` only if `read` (a read-only operation) certainly cannot succeed
    /// after any sequence of operations drawn from `others`, starting in `state`. The checker
    /// asks this of pending reads and abandons configurations that cannot satisfy them, instead
    /// of trying every order of the operations in between. The default never prunes.
    fn can_satisfy(
        &self,
        _state: &Self::State,
        _read: &Self::Op,
        _others: &mut dyn Iterator<Item = &Self::Op>,
    ) -> bool {
        true
    }

    /// Roughly how many bytes a state holds, heap included, so the checker's memory budget
    /// counts what models allocate. The default suits states without heap data.
    fn state_bytes(&self, _state: &Self::State) -> usize {
        std::mem::size_of::<Self::State>()
    }

    /// A state as JSON, for counterexamples.
    fn describe_state(&self, state: &Self::State) -> Value;

    /// True if the model's state is a map over the history's `key` field, so it can check a
    /// history whole or split by key. Models of one object (false) are always split by key.
    fn keyed(&self) -> bool {
        false
    }
}

/// An operation a model cannot interpret.
#[derive(Debug, Error, Clone, PartialEq)]
#[error("operation {op} ({f}): {message}")]
pub struct ModelError {
    /// The operation's id (position among operations).
    pub op: usize,
    pub f: String,
    pub message: String,
}

impl ModelError {
    pub fn new(op: &Operation, message: impl Into<String>) -> ModelError {
        ModelError {
            op: op.id,
            f: op.f.clone(),
            message: message.into(),
        }
    }

    /// The standard error for a function the model does not have.
    pub fn unknown_f(op: &Operation, model: &str, expected: &[&str]) -> ModelError {
        ModelError::new(
            op,
            format!(
                "the {model} model has no function {:?}; expected one of {}",
                op.f,
                expected.join(", ")
            ),
        )
    }
}

/// What a `fail` completion means. Sources disagree, so the checker asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureSemantics {
    /// Jepsen and Knossos: the operation certainly did not take effect; it is dropped.
    DidNotHappen,
    /// Porcupine: the operation ran and reported failure (a CAS whose compare failed), which the
    /// model must explain at some point between invocation and completion.
    Observed,
}

impl FailureSemantics {
    pub fn name(self) -> &'static str {
        match self {
            FailureSemantics::DidNotHappen => "did-not-happen",
            FailureSemantics::Observed => "observed",
        }
    }
}

impl FromStr for FailureSemantics {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "did-not-happen" | "jepsen" | "knossos" => Ok(FailureSemantics::DidNotHappen),
            "observed" | "porcupine" => Ok(FailureSemantics::Observed),
            other => Err(format!(
                "unknown failure semantics {other:?}; expected did-not-happen or observed"
            )),
        }
    }
}

/// The built-in models, selectable by name (`--model`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelKind {
    Register,
    CasRegister,
    KeyValue,
    MultiRegister,
    Set,
    Counter,
    Mutex,
    Queue,
}

impl ModelKind {
    pub const ALL: [ModelKind; 8] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::KeyValue,
        ModelKind::MultiRegister,
        ModelKind::Set,
        ModelKind::Counter,
        ModelKind::Mutex,
        ModelKind::Queue,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::KeyValue => "kv",
            ModelKind::MultiRegister => "multi-register",
            ModelKind::Set => "set",
            ModelKind::Counter => "counter",
            ModelKind::Mutex => "mutex",
            ModelKind::Queue => "queue",
        }
    }

    /// Guesses a model from the functions a history uses, for `fissure check` without `--model`.
    pub fn guess<'a>(functions: impl IntoIterator<Item = &'a str>) -> Option<ModelKind> {
        let fs: std::collections::BTreeSet<&str> = functions.into_iter().collect();
        let has = |f: &str| fs.contains(f);
        let kind = if has("get") || has("put") || has("append") {
            ModelKind::KeyValue
        } else if has("cas") {
            ModelKind::CasRegister
        } else if has("enqueue") || has("dequeue") {
            ModelKind::Queue
        } else if has("acquire") || has("release") {
            ModelKind::Mutex
        } else if has("txn") {
            ModelKind::MultiRegister
        } else if has("add") && has("read") {
            // A set adds elements; a counter adds numbers. The values decide, so prefer neither
            // silently: the caller inspects values when this matters.
            ModelKind::Set
        } else if has("increment") {
            ModelKind::Counter
        } else if has("write") || has("read") {
            ModelKind::Register
        } else {
            return None;
        };
        Some(kind)
    }
}

impl ModelKind {
    /// Like [`ModelKind::guess`], but looks at values where functions are ambiguous: `add` and
    /// `read` of numbers is a counter, of elements a set.
    pub fn guess_from_ops(ops: &[Operation]) -> Option<ModelKind> {
        let guess = ModelKind::guess(ops.iter().map(|o| o.f.as_str()))?;
        if guess == ModelKind::Set {
            let numeric_reads = ops
                .iter()
                .filter(|o| o.f == "read" && o.outcome == crate::history::Outcome::Ok)
                .all(|o| o.output.is_number() || o.output.is_null());
            if numeric_reads {
                return Some(ModelKind::Counter);
            }
        }
        Some(guess)
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let alias = match s {
            "key-value" | "kv" => Some(ModelKind::KeyValue),
            "cas" | "cas-register" => Some(ModelKind::CasRegister),
            "fifo-queue" | "queue" => Some(ModelKind::Queue),
            _ => None,
        };
        alias
            .or_else(|| ModelKind::ALL.into_iter().find(|k| k.name() == s))
            .ok_or_else(|| {
                let names: Vec<&str> = ModelKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown model {s:?}; expected one of {}", names.join(", "))
            })
    }
}

/// Builds operations for model unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::history::{Operation, Outcome};
    use serde_json::Value;

    pub fn op(f: &str, input: Value, outcome: Outcome, output: Value) -> Operation {
        Operation {
            id: 0,
            process: 0,
            f: f.to_string(),
            key: None,
            input,
            outcome,
            output,
            call: 0,
            ret: Some(1),
            invoke_index: 0,
            complete_index: Some(1),
            call_time: None,
            return_time: None,
            node: None,
            error: None,
        }
    }

    pub fn keyed(f: &str, key: Value, input: Value, outcome: Outcome, output: Value) -> Operation {
        Operation {
            key: Some(key),
            ..op(f, input, outcome, output)
        }
    }
}
