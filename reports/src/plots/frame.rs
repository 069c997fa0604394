//! The frame the three plots share: axes, fault bands and their labels, the legend column,
//! and the "no operations" note, stitched with a plot's own raw SVG into one document.

use super::points::{self, hex, Shape};
use super::{HEIGHT, WIDTH};
use crate::data::RunData;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::fmt::Write;

/// The legend column sits beside the plot, so markers never cover it.
pub(super) const LEGEND_X: u32 = 730;
pub(super) const FONT: &str = "sans-serif";
pub(super) const GREY: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// A fixed colour per fault kind, the same in every plot and every report.
pub const FAULT_COLOURS: [(&str, RGBColor); 6] = [
    ("partition", RGBColor(0x4e, 0x79, 0xa7)),
    ("kill", RGBColor(0x59, 0x59, 0x5c)),
    ("pause", RGBColor(0xb0, 0x7a, 0xa1)),
    ("clock", RGBColor(0x76, 0xb7, 0xb2)),
    ("latency", RGBColor(0xed, 0xc9, 0x48)),
    ("loss", RGBColor(0x9c, 0x75, 0x5f)),
];

pub(super) fn fault_colour(kind: &str) -> RGBColor {
    (FAULT_COLOURS.iter().find(|(k, _)| *k == kind)).map_or(RGBColor(0xba, 0xb0, 0xac), |c| c.1)
}

/// The y axis. Log axes use log10(ms) as the coordinate, so every chart has one type.
#[derive(Clone, Copy)]
pub(super) enum YAxis {
    /// Decades 10^lo ..= 10^hi ms.
    Log {
        lo: i32,
        hi: i32,
    },
    Linear {
        hi: f64,
    },
}

impl YAxis {
    /// From 0.1 ms (or the decade below the fastest op, down to 1 µs) to the decade above the
    /// slowest.
    pub(super) fn log_for(ms: impl Iterator<Item = f64>) -> YAxis {
        let (min, max) = ms.fold((f64::INFINITY, 0f64), |(a, b), m| (a.min(m), b.max(m)));
        let lo = if min > 0.0 && min.is_finite() {
            (min.log10().floor() as i32).clamp(-3, -1)
        } else {
            -1
        };
        let hi = if max > 0.0 {
            max.log10().ceil() as i32
        } else {
            3
        };
        YAxis::Log {
            lo,
            hi: hi.max(lo + 1),
        }
    }

    fn range(self) -> Ticks {
        match self {
            YAxis::Log { lo, hi } => Ticks {
                inner: (lo as f64..hi as f64).into(),
                bold: (lo..=hi).map(f64::from).collect(),
                light: (lo..hi)
                    .flat_map(|d| [2f64, 5.].map(|m| d as f64 + m.log10()))
                    .filter(|_| hi - lo <= 4)
                    .collect(),
            },
            YAxis::Linear { hi } => {
                let inner: RangedCoordf64 = (0.0..hi).into();
                let (bold, light) = (inner.key_points(6), inner.key_points(30));
                Ticks { inner, bold, light }
            }
        }
    }

    fn bounds(self) -> (f64, f64) {
        match self {
            YAxis::Log { lo, hi } => (lo as f64, hi as f64),
            YAxis::Linear { hi } => (0.0, hi),
        }
    }

    /// A value's coordinate: log axes put anything faster than the bottom on the bottom.
    pub(super) fn coord(self, value: f64) -> f64 {
        match self {
            YAxis::Log { lo, .. } => value.max(10f64.powi(lo)).log10(),
            YAxis::Linear { .. } => value,
        }
    }

    fn label(self, coord: f64) -> String {
        match self {
            YAxis::Log { .. } => format!("{}", (10f64.powf(coord) * 1000.0).round() / 1000.0),
            YAxis::Linear { .. } => format!("{}", (coord * 100.0).round() / 100.0),
        }
    }
}

