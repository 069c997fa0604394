use super::*;
use crate::{Event, EventType, History};
use proptest::prelude::*;
use serde_json::json;

/// A completed operation; `ms` is its completion time.
fn op(id: usize, f: &str, input: Value, outcome: Outcome, output: Value, ms: u64) -> Operation {
    Operation {
        id,
        process: id as u64 % 5,
        f: f.to_string(),
        key: None,
        input,
        outcome,
        output,
        call: 2 * id,
        ret: Some(2 * id + 1),
        invoke_index: 2 * id as u64,
        complete_index: Some(2 * id as u64 + 1),
        call_time: Some((ms * 1_000_000).saturating_sub(500_000)),
        return_time: Some(ms * 1_000_000),
        node: None,
        error: None,
    }
}

fn read(id: usize, balances: Value, ms: u64) -> Operation {
    op(id, "read", Value::Null, Outcome::Ok, balances, ms)
}

fn transfer(id: usize, outcome: Outcome, ms: u64) -> Operation {
    let input = json!({"from": "a0", "to": "a1", "amount": 5});
    op(id, "transfer", input, outcome, Value::Null, ms)
}

fn check(ops: &[Operation]) -> BankResult {
    check_bank(ops, &BankOptions::numbered(3, 10))
}

#[test]
fn conserved_totals_are_valid() {
    let r = check(&[
        read(0, json!({"a0": 10, "a1": 10, "a2": 10}), 1),
        transfer(1, Outcome::Ok, 2),
        read(2, json!({"a0": 5, "a1": 15, "a2": 10}), 3),
        transfer(3, Outcome::Fail, 4),
        op(4, "read", Value::Null, Outcome::Fail, Value::Null, 5),
    ]);
    assert!(r.valid, "{}", r.summary);
    assert_eq!((r.checked_reads, r.expected_total), (2, 30));
    assert_eq!(json!(r.reads), json!({"ok": 2, "fail": 1, "info": 0}));
    assert_eq!(json!(r.totals), json!([{"total": 30, "reads": 2}]));
    let summary = "all 2 reads saw the 3 accounts summing to 30 with no negative balance \
                   (2 transfers: 1 ok, 1 fail, 0 info)";
    assert_eq!(r.summary, summary);
}

#[test]
fn lost_money_is_invalid_with_first_and_worst() {
    let r = check(&[
        read(0, json!({"a0": 10, "a1": 10, "a2": 10}), 1),
        read(1, json!({"a0": 10, "a1": 8, "a2": 10}), 4210),
        read(2, json!({"a0": 0, "a1": 8, "a2": 10}), 5000),
        read(3, json!({"a0": 10, "a1": 12, "a2": 10}), 6000),
    ]);
    assert!(!r.valid);
    assert_eq!((r.bad_read_count, r.error_counts["wrong-total"]), (3, 3));
    let (first, worst) = (r.first_bad.as_ref().unwrap(), r.worst_bad.as_ref().unwrap());
    assert_eq!((first.op, first.found_total, worst.op), (1, Some(28), 2));
    let totals = json!([[18, 1], [28, 1], [30, 1], [32, 1]]);
    let seen: Vec<(i128, usize)> = r.totals.iter().map(|t| (t.total, t.reads)).collect();
    assert_eq!(json!(seen), totals);
    let summary = "3 of 4 reads broke the invariant (3 wrong total); first: op 1 at 4.21 s \
                   saw total 28, expected 30; worst: op 2 at 5.00 s saw total 18, expected 30";
    assert_eq!(r.summary, summary);
}

#[test]
fn torn_snapshot_shows_as_wrong_total() {
    // The read saw the debit of the transfer but not its credit.
    let t = json!({"from": "a0", "to": "a1", "amount": 5});
    let seen = json!({"a0": 5, "a1": 10, "a2": 10});
    let h = History::from_events(vec![
        Event::client(0, EventType::Invoke, "transfer", t.clone()),
        Event::client(1, EventType::Invoke, "read", Value::Null),
        Event::client(0, EventType::Ok, "transfer", t),
        Event::client(1, EventType::Ok, "read", seen.clone()),
    ]);
    let r = check(&h.operations().unwrap());
    assert!(!r.valid);
    let bad = json!({"op": 1, "process": 1, "time": null, "balances": seen,
        "errors": [{"kind": "wrong-total", "expected": 30, "found": 25}],
        "expected_total": 30, "found_total": 25});
    assert_eq!(json!(r.bad_reads), json!([bad]));
    assert_eq!(r.transfers.ok, 1);
}

#[test]
fn negative_balance_is_a_finding_unless_allowed() {
    let ops = [read(0, json!({"a0": -5, "a1": 25, "a2": 10}), 1)];
    let r = check(&ops);
    assert!(!r.valid);
    assert_eq!(r.bad_reads[0].found_total, Some(30));
    let error = json!([{"kind": "negative-balance", "balances": {"a0": -5}}]);
    assert_eq!(json!(r.bad_reads[0].errors), error);
    assert!(
        r.summary.contains("saw negative balance a0 = -5"),
        "{}",
        r.summary
    );
    let allowed = BankOptions {
        allow_negative: true,
        ..BankOptions::numbered(3, 10)
    };
    let r = check_bank(&ops, &allowed);
    assert!(r.valid && !r.summary.contains("negative"), "{}", r.summary);
}

