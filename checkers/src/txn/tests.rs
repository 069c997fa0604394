//! The checker on small hand-written histories: each anomaly found with its cycle and words,
//! valid histories valid.

use super::*;
use crate::history::{Event, EventType, History};
use serde_json::{json, Value};

/// A history from elle-cli-style events: `(process, type, micro-ops)`.
fn history(workload: TxnWorkload, events: &[(u64, &str, Value)]) -> TxnHistory {
    let events = events
        .iter()
        .map(|(p, kind, value)| {
            let kind = match *kind {
                "invoke" => EventType::Invoke,
                "ok" => EventType::Ok,
                "fail" => EventType::Fail,
                _ => EventType::Info,
            };
            Event::client(*p, kind, "txn", value.clone())
        })
        .collect();
    let ops = History::from_events(events).operations().unwrap();
    txn_history(&ops, workload).unwrap()
}

/// Each transaction invoked and completed at once, in order (all on process 0 unless given).
fn serial(workload: TxnWorkload, txns: &[(u64, &str, Value)]) -> TxnHistory {
    let mut events = Vec::new();
    for (p, kind, value) in txns {
        events.push((*p, "invoke", value.clone()));
        events.push((*p, *kind, value.clone()));
    }
    history(workload, &events)
}

fn check(h: &TxnHistory, model: ConsistencyModel) -> TxnResult {
    let options = TxnCheckOptions {
        consistency_model: model,
        ..TxnCheckOptions::default()
    };
    check_txn(h, &options)
}

const LA: TxnWorkload = TxnWorkload::ListAppend;
const RR: TxnWorkload = TxnWorkload::RwRegister;
use ConsistencyModel as M;

#[test]
fn a_serial_list_append_history_is_valid() {
    let h = serial(
        LA,
        &[
            (0, "ok", json!([["append", 1, 1], ["r", 2, null]])),
            (
                1,
                "ok",
                json!([["r", 1, [1]], ["append", 2, 5], ["append", 1, 2]]),
            ),
            (0, "ok", json!([["r", 1, [1, 2]], ["r", 2, [5]]])),
        ],
    );
    let r = check(&h, M::StrictSerializable);
    assert_eq!(r.valid, Verdict::Valid, "{r:#?}");
    assert!(r.anomaly_types.is_empty());
    assert_eq!(r.strongest_possible, vec![M::StrictSerializable]);
    assert!(r.stats.edges > 0);
}

fn kinds(r: &TxnResult) -> Vec<&'static str> {
    r.anomaly_types.iter().map(|k| k.name()).collect()
}

fn first(r: &TxnResult, kind: AnomalyKind) -> &Anomaly {
    &r.anomalies[&kind][0]
}

fn steps(a: &Anomaly) -> Vec<(usize, usize, EdgeKind)> {
    a.cycle.iter().map(|s| (s.from, s.to, s.kind)).collect()
}

#[test]
fn g_single_is_found_with_its_cycle_and_words() {
    // T0 appends to 1 and 2; T1 appends to 1 after it but reads 2 empty.
    let h = serial(
        LA,
        &[
            (0, "ok", json!([["append", 1, 1], ["append", 2, 1]])),
            (1, "ok", json!([["append", 1, 2], ["r", 2, []]])),
            (2, "ok", json!([["r", 1, [1, 2]]])),
        ],
    );
    let r = check(&h, M::Serializable);
    assert_eq!(r.valid, Verdict::Invalid);
    assert_eq!(kinds(&r), vec!["G-single-item"]);
    let a = first(&r, AnomalyKind::GSingle);
    let mut cycle = steps(a);
    cycle.sort();
    assert_eq!(cycle, vec![(0, 1, EdgeKind::Ww), (1, 0, EdgeKind::Rw)]);
    let rw = a.cycle.iter().find(|s| s.kind == EdgeKind::Rw).unwrap();
    assert_eq!(
        rw.why,
        "T0 appended 1 to key 2 after T1 read key 2 as []: rw"
    );
    let ww = a.cycle.iter().find(|s| s.kind == EdgeKind::Ww).unwrap();
    assert_eq!(ww.why, "T1 appended 2 to key 1 after T0 appended 1: ww");
    assert_eq!((ww.key, ww.value), (Some(1), Some(2)));
    assert!(
        a.explanation.starts_with("G-single-item: "),
        "{}",
        a.explanation
    );
    assert!(a.explanation.contains(&rw.why));
    assert_eq!(names(&r.not), vec!["consistent-view", "repeatable-read"]);
}

fn names(ms: &[ConsistencyModel]) -> Vec<&'static str> {
    ms.iter().map(|m| m.name()).collect()
}

