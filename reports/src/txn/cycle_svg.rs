//! An anomaly drawn: its transactions as boxes on the history's axis (one row each, from
//! invocation to completion), the cycle's dependencies as arrows between them, coloured by kind
//! and labelled with the key and value they are about.
//!
//! The axis is in event order, not to scale, as in the counterexample view: what matters is
//! which transactions overlap (a realtime edge needs the first to end before the second starts),
//! and to scale one slow transaction would squeeze the rest into slivers.

use super::{edge_name, mops_short, txn_title};
use crate::html::escape;
use crate::timeline::svg::{self, CHAR_W};
use checkers::txn::{CycleStep, Txn};
use checkers::Outcome;
use std::fmt::Write;

const GUTTER: f64 = 44.0;
/// Least horizontal space between events (invocations and completions).
const STEP: f64 = 40.0;
const MIN_BOX_W: f64 = 110.0;
const MAX_BOX_W: f64 = 320.0;
/// Characters of a box's micro-ops line before "…" (the hover title has them all).
const MOPS_CHARS: usize = 48;
const AXIS_H: f64 = 24.0;
const BOX_H: f64 = 32.0;
/// Room between rows for the arrows and their labels.
const GAP: f64 = 46.0;
/// How far right of the boxes the first arc between rows that are not adjacent runs, and how
/// much further each next one does.
const ARC_OUT: f64 = 40.0;
const ARC_STEP: f64 = 26.0;

/// A point.
type P = (f64, f64);

fn box_lines(txn: &Txn) -> (String, String) {
    let mut head = format!("T{} p{}", txn.id, txn.process);
    if txn.outcome != Outcome::Ok {
        let _ = write!(head, " {}", outcome_word(txn.outcome));
    }
    let mops = mops_short(&txn.mops);
    let mops = match mops.char_indices().nth(MOPS_CHARS) {
        Some((at, _)) => format!("{}…", &mops[..at]),
        None => mops,
    };
    (head, mops)
}

pub(super) fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Ok => "ok",
        Outcome::Fail => "fail",
        Outcome::Info => "info",
    }
}

