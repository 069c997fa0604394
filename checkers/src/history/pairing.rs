//! Pairing invocations with completions.
//!
//! Rules (Jepsen semantics): a client process has at most one open operation; its next event after
//! an `invoke` must be the completion of the same function. An operation with no completion by the
//! end of the history is indeterminate, exactly like an `info`. A process may invoke again after an
//! `info` (some recorders reuse numbers); the earlier operation then stays open-ended.

use super::{Event, EventType, History, Operation, Outcome, Process};
use rustc_hash::FxHashMap;
use serde_json::Value;
use thiserror::Error;

/// A history whose events do not pair up; names where, in the file's terms.
#[derive(Debug, Error, Clone, PartialEq)]
#[error("{location}: {message}")]
pub struct PairingError {
    pub location: String,
    pub message: String,
}

pub(super) fn pair(history: &History) -> Result<Vec<Operation>, PairingError> {
    let mut open: FxHashMap<u64, usize> = FxHashMap::default();
    let mut ops: Vec<Operation> = Vec::new();
    let error = |pos: usize, message: String| PairingError {
        location: history.locate(pos),
        message,
    };

    for (pos, event) in history.events.iter().enumerate() {
        let Process::Client(process) = event.process else {
            continue;
        };
        match event.kind {
            EventType::Invoke => {
                if let Some(&prev) = open.get(&process) {
                    let prev_op = &ops[prev];
                    return Err(error(
                        pos,
                        double_invoke(process, &event.f, &prev_op.f, &history.locate(prev_op.call)),
                    ));
                }
                open.insert(process, ops.len());
                ops.push(new_operation(ops.len(), process, pos, event));
            }
            kind => {
                let Some(id) = open.remove(&process) else {
                    return Err(error(pos, orphan_completion(process, &event.f, kind)));
                };
                let op = &mut ops[id];
                if op.f != event.f {
                    return Err(error(
                        pos,
                        other_completion(process, &event.f, &op.f, &history.locate(op.call)),
                    ));
                }
                op.outcome = match kind {
                    EventType::Ok => Outcome::Ok,
                    EventType::Fail => Outcome::Fail,
                    _ => Outcome::Info,
                };
                op.output = event.value.clone();
                op.ret = Some(pos);
                op.complete_index = Some(event.index);
                op.return_time = event.time;
                if event.error.is_some() {
                    op.error = event.error.clone();
                }
                if op.node.is_none() {
                    op.node = event.node.clone();
                }
            }
        }
    }
    Ok(ops)
}

// The pairing rules' complaints, shared with readers that pair as they go
// (`txn::read_txn_jsonl`); `at` says where the earlier invocation is.

pub(crate) fn double_invoke(process: u64, f: &str, open_f: &str, at: &str) -> String {
    format!(
        "process {process} invokes {f:?} while its {open_f:?} from {at} is still open; \
         a process may have only one operation in flight"
    )
}

pub(crate) fn orphan_completion(process: u64, f: &str, kind: EventType) -> String {
    format!(
        "process {process} completes {f:?} ({}) without an open invocation",
        kind.as_str()
    )
}

pub(crate) fn other_completion(process: u64, f: &str, invoked_f: &str, at: &str) -> String {
    format!("process {process} completes {f:?} but invoked {invoked_f:?} at {at}")
}

fn new_operation(id: usize, process: u64, pos: usize, event: &Event) -> Operation {
    Operation {
        id,
        process,
        f: event.f.clone(),
        key: event.key.clone(),
        input: event.value.clone(),
        // Until a completion arrives, the operation is indeterminate.
        outcome: Outcome::Info,
        output: Value::Null,
        call: pos,
        ret: None,
        invoke_index: event.index,
        complete_index: None,
        call_time: event.time,
        return_time: None,
        node: event.node.clone(),
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(p: u64, kind: EventType, f: &str, v: Value) -> Event {
        Event::client(p, kind, f, v)
    }

    #[test]
    fn pairs_and_marks_unfinished_as_info() {
        let h = History::from_events(vec![
            ev(0, EventType::Invoke, "write", json!(1)),
            ev(1, EventType::Invoke, "read", Value::Null),
            ev(0, EventType::Ok, "write", json!(1)),
            ev(1, EventType::Fail, "read", Value::Null),
            ev(0, EventType::Invoke, "cas", json!([1, 2])),
        ]);
        let ops = h.operations().unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[0].outcome, Outcome::Ok);
        assert_eq!(ops[0].ret, Some(2));
        assert_eq!(ops[1].outcome, Outcome::Fail);
        assert_eq!(ops[2].outcome, Outcome::Info);
        assert_eq!(ops[2].ret, None);
    }

    #[test]
    fn nemesis_events_are_ignored() {
        let mut nemesis = ev(0, EventType::Info, "start-partition", json!("halves"));
        nemesis.process = Process::Nemesis;
        let h = History::from_events(vec![
            ev(0, EventType::Invoke, "read", Value::Null),
            nemesis,
            ev(0, EventType::Ok, "read", json!(3)),
        ]);
        assert_eq!(h.operations().unwrap().len(), 1);
        assert_eq!(h.nemesis_events().count(), 1);
    }

    #[test]
    fn double_invoke_is_an_error_naming_the_line() {
        let mut h = History::from_events(vec![
            ev(0, EventType::Invoke, "read", Value::Null),
            ev(0, EventType::Invoke, "write", json!(1)),
        ]);
        h.source_lines = vec![1, 2];
        let err = h.operations().unwrap_err();
        assert_eq!(err.location, "line 2");
        assert!(err.message.contains("still open"), "{err}");
    }

    #[test]
    fn completion_without_invoke_or_with_other_f_is_an_error() {
        let h = History::from_events(vec![ev(3, EventType::Ok, "read", json!(1))]);
        assert!(h
            .operations()
            .unwrap_err()
            .message
            .contains("without an open"));
        let h = History::from_events(vec![
            ev(3, EventType::Invoke, "read", Value::Null),
            ev(3, EventType::Ok, "write", json!(1)),
        ]);
        assert!(h.operations().unwrap_err().message.contains("but invoked"));
    }
}
