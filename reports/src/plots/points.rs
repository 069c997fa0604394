//! Latency markers binned to the pixel grid: each (cell, outcome, shape) is drawn once, inside
//! one `<path>` per (outcome, shape), so the SVG's size is bounded by the plot's area rather
//! than by the history's length.

use plotters::style::RGBColor;
use std::fmt::Write;
use std::ops::Range;

/// Marker shapes, by function index; functions beyond the sixth reuse them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Circle,
    Triangle,
    Square,
    Cross,
    Diamond,
    Plus,
}

pub const SHAPES: [Shape; 6] = [
    Shape::Circle,
    Shape::Triangle,
    Shape::Square,
    Shape::Cross,
    Shape::Diamond,
    Shape::Plus,
];

/// Marker classes: outcome rank (ok, info, fail: the order they are drawn in) × shape.
const CLASSES: usize = 3 * SHAPES.len();
// A bit per class in a u32 cell.
const _: () = assert!(CLASSES <= 32);

impl Shape {
    pub fn of(function: usize) -> Shape {
        SHAPES[function % SHAPES.len()]
    }

    fn index(self) -> usize {
        SHAPES.iter().position(|s| *s == self).unwrap_or(0)
    }

    /// The class of a marker of this shape for an outcome rank (0 ok, 1 info, 2 fail).
    pub fn class(self, rank: usize) -> u8 {
        (rank * SHAPES.len() + self.index()) as u8
    }

    /// Paint attributes: dots and squares are zero-length strokes with round or square caps,
    /// the cheapest markers a path can hold.
    fn attrs(self, colour: RGBColor) -> String {
        let c = hex(colour);
        match self {
            Shape::Circle => {
                format!(r#"fill="none" stroke="{c}" stroke-width="4.5" stroke-linecap="round""#)
            }
            Shape::Square => {
                format!(r#"fill="none" stroke="{c}" stroke-width="4" stroke-linecap="square""#)
            }
            Shape::Triangle | Shape::Diamond => format!(r#"fill="{c}" stroke="none""#),
            Shape::Cross | Shape::Plus => format!(r#"fill="none" stroke="{c}" stroke-width="1.5""#),
        }
    }

    /// Appends the path data of a marker centred on (x, y).
    fn push(self, d: &mut String, x: i32, y: i32) {
        let _ = match self {
            Shape::Circle | Shape::Square => write!(d, "M{x} {y}h0"),
            Shape::Triangle => write!(d, "M{x} {}l3 5h-6z", y - 3),
            Shape::Diamond => write!(d, "M{x} {}l3 3-3 3-3-3z", y - 3),
            Shape::Cross => write!(d, "M{} {}l5 5m0-5l-5 5", x - 2, y - 2),
            Shape::Plus => write!(d, "M{} {y}h6m-3-3v6", x - 3),
        };
    }
}

/// A single marker as a path element (for legends).
pub fn marker(shape: Shape, colour: RGBColor, x: i32, y: i32) -> String {
    let mut d = String::new();
    shape.push(&mut d, x, y);
    format!("<path {} d=\"{d}\"/>\n", shape.attrs(colour))
}

pub fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// Past this many distinct markers (~12–25 bytes each) the cells grow to 2, 4, … pixels, so
/// even a history scattered over every pixel stays around a megabyte.
const MAX_MARKERS: usize = 60_000;

/// Markers collected in pixel coordinates of the plotting area.
pub struct Grid {
    x0: i32,
    y0: i32,
    w: usize,
    h: usize,
    points: Vec<(u16, u16, u8)>,
}

impl Grid {
    pub fn new(x: Range<i32>, y: Range<i32>) -> Grid {
        let w = (x.end - x.start).clamp(1, u16::MAX as i32) as usize;
        let h = (y.end - y.start).clamp(1, u16::MAX as i32) as usize;
        Grid {
            x0: x.start,
            y0: y.start,
            w,
            h,
            points: Vec::new(),
        }
    }

    /// Adds a marker at backend pixel (x, y), clamped into the plotting area.
    pub fn add(&mut self, x: i32, y: i32, class: u8) {
        let px = (x - self.x0).clamp(0, self.w as i32 - 1) as u16;
        let py = (y - self.y0).clamp(0, self.h as i32 - 1) as u16;
        self.points.push((px, py, class));
    }

    /// A bit per class present, per cell of `cell`×`cell` pixels, row-major.
    fn bin(&self, cell: usize) -> Vec<u32> {
        let gw = self.w.div_ceil(cell);
        let mut bins = vec![0u32; gw * self.h.div_ceil(cell)];
        for &(x, y, class) in &self.points {
            bins[y as usize / cell * gw + x as usize / cell] |= 1 << class;
        }
        bins
    }

    /// The markers as SVG: one path per class, drawn ok first and fail last (on top).
    /// `colours` are by outcome rank.
    pub fn svg(&self, colours: &[RGBColor; 3]) -> String {
        let mut cell = 1;
        let bins = loop {
            let bins = self.bin(cell);
            let count: usize = bins.iter().map(|b| b.count_ones() as usize).sum();
            if count <= MAX_MARKERS || cell >= 64 {
                break bins;
            }
            cell *= 2;
        };
        let gw = self.w.div_ceil(cell);
        let mut out = String::new();
        for (rank, colour) in colours.iter().enumerate() {
            for shape in SHAPES {
                let bit = 1u32 << shape.class(rank);
                let mut d = String::new();
                for (i, _) in bins.iter().enumerate().filter(|(_, b)| *b & bit != 0) {
                    let x = self.x0 + ((i % gw) * cell + cell / 2).min(self.w - 1) as i32;
                    let y = self.y0 + ((i / gw) * cell + cell / 2).min(self.h - 1) as i32;
                    shape.push(&mut d, x, y);
                }
                if !d.is_empty() {
                    let attrs = shape.attrs(*colour);
                    let _ = writeln!(out, "<path opacity=\"0.75\" {attrs} d=\"{d}\"/>");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_in_one_pixel_are_drawn_once() {
        let mut grid = Grid::new(10..110, 20..70);
        for _ in 0..1000 {
            grid.add(50, 30, Shape::Circle.class(0));
        }
        grid.add(50, 30, Shape::Cross.class(2));
        grid.add(-5, 500, Shape::Circle.class(0));
        let svg = grid.svg(&[RGBColor(0, 1, 2), RGBColor(3, 4, 5), RGBColor(6, 7, 8)]);
        assert_eq!(svg.matches("M50 30h0").count(), 1, "{svg}");
        assert!(svg.contains("M10 69h0"), "clamped into the area: {svg}");
        assert_eq!(svg.matches("<path").count(), 2, "{svg}");
        assert!(svg.find("#000102") < svg.find("#060708"), "fail on top");
    }
}
