//! Small hand-made histories that pin down what `fail` and `info` mean.

use checkers::history::{Event, EventType, History, Operation};
use checkers::{check_model, CheckOptions, FailureSemantics, ModelKind, Verdict};
use serde_json::{json, Value};

fn ops(events: &[(u64, EventType, &str, Value)]) -> Vec<Operation> {
    let events = events
        .iter()
        .map(|(p, kind, f, v)| Event::client(*p, *kind, f, v.clone()))
        .collect();
    History::from_events(events).operations().unwrap()
}

fn verdict(kind: ModelKind, init: Value, ops: &[Operation], failures: FailureSemantics) -> Verdict {
    let options = CheckOptions {
        failures,
        ..CheckOptions::default()
    };
    check_model(kind, &init, ops, &options).unwrap().valid
}

use EventType::{Info, Invoke, Ok as Done};

#[test]
fn a_failed_cas_means_what_the_source_says() {
    // The register holds 0 throughout, so a CAS from 0 cannot have failed its compare.
    let history = ops(&[
        (0, Invoke, "cas", json!([0, 1])),
        (0, EventType::Fail, "cas", json!([0, 1])),
        (1, Invoke, "read", Value::Null),
        (1, Done, "read", json!(0)),
    ]);
    let cas = ModelKind::CasRegister;
    assert_eq!(
        verdict(cas, json!(0), &history, FailureSemantics::DidNotHappen),
        Verdict::Valid
    );
    assert_eq!(
        verdict(cas, json!(0), &history, FailureSemantics::Observed),
        Verdict::Invalid
    );
}

#[test]
fn an_indeterminate_operation_may_never_happen() {
    // The timed-out acquire cannot have happened at any point: before the release the lock is
    // held, and after the release it would block the final acquire. So it never happened.
    let history = ops(&[
        (0, Invoke, "acquire", Value::Null),
        (0, Done, "acquire", Value::Null),
        (1, Invoke, "acquire", Value::Null),
        (1, Info, "acquire", Value::Null),
        (0, Invoke, "release", Value::Null),
        (0, Done, "release", Value::Null),
        (2, Invoke, "acquire", Value::Null),
        (2, Done, "acquire", Value::Null),
    ]);
    let mutex = ModelKind::Mutex;
    assert_eq!(
        verdict(mutex, Value::Null, &history, FailureSemantics::DidNotHappen),
        Verdict::Valid
    );
}

#[test]
fn an_indeterminate_operation_may_take_effect_long_after_it_was_invoked() {
    // The write timed out early on, yet a read much later sees it.
    let history = ops(&[
        (0, Invoke, "write", json!(7)),
        (0, Info, "write", json!(7)),
        (1, Invoke, "read", Value::Null),
        (1, Done, "read", Value::Null),
        (1, Invoke, "read", Value::Null),
        (1, Done, "read", json!(7)),
    ]);
    let register = ModelKind::Register;
    assert_eq!(
        verdict(
            register,
            Value::Null,
            &history,
            FailureSemantics::DidNotHappen
        ),
        Verdict::Valid
    );
    // But a read that returned before the write was invoked cannot see it.
    let history = ops(&[
        (1, Invoke, "read", Value::Null),
        (1, Done, "read", json!(7)),
        (0, Invoke, "write", json!(7)),
        (0, Info, "write", json!(7)),
    ]);
    assert_eq!(
        verdict(
            register,
            Value::Null,
            &history,
            FailureSemantics::DidNotHappen
        ),
        Verdict::Invalid
    );
}

#[test]
fn time_and_memory_budgets_give_unknown() {
    // Many concurrent appends with a final read that matches none of their orders: proving that
    // needs an exhaustive search, which a tiny memory budget cuts short.
    let mut events = Vec::new();
    for p in 0..12u64 {
        events
            .push(Event::client(p, Invoke, "append", json!(format!("{p},"))).with_key(json!("k")));
    }
    for p in 0..12u64 {
        events.push(Event::client(p, Done, "append", json!(format!("{p},"))).with_key(json!("k")));
    }
    events.push(Event::client(99, Invoke, "get", Value::Null).with_key(json!("k")));
    events.push(Event::client(99, Done, "get", json!("nope")).with_key(json!("k")));
    let history = History::from_events(events).operations().unwrap();
    let options = CheckOptions {
        memory_limit: Some(64 << 10),
        shrink: false,
        ..CheckOptions::default()
    };
    let result = check_model(ModelKind::KeyValue, &json!(""), &history, &options).unwrap();
    assert_eq!(result.valid, Verdict::Unknown);
    assert!(result.reason.unwrap().contains("memory budget"));
    let options = CheckOptions {
        time_limit: Some(std::time::Duration::from_millis(1)),
        shrink: false,
        ..CheckOptions::default()
    };
    let result = check_model(ModelKind::KeyValue, &json!(""), &history, &options).unwrap();
    assert_eq!(result.valid, Verdict::Unknown);
    assert!(result.reason.unwrap().contains("time limit"));
}
