//! Targets defined in files, end to end: `fissure target`, target files with mistakes (exit 3,
//! the key named, nothing started), clients written as adapter programs (the Python example, and
//! one that acts then crashes, hangs or babbles), and etcd for real on docker.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join(path)
}

fn fissure(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fissure"))
        .args(args)
        .env(
            "FISSURE_STATE_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("targets-state"),
        )
        .stdin(Stdio::null())
        .output()
        .expect("fissure runs")
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

const GOOD: &str = r#"name = "mydb"
workloads = ["register"]

[node]
start = "/usr/bin/mydb --name {{ node.name }} --peers {% for p in peers %}{{ p.address }}{% endfor %}"
ready = { tcp = "client" }

[client]
adapter = { program = "python3", args = ["client.py"] }
"#;

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

#[test]
fn the_shipped_targets_are_listed_shown_and_check_out() {
    let out = fissure(&["target", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    for name in ["raft-kv", "quorum", "twopc", "echo", "etcd"] {
        assert!(listed.contains(name), "{listed}");
    }
    let dir = tempfile::tempdir().unwrap();
    for name in ["raft-kv", "twopc", "etcd"] {
        let shown = fissure(&["target", "show", name]);
        assert_eq!(shown.status.code(), Some(0), "{}", text(&shown));
        let file = write(
            dir.path(),
            &format!("{name}.toml"),
            &String::from_utf8_lossy(&shown.stdout),
        );
        let checked = fissure(&["target", "check", &file]);
        assert_eq!(checked.status.code(), Some(0), "{}", text(&checked));
    }
}

#[test]
fn a_target_file_with_a_mistake_exits_3_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "typo.toml",
            GOOD.replace("start =", "strat ="),
            "line 5: unknown field `strat`",
        ),
        (
            "missing.toml",
            GOOD.replace("workloads = [\"register\"]\n", ""),
            "missing field `workloads`",
        ),
        (
            "template.toml",
            GOOD.replace("p.address", "p.adress"),
            "node.start",
        ),
        (
            "ready.toml",
            GOOD.replace(
                "ready = { tcp = \"client\" }",
                "ready = { tcp = \"admin\" }",
            ),
            "node.ready.tcp",
        ),
        (
            "limits.toml",
            format!("{GOOD}\n[limits]\nclok = \"no\"\n"),
            "limits.clok",
        ),
    ];
    for (name, content, expected) in cases {
        let file = write(dir.path(), name, &content);
        for args in [
            vec!["target", "check", file.as_str()],
            // A run with it starts nothing: it stops at the spec.
            vec![
                "run",
                "--target",
                file.as_str(),
                "--nodes",
                "1",
                "--nemesis",
                "none",
            ],
        ] {
            let out = fissure(&args);
            assert_eq!(out.status.code(), Some(3), "{name}: {}", text(&out));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(expected),
                "{name}: wanted {expected:?} in {stderr}"
            );
        }
    }
}

#[test]
fn faults_a_target_cannot_take_are_refused_before_anything_starts() {
    let store = tempfile::tempdir().unwrap();
    let store = store.path().to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            // Vagrant's docker provider: containers share the host's clock.
            &[
                "--target",
                "etcd",
                "--backend",
                "vagrant",
                "--nemesis",
                "clock",
            ],
            "only VMs own theirs",
        ),
        (
            &[
                "--target",
                "etcd",
                "--backend",
                "docker",
                "--nemesis",
                "partition,clock",
            ],
            "clock: etcd reads the clock where libfaketime cannot",
        ),
        (
            &[
                "--target",
                "etcd",
                "--backend",
                "local",
                "--nemesis",
                "partition",
            ],
            "use --backend docker",
        ),
        (
            &["--target", "etcd", "--set", "reads=stale"],
            "reads=\"stale\" is not allowed",
        ),
        (
            &["--target", "etcd", "--workload", "bank"],
            "its client runs register, set",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["run", "--store", store];
        all.extend_from_slice(args);
        let started = std::time::Instant::now();
        let out = fissure(&all);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(expected),
            "{args:?}: wanted {expected:?}: {}",
            text(&out)
        );
        assert!(
            started.elapsed().as_secs() < 10,
            "{args:?} took long: did it start something?"
        );
    }
    assert!(
        std::fs::read_dir(store).unwrap().next().is_none(),
        "a refused run stored something"
    );
}

fn python() -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: python3 is not installed (apt-get install python3)");
    }
    ok
}

