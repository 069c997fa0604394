//! The history model (DESIGN.md §3): events as recorded, and operations as checkers see them.
//!
//! A history is a sequence of [`Event`]s in the order they happened. Each client operation is an
//! `invoke` followed by exactly one completion from the same process: `ok` (it happened), `fail`
//! (it certainly did not) or `info` (unknown). Nemesis entries ride along in the same stream.
//! Checkers work on [`Operation`]s, which pair each invocation with its completion.

mod jsonl;
pub(crate) mod pairing;

pub use jsonl::{read_jsonl, write_jsonl, JsonlError};
pub use pairing::PairingError;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;

/// Who performed an event: a numbered client process or the nemesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(n) => write!(f, "{n}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

impl Serialize for Process {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(n) => s.serialize_u64(*n),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) if n.as_u64().is_some() => Ok(Process::Client(n.as_u64().unwrap())),
            Value::String(s) if s == "nemesis" => Ok(Process::Nemesis),
            other => Err(serde::de::Error::custom(format!(
                "process must be a non-negative integer or \"nemesis\", got {other}"
            ))),
        }
    }
}

/// The kind of an event: an invocation or one of the three completions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
}

/// One line of `history.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history; assigned from the line order when a file omits it.
    #[serde(default)]
    pub index: u64,
    /// Nanoseconds since the test started (controller's monotonic clock), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    #[serde(default)]
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

impl Event {
    /// A client event with the given fields and no time, node or error.
    pub fn client(process: u64, kind: EventType, f: &str, value: Value) -> Event {
        Event {
            index: 0,
            time: None,
            process: Process::Client(process),
            kind,
            f: f.to_string(),
            key: None,
            value,
            node: None,
            error: None,
        }
    }

    pub fn with_key(mut self, key: Value) -> Event {
        self.key = Some(key);
        self
    }
}

/// A whole history, plus where each event came from so errors can name a line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub events: Vec<Event>,
    /// `source_lines[i]` is the 1-based line of `events[i]` in the file it was read from.
    /// Empty for histories built in memory.
    pub source_lines: Vec<usize>,
}

impl History {
    /// A history from events built in memory; indices are renumbered 0, 1, 2, ...
    pub fn from_events(events: Vec<Event>) -> History {
        let mut history = History {
            events,
            source_lines: Vec::new(),
        };
        history.renumber();
        history
    }

    /// Rewrites `index` to the event's position.
    pub fn renumber(&mut self) {
        for (i, e) in self.events.iter_mut().enumerate() {
            e.index = i as u64;
        }
    }

    /// Where event `position` came from, for error messages: `line N` or `event N`.
    pub fn locate(&self, position: usize) -> String {
        match self.source_lines.get(position) {
            Some(line) => format!("line {line}"),
            None => format!("event {position}"),
        }
    }

    /// Client events only (nemesis entries dropped).
    pub fn client_events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(|e| e.process != Process::Nemesis)
    }

    /// Nemesis entries only, for reports and fault-window analysis.
    pub fn nemesis_events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(|e| e.process == Process::Nemesis)
    }

    /// Pairs invocations with completions. See [`pairing`] for the rules.
    pub fn operations(&self) -> Result<Vec<Operation>, PairingError> {
        pairing::pair(self)
    }
}

/// How an operation completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It happened, with the completion's value as its result.
    Ok,
    /// It certainly did not take effect (Jepsen), or it ran and reported failure (Porcupine):
    /// which reading applies is the checker's `FailureSemantics`.
    Fail,
    /// Unknown: it may take effect at any time after its invocation, or never.
    Info,
}

/// An invocation paired with its completion: what checkers reason about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// Position among the history's operations, in invocation order.
    pub id: usize,
    pub process: u64,
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    /// The invocation's value (the argument).
    pub input: Value,
    pub outcome: Outcome,
    /// The completion's value (the result); `null` when the operation never completed.
    pub output: Value,
    /// Position of the invocation in the history's events.
    pub call: usize,
    /// Position of the completion, or `None` when no completion was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<usize>,
    /// `index` of the invocation event (as recorded, not renumbered).
    pub invoke_index: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete_index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

impl Operation {
    /// True when the operation's outcome is unknown (an `info` or no completion at all).
    pub fn is_indeterminate(&self) -> bool {
        self.outcome == Outcome::Info
    }
}
