use super::*;
use crate::data::{FaultWindow, Op};
use serde_json::Value;
use std::path::PathBuf;

fn run(functions: &[&str], ops: Vec<Op>, faults: Vec<FaultWindow>, end_ns: u64) -> RunData {
    RunData {
        dir: PathBuf::new(),
        test: Value::Null,
        results: Value::Null,
        functions: functions.iter().map(|f| f.to_string()).collect(),
        ops,
        faults,
        end_ns,
        skipped_lines: 0,
    }
}

fn op(f: u16, invoke_ns: u64, latency_ns: Option<u64>, outcome: Outcome) -> Op {
    Op {
        index: 0,
        process: 0,
        f,
        key: "".into(),
        invoke_ns,
        complete_ns: latency_ns.map(|l| invoke_ns + l),
        outcome,
        value: "".into(),
        result: "".into(),
        node: "".into(),
    }
}

fn window(kind: &str, start_ns: u64, end_ns: Option<u64>) -> FaultWindow {
    FaultWindow {
        kind: kind.into(),
        start_ns,
        end_ns,
        detail: String::new(),
    }
}

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

fn all(plots: &Plots) -> [&str; 3] {
    [&plots.latency, &plots.quantiles, &plots.throughput]
}

/// Well-formed enough for a browser: one root, balanced (non-self-closing) elements.
fn assert_svg(svg: &str) {
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    assert!(svg.contains(r#"viewBox="0 0 900 300""#));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<svg").count(), 1);
    assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    assert!(
        !svg.contains("href") && !svg.contains("url("),
        "self-contained"
    );
}

#[test]
fn a_small_run_has_three_plots_with_its_faults_labelled() {
    let ops = vec![
        op(0, S / 2, Some(3 * MS), Outcome::Ok),
        op(1, S, Some(MS / 2), Outcome::Ok),
        op(0, 2 * S, Some(1500 * MS), Outcome::Info),
        op(1, 3 * S, Some(20 * MS), Outcome::Fail),
        op(0, 4 * S, None, Outcome::Open),
        op(1, 5 * S, Some(MS), Outcome::Ok),
    ];
    let faults = vec![
        window("partition", 2 * S, Some(3 * S)),
        window("pause", 4 * S, None),
    ];
    let data = run(&["write", "read"], ops, faults, 6 * S);
    let plots = render(&data).unwrap();
    for svg in all(&plots) {
        assert_svg(svg);
        assert!(svg.contains(">\npartition\n</text>"), "labelled band");
        assert!(svg.contains(">\npause\n</text>"));
        assert!(!svg.contains("no operations"));
    }
    // The unhealed pause runs to the end of the axis: its band ends where the partition's
    // does not, at the plot's right edge.
    let bands: Vec<&str> = (plots.latency.lines())
        .filter(|l| l.starts_with("<rect") && l.contains("opacity=\"0.18\""))
        .collect();
    assert_eq!(bands.len(), 2, "{bands:?}");
    assert!(
        plots.latency.contains(">\nwrite\n</text>") && plots.latency.contains(">\nread\n</text>")
    );
    // Five completed ops, each drawn once (the open one is not).
    let markers: usize = (plots.latency.lines())
        .filter(|l| l.starts_with("<path opacity=\"0.75\""))
        .map(|l| l.matches('M').count())
        .sum();
    assert_eq!(markers, 5, "{}", plots.latency);
    assert!(plots.quantiles.contains("ok ops"), "says which ops");
    assert!(plots.throughput.contains("ops/s"));
}

#[test]
fn an_empty_history_says_so() {
    let plots = render(&run(&[], vec![], vec![window("kill", 0, None)], 0)).unwrap();
    for svg in all(&plots) {
        assert_svg(svg);
        assert!(svg.contains("no operations"));
        assert!(svg.contains(">\nkill\n</text>"));
    }
    let plots = render(&run(&[], vec![], vec![], 0)).unwrap();
    for svg in all(&plots) {
        assert_svg(svg);
        assert!(svg.contains("no operations"));
    }
}

#[test]
fn history_text_is_escaped() {
    let evil = "<script>alert(1)</script>";
    let ops = vec![op(0, S, Some(MS), Outcome::Ok)];
    let faults = vec![window(evil, 0, Some(S))];
    let plots = render(&run(&[evil, "a\"b'&c"], ops, faults, 2 * S)).unwrap();
    for svg in all(&plots) {
        assert_svg(svg);
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
    }
    assert!(plots.latency.contains("a&quot;b&apos;&amp;c"));
}

#[test]
fn a_million_ops_stay_under_two_megabytes() {
    // Deterministic noise: latencies log-spread over 0.2 ms .. ~2 s, four functions.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let n = 1_000_000u64;
    let span = 600 * S;
    let ops = (0..n)
        .map(|i| {
            let r = next();
            let latency = (0.2e6 * 10f64.powf((r % 10_000) as f64 / 2500.0)) as u64;
            let outcome = match r >> 60 {
                0 => Outcome::Fail,
                1 => Outcome::Info,
                _ => Outcome::Ok,
            };
            op((r >> 40) as u16 % 4, i * span / n, Some(latency), outcome)
        })
        .collect();
    let faults = vec![
        window("partition", 60 * S, Some(120 * S)),
        window("kill", 300 * S, None),
    ];
    let data = run(
        &["read", "write", "cas", "append"],
        ops,
        faults,
        span + 2 * S,
    );
    let started = std::time::Instant::now();
    let plots = render(&data).unwrap();
    let took = started.elapsed();
    for svg in all(&plots) {
        assert_svg(svg);
    }
    eprintln!(
        "1M ops: latency {} B, quantiles {} B, throughput {} B in {took:?}",
        plots.latency.len(),
        plots.quantiles.len(),
        plots.throughput.len()
    );
    assert!(plots.latency.len() < 2_000_000);
    assert!(plots.quantiles.len() < 200_000 && plots.throughput.len() < 200_000);
}

#[test]
fn buckets_number_fifty_to_a_hundred_and_twenty() {
    assert_eq!(buckets(0), (100 * MS, 1));
    assert_eq!(buckets(10 * S), (100 * MS, 100));
    assert_eq!(buckets(60 * S), (500 * MS, 120));
    assert_eq!(buckets(61 * S), (S, 61));
    for secs in [13, 30, 100, 333, 1000, 3600, 86_400] {
        let (width, n) = buckets(secs * S);
        assert!((48..=120).contains(&n), "{secs} s: {width} ns × {n}");
    }
}

#[test]
fn runs_split_at_gaps() {
    let rows = [Some(1), None, Some(2), Some(3), None];
    assert_eq!(runs(&rows), vec![0..1, 2..4]);
}
