use super::*;
use crate::{Event, EventType, Process};
use serde_json::{json, Value};
use EventType::{Fail, Info, Invoke, Ok};

/// A client event at `ms` milliseconds.
fn ev(process: u64, kind: EventType, f: &str, ms: u64) -> Event {
    let mut e = Event::client(process, kind, f, Value::Null).with_key(json!("k"));
    e.time = Some(ms * 1_000_000);
    e
}

fn nemesis(f: &str, ms: u64) -> Event {
    let mut e = ev(0, Info, f, ms);
    e.process = Process::Nemesis;
    e.key = None;
    e
}

/// A start or stop as the harness records it: planned, then done `ms_done` later.
fn pair(f: &str, ms: u64, ms_done: u64) -> Vec<Event> {
    vec![nemesis(f, ms), nemesis(f, ms + ms_done)]
}

/// Builds histories of ops on fresh processes, in time order.
#[derive(Default)]
struct Builder {
    events: Vec<Event>,
    next: u64,
}

impl Builder {
    /// One op invoked at `ms` taking `latency` ms; `Invoke` as outcome leaves it open.
    fn op(&mut self, f: &str, outcome: EventType, ms: u64, latency: u64) -> &mut Self {
        self.next += 1;
        self.events.push(ev(self.next, Invoke, f, ms));
        if outcome != Invoke {
            self.events.push(ev(self.next, outcome, f, ms + latency));
        }
        self
    }

    /// An op every `every` ms in `[from, to)`.
    fn load(
        &mut self,
        f: &str,
        outcome: EventType,
        from: u64,
        to: u64,
        every: u64,
        latency: u64,
    ) -> &mut Self {
        for ms in (from..to).step_by(every as usize) {
            self.op(f, outcome, ms, latency);
        }
        self
    }

    fn nemesis(&mut self, events: Vec<Event>) -> &mut Self {
        self.events.extend(events);
        self
    }

    fn history(&self) -> History {
        let mut events = self.events.clone();
        events.sort_by_key(|e| e.time);
        History::from_events(events)
    }
}

fn spec(json: Value) -> SloSpec {
    let spec: SloSpec = serde_json::from_value(json).unwrap();
    spec.validate().unwrap();
    spec
}

/// Steady fast ops for 0–6 s, a partition over 2–4 s during which ops fail half the time.
fn partitioned() -> Builder {
    let mut b = Builder::default();
    b.load("read", Ok, 0, 2000, 10, 5)
        .load("read", Ok, 2000, 4000, 20, 5)
        .load("read", Fail, 2010, 4000, 20, 5)
        .load("read", Ok, 4000, 6000, 10, 5)
        .nemesis(pair("start-partition", 2000, 1))
        .nemesis(pair("stop-partition", 3999, 1));
    b
}

#[test]
fn no_thresholds_is_not_checked_but_measured() {
    let r = check_slo(&partitioned().history(), &SloSpec::default());
    assert_eq!(r.verdict, SloVerdict::NotChecked);
    assert_eq!(r.reason, "no SLO thresholds set");
    assert_eq!(r.window_ms, 1000);
    assert_eq!(r.windows.len(), 6);
    assert_eq!(r.windows[0].stats.ok, 100);
    assert_eq!(r.windows[0].ok_per_s, 100.0);
    assert_eq!(r.windows[0].stats.p99_ms, Some(5.0));
    assert_eq!(r.windows[2].stats.availability, Some(0.5));
    let names: Vec<&str> = r.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["steady", "during partition #1", "after heal"]);
    assert_eq!((r.phases[1].start_s, r.phases[1].end_s), (2.0, 4.0));
    assert!(r.breaches.is_empty());
    let j = json!(r);
    assert_eq!(j["verdict"], "not-checked");
    assert_eq!(j["windows"][0]["p99_ms"], 5.0, "stats are flattened");
    assert!(j["windows"][0].get("by_op").is_none());
}

#[test]
fn p99_breach_names_its_window_and_phase() {
    let mut b = Builder::default();
    b.load("read", Ok, 0, 5000, 10, 5)
        .load("read", Ok, 2005, 3000, 10, 400)
        .nemesis(pair("start-partition", 2000, 1))
        .nemesis(pair("stop-partition", 3500, 1));
    let r = check_slo(&b.history(), &spec(json!({"p99_ms": 250})));
    assert_eq!(r.verdict, SloVerdict::Fail);
    assert_eq!(r.breaches.len(), 1, "{:?}", r.breaches);
    let breach = &r.breaches[0];
    assert_eq!((breach.start_s, breach.end_s), (2.0, 3.0));
    assert_eq!(breach.observed, Some(400.0));
    assert_eq!(breach.phase.as_deref(), Some("during partition #1"));
    assert_eq!(
        r.reason,
        "1 SLO breach: p99 latency 400 ms > 250 ms in 2.0–3.0 s (during partition #1)"
    );
}

