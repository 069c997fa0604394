//! The `set` workload: unique adds of increasing integers, then a final read (checked with the
//! `set` model and the set invariant checker: lost, unexpected, duplicated elements).

use std::time::Duration;

use serde_json::json;

use crate::generator::{
    each_process_once, from_fn, limit, phases, rate, time_limit, Generator, OpTemplate, Phases,
};

/// `{"f":"add","value":0}`, then 1, 2, ... forever: every element is added once.
pub fn set_adds() -> impl Generator {
    let mut next = 0u64;
    from_fn(move |_, _| {
        let op = OpTemplate::new("add", json!(next));
        next += 1;
        op
    })
}

/// `{"f":"read","value":null}` of the whole set.
pub fn set_read() -> OpTemplate {
    OpTemplate::new("read", json!(null))
}

/// One final read.
pub fn set_final_read() -> impl Generator {
    limit(1, from_fn(|_, _| set_read()))
}

/// The whole client plan: adds at `ops_per_sec` for `duration`, then (once every add has
/// completed) one read on every process.
pub fn set_plan(duration: Duration, ops_per_sec: f64) -> Phases {
    phases(vec![
        time_limit(duration, rate(ops_per_sec, set_adds())).boxed(),
        each_process_once(from_fn(|_, _| set_read())).boxed(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::sim::{invocations, simulate, SimConfig};
    use crate::generator::Outcome;

    #[test]
    fn adds_are_unique_and_increasing_then_reads() {
        let mut g = set_plan(Duration::from_secs(2), 100.0);
        let cfg = SimConfig {
            concurrency: 3,
            seed: 11,
            max_steps: 100_000,
        };
        let events = simulate(&mut g, &cfg, |_, _| {
            (Duration::from_millis(15), Outcome::Ok)
        })
        .unwrap();
        let ops: Vec<_> = invocations(&events).collect();
        let adds: Vec<u64> = ops
            .iter()
            .filter(|e| e.op.f == "add")
            .map(|e| e.op.value.as_u64().unwrap())
            .collect();
        assert_eq!(adds, (0..adds.len() as u64).collect::<Vec<_>>());
        assert!((150..250).contains(&adds.len()), "{} adds", adds.len());
        let reads: Vec<_> = ops.iter().filter(|e| e.op.f == "read").collect();
        assert_eq!(reads.len(), 3);
        assert!(ops[ops.len() - 3..].iter().all(|e| e.op.f == "read"));
        let mut procs: Vec<_> = reads.iter().map(|e| e.process).collect();
        procs.sort_unstable();
        assert_eq!(procs, vec![0, 1, 2]);
    }

    #[test]
    fn final_read_is_one_read() {
        let mut g = set_final_read();
        let cfg = SimConfig {
            concurrency: 4,
            seed: 0,
            max_steps: 100,
        };
        let events =
            simulate(&mut g, &cfg, |_, _| (Duration::from_millis(1), Outcome::Ok)).unwrap();
        let ops: Vec<_> = invocations(&events).collect();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].op, set_read());
    }
}