/// The SVG of `txns` (one row each, in this order) and the arrows of `steps` between them.
/// Steps naming a transaction not among `txns` are left out.
pub(crate) fn draw(txns: &[&Txn], steps: &[CycleStep]) -> String {
    let mut out = String::new();
    if txns.is_empty() {
        return out;
    }
    // The axis: every distinct invocation and completion, spread so each box holds its label.
    let mut events: Vec<usize> = txns
        .iter()
        .flat_map(|t| [Some(t.call), t.ret])
        .flatten()
        .collect();
    events.sort_unstable();
    events.dedup();
    let rank = |e: usize| events.partition_point(|&x| x < e);
    let need = |t: &Txn| {
        let (a, b) = box_lines(t);
        let chars = a.chars().count().max(b.chars().count()) as f64;
        (chars * CHAR_W + 14.0).clamp(MIN_BOX_W, MAX_BOX_W)
    };
    let mut pos: Vec<f64> = Vec::with_capacity(events.len());
    for (k, &e) in events.iter().enumerate() {
        let mut at = pos.last().map_or(GUTTER + 8.0, |p| p + STEP);
        for t in txns.iter().filter(|t| t.ret == Some(e)) {
            at = at.max(pos[rank(t.call).min(k)] + need(t));
        }
        pos.push(at);
    }
    let x = |e: usize| pos[rank(e).min(pos.len() - 1)];
    let right = (txns.iter())
        .filter(|t| t.ret.is_none())
        .map(|t| x(t.call) + need(t) + STEP)
        .fold(pos[pos.len() - 1] + STEP, f64::max);
    let rows_of = |id: usize| txns.iter().position(|t| t.id == id);
    let arcs = (steps.iter())
        .filter(|s| match (rows_of(s.from), rows_of(s.to)) {
            (Some(a), Some(b)) => a.abs_diff(b) > 1,
            _ => false,
        })
        .count();
    let arc_room = if arcs == 0 {
        0.0
    } else {
        ARC_OUT + ARC_STEP * (arcs - 1) as f64 + 50.0
    };
    let width = right + 70.0 + arc_room;
    let height = AXIS_H + txns.len() as f64 * (BOX_H + GAP);
    svg::open(&mut out, "tx", width, height);
    let names: Vec<String> = txns.iter().map(|t| format!("T{}", t.id)).collect();
    svg::lanes(
        &mut out,
        "tx",
        &names,
        (AXIS_H, BOX_H + GAP),
        width,
        GUTTER - 6.0,
    );
    // Ticks: history indices of invocations and completions, far enough apart to read.
    let mut labels: Vec<(usize, u64)> = Vec::new();
    for t in txns {
        labels.push((t.call, t.invoke_index));
        if let (Some(r), Some(i)) = (t.ret, t.complete_index) {
            labels.push((r, i));
        }
    }
    labels.sort_unstable();
    labels.dedup_by_key(|l| l.0);
    let mut last_tick = f64::MIN;
    for (e, index) in labels {
        let tx = x(e);
        if tx < last_tick + 48.0 {
            continue;
        }
        last_tick = tx;
        svg::tick(
            &mut out,
            "tx",
            tx,
            (14.0, AXIS_H - 4.0, height),
            &format!("#{index}"),
        );
    }
    // Boxes.
    let mut boxes: Vec<(usize, (f64, f64, f64, f64))> = Vec::new();
    for (row, t) in txns.iter().enumerate() {
        let x1 = x(t.call);
        let x2 = t.ret.map_or(right, x).max(x1 + need(t).min(STEP));
        let y = AXIS_H + row as f64 * (BOX_H + GAP) + GAP / 2.0;
        let class = match (t.outcome, t.ret) {
            (_, None) => "tx-open",
            (Outcome::Ok, _) => "tx-ok",
            (Outcome::Fail, _) => "tx-fail",
            (Outcome::Info, _) => "tx-info",
        };
        let (head, mops) = box_lines(t);
        let _ = write!(
            out,
            "<g class=\"tx-box {class}\"><title>{}</title><rect x=\"{x1:.1}\" y=\"{y:.1}\" \
             width=\"{:.1}\" height=\"{BOX_H:.0}\" rx=\"3\"/>",
            escape(&txn_title(t)),
            x2 - x1
        );
        for (line, text, dy) in [("tx-head", head, 13.0), ("tx-mops", mops, 26.0)] {
            if let Some(fit) = svg::fit_label(&text, x2 - x1 - 4.0) {
                let _ = write!(
                    out,
                    "<text class=\"{line}\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    x1 + 5.0,
                    y + dy,
                    escape(&fit)
                );
            }
        }
        out.push_str("</g>");
        boxes.push((t.id, (x1, y, x2 - x1, BOX_H)));
    }
    // Arrows, then their labels on top.
    let find = |id: usize| boxes.iter().find(|(i, _)| *i == id).map(|b| b.1);
    let boxes_right = (boxes.iter())
        .map(|(_, (x, _, w, _))| x + w)
        .fold(0.0, f64::max);
    let mut labels = String::new();
    let mut arc = 0;
    for step in steps {
        let (Some(from), Some(to)) = (find(step.from), find(step.to)) else {
            continue;
        };
        let rows_apart = ((to.1 - from.1).abs() / (BOX_H + GAP)).round();
        let (path, mid, head) = if rows_apart > 1.0 {
            let out_x = boxes_right + ARC_OUT + ARC_STEP * arc as f64;
            arc += 1;
            side_arc(from, to, out_x)
        } else {
            curve(from, to)
        };
        let name = edge_name(step.kind);
        let label = step_label(step);
        let _ = write!(
            out,
            "<g class=\"tx-edge tx-e-{name}\"><title>{}</title><path d=\"{path}\"/>{head}</g>",
            escape(&step.why),
        );
        // A pale backing so the label reads over lanes and lines.
        let w = label.chars().count() as f64 * CHAR_W + 6.0;
        let _ = write!(
            labels,
            "<g class=\"tx-label tx-e-{name}\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" \
             height=\"14\" rx=\"3\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            mid.0 - w / 2.0,
            mid.1 - 8.0,
            mid.0 - w / 2.0 + 3.0,
            mid.1 + 3.0,
            escape(&label)
        );
    }
    out.push_str(&labels);
    svg::close(&mut out);
    out
}

