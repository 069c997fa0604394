//! Service levels under faults: latency, availability, error rate and recovery time, measured per
//! time window and per fault phase, and checked against optional thresholds ([`SloSpec`]).
//!
//! Definitions (times are the history's `time`, ns since the test started):
//!
//! - **Operations.** Client invocations paired with their completions by process (leniently, so a
//!   malformed history still gets numbers). `ok` ops count as available; `fail` and `info` ops,
//!   and ops never completed, do not (an `info` is unknown, so it is not a success). Latency is
//!   completion minus invocation, for ok ops only. Ops without an invocation time are ignored.
//! - **Windows.** Consecutive `window_ms` windows (default 1000 ms) from 0 to the last event of
//!   any kind; the last may be partial. (Widened if there would be more than 100 000.) An op belongs to the window it was invoked in. Per
//!   window: ops, ok, fail, info; p50, p99 and max latency of its ok ops (nearest rank; `null`
//!   without ok ops); availability = ok / ops and error rate = (fail + info) / ops (`null`
//!   without ops); ok_per_s = ok / window length. The same per operation kind, for the kinds
//!   named in `[slo.ops]`.
//! - **Fault windows.** From the nemesis entries: a fault opens at the first start event of its
//!   kind (partition, kill, pause, clock, latency, loss) and closes at the last event of the
//!   stop pair that follows, or at `heal` (which ends every open fault); a start while that kind
//!   is open is ignored. A fault with no stop is never healed: it lasts to the end of the run.
//! - **Phases.** `steady`: from 0 to the first fault start (the whole run if there is no fault);
//!   `during <kind> #n`: each fault window, the n-th of its kind (overlapping faults give
//!   overlapping phases); `after heal`: from the end of the last fault to the end of the run, if
//!   every fault was healed. Time between two fault windows belongs to no phase. Per phase: the
//!   window statistics above, over the ops invoked in it.
//! - **Baseline.** The median ok_per_s of the steady windows (those that end by the first fault
//!   start). Without any, the median over the windows that start at or after the last heal
//!   (`from: "after heal"`). None if neither exists or it is 0.
//! - **Recoveries.** Per fault window: `healed_at_s`; `first_ok_s`, seconds from the heal to the
//!   completion of the first ok op invoked at or after it; `steady_s`, seconds from the heal to
//!   the end of the first window (among those ending after the heal) whose ok_per_s reaches 80%
//!   of the baseline. A never-healed fault has `healed_at_s: null` and nothing else.
//! - **Breaches.** `p99_ms`: a window whose p99 exceeds it (all ops, or one kind for
//!   `[slo.ops.<kind>]`); `max_error_rate`: a window whose error rate exceeds it;
//!   `availability`: a phase with ops whose availability is below it; `max_recovery_s`: a healed
//!   fault whose `steady_s` exceeds it (`first_ok_s` when there is no baseline), or that never
//!   got there, or a fault never healed. Consecutive breaching windows of one threshold merge
//!   into one breach, observing the worst value.
//!
//! The verdict is `not-checked` when no threshold is set (the statistics are still computed).

mod breaches;
mod faults;
mod stats;

pub use faults::fault_event;
pub use stats::Stats;

use crate::History;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Window length when the spec names none.
pub const DEFAULT_WINDOW_MS: u64 = 1000;
/// Shorter windows hold too few ops for a p99 to mean anything.
pub const MIN_WINDOW_MS: u64 = 10;
/// Windows are widened so that a long run (or a bogus time) cannot make more than this many.
pub const MAX_WINDOWS: u64 = 100_000;
/// Throughput is back once a window reaches this fraction of the baseline.
pub const RECOVERED_FRACTION: f64 = 0.8;

