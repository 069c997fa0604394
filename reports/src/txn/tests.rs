//! The isolation section over the hand-made `tests/fixtures/txn` run: a three-transaction
//! G-single cycle (two wr edges, one rw) and a G1a (a read of a failed append).

use super::*;
use checkers::txn::{ConsistencyModel, CycleStep, TxnStats};

const HISTORY: &str = include_str!("../../tests/fixtures/txn/history.jsonl");
const RESULTS: &str = include_str!("../../tests/fixtures/txn/results.json");

fn fixture() -> (TxnResult, TxnHistory) {
    let results: Value = serde_json::from_str(RESULTS).unwrap();
    let result: TxnResult = serde_json::from_value(results["checkers"]["txn"].clone()).unwrap();
    let ops = checkers::history::read_jsonl(HISTORY.as_bytes())
        .unwrap()
        .operations()
        .unwrap();
    (result, txn_history(&ops, TxnWorkload::ListAppend).unwrap())
}

fn render(result: &TxnResult, history: &TxnHistory) -> String {
    txn_section(result, history).unwrap().replace("&#x2F;", "/")
}

/// The numbers of an SVG attribute list such as `M1,2 Q3,4 5,6`.
fn numbers(text: &str) -> Vec<f64> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .filter_map(|n| n.parse().ok())
        .collect()
}

fn attr(tag: &str, name: &str) -> f64 {
    let at = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
    tag[at..].split('"').next().unwrap().parse().unwrap()
}

#[test]
fn the_cycle_is_drawn_as_boxes_and_labelled_arrows() {
    let (result, history) = fixture();
    let html = render(&result, &history);
    // One card per kind, with its meaning and count.
    assert!(html.contains("id=\"tx-G-single-item\""), "no G-single card");
    assert!(html.contains("id=\"tx-G1a\""), "no G1a card");
    assert!(html.contains("read skew: a transaction observed part of another"));
    assert!(html.contains(
        "aborted read: a committed transaction read a value written by a transaction that failed"
    ));
    // Three boxes for the cycle, two for the G1a; each labelled with its id, process, micro-ops.
    assert_eq!(html.matches("<g class=\"tx-box ").count(), 5);
    for label in [
        ">T0 p0</text>",
        ">T1 p1</text>",
        ">T2 p2</text>",
        ">T3 p3 fail</text>",
        ">T4 p0</text>",
        ">a k1 1, a k3 1</text>",
        ">r k1 [1], a k2 1</text>",
        ">r k2 [1], r k3 []</text>",
    ] {
        assert!(html.contains(label), "{label} missing");
    }
    assert_eq!(html.matches("class=\"tx-box tx-fail\"").count(), 1);
    // Arrows coloured by kind and labelled with key and value.
    assert_eq!(html.matches("<g class=\"tx-edge tx-e-wr\">").count(), 2);
    assert_eq!(html.matches("<g class=\"tx-edge tx-e-rw\">").count(), 1);
    for label in [">wr k1 1</text>", ">wr k2 1</text>", ">rw k3 1</text>"] {
        assert!(html.contains(label), "{label} missing");
    }
    // The steps in words, and the explanations.
    assert!(html.contains("T2 read key 3 as [], missing T0&#39;s append of 1: rw"));
    assert!(html.contains("a cycle with one anti-dependency (read skew)"));
    assert!(html.contains("T4 read key 4 as [5], but 5 was appended by T3, which failed"));
    // The G1a's transactions listed, the failed one with its outcome.
    assert!(html.contains("<td>T3</td><td>3</td><td>fail</td><td>#7..#8</td>"));
    // The headline: the verdict against the model checked, and what may still hold.
    assert!(html.contains("INVALID</span> against <strong>serializable</strong> (list-append)"));
    assert!(html.contains("it shows G-single-item, G1a."));
    assert!(html.contains("<strong>strong-read-uncommitted</strong>"));
}

