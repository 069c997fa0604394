//! `store/index.html`: each test's trend over its runs (see [`crate::trends`]), the campaigns
//! (each with its own page), then every run, newest first, filterable, linking to each run's
//! report. Built from each run's `test.json` and `results.json` and the campaign records only
//! (histories are not read), so it stays quick on a store of thousands of runs.

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
    /// The test: the run's folder in the store (a campaign's run name, stamps aside).
    #[serde(skip)]
    test: String,
    #[serde(skip)]
    relative: String,
    #[serde(skip)]
    time_limit_s: f64,
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
    let test_name = dir
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let time_limit_s = spec["time-limit"]
        .as_str()
        .and_then(|t| humantime::parse_duration(t).ok())
        .map_or(0.0, |d| d.as_secs_f64());
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
        test: test_name,
        relative,
        time_limit_s,
    }
}

/// Each test's runs as a trend, with what the campaign records expected of them.
fn trends(records: &[(String, Value)], rows: &[RunRow]) -> Vec<Value> {
    let expected = crate::trends::expectations(records);
    let points = rows
        .iter()
        .map(|row| {
            let campaign = expected.get(&row.relative);
            let seconds = campaign
                .map(|c| c.2)
                .filter(|s| *s > 0.0)
                .unwrap_or(row.time_limit_s);
            let ops: f64 = row.ops.parse().unwrap_or(0.0);
            let point = crate::trends::Point {
                stamp: row.stamp.clone(),
                date: row.date.clone(),
                verdict: row.verdict.clone(),
                expect: campaign.map(|c| c.0.clone()),
                met: campaign.map(|c| c.1),
                link: row.link.clone(),
                seconds,
                ops_per_second: if row.time_limit_s > 0.0 {
                    ops / row.time_limit_s
                } else {
                    0.0
                },
            };
            (row.test.clone(), point)
        })
        .collect();
    crate::trends::group(points)
        .into_iter()
        .map(|trend| {
            let latest = trend.latest().clone();
            let seconds: Vec<f64> = trend.points.iter().map(|p| p.seconds).collect();
            let rates: Vec<f64> = trend.points.iter().map(|p| p.ops_per_second).collect();
            let missed = trend.points.iter().filter(|p| p.met == Some(false)).count();
            serde_json::json!({
                "test": trend.test,
                "runs": trend.points.len(),
                "missed": missed,
                "strip": crate::trends::strip_svg(&trend),
                "latest": latest.verdict,
                "latest_met": latest.met,
                "latest_link": latest.link,
                "latest_date": latest.date,
                "duration": crate::trends::sparkline(&seconds, "s"),
                "rate": crate::trends::sparkline(&rates, "ops/s"),
            })
        })
        .collect()
}

/// The campaign records, newest first, for the index's list.
fn campaigns(records: &[(String, Value)]) -> Vec<Value> {
    records
        .iter()
        .map(|(folder, record)| {
            let runs = record["runs"].as_array().map_or(0, Vec::len);
            let met = record["runs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["met"] == Value::Bool(true))
                .count();
            let not_run = record["not_run"].as_array().map_or(0, Vec::len);
            serde_json::json!({
                "name": text(&record["campaign"]),
                "link": format!("campaigns/{folder}/campaign.html"),
                "started": text(&record["started"]).replace('T', " ").trim_end_matches('Z').to_string(),
                "shard": match (record["shard"]["index"].as_u64(), record["shard"]["count"].as_u64()) {
                    (Some(k), Some(n)) if n > 1 => format!("shard {k}/{n}"),
                    _ => String::new(),
                },
                "runs": runs + not_run,
                "met": met,
                "missed": runs - met + not_run,
            })
        })
        .collect()
}

/// Every run of `store`, newest first.
pub fn rows(store: &Path) -> Vec<RunRow> {
    let mut rows: Vec<RunRow> = run_dirs(store).iter().map(|d| row(store, d)).collect();
    rows.sort_by(|a, b| b.stamp.cmp(&a.stamp).then(a.name.cmp(&b.name)));
    rows
}

/// The index page of `store`.
pub fn render(store: &Path) -> anyhow::Result<String> {
    let records = crate::trends::campaign_records(store);
    Ok(render_page(store, &records)?.0)
}

/// The index page from the store's campaign `records`, and how many runs it lists.
fn render_page(store: &Path, records: &[(String, Value)]) -> anyhow::Result<(String, usize)> {
    let rows = rows(store);
    let count = |v: &str| rows.iter().filter(|r| r.verdict == v).count();
    let mut context = tera::Context::new();
    context.insert("css", crate::page::CSS);
    context.insert(
        "counts",
        &serde_json::json!({"invalid": count("invalid"), "unknown": count("unknown")}),
    );
    context.insert("trends", &trends(records, &rows));
    context.insert("campaigns", &campaigns(records));
    context.insert("runs", &rows);
    let mut tera = tera::Tera::default();
    tera.add_raw_template("index.html", TEMPLATE)
        .context("the index template")?;
    let page = tera
        .render("index.html", &context)
        .context("rendering the store index")?;
    Ok((page, rows.len()))
}

/// Writes `<store>/index.html` (atomically); returns how many runs it lists.
/// Also writes each campaign's page, from the campaign records read once for both.
pub fn write(store: &Path) -> anyhow::Result<usize> {
    let records = crate::trends::campaign_records(store);
    crate::campaign_page::write_all(store, &records)?;
    let (page, runs) = render_page(store, &records)?;
    crate::page::write_atomically(&store.join("index.html"), &page)?;
    Ok(runs)
}
