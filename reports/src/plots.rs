//! Three inline SVG plots of a run (latency, latency quantiles, throughput), each with the fault
//! windows shaded behind it, so a reader sees what every fault did to the clients.
//!
//! Drawn with plotters' SVG backend, which escapes text and attribute values (the tests guard
//! it). The latency markers and legend swatches are written by hand, as numbers and colours
//! only: markers are binned to the pixel grid ([`points`]), so a million operations stay small.

mod frame;
mod points;
#[cfg(test)]
mod tests;

use crate::data::{Outcome, RunData};
use frame::{plot, Item, Spec, Swatch, YAxis, GREY};
use plotters::prelude::*;
use points::{Grid, Shape};

pub use frame::FAULT_COLOURS;

/// The size of each plot; the SVG has a viewBox, so the page may scale it.
pub const WIDTH: u32 = 900;
pub const HEIGHT: u32 = 300;

/// Each a complete `<svg>…</svg>` document, to be inlined in the report.
#[derive(Clone, Debug)]
pub struct Plots {
    pub latency: String,
    pub quantiles: String,
    pub throughput: String,
}

pub fn render(data: &RunData) -> anyhow::Result<Plots> {
    Ok(Plots {
        latency: latency(data)?,
        quantiles: quantiles(data)?,
        throughput: throughput(data)?,
    })
}

const OK: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
const FAIL: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const INFO: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
/// Outcomes in drawing order, so the rarer and worse ones land on top.
const OUTCOMES: [(Outcome, RGBColor); 3] = [
    (Outcome::Ok, OK),
    (Outcome::Info, INFO),
    (Outcome::Fail, FAIL),
];

fn rank(outcome: Outcome) -> Option<usize> {
    OUTCOMES.iter().position(|(o, _)| *o == outcome)
}

/// Every completed client op as a point (invocation time, latency), coloured by outcome,
/// shaped by function.
pub fn latency(data: &RunData) -> anyhow::Result<String> {
    let done = || {
        (data.ops.iter())
            .filter_map(|op| Some((op, op.latency_ns()? as f64 / 1e6, rank(op.outcome)?)))
    };
    let y = YAxis::log_for(done().map(|(_, ms, _)| ms));
    let mut legend: Vec<Item> = (OUTCOMES.iter())
        .map(|(o, c)| Item::new(Swatch::Marker(Shape::Circle, *c), o.name()))
        .collect();
    let shown = data.functions.len().min(7);
    for (i, name) in data.functions.iter().enumerate().take(shown) {
        legend.push(Item::new(Swatch::Marker(Shape::of(i), GREY), name));
    }
    if data.functions.len() > shown {
        let more = format!("… {} more", data.functions.len() - shown);
        legend.push(Item::new(Swatch::None, &more));
    }
    let spec = Spec {
        caption: "Latency of each completed operation, by invocation time",
        y_desc: "latency (ms, log)",
        y,
        legend,
        empty: done().next().is_none().then_some("no operations"),
    };
    plot(data, spec, |chart| {
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        let mut grid = Grid::new(xs, ys);
        for (op, ms, rank) in done() {
            let (px, py) = chart.backend_coord(&(op.invoke_ns as f64 / 1e9, y.coord(ms)));
            grid.add(px, py, Shape::of(op.f as usize).class(rank));
        }
        Ok(grid.svg(&OUTCOMES.map(|(_, c)| c)))
    })
}

