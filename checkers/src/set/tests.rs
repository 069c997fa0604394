use super::*;
use crate::{Event, EventType, History};
use serde_json::json;
use EventType::{Fail, Info, Invoke, Ok};

/// An event at `ms` milliseconds.
fn ev(process: u64, kind: EventType, f: &str, value: Value, ms: u64) -> Event {
    let mut e = Event::client(process, kind, f, value);
    e.time = Some(ms * 1_000_000);
    e
}

fn add(process: u64, element: Value, outcome: EventType, ms: u64) -> Vec<Event> {
    let invoke = ev(process, Invoke, "add", element.clone(), ms);
    vec![invoke, ev(process, outcome, "add", element, ms + 1)]
}

fn read(process: u64, elements: Value, ms: u64) -> Vec<Event> {
    let invoke = ev(process, Invoke, "read", Value::Null, ms);
    vec![invoke, ev(process, Ok, "read", elements, ms + 1)]
}

fn check(groups: Vec<Vec<Event>>) -> SetResult {
    let h = History::from_events(groups.concat());
    check_set(&h.operations().unwrap())
}

#[test]
fn all_acknowledged_present_is_valid() {
    let r = check(vec![
        add(0, json!(0), Ok, 10),
        add(1, json!(1), Ok, 20),
        add(0, json!(2), Ok, 30),
        add(1, json!(3), Fail, 40),
        read(0, json!([2, 0, 1]), 50),
    ]);
    assert!(r.valid && r.final_read && r.final_reads_after_adds);
    assert_eq!((r.attempted, r.acknowledged), (4, 3));
    assert_eq!(json!(r.ok), json!({"count": 3, "items": [0, 1, 2]}));
    assert_eq!(json!(r.adds), json!({"ok": 3, "fail": 1, "info": 0}));
    let summary = "all 3 acknowledged adds were in the final read (op 4 at 0.05 s) \
                   (4 attempted, 0 recovered)";
    assert_eq!(r.summary, summary);
}

#[test]
fn lost_acknowledged_add_carries_its_last_sighting() {
    let r = check(vec![
        add(0, json!(0), Ok, 1000),
        add(1, json!(1), Ok, 2000),
        read(2, json!([0, 1]), 3000),
        add(0, json!(2), Ok, 3500),
        read(1, json!([0]), 5000),
    ]);
    assert!(!r.valid);
    let lost = json!({"count": 2, "items": [
        {"element": 1, "add_op": 1, "acked_at": 2_001_000_000u64,
         "last_seen": {"op": 2, "process": 2, "time": 3_001_000_000u64}},
        {"element": 2, "add_op": 3, "acked_at": 3_501_000_000u64, "last_seen": null},
    ]});
    assert_eq!(json!(r.lost), lost);
    // The read concurrent with the last add is not a final read.
    assert_eq!(
        r.final_reads
            .items
            .iter()
            .map(|f| f.read.op)
            .collect::<Vec<_>>(),
        [4]
    );
    let start = "2 of 3 acknowledged adds lost (first: 1, last seen by op 2 at 3.00 s)";
    assert!(r.summary.starts_with(start), "{}", r.summary);
}

#[test]
fn unexpected_element_is_invalid() {
    let r = check(vec![
        add(0, json!(0), Ok, 1),
        read(0, json!([0, 99, "x"]), 5),
    ]);
    assert!(!r.valid);
    assert_eq!(r.unexpected.items, [json!(99), json!("x")]);
    let start = "2 unexpected elements (first: 99)";
    assert!(r.summary.starts_with(start), "{}", r.summary);
}

#[test]
fn duplicate_in_any_read_is_invalid() {
    let r = check(vec![
        add(0, json!(0), Ok, 1),
        add(0, json!(1), Info, 3),
        read(1, json!([0, 0, 0]), 2),
        read(0, json!([0, 1, 1, 0]), 10),
    ]);
    assert!(!r.valid);
    assert_eq!(r.duplicated.count, 2);
    let d = &r.duplicated.items[0];
    assert_eq!(
        (&d.element, d.first.op, d.copies, d.reads),
        (&json!(0), 2, 3, 2)
    );
    let start = "2 duplicated elements (first: 0, 3 copies in op 2)";
    assert!(r.summary.starts_with(start), "{}", r.summary);
}

