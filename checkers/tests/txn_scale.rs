//! The isolation checker at scale: a strict-serializable list-append history of many
//! transactions (concurrent processes, keys retired after 32 appends as in Elle's generator)
//! with one planted G-single, which must be found within the budget.
//!
//! `cargo test --release -p checkers --test txn_scale -- --ignored --nocapture`
//! (`TXN_SCALE=1000000` for the full million; the default is smaller).

use std::time::Instant;

use checkers::txn::{
    check_txn, AnomalyKind, ConsistencyModel, Mop, ReadValue, Txn, TxnCheckOptions, TxnHistory,
    TxnWorkload,
};
use checkers::{Outcome, Verdict};

/// A small deterministic generator (xorshift), so the history is the same every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Transactions take effect at their completion, between invocation and completion: strict
/// serializable by construction.
fn history(n: usize, processes: usize) -> TxnHistory {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut store: Vec<Vec<i64>> = Vec::new();
    let mut active: Vec<usize> = (0..8).collect();
    store.resize(8, Vec::new());
    let mut next_key = 8;
    let mut open: Vec<Option<usize>> = vec![None; processes];
    let mut txns: Vec<Txn> = Vec::with_capacity(n);
    let mut position = 0usize;
    let mut done = 0;
    while done < n {
        let p = rng.below(processes as u64) as usize;
        match open[p] {
            None if txns.len() < n => {
                let len = 1 + rng.below(4) as usize;
                let mops = (0..len)
                    .map(|_| {
                        let key = active[rng.below(active.len() as u64) as usize] as i64;
                        if rng.below(2) == 0 {
                            Mop::Append { key, value: 0 }
                        } else {
                            Mop::Read {
                                key,
                                value: ReadValue::Unknown,
                            }
                        }
                    })
                    .collect();
                open[p] = Some(txns.len());
                txns.push(Txn {
                    id: txns.len(),
                    process: p as u64,
                    outcome: Outcome::Ok,
                    mops,
                    call: position,
                    ret: None,
                    invoke_index: position as u64,
                    complete_index: None,
                });
                position += 1;
            }
            None => {}
            Some(t) => {
                for mop in &mut txns[t].mops {
                    match mop {
                        Mop::Append { key, value } => {
                            let list = &mut store[*key as usize];
                            *value = list.len() as i64 + 1;
                            list.push(*value);
                        }
                        Mop::Read { key, value } => {
                            *value = ReadValue::List(store[*key as usize].clone());
                        }
                        Mop::Write { .. } => unreachable!(),
                    }
                }
                for slot in 0..active.len() {
                    if store[active[slot]].len() >= 32 {
                        active[slot] = next_key;
                        store.push(Vec::new());
                        next_key += 1;
                    }
                }
                txns[t].ret = Some(position);
                txns[t].complete_index = Some(position as u64);
                position += 1;
                open[p] = None;
                done += 1;
            }
        }
    }
    txns.sort_by_key(|t| t.call);
    txns.iter_mut().enumerate().for_each(|(i, t)| t.id = i);
    TxnHistory {
        key_names: Default::default(),
        workload: TxnWorkload::ListAppend,
        txns,
    }
}

/// Plants a G-single: a transaction W appends to keys x and y; a later T reads both, seeing W
/// on y but not on x (its read of x is cut just before W's element).
fn plant(h: &mut TxnHistory) -> (usize, usize) {
    let half = h.txns.len() / 2;
    for w in half..h.txns.len() {
        let appends: Vec<(i64, i64)> = h.txns[w]
            .mops
            .iter()
            .filter_map(|m| match m {
                Mop::Append { key, value } => Some((*key, *value)),
                _ => None,
            })
            .collect();
        let Some(&(x, ex)) = appends.first() else {
            continue;
        };
        let Some(&(y, ey)) = appends.iter().find(|(k, _)| *k != x) else {
            continue;
        };
        for t in w + 1..h.txns.len() {
            let sees = |k: i64, e: i64, m: &Mop| matches!(m, Mop::Read { key, value: ReadValue::List(l) } if *key == k && l.contains(&e));
            let mops = &h.txns[t].mops;
            if mops.iter().any(|m| sees(x, ex, m)) && mops.iter().any(|m| sees(y, ey, m)) {
                for m in &mut h.txns[t].mops {
                    if let Mop::Read {
                        key,
                        value: ReadValue::List(l),
                    } = m
                    {
                        if *key == x {
                            let cut = l.iter().position(|e| *e == ex).unwrap();
                            l.truncate(cut);
                        }
                    }
                }
                return (w, t);
            }
        }
    }
    panic!("no place to plant a G-single");
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

#[test]
#[ignore = "scale test: run in release with --ignored"]
fn a_planted_g_single_among_many_transactions() {
    let n: usize = std::env::var("TXN_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let started = Instant::now();
    let mut h = history(n, 10);
    let (w, t) = plant(&mut h);
    println!(
        "generated {n} transactions in {:.1} s (planted: T{t} misses T{w}'s append); peak RSS {} MiB",
        started.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    let started = Instant::now();
    let r = check_txn(&h, &TxnCheckOptions::default());
    let secs = started.elapsed().as_secs_f64();
    println!(
        "checked in {secs:.1} s: {:?} {:?}, {} edges, {} non-trivial SCCs (largest {}); peak RSS {} MiB",
        r.valid,
        r.anomaly_types,
        r.stats.edges,
        r.stats.nontrivial_sccs,
        r.stats.largest_scc,
        peak_rss_mib()
    );
    assert_eq!(r.valid, Verdict::Invalid);
    let found = r
        .anomalies
        .get(&AnomalyKind::GSingle)
        .expect("the planted G-single");
    assert!(found[0].txns.contains(&t) && found[0].txns.contains(&w));
    println!("{}", found[0].explanation);
    assert_eq!(r.consistency_model, ConsistencyModel::StrictSerializable);
}
