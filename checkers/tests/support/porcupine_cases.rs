//! Porcupine's benchmark cases and its times for them, shared by the in-process benchmark
//! (`checkers/benches/corpus.rs`) and the CLI one (`harness/benches/check_cli.rs`).
//!
//! The Porcupine figures are its own benchmarks (`go test -bench`, Go 1.19) measured on this machine
//! kind (2 cores) in one run, parse excluded: the anchors of the 10x goal.

use super::corpus;
use checkers::formats::Format;

pub struct Case {
    pub name: &'static str,
    /// Corpus paths; a case of several files is timed as their sum.
    pub files: Vec<String>,
    pub split_by_key: bool,
    pub porcupine_ms: Option<f64>,
}

/// The speed-up over Porcupine every case must reach.
pub const GOAL: f64 = 10.0;

pub fn cases() -> Vec<Case> {
    let manifest = corpus::manifest();
    let of_format = |format: Format| -> Vec<String> {
        manifest
            .iter()
            .filter(|e| e.format == format)
            .map(|e| e.path.clone())
            .collect()
    };
    let kv = |name: &'static str, file: &str, split_by_key: bool, porcupine_ms: f64| Case {
        name,
        files: vec![format!("porcupine/kv/{file}.txt")],
        split_by_key,
        porcupine_ms: Some(porcupine_ms),
    };
    vec![
        Case {
            name: "etcd: all 102 histories, summed",
            files: of_format(Format::PorcupineEtcd),
            split_by_key: true,
            porcupine_ms: Some(345.0),
        },
        kv("kv c01-ok, split by key", "c01-ok", true, 0.079),
        kv("kv c01-bad, split by key", "c01-bad", true, 0.039),
        kv("kv c10-ok, split by key", "c10-ok", true, 0.568),
        kv("kv c10-bad, split by key", "c10-bad", true, 0.380),
        kv("kv c50-ok, split by key", "c50-ok", true, 146.0),
        kv("kv c50-bad, split by key", "c50-bad", true, 23.1),
        kv("kv c01-ok, whole (not split)", "c01-ok", false, 0.091),
        kv("kv c01-bad, whole (not split)", "c01-bad", false, 0.048),
        kv("kv c10-ok, whole (not split)", "c10-ok", false, 1464.0),
        kv("kv c10-bad, whole (not split)", "c10-bad", false, 1718.0),
        Case {
            name: "knossos cas-register, all 6",
            files: of_format(Format::Edn),
            split_by_key: true,
            porcupine_ms: None,
        },
    ]
}

/// The speed-up column and whether the goal is met, for one case's time in milliseconds.
pub fn versus_porcupine(case: &Case, ms: f64) -> (String, String, &'static str, bool) {
    match case.porcupine_ms {
        Some(p) => {
            let met = p / ms >= GOAL;
            (
                format!("{p}"),
                format!("{:.1}x", p / ms),
                if met { "met" } else { "MISSED" },
                met,
            )
        }
        None => ("-".into(), "-".into(), "", true),
    }
}

/// The last line of a benchmark: whether every case met the goal.
pub fn print_verdict(all_met: bool) {
    println!(
        "{}",
        if all_met {
            "all speed goals met"
        } else {
            "some speed goals missed"
        }
    );
}
