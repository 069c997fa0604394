//! The operations of a run per process over time, like Jepsen's timeline.html: one lane per
//! process, a bar per operation, fault windows as bands. Only a window of the history is drawn,
//! so a run of a million operations still makes a page a browser can open.

use crate::data::{Op, Outcome, RunData};
use crate::html::escape;
use serde_json::Value;
use std::fmt::Write;
use std::ops::Range;
use svg::{decimals_for, nice_step, seconds};

pub(crate) mod svg;

/// Styles for [`render`]'s markup.
pub const CSS: &str = "\
.tl-head{font:13px sans-serif;margin:.3em 0}
.tl-key{display:inline-block;padding:0 .5em;margin-right:.3em;border-radius:3px;font:12px sans-serif}
.tl-key.tl-ok{background:#6db6fe}.tl-key.tl-fail{background:#feb5da}
.tl-key.tl-info{background:#ffaa26}.tl-key.tl-open{background:#ddd}
.tl-key.tl-x{outline:2px solid #d00}
.tl-scroll{overflow-x:auto;max-width:100%;border:1px solid #ddd}
.tl-svg{display:block;font:11px sans-serif}
.tl-lane{fill:#f5f5f5}
.tl-grid{stroke:#ddd}
.tl-tick{fill:#555;text-anchor:middle}
.tl-proc{fill:#333;text-anchor:end}
.tl-op rect{stroke:#0004;stroke-width:.5}
.tl-op text{fill:#111}
.tl-ok rect{fill:#6db6fe}.tl-fail rect{fill:#feb5da}.tl-info rect{fill:#ffaa26}
.tl-open rect{fill:#ddd;stroke-dasharray:3 2}
.tl-x rect{stroke:#d00;stroke-width:2}
.tl-fault rect{fill:#999}.tl-fault .tl-band{fill-opacity:.13}.tl-fault .tl-tag{fill-opacity:.6}
.tl-fault text{fill:#000}
.tl-f-partition rect{fill:#e6550d}.tl-f-kill rect{fill:#d62728}.tl-f-pause rect{fill:#9467bd}
.tl-f-clock rect{fill:#2ca02c}.tl-f-latency rect{fill:#8c564b}.tl-f-loss rect{fill:#e377c2}
";

/// Left margin for process names.
const GUTTER: f64 = 52.0;
const AXIS_H: f64 = 20.0;
const FAULT_ROW_H: f64 = 14.0;
const LANE_H: f64 = 18.0;
/// Fault windows drawn at most (a nemesis may fire thousands of times in a long run).
const MAX_FAULTS: usize = 200;

/// The window worth showing: around the counterexample if there is one, else around the first
/// fault window, else the start; never more than `max_ops` operations. Nanoseconds.
pub fn interesting_window(data: &RunData, max_ops: usize) -> Range<u64> {
    let ops = &data.ops;
    let max_ops = max_ops.max(1);
    let last = history_end(data);
    if ops.len() <= max_ops {
        return 0..last;
    }
    let (centre, before) = if let Some(at) = unplaceable_position(data) {
        (at, max_ops / 2)
    } else if let Some(fault) = data.faults.first() {
        // A little of the calm before the fault, most of the window during and after it.
        (
            ops.partition_point(|o| o.invoke_ns < fault.start_ns),
            max_ops / 4,
        )
    } else {
        (0, 0)
    };
    let centre = centre.min(ops.len() - 1);
    let mut hi = (centre.saturating_sub(before) + max_ops).min(ops.len());
    let mut lo = hi.saturating_sub(max_ops);
    let bounds = |lo: usize, hi: usize| {
        let start = ops[lo].invoke_ns;
        let end = if hi < ops.len() {
            ops[hi].invoke_ns
        } else {
            last
        };
        start..end.max(start.saturating_add(1))
    };
    // Operations still running when the window opens count too: trim until they fit.
    for _ in 0..8 {
        let window = bounds(lo, hi);
        let count = ops.iter().filter(|o| overlaps(o, &window)).count();
        if count <= max_ops || hi - lo <= 1 {
            return window;
        }
        for _ in 0..count - max_ops {
            if hi - lo <= 1 {
                break;
            }
            if hi - centre > centre.saturating_sub(lo) + 1 {
                hi -= 1;
            } else {
                lo += 1;
            }
        }
    }
    bounds(lo, hi)
}

/// Just after the last event, so that the last operation lies inside.
fn history_end(data: &RunData) -> u64 {
    let last_op = data
        .ops
        .iter()
        .map(|o| o.complete_ns.unwrap_or(o.invoke_ns));
    (last_op.max().unwrap_or(0).max(data.end_ns)).saturating_add(1)
}

fn overlaps(op: &Op, window: &Range<u64>) -> bool {
    op.invoke_ns < window.end
        && (op.invoke_ns >= window.start || !matches!(op.complete_ns, Some(c) if c <= window.start))
}

/// Where, in `data.ops`, the first invalid checker's unplaceable operation is.
fn unplaceable_position(data: &RunData) -> Option<usize> {
    let (index, time) = unplaceable_ops(&data.results).into_iter().next()?;
    if let Some(index) = index {
        let at = data.ops.partition_point(|o| o.index < index);
        if data.ops.get(at).is_some_and(|o| o.index == index) {
            return Some(at);
        }
    }
    time.map(|t| data.ops.partition_point(|o| o.invoke_ns < t))
}

/// The `(invoke_index, call_time)` of each invalid checker's unplaceable operation.
fn unplaceable_ops(results: &Value) -> Vec<(Option<u64>, Option<u64>)> {
    let Some(checkers) = results["checkers"].as_object() else {
        return Vec::new();
    };
    let found = checkers
        .values()
        .filter(|c| c["valid"] == Value::Bool(false));
    found
        .filter_map(|c| {
            let cx = &c["counterexample"];
            let op = ["unplaceable", "pending", "minimal", "prefix_tail"]
                .iter()
                .find_map(|list| cx[list].as_array().and_then(|ops| ops.first()))?;
            let index = op["invoke_index"].as_u64();
            let time = op["call_time"].as_u64();
            (index.is_some() || time.is_some()).then_some((index, time))
        })
        .collect()
}

/// The operations of `window`, each a bar in its process's lane, over the fault windows in
/// force then. At most `max_ops` operations are drawn.
pub fn render(data: &RunData, window: Range<u64>, max_ops: usize) -> String {
    let start = window.start.min(u64::MAX - 1);
    let window = start..window.end.max(start + 1);
    let Selection {
        shown,
        inside,
        running,
        left_out,
    } = select(data, &window, max_ops);
    let mut procs: Vec<u64> = shown.iter().map(|&i| data.ops[i].process).collect();
    procs.sort_unstable();
    procs.dedup();
    let mut per_lane = vec![0usize; procs.len()];
    for &i in &shown {
        per_lane[procs.binary_search(&data.ops[i].process).unwrap_or(0)] += 1;
    }
    let busiest = per_lane.iter().copied().max().unwrap_or(0);
    // Wide enough for a short label per bar in the busiest lane; the page scrolls sideways.
    let plot_w = (busiest as f64 * 48.0).clamp(900.0, 12000.0);
    let span = (window.end - window.start) as f64;
    let x =
        |t: u64| GUTTER + (t.clamp(window.start, window.end) - window.start) as f64 / span * plot_w;

    let faults: Vec<_> = (data.faults.iter())
        .filter(|f| f.start_ns < window.end && !matches!(f.end_ns, Some(e) if e <= window.start))
        .take(MAX_FAULTS)
        .collect();
    // Overlapping faults get rows of their own, so their labels do not collide.
    let mut row_ends: Vec<u64> = Vec::new();
    let fault_rows: Vec<usize> = faults
        .iter()
        .map(|f| {
            let end = f.end_ns.unwrap_or(u64::MAX);
            let row = row_ends.iter().position(|&e| e <= f.start_ns);
            let row = row.unwrap_or_else(|| {
                row_ends.push(0);
                row_ends.len() - 1
            });
            row_ends[row] = end;
            row
        })
        .collect();
    let lanes_top = AXIS_H + row_ends.len() as f64 * FAULT_ROW_H + 4.0;
    let height = lanes_top + procs.len().max(1) as f64 * LANE_H + 4.0;
    let width = GUTTER + plot_w + 8.0;

    let mut out = String::with_capacity(shown.len() * 300 + 4096);
    out.push_str("<div class=\"tl\"><p class=\"tl-head\">");
    let (from, to) = (seconds(window.start, 3), seconds(window.end, 3));
    match inside {
        Some((first, last)) => {
            let _ = write!(
                out,
                "operations {}..{} of {}, from {from} s to {to} s",
                first + 1,
                last + 1,
                data.ops.len()
            );
        }
        None => {
            let _ = write!(
                out,
                "no operations invoked from {from} s to {to} s (of {})",
                data.ops.len()
            );
        }
    }
    if running > 0 {
        let _ = write!(out, ", and {running} invoked earlier, still running");
    }
    if left_out > 0 {
        let _ = write!(out, " ({left_out} more in this window not drawn)");
    }
    out.push_str(
        "</p><p class=\"tl-head\"><span class=\"tl-key tl-ok\">ok</span>\
        <span class=\"tl-key tl-fail\">fail</span><span class=\"tl-key tl-info\">info</span>\
        <span class=\"tl-key tl-open\">open</span>",
    );
    if !unplaceable_ops(&data.results).is_empty() {
        out.push_str("<span class=\"tl-key tl-x\">cannot be linearized</span>");
    }
    out.push_str("</p>");
    svg::open(&mut out, "tl", width, height);
    let names: Vec<String> = procs.iter().map(|p| format!("p{p}")).collect();
    svg::lanes(
        &mut out,
        "tl",
        &names,
        (lanes_top, LANE_H),
        width,
        GUTTER - 6.0,
    );
    let step = nice_step(span, (plot_w / 110.0).max(2.0));
    let decimals = decimals_for(step);
    let mut tick = window.start.div_ceil(step).saturating_mul(step);
    while tick <= window.end {
        let label = format!("{} s", seconds(tick, decimals));
        svg::tick(
            &mut out,
            "tl",
            x(tick),
            (13.0, AXIS_H - 4.0, height),
            &label,
        );
        let Some(next) = tick.checked_add(step) else {
            break;
        };
        tick = next;
    }
    for (f, row) in faults.iter().zip(&fault_rows) {
        let (x1, x2) = (x(f.start_ns), x(f.end_ns.unwrap_or(window.end)));
        let w = (x2 - x1).max(1.0);
        let y = AXIS_H + *row as f64 * FAULT_ROW_H;
        let until = f
            .end_ns
            .map_or("never healed".into(), |e| format!("{} s", seconds(e, 3)));
        let _ = write!(
            out,
            "<g class=\"tl-fault tl-f-{}\"><title>{} from {} s to {until}: {}</title>\
             <rect class=\"tl-band\" x=\"{x1:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\"/>\
             <rect class=\"tl-tag\" x=\"{x1:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\"/>",
            css_name(&f.kind),
            escape(&f.kind),
            seconds(f.start_ns, 3),
            escape(&f.detail),
            height - y,
            FAULT_ROW_H - 1.0,
        );
        if let Some(label) = svg::fit_label(&f.kind, w) {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x1 + 2.0,
                y + 10.5,
                escape(&label)
            );
        }
        out.push_str("</g>");
    }
    let marked = unplaceable_ops(&data.results);
    for &i in &shown {
        let op = &data.ops[i];
        let lane = procs.binary_search(&op.process).unwrap_or(0);
        let y = lanes_top + lane as f64 * LANE_H + 2.0;
        let x1 = x(op.invoke_ns);
        // A pixel short of its end, so that back-to-back operations stay apart.
        let w = (x(op.complete_ns.unwrap_or(window.end)) - x1 - 1.0).max(1.5);
        let x_mark = marked.iter().any(|&(index, _)| index == Some(op.index));
        let class = format!(
            "tl-op tl-{}{}",
            op.outcome.name(),
            if x_mark { " tl-x" } else { "" }
        );
        let rect = (x1, y, w, LANE_H - 4.0);
        let title = op_title(data, op);
        svg::bar(&mut out, &class, &title, rect, &op_label(data, op), 2.0);
    }
    svg::close(&mut out);
    out.push_str("</div>");
    out
}

/// The operations of a window to draw.
struct Selection {
    /// Positions in `data.ops`, in invocation order.
    shown: Vec<usize>,
    /// The first and last position of those drawn that were invoked inside the window.
    inside: Option<(usize, usize)>,
    /// How many of those drawn were invoked before the window and still running in it.
    running: usize,
    /// How many overlapping the window are not drawn, for `max_ops`.
    left_out: usize,
}

/// Those invoked inside the window come first; then those still running when it opened.
fn select(data: &RunData, window: &Range<u64>, max_ops: usize) -> Selection {
    let (mut inside, mut running) = (Vec::new(), Vec::new());
    for (i, op) in data.ops.iter().enumerate() {
        if overlaps(op, window) {
            if op.invoke_ns >= window.start {
                inside.push(i);
            } else {
                running.push(i);
            }
        }
    }
    let total = inside.len() + running.len();
    inside.truncate(max_ops);
    let range = inside.first().zip(inside.last()).map(|(a, b)| (*a, *b));
    // The latest invoked of those running: the nearest to the window.
    let room = max_ops - inside.len();
    let running = &running[running.len().saturating_sub(room)..];
    let mut shown = running.to_vec();
    shown.extend_from_slice(&inside);
    Selection {
        left_out: total - shown.len(),
        running: running.len(),
        inside: range,
        shown,
    }
}

/// "f key value → result", short.
fn op_label(data: &RunData, op: &Op) -> String {
    let mut label = data.function(op).to_string();
    for part in [&op.key, &op.value] {
        if !part.is_empty() {
            label.push(' ');
            label.push_str(part);
        }
    }
    match op.outcome {
        Outcome::Ok => {
            label.push_str(" → ");
            label.push_str(or_null(&op.result));
        }
        Outcome::Fail => label.push_str(" → fail"),
        Outcome::Info | Outcome::Open => label.push_str(" → ?"),
    }
    label
}

fn op_title(data: &RunData, op: &Op) -> String {
    let latency = op.latency_ns().map_or("never completed".to_string(), |l| {
        format!("latency {:.2} ms", l as f64 / 1e6)
    });
    format!(
        "index {}, process {}, node {}\n{} key {} value {} → {} ({})\nat {} s, {latency}",
        op.index,
        op.process,
        op.node,
        data.function(op),
        op.key,
        or_null(&op.value),
        or_null(&op.result),
        op.outcome.name(),
        seconds(op.invoke_ns, 6),
    )
}

/// [`crate::data::short`] makes JSON null empty; a reader wants to see it.
fn or_null(value: &str) -> &str {
    if value.is_empty() {
        "null"
    } else {
        value
    }
}

/// A fault kind as a class-name suffix: only `[a-z0-9-]` survives.
fn css_name(kind: &str) -> String {
    (kind.chars())
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

#[cfg(test)]
mod tests;
