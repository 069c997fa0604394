//! The checker against a brute-force reference: on small random histories, try every order of
//! every subset of indeterminate operations that respects real time, and compare verdicts.

use checkers::history::{Event, EventType, History, Operation, Outcome};
use checkers::model::{
    Counter, FifoQueue, KeyValue, KeyValueByKey, Model, MultiRegister, Mutex, Register, SetModel,
};
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

/// How a model's operations are drawn: `(kind, a, b)` to a function, key and input, and
/// `(function, input, a, roll)` to the value an `ok` completion returns.
/// A function, an optional key, and an input.
type Invocation = (&'static str, Option<Value>, Value);

struct Ops {
    invoke: fn(u8, i64, i64) -> Invocation,
    output: fn(&str, &Value, i64, u8) -> Value,
}

/// Turns a script into a history with at most `max_ops` operations over `processes` processes.
fn history_from(script: &[Step], processes: u8, max_ops: usize, ops: &Ops) -> Vec<Operation> {
    let mut events = Vec::new();
    let mut open: Vec<Option<Invocation>> = vec![None; processes as usize];
    let mut started = 0;
    for &(p, kind, a, b, roll) in script {
        let p = p % processes;
        match open[p as usize].take() {
            None if started < max_ops => {
                let (f, key, input) = (ops.invoke)(kind, a, b);
                let mut e = Event::client(u64::from(p), EventType::Invoke, f, input.clone());
                e.key = key.clone();
                events.push(e);
                open[p as usize] = Some((f, key, input));
                started += 1;
            }
            None => {}
            Some((f, key, input)) => {
                let outcome = match roll % 10 {
                    0..=6 => EventType::Ok,
                    7 => EventType::Fail,
                    _ => EventType::Info,
                };
                let value = (ops.output)(f, &input, a, roll);
                let mut e = Event::client(u64::from(p), outcome, f, value);
                e.key = key;
                events.push(e);
            }
        }
    }
    History::from_events(events).operations().unwrap()
}

const CAS_REGISTER: Ops = Ops {
    invoke: |kind, a, b| match kind % 3 {
        0 => ("read", None, Value::Null),
        1 => ("write", None, json!(a)),
        _ => ("cas", None, json!([a, b])),
    },
    output: |f, input, a, roll| match f {
        "read" if roll % 5 == 0 => Value::Null,
        "read" => json!(a),
        _ => input.clone(),
    },
};

const KV: Ops = Ops {
    invoke: |kind, a, b| {
        let key = Some(json!(format!("k{}", b % 2)));
        match kind % 3 {
            0 => ("get", key, Value::Null),
            1 => ("put", key, json!(a.to_string())),
            _ => ("append", key, json!(b.to_string())),
        }
    },
    output: |f, input, a, _| match f {
        "get" => json!(["", "0", "1", "01", "10"][(a as usize) % 5]),
        _ => input.clone(),
    },
};

const MUTEX: Ops = Ops {
    invoke: |kind, _, _| match kind % 2 {
        0 => ("acquire", None, Value::Null),
        _ => ("release", None, Value::Null),
    },
    output: |_, _, _, _| Value::Null,
};

const QUEUE: Ops = Ops {
    invoke: |kind, a, _| match kind % 2 {
        0 => ("enqueue", None, json!(a)),
        _ => ("dequeue", None, Value::Null),
    },
    output: |f, input, a, roll| match f {
        "dequeue" if roll % 4 == 0 => Value::Null,
        "dequeue" => json!(a),
        _ => input.clone(),
    },
};

const SET: Ops = Ops {
    invoke: |kind, a, _| match kind % 2 {
        0 => ("add", None, json!(a)),
        _ => ("read", None, Value::Null),
    },
    output: |f, input, a, roll| match f {
        "read" => {
            let all = [0, 1, 2];
            json!(all
                .iter()
                .filter(|&&x| (a + i64::from(roll)) & (1 << x) != 0)
                .collect::<Vec<_>>())
        }
        _ => input.clone(),
    },
};

/// Transactions of one or two micro-operations over registers "x" and "y".
const MULTI_REGISTER: Ops = Ops {
    invoke: |kind, a, b| {
        let register = |n: i64| if n % 2 == 0 { "x" } else { "y" };
        let txn = match kind % 3 {
            0 => json!([["read", register(a), null]]),
            1 => json!([["write", register(b), a]]),
            _ => json!([["read", register(b), null], ["write", register(a), b]]),
        };
        ("txn", None, txn)
    },
    output: |_, input, a, roll| {
        let micro_ops = input.as_array().unwrap().iter().map(|m| {
            let (f, k) = (m[0].clone(), m[1].clone());
            match f.as_str() {
                Some("read") if roll % 3 == 0 => json!([f, k, null]),
                Some("read") => json!([f, k, a]),
                _ => m.clone(),
            }
        });
        Value::Array(micro_ops.collect())
    },
};

const COUNTER: Ops = Ops {
    invoke: |kind, a, _| match kind % 2 {
        0 => ("add", None, json!(a)),
        _ => ("read", None, Value::Null),
    },
    output: |f, input, a, roll| match f {
        "read" => json!(a + i64::from(roll % 3)),
        _ => input.clone(),
    },
};

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

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(600)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn cas_register_agrees_with_brute_force(s in script(), procs in 2u8..5) {
        let ops = history_from(&s, procs, 8, &CAS_REGISTER);
        agree(&Register::with_cas(&json!(0)), &ops, FailureSemantics::DidNotHappen, true);
        agree(&Register::with_cas(&json!(0)), &ops, FailureSemantics::Observed, true);
    }

    #[test]
    fn kv_agrees_with_brute_force_whole_and_split(s in script(), procs in 2u8..5) {
        let ops = history_from(&s, procs, 8, &KV);
        agree(&KeyValue::new(&json!("")), &ops, FailureSemantics::DidNotHappen, false);
        agree(&KeyValue::new(&json!("")), &ops, FailureSemantics::DidNotHappen, true);
        agree(&KeyValue::new(&json!("")), &ops, FailureSemantics::Observed, true);
        // The one-key model a split check uses, against the whole map replayed by brute force.
        for failures in [FailureSemantics::DidNotHappen, FailureSemantics::Observed] {
            let expected = brute_force(&KeyValue::new(&json!("")), &ops, failures);
            let result = check(&KeyValueByKey::new(&json!("")), &ops, &options(failures, true)).unwrap();
            prop_assert_eq!(result.valid == Verdict::Valid, expected, "{:#?}", ops);
        }
    }

    #[test]
    fn other_models_agree_with_brute_force(s in script(), procs in 2u8..5) {
        for failures in [FailureSemantics::DidNotHappen, FailureSemantics::Observed] {
            agree(&Mutex::new(&Value::Null).unwrap(), &history_from(&s, procs, 8, &MUTEX), failures, true);
            agree(&FifoQueue::new(&Value::Null).unwrap(), &history_from(&s, procs, 8, &QUEUE), failures, true);
            agree(&SetModel::new(&Value::Null).unwrap(), &history_from(&s, procs, 8, &SET), failures, true);
            agree(&Counter::new(&Value::Null).unwrap(), &history_from(&s, procs, 8, &COUNTER), failures, true);
            let multi = MultiRegister::new(&json!(0)).unwrap();
            agree(&multi, &history_from(&s, procs, 8, &MULTI_REGISTER), failures, true);
        }
    }
}
