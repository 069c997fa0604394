//! `fissure check --json` on Porcupine's benchmark cases: the `check_ms` (time to the verdict, in
//! the process a user runs, with its allocator and thread pool) and `shrink_ms` (the counterexample,
//! shrinking on as by default) it reports, against Porcupine's figures.
//!
//! `cargo bench -p harness --bench check_cli` prints the median over RUNS invocations per file,
//! summed per case. Optional filter: `-- c50` runs only cases whose name contains `c50`.

#[path = "../../checkers/tests/support/corpus.rs"]
mod corpus;
#[path = "../../checkers/tests/support/porcupine_cases.rs"]
mod porcupine_cases;

use std::process::Command;

/// Invocations per file; the median is reported.
const RUNS: usize = 7;

/// `check_ms` and `shrink_ms` of one `fissure check --json`.
fn check(path: &str, split_by_key: bool) -> (f64, f64) {
    let file = corpus::dir().join(path);
    let mut command = Command::new(env!("CARGO_BIN_EXE_fissure"));
    command.args(["check", "--json"]);
    if !split_by_key {
        command.arg("--no-split");
    }
    let out = command.arg(&file).output().expect("fissure runs");
    let code = out.status.code();
    assert!(
        matches!(code, Some(0) | Some(1)),
        "fissure check {} exited {code:?}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let ms = |field: &str| json[field].as_f64().expect("a time in ms");
    (ms("check_ms"), ms("shrink_ms"))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    println!(
        "{:<34} {:>13} {:>12} {:>9}  {:<6} {:>13}",
        "case", "check_ms", "porcupine ms", "speed-up", "10x?", "shrink_ms"
    );
    let mut all_met = true;
    for case in porcupine_cases::cases() {
        if filter
            .as_ref()
            .is_some_and(|f| !case.name.contains(f.as_str()))
        {
            continue;
        }
        let (mut check_ms, mut shrink_ms) = (0.0, 0.0);
        for file in &case.files {
            let runs: Vec<(f64, f64)> = (0..RUNS).map(|_| check(file, case.split_by_key)).collect();
            check_ms += median(runs.iter().map(|r| r.0).collect());
            shrink_ms += median(runs.iter().map(|r| r.1).collect());
        }
        let (anchor, speedup, goal, met) = porcupine_cases::versus_porcupine(&case, check_ms);
        all_met &= met;
        println!(
            "{:<34} {check_ms:>13.3} {anchor:>12} {speedup:>9}  {goal:<6} {shrink_ms:>13.3}",
            case.name
        );
    }
    porcupine_cases::print_verdict(all_met);
}
