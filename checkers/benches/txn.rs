//! Isolation checker speed and memory on large synthetic list-append histories
//! (`checkers::txn::synth`): for each size, a valid history and one with a single planted G-single.
//!
//! Each history is written as `history.jsonl`, then checked in fresh processes (this binary
//! again) so peak RSS (VmHWM) is that one check's: reading the file into transactions the way
//! `fissure check` does (`read_txn_jsonl`, one line at a time), then `check_txn` against strict
//! serializability, each timed, and its peak taken, on its own ("+added" is how far the check's
//! peak rose above the RSS it started from, the largest over the runs). The figures are what
//! `fissure check` would spend, minus its printing. `FISSURE_TXN_BENCH_PARSE=general` reads the
//! file the general way instead (`read_jsonl`, pairing, `txn_history`), for comparison.
//!
//! `cargo bench -p checkers --bench txn` runs 100k and 1M transactions;
//! `FISSURE_TXN_BENCH_SIZES=10000,100000` picks sizes, `FISSURE_TXN_BENCH_PROCESSES` the
//! concurrency (20), `FISSURE_TXN_BENCH_RUNS` the runs per history (3, median reported), and
//! `FISSURE_TXN_BENCH_DIR=dir` keeps the histories there (else a temporary
//! directory) so `fissure check` can be timed on them (`bench/txn.sh` does).

use checkers::history::read_jsonl;
use checkers::txn::synth::{list_append_events, PlantedGSingle, SynthOptions};
use checkers::txn::{
    check_txn, read_txn_jsonl, txn_history, AnomalyKind, TxnCheckOptions, TxnHistory, TxnWorkload,
};
use serde_json::json;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The allocator the `fissure` binary uses, so the figures are what `fissure check` gets.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Set in the child process: the history to check, and the planted G-single's transactions.
const CHILD: &str = "FISSURE_TXN_BENCH_CHILD";
const PLANTED: &str = "FISSURE_TXN_BENCH_PLANTED";

fn main() {
    if let Ok(path) = std::env::var(CHILD) {
        child(Path::new(&path));
        return;
    }
    let sizes: Vec<usize> = std::env::var("FISSURE_TXN_BENCH_SIZES")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("FISSURE_TXN_BENCH_SIZES: numbers, comma-separated")
        })
        .collect();
    let processes = std::env::var("FISSURE_TXN_BENCH_PROCESSES")
        .ok()
        .map(|p| p.parse().expect("FISSURE_TXN_BENCH_PROCESSES: a number"))
        .unwrap_or(20);
    let temp = tempfile::tempdir().expect("a temporary directory");
    let dir = std::env::var("FISSURE_TXN_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("the histories' directory");

    let runs: usize = std::env::var("FISSURE_TXN_BENCH_RUNS")
        .ok()
        .map(|r| r.parse().expect("FISSURE_TXN_BENCH_RUNS: a number"))
        .unwrap_or(3);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{} processes; parsing {}; median of {runs} runs, each in a fresh process; load average {}",
        processes,
        if general_parse() {
            "the general way (read_jsonl, pairing, txn_history)"
        } else {
            "streamed (read_txn_jsonl), as fissure check does"
        },
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:>9} {:<9} {:>7} {:>8} {:>8} {:>31} {:>8}  G-single found",
        "txns",
        "history",
        "file MB",
        "parse s",
        "check s",
        "peak MiB parse / check (+added)",
        "verdict"
    );
    for &txns in &sizes {
        for g_single in [false, true] {
            let options = SynthOptions {
                txns,
                processes,
                g_single,
                ..SynthOptions::default()
            };
            let variant = if g_single { "g-single" } else { "valid" };
            let path = dir.join(format!("txn-{txns}-{variant}.jsonl"));
            let planted = write_history(&options, &path);
            let mb = std::fs::metadata(&path).map_or(0.0, |m| m.len() as f64 / 1e6);
            let all: Vec<serde_json::Value> = (0..runs.max(1))
                .map(|_| run_child(&path, planted.as_ref()))
                .collect();
            let median = |field: &str| {
                let mut xs: Vec<f64> = all.iter().filter_map(|f| f[field].as_f64()).collect();
                xs.sort_by(f64::total_cmp);
                xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
            };
            let figures = &all[0];
            let added: Vec<f64> = all
                .iter()
                .filter_map(|f| Some(f["check_peak_mb"].as_f64()? - f["before_check_mb"].as_f64()?))
                .collect();
            let added = added.iter().copied().fold(f64::NAN, f64::max);
            let found = match (&planted, figures["g_single_found"].as_bool()) {
                (None, _) => "-".to_string(),
                (Some(_), Some(true)) => format!(
                    "yes, T{} and T{} named",
                    figures["writer"].as_u64().unwrap_or(0),
                    figures["reader"].as_u64().unwrap_or(0)
                ),
                (Some(_), _) => format!("NO (anomalies {})", figures["anomalies"]),
            };
            println!(
                "{txns:>9} {variant:<9} {mb:>7.1} {:>8.2} {:>8.2} {:>14.0} / {:>6.0} ({:>+6.0}) {:>8}  {found}",
                median("parse_s"),
                median("check_s"),
                median("parse_peak_mb"),
                median("check_peak_mb"),
                added,
                figures["valid"].as_str().unwrap_or("?"),
            );
        }
    }
}

