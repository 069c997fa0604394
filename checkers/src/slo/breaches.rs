//! Baseline, recoveries, and the thresholds checked against the statistics.

use super::faults::FaultWindow;
use super::stats::{phase_names, secs, Op, Span, Stats};
use super::{Baseline, Breach, PhaseStats, Recovery, SloSpec, WindowStats, RECOVERED_FRACTION};
use crate::Outcome;

/// The median ok_per_s of the steady windows, else of the windows after the last heal.
pub(super) fn baseline(
    windows: &[WindowStats],
    faults: &[FaultWindow],
    width_ns: u64,
) -> Option<Baseline> {
    let first_fault = faults.iter().map(|f| f.start_ns).min().unwrap_or(u64::MAX);
    let end = |i: usize| (i as u64 + 1).saturating_mul(width_ns);
    let steady: Vec<f64> = (windows.iter().enumerate())
        .filter(|(i, _)| end(*i) <= first_fault)
        .map(|(_, w)| w.ok_per_s)
        .collect();
    let (from, levels) = if steady.is_empty() {
        let ends: Option<Vec<u64>> = faults.iter().map(|f| f.end_ns).collect();
        let last_heal = ends.and_then(|e| e.into_iter().max())?;
        let after = (windows.iter().enumerate())
            .filter(|(i, _)| (*i as u64).saturating_mul(width_ns) >= last_heal)
            .map(|(_, w)| w.ok_per_s);
        ("after heal", after.collect())
    } else {
        ("steady", steady)
    };
    let ok_per_s = median(levels.clone())?;
    (ok_per_s > 0.0).then(|| Baseline {
        from: from.to_string(),
        windows: levels.len(),
        ok_per_s,
    })
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(xs[n / 2]),
        _ => Some((xs[n / 2 - 1] + xs[n / 2]) / 2.0),
    }
}

/// One recovery per fault window, in order of start.
pub(super) fn recoveries(
    ops: &[Op],
    faults: &[FaultWindow],
    windows: &[WindowStats],
    baseline: Option<&Baseline>,
    width_ns: u64,
) -> Vec<Recovery> {
    (faults.iter())
        .map(|fault| {
            let mut recovery = Recovery {
                fault: fault.label(),
                kind: fault.kind.to_string(),
                started_at_s: secs(fault.start_ns),
                healed_at_s: None,
                first_ok_s: None,
                steady_s: None,
            };
            let Some(heal) = fault.end_ns else {
                return recovery;
            };
            recovery.healed_at_s = Some(secs(heal));
            let first_ok = (ops.iter())
                .filter(|op| op.outcome == Outcome::Ok && op.invoke_ns >= heal)
                .filter_map(|op| op.complete_ns)
                .min();
            recovery.first_ok_s = first_ok.map(|t| secs(t.saturating_sub(heal)));
            if let Some(base) = baseline {
                let target = RECOVERED_FRACTION * base.ok_per_s;
                let back = (0..windows.len())
                    .map(|i| (i as u64 + 1).saturating_mul(width_ns))
                    .zip(windows)
                    .find(|(end, w)| *end > heal && w.ok_per_s >= target);
                recovery.steady_s = back.map(|(end, _)| secs(end.saturating_sub(heal)));
            }
            recovery
        })
        .collect()
}

/// Finds every breach of the spec's thresholds.
pub(super) struct Finder<'a> {
    pub spec: &'a SloSpec,
    pub windows: &'a [WindowStats],
    pub phases: &'a [PhaseStats],
    pub spans: &'a [Span],
    pub width_ns: u64,
    /// Without ops, a healed fault's recovery cannot be judged.
    pub has_ops: bool,
    pub baseline: bool,
}

