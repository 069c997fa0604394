//! Whole test plans through a simulated driver: a fake clock, fake clients, no sleeps.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use workloads::generator::sim::{invocations, simulate, SimConfig};
use workloads::generator::{
    cycle, delay, each_process_once, from_fn, limit, mix, phases, rate, stagger, time_limit,
    Completion, Context, Generator, Next, OpTemplate, Outcome, Process,
};
use workloads::register::{self, register_independent, RegisterMix};

const MAIN: Duration = Duration::from_secs(10);

/// The plan `fissure run --workload register` will drive: 10 s of independent register ops at
/// 200/s, then one final read per process.
fn register_plan() -> Box<dyn Generator> {
    phases(vec![
        time_limit(
            MAIN,
            rate(200.0, register_independent(4, 50, RegisterMix::default())),
        )
        .boxed(),
        each_process_once(from_fn(|_, _| register::read())).boxed(),
    ])
    .boxed()
}

#[derive(Debug, Clone, PartialEq)]
struct Event {
    time: Duration,
    process: Process,
    outcome: Option<Outcome>,
    op: OpTemplate,
}

/// A driver loop written out in full, as the runner will have it: it records every `Next`
/// answer. Client latency is 1-30 ms from its own seeded rng; every 23rd op ends `info` (the
/// process is retired and replaced), every 7th `fail`.
fn drive(gen: &mut dyn Generator, seed: u64, concurrency: u64) -> (Vec<Next>, Vec<Event>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut clients = StdRng::seed_from_u64(seed ^ 0xC11E);
    let mut free: BTreeSet<Process> = (0..concurrency).collect();
    let mut fresh = concurrency;
    let mut open: Vec<(Duration, Process, OpTemplate, Outcome)> = Vec::new();
    let (mut answers, mut events) = (Vec::new(), Vec::new());
    let mut now = Duration::ZERO;
    let mut n = 0u64;
    let mut done = false;
    loop {
        open.sort_by_key(|o| o.0);
        while open.first().is_some_and(|o| o.0 <= now) {
            let (time, process, op, outcome) = open.remove(0);
            if outcome == Outcome::Info {
                free.insert(fresh);
                fresh += 1;
            } else {
                free.insert(process);
            }
            let c = Completion {
                time,
                process,
                op: op.clone(),
                outcome,
                output: json!(null),
            };
            gen.observe(&c);
            events.push(Event {
                time,
                process,
                outcome: Some(outcome),
                op,
            });
        }
        let next_done = open.first().map(|o| o.0);
        if done {
            match next_done {
                Some(t) => {
                    now = t;
                    continue;
                }
                None => return (answers, events),
            }
        }
        let free_now: Vec<Process> = free.iter().copied().collect();
        let next = gen.next(&mut Context {
            now,
            free: &free_now,
            busy: open.len(),
            rng: &mut rng,
        });
        answers.push(next.clone());
        match next {
            Next::Invoke { process, op } => {
                assert!(free.remove(&process), "process {process} was not free");
                n += 1;
                let outcome = match n {
                    n if n % 23 == 0 => Outcome::Info,
                    n if n % 7 == 0 => Outcome::Fail,
                    _ => Outcome::Ok,
                };
                let latency = Duration::from_millis(clients.gen_range(1..=30));
                events.push(Event {
                    time: now,
                    process,
                    outcome: None,
                    op: op.clone(),
                });
                open.push((now + latency, process, op, outcome));
            }
            Next::Wait(d) => {
                assert!(!d.is_zero());
                now = next_done.map_or(now + d, |t| t.min(now + d));
            }
            Next::Pending => now = next_done.expect("Pending with nothing in flight"),
            Next::Done => done = true,
        }
        assert!(answers.len() < 1_000_000, "runaway generator");
    }
}

#[test]
fn same_seed_same_answers_different_seed_different_answers() {
    let (a, ea) = drive(&mut *register_plan(), 42, 5);
    let (b, eb) = drive(&mut *register_plan(), 42, 5);
    assert_eq!(a, b);
    assert_eq!(ea, eb);
    let (c, _) = drive(&mut *register_plan(), 43, 5);
    assert_ne!(a, c);
}