/// `rw k3 4`, `wr k1 6`, `rt`, `proc`.
pub(crate) fn step_label(step: &CycleStep) -> String {
    let mut label = edge_name(step.kind).to_string();
    if let Some(k) = step.key {
        let _ = write!(label, " k{k}");
    }
    if let Some(v) = step.value {
        let _ = write!(label, " {v}");
    }
    label
}

/// An arrow between boxes in adjacent rows (or a box and itself), as (path, label point,
/// arrowhead): a quadratic curve from the middle of the edge facing the target to the middle of
/// the target's facing edge, bowed to the left of travel so that the two edges of a
/// two-transaction cycle do not lie on each other. An edge to itself loops out of the right side.
fn curve(from: (f64, f64, f64, f64), to: (f64, f64, f64, f64)) -> (String, P, String) {
    let (fx, fy, fw, fh) = from;
    let (tx, ty, tw, th) = to;
    let (start, control, end) = if (fx, fy) == (tx, ty) {
        let r = (fx + fw, fy + fh * 0.3);
        (r, (r.0 + 40.0, fy + fh / 2.0), (r.0, fy + fh * 0.7))
    } else {
        let down = ty > fy;
        let start = (fx + fw / 2.0, if down { fy + fh } else { fy });
        let end = (tx + tw / 2.0, if down { ty } else { ty + th });
        let (dx, dy) = (end.0 - start.0, end.1 - start.1);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let bow = 14.0;
        let control = (
            (start.0 + end.0) / 2.0 + dy / len * bow,
            (start.1 + end.1) / 2.0 - dx / len * bow,
        );
        (start, control, end)
    };
    let path = format!(
        "M{:.1},{:.1} Q{:.1},{:.1} {:.1},{:.1}",
        start.0, start.1, control.0, control.1, end.0, end.1
    );
    let mid = (
        0.25 * start.0 + 0.5 * control.0 + 0.25 * end.0,
        0.25 * start.1 + 0.5 * control.1 + 0.25 * end.1,
    );
    (path, mid, arrowhead(control, end))
}

/// An arrow between rows that are not adjacent, routed around the right of every box (at
/// `out_x`) so it crosses none: from the source's right edge to the target's, labelled where
/// it runs furthest out.
fn side_arc(
    from: (f64, f64, f64, f64),
    to: (f64, f64, f64, f64),
    out_x: f64,
) -> (String, P, String) {
    let start = (from.0 + from.2, from.1 + from.3 / 2.0);
    let end = (to.0 + to.2, to.1 + to.3 / 2.0);
    let path = format!(
        "M{:.1},{:.1} C{out_x:.1},{:.1} {out_x:.1},{:.1} {:.1},{:.1}",
        start.0, start.1, start.1, end.1, end.0, end.1
    );
    let mid = (
        0.125 * (start.0 + end.0) + 0.75 * out_x,
        (start.1 + end.1) / 2.0,
    );
    (path, mid, arrowhead((out_x, end.1), end))
}

/// A filled triangle at `end`, pointing along the curve's last tangent (from `control`).
fn arrowhead(control: P, end: P) -> String {
    let (dx, dy) = (end.0 - control.0, end.1 - control.1);
    let len = (dx * dx + dy * dy).sqrt().max(1.0);
    let (ux, uy) = (dx / len, dy / len);
    let back = (end.0 - 9.0 * ux, end.1 - 9.0 * uy);
    format!(
        "<polygon points=\"{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}\"/>",
        end.0,
        end.1,
        back.0 - 4.5 * uy,
        back.1 + 4.5 * ux,
        back.0 + 4.5 * uy,
        back.1 - 4.5 * ux
    )
}
