//! The suspend fault: what a node lives through when its VM is suspended, composed from a
//! partition, a pause and a clock step, as Jepsen composes faults and aims them by role.
//!
//! Cut off, paused, its wall clock set back by the fault's length (a suspended VM's clock does
//! not run while it sleeps, and may be further off when it wakes); halfway through it resumes,
//! still cut off, its clock reading earlier than the moment of the cut; at the stop its clock
//! is reset and it rejoins. Each
//! part alone is harmless to a lease: a partition deposes a leader whose clock still runs, a
//! pause alone ends with the leader hearing the new term at once, a clock step alone is judged
//! against fresh acknowledgements. Together they make a deposed leader that wakes believing
//! its lease, and serves what it holds while the others have moved on.

use super::executor::{noted, Nemesis, Outcome};
use super::kinds::Target;
use crate::control::{ClusterControl, Grudge, NodeId};
use serde_json::json;
use std::time::Duration;
use tokio::task::JoinHandle;

/// A suspension in force: the nodes, the cut that isolates them, and the pending wake-up.
pub(crate) struct Suspended {
    pub nodes: Vec<NodeId>,
    pub grudge: Grudge,
    /// Resumes the nodes after the pause; its result is the failures. Aborted when dropped.
    wake: Option<JoinHandle<Vec<String>>>,
}

impl Drop for Suspended {
    fn drop(&mut self) {
        if let Some(wake) = &self.wake {
            wake.abort();
        }
    }
}

/// Each node cut off from every other node (the targets from each other too: two isolated
/// nodes must not form a group of their own).
pub(crate) fn isolating(all: &[NodeId], isolated: &[NodeId]) -> Grudge {
    let mut grudge = Grudge::default();
    for node in isolated {
        let rest: Vec<NodeId> = all.iter().filter(|n| *n != node).cloned().collect();
        grudge.drop_one_way(std::slice::from_ref(node), &rest);
        grudge.drop_one_way(&rest, std::slice::from_ref(node));
    }
    grudge
}

async fn resume_all(control: &dyn ClusterControl, nodes: &[NodeId]) -> Vec<String> {
    let mut errors = Vec::new();
    for node in nodes {
        if let Err(e) = control.resume(node).await {
            errors.push(format!("resuming {node}: {e:#}"));
        }
    }
    errors
}

