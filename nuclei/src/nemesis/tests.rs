//! The executor against the in-memory cluster of [`super::fake`]: the right calls on the right
//! nodes, stops that undo exactly their start, heals that always heal, errors that are reported.
//! Time is paused, so strobe timing is exact and the tests never sleep for real.

use super::fake::{nodes, Fake};
use super::*;
use crate::control::{LinkQuality, NodeState};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::sleep;

fn setup(n: usize) -> (Arc<Fake>, Nemesis) {
    let fake = Arc::new(Fake::new(n));
    let nemesis = Nemesis::new(fake.clone(), 1);
    (fake, nemesis)
}

/// The calls made since `from`.
fn calls_since(fake: &Fake, from: usize) -> Vec<String> {
    fake.calls()[from..].to_vec()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn partition_is_installed_as_recorded_and_healed_at_stop() {
    let (fake, mut nemesis) = setup(5);
    let op = FaultOp::StartPartition {
        partition: PartitionKind::MajoritiesRing,
        seed: 7,
    };
    let applied = nemesis.apply(&op).await;
    assert_eq!(applied.f, "start-partition");
    assert_eq!(applied.error, None);
    assert_eq!(applied.value["partition"], "majorities-ring");
    let installed = serde_json::to_value(&fake.state().grudge).unwrap();
    assert_eq!(applied.value["grudge"], installed);
    assert_eq!(fake.calls(), [format!("partition {installed}")]);
    assert_eq!(nemesis.active(), ["partition(majorities-ring)"]);

    let applied = nemesis.apply(&FaultOp::StopPartition).await;
    assert_eq!(applied.f, "stop-partition");
    assert_eq!(applied.value, json!({"partition": "majorities-ring"}));
    assert_eq!(fake.calls().last().unwrap(), "heal-partition");
    assert!(fake.state().healed() && nemesis.active().is_empty());
}

#[tokio::test(start_paused = true)]
async fn start_restarts_the_killed_primary_even_after_a_new_one_is_elected() {
    let (fake, mut nemesis) = setup(5);
    fake.state().primaries = vec!["n2".into()];
    let kill = FaultOp::Kill {
        target: Target::Primaries,
        seed: 3,
    };
    let applied = nemesis.apply(&kill).await;
    assert_eq!(
        applied.value,
        json!({"target": "primaries", "nodes": ["n2"]})
    );
    assert_eq!(fake.calls(), ["primaries", "kill n2"]);
    assert_eq!(fake.state().states["n2"], NodeState::Killed);
    assert_eq!(nemesis.active(), ["kill n2"]);

    fake.state().primaries = vec!["n4".into()];
    let applied = nemesis.apply(&FaultOp::Start).await;
    assert_eq!((applied.f.as_str(), applied.error), ("start", None));
    assert_eq!(applied.value, json!({"nodes": ["n2"]}));
    assert_eq!(calls_since(&fake, 2), ["start n2"]);
    assert!(fake.state().healed() && nemesis.active().is_empty());
}

#[tokio::test(start_paused = true)]
async fn resume_resumes_exactly_the_paused_nodes_and_choices_repeat() {
    let (fake, mut nemesis) = setup(5);
    let pause = FaultOp::Pause {
        target: Target::Minority,
        seed: 11,
    };
    let applied = nemesis.apply(&pause).await;
    let paused = strings(&applied.value["nodes"]);
    assert!(!paused.is_empty() && paused.len() <= 2, "{paused:?}");
    let expected: Vec<String> = paused.iter().map(|n| format!("pause {n}")).collect();
    assert_eq!(fake.calls(), expected);
    assert_eq!(nemesis.active(), [format!("pause {}", paused.join(","))]);

    let applied = nemesis.apply(&FaultOp::Resume).await;
    assert_eq!(strings(&applied.value["nodes"]), paused);
    let expected: Vec<String> = paused.iter().map(|n| format!("resume {n}")).collect();
    assert_eq!(calls_since(&fake, paused.len()), expected);
    assert!(fake.state().healed());

    // The same seeds choose the same nodes on another cluster with the same nodes; other
    // nemesis seeds choose differently for some op.
    let (_, mut twin) = setup(5);
    assert_eq!(twin.apply(&pause).await.value["nodes"], json!(paused));
    let mut differs = false;
    for salt in 2..20 {
        let mut other = Nemesis::new(Arc::new(Fake::new(5)), salt);
        differs |= other.apply(&pause).await.value["nodes"] != json!(paused);
    }
    assert!(differs);
}

#[tokio::test(start_paused = true)]
async fn bump_sets_recorded_offsets_and_reset_zeroes_those_nodes() {
    let (fake, mut nemesis) = setup(5);
    let bump = FaultOp::BumpClock {
        target: Target::All,
        max_ms: 100,
        seed: 5,
    };
    let applied = nemesis.apply(&bump).await;
    assert_eq!(applied.error, None);
    let offsets: std::collections::BTreeMap<String, i64> =
        serde_json::from_value(applied.value["offsets"].clone()).unwrap();
    assert_eq!(offsets.keys().cloned().collect::<Vec<_>>(), nodes(5));
    assert!(offsets.values().all(|o| (1..=100).contains(&o.abs())));
    assert_eq!(fake.state().offsets, offsets);
    assert_eq!(nemesis.active(), ["clock n1,n2,n3,n4,n5"]);

    let applied = nemesis.apply(&FaultOp::ResetClock).await;
    assert_eq!(applied.value, json!({"nodes": nodes(5)}));
    let expected: Vec<String> = nodes(5).iter().map(|n| format!("offset {n} +0")).collect();
    assert_eq!(calls_since(&fake, 5), expected);
    assert!(fake.state().healed() && nemesis.active().is_empty());
}

#[tokio::test(start_paused = true)]
async fn latency_and_loss_combine_per_node_and_unwind_separately() {
    let (fake, mut nemesis) = setup(3);
    let ms = Duration::from_millis;
    let latency = FaultOp::StartLatency {
        target: Target::All,
        latency: ms(100),
        jitter: ms(50),
        seed: 1,
    };
    nemesis.apply(&latency).await;
    assert_eq!(fake.calls(), ["degrade n1,n2,n3 100/50/0"]);
    let loss = FaultOp::StartLoss {
        target: Target::One,
        loss: 0.25,
        seed: 2,
    };
    let applied = nemesis.apply(&loss).await;
    let lossy = strings(&applied.value["nodes"]).remove(0);
    let slow = LinkQuality {
        latency: ms(100),
        jitter: ms(50),
        loss: 0.0,
    };
    {
        let state = fake.state();
        assert_eq!(state.calls[1], "restore-links");
        for node in nodes(3) {
            let expect = if node == lossy {
                LinkQuality { loss: 0.25, ..slow }
            } else {
                slow
            };
            assert_eq!(state.degraded[&node], expect, "{node}");
        }
    }
    assert_eq!(
        nemesis.active(),
        ["latency n1,n2,n3".to_string(), format!("loss {lossy}")]
    );

    let before = fake.calls().len();
    let applied = nemesis.apply(&FaultOp::StopLatency).await;
    assert_eq!(applied.value, json!({"nodes": nodes(3)}));
    assert_eq!(
        calls_since(&fake, before),
        [
            "restore-links".to_string(),
            format!("degrade {lossy} 0/0/0.25")
        ]
    );
    assert_eq!(fake.state().degraded.len(), 1);
    nemesis.apply(&FaultOp::StopLoss).await;
    assert_eq!(fake.calls().last().unwrap(), "restore-links");
    assert!(fake.state().healed() && nemesis.active().is_empty());
}

#[tokio::test(start_paused = true)]
async fn control_errors_are_reported_not_panics() {
    let (fake, mut nemesis) = setup(5);
    fake.fail("kill n2");
    let kill = FaultOp::Kill {
        target: Target::All,
        seed: 0,
    };
    let applied = nemesis.apply(&kill).await;
    assert_eq!(
        applied.error.as_deref(),
        Some("killing n2: injected failure: kill n2")
    );
    assert_eq!(applied.value["nodes"], json!(nodes(5)));
    assert_eq!(fake.state().states["n3"], NodeState::Killed);
    // The stop still starts every node the kill aimed at.
    let applied = nemesis.apply(&FaultOp::Start).await;
    assert_eq!(applied.error, None);
    assert!(fake.state().healed());

    fake.fail("primaries");
    let isolate = FaultOp::StartPartition {
        partition: PartitionKind::IsolatePrimary,
        seed: 0,
    };
    let applied = nemesis.apply(&isolate).await;
    let error = applied.error.unwrap();
    assert!(
        error.starts_with("asking for the primaries: injected failure"),
        "{error}"
    );
    assert_eq!(applied.value, json!({"partition": "isolate-primary"}));
    assert!(nemesis.active().is_empty() && fake.state().grudge.is_empty());

    let (small, mut nemesis) = setup(2);
    let minority = FaultOp::Pause {
        target: Target::Minority,
        seed: 0,
    };
    let applied = nemesis.apply(&minority).await;
    assert_eq!(
        applied.error.as_deref(),
        Some("target minority needs at least 3 nodes, the cluster has 2")
    );
    assert!(small.calls().is_empty());

    let (_, mut empty) = setup(0);
    let applied = empty.apply(&kill).await;
    assert_eq!(applied.error.as_deref(), Some("the cluster has no nodes"));
    let applied = empty.apply(&FaultOp::StopLoss).await;
    assert_eq!(applied.error, None);
}

#[tokio::test(start_paused = true)]
async fn isolate_primary_without_a_primary_says_so() {
    let (fake, mut nemesis) = setup(3);
    let isolate = FaultOp::StartPartition {
        partition: PartitionKind::IsolatePrimary,
        seed: 4,
    };
    let applied = nemesis.apply(&isolate).await;
    assert_eq!(applied.error, None);
    let note = applied.value["note"].as_str().unwrap();
    assert!(
        note.starts_with("no primary known; isolated a random node"),
        "{note}"
    );
    assert!(!fake.state().grudge.is_empty());
}

#[tokio::test(start_paused = true)]
async fn heal_all_heals_after_partial_and_failed_applies_and_repeats_safely() {
    let (fake, mut nemesis) = setup(5);
    fake.fail("kill n3");
    fake.fail("partition");
    let ms = Duration::from_millis;
    let ops = [
        FaultOp::Kill {
            target: Target::All,
            seed: 0,
        },
        FaultOp::StartPartition {
            partition: PartitionKind::Halves,
            seed: 0,
        },
        FaultOp::Pause {
            target: Target::One,
            seed: 0,
        },
        FaultOp::BumpClock {
            target: Target::Majority,
            max_ms: 50,
            seed: 0,
        },
        FaultOp::StartLatency {
            target: Target::Minority,
            latency: ms(10),
            jitter: ms(0),
            seed: 0,
        },
    ];
    for op in &ops {
        nemesis.apply(op).await;
    }
    assert_eq!(nemesis.active().len(), 5, "{:?}", nemesis.active());
    assert!(!fake.state().healed());

    // A heal that partly fails reports it, and heals what it can.
    fake.fail("restore-links");
    let applied = nemesis.heal_all().await;
    assert_eq!(applied.f, "heal");
    let error = applied.error.unwrap();
    assert!(
        error.contains("restoring links: injected failure"),
        "{error}"
    );
    assert_eq!(applied.value["healed"].as_array().unwrap().len(), 5);
    assert!(nemesis.active().is_empty());
    assert!(fake
        .state()
        .states
        .values()
        .all(|s| *s == NodeState::Running));

    // Healing again is always allowed and, once the backend recovers, heals everything.
    fake.state().fail.clear();
    let applied = nemesis.heal_all().await;
    assert_eq!(applied.error, None);
    assert_eq!(applied.value, json!({"healed": []}));
    assert!(fake.state().healed());
    assert_eq!(nemesis.heal_all().await.error, None);
}

/// The offsets set on `node`, in order.
fn offsets_of(fake: &Fake, node: &str) -> Vec<String> {
    let prefix = format!("offset {node} ");
    fake.calls()
        .iter()
        .filter_map(|c| c.strip_prefix(&prefix).map(str::to_string))
        .collect()
}

fn strobe(delta_ms: i64) -> FaultOp {
    FaultOp::StrobeClock {
        target: Target::All,
        delta_ms,
        period: Duration::from_millis(10),
        seed: 0,
    }
}

#[tokio::test(start_paused = true)]
async fn strobe_flips_until_reset_and_not_after() {
    let (fake, mut nemesis) = setup(3);
    let applied = nemesis.apply(&strobe(200)).await;
    assert_eq!(applied.error, None);
    assert_eq!(applied.value["nodes"], json!(nodes(3)));
    assert_eq!(nemesis.active(), ["strobe n1,n2,n3"]);
    sleep(Duration::from_millis(105)).await;
    let flips = offsets_of(&fake, "n1");
    assert_eq!(flips.len(), 11, "the initial +200 and ten flips: {flips:?}");
    for (i, offset) in flips.iter().enumerate() {
        assert_eq!(offset, if i % 2 == 0 { "+200" } else { "+0" });
    }

    let applied = nemesis.apply(&FaultOp::ResetClock).await;
    assert_eq!(applied.error, None);
    assert_eq!(applied.value, json!({"flips": 10, "nodes": nodes(3)}));
    let after_reset = fake.calls().len();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(fake.calls().len(), after_reset, "no flip after the reset");
    assert!(fake.state().healed() && nemesis.active().is_empty());
}

#[tokio::test(start_paused = true)]
async fn strobe_stops_on_heal_all_on_a_new_clock_fault_and_on_drop() {
    let (fake, mut nemesis) = setup(3);
    nemesis.apply(&strobe(-50)).await;
    sleep(Duration::from_millis(35)).await;
    assert_eq!(nemesis.heal_all().await.error, None);
    let healed_at = fake.calls().len();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(fake.calls().len(), healed_at);
    assert!(fake.state().healed());

    // A bump replaces a running strobe: no flip undoes the bump afterwards.
    nemesis.apply(&strobe(70)).await;
    sleep(Duration::from_millis(25)).await;
    let bump = FaultOp::BumpClock {
        target: Target::One,
        max_ms: 30,
        seed: 0,
    };
    nemesis.apply(&bump).await;
    let bumped = fake.calls().len();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(fake.calls().len(), bumped);
    nemesis.apply(&FaultOp::ResetClock).await;
    assert!(fake.state().healed());

    nemesis.apply(&strobe(70)).await;
    drop(nemesis);
    let dropped = fake.calls().len();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        fake.calls().len(),
        dropped,
        "a dropped nemesis's strobe stops"
    );
}