impl Finder<'_> {
    /// All breaches, ordered by start time.
    pub fn all(&self, recoveries: &[Recovery]) -> Vec<Breach> {
        let spec = self.spec;
        let mut found = Vec::new();
        let per_op = (spec.ops.iter()).map(|(k, t)| (Some(k.as_str()), t.p99_ms, t.max_error_rate));
        let checks = std::iter::once((None, spec.p99_ms, spec.max_error_rate)).chain(per_op);
        for (op, p99, error_rate) in checks {
            if let Some(t) = p99 {
                found.extend(self.in_windows("p99_ms", t, op, |s| s.p99_ms));
            }
            if let Some(t) = error_rate {
                found.extend(self.in_windows("max_error_rate", t, op, |s| s.error_rate));
            }
        }
        let per_op = (spec.ops.iter()).map(|(k, t)| (Some(k.as_str()), t.availability));
        for (op, availability) in std::iter::once((None, spec.availability)).chain(per_op) {
            if let Some(t) = availability {
                found.extend(self.in_phases(t, op));
            }
        }
        if let Some(t) = spec.max_recovery_s {
            found.extend(recoveries.iter().filter_map(|r| self.recovery(t, r)));
        }
        found.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
        found
    }

    /// Runs of consecutive windows whose value exceeds the threshold, one breach each.
    fn in_windows(
        &self,
        what: &str,
        threshold: f64,
        op: Option<&str>,
        value: impl Fn(&Stats) -> Option<f64>,
    ) -> Vec<Breach> {
        let mut out = Vec::new();
        // (first window, last window, worst value) of the current run.
        let mut run: Option<(usize, usize, f64)> = None;
        for (i, w) in self.windows.iter().enumerate() {
            let stats = match op {
                Some(kind) => w.by_op.get(kind),
                None => Some(&w.stats),
            };
            match (stats.and_then(&value).filter(|v| *v > threshold), &mut run) {
                (Some(v), Some((_, last, worst))) => (*last, *worst) = (i, worst.max(v)),
                (Some(v), None) => run = Some((i, i, v)),
                (None, _) => out.extend(
                    run.take()
                        .map(|r| self.window_breach(what, threshold, op, r)),
                ),
            }
        }
        out.extend(run.map(|r| self.window_breach(what, threshold, op, r)));
        out
    }

    fn window_breach(
        &self,
        what: &str,
        threshold: f64,
        op: Option<&str>,
        (first, last, worst): (usize, usize, f64),
    ) -> Breach {
        let (start_ns, end_ns) = (
            first as u64 * self.width_ns,
            (last as u64 + 1) * self.width_ns,
        );
        let (start_s, end_s) = (secs(start_ns), secs(end_ns));
        let phase = phase_names(self.spans, start_ns, end_ns);
        let subject = op.map_or(String::new(), |k| format!("{k} "));
        let measure = if what == "p99_ms" {
            format!(
                "{subject}p99 latency {} ms > {} ms",
                ms(worst),
                ms(threshold)
            )
        } else {
            format!("{subject}error rate {} > {}", pct(worst), pct(threshold))
        };
        let during = phase.as_ref().map_or(String::new(), |p| format!(" ({p})"));
        Breach {
            what: what.to_string(),
            threshold,
            observed: Some(worst),
            start_s,
            end_s,
            phase,
            op: op.map(str::to_string),
            message: format!("{measure} in {}–{} s{during}", s(start_s), s(end_s)),
        }
    }

    /// Phases with ops whose availability is below the threshold.
    fn in_phases(&self, threshold: f64, op: Option<&str>) -> Vec<Breach> {
        let subject = op.map_or(String::new(), |k| format!("{k} "));
        (self.phases.iter())
            .filter_map(|phase| {
                let stats = match op {
                    Some(kind) => phase.by_op.get(kind)?,
                    None => &phase.stats,
                };
                let observed = stats.availability.filter(|a| *a < threshold)?;
                let when = match phase.name.as_str() {
                    "steady" => "while steady",
                    name => name,
                };
                let message = format!(
                    "{subject}availability {} < {} {when} ({}–{} s)",
                    pct(observed),
                    pct(threshold),
                    s(phase.start_s),
                    s(phase.end_s)
                );
                Some(Breach {
                    what: "availability".into(),
                    threshold,
                    observed: Some(observed),
                    start_s: phase.start_s,
                    end_s: phase.end_s,
                    phase: Some(phase.name.clone()),
                    op: op.map(str::to_string),
                    message,
                })
            })
            .collect()
    }

    /// A fault never healed, or healed but slower to recover than the threshold.
    fn recovery(&self, threshold: f64, r: &Recovery) -> Option<Breach> {
        let run_end = self.windows.last().map_or(r.started_at_s, |w| w.end_s);
        let breach = |start_s: f64, end_s: f64, observed: Option<f64>, message: String| Breach {
            what: "max_recovery_s".into(),
            threshold,
            observed,
            start_s,
            end_s,
            phase: Some(format!("during {}", r.fault)),
            op: None,
            message,
        };
        let Some(healed) = r.healed_at_s else {
            let message = format!(
                "{} never healed (started at {} s)",
                r.fault,
                s(r.started_at_s)
            );
            return Some(breach(r.started_at_s, run_end, None, message));
        };
        if !self.has_ops {
            return None;
        }
        let (took, to) = if self.baseline {
            (r.steady_s, "to get back to 80% of baseline throughput")
        } else {
            (r.first_ok_s, "to the first ok op (no baseline throughput)")
        };
        let Some(took) = took else {
            let message = if self.baseline {
                format!(
                    "{} never recovered 80% of baseline throughput after its heal at {} s",
                    r.fault,
                    s(healed)
                )
            } else {
                format!("{} saw no ok op after its heal at {} s", r.fault, s(healed))
            };
            return Some(breach(healed, run_end.max(healed), None, message));
        };
        (took > threshold).then(|| {
            let message = format!(
                "recovery after {} took {} s > {} s {to} (healed at {} s)",
                r.fault,
                s(took),
                s(threshold),
                s(healed)
            );
            breach(healed, healed + took, Some(took), message)
        })
    }
}

/// `2 SLO breaches: ...; ...`, listing the first three.
pub(super) fn summarize(breaches: &[Breach]) -> String {
    let n = breaches.len();
    let mut listed: Vec<&str> = breaches
        .iter()
        .take(3)
        .map(|b| b.message.as_str())
        .collect();
    let more = format!("and {} more", n.saturating_sub(3));
    if n > 3 {
        listed.push(&more);
    }
    let plural = if n == 1 { "breach" } else { "breaches" };
    format!("{n} SLO {plural}: {}", listed.join("; "))
}

/// A number with at most `decimals` decimals, trailing zeros dropped.
fn trimmed(x: f64, decimals: usize) -> String {
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

fn ms(x: f64) -> String {
    trimmed(x, if x.abs() >= 1.0 { 1 } else { 3 })
}

fn pct(x: f64) -> String {
    format!("{}%", trimmed(x * 100.0, 3))
}

/// Seconds with at least one decimal: `3.0`, `3.25`.
fn s(x: f64) -> String {
    let text = trimmed(x, 3);
    if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    }
}
