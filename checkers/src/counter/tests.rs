use super::*;
use crate::{Event, EventType, History};
use proptest::prelude::*;
use serde_json::json;
use EventType::{Fail, Info, Invoke, Ok};

fn ev(process: u64, kind: EventType, f: &str, value: Value) -> Event {
    Event::client(process, kind, f, value).with_key(json!("c"))
}

fn check(events: Vec<Event>) -> CounterResult {
    check_counter(&History::from_events(events).operations().unwrap())
}

fn bounds(r: &CounterResult) -> Vec<(Option<i64>, i64, i64)> {
    (r.bad_reads.iter())
        .map(|b| (b.value, b.lower, b.upper))
        .collect()
}

#[test]
fn concurrent_adds_and_reads_are_valid() {
    let r = check(vec![
        ev(0, Invoke, "add", json!(1)),
        ev(1, Invoke, "read", Value::Null),
        ev(1, Ok, "read", json!(0)),
        ev(1, Invoke, "read", Value::Null),
        ev(1, Ok, "read", json!(1)),
        ev(0, Ok, "add", json!(1)),
        ev(2, Invoke, "add", json!(2)),
        ev(2, Ok, "add", json!(2)),
        ev(1, Invoke, "read", Value::Null),
        ev(1, Ok, "read", json!(3)),
    ]);
    assert!(r.valid, "{r:?}");
    assert_eq!((r.reads, r.adds, r.bad_read_count), (3, 2, 0));
    assert_eq!(r.reason, "all 3 reads within bounds");
}

#[test]
fn a_read_too_high() {
    let r = check(vec![
        ev(0, Invoke, "add", json!(1)),
        ev(0, Ok, "add", json!(1)),
        ev(1, Invoke, "read", Value::Null),
        ev(1, Ok, "read", json!(5)),
    ]);
    assert!(!r.valid);
    assert_eq!(bounds(&r), [(Some(5), 1, 1)]);
    assert_eq!(
        r.reason,
        "1 of 1 reads out of bounds; first: read 5 at index 2 outside [1, 1]"
    );
    assert_eq!(r.bad_reads[0].op.id, 1);
}

#[test]
fn a_read_too_low() {
    let r = check(vec![
        ev(0, Invoke, "add", json!(1)),
        ev(0, Ok, "add", json!(1)),
        ev(0, Invoke, "add", json!(1)),
        ev(1, Invoke, "read", Value::Null),
        ev(0, Ok, "add", json!(1)),
        ev(1, Ok, "read", json!(0)),
        ev(1, Invoke, "read", Value::Null),
        ev(1, Ok, "read", json!(1)),
    ]);
    assert!(!r.valid);
    // The second add is concurrent with the first read, certain before the second.
    assert_eq!(bounds(&r), [(Some(0), 1, 2), (Some(1), 2, 2)]);
    assert!(r
        .reason
        .starts_with("2 of 2 reads out of bounds; first: read 0 at index 3 outside [1, 2]"));
}

#[test]
fn info_adds_widen_the_upper_bound() {
    let r = check(vec![
        ev(0, Invoke, "add", json!(3)),
        ev(0, Info, "add", json!(3)),
        ev(1, Invoke, "read", Value::Null),
        ev(1, Ok, "read", json!(0)),
        ev(1, Invoke, "read", Value::Null),
        ev(1, Ok, "read", json!(3)),
        ev(1, Invoke, "read", Value::Null),
        ev(1, Ok, "read", json!(4)),
        // Never completed: may take effect at any time after its invocation.
        ev(2, Invoke, "add", json!(1)),
        ev(1, Invoke, "read", Value::Null),
        ev(1, Ok, "read", json!(4)),
    ]);
    assert_eq!(bounds(&r), [(Some(4), 0, 3)]);
}

#[test]
fn failed_adds_never_count() {
    let r = check(vec![
        ev(0, Invoke, "add", json!(5)),
        ev(0, Fail, "add", json!(5)),
        ev(1, Invoke, "read", Value::Null),
        ev(1, Ok, "read", json!(5)),
        ev(1, Invoke, "read", Value::Null),
        ev(1, Fail, "read", Value::Null),
    ]);
    assert_eq!((r.reads, r.adds), (1, 1));
    assert_eq!(bounds(&r), [(Some(5), 0, 0)]);
}

#[test]
fn negative_increments_lower_the_lower_bound() {
    let r = check(vec![
        ev(0, Invoke, "add", json!(-2)),
        ev(0, Ok, "add", json!(-2)),
        ev(0, Invoke, "add", json!(3)),
        ev(2, Invoke, "add", json!(-1)),
        ev(1, Invoke, "read", Value::Null),
        ev(1, Ok, "read", json!(-3)),
        ev(1, Invoke, "read", Value::Null),
        ev(1, Ok, "read", json!(1)),
        ev(1, Invoke, "read", Value::Null),
        ev(1, Ok, "read", json!(2)),
        ev(1, Invoke, "read", Value::Null),
        ev(1, Ok, "read", json!(-4)),
    ]);
    assert_eq!(bounds(&r), [(Some(2), -3, 1), (Some(-4), -3, 1)]);
}

