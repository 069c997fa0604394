//! `fissure campaign` end to end: runs side by side, a run that misses its expectation fails
//! the campaign (exit 1) and its JUnit test case, and a declared SLO is checked and exits 4.

use std::process::{Command, Stdio};

fn fissure(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fissure"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("fissure runs")
}

fn text(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_missed_expectation_fails_the_campaign_and_its_test_case() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        r#"
name = "tiny"
[defaults]
target = "raft-kv"
nodes = 3
time-limit = "3s"
nemesis = ["partition"]
nemesis-interval = "1s"
rate = 60
[[runs]]
label = "ok"
seeds = [1]
[[runs]]
label = "wrong"
seeds = [1]
expect = "invalid"
"#,
    )
    .unwrap();
    let out = fissure(
        &[
            "campaign",
            "c.toml",
            "--parallel",
            "2",
            "--junit",
            "junit.xml",
            "--store",
            "store",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("2 runs, 1 as expected, 1 missed"),
        "{stdout}"
    );
    assert!(stdout.contains("MISSED"), "{stdout}");
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(junit.contains("tests=\"2\" failures=\"1\""), "{junit}");
    assert!(junit.contains("tiny-wrong-raft-kv-register-partition-s1"));
    assert!(dir.path().join("store/index.html").is_file());
    let index = std::fs::read_to_string(dir.path().join("store/index.html")).unwrap();
    assert!(index.contains("tiny-ok-raft-kv-register-partition-s1"));
}

#[test]
fn a_breached_slo_exits_4_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("spec.toml"),
        r#"
target = "raft-kv"
nodes = 3
time-limit = "3s"
nemesis = ["partition"]
nemesis-interval = "1s"
rate = 60
seed = 1
store = "store"
[slo]
p99_ms = 0.001
"#,
    )
    .unwrap();
    let out = fissure(&["run", "--spec", "spec.toml"], dir.path());
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("SLO: BREACHED"));
    let latest = dir.path().join("store/latest");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(latest.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["valid"], true, "safety is apart from SLOs");
    assert_eq!(results["slo"]["verdict"], "fail");
    assert!(results["slo"]["breaches"][0]["message"]
        .as_str()
        .unwrap()
        .contains("p99"));
    let report = std::fs::read_to_string(latest.join("report.html")).unwrap();
    assert!(report.contains("service levels (SLO)") && report.contains("breached"));
    // A bad threshold is refused before anything starts.
    std::fs::write(
        dir.path().join("bad.toml"),
        "target = \"raft-kv\"\n[slo]\navailability = 99\n",
    )
    .unwrap();
    let out = fissure(&["run", "--spec", "bad.toml"], dir.path());
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("slo.availability"), "{}", text(&out));
}