#[test]
fn availability_breach_during_partition_only() {
    let r = check_slo(
        &partitioned().history(),
        &spec(json!({"availability": 0.99})),
    );
    assert_eq!(r.verdict, SloVerdict::Fail);
    assert_eq!(r.breaches.len(), 1, "{:?}", r.breaches);
    let b = &r.breaches[0];
    assert_eq!(b.what, "availability");
    assert_eq!(b.phase.as_deref(), Some("during partition #1"));
    assert_eq!(b.observed, Some(0.5));
    assert_eq!(
        b.message,
        "availability 50% < 99% during partition #1 (2.0–4.0 s)"
    );
    assert_eq!(r.phases[0].stats.availability, Some(1.0));
    assert_eq!(r.phases[2].stats.availability, Some(1.0));
}

#[test]
fn per_op_thresholds_hit_only_their_kind() {
    let mut b = Builder::default();
    b.load("read", Ok, 0, 3000, 10, 5)
        .load("write", Ok, 5, 3000, 10, 300);
    let h = b.history();
    let r = check_slo(&h, &spec(json!({"ops": {"read": {"p99_ms": 100}}})));
    assert_eq!(r.verdict, SloVerdict::Pass);
    assert_eq!(r.reason, "every SLO met");
    let only_reads: Vec<&String> = r.windows[0].by_op.keys().collect();
    assert_eq!(only_reads, ["read"]);
    assert_eq!(r.windows[0].by_op["read"].p99_ms, Some(5.0));

    let r = check_slo(
        &h,
        &spec(json!({"ops": {"read": {"p99_ms": 100}, "write": {"p99_ms": 100}}})),
    );
    assert_eq!(r.breaches.len(), 1, "{:?}", r.breaches);
    let breach = &r.breaches[0];
    assert_eq!(breach.op.as_deref(), Some("write"));
    assert_eq!((breach.start_s, breach.end_s), (0.0, 3.0));
    assert!(breach
        .message
        .starts_with("write p99 latency 300 ms > 100 ms in 0.0–3.0 s"));
}

#[test]
fn info_and_unfinished_ops_count_against_availability() {
    let mut b = Builder::default();
    b.load("write", Ok, 0, 1000, 10, 5)
        .load("write", Info, 5, 500, 10, 5)
        .load("write", Invoke, 505, 1000, 10, 0);
    let r = check_slo(
        &b.history(),
        &spec(json!({"availability": 0.9, "max_error_rate": 0.6})),
    );
    let w = &r.windows[0].stats;
    assert_eq!((w.ops, w.ok, w.fail, w.info), (200, 100, 0, 100));
    assert_eq!(w.error_rate, Some(0.5));
    assert_eq!(w.max_ms, Some(5.0), "only ok ops have a latency");
    assert_eq!(r.breaches.len(), 1, "{:?}", r.breaches);
    assert_eq!(
        r.breaches[0].message,
        "availability 50% < 90% while steady (0.0–0.995 s)"
    );
}

#[test]
fn error_rate_breaches_per_window() {
    let r = check_slo(
        &partitioned().history(),
        &spec(json!({"max_error_rate": 0.1})),
    );
    assert_eq!(r.breaches.len(), 1, "{:?}", r.breaches);
    let b = &r.breaches[0];
    assert_eq!(
        (b.what.as_str(), b.start_s, b.end_s),
        ("max_error_rate", 2.0, 4.0)
    );
    assert_eq!(
        b.message,
        "error rate 50% > 10% in 2.0–4.0 s (during partition #1)"
    );
}

/// 100 ok/s over 0–3 s, a partition 3–5 s with every op failing, ok ops again from `back` ms.
fn outage(back: u64) -> Builder {
    let mut b = Builder::default();
    b.load("read", Ok, 0, 3000, 10, 5)
        .load("read", Fail, 3000, back, 10, 5)
        .load("read", Ok, back, 9000, 10, 5)
        .nemesis(pair("start-partition", 3000, 2))
        .nemesis(pair("stop-partition", 4998, 2));
    b
}

