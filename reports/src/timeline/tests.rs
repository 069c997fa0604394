//! The timeline's tests: small histories drawn in full, a huge one in a window.

use super::*;
use std::fmt::Write;
use std::path::PathBuf;

fn run(history: &str, results: Value) -> RunData {
    let mut data = RunData {
        dir: PathBuf::new(),
        test: Value::Null,
        results,
        functions: Vec::new(),
        ops: Vec::new(),
        faults: Vec::new(),
        end_ns: 0,
        skipped_lines: 0,
    };
    data.read_history(history.as_bytes()).unwrap();
    data
}

const HISTORY: &str = r#"{"index":0,"time":1000000,"process":0,"type":"invoke","f":"write","key":"k1","value":3,"node":"n1"}
{"index":1,"time":2000000,"process":"nemesis","type":"info","f":"start-partition","value":{"partition":"halves"}}
{"index":2,"time":3000000,"process":0,"type":"ok","f":"write","key":"k1","value":3,"node":"n1"}
{"index":3,"time":3500000,"process":1,"type":"invoke","f":"read","key":"k1","value":null,"node":"n2"}
{"index":4,"time":4000000,"process":"nemesis","type":"info","f":"stop-partition","value":null}
{"index":5,"time":5000000,"process":1,"type":"ok","f":"read","key":"k1","value":"<script>x</script>"}
{"index":6,"time":6000000,"process":2,"type":"invoke","f":"cas","key":"k1","value":[3,4],"node":"n1"}
{"index":7,"time":7000000,"process":2,"type":"fail","f":"cas","key":"k1","value":[3,4]}
{"index":8,"time":8000000,"process":3,"type":"invoke","f":"read","key":"k1","node":"n3"}
"#;

#[test]
fn bars_for_each_op_and_a_band_for_the_fault() {
    let data = run(HISTORY, Value::Null);
    let window = interesting_window(&data, 1500);
    assert_eq!(window, 0..8_000_001, "few ops: the whole history");
    let html = render(&data, window, 1500);
    assert_eq!(html.matches("<g class=\"tl-op ").count(), 4);
    for class in ["tl-op tl-ok", "tl-op tl-fail", "tl-op tl-open"] {
        assert!(html.contains(class), "{class}");
    }
    assert!(html.contains("tl-fault tl-f-partition"));
    assert!(html.contains(">partition</text>"));
    assert!(html.contains("operations 1..4 of 4, from 0.000 s to 0.008 s<"));
    assert!(html.contains(">p3</text>"));
    assert!(html.contains("latency 2.00 ms"));
    assert!(!html.contains("<script"), "values are escaped");
    assert!(html.contains("&lt;script&gt;"));
    // A narrower window: only the ops overlapping it, the open one drawn to its end.
    let html = render(&data, 6_600_000..9_000_000, 1500);
    assert_eq!(html.matches("<g class=\"tl-op ").count(), 2);
    assert!(html.contains("operations 4..4 of 4, from 0.007 s to 0.009 s, and 1 invoked"));
    assert!(!html.contains("tl-fault"));
    // Odd windows do not panic.
    render(&data, u64::MAX..u64::MAX, 10);
    let backwards = data.ops.len() as u64 - 3;
    render(&data, 5..backwards, 10);
}

fn synthetic(ops: usize, processes: u64, results: Value) -> RunData {
    let mut history = String::new();
    let mut index = 0;
    for i in 0..ops as u64 {
        let (p, t) = (i % processes, i * 1_000_000);
        let _ = writeln!(
            history,
            r#"{{"index":{index},"time":{t},"process":{p},"type":"invoke","f":"write","key":{},"value":"{}","node":"n{}"}}"#,
            i % 7,
            "v".repeat(60),
            p % 5
        );
        let _ = writeln!(
            history,
            r#"{{"index":{},"time":{},"process":{p},"type":"ok","f":"write","key":{},"value":"{}"}}"#,
            index + 1,
            t + 900_000,
            i % 7,
            "v".repeat(60)
        );
        index += 2;
        if i % 10_000 == 5_000 {
            let kind = if i % 20_000 == 5_000 {
                "start-partition"
            } else {
                "stop-partition"
            };
            let _ = writeln!(
                history,
                r#"{{"index":{index},"time":{t},"process":"nemesis","type":"info","f":"{kind}"}}"#
            );
            index += 1;
        }
    }
    run(&history, results)
}

#[test]
fn a_huge_history_renders_only_its_window() {
    let data = synthetic(200_000, 10, Value::Null);
    assert_eq!(data.ops.len(), 200_000);
    let window = interesting_window(&data, 1500);
    let fault = data.faults[0].start_ns;
    assert!(
        window.start < fault && fault < window.end,
        "around the first fault"
    );
    let html = render(&data, window, 1500);
    let bars = html.matches("<g class=\"tl-op ").count();
    assert!((1400..=1500).contains(&bars), "{bars} bars");
    assert!(html.len() < 1_000_000, "{} bytes", html.len());
    assert!(html.contains("of 200000, from"));
    // Whatever window is asked for, max_ops caps what is drawn.
    let html = render(&data, 0..u64::MAX, 1500);
    assert_eq!(html.matches("<g class=\"tl-op ").count(), 1500);
    assert!(html.contains("more in this window not drawn"));
    assert!(html.len() < 1_000_000, "{} bytes", html.len());
}

#[test]
fn the_window_centres_on_the_unplaceable_op() {
    let mut data = synthetic(100_000, 10, Value::Null);
    let stuck = &data.ops[50_000];
    let centre = stuck.invoke_ns;
    let op = serde_json::json!({"f":"read","invoke_index":stuck.index,"call_time":centre,
        "process":stuck.process});
    data.results = serde_json::json!({"checkers":{
        "set":{"valid":true},
        "linearizable":{"valid":false,"counterexample":{"unplaceable":[op],"prefix_tail":[]}}}});
    let window = interesting_window(&data, 1000);
    assert!(window.start < centre && centre < window.end, "{window:?}");
    let (before, after) = (centre - window.start, window.end - centre);
    assert!(before.abs_diff(after) < 20_000_000, "{before} vs {after}");
    let html = render(&data, window.clone(), 1000);
    assert!(html.contains("tl-op tl-ok tl-x"), "the op is marked");
    let bars = html.matches("<g class=\"tl-op ").count();
    assert!(bars <= 1000, "{bars}");
}

#[test]
fn fault_kinds_make_safe_class_names() {
    assert_eq!(css_name("Part\"ition<x>"), "partitionx");
}