impl Nemesis {
    /// Cut, clock, pause, in that order: the node must not hear the others once its clock is
    /// back, and its clock must be back before it sleeps (a paused node reads no file).
    pub(super) async fn start_suspend(
        &mut self,
        target: Target,
        pause_ms: i64,
        back_ms: i64,
        seed: u64,
    ) -> Outcome {
        let planned = json!({ "target": target, "pause_ms": pause_ms, "back_ms": back_ms });
        if pause_ms <= 0 || back_ms < 0 {
            let e =
                format!("suspend needs pause_ms > 0 and back_ms >= 0, got {pause_ms}, {back_ms}");
            return Outcome::failed(planned, e);
        }
        if let Some(suspended) = &self.suspended {
            let e = format!("suspend already holds {}", suspended.nodes.join(","));
            return Outcome::failed(planned, e);
        }
        let mut rng = self.rng(seed);
        let chosen = match self.aim(target, &mut rng).await {
            Ok(chosen) => chosen,
            Err(e) => return Outcome::failed(planned, e),
        };
        let nodes = chosen.nodes.clone();
        let grudge = isolating(&self.control.nodes(), &nodes);
        // Remembered before any call: a half-done start must still be undone by the stop.
        self.suspended = Some(Suspended {
            nodes: nodes.clone(),
            grudge: grudge.clone(),
            wake: None,
        });
        let mut errors = Vec::new();
        if let Err(e) = self.control.partition(&self.cuts()).await {
            errors.push(format!("partitioning: {e:#}"));
        }
        for node in &nodes {
            if let Err(e) = self.control.set_clock_offset(node, -back_ms).await {
                errors.push(format!("setting {node}'s clock to -{back_ms} ms: {e:#}"));
            }
            if let Err(e) = self.control.pause(node).await {
                errors.push(format!("pausing {node}: {e:#}"));
            }
        }
        let control = self.control.clone();
        let sleeping = nodes.clone();
        let wake = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(pause_ms.unsigned_abs())).await;
            resume_all(control.as_ref(), &sleeping).await
        });
        if let Some(suspended) = &mut self.suspended {
            suspended.wake = Some(wake);
        }
        let value = json!({
            "target": target,
            "nodes": nodes,
            "pause_ms": pause_ms,
            "back_ms": back_ms,
            "grudge": grudge,
        });
        Outcome {
            value: noted(value, chosen.note),
            errors,
        }
    }

    /// Wakes the nodes if they still sleep (and reports a wake-up that failed), resets their
    /// clocks, then reconnects them: no node rejoins with its clock still back. Whatever fails
    /// stays remembered for the next stop or the heal.
    pub(super) async fn stop_suspend(&mut self) -> Outcome {
        let Some(mut suspended) = self.suspended.take() else {
            return Outcome {
                value: json!({ "nodes": [] }),
                errors: Vec::new(),
            };
        };
        let nodes = suspended.nodes.clone();
        let mut errors = Vec::new();
        let woke = match suspended.wake.take() {
            Some(wake) if wake.is_finished() => match wake.await {
                Ok(failed) => {
                    errors.extend(failed.into_iter().map(|e| format!("waking: {e}")));
                    true
                }
                Err(e) => {
                    errors.push(format!("the wake-up task failed: {e}"));
                    false
                }
            },
            Some(wake) => {
                wake.abort();
                false
            }
            None => false,
        };
        if !woke || !errors.is_empty() {
            errors.extend(resume_all(self.control.as_ref(), &nodes).await);
        }
        for node in &nodes {
            if let Err(e) = self.control.set_clock_offset(node, 0).await {
                errors.push(format!("resetting {node}'s clock: {e:#}"));
            }
        }
        if let Err(e) = self.install_cuts(&self.cuts()).await {
            errors.push(format!("reconnecting {}: {e:#}", nodes.join(",")));
        }
        let value = json!({ "nodes": nodes, "woke": woke });
        if !errors.is_empty() {
            self.suspended = Some(suspended);
        }
        Outcome { value, errors }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{nodes, Fake};
    use super::super::{FaultKind, FaultOp, NemesisConfig, PartitionKind, Schedule};
    use super::*;
    use crate::control::NodeState;
    use std::sync::Arc;
    use tokio::time::sleep;

    fn setup(n: usize) -> (Arc<Fake>, Nemesis) {
        let fake = Arc::new(Fake::new(n));
        (fake.clone(), Nemesis::new(fake, 1))
    }

    fn start(target: Target) -> FaultOp {
        FaultOp::StartSuspend {
            target,
            pause_ms: 1000,
            back_ms: 2000,
            seed: 4,
        }
    }

    fn state(fake: &Fake, node: &str) -> NodeState {
        fake.state().states[node]
    }

    #[test]
    fn isolated_nodes_hear_no_one_and_the_rest_hear_each_other() {
        let all = nodes(5);
        let g = isolating(&all, &["n2".into(), "n4".into()]);
        for a in &all {
            for b in &all {
                let cut = a != b && (["n2", "n4"].contains(&a.as_str()) || b == "n2" || b == "n4");
                assert_eq!(g.allows(a, b), !cut, "{a} -> {b}");
            }
        }
        assert!(isolating(&all, &[]).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_primary_is_cut_off_set_back_and_paused_then_wakes_still_cut_off() {
        let (fake, mut nemesis) = setup(3);
        fake.state().primaries = vec!["n2".into()];
        let applied = nemesis.apply(&start(Target::Primaries)).await;
        assert_eq!(applied.f, "start-suspend");
        assert_eq!(applied.error, None);
        assert_eq!(applied.value["nodes"], json!(["n2"]));
        assert_eq!(applied.value["pause_ms"], 1000);
        assert_eq!(applied.value["back_ms"], 2000);
        let calls = fake.calls();
        assert_eq!(calls[0], "primaries");
        assert!(calls[1].starts_with("partition "), "{calls:?}");
        assert_eq!(
            calls[2..],
            ["offset n2 -2000", "pause n2"],
            "cut, clock, pause"
        );
        let others = ["n1".to_string(), "n3".to_string()];
        let cut = Grudge::between(&["n2".to_string()], &others);
        assert_eq!(fake.state().grudge, cut);
        assert_eq!(nemesis.active(), ["suspend n2"]);

        sleep(Duration::from_millis(999)).await;
        assert_eq!(state(&fake, "n2"), NodeState::Paused);
        sleep(Duration::from_millis(2)).await;
        assert_eq!(state(&fake, "n2"), NodeState::Running, "awake halfway");
        assert_eq!(fake.state().grudge, cut, "and still cut off");
        assert_eq!(fake.state().offsets["n2"], -2000, "its clock still behind");

        // A new leader elsewhere does not change what the stop undoes.
        fake.state().primaries = vec!["n1".into()];
        let from = fake.calls().len();
        let applied = nemesis.apply(&FaultOp::StopSuspend).await;
        assert_eq!(applied.error, None);
        assert_eq!(applied.value, json!({"nodes": ["n2"], "woke": true}));
        assert_eq!(
            fake.calls()[from..],
            ["offset n2 +0", "heal-partition"],
            "the clock is reset before the node rejoins"
        );
        assert!(fake.state().healed() && nemesis.active().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_before_the_wake_up_resumes_the_nodes_itself_and_only_once() {
        let (fake, mut nemesis) = setup(3);
        nemesis.apply(&start(Target::All)).await;
        assert!(["n1", "n2", "n3"]
            .iter()
            .all(|n| state(&fake, n) == NodeState::Paused));
        sleep(Duration::from_millis(500)).await;
        let applied = nemesis.apply(&FaultOp::StopSuspend).await;
        assert_eq!(applied.error, None);
        assert_eq!(applied.value["woke"], false);
        assert!(fake.state().healed());
        let resumes = |fake: &Fake| {
            fake.calls()
                .iter()
                .filter(|c| c.starts_with("resume"))
                .count()
        };
        assert_eq!(resumes(&fake), 3);
        sleep(Duration::from_secs(2)).await;
        assert_eq!(resumes(&fake), 3, "the cancelled wake-up never runs");
    }

    #[tokio::test(start_paused = true)]
    async fn overlapping_partition_and_suspension_each_undo_only_their_own_cut() {
        let (fake, mut nemesis) = setup(5);
        fake.state().primaries = vec!["n5".into()];
        let halves = FaultOp::StartPartition {
            partition: PartitionKind::Halves,
            seed: 1,
        };
        let all = nodes(5);
        let isolation = isolating(&all, &["n5".into()]);
        let split = Grudge::between(&all[..2], &all[2..]);
        nemesis.apply(&halves).await;
        nemesis.apply(&start(Target::Primaries)).await;
        for (a, b) in [("n1", "n3"), ("n5", "n4"), ("n4", "n5"), ("n1", "n5")] {
            assert!(!fake.state().grudge.allows(a, b), "{a} -> {b}");
        }
        assert!(fake.state().grudge.allows("n3", "n4"));
        nemesis.apply(&FaultOp::StopPartition).await;
        assert_eq!(
            fake.state().grudge,
            isolation,
            "the suspension outlives the partition"
        );
        nemesis.apply(&FaultOp::StopSuspend).await;
        assert!(fake.state().healed());

        // The other way round.
        nemesis.apply(&start(Target::Primaries)).await;
        nemesis.apply(&halves).await;
        nemesis.apply(&FaultOp::StopSuspend).await;
        assert_eq!(
            fake.state().grudge,
            split,
            "the partition outlives the suspension"
        );
        assert_eq!(fake.state().offsets["n5"], 0);
        assert_eq!(state(&fake, "n5"), NodeState::Running);
        nemesis.apply(&FaultOp::StopPartition).await;
        assert!(fake.state().healed() && nemesis.active().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_reported_and_what_started_is_still_undone() {
        let (fake, mut nemesis) = setup(3);
        fake.fail("offset n");
        fake.fail("resume n1");
        let applied = nemesis.apply(&start(Target::All)).await;
        let error = applied.error.unwrap();
        assert!(error.contains("setting n1's clock to -2000 ms"), "{error}");
        assert_eq!(nemesis.active(), ["suspend n1,n2,n3"]);
        let again = nemesis.apply(&start(Target::One)).await;
        assert!(again.error.unwrap().contains("already holds n1,n2,n3"));
        sleep(Duration::from_millis(1500)).await;
        let stop = nemesis.apply(&FaultOp::StopSuspend).await;
        let error = stop.error.unwrap();
        assert!(error.contains("waking: resuming n1"), "{error}");
        assert!(error.contains("resetting n1's clock"), "{error}");
        assert_eq!(
            nemesis.active().len(),
            1,
            "kept for the next stop or the heal"
        );
        fake.state().fail.clear();
        let stop = nemesis.apply(&FaultOp::StopSuspend).await;
        assert_eq!(stop.error, None);
        assert!(fake.state().healed());
        let bad = FaultOp::StartSuspend {
            target: Target::One,
            pause_ms: 0,
            back_ms: 0,
            seed: 0,
        };
        assert!(nemesis
            .apply(&bad)
            .await
            .error
            .unwrap()
            .contains("pause_ms > 0 and back_ms >= 0"));
        assert!(fake.state().healed());
    }

    #[tokio::test(start_paused = true)]
    async fn heal_all_ends_a_suspension_and_cancels_its_wake_up() {
        let (fake, mut nemesis) = setup(3);
        nemesis.apply(&start(Target::Minority)).await;
        assert!(!fake.state().healed());
        let healed = nemesis.heal_all().await;
        assert!(healed.value["healed"][0]
            .as_str()
            .unwrap()
            .starts_with("suspend n"));
        assert!(fake.state().healed() && nemesis.active().is_empty());
        let calls = fake.calls().len();
        sleep(Duration::from_secs(2)).await;
        assert_eq!(fake.calls().len(), calls);
    }

    #[test]
    fn the_schedule_pauses_for_half_the_interval_and_aims_at_the_targets() {
        let config = NemesisConfig {
            faults: vec![FaultKind::Suspend],
            targets: vec![Target::Primaries],
            interval: Duration::from_millis(3000),
            ..NemesisConfig::default()
        };
        let mut schedule = Schedule::new(&config, 3).unwrap();
        for i in 0..20 {
            let planned = schedule.next();
            assert_eq!(planned.at, Duration::from_millis(3000 * (i + 1)));
            match planned.op {
                FaultOp::StartSuspend {
                    target,
                    pause_ms,
                    back_ms,
                    ..
                } => {
                    assert_eq!(i % 2, 0);
                    assert_eq!((target, pause_ms, back_ms), (Target::Primaries, 1500, 3000));
                }
                FaultOp::StopSuspend => assert_eq!(i % 2, 1),
                other => panic!("not in the config: {other:?}"),
            }
        }
        assert_eq!(
            start(Target::One).planned_value(),
            json!({"target": "one", "pause_ms": 1000, "back_ms": 2000})
        );
        assert_eq!(start(Target::One).kind(), FaultKind::Suspend);
        assert_eq!(start(Target::One).stop(), Some(FaultOp::StopSuspend));
        assert_eq!(
            FaultKind::Suspend.parts(),
            [FaultKind::Partition, FaultKind::Pause, FaultKind::Clock]
        );
        assert!(FaultKind::Suspend.cuts_links() && FaultKind::Suspend.skews_clocks());
        assert!(!FaultKind::Kill.cuts_links() && !FaultKind::Pause.skews_clocks());
    }
}
