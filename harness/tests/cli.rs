//! The `fissure` CLI end to end: exit codes, JSON fields, conversion, and errors that name the
//! file and line.

use std::path::PathBuf;
use std::process::{Command, Output};

fn corpus(path: &str) -> PathBuf {
    let dir = std::env::var_os("FISSURE_CORPUS").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus")),
        PathBuf::from,
    );
    dir.join(path)
}

fn fissure(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fissure"))
        .args(args)
        .output()
        .expect("fissure runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn valid_and_invalid_histories_exit_0_and_1() {
    let valid = corpus("porcupine/jepsen/etcd_002.log");
    let out = fissure(&["check", valid.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("VALID"));

    let invalid = corpus("knossos/cas-register/bad/rethink-fail-minimal.edn");
    let out = fissure(&["check", invalid.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("INVALID") && stdout.contains("cannot be placed"),
        "{stdout}"
    );
}

#[test]
fn json_output_has_the_promised_fields() {
    let file = corpus("porcupine/kv/c10-bad.txt");
    let out = fissure(&["check", "--json", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(json["valid"], serde_json::json!(false));
    assert_eq!(json["model"], "kv");
    assert_eq!(json["format"], "porcupine-kv");
    assert_eq!(json["ops"], 405);
    assert!(json["parse_ms"].as_f64().unwrap() > 0.0);
    assert!(json["check_ms"].as_f64().unwrap() > 0.0);
    assert!(json["shrink_ms"].as_f64().unwrap() > 0.0);
    let cx = &json["counterexample"];
    assert!(cx["key"].is_string());
    assert_eq!(cx["unplaceable"].as_array().unwrap().len(), 1);
    assert!(!cx["states_before"].as_array().unwrap().is_empty());
}

/// Twelve concurrent appends and a read that matches none of their orders: proving that takes an
/// exhaustive search, which a tiny budget cuts short.
fn write_hard_history(path: &std::path::Path) {
    let mut lines = Vec::new();
    for kind in ["invoke", "ok"] {
        for p in 0..12 {
            lines.push(format!(
                r#"{{"process":{p},"type":"{kind}","f":"append","key":"k","value":"{p},"}}"#
            ));
        }
    }
    lines.push(r#"{"process":99,"type":"invoke","f":"get","key":"k","value":null}"#.into());
    lines.push(r#"{"process":99,"type":"ok","f":"get","key":"k","value":"nope"}"#.into());
    std::fs::write(path, lines.join("\n")).unwrap();
}

#[test]
fn an_exhausted_budget_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    write_hard_history(&dir.path().join("history.jsonl"));
    // A run directory works as well as the history inside it.
    let run_dir = dir.path().to_str().unwrap();
    let out = fissure(&["check", "--memory-limit", "64KiB", "--json", run_dir]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], "unknown");
    assert!(json["reason"].as_str().unwrap().contains("memory"));

    let out = fissure(&["check", "--time-limit", "1ms", run_dir]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("time limit"));
}

#[test]
fn bad_input_exits_3_with_a_clear_message() {
    let out = fissure(&["check", "/nonexistent/history.jsonl"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("cannot read history /nonexistent/history.jsonl"));

    let out = fissure(&["check", "--model", "btree", "x.jsonl"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("unknown model \"btree\""), "{stderr}");

    let out = fissure(&["check", "--time-limit", "soon", "x.jsonl"]);
    assert_eq!(out.status.code(), Some(3));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.jsonl");
    let invoke = r#"{"process":0,"type":"invoke","f":"read"}"#;
    std::fs::write(
        &path,
        format!("{invoke}\n{{\"process\":0,\"type\":\"okay\",\"f\":\"read\"}}\n"),
    )
    .unwrap();
    let out = fissure(&["check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("broken.jsonl: line 2:") && stderr.contains("okay"),
        "{stderr}"
    );

    // A model that does not know a function names the line of the operation.
    let done = r#"{"process":0,"type":"ok","f":"read","value":1}"#;
    let frob = r#"{"process":0,"type":"invoke","f":"frob"}"#;
    std::fs::write(&path, format!("{invoke}\n{done}\n{frob}\n")).unwrap();
    let out = fissure(&["check", "--model", "register", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("line 3") && stderr.contains("frob"),
        "{stderr}"
    );
}

#[test]
fn help_exits_0() {
    let out = fissure(&["check", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("--time-limit"));
}

#[test]
fn convert_round_trips_and_keeps_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let source = corpus("knossos/cas-register/bad/cas-failure.edn");
    let jsonl = dir.path().join("history.jsonl");
    let edn = dir.path().join("again.edn");
    let out = fissure(&[
        "convert",
        "--to",
        "jsonl",
        source.to_str().unwrap(),
        "-o",
        jsonl.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = fissure(&[
        "convert",
        "--to",
        "edn",
        jsonl.to_str().unwrap(),
        "-o",
        edn.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // jsonl has no convention for the initial value, so give Knossos' 0.
    let out = fissure(&["check", "--init", "0", jsonl.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let out = fissure(&["check", edn.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));

    let out = fissure(&["convert", "--to", "xml", source.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));

    // Porcupine's etcd log means something else by `fail` and by a nil read than EDN does.
    let etcd = corpus("porcupine/jepsen/etcd_000.log");
    let out = fissure(&["convert", "--to", "edn", etcd.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--fail-means observed"), "{stderr}");
    assert!(stderr.contains("unknown value"), "{stderr}");
}

/// `fissure` with an empty state directory and a Docker daemon that is not there.
fn fissure_without_docker(state: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fissure"))
        .args(args)
        .env("FISSURE_STATE_DIR", state)
        .env(
            "DOCKER_HOST",
            "unix:///nonexistent/fissure-test-docker.sock",
        )
        .output()
        .expect("fissure runs")
}

#[test]
fn a_missing_docker_daemon_or_cluster_is_a_clear_error() {
    let state = tempfile::tempdir().unwrap();
    let up = fissure_without_docker(state.path(), &["cluster", "up", "c1", "--nodes", "3"]);
    assert_eq!(up.status.code(), Some(3), "{}", text(&up.stderr));
    assert!(
        text(&up.stderr).contains("the Docker daemon is not running"),
        "{}",
        text(&up.stderr)
    );
    let store = state.path().join("store");
    let run = fissure_without_docker(
        state.path(),
        &[
            "run",
            "--backend",
            "docker",
            "--cluster",
            "nope",
            "--nodes",
            "3",
            "--store",
            store.to_str().unwrap(),
        ],
    );
    assert_eq!(run.status.code(), Some(3));
    assert!(
        text(&run.stderr).contains("no cluster named \"nope\""),
        "{}",
        text(&run.stderr)
    );
    let heal = fissure_without_docker(state.path(), &["heal", "nope"]);
    assert_eq!(heal.status.code(), Some(3));
    assert!(
        text(&heal.stderr).contains("cluster up"),
        "{}",
        text(&heal.stderr)
    );
    let doctor = fissure_without_docker(state.path(), &["doctor", "--backend", "docker"]);
    assert_eq!(doctor.status.code(), Some(3));
    let table = text(&doctor.stdout);
    assert!(
        table.contains("NO  docker daemon") && table.contains("fix:"),
        "{table}"
    );
    let bad_name = fissure_without_docker(state.path(), &["cluster", "down", "a/b"]);
    assert_eq!(bad_name.status.code(), Some(3));
    assert!(text(&bad_name.stderr).contains("bad cluster name"));
    let local_cluster = fissure_without_docker(state.path(), &["run", "--cluster", "x"]);
    assert_eq!(local_cluster.status.code(), Some(3));
    assert!(text(&local_cluster.stderr).contains("--backend docker"));
}

#[test]
fn doctor_reports_every_fault_of_the_local_backend() {
    let out = fissure(&["doctor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    for fault in ["partition", "latency", "loss", "kill", "pause", "clock"] {
        assert!(table.contains(fault), "{fault} missing from:\n{table}");
    }
}

/// Knossos' conventions: nemesis entries alone make a (vacuously) linearizable history, and a
/// multi-register starts from a map of initial values.
#[test]
fn knossos_conventions_nemesis_only_and_a_map_init() {
    let dir = tempfile::tempdir().unwrap();
    let nemesis = dir.path().join("nemesis-only.edn");
    std::fs::write(
        &nemesis,
        "[{:process :nemesis, :type :info, :f :start, :value nil}\n \
         {:process :nemesis, :type :info, :f :stop, :value nil}]\n",
    )
    .unwrap();
    let out = fissure(&["check", nemesis.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("nothing to place"),
        "{}",
        text(&out.stdout)
    );
    let out = fissure(&["check", "--json", nemesis.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(json["valid"], serde_json::json!(true));
    assert_eq!(json["ops"], 0);
    assert!(json["note"]
        .as_str()
        .unwrap()
        .contains("no client operation"));

    // An empty file is more likely a mistake than a history.
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let out = fissure(&["check", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("no entries"),
        "{}",
        text(&out.stderr)
    );

    // y is read as 0 before anything writes it: valid from {"x":0,"y":0}, not from null.
    let registers = dir.path().join("multi.edn");
    std::fs::write(
        &registers,
        "[{:process 0, :type :invoke, :f :txn, :value [[:write :x 1]]}\n \
         {:process 0, :type :ok, :f :txn, :value [[:write :x 1]]}\n \
         {:process 1, :type :invoke, :f :txn, :value [[:read :y nil] [:read :x nil]]}\n \
         {:process 1, :type :ok, :f :txn, :value [[:read :y 0] [:read :x 1]]}]\n",
    )
    .unwrap();
    let path = registers.to_str().unwrap();
    let with_map = [
        "check",
        "--model",
        "multi-register",
        "--init",
        r#"{"x":0,"y":0}"#,
        path,
    ];
    let out = fissure(&with_map);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = fissure(&["check", "--model", "multi-register", path]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let nested = [
        "check",
        "--model",
        "multi-register",
        "--init",
        r#"{"x":[0]}"#,
        path,
    ];
    let out = fissure(&nested);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("\"x\""), "{}", text(&out.stderr));
}