/// Thresholds; every one optional. From TOML `[slo] p99_ms = 250, availability = 0.99,
/// max_recovery_s = 10, max_error_rate = 0.01` and per operation kind `[slo.ops.read]
/// p99_ms = 100`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SloSpec {
    pub p99_ms: Option<f64>,
    /// A fraction: 0.99, not 99.
    pub availability: Option<f64>,
    pub max_recovery_s: Option<f64>,
    pub max_error_rate: Option<f64>,
    /// Window length, default [`DEFAULT_WINDOW_MS`].
    pub window_ms: Option<u64>,
    /// Thresholds for one operation kind (`f`), checked on that kind's ops alone.
    pub ops: BTreeMap<String, Thresholds>,
}

/// The thresholds that make sense for one operation kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    pub p99_ms: Option<f64>,
    pub availability: Option<f64>,
    pub max_error_rate: Option<f64>,
}

impl Thresholds {
    fn is_empty(&self) -> bool {
        self.p99_ms.is_none() && self.availability.is_none() && self.max_error_rate.is_none()
    }

    fn validate(&self, prefix: &str) -> Result<(), String> {
        positive(&format!("{prefix}.p99_ms"), self.p99_ms, "milliseconds")?;
        fraction(&format!("{prefix}.availability"), self.availability)?;
        fraction(&format!("{prefix}.max_error_rate"), self.max_error_rate)
    }
}

impl SloSpec {
    /// True when no threshold is set (a window length alone checks nothing).
    pub fn is_empty(&self) -> bool {
        self.p99_ms.is_none()
            && self.availability.is_none()
            && self.max_recovery_s.is_none()
            && self.max_error_rate.is_none()
            && self.ops.values().all(Thresholds::is_empty)
    }

    /// Rejects values that would make every run pass or fail by mistake; names the key.
    pub fn validate(&self) -> Result<(), String> {
        positive("slo.p99_ms", self.p99_ms, "milliseconds")?;
        fraction("slo.availability", self.availability)?;
        positive("slo.max_recovery_s", self.max_recovery_s, "seconds")?;
        fraction("slo.max_error_rate", self.max_error_rate)?;
        if let Some(w) = self.window_ms.filter(|w| *w < MIN_WINDOW_MS) {
            return Err(format!(
                "slo.window_ms must be at least {MIN_WINDOW_MS}, got {w}"
            ));
        }
        for (kind, thresholds) in &self.ops {
            if kind.trim().is_empty() {
                return Err("slo.ops keys must be operation names, got an empty one".into());
            }
            thresholds.validate(&format!("slo.ops.{kind}"))?;
        }
        Ok(())
    }
}

fn positive(key: &str, value: Option<f64>, unit: &str) -> Result<(), String> {
    match value {
        Some(v) if !(v.is_finite() && v > 0.0) => Err(format!(
            "{key} must be a positive number of {unit}, got {v}"
        )),
        _ => Ok(()),
    }
}

fn fraction(key: &str, value: Option<f64>) -> Result<(), String> {
    match value {
        Some(v) if !(0.0..=1.0).contains(&v) => Err(format!(
            "{key} must be between 0 and 1 (a fraction, not a percentage), got {v}"
        )),
        _ => Ok(()),
    }
}

/// Pass, fail, or nothing to check against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SloVerdict {
    Pass,
    Fail,
    /// No threshold was set.
    NotChecked,
}

/// One time window's statistics.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WindowStats {
    pub start_s: f64,
    pub end_s: f64,
    #[serde(flatten)]
    pub stats: Stats,
    pub ok_per_s: f64,
    /// Per operation kind, for the kinds named in the spec's `ops`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_op: BTreeMap<String, Stats>,
}

/// One phase's statistics: steady, during a fault, or after the last heal.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhaseStats {
    /// `steady`, `during partition #1`, `after heal`.
    pub name: String,
    pub start_s: f64,
    pub end_s: f64,
    #[serde(flatten)]
    pub stats: Stats,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_op: BTreeMap<String, Stats>,
}

/// The throughput recoveries are measured against.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Baseline {
    /// `steady` or, when no window ended before the first fault, `after heal`.
    pub from: String,
    /// How many windows the median was taken over.
    pub windows: usize,
    pub ok_per_s: f64,
}

