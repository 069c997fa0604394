//! The transactional workloads end to end on local raft-kv clusters: correct raft-kv is strict
//! serializable under partitions and kills, for `append` and `wr`; each planted isolation bug
//! is found, with the anomalies it should cause. Short runs (3 nodes, 8 s) on fixed seeds
//! (campaigns/isolation.toml measures 5 seeds of each).

#[path = "support/cli.rs"]
mod cli;

use cli::{fissure, text};
use serde_json::Value;
use std::path::Path;

/// Runs take turns: two cores shared by several clusters would make timing, and so what a run
/// shows, a matter of luck.
fn take_turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// A short raft-kv run of `workload` (with `bug`, if any) on seed `seed`: its results.json.
fn short_run(workload: &str, bug: Option<&str>, seed: u64, exit: i32) -> Value {
    let _turn = take_turn();
    let store = tempfile::tempdir().unwrap();
    let seed = seed.to_string();
    let mut args = vec![
        "run",
        "--store",
        store.path().to_str().unwrap(),
        "--workload",
        workload,
        "--nodes",
        "3",
        "--nemesis",
        "partition,kill",
        "--seed",
        &seed,
        "--time-limit",
        "8s",
        "--nemesis-interval",
        "1s",
        "--recovery",
        "2s",
        "--rate",
        "150",
    ];
    if let Some(bug) = bug {
        args.extend(["--bug", bug]);
    }
    let output = fissure(&args);
    assert_eq!(output.status.code(), Some(exit), "{}", text(&output));
    results(&store.path().join("latest"))
}

fn results(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json");
    serde_json::from_str(&text).expect("results.json is JSON")
}

/// The anomaly kinds the isolation checker found.
fn anomalies(results: &Value) -> Vec<String> {
    (results["checkers"]["isolation"]["anomaly_types"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(String::from))
        .collect()
}

#[test]
fn correct_raft_kv_transactions_are_strict_serializable_under_partitions_and_kills() {
    for workload in ["append", "wr"] {
        let results = short_run(workload, None, 1, 0);
        let isolation = &results["checkers"]["isolation"];
        assert_eq!(results["valid"], Value::Bool(true), "{workload}: {results}");
        assert_eq!(isolation["consistency_model"], "strict-serializable");
        assert!(
            isolation["stats"]["ok"].as_u64().unwrap() > 300,
            "{isolation}"
        );
        assert!(results["run"]["faults_applied"].as_u64().unwrap() >= 4);
        assert!(anomalies(&results).is_empty());
    }
}

#[test]
fn non_atomic_transactions_are_found_as_circular_information_flow() {
    for workload in ["append", "wr"] {
        let results = short_run(workload, Some("non-atomic-txn"), 1, 1);
        let found = anomalies(&results);
        // Half a transaction seen by another, and the other seen by it: a G1c cycle.
        assert!(
            found.iter().any(|a| a.starts_with("G1c")),
            "{workload}: {found:?}"
        );
        let summary = results["checkers"]["isolation"]["summary"]
            .as_str()
            .unwrap();
        assert!(summary.starts_with("not strict-serializable"), "{summary}");
    }
}

#[test]
fn local_reads_in_transactions_are_found_as_lost_updates_and_read_skew() {
    for workload in ["append", "wr"] {
        let results = short_run(workload, Some("txn-local-read"), 1, 1);
        let found = anomalies(&results);
        // A write made on a read the log no longer agrees with: G-single or G2 cycles.
        assert!(
            found
                .iter()
                .any(|a| a.starts_with("G-single") || a.starts_with("G2")),
            "{workload}: {found:?}"
        );
    }
}
