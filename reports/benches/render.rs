//! What a report costs on big histories (`cargo bench -p reports`): a synthetic run of 100,000
//! and of 1,000,000 operations (10 processes, reads, writes and cas on 50 keys, a fault every
//! 5 s, an invalid verdict with a counterexample in the middle) is written to disk, then
//! `report.html` is rendered from it as `fissure report` does. Prints time and page size.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// A tiny deterministic generator (no dependency for the bench).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn write_run(dir: &Path, ops: u64) {
    let mut rng = Lcg(42);
    let mut history =
        std::io::BufWriter::new(std::fs::File::create(dir.join("history.jsonl")).unwrap());
    let mut index = 0u64;
    let mut now = 0u64;
    let per_op = 30_000_000_000 / ops.max(1) * 10; // ~30 s of history at any size, 10 in flight
    let event = |history: &mut std::io::BufWriter<std::fs::File>, line: String| {
        history.write_all(line.as_bytes()).unwrap();
        history.write_all(b"\n").unwrap();
    };
    let mut middle = (0, 0);
    for op in 0..ops {
        let process = op % 10;
        now += per_op / 10 + rng.next() % 1000;
        let f = ["read", "write", "cas"][(rng.next() % 3) as usize];
        let key = rng.next() % 50;
        let latency = 200_000
            + rng.next() % 5_000_000
            + if rng.next().is_multiple_of(100) {
                200_000_000
            } else {
                0
            };
        let outcome = match rng.next() % 20 {
            0 => "fail",
            1 => "info",
            _ => "ok",
        };
        if op % (ops / 6).max(1) == 0 {
            let fault =
                ["start-partition", "stop-partition"][((op / (ops / 6).max(1)) % 2) as usize];
            event(
                &mut history,
                format!(
                    r#"{{"index":{index},"time":{now},"process":"nemesis","type":"info","f":"{fault}","value":{{"partition":"halves"}}}}"#
                ),
            );
            index += 1;
        }
        event(
            &mut history,
            format!(
                r#"{{"index":{index},"time":{now},"process":{process},"type":"invoke","f":"{f}","key":{key},"value":{},"node":"n{}"}}"#,
                rng.next() % 5,
                process % 5 + 1
            ),
        );
        if op == ops / 2 {
            middle = (index, now);
        }
        index += 1;
        event(
            &mut history,
            format!(
                r#"{{"index":{index},"time":{},"process":{process},"type":"{outcome}","f":"{f}","key":{key},"value":{},"node":"n{}"}}"#,
                now + latency,
                rng.next() % 5,
                process % 5 + 1
            ),
        );
        index += 1;
    }
    history.flush().unwrap();
    let op = |id: u64, time: u64| {
        serde_json::json!({"id": id, "invoke_index": time / per_op, "call_time": time,
            "return_time": time + 1_000_000, "process": 3, "f": "read", "input": null,
            "output": 4, "key": 7, "outcome": "ok"})
    };
    let (at, time) = middle;
    let results = serde_json::json!({
        "valid": false,
        "reason": format!("linearizable: read returning 4 on key 7 (invoked at index {at}) cannot be linearized"),
        "checkers": {"linearizable": {
            "valid": false, "model": "cas-register", "reason": "read returning 4 on key 7 cannot be linearized",
            "counterexample": {"key": 7, "prefix": [op(1, time - 3_000_000), op(2, time - 2_000_000)],
                "prefix_tail": [op(1, time - 3_000_000), op(2, time - 2_000_000)],
                "unplaceable": [op(3, time)], "pending": [], "states_before": [1], "minimal": []}}},
        "stats": {"ops": ops},
    });
    std::fs::write(dir.join("results.json"), results.to_string()).unwrap();
    let test = serde_json::json!({"spec": {"name": "bench", "target": "raft-kv", "workload": "register",
        "nemesis": ["partition"], "nodes": 5, "seed": 1, "time-limit": "30s", "backend": "local"},
        "rerun": "fissure run --spec bench", "started": "2026-12-01T00:00:00Z"});
    std::fs::write(dir.join("test.json"), test.to_string()).unwrap();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!(
        "{:<22} {:>10} {:>12} {:>12}",
        "history", "ops", "render s", "page MB"
    );
    for ops in [100_000u64, 1_000_000] {
        let dir = tempfile::tempdir().unwrap();
        write_run(dir.path(), ops);
        let history_mb = std::fs::metadata(dir.path().join("history.jsonl"))
            .unwrap()
            .len() as f64
            / 1e6;
        let started = Instant::now();
        let written = reports::page::write(dir.path()).unwrap();
        let took = started.elapsed().as_secs_f64();
        println!(
            "{:<22} {:>10} {:>12.2} {:>12.2}",
            format!("{history_mb:.0} MB of jsonl"),
            written.ops,
            took,
            written.bytes as f64 / 1e6
        );
    }
}