#[tokio::test(start_paused = true)]
async fn strobe_failures_are_reported_at_reset() {
    let (fake, mut nemesis) = setup(3);
    fake.fail("offset n2 -");
    let applied = nemesis.apply(&strobe(-40)).await;
    assert!(applied
        .error
        .unwrap()
        .contains("setting n2's clock to -40 ms"));
    sleep(Duration::from_millis(45)).await;
    let applied = nemesis.apply(&FaultOp::ResetClock).await;
    let error = applied.error.unwrap();
    assert!(
        error.starts_with("strobe: 2 clock change(s) failed"),
        "{error}"
    );
    assert!(fake.state().healed());
}

#[tokio::test(start_paused = true)]
async fn every_scheduled_stop_leaves_the_cluster_healed() {
    let config = NemesisConfig {
        faults: FaultKind::ALL.to_vec(),
        targets: Target::ALL.to_vec(),
        interval: Duration::from_millis(50),
        ..NemesisConfig::default()
    };
    let mut schedule = Schedule::new(&config, 99).unwrap();
    let (fake, mut nemesis) = setup(5);
    fake.state().primaries = vec!["n3".into()];
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..300 {
        let planned = schedule.next();
        let applied = nemesis.apply(&planned.op).await;
        assert_eq!(applied.error, None, "{:?}", planned.op);
        assert_eq!(applied.f, planned.op.f());
        seen.insert(applied.f.clone());
        if planned.op.stop().is_none() {
            assert!(fake.state().healed(), "after {:?}", planned.op);
            assert!(nemesis.active().is_empty());
        } else {
            assert_eq!(nemesis.active().len(), 1, "{:?}", planned.op);
        }
    }
    assert_eq!(seen.len(), 15, "every op kind ran: {seen:?}");
}

/// The runner moves the nemesis into a spawned task, so it and its futures must be `Send`.
#[test]
fn nemesis_and_its_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let (_, mut nemesis) = setup(1);
    send(&nemesis);
    let op = FaultOp::Start;
    let apply = nemesis.apply(&op);
    send(&apply);
    drop(apply);
    send(&nemesis.heal_all());
}
