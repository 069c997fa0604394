//! The view of a non-linearizable verdict: the operations around the one that could not be
//! placed, one row per process, with what the checker knew when it got stuck.
//!
//! The axis is in event order, not to scale: linearizability depends only on which operations
//! overlap, and to scale a single slow operation would squeeze the others into slivers.

use crate::html::escape;
use crate::timeline::svg::{self, seconds, CHAR_W};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write;

/// Styles for [`render`]'s markup.
pub const CSS: &str = "\
.cx-title{font:bold 15px sans-serif;margin:.6em 0 .2em}
.cx-reason{font:13px sans-serif;margin:.2em 0 .5em}
.cx-scroll{overflow-x:auto;max-width:100%;border:1px solid #ddd}
.cx-svg{display:block;font:11px sans-serif}
.cx-lane{fill:#f5f5f5}
.cx-grid{stroke:#e4e4e4}
.cx-tick{fill:#555;text-anchor:middle}
.cx-proc{fill:#333;text-anchor:end}
.cx-op rect{stroke:#0004;stroke-width:.5}
.cx-op text{fill:#111}
.cx-ok rect{fill:#6db6fe}.cx-fail rect{fill:#feb5da}.cx-info rect{fill:#ffaa26}
.cx-open rect{fill:#ddd;stroke-dasharray:3 2}
.cx-x rect{fill:#e03131;stroke:#800;stroke-width:1.5}.cx-x text{fill:#fff;font-weight:bold}
.cx-pos rect{fill:#333}.cx-pos text{fill:#fff;font-size:9px;text-anchor:middle}
.cx-line{stroke:#e03131;stroke-width:1.5;stroke-dasharray:5 3}
.cx-tag{fill:#e03131;font-weight:bold}
.cx-facts{font:13px sans-serif;margin:.5em 0}
.cx-facts code{background:#f3f3f3;padding:0 .2em;word-break:break-all}
";

/// Operations drawn at most: those nearest the unplaceable one.
const MAX_DRAWN: usize = 60;
/// Characters of an input, output or model state shown before "…".
const VALUE_CHARS: usize = 60;
const GUTTER: f64 = 52.0;
/// Least horizontal space between events (calls and returns).
const STEP: f64 = 22.0;
/// Most space a bar's label may claim.
const MAX_LABEL_W: f64 = 150.0;
const TAG_H: f64 = 16.0;
const AXIS_H: f64 = 18.0;
const ROW_H: f64 = 26.0;
const BAR_H: f64 = 16.0;

/// One operation of the counterexample, read defensively: every field may be missing.
#[derive(Debug, Clone)]
struct CxOp {
    id: Option<u64>,
    process: Value,
    node: String,
    f: String,
    input: Value,
    output: Value,
    outcome: String,
    call_time: Option<u64>,
    return_time: Option<u64>,
    call_index: Option<u64>,
    return_index: Option<u64>,
}

impl CxOp {
    fn read(v: &Value) -> Option<CxOp> {
        v.as_object()?;
        let index = |a: &str, b: &str| v[a].as_u64().or_else(|| v[b].as_u64());
        Some(CxOp {
            id: v["id"].as_u64(),
            process: v["process"].clone(),
            node: v["node"].as_str().unwrap_or("").to_string(),
            f: v["f"]
                .as_str()
                .map_or_else(|| text(&v["f"]), str::to_string),
            input: v["input"].clone(),
            output: v["output"].clone(),
            outcome: v["outcome"].as_str().unwrap_or("info").to_string(),
            call_time: v["call_time"].as_u64(),
            return_time: v["return_time"].as_u64(),
            call_index: index("invoke_index", "call"),
            return_index: index("complete_index", "ret"),
        })
    }

    /// Where it starts and ends on the chosen axis (`None` end: never returned).
    fn span(&self, by_time: bool) -> (Option<u64>, Option<u64>) {
        if by_time {
            (self.call_time, self.return_time)
        } else {
            (self.call_index, self.return_index)
        }
    }

    fn same(&self, other: &CxOp) -> bool {
        (self.id, self.call_index, self.call_time) == (other.id, other.call_index, other.call_time)
    }

    fn returned(&self) -> bool {
        self.return_time.is_some() || self.return_index.is_some()
    }

    /// "f input → output".
    fn label(&self) -> String {
        let mut label = self.f.clone();
        if !self.input.is_null() {
            label.push(' ');
            label.push_str(&text(&self.input));
        }
        let result = match self.outcome.as_str() {
            _ if !self.returned() => "?".to_string(),
            "ok" => text(&self.output),
            "fail" => "fail".to_string(),
            _ => "?".to_string(),
        };
        format!("{label} → {result}")
    }

    /// "p3 write 1 → 1".
    fn short(&self) -> String {
        format!("p{} {}", text(&self.process), self.label())
    }

    /// Everything known, for hover titles and the list.
    fn describe(&self) -> String {
        let mut out = format!("{} ({})", self.short(), self.outcome);
        if !self.node.is_empty() {
            let _ = write!(out, " on {}", self.node);
        }
        if let Some(i) = self.call_index {
            let _ = write!(out, ", index {i}");
            if let Some(r) = self.return_index {
                let _ = write!(out, "..{r}");
            }
        }
        if let Some(t) = self.call_time {
            let _ = write!(out, ", from {} s", seconds(t, 6));
            match self.return_time {
                Some(r) => {
                    let _ = write!(out, " to {} s", seconds(r, 6));
                }
                None => out.push_str(", never returned"),
            }
        }
        out
    }
}

/// Compact JSON (strings bare), cut at [`VALUE_CHARS`].
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => cut(s, VALUE_CHARS),
        other => cut(&other.to_string(), VALUE_CHARS),
    }
}

fn cut(full: &str, max: usize) -> String {
    match full.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &full[..at]),
        None => full.to_string(),
    }
}

fn array(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn ops_of(cx: &Value, list: &str) -> Vec<CxOp> {
    array(&cx[list]).iter().filter_map(CxOp::read).collect()
}

/// The first `max` of `items` as code, then how many more there are.
fn codes(items: impl ExactSizeIterator<Item = String>, max: usize, sep: &str) -> String {
    let more = items.len().saturating_sub(max);
    let shown: Vec<String> = (items.take(max))
        .map(|t| format!("<code>{}</code>", escape(&t)))
        .collect();
    let mut out = shown.join(sep);
    if more > 0 {
        let _ = write!(out, " and {more} more");
    }
    out
}

/// The view of one checker's result; `None` if it has no counterexample.
pub fn render(checker: &Value) -> Option<String> {
    let cx = checker.get("counterexample")?;
    cx.as_object()?;
    let unplaceable = ops_of(cx, "unplaceable").into_iter().next();
    let tail = ops_of(cx, "prefix_tail");
    let pending = ops_of(cx, "pending");
    let minimal = ops_of(cx, "minimal");
    // Linearization order: `prefix` holds ids (or, from other writers, whole operations).
    let prefix = array(&cx["prefix"]);
    let order: HashMap<u64, usize> = (prefix.iter().enumerate())
        .filter_map(|(i, p)| {
            p.as_u64()
                .or_else(|| p["id"].as_u64())
                .map(|id| (id, i + 1))
        })
        .collect();

    let mut out = String::from("<div class=\"cx\"><h3 class=\"cx-title\">Not linearizable");
    if let Some(key) = cx.get("key").filter(|k| !k.is_null()) {
        let _ = write!(out, " on key {}", escape(&text(key)));
    }
    if let Some(model) = checker["model"].as_str() {
        let _ = write!(out, " (model {})", escape(model));
    }
    out.push_str("</h3>");
    if let Some(reason) = checker["reason"].as_str() {
        let _ = write!(out, "<p class=\"cx-reason\">{}</p>", escape(reason));
    }

    let (involved, what) = if minimal.is_empty() {
        let mut all = tail.clone();
        all.extend(unplaceable.clone());
        all.extend(pending.iter().cloned());
        (all, "the last operations of the linearizable prefix, the one that cannot be placed and those still open")
    } else {
        let mut all = minimal.clone();
        all.extend(unplaceable.clone());
        (
            all,
            "a smaller history that is still not linearizable (reads removed)",
        )
    };
    let (drawn, not_drawn) = draw(&mut out, involved, unplaceable.as_ref(), &order);
    let _ = write!(out, "<ul class=\"cx-facts\"><li>drawn: {what}");
    if not_drawn > 0 {
        let _ = write!(out, "; {not_drawn} more, further from it, not drawn");
    }
    if drawn == 0 {
        out.push_str(" (nothing to draw: no times or indices recorded)");
    }
    out.push_str("</li>");
    let prefix_len = if prefix.is_empty() {
        tail.len()
    } else {
        prefix.len()
    };
    let _ = write!(out, "<li>longest linearizable prefix: {prefix_len} ops");
    let last = &tail[tail.len().saturating_sub(5)..];
    if !last.is_empty() {
        let last: Vec<String> = last.iter().map(|o| escape(&o.short())).collect();
        let _ = write!(out, " (last ones: {})", last.join(", "));
    }
    out.push_str("</li>");
    let states = array(&cx["states_before"]);
    if !states.is_empty() {
        let states = states.iter().map(|s| cut(&s.to_string(), 200));
        let _ = write!(
            out,
            "<li>the model could be in: {}</li>",
            codes(states, 8, " or ")
        );
    }
    if let Some(op) = &unplaceable {
        let _ = write!(
            out,
            "<li>could not place: <code>{}</code></li>",
            escape(&op.describe())
        );
    }
    if !pending.is_empty() {
        let open = codes(pending.iter().map(CxOp::short), 10, ", ");
        let _ = write!(out, "<li>still open then: {open}</li>");
    }
    out.push_str("</ul></div>");
    Some(out)
}

/// The SVG: a row per process, a bar per operation. Returns how many were drawn and left out.
fn draw(
    out: &mut String,
    involved: Vec<CxOp>,
    stuck: Option<&CxOp>,
    order: &HashMap<u64, usize>,
) -> (usize, usize) {
    // Times if the operations have them, else positions in the history.
    let by_time = stuck.map_or_else(
        || involved.iter().all(|o| o.call_time.is_some()),
        |s| s.call_time.is_some(),
    );
    let mut seen = std::collections::HashSet::new();
    let mut ops: Vec<CxOp> = (involved.into_iter())
        .filter(|o| o.span(by_time).0.is_some())
        .filter(|o| o.id.map(|id| seen.insert(id)) != Some(false))
        .collect();
    let is_stuck = |o: &CxOp| stuck.is_some_and(|s| s.same(o));
    let anchor = stuck.and_then(|s| s.span(by_time).0);
    let total = ops.len();
    if let Some(anchor) = anchor {
        let distance = |o: &CxOp| o.span(by_time).0.unwrap_or(0).abs_diff(anchor);
        ops.sort_by_key(|o| (!is_stuck(o), distance(o)));
    }
    ops.truncate(MAX_DRAWN);
    if ops.is_empty() {
        return (0, total);
    }
    ops.sort_by_key(|o| o.span(by_time).0);

    // The axis: every distinct call and return, in order, spread just enough that each bar
    // holds its label.
    let mut events: Vec<u64> = (ops.iter())
        .flat_map(|o| {
            let (a, b) = o.span(by_time);
            [a, b]
        })
        .flatten()
        .collect();
    events.sort_unstable();
    events.dedup();
    let rank = |t: u64| events.partition_point(|&e| e < t);
    let need = |o: &CxOp| (o.label().chars().count() as f64 * CHAR_W + 14.0).min(MAX_LABEL_W);
    let mut pos: Vec<f64> = Vec::with_capacity(events.len());
    for (k, &t) in events.iter().enumerate() {
        let mut at = pos.last().map_or(GUTTER + STEP / 2.0, |p| p + STEP);
        for o in ops.iter().filter(|o| o.span(by_time).1 == Some(t)) {
            at = at.max(pos[rank(o.span(by_time).0.unwrap_or(t)).min(k)] + need(o));
        }
        pos.push(at);
    }
    let x = |t: u64| pos[rank(t).min(pos.len() - 1)];
    let right = (ops.iter())
        .filter(|o| o.span(by_time).1.is_none())
        .map(|o| x(o.span(by_time).0.unwrap_or(0)) + need(o))
        .fold(pos[pos.len() - 1] + STEP, f64::max);
    let mut procs: Vec<String> = ops.iter().map(|o| text(&o.process)).collect();
    procs.sort_by(|a, b| (a.parse::<u64>().ok(), a).cmp(&(b.parse::<u64>().ok(), b)));
    procs.dedup();
    let top = TAG_H + AXIS_H;
    let width = right + 150.0;
    let height = top + procs.len() as f64 * ROW_H + 6.0;
    svg::open(out, "cx", width, height);
    let names: Vec<String> = procs.iter().map(|p| format!("p{p}")).collect();
    svg::lanes(out, "cx", &names, (top, ROW_H), width, GUTTER - 6.0);
    // Ticks at events, far enough apart for their labels.
    let mut last_tick = f64::MIN;
    for &t in &events {
        let tx = x(t);
        if tx < last_tick + 85.0 {
            continue;
        }
        last_tick = tx;
        let label = if by_time {
            format!("{} s", seconds(t, 4))
        } else {
            format!("#{t}")
        };
        svg::tick(out, "cx", tx, (TAG_H + 12.0, top - 3.0, height), &label);
    }
    for op in &ops {
        let (start, end) = op.span(by_time);
        let row = procs.iter().position(|p| *p == text(&op.process));
        let y = top + row.unwrap_or(0) as f64 * ROW_H + (ROW_H - BAR_H) / 2.0 + 2.0;
        let x1 = x(start.unwrap_or(0));
        let x2 = end.map_or(right, x).max(x1 + STEP / 2.0);
        let class = if is_stuck(op) {
            "cx-x"
        } else if !op.returned() {
            "cx-open"
        } else {
            match op.outcome.as_str() {
                "ok" => "cx-ok",
                "fail" => "cx-fail",
                _ => "cx-info",
            }
        };
        let position = op.id.and_then(|id| order.get(&id)).copied();
        let mut title = op.describe();
        if let Some(p) = position {
            let _ = write!(title, "\nlinearized #{p}");
        }
        if is_stuck(op) {
            title.push_str("\ncannot be placed");
        }
        let indent = if position.is_some() { 8.0 } else { 3.0 };
        let rect = (x1, y, x2 - x1, BAR_H);
        svg::bar(
            out,
            &format!("cx-op {class}"),
            &title,
            rect,
            &op.label(),
            indent,
        );
        if let Some(p) = position {
            // A badge on the bar's start: its place in the linearization order.
            let digits = p.to_string().len() as f64;
            let w = digits * 6.0 + 6.0;
            let _ = write!(
                out,
                "<g class=\"cx-pos\"><title>linearized #{p}</title><rect x=\"{:.1}\" \
                 y=\"{:.1}\" width=\"{w:.0}\" height=\"11\" rx=\"5\"/><text x=\"{:.1}\" \
                 y=\"{:.1}\">{p}</text></g>",
                x1 - 3.0,
                y - 6.0,
                x1 - 3.0 + w / 2.0,
                y + 2.5
            );
        }
    }
    if let Some(s) = stuck.and_then(|s| s.span(by_time).0) {
        let lx = x(s);
        let _ = write!(
            out,
            "<line class=\"cx-line\" x1=\"{lx:.1}\" y1=\"2\" x2=\"{lx:.1}\" y2=\"{height:.0}\"/>\
             <text class=\"cx-tag\" x=\"{:.1}\" y=\"12\">cannot be placed: {}</text>",
            lx + 4.0,
            escape(&stuck.map(CxOp::short).unwrap_or_default())
        );
    }
    svg::close(out);
    (ops.len(), total - ops.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(
        id: u64,
        process: u64,
        f: &str,
        input: Value,
        output: Value,
        call: u64,
        ret: u64,
    ) -> Value {
        json!({"call": call, "call_time": call * 1_000_000, "complete_index": ret, "f": f,
            "id": id, "input": input, "invoke_index": call, "key": 11, "node": "n3",
            "outcome": "ok", "output": output, "process": process, "ret": ret,
            "return_time": ret * 1_000_000})
    }

    fn example() -> Value {
        let stuck = op(815, 17, "read", Value::Null, json!(0), 1662, 1663);
        json!({"valid": false, "model": "cas-register",
            "reason": "read returning 0 on key 11 by process 17 (invoked at index 1662) cannot be linearized: ...",
            "counterexample": {"key": 11,
                "prefix": [803, 807, 811],
                "prefix_tail": [op(803, 3, "write", json!(0), json!(0), 1600, 1610),
                    op(807, 4, "write", json!("<script>alert(1)</script>"), json!("<script>alert(1)</script>"), 1620, 1640),
                    op(811, 5, "write", json!(1), json!(1), 1641, 1650)],
                "unplaceable": [stuck],
                "pending": [{"f": "cas", "id": 819, "input": [1, 2], "invoke_index": 1655,
                    "call_time": 1_655_000_000u64, "outcome": "info", "output": null, "process": 6}],
                "states_before": [1]}})
    }

    #[test]
    fn the_example_is_drawn_and_explained() {
        let html = render(&example()).unwrap();
        assert!(html.contains("read returning 0 on key 11 by process 17"));
        assert!(html.contains("Not linearizable on key 11 (model cas-register)"));
        assert!(html.contains("cannot be placed"));
        assert!(html.contains("the model could be in: <code>1</code>"));
        assert!(html.contains("longest linearizable prefix: 3 ops"));
        assert!(html.contains("could not place: <code>p17 read → 0 (ok) on n3, index 1662..1663"));
        assert!(!html.contains("<script"), "values are escaped");
        assert!(html.contains("&lt;script&gt;"));
        // One bar per op, the stuck one highlighted, positions 1..3 badged, the open cas drawn.
        assert_eq!(html.matches("<g class=\"cx-op ").count(), 5);
        assert_eq!(html.matches("class=\"cx-op cx-x\"").count(), 1);
        assert_eq!(html.matches("class=\"cx-op cx-open\"").count(), 1);
        for p in 1..=3 {
            assert!(html.contains(&format!("linearized #{p}</title>")), "{p}");
        }
        assert!(html.contains("class=\"cx-line\""));
        assert!(html.contains(">p17</text>"));
    }

    #[test]
    fn minimal_histories_are_drawn_instead_and_capped() {
        let mut checker = example();
        let minimal: Vec<Value> = (0..500)
            .map(|i| {
                op(
                    1000 + i,
                    i % 9,
                    "write",
                    json!(i),
                    json!(i),
                    1000 + 2 * i,
                    1001 + 2 * i,
                )
            })
            .collect();
        checker["counterexample"]["minimal"] = Value::Array(minimal);
        let html = render(&checker).unwrap();
        assert_eq!(html.matches("<g class=\"cx-op ").count(), MAX_DRAWN);
        assert_eq!(
            html.matches("class=\"cx-op cx-x\"").count(),
            1,
            "added when missing"
        );
        assert!(html.contains("a smaller history"));
        assert!(html.contains("441 more, further from it, not drawn"));
    }

    #[test]
    fn missing_fields_do_not_panic() {
        assert!(render(&json!({"valid": true})).is_none());
        assert!(render(&json!({"valid": false, "reason": "timeout"})).is_none());
        assert!(render(&json!(null)).is_none());
        let html = render(&json!({"valid": false, "counterexample": {}})).unwrap();
        assert!(html.contains("Not linearizable"));
        let odd = json!({"counterexample": {"unplaceable": [{"f": 3}, "x"], "pending": [{}],
            "prefix": [{"id": 1}], "prefix_tail": [{"id": 1, "invoke_index": 4}],
            "states_before": "no", "minimal": []}});
        let html = render(&odd).unwrap();
        assert!(html.contains("could not place"));
        // Without times, history positions make the axis.
        let mut checker = example();
        for list in ["prefix_tail", "unplaceable", "pending"] {
            for o in checker["counterexample"][list].as_array_mut().unwrap() {
                o.as_object_mut().unwrap().remove("call_time");
            }
        }
        let html = render(&checker).unwrap();
        assert!(html.contains(">#1600</text>"));
        assert_eq!(html.matches("<g class=\"cx-op ").count(), 5);
    }
}