#[test]
fn register_plan_schedule_is_well_formed() {
    let (_, events) = drive(&mut *register_plan(), 7, 5);
    // Every process has at most one open op, and a retired process never comes back.
    let mut open: BTreeMap<Process, &OpTemplate> = BTreeMap::new();
    let mut retired = BTreeSet::new();
    for e in &events {
        match e.outcome {
            None => {
                assert!(
                    !retired.contains(&e.process),
                    "retired {} reused",
                    e.process
                );
                assert!(open.insert(e.process, &e.op).is_none(), "two open ops");
            }
            Some(o) => {
                assert_eq!(open.remove(&e.process), Some(&e.op));
                if o == Outcome::Info {
                    retired.insert(e.process);
                }
            }
        }
    }
    assert!(open.is_empty());
    assert!(!retired.is_empty(), "the plan exercised info");

    let invokes: Vec<&Event> = events.iter().filter(|e| e.outcome.is_none()).collect();
    let (main, finals): (Vec<&Event>, Vec<&Event>) =
        invokes.iter().partition(|e| e.op.key.is_some());
    // Main phase: within the time limit, about 200/s, per-key bounds hold.
    assert!(main.iter().all(|e| e.time < MAIN));
    assert!(
        (1_800..2_200).contains(&main.len()),
        "{} main ops",
        main.len()
    );
    let mut per_key: BTreeMap<u64, usize> = BTreeMap::new();
    for e in &main {
        *per_key
            .entry(e.op.key.as_ref().unwrap().as_u64().unwrap())
            .or_default() += 1;
        assert!(["read", "write", "cas"].contains(&e.op.f.as_str()));
    }
    assert!(per_key.values().all(|&n| n <= 50));
    assert!(per_key.len() >= main.len() / 50);
    // Final reads: after every main op completed, one on each live process.
    let main_end = events
        .iter()
        .filter(|e| e.outcome.is_some() && e.op.key.is_some())
        .map(|e| e.time)
        .max()
        .unwrap();
    assert_eq!(finals.len(), 5);
    assert!(finals
        .iter()
        .all(|e| e.op.f == "read" && e.time >= main_end));
    let procs: BTreeSet<Process> = finals.iter().map(|e| e.process).collect();
    assert_eq!(procs.len(), 5);
    assert!(procs.is_disjoint(&retired));
}

#[test]
fn nemesis_schedule_alternates_on_a_fixed_interval() {
    let start = OpTemplate::new("start-partition", json!("majorities-ring"));
    let stop = OpTemplate::new("stop-partition", json!(null));
    let mut nemesis = time_limit(
        Duration::from_secs(60),
        delay(
            Duration::from_secs(10),
            cycle(vec![start.clone(), stop.clone()]),
        ),
    );
    let cfg = SimConfig {
        concurrency: 1,
        seed: 0,
        max_steps: 1_000,
    };
    let events = simulate(&mut nemesis, &cfg, |_, _| {
        (Duration::from_millis(200), Outcome::Info)
    })
    .unwrap();
    let ops: Vec<(u64, &str)> = invocations(&events)
        .map(|e| (e.time.as_secs(), e.op.f.as_str()))
        .collect();
    assert_eq!(
        ops,
        vec![
            (10, "start-partition"),
            (20, "stop-partition"),
            (30, "start-partition"),
            (40, "stop-partition"),
            (50, "start-partition"),
        ]
    );
}

#[test]
fn mix_weights_hold_through_a_whole_run() {
    let source = |f: &'static str| from_fn(move |_, _| OpTemplate::new(f, json!(null))).boxed();
    let mut g = limit(
        10_000,
        stagger(
            Duration::from_millis(1),
            mix(vec![(1, source("a")), (4, source("b"))]),
        ),
    );
    let cfg = SimConfig {
        concurrency: 8,
        seed: 2024,
        max_steps: 1_000_000,
    };
    let events = simulate(&mut g, &cfg, |_, _| (Duration::from_millis(3), Outcome::Ok)).unwrap();
    let a = invocations(&events).filter(|e| e.op.f == "a").count();
    // Expected 2000, sd 40.
    assert!((1_800..2_200).contains(&a), "{a}");
    assert_eq!(invocations(&events).count(), 10_000);
}

#[test]
fn set_plan_adds_each_element_once_then_reads() {
    let mut g = workloads::set::set_plan(Duration::from_secs(5), 50.0);
    let (answers, events) = drive(&mut g, 3, 4);
    assert_eq!(answers.last(), Some(&Next::Done));
    let adds: Vec<u64> = events
        .iter()
        .filter(|e| e.outcome.is_none() && e.op.f == "add")
        .map(|e| e.op.value.as_u64().unwrap())
        .collect();
    assert_eq!(adds, (0..adds.len() as u64).collect::<Vec<_>>());
    let reads = events
        .iter()
        .filter(|e| e.outcome.is_none() && e.op.f == "read")
        .count();
    assert_eq!(reads, 4);
}