/// How long the service took to come back after one fault window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recovery {
    /// `partition #1`.
    pub fault: String,
    pub kind: String,
    pub started_at_s: f64,
    /// `None`: the fault was never healed.
    pub healed_at_s: Option<f64>,
    /// Heal to the completion of the first ok op invoked after it; `None` if none.
    pub first_ok_s: Option<f64>,
    /// Heal to the end of the first window back at 80% of the baseline; `None` if none was, or
    /// there is no baseline.
    pub steady_s: Option<f64>,
}

/// One threshold missed, over a time range.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Breach {
    /// The spec key: `p99_ms`, `availability`, `max_error_rate` or `max_recovery_s`.
    pub what: String,
    pub threshold: f64,
    /// The worst value seen; `None` when the fault never healed or never recovered.
    pub observed: Option<f64>,
    pub start_s: f64,
    pub end_s: f64,
    /// The phase(s) the range falls in, comma-separated; `None` between faults.
    pub phase: Option<String>,
    /// The operation kind, for a `[slo.ops.<kind>]` threshold.
    pub op: Option<String>,
    pub message: String,
}

/// The SLO checker's verdict and evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SloResult {
    pub verdict: SloVerdict,
    /// One sentence: the breaches, `every SLO met`, or why nothing was checked.
    pub reason: String,
    pub window_ms: u64,
    pub windows: Vec<WindowStats>,
    pub phases: Vec<PhaseStats>,
    pub baseline: Option<Baseline>,
    pub recoveries: Vec<Recovery>,
    pub breaches: Vec<Breach>,
}

/// Measures the history's service levels and checks them against `spec`. Never fails: a spec
/// that `validate` would reject is used as far as it makes sense.
pub fn check_slo(history: &History, spec: &SloSpec) -> SloResult {
    let end_ns = history.events.iter().filter_map(|e| e.time).max();
    let end_ms = end_ns.unwrap_or(0) / 1_000_000;
    let window_ms = (spec.window_ms.unwrap_or(DEFAULT_WINDOW_MS))
        .max(MIN_WINDOW_MS)
        .max(end_ms / MAX_WINDOWS + 1);
    let width_ns = window_ms.saturating_mul(1_000_000);
    let kinds: Vec<&str> = spec.ops.keys().map(String::as_str).collect();
    let ops = stats::client_ops(history);
    let faults = faults::fault_windows(history);

    let windows = match end_ns {
        Some(end) => stats::windows(&ops, end, width_ns, &kinds),
        None => Vec::new(),
    };
    let spans = match end_ns {
        Some(end) => stats::phase_spans(&faults, end),
        None => Vec::new(),
    };
    let phases = stats::phases(&ops, &spans, end_ns.unwrap_or(0), &kinds);
    let baseline = breaches::baseline(&windows, &faults, width_ns);
    let recoveries = breaches::recoveries(&ops, &faults, &windows, baseline.as_ref(), width_ns);

    let checked = !spec.is_empty();
    let breaches = if checked {
        let found = breaches::Finder {
            spec,
            windows: &windows,
            phases: &phases,
            spans: &spans,
            width_ns,
            has_ops: !ops.is_empty(),
            baseline: baseline.is_some(),
        };
        found.all(&recoveries)
    } else {
        Vec::new()
    };

    let (verdict, reason) = if !checked {
        (SloVerdict::NotChecked, "no SLO thresholds set".to_string())
    } else if !breaches.is_empty() {
        (SloVerdict::Fail, breaches::summarize(&breaches))
    } else if ops.is_empty() {
        (SloVerdict::Pass, "no operations".to_string())
    } else {
        (SloVerdict::Pass, "every SLO met".to_string())
    };
    SloResult {
        verdict,
        reason,
        window_ms,
        windows,
        phases,
        baseline,
        recoveries,
        breaches,
    }
}

#[cfg(test)]
mod tests;
