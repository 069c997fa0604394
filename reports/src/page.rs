//! A run's `report.html`: verdict and reason first, then the spec and the command that reruns
//! it, plots with fault windows, each checker's findings (the counterexample view for an
//! invalid linearizability verdict, the isolation section for a transactional one, a generic
//! view for any other checker), a timeline around the interesting region, the faults, and links
//! to the stored files. One self-contained file: inline CSS and SVG, no script, nothing fetched.

use crate::data::{Outcome, RunData};
use crate::index::verdict;
use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

const TEMPLATE: &str = include_str!("templates/report.html");
/// Shared by the report and the index.
pub const CSS: &str = include_str!("templates/style.css");
/// The timeline shows at most this many operations.
const TIMELINE_OPS: usize = 1500;
/// The fault table lists at most this many windows.
const FAULT_ROWS: usize = 200;
/// A checker's full result is shown up to this many bytes.
const DETAILS_BYTES: usize = 64 * 1024;

/// What writing a report did.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    pub ops: usize,
    pub bytes: usize,
    pub millis: f64,
}

#[derive(Serialize)]
struct Checker {
    name: String,
    verdict: String,
    class: String,
    reason: String,
    view: Option<String>,
    fields: Vec<(String, String)>,
    details: String,
}

#[derive(Serialize)]
struct Fault {
    kind: String,
    start: String,
    end: String,
    detail: String,
}

