//! `store/index.html`: every run in a store, newest first, filterable, linking to each run's
//! report. Built from each run's `test.json` and `results.json` only (histories are not read),
//! so it stays quick on a store of thousands of runs.

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

const TEMPLATE: &str = include_str!("templates/index.html");

/// One row of the index.
#[derive(Debug, Serialize)]
pub struct RunRow {
    pub date: String,
    pub name: String,
    pub target: String,
    pub bug: String,
    pub workload: String,
    pub faults: String,
    pub backend: String,
    pub verdict: String,
    pub reason: String,
    pub ops: String,
    pub duration: String,
    /// Relative to the store: the report if there is one, else the run's folder.
    pub link: String,
    /// For sorting: the run folder's stamp.
    #[serde(skip)]
    stamp: String,
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// The verdict word of a results.json value.
pub fn verdict(valid: &Value) -> &'static str {
    match valid {
        Value::Bool(true) => "valid",
        Value::Bool(false) => "invalid",
        _ => "unknown",
    }
}

fn read_json(path: &Path) -> Value {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// The run folders of a store: `<store>/<test>/<stamp>/` holding a test.json (links such as
/// `latest` are skipped).
pub fn run_dirs(store: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let Ok(tests) = std::fs::read_dir(store) else {
        return dirs;
    };
    for test in tests.filter_map(Result::ok) {
        let is_dir = test.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir {
            continue;
        }
        let Ok(runs) = std::fs::read_dir(test.path()) else {
            continue;
        };
        for run in runs.filter_map(Result::ok) {
            let real_dir = run.file_type().is_ok_and(|t| t.is_dir());
            if real_dir && run.path().join("test.json").is_file() {
                dirs.push(run.path());
            }
        }
    }
    dirs
}

fn row(store: &Path, dir: &Path) -> RunRow {
    let test = read_json(&dir.join("test.json"));
    let results = read_json(&dir.join("results.json"));
    let spec = &test["spec"];
    let relative = dir.strip_prefix(store).unwrap_or(dir);
    let relative = relative.to_string_lossy().replace('\\', "/");
    let link = if dir.join("report.html").is_file() {
        format!("{relative}/report.html")
    } else {
        format!("{relative}/")
    };
    let stamp = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nemesis = text(&spec["nemesis"]);
    RunRow {
        date: match test["started"].as_str() {
            Some(started) => started.replace('T', " ").trim_end_matches('Z').to_string(),
            None => stamp.clone(),
        },
        name: text(&spec["name"]),
        target: text(&spec["target"]),
        bug: text(&spec["bug"]),
        workload: text(&spec["workload"]),
        faults: if nemesis.is_empty() {
            "none".into()
        } else {
            nemesis
        },
        backend: text(&spec["backend"]),
        verdict: verdict(&results["valid"]).into(),
        reason: text(&results["reason"]),
        ops: text(&results["stats"]["ops"]),
        duration: text(&spec["time-limit"]),
        link,
        stamp,
    }
}

/// Every run of `store`, newest first.
pub fn rows(store: &Path) -> Vec<RunRow> {
    let mut rows: Vec<RunRow> = run_dirs(store).iter().map(|d| row(store, d)).collect();
    rows.sort_by(|a, b| b.stamp.cmp(&a.stamp).then(a.name.cmp(&b.name)));
    rows
}

/// The index page of `store`.
pub fn render(store: &Path) -> anyhow::Result<String> {
    let rows = rows(store);
    let count = |v: &str| rows.iter().filter(|r| r.verdict == v).count();
    let mut context = tera::Context::new();
    context.insert("css", crate::page::CSS);
    context.insert(
        "counts",
        &serde_json::json!({"invalid": count("invalid"), "unknown": count("unknown")}),
    );
    context.insert("runs", &rows);
    let mut tera = tera::Tera::default();
    tera.add_raw_template("index.html", TEMPLATE)
        .context("the index template")?;
    tera.render("index.html", &context)
        .context("rendering the store index")
}

/// Writes `<store>/index.html` (atomically); returns how many runs it lists.
pub fn write(store: &Path) -> anyhow::Result<usize> {
    let page = render(store)?;
    let path = store.join("index.html");
    crate::page::write_atomically(&path, &page)?;
    Ok(run_dirs(store).len())
}
