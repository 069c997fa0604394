//! PostgreSQL 15 (Debian's `postgresql` package) as a target, end to end on the local backend:
//! `fissure run --target postgres --workload append` at each isolation level, the history
//! checked by the isolation checker. Serializable must come out serializable; repeatable read
//! (snapshot isolation) checked against serializable must show write skew (G2-item) and nothing
//! snapshot isolation forbids; read committed checked against snapshot isolation must show what
//! snapshot isolation forbids. Each run starts its own server in its own store and stops it.
//!
//! On a docker node (the node image with the `postgresql` package) it runs as on the local
//! backend, libfaketime preloaded for clock faults.
//!
//! Without PostgreSQL the local tests pass with a note, unless `FISSURE_REQUIRE_POSTGRES=1`, when they
//! fail saying what to install.

use std::path::{Path, PathBuf};

use serde_json::Value;

#[path = "support/cli.rs"]
mod cli;
use cli::{fissure, text};
#[path = "support/docker.rs"]
mod docker_support;
use docker_support::docker_available;

const POSTGRES: &str = "/usr/lib/postgresql/15/bin/postgres";

fn postgres_installed() -> bool {
    if Path::new(POSTGRES).exists() {
        return true;
    }
    let why = format!("{POSTGRES} is missing: apt-get install postgresql (Debian's PostgreSQL 15)");
    assert!(
        std::env::var("FISSURE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
        "{why}"
    );
    eprintln!("skipped: {why}");
    false
}

/// Runs `fissure run --target postgres --workload append` with `extra` flags in a fresh store:
/// the exit code, stdout and the run's results.
fn run(store: &Path, extra: &str) -> (Option<i32>, String, Value) {
    let mut args = vec![
        "run",
        "--target",
        "postgres",
        "--workload",
        "append",
        "--store",
        store.to_str().unwrap(),
    ];
    // Many clients on few keys, without a rate limit to speak of: conflicts are what shows
    // the levels apart.
    args.extend("--time-limit 8s --recovery 1s --concurrency 20 --rate 1000".split_whitespace());
    args.extend(extra.split_whitespace());
    let out = fissure(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let results = latest_results(store)
        .unwrap_or_else(|| panic!("no results.json for {extra}: {}", text(&out)));
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{extra}: {}",
        text(&out)
    );
    (out.status.code(), stdout, results)
}

fn latest_results(store: &Path) -> Option<Value> {
    let test: PathBuf = std::fs::read_dir(store)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "latest"))?;
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&test)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("results.json").exists())
        .collect();
    runs.sort();
    let text = std::fs::read_to_string(runs.pop()?.join("results.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// The isolation checker's model and anomaly types, and how many transactions were ok.
fn isolation(results: &Value) -> (String, Vec<String>, u64) {
    let iso = &results["checkers"]["isolation"];
    let types = (iso["anomaly_types"].as_array().into_iter().flatten())
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let ok = results["stats"]["ok"].as_u64().unwrap_or(0);
    (
        iso["consistency_model"].as_str().unwrap_or("").to_string(),
        types,
        ok,
    )
}

#[test]
fn serializable_is_serializable() {
    if !postgres_installed() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let (code, stdout, results) = run(
        store.path(),
        "--set isolation=serializable --nemesis none --seed 1",
    );
    let (model, anomalies, ok) = isolation(&results);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(model, "serializable");
    assert!(anomalies.is_empty(), "{anomalies:?}");
    assert!(ok > 500, "only {ok} transactions ok: {stdout}");
}

/// PostgreSQL's repeatable read keeps its own promise (snapshot isolation), and against
/// serializable shows write skew and nothing else.
#[test]
fn repeatable_read_is_snapshot_isolation_with_write_skew() {
    if !postgres_installed() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let (code, stdout, results) = run(
        store.path(),
        "--set isolation=repeatable-read --consistency-model serializable --nemesis none --seed 1",
    );
    let (model, anomalies, _) = isolation(&results);
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(model, "serializable");
    assert_eq!(anomalies, ["G2-item"], "{stdout}");
    assert!(stdout.contains("not serializable: G2-item"), "{stdout}");
    let (code, stdout, results) = run(
        store.path(),
        "--set isolation=repeatable-read --nemesis none --seed 2",
    );
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(isolation(&results).0, "snapshot-isolation");
}

/// Read committed keeps its own promise, and against snapshot isolation shows what that
/// forbids: read skew (G-single), lost updates, a transaction not seeing its own snapshot.
#[test]
fn read_committed_is_weaker_than_snapshot_isolation() {
    if !postgres_installed() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let (code, stdout, results) = run(
        store.path(),
        "--set isolation=read-committed --consistency-model snapshot-isolation --nemesis none \
         --seed 1",
    );
    let (model, anomalies, _) = isolation(&results);
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(model, "snapshot-isolation");
    assert!(
        (anomalies.iter()).any(|a| a.starts_with("G-single") || a == "lost-update"),
        "{anomalies:?}"
    );
    // Snapshot isolation is ruled out, and read committed is not.
    let iso = &results["checkers"]["isolation"];
    let ruled_out: Vec<&str> = ["not", "also_not"]
        .iter()
        .flat_map(|k| iso[k].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    assert!(ruled_out.contains(&"snapshot-isolation"), "{ruled_out:?}");
    assert!(!ruled_out.contains(&"read-committed"), "{ruled_out:?}");
    let (code, stdout, results) = run(
        store.path(),
        "--set isolation=read-committed --nemesis none --seed 2",
    );
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(isolation(&results).0, "read-committed");
}

/// Crashes and pauses reach the postmaster and its backends (the target's own kill and pause),
/// the server recovers from its WAL, and serializable stays serializable.
#[test]
fn serializable_survives_kills_and_pauses() {
    if !postgres_installed() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let (code, stdout, results) = run(
        store.path(),
        "--set isolation=serializable --nemesis kill,pause --nemesis-interval 2s --seed 3",
    );
    assert_eq!(code, Some(0), "{stdout}");
    let faults = results["run"]["faults_applied"].as_u64().unwrap_or(0);
    assert!(faults >= 2, "{faults} faults applied: {stdout}");
    let (_, _, ok) = isolation(&results);
    assert!(ok > 100, "only {ok} transactions ok: {stdout}");
}

/// In a container of the node image with the `postgresql` package (built once, then cached),
/// under kills, pauses and clock faults: libfaketime is preloaded there, and must not stop the
/// server from starting as the postgres user.
#[test]
fn serializable_on_docker_under_kills_pauses_and_clock_faults() {
    if !docker_available("postgres_on_docker") {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let (code, stdout, results) = run(
        store.path(),
        "--backend docker --set isolation=serializable --nemesis kill,pause,clock \
         --nemesis-interval 2s --seed 4",
    );
    assert_eq!(code, Some(0), "{stdout}");
    let faults = results["run"]["faults_applied"].as_u64().unwrap_or(0);
    assert!(faults >= 2, "{faults} faults applied: {stdout}");
    assert!(isolation(&results).2 > 100, "{stdout}");
}
