//! Drawing shared by the timeline and the counterexample view: lanes, ticks, and bars whose
//! labels are cut to fit (SVG text does not clip) with the whole story in a hover title.

use crate::html::escape;
use std::fmt::Write;

/// Width of a character of the 11px sans-serif font, for fitting labels into bars.
pub(crate) const CHAR_W: f64 = 6.2;

/// Opens an SVG `width` × `height` inside a div that scrolls sideways; classes `{prefix}-scroll`
/// and `{prefix}-svg`.
pub(crate) fn open(out: &mut String, prefix: &str, width: f64, height: f64) {
    let _ = write!(
        out,
        "<div class=\"{prefix}-scroll\"><svg class=\"{prefix}-svg\" \
         xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\">"
    );
}

pub(crate) fn close(out: &mut String) {
    out.push_str("</svg></div>");
}

/// One lane per name from `top`, every other one shaded (`{prefix}-lane`), names in the gutter
/// (`{prefix}-proc`, right-aligned at `name_x`). Names are escaped here.
pub(crate) fn lanes(
    out: &mut String,
    prefix: &str,
    names: &[String],
    (top, lane_h): (f64, f64),
    width: f64,
    name_x: f64,
) {
    for (i, name) in names.iter().enumerate() {
        let y = top + i as f64 * lane_h;
        if i % 2 == 0 {
            let _ = write!(
                out,
                "<rect class=\"{prefix}-lane\" x=\"0\" y=\"{y:.1}\" width=\"{width:.0}\" \
                 height=\"{lane_h}\"/>"
            );
        }
        let _ = write!(
            out,
            "<text class=\"{prefix}-proc\" x=\"{name_x:.0}\" y=\"{:.1}\">{}</text>",
            y + lane_h / 2.0 + 4.0,
            escape(name)
        );
    }
}

/// A grid line from `line_top` to `bottom` (`{prefix}-grid`), `label` above it at `label_y`
/// (`{prefix}-tick`, centred by the stylesheet).
pub(crate) fn tick(
    out: &mut String,
    prefix: &str,
    x: f64,
    (label_y, line_top, bottom): (f64, f64, f64),
    label: &str,
) {
    let _ = write!(
        out,
        "<line class=\"{prefix}-grid\" x1=\"{x:.1}\" y1=\"{line_top:.1}\" x2=\"{x:.1}\" \
         y2=\"{bottom:.1}\"/><text class=\"{prefix}-tick\" x=\"{x:.1}\" y=\"{label_y:.1}\">{}</text>",
        escape(label)
    );
}

/// A bar: a group of class `class` with a hover `title`, a rect, and as much of `label` as
/// fits, `indent` from its left. Title and label are escaped here.
pub(crate) fn bar(
    out: &mut String,
    class: &str,
    title: &str,
    (x, y, w, h): (f64, f64, f64, f64),
    label: &str,
    indent: f64,
) {
    let _ = write!(
        out,
        "<g class=\"{class}\"><title>{}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" \
         height=\"{h:.0}\"/>",
        escape(title)
    );
    if let Some(label) = fit_label(label, w - indent + 2.0) {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + indent,
            y + h / 2.0 + 4.0,
            escape(&label)
        );
    }
    out.push_str("</g>");
}

/// `text` if it fits a bar `width` pixels wide, else its start with "…"; `None` if not even that.
pub(crate) fn fit_label(text: &str, width: f64) -> Option<String> {
    let room = ((width - 4.0) / CHAR_W).floor();
    if room < 2.0 {
        return None;
    }
    let room = room as usize;
    if text.chars().count() <= room {
        return Some(text.to_string());
    }
    let mut cut: String = text.chars().take(room - 1).collect();
    cut.push('…');
    Some(cut)
}

/// Nanoseconds as seconds with `decimals` digits.
pub(crate) fn seconds(ns: u64, decimals: usize) -> String {
    format!("{:.*}", decimals, ns as f64 / 1e9)
}

/// A tick spacing of 1, 2 or 5 × 10^k nanoseconds giving about `count` ticks over `span`.
pub(crate) fn nice_step(span: f64, count: f64) -> u64 {
    let raw = (span / count).max(1.0);
    let magnitude = 10f64.powi(raw.log10().floor() as i32);
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude);
    step.round().max(1.0) as u64
}

/// Digits after the point that tell ticks `step` nanoseconds apart, in seconds.
pub(crate) fn decimals_for(step: u64) -> usize {
    let mut decimals = 0;
    let mut unit = 1_000_000_000u64;
    while (step / unit) * unit != step && decimals < 9 {
        unit /= 10;
        decimals += 1;
    }
    decimals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_labels_fit() {
        assert_eq!(nice_step(10e9, 10.0), 1_000_000_000);
        assert_eq!(nice_step(3e9, 10.0), 500_000_000);
        assert_eq!(decimals_for(500_000_000), 1);
        assert_eq!(decimals_for(2_000_000_000), 0);
        assert_eq!(decimals_for(20_000_000), 2);
        assert_eq!(fit_label("write 1 → 1", 20.0), Some("w…".into()));
        assert_eq!(fit_label("write", 5.0), None);
        let mut out = String::new();
        bar(&mut out, "b", "<t>", (0.0, 0.0, 200.0, 10.0), "<l>", 2.0);
        assert!(out.contains("<title>&lt;t&gt;</title>") && out.contains(">&lt;l&gt;</text>"));
    }
}