#[test]
fn recovery_is_measured_from_the_heal() {
    let h = outage(6000).history();
    let r = check_slo(&h, &spec(json!({"max_recovery_s": 1.5})));
    let base = r.baseline.as_ref().unwrap();
    assert_eq!(
        (base.from.as_str(), base.windows, base.ok_per_s),
        ("steady", 3, 100.0)
    );
    assert_eq!(r.recoveries.len(), 1);
    let rec = &r.recoveries[0];
    assert_eq!(
        (rec.fault.as_str(), rec.healed_at_s),
        ("partition #1", Some(5.0))
    );
    assert!((rec.first_ok_s.unwrap() - 1.005).abs() < 1e-9, "{rec:?}");
    assert_eq!(
        rec.steady_s,
        Some(2.0),
        "window 6–7 s is the first back at 80%"
    );
    assert_eq!(r.breaches.len(), 1, "{:?}", r.breaches);
    assert_eq!(
        r.breaches[0].message,
        "recovery after partition #1 took 2.0 s > 1.5 s to get back to 80% of baseline \
         throughput (healed at 5.0 s)"
    );
    assert_eq!(r.breaches[0].observed, Some(2.0));

    let r = check_slo(&h, &spec(json!({"max_recovery_s": 3})));
    assert_eq!(r.verdict, SloVerdict::Pass);
}

#[test]
fn without_steady_windows_the_level_after_heal_is_the_baseline() {
    let mut b = Builder::default();
    b.load("read", Fail, 0, 2000, 10, 5)
        .load("read", Ok, 2500, 8000, 10, 5)
        .nemesis(pair("kill", 0, 1))
        .nemesis(pair("start", 1999, 1));
    let r = check_slo(&b.history(), &spec(json!({"max_recovery_s": 10})));
    assert_eq!(r.baseline.as_ref().unwrap().from, "after heal");
    assert_eq!(r.phases[0].name, "during kill #1", "no steady phase at all");
    assert_eq!(
        r.recoveries[0].steady_s,
        Some(2.0),
        "window 2–3 s holds only 50 ok/s"
    );
    assert_eq!(r.verdict, SloVerdict::Pass);
}

#[test]
fn a_fault_never_healed_breaches_max_recovery() {
    let mut b = Builder::default();
    b.load("read", Ok, 0, 4000, 10, 5)
        .nemesis(pair("pause", 2000, 1));
    let h = b.history();
    let r = check_slo(&h, &spec(json!({"max_recovery_s": 10})));
    assert_eq!(r.recoveries[0].healed_at_s, None);
    assert_eq!(r.recoveries[0].steady_s, None);
    assert_eq!(r.breaches.len(), 1);
    let breach = &r.breaches[0];
    assert_eq!(breach.message, "pause #1 never healed (started at 2.0 s)");
    assert_eq!(
        (breach.observed, breach.start_s, breach.end_s),
        (None, 2.0, 4.0)
    );
    let names: Vec<&str> = r.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["steady", "during pause #1"], "no after-heal phase");

    let r = check_slo(&h, &spec(json!({"p99_ms": 100})));
    assert_eq!(r.verdict, SloVerdict::Pass, "only max_recovery_s cares");
}

#[test]
fn never_recovering_after_a_heal_is_a_breach() {
    let h = outage(9000).history();
    let r = check_slo(&h, &spec(json!({"max_recovery_s": 100})));
    assert_eq!(r.recoveries[0].steady_s, None);
    assert_eq!(r.recoveries[0].first_ok_s, None);
    assert_eq!(
        r.reason,
        "1 SLO breach: partition #1 never recovered 80% of baseline throughput after its heal \
         at 5.0 s"
    );
}

#[test]
fn empty_history() {
    let empty = History::default();
    let r = check_slo(&empty, &SloSpec::default());
    assert_eq!(r.verdict, SloVerdict::NotChecked);
    let all =
        spec(json!({"p99_ms": 1, "availability": 1, "max_recovery_s": 1, "max_error_rate": 0}));
    let r = check_slo(&empty, &all);
    assert_eq!(
        (r.verdict, r.reason.as_str()),
        (SloVerdict::Pass, "no operations")
    );
    assert!(r.windows.is_empty() && r.phases.is_empty() && r.breaches.is_empty());

    // Only nemesis entries: a healed fault says nothing, one never healed is a breach.
    let mut b = Builder::default();
    b.nemesis(pair("start-loss", 100, 1))
        .nemesis(pair("stop-loss", 200, 1));
    assert_eq!(check_slo(&b.history(), &all).verdict, SloVerdict::Pass);
    b.nemesis(pair("bump-clock", 300, 1));
    let r = check_slo(&b.history(), &all);
    assert_eq!(r.verdict, SloVerdict::Fail);
    assert_eq!(
        r.reason,
        "1 SLO breach: clock #1 never healed (started at 0.3 s)"
    );
}

