//! The conformance corpus vendored in the repository (`corpus/`, or `$FISSURE_CORPUS` to try
//! another copy) and its MANIFEST.tsv, for tests and benchmarks.
#![allow(dead_code)]

use checkers::formats::Format;
use std::path::PathBuf;

/// One row of MANIFEST.tsv.
pub struct Entry {
    pub path: String,
    pub format: Format,
    pub linearizable: bool,
    /// Client invocations, including those that never complete; nemesis entries not counted.
    pub ops: usize,
    pub notes: String,
}

pub fn dir() -> PathBuf {
    match std::env::var_os("FISSURE_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus")),
    }
}

pub fn read(path: &str) -> String {
    let full = dir().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| {
        panic!(
            "cannot read corpus file {}: {e} (the corpus is vendored in the repository's corpus/ folder)",
            full.display()
        )
    })
}

pub fn manifest() -> Vec<Entry> {
    let text = read("MANIFEST.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split('\t').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("MANIFEST.tsv has no column {name}"))
    };
    let (path, format, expected, ops, notes) = (
        column("path"),
        column("format"),
        column("expected"),
        column("ops"),
        column("notes"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            let format = match cells[format] {
                "jepsen-log4j-text" => Format::PorcupineEtcd,
                f if f.contains("porcupine kv") => Format::PorcupineKv,
                f if f.starts_with("edn-") => Format::Edn,
                f => panic!("unknown manifest format {f:?}"),
            };
            let linearizable = match cells[expected] {
                "linearizable" => true,
                "not" => false,
                other => panic!("unknown expected verdict {other:?}"),
            };
            Entry {
                path: cells[path].to_string(),
                format,
                linearizable,
                ops: cells[ops].parse().expect("ops is a number"),
                notes: cells[notes].to_string(),
            }
        })
        .collect()
}