#[test]
fn missing_and_unexpected_accounts() {
    // The total is right, yet the read does not show the bank.
    let r = check(&[read(0, json!({"a0": 10, "a1": 20, "zz": 0}), 1)]);
    assert!(!r.valid);
    let errors = json!([{"kind": "missing-accounts", "accounts": ["a2"]},
        {"kind": "unexpected-accounts", "accounts": ["zz"]}]);
    assert_eq!(json!(r.bad_reads[0].errors), errors);
    let part = "did not show a2 and showed unknown zz";
    assert!(r.summary.contains(part), "{}", r.summary);
}

#[test]
fn wrong_shaped_values_are_findings() {
    let r = check(&[
        read(0, json!([10, 10, 10]), 1),
        read(1, Value::Null, 2),
        read(2, json!({"a0": "10", "a1": 10.5, "a2": 10}), 3),
        read(3, json!({"a0": 10, "a1": 10, "a2": u64::MAX}), 4),
    ]);
    assert!(!r.valid && r.totals.is_empty());
    let errors: Vec<Value> = r.bad_reads.iter().map(|b| json!(b.errors)).collect();
    let expected = [
        json!([{"kind": "not-a-map", "found": "an array"}]),
        json!([{"kind": "not-a-map", "found": "null"}]),
        json!([{"kind": "not-an-integer", "balances": {"a0": "10", "a1": 10.5}}]),
        json!([{"kind": "not-an-integer", "balances": {"a2": u64::MAX}}]),
    ];
    assert_eq!(errors, expected);
    assert_eq!(r.bad_reads[2].found_total, None);
    assert!(
        r.summary.contains("op 0 at 0.00 s saw an array, not a map"),
        "{}",
        r.summary
    );
}

#[test]
fn info_transfers_and_reads_are_fine() {
    let r = check(&[
        transfer(0, Outcome::Info, 1),
        op(1, "read", Value::Null, Outcome::Info, Value::Null, 2),
        read(2, json!({"a0": 5, "a1": 15, "a2": 10}), 3),
    ]);
    assert!(r.valid, "{}", r.summary);
    assert_eq!(r.checked_reads, 1);
    assert_eq!(json!(r.transfers), json!({"ok": 0, "fail": 0, "info": 1}));
    assert!(
        r.summary.contains("1 transfers: 0 ok, 0 fail, 1 info"),
        "{}",
        r.summary
    );
}

#[test]
fn empty_history_or_no_ok_read_checks_nothing() {
    let failed = op(1, "read", Value::Null, Outcome::Fail, json!("garbage"), 2);
    for ops in [vec![], vec![transfer(0, Outcome::Ok, 1), failed]] {
        let r = check(&ops);
        assert!(r.valid && r.checked_reads == 0);
        let start = "no read completed: nothing to check";
        assert!(r.summary.starts_with(start), "{}", r.summary);
    }
}

#[test]
fn huge_totals_serialize() {
    let r = check(&[read(0, json!({"a0": i64::MAX, "a1": i64::MAX, "a2": 0}), 1)]);
    assert!(!r.valid);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(
        (&v["totals"][0]["total"], &v["expected_total"]),
        (&json!("18446744073709551614"), &json!(30))
    );
}

/// Applies the transfers the model allows (no overdraft), with a snapshot after some.
fn simulate(accounts: usize, initial: i64, steps: &[(usize, usize, i64, bool)]) -> Vec<Operation> {
    let mut balances = vec![initial; accounts];
    let mut ops = Vec::new();
    for (i, &(from, to, amount, read_after)) in steps.iter().enumerate() {
        let (from, to, ms) = (from % accounts, to % accounts, 2 * i as u64 + 1);
        let outcome = if balances[from] >= amount {
            Outcome::Ok
        } else {
            Outcome::Fail
        };
        if outcome == Outcome::Ok {
            balances[from] -= amount;
            balances[to] += amount;
        }
        let input = json!({"from": format!("a{from}"), "to": format!("a{to}"), "amount": amount});
        ops.push(op(ops.len(), "transfer", input, outcome, Value::Null, ms));
        if read_after {
            let snapshot = balances
                .iter()
                .enumerate()
                .map(|(a, b)| (format!("a{a}"), json!(b)));
            ops.push(read(ops.len(), Value::Object(snapshot.collect()), ms + 1));
        }
    }
    ops
}

proptest! {
    #[test]
    fn model_snapshots_check_valid_and_perturbed_ones_do_not(
        accounts in 1usize..6,
        initial in 0i64..100,
        steps in prop::collection::vec((0usize..6, 0usize..6, 0i64..60, any::<bool>()), 1..40),
        pick in any::<prop::sample::Index>(),
        account in 0usize..6,
        delta in prop_oneof![-50i64..0, 1i64..50],
    ) {
        let mut ops = simulate(accounts, initial, &steps);
        let options = BankOptions::numbered(accounts, initial);
        let r = check_bank(&ops, &options);
        prop_assert!(r.valid, "{}", r.summary);

        let reads: Vec<usize> = ops.iter().filter(|o| o.f == "read").map(|o| o.id).collect();
        prop_assume!(!reads.is_empty());
        let target = reads[pick.index(reads.len())];
        let name = format!("a{}", account % accounts);
        let balance = ops[target].output[&name].as_i64().unwrap();
        ops[target].output[&name] = json!(balance + delta);
        let r = check_bank(&ops, &options);
        prop_assert!(!r.valid);
        prop_assert_eq!(r.bad_read_count, 1);
        prop_assert_eq!(r.first_bad.unwrap().op, target);
    }
}