#[test]
fn g0_and_g1c_cycles() {
    // Two transactions append to keys 1 and 2 in opposite orders.
    let h = serial(
        LA,
        &[
            (0, "ok", json!([["append", 1, 1], ["append", 2, 2]])),
            (1, "ok", json!([["append", 1, 2], ["append", 2, 1]])),
            (2, "ok", json!([["r", 1, [1, 2]], ["r", 2, [1, 2]]])),
        ],
    );
    let r = check(&h, M::ReadUncommitted);
    assert_eq!(r.valid, Verdict::Invalid);
    assert!(kinds(&r).contains(&"G0"));
    assert_eq!(steps(first(&r, AnomalyKind::G0)).len(), 2);
    assert_eq!(names(&r.not), vec!["read-uncommitted"]);

    // Each reads the other's append: circular information flow.
    let h = serial(
        LA,
        &[
            (0, "ok", json!([["append", 1, 1], ["r", 2, [1]]])),
            (1, "ok", json!([["append", 2, 1], ["r", 1, [1]]])),
        ],
    );
    let r = check(&h, M::ReadCommitted);
    assert_eq!(kinds(&r), vec!["G1c"]);
    let a = first(&r, AnomalyKind::G1c);
    assert!(a.cycle.iter().all(|s| s.kind == EdgeKind::Wr));
    assert!(
        a.cycle[0].why.contains("the last element written by"),
        "{}",
        a.cycle[0].why
    );
}

#[test]
fn write_skew_is_g2_item_and_lost_update_both() {
    let h = serial(
        LA,
        &[
            (0, "ok", json!([["append", 1, 0]])),
            (1, "ok", json!([["r", 1, [0]], ["append", 1, 1]])),
            (2, "ok", json!([["r", 1, [0]], ["append", 1, 2]])),
        ],
    );
    let r = check(&h, M::Serializable);
    assert_eq!(kinds(&r), vec!["G2-item", "lost-update"]);
    let lost = first(&r, AnomalyKind::LostUpdate);
    assert_eq!(lost.txns, vec![1, 2]);
    assert!(
        lost.explanation.contains("read key 1 as [0]"),
        "{}",
        lost.explanation
    );
    let g2 = first(&r, AnomalyKind::G2Item);
    assert!(g2.cycle.iter().all(|s| s.kind == EdgeKind::Rw));
    assert!(
        g2.cycle[0].why.contains("read key 1 as [0]: rw"),
        "{}",
        g2.cycle[0].why
    );
}

#[test]
fn g_nonadjacent_needs_two_separated_rw_edges() {
    // T0 -rw-> T1 -wr-> T2 -rw-> T3 -wr-> T0
    let h = serial(
        LA,
        &[
            (0, "ok", json!([["r", 1, []], ["r", 4, [40]]])),
            (1, "ok", json!([["append", 1, 10], ["append", 2, 20]])),
            (2, "ok", json!([["r", 2, [20]], ["r", 3, []]])),
            (3, "ok", json!([["append", 3, 30], ["append", 4, 40]])),
        ],
    );
    let r = check(&h, M::Serializable);
    assert_eq!(kinds(&r), vec!["G-nonadjacent-item"], "{r:#?}");
    assert_eq!(steps(first(&r, AnomalyKind::GNonadjacent)).len(), 4);
    // An item G-nonadjacent is a G2-item (no repeatable read), and snapshot isolation forbids
    // any cycle whose rw edges are never adjacent.
    assert_eq!(names(&r.not), vec!["repeatable-read", "snapshot-isolation"]);
}

#[test]
fn aborted_intermediate_and_dirty_reads() {
    let h = serial(
        LA,
        &[
            (0, "fail", json!([["append", 1, 1]])),
            (1, "ok", json!([["append", 1, 2], ["append", 1, 3]])),
            (2, "ok", json!([["r", 1, [1, 2]]])),
            (3, "ok", json!([["r", 1, [1, 2, 3]]])),
        ],
    );
    let r = check(&h, M::ReadCommitted);
    assert_eq!(r.valid, Verdict::Invalid);
    // T2 read [1 2], an intermediate state of T1, which also makes T2 -rw-> T1 -wr-> T2.
    assert_eq!(
        kinds(&r),
        vec!["G-single-item", "G1a", "G1b", "dirty-update"],
        "{r:#?}"
    );
    assert_eq!(
        r.counts[&AnomalyKind::G1a],
        2,
        "both reads saw the aborted 1"
    );
    let g1b = first(&r, AnomalyKind::G1b);
    assert_eq!(g1b.txns, vec![2, 1]);
    assert!(
        g1b.explanation.contains("appended 3 to key 1 after 2"),
        "{}",
        g1b.explanation
    );
    assert_eq!(first(&r, AnomalyKind::DirtyUpdate).txns, vec![0, 1]);
    assert_eq!(names(&r.not), vec!["read-committed"]);
}

