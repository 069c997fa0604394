//! The checker against a brute-force reference: on small random histories, try every order of
//! every subset of indeterminate operations that respects real time, and compare verdicts.

use checkers::history::{Event, EventType, History, Operation, Outcome};
use checkers::model::{CasRegister, KeyValue, Model};
use checkers::{check, CheckOptions, FailureSemantics, Verdict};
use proptest::prelude::*;
use serde_json::{json, Value};

/// True if some order of the operations (each indeterminate one placed or left out) respects
/// real time and the model accepts. Written for clarity, not speed.
fn brute_force<M: Model>(model: &M, ops: &[Operation], failures: FailureSemantics) -> bool {
    let ops: Vec<&Operation> = ops
        .iter()
        .filter(|op| !(op.outcome == Outcome::Fail && failures == FailureSemantics::DidNotHappen))
        .collect();
    let compiled: Vec<M::Op> = ops.iter().map(|op| model.prepare(op).unwrap()).collect();
    let info: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].outcome == Outcome::Info)
        .collect();
    for mask in 0..(1u32 << info.len()) {
        let included: Vec<usize> = (0..ops.len())
            .filter(|i| match info.iter().position(|j| j == i) {
                Some(bit) => mask & (1 << bit) != 0,
                None => true,
            })
            .collect();
        let mut placed = vec![false; ops.len()];
        if orders(
            model,
            &ops,
            &compiled,
            &included,
            &mut placed,
            &model.init(),
        ) {
            return true;
        }
    }
    false
}

fn orders<M: Model>(
    model: &M,
    ops: &[&Operation],
    compiled: &[M::Op],
    included: &[usize],
    placed: &mut [bool],
    state: &M::State,
) -> bool {
    let remaining: Vec<usize> = included.iter().copied().filter(|&i| !placed[i]).collect();
    if remaining.is_empty() {
        return true;
    }
    for &candidate in &remaining {
        // Real time: anything that returned before this call must already be placed.
        let ready = remaining.iter().all(|&other| {
            other == candidate
                || ops[other].outcome == Outcome::Info
                || ops[other].ret.is_none_or(|ret| ret > ops[candidate].call)
        });
        if !ready {
            continue;
        }
        if let Some(next) = model.step(state, &compiled[candidate]) {
            placed[candidate] = true;
            let found = orders(model, ops, compiled, included, placed, &next);
            placed[candidate] = false;
            if found {
                return true;
            }
        }
    }
    false
}

/// One scripted step: a process either invokes (if idle) or completes its open operation.
type Step = (u8, u8, i64, i64, u8);

/// Turns a script into a history with at most `max_ops` operations over `processes` processes.
fn history_from(script: &[Step], processes: u8, max_ops: usize, keyed: bool) -> Vec<Operation> {
    let mut events = Vec::new();
    let mut open: Vec<Option<(String, Value, Value)>> = vec![None; processes as usize];
    let mut started = 0;
    for &(p, kind, a, b, roll) in script {
        let p = p % processes;
        let key = if keyed {
            json!(format!("k{}", b % 2))
        } else {
            Value::Null
        };
        match open[p as usize].take() {
            None if started < max_ops => {
                let (f, input) = match kind % 3 {
                    0 => ("read", Value::Null),
                    1 => ("write", json!(a)),
                    _ => ("cas", json!([a, b])),
                };
                let (f, input) = match (keyed, f) {
                    (true, "read") => ("get", Value::Null),
                    (true, "write") => ("put", json!(a.to_string())),
                    (true, _) => ("append", json!(b.to_string())),
                    _ => (f, input),
                };
                let mut e = Event::client(u64::from(p), EventType::Invoke, f, input.clone());
                if keyed {
                    e = e.with_key(key.clone());
                }
                events.push(e);
                open[p as usize] = Some((f.to_string(), input, key));
                started += 1;
            }
            None => {}
            Some((f, input, key)) => {
                let outcome = match roll % 10 {
                    0..=6 => EventType::Ok,
                    7 => EventType::Fail,
                    _ => EventType::Info,
                };
                let value = match f.as_str() {
                    "read" if roll % 5 == 0 => Value::Null,
                    "read" => json!(a),
                    "get" => json!(["", "0", "1", "01", "10"][(a as usize) % 5]),
                    _ => input,
                };
                let mut e = Event::client(u64::from(p), outcome, &f, value);
                if keyed {
                    e = e.with_key(key);
                }
                events.push(e);
            }
        }
    }
    History::from_events(events).operations().unwrap()
}

fn options(failures: FailureSemantics, split: bool) -> CheckOptions {
    CheckOptions {
        failures,
        split_by_key: split,
        shrink: false,
        ..CheckOptions::default()
    }
}

fn script() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((0u8..4, 0u8..3, 0i64..3, 0i64..3, 0u8..10), 1..24)
}

fn agree<M: Model>(model: &M, ops: &[Operation], failures: FailureSemantics, split: bool) {
    let expected = brute_force(model, ops, failures);
    let result = check(model, ops, &options(failures, split)).unwrap();
    let got = result.valid == Verdict::Valid;
    assert_eq!(got, expected, "checker said {:?} on {ops:#?}", result.valid);
    if result.valid == Verdict::Invalid {
        let cx = result
            .counterexample
            .expect("invalid verdicts carry a counterexample");
        assert_eq!(cx.unplaceable.len(), 1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn cas_register_agrees_with_brute_force(s in script(), procs in 2u8..5) {
        let ops = history_from(&s, procs, 8, false);
        agree(&CasRegister::new(&json!(0)), &ops, FailureSemantics::DidNotHappen, true);
        agree(&CasRegister::new(&json!(0)), &ops, FailureSemantics::Observed, true);
    }

    #[test]
    fn kv_agrees_with_brute_force_whole_and_split(s in script(), procs in 2u8..5) {
        let ops = history_from(&s, procs, 8, true);
        agree(&KeyValue::new(&json!("")), &ops, FailureSemantics::DidNotHappen, false);
        agree(&KeyValue::new(&json!("")), &ops, FailureSemantics::DidNotHappen, true);
    }
}