fn seconds(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            items.iter().map(text).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

/// Rows of a flat table: the scalar (or short) fields of an object, in order.
fn scalar_rows(object: &Value, skip: &[&str]) -> Vec<(String, String)> {
    let Some(map) = object.as_object() else {
        return Vec::new();
    };
    map.iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .filter_map(|(k, v)| {
            let shown = text(v);
            (shown.len() <= 300 && !shown.is_empty()).then(|| (k.clone(), shown))
        })
        .collect()
}

/// A result as indented JSON, cut at [`DETAILS_BYTES`] (the file has all of it).
fn pretty_cut(value: &Value) -> String {
    let mut details = serde_json::to_string_pretty(value).unwrap_or_default();
    if details.len() > DETAILS_BYTES {
        let mut cut = DETAILS_BYTES;
        while !details.is_char_boundary(cut) {
            cut -= 1;
        }
        details.truncate(cut);
        details.push_str("\n… (cut; the whole result is in results.json)");
    }
    details
}

fn checkers(results: &Value, dir: &Path) -> Vec<Checker> {
    let Some(map) = results["checkers"].as_object() else {
        return Vec::new();
    };
    map.iter()
        .map(|(name, result)| {
            let word = verdict(&result["valid"]);
            let details = pretty_cut(result);
            // The isolation checker's result has a section of its own, which shows every field.
            let txn = crate::txn::is_txn_result(name, result);
            let view = if txn {
                Some(crate::txn::checker_view(result, &dir.join("history.jsonl")))
            } else {
                crate::counterexample::render(result)
            };
            Checker {
                name: name.clone(),
                verdict: word.into(),
                class: match word {
                    "valid" => "ok",
                    "invalid" => "fail",
                    _ => "info",
                }
                .into(),
                reason: text(&result["reason"]),
                view,
                fields: if txn {
                    Vec::new()
                } else {
                    scalar_rows(result, &["valid", "reason"])
                },
                details,
            }
        })
        .collect()
}

/// The SLO result (`results.json`'s `slo`), as a checker card: its breaches and recoveries
/// listed, the windows and phases in the full result below.
fn slo_card(slo: &Value) -> Option<Checker> {
    slo.as_object()?;
    let esc = crate::html::escape;
    let verdict = slo["verdict"].as_str().unwrap_or("not-checked");
    let mut view = String::new();
    let list = |title: &str, items: Vec<String>, view: &mut String| {
        if !items.is_empty() {
            view.push_str(&format!("<p><strong>{}</strong></p><ul>", esc(title)));
            for item in items {
                view.push_str(&format!("<li>{}</li>", esc(&item)));
            }
            view.push_str("</ul>");
        }
    };
    let breaches = slo["breaches"].as_array().cloned().unwrap_or_default();
    list(
        "breaches",
        breaches.iter().map(|b| text(&b["message"])).collect(),
        &mut view,
    );
    let recoveries = slo["recoveries"].as_array().cloned().unwrap_or_default();
    let secs = |v: &Value| {
        v.as_f64()
            .map_or("never".to_string(), |s| format!("{s:.2} s"))
    };
    list(
        "recovery after each heal (first ok · back to steady throughput)",
        recoveries
            .iter()
            .map(|r| match r["healed_at_s"].as_f64() {
                Some(at) => format!(
                    "{} healed at {at:.2} s: first ok after {}, steady after {}",
                    text(&r["fault"]),
                    secs(&r["first_ok_s"]),
                    secs(&r["steady_s"])
                ),
                None => format!("{}: never healed", text(&r["fault"])),
            })
            .collect(),
        &mut view,
    );
    let phases = slo["phases"].as_array().cloned().unwrap_or_default();
    list(
        "phases (availability · p99 of ok ops)",
        phases
            .iter()
            .map(|p| {
                format!(
                    "{} ({}–{} s): {} ops, availability {}, p99 {} ms",
                    text(&p["name"]),
                    text(&p["start_s"]),
                    text(&p["end_s"]),
                    text(&p["ops"]),
                    p["availability"]
                        .as_f64()
                        .map_or("-".into(), |a| format!("{:.1}%", a * 100.0)),
                    p["p99_ms"]
                        .as_f64()
                        .map_or("-".into(), |v| format!("{v:.1}"))
                )
            })
            .collect(),
        &mut view,
    );
    let details = pretty_cut(slo);
    Some(Checker {
        name: "service levels (SLO)".into(),
        verdict: match verdict {
            "pass" => "met",
            "fail" => "breached",
            _ => "not checked",
        }
        .into(),
        class: match verdict {
            "pass" => "ok",
            "fail" => "fail",
            _ => "info",
        }
        .into(),
        reason: text(&slo["reason"]),
        view: Some(format!("<p>{}</p>{view}", esc(&text(&slo["reason"])))),
        fields: Vec::new(),
        details,
    })
}

fn spec_rows(spec: &Value) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    for (label, key) in [
        ("target", "target"),
        ("planted bug", "bug"),
        ("target options", "set"),
        ("workload", "workload"),
        ("faults", "nemesis"),
        ("fault interval", "nemesis-interval"),
        ("backend", "backend"),
        ("cluster", "cluster"),
        ("nodes", "nodes"),
        ("time limit", "time-limit"),
        ("concurrency", "concurrency"),
        ("rate", "rate"),
        ("seed", "seed"),
    ] {
        let value = text(&spec[key]);
        if !value.is_empty() {
            rows.push((label.to_string(), value));
        }
    }
    if spec["backend"] == "none" {
        rows.push((
            "faults".to_string(),
            "off: clients only, against a system already running (--backend none)".to_string(),
        ));
    }
    rows
}