fn write_history(options: &SynthOptions, path: &Path) -> Option<PlantedGSingle> {
    let mut out = BufWriter::new(File::create(path).expect("create the history file"));
    let planted = list_append_events(options, |event| {
        serde_json::to_writer(&mut out, &event).expect("write the history");
        out.write_all(b"\n").expect("write the history");
    });
    out.flush().expect("write the history");
    planted
}

/// Checks the history in a fresh process; its figures as JSON.
fn run_child(path: &Path, planted: Option<&PlantedGSingle>) -> serde_json::Value {
    let exe = std::env::current_exe().expect("this benchmark's path");
    let mut command = Command::new(exe);
    command.env(CHILD, path);
    if let Some(p) = planted {
        command.env(PLANTED, format!("{},{}", p.writer, p.reader));
    }
    let output = command.output().expect("run the check");
    if !output.status.success() {
        panic!(
            "checking {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).expect("the child prints its figures as JSON")
}

/// Set to `general` to read histories the general way.
fn general_parse() -> bool {
    std::env::var("FISSURE_TXN_BENCH_PARSE").is_ok_and(|p| p == "general")
}

fn child(path: &Path) {
    let started = Instant::now();
    let file = BufReader::with_capacity(1 << 20, File::open(path).expect("open the history"));
    let txns: TxnHistory = if general_parse() {
        let history = read_jsonl(file).expect("the history reads");
        let ops = history.operations().expect("the history pairs");
        drop(history);
        txn_history(&ops, TxnWorkload::ListAppend).expect("the transactions read")
    } else {
        read_txn_jsonl(file, None).expect("the transactions read")
    };
    let parse_s = started.elapsed().as_secs_f64();
    let parse_peak_mb = status_mb("VmHWM");
    // Linux resets the peak (VmHWM) to the current RSS on "5": the check's own peak then counts the
    // parsed transactions it reads plus what it builds, not the parser's garbage.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before_check_mb = status_mb("VmRSS");

    let started = Instant::now();
    let result = check_txn(&txns, &TxnCheckOptions::default());
    let check_s = started.elapsed().as_secs_f64();

    let planted: Option<(usize, usize)> = std::env::var(PLANTED).ok().map(|p| {
        let (w, r) = p.split_once(',').expect("writer,reader");
        (w.parse().expect("writer"), r.parse().expect("reader"))
    });
    let g_single = [
        AnomalyKind::GSingle,
        AnomalyKind::GSingleProcess,
        AnomalyKind::GSingleRealtime,
    ];
    // Found: some G-single cycle names both planted transactions.
    let found = planted.is_some_and(|(w, r)| {
        g_single.iter().any(|kind| {
            result.anomalies.get(kind).is_some_and(|list| {
                list.iter()
                    .any(|a| a.txns.contains(&w) && a.txns.contains(&r))
            })
        })
    });
    let figures = json!({
        "parse_s": parse_s,
        "check_s": check_s,
        "parse_peak_mb": parse_peak_mb,
        // Without the reset, the check's own peak is not known (printed as NaN).
        "check_peak_mb": if reset { status_mb("VmHWM") } else { f64::NAN },
        "before_check_mb": before_check_mb,
        "valid": format!("{:?}", result.valid),
        "anomalies": result.counts,
        "g_single_found": found,
        "writer": planted.map(|p| p.0),
        "reader": planted.map(|p| p.1),
        "edges": result.stats.edges,
        "txns": txns.txns.len(),
    });
    println!("{figures}");
}

/// A `/proc/self/status` figure in MB (Linux; NaN elsewhere).
fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let rest = line.strip_prefix(field)?.strip_prefix(':')?;
                let kb: f64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
                Some(kb / 1024.0)
            })
        })
        .unwrap_or(f64::NAN)
}
