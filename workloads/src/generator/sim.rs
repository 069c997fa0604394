//! A simulated driver: runs a generator against a fake clock and fake clients, with no I/O.
//!
//! It is the reference for the contract the real runner must follow (see [`Generator`]), and
//! what the tests use to check whole test plans. Process numbers start at `0..concurrency`; a
//! process whose operation ends `info` is retired and replaced by the next unused number.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::core::{Completion, Context, Generator, Next, OpTemplate, Outcome, Process};

/// One line of a simulated history.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEvent {
    pub time: Duration,
    pub process: Process,
    /// `None` for the invocation, else how it ended.
    pub outcome: Option<Outcome>,
    pub op: OpTemplate,
}

/// Why a simulation stopped early.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SimError {
    #[error("generator returned Pending with no operation in flight (deadlock) at {0:?}")]
    Deadlock(Duration),
    #[error("generator invoked process {0}, which is not free")]
    NotFree(Process),
    #[error("generator returned Wait(0)")]
    ZeroWait,
    #[error("more than {0} steps")]
    TooManySteps(usize),
}

/// Settings of a simulation.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Number of client processes.
    pub concurrency: usize,
    /// Seed of the rng lent to the generator.
    pub seed: u64,
    /// Upper bound on driver steps (each `next` call is one), against runaway generators.
    pub max_steps: usize,
}

struct InFlight {
    done_at: Duration,
    seq: u64,
    process: Process,
    op: OpTemplate,
    outcome: Outcome,
}

/// Runs `generator` to `Done` and until every operation has completed. `respond(n, op)` says,
/// for the `n`th invocation (from 0), how long it takes and how it ends.
pub fn simulate<G, R>(
    generator: &mut G,
    config: &SimConfig,
    mut respond: R,
) -> Result<Vec<SimEvent>, SimError>
where
    G: Generator + ?Sized,
    R: FnMut(u64, &OpTemplate) -> (Duration, Outcome),
{
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut free: Vec<Process> = (0..config.concurrency as Process).collect();
    let mut next_process = config.concurrency as Process;
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut events = Vec::new();
    let mut now = Duration::ZERO;
    let mut seq = 0u64;
    let mut done = false;

    for _ in 0..config.max_steps {
        // Complete everything due by now, earliest first.
        while let Some(i) = earliest(&in_flight).filter(|&i| in_flight[i].done_at <= now) {
            let f = in_flight.remove(i);
            if f.outcome == Outcome::Info {
                free.push(next_process);
                next_process += 1;
            } else {
                free.push(f.process);
            }
            free.sort_unstable();
            let completion = Completion {
                time: f.done_at,
                process: f.process,
                op: f.op.clone(),
                outcome: f.outcome,
                output: serde_json::Value::Null,
            };
            generator.observe(&completion);
            events.push(SimEvent {
                time: f.done_at,
                process: f.process,
                outcome: Some(f.outcome),
                op: f.op,
            });
        }
        let next_completion = earliest(&in_flight).map(|i| in_flight[i].done_at);
        if done {
            match next_completion {
                Some(t) => {
                    now = t;
                    continue;
                }
                None => return Ok(events),
            }
        }
        let mut ctx = Context {
            now,
            free: &free,
            busy: in_flight.len(),
            rng: &mut rng,
        };
        match generator.next(&mut ctx) {
            Next::Invoke { process, op } => {
                let Some(at) = free.iter().position(|&p| p == process) else {
                    return Err(SimError::NotFree(process));
                };
                free.remove(at);
                let (latency, outcome) = respond(seq, &op);
                events.push(SimEvent {
                    time: now,
                    process,
                    outcome: None,
                    op: op.clone(),
                });
                in_flight.push(InFlight {
                    done_at: now + latency,
                    seq,
                    process,
                    op,
                    outcome,
                });
                seq += 1;
            }
            Next::Wait(d) if d.is_zero() => return Err(SimError::ZeroWait),
            Next::Wait(d) => now = next_completion.map_or(now + d, |t| t.min(now + d)),
            Next::Pending => match next_completion {
                Some(t) => now = now.max(t),
                None => return Err(SimError::Deadlock(now)),
            },
            Next::Done => done = true,
        }
    }
    Err(SimError::TooManySteps(config.max_steps))
}

fn earliest(in_flight: &[InFlight]) -> Option<usize> {
    (0..in_flight.len()).min_by_key(|&i| (in_flight[i].done_at, in_flight[i].seq))
}

/// Only the invocations of a simulated history.
pub fn invocations(events: &[SimEvent]) -> impl Iterator<Item = &SimEvent> {
    events.iter().filter(|e| e.outcome.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::{from_fn, limit};
    use serde_json::json;

    fn config(concurrency: usize) -> SimConfig {
        SimConfig {
            concurrency,
            seed: 7,
            max_steps: 10_000,
        }
    }

    #[test]
    fn info_retires_the_process() {
        let mut g = limit(4, from_fn(|_, _| OpTemplate::new("read", json!(null))));
        let events = simulate(&mut g, &config(1), |n, _| {
            let outcome = if n == 1 { Outcome::Info } else { Outcome::Ok };
            (Duration::from_millis(10), outcome)
        })
        .unwrap();
        let procs: Vec<Process> = invocations(&events).map(|e| e.process).collect();
        assert_eq!(procs, vec![0, 0, 1, 1]);
        assert_eq!(events.len(), 8);
        assert_eq!(events.last().unwrap().time, Duration::from_millis(40));
    }

    #[test]
    fn a_generator_that_never_ends_is_caught() {
        let mut g = from_fn(|_, _| OpTemplate::new("read", json!(null)));
        let err = simulate(&mut g, &config(2), |_, _| {
            (Duration::from_millis(1), Outcome::Ok)
        });
        assert_eq!(err, Err(SimError::TooManySteps(10_000)));
    }
}
