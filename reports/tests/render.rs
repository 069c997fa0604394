//! Reports rendered from recorded runs (`tests/fixtures/`: a valid raft-kv run, one invalid
//! with a counterexample (`--bug stale-read`), and one interrupted, hence unknown), and the
//! store index over them. Each test renders into a copy, so the fixtures stay as recorded.

mod support;

use std::path::{Path, PathBuf};
use support::{copy_dir, fixture};

/// A store holding the three fixtures as `<store>/<name>/<stamp>/`.
fn store_of_fixtures() -> (tempfile::TempDir, Vec<PathBuf>) {
    let store = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    for (i, name) in ["valid", "invalid", "unknown"].iter().enumerate() {
        let dir = store
            .path()
            .join(name)
            .join(format!("20261201T10000{i}.000Z"));
        copy_dir(&fixture(name), &dir);
        dirs.push(dir);
    }
    (store, dirs)
}

fn render(dir: &Path) -> String {
    let written = reports::page::write(dir).unwrap();
    let page = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(written.bytes, page.len());
    unslash(&page)
}

/// tera escapes `/` in text and attributes as `&#x2F;` (which browsers read as `/`).
fn unslash(html: &str) -> String {
    html.replace("&#x2F;", "/")
}

#[test]
fn a_valid_run_opens_with_its_verdict_spec_plots_and_files() {
    let (_store, dirs) = store_of_fixtures();
    let page = render(&dirs[0]);
    assert!(page.contains(r#"<span class="badge">VALID</span>"#));
    assert!(page.contains("linearizable (387 operations in 4 keys)"));
    for needle in [
        "raft-kv",
        "register",
        "partition, kill",
        "fissure run --spec",
        "<svg",
        "history.jsonl",
        "nodes/n1/node.log",
        "Timeline",
        "partition",
    ] {
        assert!(page.contains(needle), "{needle} missing");
    }
    // Self-contained: no script, no stylesheet link, no address but SVG's namespace.
    assert!(!page.contains("<script") && !page.contains("<link "));
    assert!(!page.contains("https://"));
    assert_eq!(
        page.matches("http://").count(),
        page.matches("http://www.w3.org/").count(),
        "the page refers to another site"
    );
}

#[test]
fn an_invalid_run_shows_its_counterexample() {
    let (_store, dirs) = store_of_fixtures();
    let page = render(&dirs[1]);
    assert!(page.contains(r#"<span class="badge">INVALID</span>"#));
    assert!(page.contains("cannot be placed"), "no counterexample view");
    assert!(page.contains("read returning 4 on key 1 by process 5"));
}

#[test]
fn an_interrupted_run_is_unknown() {
    let (_store, dirs) = store_of_fixtures();
    let page = render(&dirs[2]);
    assert!(page.contains(r#"<span class="badge">UNKNOWN</span>"#));
    assert!(page.contains("the run was interrupted"));
}

#[test]
fn the_index_lists_every_run_newest_first() {
    let (store, dirs) = store_of_fixtures();
    for dir in &dirs {
        reports::page::write(dir).unwrap();
    }
    assert_eq!(reports::index::write(store.path()).unwrap(), 3);
    let whole = unslash(&std::fs::read_to_string(store.path().join("index.html")).unwrap());
    // The runs table (the tests' trends above it link the same runs, by test).
    let page = &whole[whole.find("id=\"runs\"").expect("the runs table")..];
    let at = |needle: &str| {
        page.find(needle)
            .unwrap_or_else(|| panic!("{needle} missing"))
    };
    // Stamps ...0 valid, ...1 invalid, ...2 unknown: newest first.
    assert!(at("unknown/20261201T100002.000Z") < at("invalid/20261201T100001.000Z"));
    assert!(at("invalid/20261201T100001.000Z") < at("valid/20261201T100000.000Z"));
    assert!(page.contains("report.html"));
    assert!(page.contains(r#"class="invalid""#));
}

#[test]
fn markup_from_a_history_is_escaped_in_every_page() {
    let (store, dirs) = store_of_fixtures();
    let dir = &dirs[0];
    // An operation whose value and result are markup, and a reason that is.
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let evil = r#"<script>alert(1)</script>"#;
    let injected = format!(
        "{{\"index\":0,\"time\":1,\"process\":99,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"{evil}\",\"value\":\"{evil}\",\"node\":\"n1\"}}\n\
         {{\"index\":1,\"time\":2,\"process\":99,\"type\":\"ok\",\"f\":\"write\",\"key\":\"{evil}\",\"value\":\"{evil}\",\"node\":\"n1\"}}\n"
    )
    .replace("<script>alert(1)</script>", evil);
    std::fs::write(dir.join("history.jsonl"), injected + &history).unwrap();
    let mut results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    results["reason"] = serde_json::Value::String(format!("because {evil}"));
    results["checkers"]["linearizable"]["reason"] = serde_json::Value::String(evil.into());
    std::fs::write(dir.join("results.json"), results.to_string()).unwrap();

    let page = render(dir);
    reports::index::write(store.path()).unwrap();
    let index = unslash(&std::fs::read_to_string(store.path().join("index.html")).unwrap());
    for (name, html) in [("report", &page), ("index", &index)] {
        assert!(!html.contains(evil), "{name} carries the markup unescaped");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{name} does not show the value escaped"
        );
    }
}

#[test]
fn a_transactional_run_shows_its_isolation_section() {
    // Hand-made (not recorded): a list-append history with a G-single cycle and a G1a, and the
    // isolation result the harness stores under `checkers.txn`.
    let store = tempfile::tempdir().unwrap();
    let dir = store.path().join("txn").join("20261201T100000.000Z");
    copy_dir(&fixture("txn"), &dir);
    let page = render(&dir);
    assert!(page.contains(r#"<span class="badge">INVALID</span>"#));
    assert!(page.contains(r#"<div class="card tx-card" id="tx-G-single-item">"#));
    assert!(page.contains(r#"<div class="card tx-card" id="tx-G1a">"#));
    assert!(page.contains("<svg class=\"tx-svg\""), "no cycle drawn");
    assert_eq!(page.matches("<g class=\"tx-edge ").count(), 3);
    assert!(page.contains(">rw k3 1</text>"));
    assert!(page.contains("<td>repeatable-read</td>"));
    // The section replaces the generic field table, and the whole result is still below it.
    assert!(!page.contains("<th>anomaly_types</th>"));
    assert!(page.contains("everything this checker reported"));
    assert!(!page.contains("<script") && !page.contains("https://"));
    // A run without a transactional result shows nothing of it.
    let (_store, dirs) = store_of_fixtures();
    let plain = render(&dirs[0]);
    assert!(!plain.contains("class=\"card tx-card\"") && !plain.contains("<svg class=\"tx-svg\""));
    assert!(!plain.contains("Models ruled out"));
}

#[test]
fn a_folder_that_is_not_a_run_is_an_error() {
    let empty = tempfile::tempdir().unwrap();
    let error = reports::page::write(empty.path()).unwrap_err();
    assert!(format!("{error:#}").contains("not a run directory"));
}
