//! The seeded fault schedule: pure, no I/O, so `fissure run --plan` shows exactly what a run
//! with the same seed will do, and a failing run can be repeated.

use super::config::NemesisConfig;
use super::kinds::{FaultKind, PartitionKind, Target};
use crate::control::duration_ms;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

/// One step of the nemesis, as planned before knowing the cluster. Starts carry a `seed` from
/// which the executor draws the nodes (and per-node amounts), so the same op against the same
/// nodes and primaries always hits the same nodes. Serialized with the history's `f` as tag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum FaultOp {
    StartPartition {
        partition: PartitionKind,
        seed: u64,
    },
    StopPartition,
    Kill {
        target: Target,
        seed: u64,
    },
    /// Starts the nodes the last kill killed.
    Start,
    Pause {
        target: Target,
        seed: u64,
    },
    /// Resumes the nodes the last pause paused.
    Resume,
    /// Each target node's clock moves by its own skew, drawn from ±1..=`max_ms`.
    BumpClock {
        target: Target,
        max_ms: i64,
        seed: u64,
    },
    /// The target nodes' clocks flip between +`delta_ms` and 0 every `period`.
    StrobeClock {
        target: Target,
        delta_ms: i64,
        #[serde(rename = "period_ms", with = "duration_ms")]
        period: Duration,
        seed: u64,
    },
    /// Resets the clocks the last bump or strobe skewed.
    ResetClock,
    StartLatency {
        target: Target,
        #[serde(rename = "latency_ms", with = "duration_ms")]
        latency: Duration,
        #[serde(rename = "jitter_ms", with = "duration_ms")]
        jitter: Duration,
        seed: u64,
    },
    StopLatency,
    StartLoss {
        target: Target,
        loss: f64,
        seed: u64,
    },
    StopLoss,
    /// Cuts each target node off from every other node, sets its clock `back_ms` back and
    /// pauses it; `pause_ms` later it resumes, still cut off.
    StartSuspend {
        target: Target,
        pause_ms: i64,
        back_ms: i64,
        seed: u64,
    },
    /// Resumes the suspended nodes if they still sleep, resets their clocks, reconnects them.
    StopSuspend,
}

impl FaultOp {
    /// The history's `f` for this op.
    pub fn f(&self) -> &'static str {
        match self {
            FaultOp::StartPartition { .. } => "start-partition",
            FaultOp::StopPartition => "stop-partition",
            FaultOp::Kill { .. } => "kill",
            FaultOp::Start => "start",
            FaultOp::Pause { .. } => "pause",
            FaultOp::Resume => "resume",
            FaultOp::BumpClock { .. } => "bump-clock",
            FaultOp::StrobeClock { .. } => "strobe-clock",
            FaultOp::ResetClock => "reset-clock",
            FaultOp::StartLatency { .. } => "start-latency",
            FaultOp::StopLatency => "stop-latency",
            FaultOp::StartLoss { .. } => "start-loss",
            FaultOp::StopLoss => "stop-loss",
            FaultOp::StartSuspend { .. } => "start-suspend",
            FaultOp::StopSuspend => "stop-suspend",
        }
    }

    pub fn kind(&self) -> FaultKind {
        match self {
            FaultOp::StartPartition { .. } | FaultOp::StopPartition => FaultKind::Partition,
            FaultOp::Kill { .. } | FaultOp::Start => FaultKind::Kill,
            FaultOp::Pause { .. } | FaultOp::Resume => FaultKind::Pause,
            FaultOp::BumpClock { .. } | FaultOp::StrobeClock { .. } | FaultOp::ResetClock => {
                FaultKind::Clock
            }
            FaultOp::StartLatency { .. } | FaultOp::StopLatency => FaultKind::Latency,
            FaultOp::StartLoss { .. } | FaultOp::StopLoss => FaultKind::Loss,
            FaultOp::StartSuspend { .. } | FaultOp::StopSuspend => FaultKind::Suspend,
        }
    }

    /// The op that ends this one; `None` if this is itself an end.
    pub fn stop(&self) -> Option<FaultOp> {
        match self {
            FaultOp::StartPartition { .. } => Some(FaultOp::StopPartition),
            FaultOp::Kill { .. } => Some(FaultOp::Start),
            FaultOp::Pause { .. } => Some(FaultOp::Resume),
            FaultOp::BumpClock { .. } | FaultOp::StrobeClock { .. } => Some(FaultOp::ResetClock),
            FaultOp::StartLatency { .. } => Some(FaultOp::StopLatency),
            FaultOp::StartLoss { .. } => Some(FaultOp::StopLoss),
            FaultOp::StartSuspend { .. } => Some(FaultOp::StopSuspend),
            _ => None,
        }
    }

    /// What the schedule decided, before any node was chosen: the history's value for the
    /// op's invocation (the completion carries what was actually done). Seeds are left out;
    /// the run's seed in test.json reproduces them.
    pub fn planned_value(&self) -> Value {
        match self {
            FaultOp::StartPartition { partition, .. } => json!({ "partition": partition }),
            FaultOp::Kill { target, .. } | FaultOp::Pause { target, .. } => {
                json!({ "target": target })
            }
            FaultOp::BumpClock { target, max_ms, .. } => {
                json!({ "target": target, "max_ms": max_ms })
            }
            FaultOp::StrobeClock {
                target,
                delta_ms,
                period,
                ..
            } => json!({
                "target": target,
                "delta_ms": delta_ms,
                "period_ms": period.as_millis() as u64,
            }),
            FaultOp::StartLatency {
                target,
                latency,
                jitter,
                ..
            } => json!({
                "target": target,
                "latency_ms": latency.as_millis() as u64,
                "jitter_ms": jitter.as_millis() as u64,
            }),
            FaultOp::StartLoss { target, loss, .. } => json!({ "target": target, "loss": loss }),
            FaultOp::StartSuspend {
                target,
                pause_ms,
                back_ms,
                ..
            } => json!({ "target": target, "pause_ms": pause_ms, "back_ms": back_ms }),
            FaultOp::StopPartition
            | FaultOp::Start
            | FaultOp::Resume
            | FaultOp::ResetClock
            | FaultOp::StopLatency
            | FaultOp::StopLoss
            | FaultOp::StopSuspend => Value::Null,
        }
    }
}