/// How many operations of a stored run's history ended each way.
fn outcomes(run: &Path) -> (usize, usize, usize) {
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let mut counts = (0, 0, 0);
    for line in history.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        if event["process"] == "nemesis" {
            continue;
        }
        match event["type"].as_str() {
            Some("ok") => counts.0 += 1,
            Some("fail") => counts.1 += 1,
            Some("info") => counts.2 += 1,
            _ => {}
        }
    }
    counts
}

/// Runs `fissure run ARGS --store STORE`, which must come out valid; the outcomes it recorded.
fn run_valid(store: &Path, args: &[&str]) -> (usize, usize, usize) {
    let mut all = vec!["run", "--store", store.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = fissure(&all);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    outcomes(&latest_run(store))
}

fn latest_run(store: &Path) -> PathBuf {
    let test = std::fs::read_dir(store)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "latest"))
        .expect("a test folder");
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&test)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("history.jsonl").exists())
        .collect();
    runs.sort();
    runs.pop().expect("a run")
}

#[test]
fn the_python_example_adapter_drives_a_run_to_a_valid_verdict() {
    if !python() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let target = repo("examples/adapters/raft-kv.toml");
    let target = target.to_str().unwrap();
    let flags = "--nodes 3 --time-limit 5s --nemesis partition,kill --nemesis-interval 1s \
                 --recovery 2s --seed 7";
    let mut args = vec!["--target", target];
    args.extend(flags.split_whitespace());
    let (ok, _, _) = run_valid(store.path(), &args);
    assert!(ok > 50, "the adapter answered only {ok} operations ok");
}

