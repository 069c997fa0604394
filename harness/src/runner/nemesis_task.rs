//! The nemesis stream beside the clients. As in Jepsen's combined nemesis, each fault kind is a
//! package with its own seeded schedule (start, wait an interval, stop, wait, ...), and the
//! packages run side by side, each shifted by its own seeded offset, so faults of different
//! kinds overlap (a crash while the network is slow), which is where many bugs hide. Every
//! fault's start and end goes into the history; at the end of the main phase, on error and when
//! stopped, everything is healed.

use super::recorder::{Entry, Recorder};
use checkers::{EventType, Process};
use nuclei::nemesis::{Applied, FaultOp, Nemesis, NemesisConfig, Planned, Schedule};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Faults in force right now, for the progress bar.
pub type ActiveFaults = Arc<Mutex<Vec<String>>>;

/// What the nemesis did, for the run's summary.
#[derive(Debug, Default)]
pub struct NemesisReport {
    pub applied: usize,
    pub errors: Vec<String>,
    /// `None` if the final heal worked, else why not.
    pub heal_error: Option<String>,
}

/// One fault kind's schedule, shifted by `offset`.
pub struct Package {
    pub offset: Duration,
    pub schedule: Schedule,
}

impl Package {
    /// The next planned fault, on the test's clock.
    pub fn next_fault(&mut self) -> Planned {
        let mut planned = self.schedule.next();
        planned.at += self.offset;
        planned
    }
}

/// One package per fault kind of `config`, each with its own seed and an offset in
/// `[0, interval)`, all drawn from `seed`.
pub fn packages(config: &NemesisConfig, seed: u64) -> anyhow::Result<Vec<Package>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for kind in &config.faults {
        let own = NemesisConfig {
            faults: vec![*kind],
            ..config.clone()
        };
        let interval_ns = config.interval.as_nanos().min(u64::MAX as u128) as u64;
        let offset = Duration::from_nanos(rng.gen_range(0..interval_ns.max(1)));
        out.push(Package {
            offset,
            schedule: Schedule::new(&own, rng.gen())?,
        });
    }
    Ok(out)
}

/// Runs the packages against `nemesis` until `until` (since the test started) or `stop`, then
/// heals everything.
pub async fn run(
    nemesis: Nemesis,
    packages: Vec<Package>,
    until: Duration,
    recorder: Recorder,
    active: ActiveFaults,
    stop: watch::Receiver<bool>,
) -> NemesisReport {
    let nemesis = Arc::new(tokio::sync::Mutex::new(nemesis));
    let report = Arc::new(Mutex::new(NemesisReport::default()));
    let mut tasks = tokio::task::JoinSet::new();
    for package in packages {
        tasks.spawn(run_package(
            package,
            until,
            nemesis.clone(),
            recorder.clone(),
            active.clone(),
            report.clone(),
            stop.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
    let mut stop = stop;
    // The main phase lasts until `until`; the heal marks its end.
    let started = tokio::time::Instant::from_std(recorder.started());
    tokio::select! {
        _ = tokio::time::sleep_until(started + until) => {}
        _ = wait_for_stop(&mut stop) => {}
    }
    let healed = heal(&mut *nemesis.lock().await, &recorder).await;
    active.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let mut report = std::mem::take(&mut *report.lock().unwrap_or_else(|e| e.into_inner()));
    report.heal_error = healed.error;
    report
}

async fn run_package(
    mut package: Package,
    until: Duration,
    nemesis: Arc<tokio::sync::Mutex<Nemesis>>,
    recorder: Recorder,
    active: ActiveFaults,
    report: Arc<Mutex<NemesisReport>>,
    mut stop: watch::Receiver<bool>,
) {
    let started = tokio::time::Instant::from_std(recorder.started());
    loop {
        let planned = package.next_fault();
        if planned.at >= until {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(started + planned.at) => {}
            _ = wait_for_stop(&mut stop) => return,
        }
        let mut nemesis = nemesis.lock().await;
        let applied = apply(&mut nemesis, &planned.op, &recorder).await;
        *active.lock().unwrap_or_else(|e| e.into_inner()) = nemesis.active();
        drop(nemesis);
        let mut report = report.lock().unwrap_or_else(|e| e.into_inner());
        report.applied += 1;
        if let Some(error) = applied.error {
            tracing::warn!(f = planned.op.f(), "fault failed: {error}");
            report.errors.push(format!("{}: {error}", planned.op.f()));
        }
    }
}

async fn wait_for_stop(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// One fault: an `info` line when it begins (what was planned) and one when it is done (what
/// was actually done, or the error), as Jepsen records nemesis operations.
async fn apply(nemesis: &mut Nemesis, op: &FaultOp, recorder: &Recorder) -> Applied {
    recorder.record(Entry {
        process: Process::Nemesis,
        kind: EventType::Info,
        f: op.f().to_string(),
        key: None,
        value: op.planned_value(),
        node: None,
        error: None,
    });
    let applied = nemesis.apply(op).await;
    record_applied(recorder, &applied);
    applied
}

/// Heals everything and records it.
pub async fn heal(nemesis: &mut Nemesis, recorder: &Recorder) -> Applied {
    recorder.record(Entry {
        process: Process::Nemesis,
        kind: EventType::Info,
        f: "heal".into(),
        key: None,
        value: serde_json::Value::Null,
        node: None,
        error: None,
    });
    let applied = nemesis.heal_all().await;
    record_applied(recorder, &applied);
    if let Some(error) = &applied.error {
        tracing::error!("heal failed: {error}");
    }
    applied
}

fn record_applied(recorder: &Recorder, applied: &Applied) {
    recorder.record(Entry {
        process: Process::Nemesis,
        kind: EventType::Info,
        f: applied.f.clone(),
        key: None,
        value: applied.value.clone(),
        node: None,
        error: applied.error.clone(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuclei::nemesis::FaultKind;

    #[test]
    fn packages_overlap_and_repeat_with_the_seed() {
        let config = NemesisConfig {
            faults: vec![FaultKind::Kill, FaultKind::Latency],
            interval: Duration::from_secs(1),
            ..NemesisConfig::default()
        };
        let times = |seed| {
            let mut all = Vec::new();
            for mut package in packages(&config, seed).unwrap() {
                assert!(package.offset < config.interval);
                for _ in 0..4 {
                    let planned = package.next_fault();
                    all.push((planned.at, planned.op.f()));
                }
            }
            all
        };
        assert_eq!(times(5), times(5));
        assert_ne!(times(5), times(6));
        let kinds: std::collections::BTreeSet<_> = times(5).iter().map(|(_, f)| *f).collect();
        assert!(kinds.contains("kill") && kinds.contains("start-latency"));
    }
}