#[test]
fn internal_future_duplicate_and_incompatible_reads() {
    let h = serial(
        LA,
        &[
            (0, "ok", json!([["append", 1, 1], ["r", 1, [5, 1]]])),
            (1, "ok", json!([["r", 2, [7]], ["append", 2, 7]])),
            (2, "ok", json!([["r", 3, [9, 9]]])),
            (3, "ok", json!([["append", 3, 9]])),
            (4, "ok", json!([["r", 1, [5, 1]], ["append", 1, 5]])),
            (5, "ok", json!([["r", 1, [1, 5]]])),
        ],
    );
    let r = check(&h, M::ReadUncommitted);
    for kind in ["future-read", "duplicate-elements", "incompatible-order"] {
        assert!(kinds(&r).contains(&kind), "{kind}: {:?}", kinds(&r));
    }
    // [5 1] ends with T0's own append: consistent, no internal; T1 and T4 read the futures.
    assert!(!kinds(&r).contains(&"internal"));
    assert_eq!(r.counts[&AnomalyKind::FutureRead], 2);
    assert_eq!(first(&r, AnomalyKind::FutureRead).txns, vec![1]);
    assert_eq!(
        r.valid,
        Verdict::Invalid,
        "duplicates are forbidden by read-uncommitted"
    );
}

#[test]
fn internal_reads_against_own_appends() {
    let h = serial(LA, &[(0, "ok", json!([["append", 1, 2], ["r", 1, [1]]]))]);
    let r = check(&h, M::StrictSerializable);
    assert!(kinds(&r).contains(&"internal"));
    let a = first(&r, AnomalyKind::Internal);
    assert!(
        a.explanation.contains("a list ending in [2]"),
        "{}",
        a.explanation
    );
    assert_eq!(names(&r.not), vec!["read-atomic"]);
}

#[test]
fn realtime_makes_a_stale_read_strict_serializability_violation() {
    // T1 appended 2 and completed; T2 began afterwards and still read [1].
    let h = serial(
        LA,
        &[
            (0, "ok", json!([["append", 1, 1]])),
            (1, "ok", json!([["append", 1, 2]])),
            (2, "ok", json!([["r", 1, [1]]])),
        ],
    );
    assert_eq!(check(&h, M::Serializable).valid, Verdict::Valid);
    let r = check(&h, M::StrictSerializable);
    assert_eq!(kinds(&r), vec!["G-single-item-realtime"]);
    let a = first(&r, AnomalyKind::GSingleRealtime);
    let rt = a
        .cycle
        .iter()
        .find(|s| s.kind == EdgeKind::Realtime)
        .unwrap();
    assert_eq!(rt.why, "T1 completed before T2 began: realtime");
    assert_eq!(names(&r.not), vec!["strong-snapshot-isolation"]);
    assert!(r.inferences.iter().any(|i| i.starts_with("realtime")));
}

#[test]
fn process_order_for_session_models() {
    let h = serial(
        RR,
        &[
            (0, "ok", json!([["r", 1, 1]])),
            (0, "ok", json!([["w", 1, 1]])),
        ],
    );
    let r = check(&h, M::StrongSessionSerializable);
    assert_eq!(kinds(&r), vec!["G1c-process"]);
    let p = first(&r, AnomalyKind::G1cProcess);
    assert!(p
        .cycle
        .iter()
        .any(|s| s.why == "T0 and T1 ran on process 0, T0 first: process"));
    assert_eq!(names(&r.not), vec!["strong-session-read-committed"]);
}

#[test]
fn rw_register_write_follows_read_orders_versions() {
    // T1 and T2 each read x = 1 (written by T0) and overwrote it: with wfr keys the versions
    // 1 -> 2 and 1 -> 3 give rw edges between them.
    let h = serial(
        RR,
        &[
            (0, "ok", json!([["w", 1, 1]])),
            (1, "ok", json!([["r", 1, 1], ["w", 1, 2], ["r", 2, null]])),
            (
                2,
                "ok",
                json!([["r", 2, null], ["w", 2, 5], ["r", 1, 1], ["w", 1, 3]]),
            ),
        ],
    );
    let options = TxnCheckOptions {
        consistency_model: M::Serializable,
        wfr_keys: true,
        ..TxnCheckOptions::default()
    };
    let r = check_txn(&h, &options);
    assert!(kinds(&r).contains(&"lost-update"), "{:?}", kinds(&r));
    assert!(kinds(&r).contains(&"G2-item"), "{:?}", kinds(&r));
    let g2 = first(&r, AnomalyKind::G2Item);
    assert!(
        g2.cycle
            .iter()
            .any(|s| s.why.contains("read 1 and then wrote")),
        "{:#?}",
        g2.cycle
    );
    assert!(r
        .inferences
        .iter()
        .any(|i| i.contains("write-follows-read")));
    // Without wfr nothing orders 2 and 3 after 1: only the lost update remains.
    let r = check(&h, M::Serializable);
    assert!(!kinds(&r).contains(&"G2-item"));
}