/// Links to the run's files that exist.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for (file, label) in [
        ("history.jsonl", "history.jsonl (every operation and fault)"),
        ("results.json", "results.json"),
        ("test.json", "test.json (the spec)"),
        ("fissure.log", "fissure.log (the controller's log)"),
    ] {
        if dir.join(file).is_file() {
            files.push((file.to_string(), label.to_string()));
        }
    }
    let mut nodes: Vec<_> = std::fs::read_dir(dir.join("nodes"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    nodes.sort();
    for node in nodes {
        let node = node.to_string_lossy();
        for log in ["node.log", "links.log"] {
            if dir.join("nodes").join(&*node).join(log).is_file() {
                files.push((format!("nodes/{node}/{log}"), format!("{node}: {log}")));
            }
        }
    }
    files
}

/// The report page of `data`.
pub fn render(data: &RunData) -> anyhow::Result<String> {
    let test = &data.test;
    let results = &data.results;
    let count = |o: Outcome| data.ops.iter().filter(|op| op.outcome == o).count();
    let plots = crate::plots::render(data).context("drawing the plots")?;
    let window = crate::timeline::interesting_window(data, TIMELINE_OPS);
    let timeline = crate::timeline::render(data, window, TIMELINE_OPS);
    let faults: Vec<Fault> = (data.faults.iter().take(FAULT_ROWS))
        .map(|w| Fault {
            kind: w.kind.clone(),
            start: seconds(w.start_ns),
            end: w.end_ns.map_or("never healed".into(), seconds),
            detail: w.detail.clone(),
        })
        .collect();
    let dir_name = data.dir.display().to_string();
    let title = match test["spec"]["name"].as_str() {
        Some(name) => format!(
            "{name} · {}",
            data.dir.file_name().unwrap_or_default().to_string_lossy()
        ),
        None => dir_name.clone(),
    };
    let mut context = tera::Context::new();
    context.insert(
        "css",
        &format!(
            "{CSS}\n{}\n{}\n{}",
            crate::timeline::CSS,
            crate::counterexample::CSS,
            crate::txn::CSS
        ),
    );
    context.insert("title", &title);
    context.insert("started", &text(&test["started"]));
    context.insert("verdict", verdict(&results["valid"]));
    context.insert(
        "reason",
        &match text(&results["reason"]) {
            r if r.is_empty() => "not checked yet".to_string(),
            r => r,
        },
    );
    context.insert("spec", &spec_rows(&test["spec"]));
    context.insert(
        "rerun",
        &match text(&test["rerun"]) {
            r if r.is_empty() => format!("fissure run --spec {dir_name}"),
            r => r,
        },
    );
    context.insert(
        "counts",
        &serde_json::json!({
            "ops": data.ops.len(),
            "ok": count(Outcome::Ok),
            "fail": count(Outcome::Fail),
            "info": count(Outcome::Info),
            "open": count(Outcome::Open),
            "faults": data.faults.len(),
        }),
    );
    context.insert("skipped_lines", &data.skipped_lines);
    context.insert(
        "plots",
        &serde_json::json!({
            "latency": plots.latency,
            "quantiles": plots.quantiles,
            "throughput": plots.throughput,
        }),
    );
    let mut cards = checkers(results, &data.dir);
    cards.extend(slo_card(&results["slo"]));
    context.insert("checkers", &cards);
    context.insert("timeline", &timeline);
    context.insert("faults", &faults);
    context.insert("faults_cut", &data.faults.len().saturating_sub(FAULT_ROWS));
    context.insert("run_facts", &scalar_rows(&results["run"], &[]));
    context.insert("files", &files(&data.dir));
    context.insert("dir", &dir_name);
    context.insert("version", env!("CARGO_PKG_VERSION"));
    let mut tera = tera::Tera::default();
    tera.add_raw_template("report.html", TEMPLATE)
        .context("the report template")?;
    tera.render("report.html", &context)
        .context("rendering the report")
}

/// Writes `<dir>/report.html` from the run's stored files.
pub fn write(dir: &Path) -> anyhow::Result<Written> {
    let started = Instant::now();
    let data = RunData::load(dir)?;
    let page = render(&data)?;
    write_atomically(&dir.join("report.html"), &page)?;
    Ok(Written {
        ops: data.ops.len(),
        bytes: page.len(),
        millis: started.elapsed().as_secs_f64() * 1e3,
    })
}

/// Writes `contents` to `path` through a temporary file, so a reader never sees half a page.
pub fn write_atomically(path: &Path, contents: &str) -> anyhow::Result<()> {
    // A name of this writer's own: parallel runs of a campaign refresh one index.
    let partial = path.with_extension(format!("html.{}.partial", std::process::id()));
    std::fs::write(&partial, contents)
        .and_then(|()| std::fs::rename(&partial, path))
        .with_context(|| format!("cannot write {}", path.display()))
}
