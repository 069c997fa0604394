//! What `fissure run` shows: a progress bar while it runs (elapsed time, ops/s, ok/fail/info,
//! faults in force), and a summary a person reads in seconds at the end.

use crate::analysis::Results;
use crate::runner::driver::Counters;
use crate::runner::nemesis_task::ActiveFaults;
use crate::runner::RunReport;
use crate::spec::{format_duration, RunSpec};
use crate::store::RunDir;
use checkers::Verdict;
use indicatif::{ProgressBar, ProgressStyle};
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The progress bar and the numbers behind it. Without a terminal the bar is hidden and a line
/// is logged every few seconds instead.
pub struct Progress {
    bar: ProgressBar,
    counters: Arc<Counters>,
    active: ActiveFaults,
    started: Arc<Mutex<Option<Instant>>>,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start(spec: &RunSpec) -> Progress {
        let total = spec.time_limit + spec.recovery;
        let bar = ProgressBar::new(total.as_millis() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {prefix} [{elapsed_precise}] {wide_bar:.cyan/blue} {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{} {}", spec.def.name, spec.workload));
        let counters: Arc<Counters> = Arc::default();
        let active: ActiveFaults = Arc::default();
        let started: Arc<Mutex<Option<Instant>>> = Arc::default();
        let ticker = tokio::spawn(tick(
            bar.clone(),
            counters.clone(),
            active.clone(),
            started.clone(),
        ));
        Progress {
            bar,
            counters,
            active,
            started,
            ticker,
        }
    }

    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    pub fn active_faults(&self) -> ActiveFaults {
        self.active.clone()
    }

    /// The test's clock started: the bar now counts towards the end of the run.
    pub fn attach(&self, started: Instant) {
        *self.started.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
    }

    pub fn set_stage(&self, stage: &str) {
        self.bar.set_message(stage.to_string());
        tracing::info!("{stage}");
    }

    pub fn finish(&self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}

async fn tick(
    bar: ProgressBar,
    counters: Arc<Counters>,
    active: ActiveFaults,
    started: Arc<Mutex<Option<Instant>>>,
) {
    let mut last = (Instant::now(), 0u64);
    let mut last_log = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Some(started) = *started.lock().unwrap_or_else(|e| e.into_inner()) else {
            bar.tick();
            continue;
        };
        let done = counters.completed();
        let rate = (done - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-3);
        last = (Instant::now(), done);
        let faults = active.lock().unwrap_or_else(|e| e.into_inner()).join(", ");
        let message = format!(
            "{rate:.0} ops/s | ok {} fail {} info {} | faults: {}",
            counters.ok.load(Ordering::Relaxed),
            counters.fail.load(Ordering::Relaxed),
            counters.info.load(Ordering::Relaxed),
            if faults.is_empty() { "none" } else { &faults }
        );
        bar.set_position(started.elapsed().as_millis() as u64);
        bar.set_message(message.clone());
        if bar.is_hidden() && last_log.elapsed() >= Duration::from_secs(5) {
            tracing::info!("{message}");
            last_log = Instant::now();
        }
    }
}

/// The closing summary: the verdict and why, what ran, and where the results are.
pub fn summary(
    spec: &RunSpec,
    run: &RunDir,
    results: &Results,
    verdict: Verdict,
    report: &RunReport,
) -> String {
    let mut out = String::new();
    let word = match verdict {
        Verdict::Valid => "VALID",
        Verdict::Invalid => "INVALID",
        Verdict::Unknown => "UNKNOWN",
    };
    let bug = spec
        .bug
        .as_deref()
        .map(|b| format!(", bug {b}"))
        .unwrap_or_default();
    let nemesis: Vec<String> = spec.nemesis.iter().map(ToString::to_string).collect();
    let _ = writeln!(
        out,
        "{} {} on {} nodes{bug}, nemesis {}, {}, seed {}: {word}",
        spec.def.name,
        spec.workload,
        spec.nodes,
        if nemesis.is_empty() {
            "none".to_string()
        } else {
            nemesis.join(",")
        },
        format_duration(spec.time_limit),
        spec.seed
    );
    if report.interrupted {
        let _ = writeln!(out, "  interrupted: the history stops early");
    }
    if spec.backend == crate::spec::BackendKind::None {
        let _ = writeln!(
            out,
            "  faults were off: clients only, against a system already running at {}",
            spec.endpoints.join(", ")
        );
    }
    let _ = writeln!(out, "  {}", results.reason);
    if let Some(slo) = &results.slo {
        let _ = writeln!(
            out,
            "  SLO: {} ({})",
            match slo.verdict {
                checkers::SloVerdict::Pass => "met",
                checkers::SloVerdict::Fail => "BREACHED",
                checkers::SloVerdict::NotChecked => "not checked",
            },
            slo.reason
        );
    }
    let s = &results.stats;
    let _ = writeln!(
        out,
        "  {} operations: {} ok, {} fail, {} info{}; {} faults applied{}",
        s.ops,
        s.ok,
        s.fail,
        s.info,
        if s.open > 0 {
            format!(", {} never completed", s.open)
        } else {
            String::new()
        },
        report.nemesis.applied,
        if report.nemesis.errors.is_empty() {
            String::new()
        } else {
            format!(" ({} failed)", report.nemesis.errors.len())
        }
    );
    if let Some(error) = &report.nemesis.heal_error {
        let _ = writeln!(out, "  WARNING: heal failed: {error}");
    }
    let _ = writeln!(out, "  results: {}", run.path.display());
    if run.path.join("report.html").is_file() {
        let _ = writeln!(out, "  report:  {}", run.path.join("report.html").display());
    }
    let _ = writeln!(out, "  rerun:   {}", spec.rerun_command(&run.path));
    out
}