#[test]
fn rw_register_reads_of_own_writes() {
    // Reading back one's own earlier write is fine; reading one's later write is a future-read.
    let h = serial(
        RR,
        &[
            (0, "ok", json!([["w", 1, 1], ["r", 1, 1]])),
            (1, "ok", json!([["r", 2, 7], ["w", 2, 7]])),
            (2, "ok", json!([["r", 1, 1], ["r", 2, 7]])),
        ],
    );
    let r = check(&h, M::Serializable);
    assert_eq!(kinds(&r), vec!["future-read"]);
    let a = first(&r, AnomalyKind::FutureRead);
    assert_eq!(a.txns, vec![1]);
    assert!(
        a.explanation.contains("writes only later"),
        "{}",
        a.explanation
    );
    assert_eq!(r.valid, Verdict::Invalid);
    assert!(
        names(&r.not).contains(&"read-committed"),
        "{:?}",
        names(&r.not)
    );
}

#[test]
fn rw_register_cyclic_versions_with_linearizable_keys() {
    let h = serial(
        RR,
        &[
            (0, "ok", json!([["w", 1, 1]])),
            (1, "ok", json!([["r", 1, 2]])),
            (0, "ok", json!([["r", 1, 1]])),
            (2, "ok", json!([["w", 1, 2]])),
        ],
    );
    let options = TxnCheckOptions {
        linearizable_keys: true,
        ..TxnCheckOptions::default()
    };
    let r = check_txn(&h, &options);
    assert!(kinds(&r).contains(&"cyclic-versions"), "{:?}", kinds(&r));
    let a = first(&r, AnomalyKind::CyclicVersions);
    assert!(
        a.explanation.contains("linearizable keys"),
        "{}",
        a.explanation
    );
}

#[test]
fn nothing_to_go_on_is_unknown() {
    let h = serial(LA, &[(0, "ok", json!([["r", 1, []]]))]);
    let r = check(&h, M::StrictSerializable);
    assert_eq!(r.valid, Verdict::Unknown);
    assert_eq!(kinds(&r), vec!["empty-transaction-graph"]);
    assert!(r.unknown_reason.is_some());
}

#[test]
fn repeated_appends_and_budgets_give_unknown_with_a_reason() {
    let h = serial(
        LA,
        &[
            (0, "ok", json!([["append", 1, 1]])),
            (1, "ok", json!([["append", 1, 1]])),
        ],
    );
    let r = check(&h, M::StrictSerializable);
    assert_eq!(r.valid, Verdict::Unknown);
    assert!(r
        .unknown_reason
        .unwrap()
        .contains("appended to key 1 twice"));

    let h = serial(
        LA,
        &[
            (0, "ok", json!([["append", 1, 1]])),
            (1, "ok", json!([["r", 1, [1]]])),
        ],
    );
    let tiny = TxnCheckOptions {
        memory_limit: Some(1),
        ..TxnCheckOptions::default()
    };
    let r = check_txn(&h, &tiny);
    assert_eq!(r.valid, Verdict::Unknown);
    assert!(r.unknown_reason.unwrap().contains("memory limit"));
    let no_time = TxnCheckOptions {
        time_limit: Some(std::time::Duration::ZERO),
        ..TxnCheckOptions::default()
    };
    let r = check_txn(&h, &no_time);
    assert_eq!(r.valid, Verdict::Unknown);
    assert!(r.unknown_reason.unwrap().contains("time limit"));
}

#[test]
fn info_appends_that_were_read_count_as_committed() {
    // T1 is info but its append was read: it committed, and the stale read shows G-single.
    let h = serial(
        LA,
        &[
            (0, "ok", json!([["append", 1, 1], ["append", 2, 1]])),
            (1, "info", json!([["append", 1, 2], ["r", 2, null]])),
            (2, "ok", json!([["r", 1, [1, 2]], ["r", 2, []]])),
        ],
    );
    let r = check(&h, M::Serializable);
    assert_eq!(kinds(&r), vec!["G-single-item"], "{r:#?}");
}