#[test]
fn non_integer_reads_and_adds_are_reported() {
    let r = check(vec![
        ev(1, Invoke, "read", Value::Null),
        ev(1, Ok, "read", json!("x")),
        ev(0, Invoke, "add", json!(1.5)),
        ev(0, Ok, "add", json!(1.5)),
        ev(0, Invoke, "add", json!("y")),
        ev(0, Fail, "add", json!("y")),
    ]);
    assert!(!r.valid);
    assert_eq!(bounds(&r), [(None, 0, 0)]);
    assert_eq!(
        r.bad_reads[0].message,
        "read \"x\" at index 0 is not an integer"
    );
    assert_eq!(
        r.malformed_adds.len(),
        1,
        "a failed add's increment does not matter"
    );
    assert_eq!(
        r.reason,
        "1 of 1 reads bad (0 out of bounds, 1 not an integer); first: read \"x\" at index 0 is \
         not an integer; 1 adds with a non-integer increment; first: 1.5 at index 2"
    );
    let j = json!(r);
    assert_eq!(j["bad_reads"][0]["value"], Value::Null);
    assert_eq!(j["bad_reads"][0]["op"]["f"], "read");
}

#[test]
fn nothing_to_check_without_ok_reads() {
    let r = check(vec![
        ev(0, Invoke, "add", json!(1)),
        ev(0, Ok, "add", json!(1)),
    ]);
    assert!(r.valid);
    assert_eq!(r.reason, "no read completed ok: nothing to check");
}

/// Reference: some subset of the possible adds, on top of the definite ones, sums to the read.
fn brute_force_bad(ops: &[Operation]) -> Vec<usize> {
    let adds: Vec<&Operation> = (ops.iter())
        .filter(|op| op.f == "add" && op.outcome != Outcome::Fail)
        .collect();
    let reads = ops
        .iter()
        .filter(|op| op.f == "read" && op.outcome == Outcome::Ok);
    let mut bad = Vec::new();
    for read in reads {
        let ret = read.ret.unwrap();
        let definite = |a: &&&Operation| a.outcome == Outcome::Ok && a.ret.unwrap() < read.call;
        let base: i64 = adds
            .iter()
            .filter(definite)
            .map(|a| a.input.as_i64().unwrap())
            .sum();
        let possible: Vec<i64> = (adds.iter())
            .filter(|a| !definite(a) && a.call < ret)
            .map(|a| a.input.as_i64().unwrap())
            .collect();
        let value = read.output.as_i64().unwrap();
        let reachable = (0..1u32 << possible.len()).any(|mask| {
            let chosen = (0..possible.len()).filter(|i| mask & (1 << i) != 0);
            base + chosen.map(|i| possible[i]).sum::<i64>() == value
        });
        if !reachable {
            bad.push(read.id);
        }
    }
    bad.sort_unstable();
    bad
}

/// One op: add or read, outcome (ok, fail, info, never completed), ±1 or the value read, and
/// two moments that order its invocation and completion among the others'.
type Spec = (bool, u8, bool, i64, u8, u8);

fn history(specs: &[Spec]) -> History {
    let mut moments: Vec<((u8, u8, usize), Event)> = Vec::new();
    for (i, &(is_add, outcome, up, read, a, b)) in specs.iter().enumerate() {
        let (f, input) = if is_add {
            ("add", json!(if up { 1 } else { -1 }))
        } else {
            ("read", Value::Null)
        };
        let p = i as u64;
        moments.push(((a.min(b), 0, i), ev(p, Invoke, f, input.clone())));
        let output = if is_add { input } else { json!(read) };
        let kind = [Ok, Fail, Info, Invoke][outcome as usize];
        if kind != Invoke {
            let value = if kind == Ok { output } else { Value::Null };
            moments.push(((a.max(b), 1, i), ev(p, kind, f, value)));
        }
    }
    moments.sort_by_key(|(at, _)| *at);
    History::from_events(moments.into_iter().map(|(_, e)| e).collect())
}

proptest! {
    /// With ±1 increments every integer between the bounds is reachable, so the interval
    /// check must agree exactly with trying every subset.
    #[test]
    fn interval_agrees_with_subset_sums(
        specs in prop::collection::vec(
            (any::<bool>(), 0u8..4, any::<bool>(), -3i64..5, 0u8..12, 0u8..12),
            0..=6,
        )
    ) {
        let ops = history(&specs).operations().unwrap();
        let result = check_counter(&ops);
        let mut found: Vec<usize> = result.bad_reads.iter().map(|b| b.op.id).collect();
        found.sort_unstable();
        prop_assert_eq!(&found, &brute_force_bad(&ops));
        prop_assert_eq!(result.valid, found.is_empty());
    }
}
