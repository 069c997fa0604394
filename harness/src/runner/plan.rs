//! `fissure run --plan`: the schedule a seed produces, without a cluster. Client operations come
//! from the same generator the run uses, driven by the simulated driver (every operation takes
//! a fixed time and succeeds); faults come from the same nemesis schedule. Two plans with the
//! same seed and settings are identical, which is what makes a failing run repeatable.

use super::{client_seed, nemesis_seed};
use crate::spec::RunSpec;
use serde_json::{json, Value};
use std::time::Duration;
use workloads::generator::sim::{invocations, simulate, SimConfig};
use workloads::generator::{limit, Outcome};

/// How long each simulated operation takes.
const SIMULATED_LATENCY: Duration = Duration::from_millis(5);

/// The first `max_ops` client invocations and every fault of the main phase, in time order, one
/// JSON object each (`time_ms`, `process`, `f`, `key`, `value`).
pub fn plan(spec: &RunSpec, max_ops: u64) -> anyhow::Result<Vec<Value>> {
    let workload = spec.build_workload()?;
    let mut generator = limit(max_ops, super::paced_main(spec, workload.main));
    let config = SimConfig {
        concurrency: spec.concurrency,
        seed: client_seed(spec.seed),
        max_steps: 10 * max_ops as usize + 1_000_000,
    };
    let events = simulate(&mut generator, &config, |_, _| {
        (SIMULATED_LATENCY, Outcome::Ok)
    })
    .map_err(|e| anyhow::anyhow!("the workload's generator is broken: {e}"))?;
    let mut entries: Vec<(Duration, Value)> = invocations(&events)
        .map(|e| {
            (
                e.time,
                json!({
                    "time_ms": ms(e.time),
                    "process": e.process,
                    "f": e.op.f,
                    "key": e.op.key,
                    "value": e.op.value,
                }),
            )
        })
        .collect();
    if !spec.nemesis.is_empty() {
        let packages =
            super::nemesis_task::packages(&spec.nemesis_config(), nemesis_seed(spec.seed))?;
        for mut package in packages {
            loop {
                let planned = package.next_fault();
                if planned.at >= spec.time_limit {
                    break;
                }
                entries.push((
                    planned.at,
                    json!({
                        "time_ms": ms(planned.at),
                        "process": "nemesis",
                        "f": planned.op.f(),
                        "value": planned.op.planned_value(),
                    }),
                ));
            }
        }
    }
    // Stable: a fault planned at the same instant as an operation stays after it.
    entries.sort_by_key(|(t, _)| *t);
    Ok(entries.into_iter().map(|(_, v)| v).collect())
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