/// An op and when to apply it, measured from the nemesis's start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Planned {
    #[serde(rename = "at_ms", with = "duration_ms")]
    pub at: Duration,
    pub op: FaultOp,
}

/// An endless seeded sequence of start/stop pairs: quiet for `interval`, a fault for
/// `interval`, its stop, and again. One fault at a time, so every stop leaves the cluster
/// healed.
#[derive(Clone, Debug)]
pub struct Schedule {
    config: NemesisConfig,
    rng: StdRng,
    at: Duration,
    pending_stop: Option<FaultOp>,
}

impl Schedule {
    /// Fails with [`NemesisConfig::validate`]'s message on a bad config, so `next` can never
    /// meet one.
    pub fn new(config: &NemesisConfig, seed: u64) -> anyhow::Result<Schedule> {
        config.validate()?;
        Ok(Schedule {
            config: config.clone(),
            rng: StdRng::seed_from_u64(seed),
            at: Duration::ZERO,
            pending_stop: None,
        })
    }

    /// The next op; never runs out. (Not an `Iterator`: it would always be `Some`.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Planned {
        // Saturating: an absurd interval must not overflow after a few thousand steps.
        self.at = self.at.saturating_add(self.config.interval);
        let op = match self.pending_stop.take() {
            Some(stop) => stop,
            None => {
                let start = self.draw_start();
                self.pending_stop = start.stop();
                start
            }
        };
        Planned { at: self.at, op }
    }

    fn draw_start(&mut self) -> FaultOp {
        let c = &self.config;
        let rng = &mut self.rng;
        // `new` validated that every list a fault draws from is nonempty.
        let kind = *c.faults.choose(rng).expect("validated: faults nonempty");
        let mut aim = || {
            let target = *c.targets.choose(rng).expect("validated: targets nonempty");
            (target, rng.gen::<u64>())
        };
        match kind {
            FaultKind::Partition => {
                let partition = *c.partitions.choose(rng).expect("validated: partitions");
                let seed = rng.gen();
                FaultOp::StartPartition { partition, seed }
            }
            FaultKind::Kill => {
                let (target, seed) = aim();
                FaultOp::Kill { target, seed }
            }
            FaultKind::Pause => {
                let (target, seed) = aim();
                FaultOp::Pause { target, seed }
            }
            FaultKind::Clock => {
                let (target, seed) = aim();
                if c.strobe.share > 0.0 && rng.gen_bool(c.strobe.share) {
                    let magnitude = rng.gen_range(1..=c.clock_bump_ms);
                    let delta_ms = if rng.gen_bool(0.5) {
                        magnitude
                    } else {
                        -magnitude
                    };
                    FaultOp::StrobeClock {
                        target,
                        delta_ms,
                        period: c.strobe.period,
                        seed,
                    }
                } else {
                    FaultOp::BumpClock {
                        target,
                        max_ms: c.clock_bump_ms,
                        seed,
                    }
                }
            }
            FaultKind::Latency => {
                let (target, seed) = aim();
                FaultOp::StartLatency {
                    target,
                    latency: c.latency,
                    jitter: c.jitter,
                    seed,
                }
            }
            FaultKind::Loss => {
                let (target, seed) = aim();
                FaultOp::StartLoss {
                    target,
                    loss: c.loss,
                    seed,
                }
            }
            FaultKind::Suspend => {
                let (target, seed) = aim();
                // Asleep for the first half, awake and still cut off for the second: long
                // enough for the others to move on, then time to act on what it believed. Its
                // clock goes back by the whole fault, so until the stop it reads no later than
                // the moment it was cut off: whatever it concluded from its clock then (a
                // lease, a lock's expiry) still looks true to it.
                let whole = i64::try_from(c.interval.as_millis()).unwrap_or(i64::MAX);
                FaultOp::StartSuspend {
                    target,
                    pause_ms: (whole / 2).max(1),
                    back_ms: whole.max(1),
                    seed,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn everything() -> NemesisConfig {
        NemesisConfig {
            faults: FaultKind::ALL.to_vec(),
            interval: Duration::from_millis(100),
            targets: Target::ALL.to_vec(),
            ..NemesisConfig::default()
        }
    }

    fn ops(config: &NemesisConfig, seed: u64, n: usize) -> Vec<Planned> {
        let mut s = Schedule::new(config, seed).unwrap();
        (0..n).map(|_| s.next()).collect()
    }

    #[test]
    fn starts_and_stops_alternate_on_the_interval() {
        let planned = ops(&everything(), 3, 400);
        for (i, p) in planned.iter().enumerate() {
            assert_eq!(p.at, Duration::from_millis(100 * (i as u64 + 1)));
            if i % 2 == 0 {
                assert!(p.op.stop().is_some(), "{i}: {:?}", p.op);
                assert_eq!(planned[i + 1].op, p.op.stop().unwrap());
            }
        }
        let kinds: BTreeSet<FaultKind> = planned.iter().map(|p| p.op.kind()).collect();
        assert_eq!(kinds.len(), FaultKind::ALL.len());
        let fs: BTreeSet<&str> = planned.iter().map(|p| p.op.f()).collect();
        assert!(
            fs.contains("bump-clock") && fs.contains("strobe-clock"),
            "{fs:?}"
        );
    }

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        assert_eq!(ops(&everything(), 42, 200), ops(&everything(), 42, 200));
        assert_ne!(ops(&everything(), 42, 200), ops(&everything(), 43, 200));
    }

    #[test]
    fn draws_only_from_the_config() {
        let config = NemesisConfig {
            faults: vec![FaultKind::Partition, FaultKind::Clock],
            partitions: vec![PartitionKind::Bridge],
            targets: vec![Target::Minority],
            clock_bump_ms: 40,
            strobe: super::super::config::Strobe {
                share: 0.0,
                period: Duration::from_millis(10),
            },
            ..NemesisConfig::default()
        };
        for p in ops(&config, 1, 100) {
            match p.op {
                FaultOp::StartPartition { partition, .. } => {
                    assert_eq!(partition, PartitionKind::Bridge)
                }
                FaultOp::BumpClock { target, max_ms, .. } => {
                    assert_eq!((target, max_ms), (Target::Minority, 40))
                }
                FaultOp::StopPartition | FaultOp::ResetClock => {}
                other => panic!("not in the config: {other:?}"),
            }
        }
        let strobing = NemesisConfig {
            strobe: super::super::config::Strobe {
                share: 1.0,
                period: Duration::from_millis(10),
            },
            ..config
        };
        let deltas: Vec<i64> = ops(&strobing, 2, 200)
            .into_iter()
            .filter_map(|p| match p.op {
                FaultOp::StrobeClock { delta_ms, .. } => Some(delta_ms),
                FaultOp::BumpClock { .. } => panic!("share 1 always strobes"),
                _ => None,
            })
            .collect();
        assert!(deltas.iter().all(|d| (1..=40).contains(&d.abs())));
        assert!(deltas.iter().any(|&d| d < 0) && deltas.iter().any(|&d| d > 0));
    }

    #[test]
    fn serialized_tag_is_the_history_f() {
        for p in ops(&everything(), 5, 300) {
            let json = serde_json::to_value(&p.op).unwrap();
            assert_eq!(json["f"], p.op.f());
            let back: FaultOp = serde_json::from_value(json).unwrap();
            assert_eq!(back, p.op);
        }
        let op = FaultOp::StartLatency {
            target: Target::All,
            latency: Duration::from_millis(100),
            jitter: Duration::from_millis(50),
            seed: 9,
        };
        assert_eq!(
            op.planned_value(),
            json!({"target": "all", "latency_ms": 100, "jitter_ms": 50})
        );
        let op = FaultOp::StartPartition {
            partition: PartitionKind::MajoritiesRing,
            seed: 1,
        };
        assert_eq!(op.planned_value(), json!({"partition": "majorities-ring"}));
        assert_eq!(FaultOp::Start.planned_value(), Value::Null);
        let planned = serde_json::to_value(Planned {
            at: Duration::from_secs(5),
            op: FaultOp::Resume,
        })
        .unwrap();
        assert_eq!(planned, json!({"at_ms": 5000, "op": {"f": "resume"}}));
    }

    #[test]
    fn bad_configs_are_refused_and_huge_intervals_do_not_overflow() {
        let bad = NemesisConfig {
            faults: vec![],
            ..NemesisConfig::default()
        };
        let e = Schedule::new(&bad, 0).unwrap_err().to_string();
        assert!(e.contains("no faults"), "{e}");
        let huge = NemesisConfig {
            interval: Duration::MAX,
            ..NemesisConfig::default()
        };
        let mut s = Schedule::new(&huge, 0).unwrap();
        assert_eq!(s.next().at, Duration::MAX);
        assert_eq!(s.next().at, Duration::MAX);
    }
}
