//! What the nemesis does and how hard (written into test.json, so a run can be repeated).

use super::kinds::{FaultKind, Named, PartitionKind, Target};
use crate::control::duration_ms;
use anyhow::bail;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The nemesis settings. Missing fields take their defaults when read, unknown ones are errors
/// (a misspelt setting must not silently fall back to a default).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NemesisConfig {
    /// The faults to choose from, uniformly, for each start.
    pub faults: Vec<FaultKind>,
    /// Quiet time before each fault starts, and how long it lasts.
    #[serde(rename = "interval_ms", with = "duration_ms")]
    pub interval: Duration,
    /// Targets for node faults (kill, pause, clock, latency, loss), chosen uniformly.
    pub targets: Vec<Target>,
    /// Partition kinds, chosen uniformly.
    pub partitions: Vec<PartitionKind>,
    /// The latency fault's delay per packet...
    #[serde(rename = "latency_ms", with = "duration_ms")]
    pub latency: Duration,
    /// ... ± this much, uniformly.
    #[serde(rename = "jitter_ms", with = "duration_ms")]
    pub jitter: Duration,
    /// The loss fault's share of packets dropped, 0..=1.
    pub loss: f64,
    /// Largest clock skew, in ms either way; each skew is drawn from 1..=this, with a random
    /// sign.
    pub clock_bump_ms: i64,
    pub strobe: Strobe,
}

/// How clock faults strobe: instead of one bump, the offset flips between +d and 0 every
/// `period`, which breaks code that assumes time moves forward smoothly.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Strobe {
    /// Share of clock faults that strobe rather than bump (0 never, 1 always).
    pub share: f64,
    #[serde(rename = "period_ms", with = "duration_ms")]
    pub period: Duration,
}

impl Default for Strobe {
    fn default() -> Strobe {
        Strobe {
            share: 0.5,
            period: Duration::from_millis(30),
        }
    }
}

impl Default for NemesisConfig {
    /// Partitions of every kind every 5 s (long enough for the bundled targets to elect a
    /// leader in between, short enough for a 30 s run to see several faults). The amounts are
    /// what node faults use when enabled: targets as in Jepsen's defaults, 100 ± 50 ms of
    /// latency (well above loopback, below the targets' 2 s request timeout), 20% loss (TCP
    /// slows but survives), and clock skew up to 1 s: more than raft-kv's 300–600 ms
    /// election timeout, which a skew must exceed to break a leader lease.
    fn default() -> NemesisConfig {
        NemesisConfig {
            faults: vec![FaultKind::Partition],
            interval: Duration::from_secs(5),
            targets: vec![
                Target::One,
                Target::Minority,
                Target::Majority,
                Target::Primaries,
            ],
            partitions: PartitionKind::ALL.to_vec(),
            latency: Duration::from_millis(100),
            jitter: Duration::from_millis(50),
            loss: 0.2,
            clock_bump_ms: 1000,
            strobe: Strobe::default(),
        }
    }
}

fn repeats<T: Named>(list: &[T], problems: &mut Vec<String>) {
    for (i, v) in list.iter().enumerate() {
        if list[..i].contains(v) {
            problems.push(format!("{} {:?} is listed twice", T::WHAT, v.name()));
        }
    }
}

fn names<T: Named>() -> String {
    let names: Vec<&str> = T::ALL.iter().map(|v| v.name()).collect();
    names.join(", ")
}

fn bail_all(problems: Vec<String>) -> anyhow::Result<()> {
    match problems.len() {
        0 => Ok(()),
        1 => bail!("invalid nemesis config: {}", problems[0]),
        _ => bail!("invalid nemesis config: {}", problems.join("; ")),
    }
}

impl NemesisConfig {
    fn has(&self, kind: FaultKind) -> bool {
        self.faults.contains(&kind)
    }