/// p50, p95, p99 and max latency of the ops that completed ok, per time bucket of invocation.
pub fn quantiles(data: &RunData) -> anyhow::Result<String> {
    let (width, n) = buckets(data.end_ns);
    let mut latencies = vec![Vec::new(); n];
    for op in data.ops.iter().filter(|op| op.outcome == Outcome::Ok) {
        if let Some(l) = op.latency_ns() {
            latencies[((op.invoke_ns / width) as usize).min(n - 1)].push(l);
        }
    }
    const QS: [(&str, f64, RGBColor); 4] = [
        ("p50", 0.5, RGBColor(0x1b, 0x9e, 0x77)),
        ("p95", 0.95, RGBColor(0xd9, 0x5f, 0x02)),
        ("p99", 0.99, RGBColor(0x75, 0x70, 0xb3)),
        ("max", 1.0, RGBColor(0x22, 0x22, 0x22)),
    ];
    // Per bucket, the four quantiles in ms (None: no ok op invoked in it).
    let rows: Vec<Option<[f64; 4]>> = (latencies.iter_mut())
        .map(|ls| {
            ls.sort_unstable();
            let at = |q: f64| ls[((q * ls.len() as f64).ceil() as usize).clamp(1, ls.len()) - 1];
            (!ls.is_empty()).then(|| QS.map(|(_, q, _)| at(q) as f64 / 1e6))
        })
        .collect();
    let y = YAxis::log_for(rows.iter().flatten().flat_map(|r| [r[0], r[3]]));
    let legend = (QS.iter())
        .map(|(name, _, c)| Item::new(Swatch::Line(*c), &format!("{name} (ok ops)")))
        .collect();
    let caption = format!(
        "Latency quantiles of ok operations, per {} of invocation time",
        seconds(width)
    );
    let empty = if data.ops.is_empty() {
        Some("no operations")
    } else {
        rows.iter()
            .all(Option::is_none)
            .then_some("no ok operations")
    };
    let spec = Spec {
        caption: &caption,
        y_desc: "latency (ms, log)",
        y,
        legend,
        empty,
    };
    plot(data, spec, |chart| {
        // A bucket's middle, kept on the axis (the last bucket may run past the end).
        let end_s = data.end_ns as f64 / 1e9;
        let mid = |b: usize| ((b as f64 + 0.5) * width as f64 / 1e9).min(end_s);
        let runs = runs(&rows);
        for (q, (_, _, colour)) in QS.iter().enumerate() {
            // A line per run of buckets that have ops; a dot for a lone bucket.
            for run in runs.iter().cloned() {
                let pts: Vec<(f64, f64)> = run
                    .filter_map(|b| Some((mid(b), y.coord(rows[b]?[q]))))
                    .collect();
                if let [only] = pts[..] {
                    chart.draw_series(std::iter::once(Circle::new(only, 2, colour.filled())))?;
                } else {
                    chart.draw_series(LineSeries::new(pts, colour.stroke_width(2)))?;
                }
            }
        }
        Ok(String::new())
    })
}

/// Ops completed per second, by outcome, per time bucket of completion.
pub fn throughput(data: &RunData) -> anyhow::Result<String> {
    let (width, n) = buckets(data.end_ns);
    let mut counts = vec![[0u64; 3]; n];
    for op in &data.ops {
        if let (Some(c), Some(r)) = (op.complete_ns, rank(op.outcome)) {
            counts[((c / width) as usize).min(n - 1)][r] += 1;
        }
    }
    let per_s = |count: u64| count as f64 * 1e9 / width as f64;
    let top = counts.iter().flatten().copied().max().unwrap_or(0);
    let y = YAxis::Linear {
        hi: (per_s(top) * 1.1).max(1.0),
    };
    let legend = (OUTCOMES.iter())
        .map(|(o, c)| Item::new(Swatch::Line(*c), o.name()))
        .collect();
    let caption = format!(
        "Operations completed per second, per {} of completion time",
        seconds(width)
    );
    let spec = Spec {
        caption: &caption,
        y_desc: "ops/s",
        y,
        legend,
        empty: data.ops.is_empty().then_some("no operations"),
    };
    plot(data, spec, |chart| {
        for (r, (_, colour)) in OUTCOMES.iter().enumerate() {
            let pts = (counts.iter().enumerate())
                .map(|(b, c)| ((b as f64 + 0.5) * width as f64 / 1e9, per_s(c[r])));
            chart.draw_series(LineSeries::new(pts, colour.stroke_width(2)))?;
        }
        Ok(String::new())
    })
}

/// The bucket width (ns) and count over `0..end_ns`: the smallest of 100, 200, 250, 500 ms
/// × 10^k that makes at most 120 buckets, so 48–120 of them on runs longer than 12 s.
fn buckets(end_ns: u64) -> (u64, usize) {
    let span = end_ns.max(1);
    let mut decade = 100_000_000u64;
    loop {
        for m in [10, 20, 25, 50] {
            let width = decade / 10 * m;
            if span.div_ceil(width) <= 120 {
                return (width, span.div_ceil(width) as usize);
            }
        }
        decade *= 10;
    }
}

/// Ranges of consecutive indices whose rows are `Some`.
fn runs<T>(rows: &[Option<T>]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for i in 0..=rows.len() {
        match (start, rows.get(i).is_some_and(Option::is_some)) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    out
}

fn seconds(ns: u64) -> String {
    format!("{} s", ns as f64 / 1e9)
}
