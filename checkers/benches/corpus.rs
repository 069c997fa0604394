//! Checker speed on the conformance corpus, against Porcupine's figures on a 2-core machine.
//!
//! `cargo bench -p checkers` prints, per measured case, the median time to the verdict over several
//! runs (the result's `check_ms`: partitioning and search; parsing excluded), Porcupine's figure
//! for the same case measured on this machine kind, the speed-up, and apart from it the time
//! Fissure then spends building the counterexample of an invalid history (`shrink_ms`, shrinking
//! off here), which Porcupine's check does not do. The goal is 10x on each case. Optional filter:
//! `cargo bench -p checkers -- etcd` runs only cases whose name contains `etcd`.

#[path = "../tests/support/corpus.rs"]
mod corpus;
#[path = "../tests/support/porcupine_cases.rs"]
mod porcupine_cases;

use checkers::formats::{self, Format};
use checkers::{check_model, CheckOptions, ModelKind, Operation, Verdict};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The allocator the `fissure` binary uses, so the figures are what `fissure check` gets.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs per case; the median is reported.
const RUNS: usize = 9;
/// A timed batch repeats a check until it has run this long, so microsecond checks are timed
/// over many repetitions rather than one clock read each.
const MIN_BATCH: Duration = Duration::from_millis(20);

struct Loaded {
    ops: Vec<Operation>,
    model: ModelKind,
    init: Value,
    options: CheckOptions,
}

fn load(path: &str, split_by_key: bool) -> Loaded {
    let format = if path.ends_with(".log") {
        Format::PorcupineEtcd
    } else if path.ends_with(".txt") {
        Format::PorcupineKv
    } else {
        Format::Edn
    };
    let history = formats::parse(format, &corpus::read(path)).expect("corpus parses");
    let conventions = format.conventions();
    Loaded {
        ops: history.operations().expect("corpus pairs"),
        model: conventions.model.expect("corpus formats name a model"),
        init: conventions.init.unwrap_or(Value::Null),
        options: CheckOptions {
            failures: conventions.failures,
            split_by_key,
            shrink: false,
            ..CheckOptions::default()
        },
    }
}

/// One check: the time to the verdict (partitioning and search: what Porcupine's benchmark
/// times) and the time spent after it building the counterexample, which Porcupine's does not do.
fn check_once(loaded: &Loaded) -> (Duration, Duration, Verdict) {
    let result = check_model(loaded.model, &loaded.init, &loaded.ops, &loaded.options)
        .expect("corpus checks");
    let ms = |ms: f64| Duration::from_secs_f64(ms / 1e3);
    (ms(result.check_ms), ms(result.shrink_ms), result.valid)
}

/// The medians over RUNS batches of one check's verdict and counterexample times, each batch long
/// enough to time well.
fn time_per_check(loaded: &Loaded) -> (Duration, Duration) {
    let started = Instant::now();
    check_once(loaded);
    let once = started.elapsed().max(Duration::from_nanos(100));
    let repeats = (MIN_BATCH.as_nanos() / once.as_nanos()).clamp(1, 100_000) as u32;
    let batches: Vec<(Duration, Duration)> = (0..RUNS)
        .map(|_| {
            let (mut verdict, mut explain) = (Duration::ZERO, Duration::ZERO);
            for _ in 0..repeats {
                let (v, e, _) = check_once(loaded);
                verdict += v;
                explain += e;
            }
            (verdict / repeats, explain / repeats)
        })
        .collect();
    (
        median(batches.iter().map(|b| b.0).collect()),
        median(batches.iter().map(|b| b.1).collect()),
    )
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// Per-file medians, four to a line, indented under their case.
fn print_per_file(files: &[String], times: &[Duration]) {
    for (chunk_files, chunk_times) in files.chunks(4).zip(times.chunks(4)) {
        let cells: Vec<String> = chunk_files
            .iter()
            .zip(chunk_times)
            .map(|(f, t)| {
                let name = f.rsplit('/').next().unwrap_or(f);
                format!("{name:<24} {:>7.3} ms", t.as_secs_f64() * 1e3)
            })
            .collect();
        println!("    {}", cells.join("   "));
    }
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let cases = porcupine_cases::cases();

    println!(
        "{:<34} {:>11} {:>12} {:>9}  {:<6} {:>11}",
        "case", "fissure ms", "porcupine ms", "speed-up", "10x?", "+cx ms"
    );
    let mut all_met = true;
    for case in cases {
        if filter
            .as_ref()
            .is_some_and(|f| !case.name.contains(f.as_str()))
        {
            continue;
        }
        let loaded: Vec<Loaded> = case
            .files
            .iter()
            .map(|f| load(f, case.split_by_key))
            .collect();
        // Warm up (thread pool, page faults), then time each file RUNS times.
        loaded.iter().for_each(|l| {
            check_once(l);
        });
        let timed: Vec<(Duration, Duration)> = loaded.iter().map(time_per_check).collect();
        let per_file: Vec<Duration> = timed.iter().map(|t| t.0).collect();
        let total: Duration = per_file.iter().sum();
        let explain: Duration = timed.iter().map(|t| t.1).sum();
        let ms = total.as_secs_f64() * 1e3;
        let shown = if ms < 1.0 {
            format!("{ms:.4}")
        } else {
            format!("{ms:.2}")
        };
        let (anchor, speedup, goal, met) = porcupine_cases::versus_porcupine(&case, ms);
        all_met &= met;
        println!(
            "{:<34} {shown:>11} {anchor:>12} {speedup:>9}  {goal:<6} {:>11.4}",
            case.name,
            explain.as_secs_f64() * 1e3
        );
        if case.files.len() > 1 {
            print_per_file(&case.files, &per_file);
        }
    }
    if let Some(mib) = peak_rss_mib() {
        println!("peak memory (RSS) of the whole benchmark: {mib:.0} MiB");
    }
    porcupine_cases::print_verdict(all_met);
}