#[test]
fn adjacent_breaching_windows_merge_into_one() {
    let mut b = Builder::default();
    b.load("read", Ok, 0, 8000, 10, 5)
        .load("read", Ok, 1005, 2000, 50, 300)
        .load("read", Ok, 2005, 3000, 50, 500)
        .load("read", Ok, 3005, 4000, 50, 400)
        .load("read", Ok, 5005, 6000, 50, 350);
    let r = check_slo(
        &b.history(),
        &spec(json!({"p99_ms": 250, "window_ms": 1000})),
    );
    let found: Vec<(f64, f64, Option<f64>)> = (r.breaches.iter())
        .map(|b| (b.start_s, b.end_s, b.observed))
        .collect();
    assert_eq!(found, [(1.0, 4.0, Some(500.0)), (5.0, 6.0, Some(350.0))]);
    assert!(r
        .reason
        .starts_with("2 SLO breaches: p99 latency 500 ms > 250 ms in 1.0–4.0 s (steady); "));
}

#[test]
fn overlapping_faults_give_overlapping_phases() {
    let mut b = Builder::default();
    b.load("read", Ok, 0, 6000, 10, 5)
        .nemesis(pair("start-partition", 1000, 1))
        .nemesis(pair("kill", 2000, 1))
        .nemesis(pair("stop-partition", 3000, 1))
        .nemesis(pair("heal", 4000, 1));
    let r = check_slo(&b.history(), &spec(json!({"window_ms": 500})));
    let phases: Vec<(&str, f64, f64)> = (r.phases.iter())
        .map(|p| (p.name.as_str(), p.start_s, p.end_s))
        .collect();
    assert_eq!(
        phases,
        [
            ("steady", 0.0, 1.0),
            ("during partition #1", 1.0, 3.001),
            ("during kill #1", 2.0, 4.001),
            ("after heal", 4.001, 5.995)
        ]
    );
    assert_eq!(r.windows.len(), 12);
    assert_eq!(r.recoveries.len(), 2);
}

#[test]
fn spec_parses_validates_and_names_the_key() {
    let parsed: SloSpec = serde_json::from_value(json!({
        "p99_ms": 250, "availability": 0.99, "max_recovery_s": 10, "max_error_rate": 0.01,
        "ops": {"read": {"p99_ms": 100}}
    }))
    .unwrap();
    assert_eq!(parsed.ops["read"].p99_ms, Some(100.0));
    assert!(parsed.validate().is_ok() && !parsed.is_empty());
    let err = serde_json::from_value::<SloSpec>(json!({"p95_ms": 1})).unwrap_err();
    assert!(err.to_string().contains("unknown field `p95_ms`"), "{err}");
    assert!(
        serde_json::from_value::<SloSpec>(json!({"ops": {"read": {"max_recovery_s": 1}}})).is_err()
    );

    assert!(spec(json!({"window_ms": 500})).is_empty());
    assert!(spec(json!({"ops": {"read": {}}})).is_empty());
    let invalid = |j: Value| {
        serde_json::from_value::<SloSpec>(j)
            .unwrap()
            .validate()
            .unwrap_err()
    };
    assert_eq!(
        invalid(json!({"availability": 99})),
        "slo.availability must be between 0 and 1 (a fraction, not a percentage), got 99"
    );
    assert_eq!(
        invalid(json!({"ops": {"read": {"p99_ms": -1}}})),
        "slo.ops.read.p99_ms must be a positive number of milliseconds, got -1"
    );
    assert_eq!(
        invalid(json!({"window_ms": 5})),
        "slo.window_ms must be at least 10, got 5"
    );
    assert!(invalid(json!({"max_recovery_s": 0})).starts_with("slo.max_recovery_s"));
    assert!(invalid(json!({"ops": {"write": {"max_error_rate": 1.5}}}))
        .starts_with("slo.ops.write.max_error_rate"));
}

#[test]
fn windows_widen_rather_than_explode() {
    let mut b = Builder::default();
    b.op("read", Ok, 0, 5).op("read", Ok, 1_000_000_000, 5);
    let r = check_slo(&b.history(), &spec(json!({"window_ms": 10})));
    assert_eq!(r.window_ms, 10_001);
    assert!(r.windows.len() <= 100_001, "{}", r.windows.len());
}