#[test]
fn indeterminate_adds_are_recovered_when_present_and_fine_when_absent() {
    let r = check(vec![
        // Process 3's add never completes at all.
        vec![ev(3, Invoke, "add", json!(3), 0)],
        add(0, json!(0), Ok, 1),
        add(1, json!(1), Info, 2),
        add(2, json!(2), Info, 3),
        read(0, json!([0, 2, 3]), 10),
    ]);
    assert!(r.valid, "{}", r.summary);
    assert_eq!(json!(r.recovered), json!({"count": 2, "items": [2, 3]}));
    assert_eq!((r.ok.count, r.lost.count, r.adds.info), (3, 0, 3));
    assert!(r.summary.contains("2 recovered"), "{}", r.summary);
}

#[test]
fn no_final_read_cannot_be_checked() {
    let failed = vec![
        ev(1, Invoke, "read", Value::Null, 2),
        ev(1, Fail, "read", Value::Null, 3),
    ];
    let r = check(vec![add(0, json!(0), Ok, 1), failed]);
    assert!(r.valid && !r.final_read);
    let summary =
        "no ok read completed: the set could not be checked (1 adds attempted, 1 acknowledged)";
    assert_eq!(r.summary, summary);
    let empty = check_set(&[]);
    assert!(empty.valid && !empty.final_read && empty.final_reads_after_adds);
}

#[test]
fn without_a_read_after_all_adds_the_last_ok_read_stands_in() {
    // Add 1 is acknowledged only after the last read began: its absence proves nothing.
    let r = check(vec![
        add(0, json!(0), Ok, 1),
        vec![
            ev(1, Invoke, "add", json!(1), 3),
            ev(2, Invoke, "read", Value::Null, 4),
        ],
        vec![
            ev(1, Ok, "add", json!(1), 5),
            ev(2, Ok, "read", json!([0]), 6),
        ],
    ]);
    assert!(r.valid, "{}", r.summary);
    assert!(r.final_read && !r.final_reads_after_adds);
    assert_eq!(r.unsettled.items, [json!(1)]);
    assert!(
        r.summary.contains("the last ok read stood in"),
        "{}",
        r.summary
    );
}

#[test]
fn disagreeing_final_reads_are_each_reported() {
    let r = check(vec![
        add(0, json!(0), Ok, 1),
        add(1, json!(1), Info, 3),
        read(0, json!([0, 1]), 10),
        read(1, json!([1]), 12),
        read(2, json!([0]), 14),
    ]);
    assert!(!r.valid);
    assert_eq!((r.final_reads.count, r.lost.count), (3, 1));
    let divergences: Vec<(usize, &Vec<Value>)> = r
        .divergences
        .items
        .iter()
        .map(|d| (d.read.op, &d.missing.items))
        .collect();
    assert_eq!(divergences, [(3, &vec![json!(0)]), (4, &vec![json!(1)])]);
    assert!(
        r.summary.contains("2 final reads lacked elements"),
        "{}",
        r.summary
    );

    // Disagreement over an indeterminate element alone is reported but not invalid.
    let r = check(vec![
        add(1, json!(1), Info, 3),
        read(0, json!([1]), 10),
        read(1, json!([]), 12),
    ]);
    assert!(r.valid, "{}", r.summary);
    assert_eq!(r.divergences.count, 1);
}

#[test]
fn malformed_reads_and_structured_elements() {
    let r = check(vec![
        add(0, json!({"a": 1, "b": [2]}), Ok, 1),
        read(1, json!({"not": "a set"}), 5),
        read(0, json!([{"b": [2], "a": 1}]), 7),
    ]);
    assert!(!r.valid);
    let malformed = json!({"op": 1, "process": 1, "time": 6_000_000, "value": {"not": "a set"}});
    assert_eq!(
        json!(r.malformed_reads),
        json!({"count": 1, "items": [malformed]})
    );
    assert_eq!(
        (r.ok.count, r.unexpected.count),
        (1, 0),
        "key order makes no new element"
    );
    let start = "1 ok read not an array (first: op 1 at 0.01 s returned {\"not\":\"a set\"})";
    assert!(r.summary.starts_with(start), "{}", r.summary);
}

#[test]
fn lists_are_capped_but_counted() {
    let r = check(vec![read(0, json!((0..250).collect::<Vec<_>>()), 1)]);
    assert_eq!(r.unexpected.count, 250);
    assert_eq!(r.unexpected.items.len(), MAX_LISTED);
}
