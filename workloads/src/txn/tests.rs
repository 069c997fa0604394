use super::*;
use crate::generator::sim::{invocations, simulate, SimConfig, SimEvent};
use crate::generator::{phases, time_limit};
use std::collections::BTreeMap;

const MS: Duration = Duration::from_millis(1);

fn shape(workload: TxnWorkload) -> TxnShape {
    TxnShape {
        workload,
        min_ops: 1,
        max_ops: 4,
        keys_per_window: 3,
        writes_per_key: 8,
    }
}

/// A simulated second of transactions, then the final reads; `respond` as in `simulate`.
fn run(
    shape: TxnShape,
    respond: impl FnMut(u64, &OpTemplate) -> (Duration, Outcome),
) -> Vec<SimEvent> {
    let (main, finals) = txn_workload(shape);
    let mut plan = phases(vec![
        time_limit(Duration::from_secs(1), main).boxed(),
        finals.boxed(),
    ]);
    let cfg = SimConfig {
        concurrency: 4,
        seed: 9,
        max_steps: 1_000_000,
    };
    simulate(&mut plan, &cfg, respond).unwrap()
}

fn mops(op: &OpTemplate) -> Vec<(String, i64, Value)> {
    assert_eq!(op.f, "txn");
    assert!(op.key.is_none());
    (op.value.as_array().unwrap().iter())
        .map(|m| {
            let m = m.as_array().unwrap();
            assert_eq!(m.len(), 3);
            (
                m[0].as_str().unwrap().to_string(),
                m[1].as_i64().unwrap(),
                m[2].clone(),
            )
        })
        .collect()
}

#[test]
fn values_are_unique_and_increasing_per_key_and_keys_rotate() {
    for (workload, write_f) in [
        (TxnWorkload::ListAppend, "append"),
        (TxnWorkload::RwRegister, "w"),
    ] {
        let events = run(shape(workload), |_, _| (2 * MS, Outcome::Ok));
        let ops: Vec<_> = invocations(&events).map(|e| e.op.clone()).collect();
        let mut written: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        let (mut reads, mut writes, mut sizes) = (0, 0, BTreeSet::new());
        let mut main = 0;
        for op in &ops {
            let m = mops(op);
            if m.iter().all(|(f, _, _)| f == "r") && m.len() > 4 {
                break; // the final reads
            }
            main += 1;
            sizes.insert(m.len());
            for (f, key, value) in m {
                if f == "r" {
                    assert!(value.is_null());
                    reads += 1;
                } else {
                    assert_eq!(f, write_f);
                    written
                        .entry(key)
                        .or_default()
                        .push(value.as_i64().unwrap());
                    writes += 1;
                }
            }
        }
        assert!(main > 1000, "{main} transactions");
        assert_eq!(sizes, BTreeSet::from([1, 2, 3, 4]));
        let share = reads as f64 / (reads + writes) as f64;
        assert!(
            (0.45..0.55).contains(&share),
            "{reads} reads, {writes} writes"
        );
        for (key, values) in &written {
            // 1, 2, 3, ... in invocation order: unique, and at most writes_per_key of them.
            let expected: Vec<i64> = (1..=values.len() as i64).collect();
            assert_eq!(values, &expected, "key {key}");
            assert!(values.len() <= 8, "key {key} took {} writes", values.len());
        }
        // Keys retire and fresh ones enter: far more keys than the window over a second.
        assert!(written.len() > 20, "{} keys", written.len());
        assert!(written.values().filter(|v| v.len() == 8).count() > 10);
    }
}

#[test]
fn final_reads_read_every_written_key_once() {
    let events = run(shape(TxnWorkload::ListAppend), |_, _| (2 * MS, Outcome::Ok));
    let ops: Vec<_> = invocations(&events).map(|e| e.op.clone()).collect();
    let mut written = BTreeSet::new();
    let mut final_keys = Vec::new();
    let mut finals = 0;
    for op in &ops {
        let m = mops(op);
        if finals > 0 || (m.len() > 4) {
            finals += 1;
            assert!(m.len() <= FINAL_READ_KEYS);
            for (f, key, _) in m {
                assert_eq!(f, "r");
                final_keys.push(key);
            }
        } else {
            written.extend(m.iter().filter(|(f, _, _)| f != "r").map(|(_, k, _)| *k));
        }
    }
    assert!(finals >= 2, "{finals} final reads");
    let unique: BTreeSet<i64> = final_keys.iter().copied().collect();
    assert_eq!(unique.len(), final_keys.len(), "each key read once");
    assert_eq!(unique, written);
}

#[test]
fn a_failed_final_read_is_tried_again_until_ok_or_out_of_attempts() {
    // One key only, so there is one final read: [["r",0,null]].
    let tiny = TxnShape {
        keys_per_window: 1,
        writes_per_key: 1000,
        ..shape(TxnWorkload::RwRegister)
    };
    let main_for = Duration::from_millis(50);
    // Final reads are the invocations after the main phase's time limit.
    let finals = |failures: u32| {
        let (main, finals) = txn_workload(tiny);
        let mut plan = phases(vec![time_limit(main_for, main).boxed(), finals.boxed()]);
        let cfg = SimConfig {
            concurrency: 2,
            seed: 1,
            max_steps: 100_000,
        };
        // The main phase is the same in every run (same seed, same answers): count it once.
        let all_ok = simulate(&mut plan, &cfg, |_, _| (MS, Outcome::Ok)).unwrap();
        let main_ops = invocations(&all_ok).filter(|e| e.time < main_for).count() as u64;
        let (main, final_reads) = txn_workload(tiny);
        let mut plan = phases(vec![
            time_limit(main_for, main).boxed(),
            final_reads.boxed(),
        ]);
        let mut failed = 0;
        let events = simulate(&mut plan, &cfg, |n, _| {
            if n >= main_ops && failed < failures {
                failed += 1;
                return (MS, Outcome::Fail);
            }
            (MS, Outcome::Ok)
        })
        .unwrap();
        invocations(&events)
            .filter(|e| e.time >= main_for)
            .map(|e| (e.time, e.op.value.clone()))
            .collect::<Vec<_>>()
    };
    let reads = finals(0);
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].1, json!([["r", 0, null]]));
    let reads = finals(2);
    assert_eq!(reads.len(), 3, "two failures, then ok: {reads:?}");
    assert!(reads[1].0 - reads[0].0 >= FINAL_READ_RETRY);
    let reads = finals(u32::MAX);
    assert_eq!(reads.len(), FINAL_READ_ATTEMPTS as usize);
}

#[test]
fn bad_shapes_are_named() {
    let good = shape(TxnWorkload::ListAppend);
    assert_eq!(good.problem(), None);
    let bad = TxnShape { max_ops: 0, ..good };
    assert!(bad.problem().unwrap().contains("txn_max_ops"));
    let bad = TxnShape {
        writes_per_key: 0,
        ..good
    };
    assert!(bad.problem().unwrap().contains("txn_writes_per_key"));
}