    /// Checks the settings on their own, naming every problem at once. Amounts that only
    /// matter to a fault are only checked when that fault is enabled, except ones that are
    /// nonsense whatever the faults (a loss of 1.5).
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        if self.faults.is_empty() {
            problems.push(format!(
                "no faults; list at least one of {}",
                names::<FaultKind>()
            ));
        }
        repeats(&self.faults, &mut problems);
        repeats(&self.targets, &mut problems);
        repeats(&self.partitions, &mut problems);
        if self.interval.is_zero() {
            problems.push("interval must be more than 0 ms".into());
        }
        if self.has(FaultKind::Partition) && self.partitions.is_empty() {
            problems.push(format!(
                "the partition fault needs at least one partition kind ({})",
                names::<PartitionKind>()
            ));
        }
        let targeted: Vec<&str> = self
            .faults
            .iter()
            .filter(|k| k.is_targeted())
            .map(|k| k.name())
            .collect();
        if !targeted.is_empty() && self.targets.is_empty() {
            problems.push(format!(
                "node faults ({}) need at least one target ({})",
                targeted.join(", "),
                names::<Target>()
            ));
        }
        if !(0.0..=1.0).contains(&self.loss) {
            problems.push(format!(
                "loss must be a share of packets between 0 and 1, got {}",
                self.loss
            ));
        } else if self.has(FaultKind::Loss) && self.loss == 0.0 {
            problems.push("the loss fault with loss 0 would drop nothing".into());
        }
        if self.has(FaultKind::Latency) && self.latency.is_zero() && self.jitter.is_zero() {
            problems
                .push("the latency fault with 0 ms latency and jitter would delay nothing".into());
        }
        if self.clock_bump_ms < 0 {
            problems.push(format!(
                "clock_bump_ms is the largest skew either way and must be positive, got {}",
                self.clock_bump_ms
            ));
        } else if self.has(FaultKind::Clock) && self.clock_bump_ms == 0 {
            problems.push("the clock fault with clock_bump_ms 0 would skew nothing".into());
        }
        if !(0.0..=1.0).contains(&self.strobe.share) {
            problems.push(format!(
                "strobe.share is the share of clock faults that strobe and must be between 0 \
                 and 1, got {}",
                self.strobe.share
            ));
        } else if self.has(FaultKind::Clock)
            && self.strobe.share > 0.0
            && self.strobe.period.is_zero()
        {
            problems.push("strobe.period_ms must be more than 0 ms".into());
        }
        bail_all(problems)
    }

    /// [`NemesisConfig::validate`], and that every enabled partition kind and target makes
    /// sense for a cluster of `nodes` (a minority of 2 nodes does not exist), so a run fails
    /// before it starts rather than logging the same error every interval.
    pub fn validate_for_cluster(&self, nodes: usize) -> anyhow::Result<()> {
        self.validate()?;
        let mut problems = Vec::new();
        if nodes == 0 {
            problems.push("the cluster has no nodes".to_string());
        }
        if self.has(FaultKind::Partition) {
            for kind in self.partitions.iter().filter(|k| k.min_nodes() > nodes) {
                problems.push(format!(
                    "partition {kind} needs at least {} nodes, the cluster has {nodes}",
                    kind.min_nodes()
                ));
            }
        }
        if self.faults.iter().any(|k| k.is_targeted()) {
            for target in self.targets.iter().filter(|t| t.min_nodes() > nodes) {
                problems.push(format!(
                    "target {target} needs at least {} nodes, the cluster has {nodes}",
                    target.min_nodes()
                ));
            }
        }
        bail_all(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_faults() -> NemesisConfig {
        NemesisConfig {
            faults: FaultKind::ALL.to_vec(),
            ..NemesisConfig::default()
        }
    }

    fn error(config: &NemesisConfig) -> String {
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let c = NemesisConfig::default();
        c.validate().unwrap();
        all_faults().validate_for_cluster(3).unwrap();
        assert_eq!(c.interval, Duration::from_secs(5));
        assert_eq!(c.partitions.len(), 6);
        assert_eq!(
            c.targets,
            [
                Target::One,
                Target::Minority,
                Target::Majority,
                Target::Primaries
            ]
        );
    }

    #[test]
    fn serde_round_trips_with_durations_in_ms() {
        let c = all_faults();
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["interval_ms"], 5000);
        assert_eq!(json["latency_ms"], 100);
        assert_eq!(json["strobe"]["period_ms"], 30);
        assert_eq!(json["faults"][0], "partition");
        let back: NemesisConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
        let partial: NemesisConfig =
            serde_json::from_str(r#"{"faults":["kill"],"interval_ms":250}"#).unwrap();
        assert_eq!(partial.faults, [FaultKind::Kill]);
        assert_eq!(partial.interval, Duration::from_millis(250));
        assert_eq!(partial.loss, 0.2);
        let e = serde_json::from_str::<NemesisConfig>(r#"{"intervall_ms":1}"#).unwrap_err();
        assert!(
            e.to_string().contains("unknown field `intervall_ms`"),
            "{e}"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let mut c = all_faults();
        c.loss = 1.5;
        assert_eq!(
            error(&c),
            "invalid nemesis config: loss must be a share of packets between 0 and 1, got 1.5"
        );
        c.loss = f64::NAN;
        assert!(error(&c).contains("got NaN"));

        let c = NemesisConfig {
            faults: vec![],
            interval: Duration::ZERO,
            ..NemesisConfig::default()
        };
        let e = error(&c);
        assert!(
            e.contains("no faults; list at least one of partition, kill"),
            "{e}"
        );
        assert!(e.contains("; interval must be more than 0 ms"), "{e}");

        let c = NemesisConfig {
            faults: vec![FaultKind::Kill, FaultKind::Pause, FaultKind::Kill],
            targets: vec![],
            ..NemesisConfig::default()
        };
        let e = error(&c);
        assert!(e.contains("fault \"kill\" is listed twice"), "{e}");
        assert!(
            e.contains("node faults (kill, pause, kill) need at least one target"),
            "{e}"
        );

        let c = NemesisConfig {
            partitions: vec![],
            ..NemesisConfig::default()
        };
        assert!(error(&c).contains("needs at least one partition kind"));

        let mut c = all_faults();
        c.loss = 0.0;
        c.latency = Duration::ZERO;
        c.jitter = Duration::ZERO;
        c.clock_bump_ms = 0;
        c.strobe.period = Duration::ZERO;
        let e = error(&c);
        for part in ["drop nothing", "delay nothing", "skew nothing", "period_ms"] {
            assert!(e.contains(part), "{part}: {e}");
        }
        c.clock_bump_ms = -5;
        c.strobe.share = 2.0;
        let e = error(&c);
        assert!(
            e.contains("must be positive, got -5") && e.contains("strobe.share"),
            "{e}"
        );

        // Amounts of faults that are off do not matter.
        let c = NemesisConfig {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            clock_bump_ms: 0,
            targets: vec![],
            ..NemesisConfig::default()
        };
        c.validate().unwrap();
    }

    #[test]
    fn cluster_size_is_checked() {
        let e = all_faults()
            .validate_for_cluster(2)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("partition majorities-ring needs at least 3 nodes"),
            "{e}"
        );
        assert!(e.contains("partition bridge needs at least 3 nodes"), "{e}");
        assert!(e.contains("target minority needs at least 3 nodes"), "{e}");
        let only_kill_one = NemesisConfig {
            faults: vec![FaultKind::Kill],
            targets: vec![Target::One],
            ..NemesisConfig::default()
        };
        only_kill_one.validate_for_cluster(1).unwrap();
        assert!(only_kill_one
            .validate_for_cluster(0)
            .unwrap_err()
            .to_string()
            .contains("no nodes"));
    }
}