/// A linear f64 axis with chosen ticks (decades on log axes). plotters' own `WithKeyPoints`
/// over f64 lacks the formatter its mesh needs, hence this.
pub(super) struct Ticks {
    inner: RangedCoordf64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl Ranged for Ticks {
    type ValueType = f64;
    type FormatOption = DefaultFormatting;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let light = hint.weight().allow_light_points();
        if light { &self.light } else { &self.bold }.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

pub(super) enum Swatch {
    Marker(Shape, RGBColor),
    Line(RGBColor),
    Band(RGBColor),
    None,
}

pub(super) struct Item {
    swatch: Swatch,
    label: String,
}

impl Item {
    /// Labels are cut to fit the legend column.
    pub(super) fn new(swatch: Swatch, label: &str) -> Item {
        Item {
            swatch,
            label: cut(label, 22),
        }
    }
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// What one plot puts in the shared frame.
pub(super) struct Spec<'s> {
    pub(super) caption: &'s str,
    pub(super) y_desc: &'s str,
    pub(super) y: YAxis,
    /// The series; the fault kinds are added below them.
    pub(super) legend: Vec<Item>,
    /// Said in the middle of the plot when there is nothing to draw.
    pub(super) empty: Option<&'s str>,
}

pub(super) type Chart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Ticks>>;

/// Draws the frame (axes, fault bands), the series (`draw`, which may return raw SVG to go
/// above them), then band labels and the legend on top, as one SVG document.
pub(super) fn plot(
    data: &RunData,
    mut spec: Spec,
    draw: impl FnOnce(&mut Chart) -> anyhow::Result<String>,
) -> anyhow::Result<String> {
    // A degenerate axis overflows plotters' mapping: at least 1 ms, 1 s for an empty run.
    let end_s = match data.end_ns {
        0 => 1.0,
        ns => ns.max(1_000_000) as f64 / 1e9,
    };
    let mut base = String::new();
    let mut labels = Vec::new();
    let (raw, (xs, ys));
    {
        let root = SVGBackend::with_string(&mut base, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let (left, _) = root.split_horizontally(LEGEND_X);
        let mut chart = ChartBuilder::on(&left)
            .caption(spec.caption, (FONT, 15))
            .margin(6)
            .x_label_area_size(34)
            .y_label_area_size(52)
            .build_cartesian_2d(0.0..end_s, spec.y.range())?;
        let y_label = |v: &f64| spec.y.label(*v);
        chart
            .configure_mesh()
            .x_desc("seconds since the run started")
            .y_desc(spec.y_desc)
            .y_label_formatter(&y_label)
            .x_label_formatter(&|v| format!("{}", (v * 1000.0).round() / 1000.0))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 12))
            .bold_line_style(BLACK.mix(0.12))
            .light_line_style(BLACK.mix(0.05))
            .draw()?;
        let (bottom, top) = spec.y.bounds();
        for w in &data.faults {
            let start = (w.start_ns as f64 / 1e9).min(end_s);
            let end = w
                .end_ns
                .map_or(end_s, |e| (e as f64 / 1e9).clamp(start, end_s));
            let style = fault_colour(&w.kind).mix(0.18).filled();
            chart.draw_series(std::iter::once(Rectangle::new(
                [(start, bottom), (end, top)],
                style,
            )))?;
            labels.push((w.kind.as_str(), chart.backend_coord(&(start, top)).0));
        }
        raw = draw(&mut chart)?;
        (xs, ys) = chart.plotting_area().get_pixel_range();
        root.present()?;
    }
    spec.legend.extend(fault_items(data));

    let mut over = String::new();
    {
        let root = SVGBackend::with_string(&mut over, (WIDTH, HEIGHT)).into_drawing_area();
        draw_band_labels(&root, &labels, xs.clone(), ys.start)?;
        if let Some(message) = spec.empty {
            let style = (FONT, 16)
                .into_font()
                .color(&GREY)
                .pos(Pos::new(HPos::Center, VPos::Center));
            let centre = ((xs.start + xs.end) / 2, (ys.start + ys.end) / 2);
            root.draw(&Text::new(message, centre, style))?;
        }
        for (i, item) in spec.legend.iter().enumerate() {
            let style = (FONT, 12)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center));
            root.draw(&Text::new(item.label.as_str(), legend_at(i, 24), style))?;
        }
        root.present()?;
    }

    let mut svg = base.strip_suffix("</svg>\n").unwrap_or(&base).to_string();
    svg.push_str(&raw);
    // The overlay's content, without its own <svg> wrapper.
    let inner = over.split_once(">\n").map_or("", |(_, rest)| rest);
    svg.push_str(inner.strip_suffix("</svg>\n").unwrap_or(inner));
    for (i, item) in spec.legend.iter().enumerate() {
        let (x, y) = legend_at(i, 10);
        let _ = match item.swatch {
            Swatch::Marker(shape, c) => write!(svg, "{}", points::marker(shape, c, x, y)),
            Swatch::Line(c) => writeln!(
                svg,
                r#"<path d="M{} {y}h16" stroke="{}" stroke-width="2"/>"#,
                x - 8,
                hex(c)
            ),
            Swatch::Band(c) => writeln!(
                svg,
                r#"<rect x="{}" y="{}" width="16" height="10" fill="{}" opacity="0.35"/>"#,
                x - 8,
                y - 5,
                hex(c)
            ),
            Swatch::None => Ok(()),
        };
    }
    svg.push_str("</svg>\n");
    Ok(svg)
}

/// Row `i` of the legend column, `dx` pixels in.
fn legend_at(i: usize, dx: i32) -> (i32, i32) {
    (LEGEND_X as i32 + dx, 30 + 14 * i as i32)
}

/// The fault kinds of the run, in the order they first struck, after the series.
fn fault_items(data: &RunData) -> Vec<Item> {
    let mut kinds: Vec<&str> = Vec::new();
    for w in &data.faults {
        if !kinds.contains(&w.kind.as_str()) {
            kinds.push(&w.kind);
        }
    }
    let mut items: Vec<Item> = (kinds.iter())
        .map(|k| Item::new(Swatch::Band(fault_colour(k)), k))
        .collect();
    if items.len() > 7 {
        let more = format!("… {} more faults", items.len() - 6);
        items.truncate(6);
        items.push(Item::new(Swatch::None, &more));
    }
    items
}

/// Each band's kind at its top, in up to three rows so neighbouring labels do not collide.
fn draw_band_labels(
    root: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    labels: &[(&str, i32)],
    xs: std::ops::Range<i32>,
    top: i32,
) -> anyhow::Result<()> {
    let mut row_ends = [i32::MIN; 3];
    for (kind, start) in labels {
        let text = cut(kind, 16);
        let width = 6 * text.chars().count() as i32 + 6;
        let x = (start + 2).min(xs.end - width).max(xs.start + 2);
        let row = (0..3)
            .find(|r| row_ends[*r] <= x)
            .unwrap_or_else(|| (0..3).min_by_key(|r| row_ends[*r]).unwrap_or(0));
        row_ends[row] = x + width;
        let y = top + 2 + 14 * row as i32;
        // A pale ground keeps the label legible over dense markers.
        let ground = WHITE.mix(0.7).filled();
        root.draw(&Rectangle::new(
            [(x - 2, y), (x + width - 4, y + 13)],
            ground,
        ))?;
        let style = (FONT, 12)
            .into_font()
            .color(&BLACK.mix(0.75))
            .pos(Pos::new(HPos::Left, VPos::Top));
        root.draw(&Text::new(text, (x, y + 2), style))?;
    }
    Ok(())
}