#[test]
fn each_arrow_runs_from_its_source_box_to_its_target_box() {
    let (result, history) = fixture();
    let html = render(&result, &history);
    let svg_end = html.find("</svg>").unwrap();
    let svg = &html[..svg_end];
    // Boxes in row order: T0, T1, T2.
    let rects: Vec<(f64, f64, f64, f64)> = svg
        .split("<g class=\"tx-box ")
        .skip(1)
        .map(|g| {
            let rect = &g[g.find("<rect").unwrap()..];
            let rect = &rect[..rect.find("/>").unwrap()];
            (
                attr(rect, "x"),
                attr(rect, "y"),
                attr(rect, "width"),
                attr(rect, "height"),
            )
        })
        .collect();
    assert_eq!(rects.len(), 3);
    assert!(
        rects[0].1 < rects[1].1 && rects[1].1 < rects[2].1,
        "one row each"
    );
    // T0 ends (index 2) before T2 starts (index 3): so on the axis.
    assert!(rects[0].0 + rects[0].2 <= rects[2].0);
    // On the top or bottom edge, or (arcs around the side) the right edge.
    let on_edge = |(x, y): (f64, f64), (bx, by, bw, bh): (f64, f64, f64, f64)| {
        let horizontal = x >= bx && x <= bx + bw;
        let vertical = y >= by && y <= by + bh;
        (horizontal && ((y - by).abs() < 0.2 || (y - by - bh).abs() < 0.2))
            || (vertical && (x - bx - bw).abs() < 0.2)
    };
    let paths: Vec<Vec<f64>> = svg
        .split("<path d=\"")
        .skip(1)
        .map(|p| numbers(p.split('"').next().unwrap()))
        .collect();
    assert_eq!(paths.len(), 3);
    for (path, (from, to)) in paths.iter().zip([(0, 1), (1, 2), (2, 0)]) {
        let n = path.len();
        assert!(n == 6 || n == 8, "{path:?}");
        assert!(
            on_edge((path[0], path[1]), rects[from]),
            "T{from}: {path:?}"
        );
        assert!(
            on_edge((path[n - 2], path[n - 1]), rects[to]),
            "T{to}: {path:?}"
        );
    }
    // The edge from T2 back up to T0 skips a row: it runs right of every box, crossing none.
    let right = rects.iter().map(|r| r.0 + r.2).fold(0.0, f64::max);
    assert_eq!(paths[2].len(), 8, "a side arc");
    assert!(paths[2][2] > right && paths[2][4] > right, "{:?}", paths[2]);
}

fn models_row<'a>(html: &'a str, model: &str) -> &'a str {
    let at = html
        .find(&format!("<td>{model}</td>"))
        .unwrap_or_else(|| panic!("no row for {model}"));
    &html[at..at + html[at..].find("</tr>").unwrap()]
}

