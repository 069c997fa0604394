//! What the store's index says about each test over time: the runs of one test (a campaign's
//! run name, stamps aside) as a strip of verdicts, newest right, each square coloured by its
//! verdict and marked when it missed its campaign's expectation, with the latest result and
//! sparklines of duration and throughput. Expectations come from the campaign records
//! (`campaigns/*/campaign.json`) beside the runs.

use crate::html::escape;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::path::Path;

/// One run of a test, as the trend shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub stamp: String,
    pub date: String,
    pub verdict: String,
    /// The campaign's expectation and whether the run met it, when a campaign ran it.
    pub expect: Option<String>,
    pub met: Option<bool>,
    pub link: String,
    /// Wall time of the run when a campaign timed it, else its time limit.
    pub seconds: f64,
    pub ops_per_second: f64,
}

/// The runs of one test, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Trend {
    pub test: String,
    pub points: Vec<Point>,
}

impl Trend {
    pub fn latest(&self) -> &Point {
        self.points.last().expect("a trend has at least one run")
    }
}

/// What the campaign `records` say about each run folder (relative to the store): its
/// expectation, whether it met it, and how long it took.
pub fn expectations(records: &[(String, Value)]) -> HashMap<String, (String, bool, f64)> {
    let mut out = HashMap::new();
    for record in records {
        for run in record.1["runs"].as_array().into_iter().flatten() {
            if let (Some(dir), Some(expect), Some(met)) = (
                run["dir"].as_str(),
                run["expect"].as_str(),
                run["met"].as_bool(),
            ) {
                let seconds = run["seconds"].as_f64().unwrap_or(0.0);
                out.insert(dir.to_string(), (expect.to_string(), met, seconds));
            }
        }
    }
    out
}

/// Every campaign record of the store: its folder's name and its contents, newest first.
pub fn campaign_records(store: &Path) -> Vec<(String, Value)> {
    let mut records: Vec<(String, Value)> = std::fs::read_dir(store.join("campaigns"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let text = std::fs::read_to_string(entry.path().join("campaign.json")).ok()?;
            let value: Value = serde_json::from_str(&text).ok()?;
            Some((entry.file_name().to_string_lossy().into_owned(), value))
        })
        .collect();
    records.sort_by(|a, b| {
        let started = |r: &(String, Value)| r.1["started"].as_str().unwrap_or("").to_string();
        started(b).cmp(&started(a)).then(a.0.cmp(&b.0))
    });
    records
}

/// Groups points by test, each test's runs oldest first, tests by name.
pub fn group(points: Vec<(String, Point)>) -> Vec<Trend> {
    let mut by_test: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for (test, point) in points {
        by_test.entry(test).or_default().push(point);
    }
    by_test
        .into_iter()
        .map(|(test, mut points)| {
            points.sort_by(|a, b| a.stamp.cmp(&b.stamp));
            Trend { test, points }
        })
        .collect()
}

/// The strip: a square per run, newest right; a missed expectation is outlined and crossed.
pub fn strip_svg(trend: &Trend) -> String {
    const SIDE: usize = 12;
    const GAP: usize = 3;
    let width = trend.points.len() * (SIDE + GAP);
    let mut svg = format!(
        "<svg class=\"strip\" width=\"{width}\" height=\"{SIDE}\" viewBox=\"0 0 {width} {SIDE}\" \
         role=\"img\" aria-label=\"verdicts of {}, oldest first\">",
        escape(&trend.test)
    );
    for (i, p) in trend.points.iter().enumerate() {
        let x = i * (SIDE + GAP);
        let missed = p.met == Some(false);
        let title = format!(
            "{} · {}{}",
            p.date,
            p.verdict,
            match (&p.expect, p.met) {
                (Some(e), Some(true)) => format!(" (expected {e}: met)"),
                (Some(e), Some(false)) => format!(" (expected {e}: MISSED)"),
                _ => String::new(),
            }
        );
        let _ = write!(
            svg,
            "<a href=\"{}\"><rect class=\"sq {}{}\" x=\"{x}\" y=\"0\" width=\"{SIDE}\" height=\"{SIDE}\" rx=\"2\"><title>{}</title></rect>",
            escape(&p.link),
            escape(&p.verdict),
            if missed { " missed" } else { "" },
            escape(&title)
        );
        if missed {
            let (a, b) = (x + 3, x + SIDE - 3);
            let _ = write!(
                svg,
                "<path class=\"cross\" d=\"M{a} 3L{b} {}M{b} 3L{a} {}\"/>",
                SIDE - 3,
                SIDE - 3
            );
        }
        svg.push_str("</a>");
    }
    svg.push_str("</svg>");
    svg
}

/// A small line of `values` (oldest left), its last value labelled.
pub fn sparkline(values: &[f64], unit: &str) -> String {
    const W: f64 = 90.0;
    const H: f64 = 18.0;
    let max = values.iter().cloned().fold(0.0, f64::max);
    if values.is_empty() || max <= 0.0 {
        return String::new();
    }
    let step = if values.len() > 1 {
        W / (values.len() - 1) as f64
    } else {
        0.0
    };
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step,
                H - 1.0 - v / max * (H - 2.0)
            )
        })
        .collect();
    let last = values[values.len() - 1];
    format!(
        "<svg class=\"spark\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" \
         aria-label=\"{last:.0} {unit}\"><polyline points=\"{}\"/></svg> <span class=\"muted\">{last:.0} {unit}</span>",
        points.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(stamp: &str, verdict: &str, met: Option<bool>) -> Point {
        Point {
            stamp: stamp.into(),
            date: stamp.into(),
            verdict: verdict.into(),
            expect: met.map(|_| "valid".to_string()),
            met,
            link: format!("t/{stamp}/report.html"),
            seconds: 10.0,
            ops_per_second: 100.0,
        }
    }

    #[test]
    fn runs_group_by_test_oldest_first() {
        let trends = group(vec![
            ("b".into(), point("2", "valid", None)),
            ("a".into(), point("3", "invalid", Some(false))),
            ("a".into(), point("1", "valid", Some(true))),
        ]);
        assert_eq!(trends.len(), 2);
        assert_eq!(trends[0].test, "a");
        let stamps: Vec<&str> = trends[0].points.iter().map(|p| p.stamp.as_str()).collect();
        assert_eq!(stamps, ["1", "3"]);
        assert_eq!(trends[0].latest().verdict, "invalid");
    }

    #[test]
    fn the_strip_has_a_square_per_run_and_marks_misses() {
        let trend = Trend {
            test: "nightly-<x>".into(),
            points: vec![
                point("1", "valid", Some(true)),
                point("2", "invalid", Some(false)),
            ],
        };
        let svg = strip_svg(&trend);
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("class=\"sq invalid missed\""), "{svg}");
        assert_eq!(svg.matches("class=\"cross\"").count(), 1);
        assert!(svg.contains("expected valid: MISSED"));
        assert!(svg.contains("nightly-&lt;x&gt;"), "escaped: {svg}");
        let first = svg.find("t/1/report.html").unwrap();
        assert!(first < svg.find("t/2/report.html").unwrap(), "newest right");
    }

    #[test]
    fn sparklines_scale_to_the_largest_value() {
        let svg = sparkline(&[50.0, 100.0], "ops/s");
        assert!(svg.contains("0.0,9.0 90.0,1.0"), "{svg}");
        assert!(svg.contains("100 ops/s"));
        assert_eq!(sparkline(&[], "s"), "");
    }
}
