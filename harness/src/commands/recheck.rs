//! `fissure check <run-dir>` on a run stored by `fissure run`: re-runs every checker the run's
//! workload names (from `test.json`) on its `history.jsonl`, and rewrites `results.json` (keeping
//! what the run itself recorded under `run`).

use crate::analysis;
use crate::cli::CheckArgs;
use anyhow::{anyhow, Context};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use workloads::workload::CheckerSpec;

/// True if `path` is a run directory `fissure run` wrote.
pub fn is_stored_run(path: &Path) -> bool {
    path.is_dir() && path.join("test.json").is_file() && path.join("history.jsonl").is_file()
}

pub fn run(args: &CheckArgs) -> anyhow::Result<u8> {
    let dir = &args.history;
    let test_json = dir.join("test.json");
    let text = std::fs::read_to_string(&test_json)
        .with_context(|| format!("cannot read {}", test_json.display()))?;
    let test: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", test_json.display()))?;
    let specs: Vec<CheckerSpec> = serde_json::from_value(test["checkers"].clone())
        .map_err(|e| anyhow!("{}: no usable \"checkers\" list: {e}", test_json.display()))?;
    let limit = if args.time_limit.is_zero() {
        Duration::from_secs(u64::MAX / 4)
    } else {
        args.time_limit
    };
    // The run's own SLOs, if its spec declared any.
    let slo: Option<checkers::SloSpec> = serde_json::from_value(test["spec"]["slo"].clone())
        .ok()
        .flatten();
    let history = dir.join("history.jsonl");
    let mut results = analysis::check_history(&history, &specs, slo.as_ref(), limit)?;
    let results_path = dir.join("results.json");
    let previous: Option<Value> = std::fs::read_to_string(&results_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    // What the run itself saw (interrupted, no fault applied, a failed heal) still holds.
    let run = previous.as_ref().map(|p| p["run"].clone());
    results.apply_caveats(&analysis::caveats(run.as_ref()));
    let mut stored = serde_json::to_value(&results)?;
    if let Some(run) = run {
        stored["run"] = run;
    }
    let store = crate::store::RunDir { path: dir.clone() };
    store.write_json("results.json", &stored)?;
    super::report::refresh(dir);
    if args.json {
        println!("{stored}");
    } else {
        println!(
            "{}: {}\n  {}",
            dir.display(),
            results.valid.name().to_uppercase(),
            results.reason
        );
    }
    Ok(super::run::exit_code(results.valid, results.slo_failed()))
}