#[test]
fn the_models_table_says_what_rules_each_model_out() {
    let (result, history) = fixture();
    let html = render(&result, &history);
    let rr = models_row(&html, "repeatable-read");
    assert!(
        rr.contains(">G-single-item</a>") && rr.contains(">G1a</a>"),
        "{rr}"
    );
    assert!(rr.contains("stronger"));
    let rc = models_row(&html, "read-committed");
    assert!(rc.contains("weakest ruled out"), "{rc}");
    assert!(
        rc.contains(">G1a</a>") && !rc.contains("G-single-item"),
        "{rc}"
    );
    let ser = models_row(&html, "serializable");
    assert!(ser.contains("the model checked"), "{ser}");
    assert_eq!(
        html.matches("<tr class=\"tx-checked\">").count(),
        1,
        "the checked model marked once"
    );
    assert!(!html.contains("<td>read-uncommitted</td>"), "not ruled out");
    let table = &html[html.find("<table class=\"tx-models\">").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(
        table.matches("<tr").count(),
        1 + 1 + 21,
        "a header, then a row per model in not and also_not"
    );
    assert!(
        !html.contains("no anomaly found here forbids it"),
        "a model left unexplained"
    );
}

#[test]
fn markup_from_a_result_is_escaped() {
    let (mut result, history) = fixture();
    let evil = "<script>alert(1)</script>";
    for anomalies in result.anomalies.values_mut() {
        for a in anomalies {
            a.explanation = evil.into();
            for step in &mut a.cycle {
                step.why = evil.into();
            }
        }
    }
    result.inferences = vec![evil.into()];
    result.unknown_reason = Some(evil.into());
    let html = render(&result, &history);
    assert!(!html.contains("<script"), "markup reached the page");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // In the SVG's hover titles too.
    assert!(html.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>"));
}

#[test]
fn without_the_history_the_cards_say_which_transactions_are_missing() {
    let (result, _) = fixture();
    let empty = TxnHistory {
        key_names: Default::default(),
        workload: TxnWorkload::ListAppend,
        txns: Vec::new(),
    };
    let html = render(&result, &empty);
    assert!(!html.contains("<svg"));
    assert!(html.contains("Not found in the history: T0, T1, T2."));
    assert!(html.contains("id=\"tx-G1a\""));
    assert!(
        html.contains(">rw k3 1</span>"),
        "the steps are still listed"
    );
}

#[test]
fn counts_beyond_the_examples_are_told() {
    let (mut result, history) = fixture();
    result.counts.insert(AnomalyKind::G1a, 40);
    let html = render(&result, &history);
    assert!(html.contains("and 39 more of this kind"));
    assert!(html.contains(">G1a</a> ×40"));
}

#[test]
fn a_valid_or_unknown_result_says_so_and_rules_nothing_out() {
    let valid = TxnResult {
        valid: Verdict::Valid,
        workload: TxnWorkload::RwRegister,
        consistency_model: ConsistencyModel::StrictSerializable,
        anomaly_types: Vec::new(),
        anomalies: Default::default(),
        counts: Default::default(),
        not: Vec::new(),
        also_not: Vec::new(),
        strongest_possible: vec![ConsistencyModel::StrictSerializable],
        inferences: Vec::new(),
        unknown_reason: None,
        stats: TxnStats {
            txns: 12,
            ..TxnStats::default()
        },
    };
    let history = TxnHistory {
        key_names: Default::default(),
        workload: TxnWorkload::RwRegister,
        txns: Vec::new(),
    };
    let html = render(&valid, &history);
    assert!(html.contains("VALID</span> against <strong>strict-serializable</strong> (rw-register): no anomaly found in 12 transactions."));
    assert!(html.contains("No model is ruled out."));
    assert!(!html.contains("tx-card"));
    let unknown = TxnResult {
        valid: Verdict::Unknown,
        unknown_reason: Some("the time limit ran out".into()),
        ..valid
    };
    let html = render(&unknown, &history);
    assert!(html.contains("UNKNOWN</span>"));
    assert!(html.contains("Why unknown: the time limit ran out"));
}

#[test]
fn a_transaction_edge_to_itself_and_long_reads_are_drawn() {
    let (mut result, history) = fixture();
    let cycle = &mut result.anomalies.get_mut(&AnomalyKind::GSingle).unwrap()[0].cycle;
    cycle.push(CycleStep {
        from: 1,
        to: 1,
        kind: EdgeKind::Process,
        key: None,
        value: None,
        why: "itself".into(),
    });
    cycle.push(CycleStep {
        from: 0,
        to: 2,
        kind: EdgeKind::Realtime,
        key: None,
        value: None,
        why: "T0 completed before T2 began".into(),
    });
    let html = render(&result, &history);
    assert!(html.contains("<g class=\"tx-edge tx-e-proc\">"));
    assert!(html.contains(">proc</text>") && html.contains(">rt</text>"));
    let long = Mop::Read {
        key: 9,
        value: ReadValue::List((1..=50).collect()),
    };
    assert_eq!(mops_short(std::slice::from_ref(&long)), "r k9 [1 2 … 50]");
    assert!(mops_full(&[long]).ends_with("49 50]"));
}

#[test]
fn unreadable_results_and_histories_are_reported_not_fatal() {
    let view = checker_view(
        &serde_json::json!({"anomaly_types": "<b>"}),
        Path::new("/nonexistent"),
    );
    assert!(view.contains("cannot be read"));
    let results: Value = serde_json::from_str(RESULTS).unwrap();
    let view = checker_view(
        &results["checkers"]["txn"],
        Path::new("/nonexistent/history.jsonl"),
    );
    assert!(view.contains("The transactions could not be read, so none is drawn"));
    assert!(view.contains("id=\"tx-G1a\""));
    assert!(is_txn_result("txn", &Value::Null));
    assert!(is_txn_result(
        "elle",
        &serde_json::json!({"anomaly_types": []})
    ));
    assert!(!is_txn_result(
        "linearizable",
        &serde_json::json!({"valid": true})
    ));
}

/// The real checker on the fixture's history: what it reports renders the same cards.
#[test]
fn the_checkers_own_result_renders() {
    let (_, history) = fixture();
    let options = checkers::txn::TxnCheckOptions {
        consistency_model: ConsistencyModel::Serializable,
        ..Default::default()
    };
    let result = checkers::txn::check_txn(&history, &options);
    assert_eq!(
        result.anomaly_types,
        [AnomalyKind::GSingle, AnomalyKind::G1a]
    );
    let html = render(&result, &history);
    assert!(html.contains("id=\"tx-G-single-item\"") && html.contains("id=\"tx-G1a\""));
    assert_eq!(html.matches("<g class=\"tx-box ").count(), 5);
    assert_eq!(html.matches("<g class=\"tx-edge tx-e-wr\">").count(), 2);
    assert_eq!(html.matches("<g class=\"tx-edge tx-e-rw\">").count(), 1);
    assert!(html.contains(">rw k3 1</text>"));
    let rr = models_row(&html, "repeatable-read");
    assert!(
        rr.contains(">G-single-item</a>") && rr.contains(">G1a</a>"),
        "{rr}"
    );
    assert!(
        !html.contains("no anomaly found here forbids it"),
        "a model left unexplained"
    );
}