#[test]
fn a_flaky_adapter_yields_info_and_a_log_line_never_a_wrong_verdict() {
    if !python() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let adapters = repo("examples/adapters");
    let template = std::fs::read_to_string(adapters.join("flaky.toml")).unwrap();
    for mode in ["crash", "hang", "garbage"] {
        // The file's relative paths start from its folder: keep the copy next to the adapters.
        let content = template
            .replace("\"crash\", \"7\"", &format!("\"{mode}\", \"5\""))
            .replace(
                "args = [\"flaky.py\"",
                &format!("args = [\"{}/flaky.py\"", adapters.display()),
            );
        let target = write(dir.path(), &format!("flaky-{mode}.toml"), &content);
        let store = dir.path().join(format!("store-{mode}"));
        let out = fissure(&[
            "run",
            "--target",
            &target,
            "--nodes",
            "3",
            "--time-limit",
            "4s",
            "--nemesis",
            "none",
            "--op-timeout",
            "2s",
            "--recovery",
            "1s",
            "--store",
            store.to_str().unwrap(),
            "--seed",
            "3",
        ]);
        assert_eq!(out.status.code(), Some(0), "{mode}: {}", text(&out));
        let run = latest_run(&store);
        let (ok, _, info) = outcomes(&run);
        assert!(ok > 20 && info > 3, "{mode}: {ok} ok, {info} info");
        let logs: String = std::fs::read_dir(run.join("clients"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect();
        assert!(
            logs.contains("misbehaving on purpose"),
            "{mode}: the adapter's stderr is lost"
        );
        assert!(
            logs.contains("--- fissure: killing pid"),
            "{mode}: no line says what happened"
        );
    }
}

#[path = "support/docker.rs"]
mod docker_support;
use docker_support::docker_available;

/// etcd from Debian's package on a docker cluster made for each run (and removed after it):
/// linearizable under partitions, crashes and pauses with its default reads; and with
/// serializable reads a partitioned member serves overwritten values, which the checker finds.
/// The campaign `campaigns/etcd.toml` does the same over five seeds each.
#[test]
fn etcd_on_docker_is_linearizable_and_its_serializable_reads_are_not() {
    if !docker_available("etcd_on_docker") {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let store = store.path().to_str().unwrap();
    let common = [
        "run",
        "--target",
        "etcd",
        "--backend",
        "docker",
        "--nodes",
        "5",
        "--time-limit",
        "16s",
        "--nemesis-interval",
        "4s",
        "--recovery",
        "2s",
        "--store",
        store,
    ];
    let mut correct = common.to_vec();
    correct.extend(["--nemesis", "partition,kill,pause", "--seed", "11"]);
    let out = fissure(&correct);
    assert_eq!(out.status.code(), Some(0), "correct etcd: {}", text(&out));
    let summary = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(summary.contains("faults applied"), "{summary}");
    // Serializable reads under partitions. A stale read needs the majority to commit writes
    // while a process on the minority side reads, so the recipe keeps many processes on every
    // node (50), frees a process stuck on a minority write after 1 s, and cuts the cluster into
    // random halves (two members serve stale reads). Measured with the debug binary under busy
    // loops: 10 of 10 seeds found in 16 s runs (two busy loops), and 6 of 8 with a single
    // partition in 8 s runs (three). Up to three seeds are tried; every miss's summary is kept
    // for the message.
    let mut tries = Vec::new();
    let mut found = None;
    for seed in ["2", "3", "4"] {
        let mut stale = common.to_vec();
        stale.extend([
            "--set",
            "reads=serializable",
            "--nemesis",
            "partition",
            "--partitions",
            "random-halves",
            "--concurrency",
            "50",
            "--op-timeout",
            "1s",
            "--seed",
            seed,
        ]);
        let out = fissure(&stale);
        match out.status.code() {
            Some(1) => {
                found = Some(String::from_utf8_lossy(&out.stdout).to_string());
                break;
            }
            Some(0) => tries.push(format!(
                "seed {seed}, valid:\n{}",
                String::from_utf8_lossy(&out.stdout)
            )),
            _ => panic!("serializable etcd: {}", text(&out)),
        }
    }
    let found = found.unwrap_or_else(|| {
        panic!(
            "serializable reads under partitions were never caught stale:\n{}",
            tries.join("\n")
        )
    });
    assert!(found.contains("read"), "{found}");
}

/// etcd from the host's own etcd-server package, on the local backend: its peers share one
/// membership list, so partitions are refused there, and kills and pauses are what it gets.
#[test]
fn etcd_runs_on_the_local_backend_under_kills_and_pauses() {
    if !Path::new("/usr/bin/etcd").exists() {
        assert!(
            std::env::var("FISSURE_SKIP_ETCD").is_ok_and(|v| v == "1"),
            "etcd is not installed: apt-get install etcd-server (or FISSURE_SKIP_ETCD=1 to skip)"
        );
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let flags = "--target etcd --nodes 3 --time-limit 8s --nemesis-interval 2s --recovery 2s \
                 --nemesis kill,pause --seed 5";
    let args: Vec<&str> = flags.split_whitespace().collect();
    let (ok, _, _) = run_valid(store.path(), &args);
    assert!(ok > 50, "only {ok} operations ok");
    // Asked for no faults by name, it gets the defaults it can take: kills, not partitions.
    let out = fissure(&[
        "run",
        "--target",
        "etcd",
        "--nodes",
        "3",
        "--plan",
        "--plan-ops",
        "1",
        "--store",
        store.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        plan.contains("kill") && !plan.contains("partition"),
        "{plan}"
    );
}

/// A target file's own kill, pause and resume commands run instead of Fissure's signals (here
/// they note themselves in a file, then signal the pid Fissure keeps in `node.pid_file`).
#[test]
fn a_targets_own_fault_commands_are_run() {
    if !Path::new("/usr/bin/etcd").exists() {
        assert!(
            std::env::var("FISSURE_SKIP_ETCD").is_ok_and(|v| v == "1"),
            "etcd is not installed: apt-get install etcd-server (or FISSURE_SKIP_ETCD=1 to skip)"
        );
        return;
    }
    let shown = fissure(&["target", "show", "etcd"]);
    let hooks = r#"[node]
kill = "echo kill >> {{ node.dir }}/faults.log; kill -9 $(cat {{ node.pid_file }})"
pause = "echo pause >> {{ node.dir }}/faults.log; kill -STOP $(cat {{ node.pid_file }})"
resume = "echo resume >> {{ node.dir }}/faults.log; kill -CONT $(cat {{ node.pid_file }})"
"#;
    let file = String::from_utf8_lossy(&shown.stdout).replacen("[node]\n", hooks, 1);
    let dir = tempfile::tempdir().unwrap();
    let target = write(dir.path(), "etcd-hooks.toml", &file);
    let store = dir.path().join("store");
    let flags = "--nodes 3 --time-limit 8s --nemesis-interval 2s --recovery 2s \
                 --nemesis kill,pause --seed 2";
    let mut args = vec!["--target", target.as_str()];
    args.extend(flags.split_whitespace());
    run_valid(&store, &args);
    let run = latest_run(&store);
    let noted: String = ["n1", "n2", "n3"]
        .iter()
        .map(|n| {
            std::fs::read_to_string(run.join("nodes").join(n).join("faults.log"))
                .unwrap_or_default()
        })
        .collect();
    assert!(
        noted.contains("kill") && noted.contains("pause") && noted.contains("resume"),
        "{noted:?}"
    );
}
