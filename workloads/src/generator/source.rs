//! Leaf generators: where operations come from.

use rand::rngs::StdRng;

use super::core::{Context, Generator, Next, OpTemplate, Process};

/// An infinite source: each call builds an operation with `f(rng, process)` for a free process
/// chosen at random. `Pending` when no process is free. See [`from_fn`].
pub struct FromFn<F> {
    f: F,
}

/// An infinite source of operations built by `f(rng, process)`, invoked on a free process chosen
/// at random ([`Context::some_free_process`]). Bound it with [`limit`](super::limit) or
/// [`time_limit`](super::time_limit).
pub fn from_fn<F>(f: F) -> FromFn<F>
where
    F: FnMut(&mut StdRng, Process) -> OpTemplate + Send,
{
    FromFn { f }
}

impl<F> Generator for FromFn<F>
where
    F: FnMut(&mut StdRng, Process) -> OpTemplate + Send,
{
    fn next(&mut self, ctx: &mut Context<'_>) -> Next {
        match ctx.some_free_process() {
            Some(process) => Next::Invoke {
                process,
                op: (self.f)(ctx.rng, process),
            },
            None => Next::Pending,
        }
    }
}

/// Repeats a fixed list of operations forever, in order. See [`cycle`].
pub struct Cycle {
    ops: Vec<OpTemplate>,
    at: usize,
}

/// Repeats `ops` forever, in order (`Done` at once if `ops` is empty). With
/// [`delay`](super::delay) it makes a nemesis schedule: `delay(10s, cycle([start, stop]))`.
pub fn cycle(ops: Vec<OpTemplate>) -> Cycle {
    Cycle { ops, at: 0 }
}

impl Generator for Cycle {
    fn next(&mut self, ctx: &mut Context<'_>) -> Next {
        if self.ops.is_empty() {
            return Next::Done;
        }
        match ctx.some_free_process() {
            Some(process) => {
                let op = self.ops[self.at % self.ops.len()].clone();
                self.at += 1;
                Next::Invoke { process, op }
            }
            None => Next::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn from_fn_spreads_operations_over_the_free_processes() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut g = from_fn(|rng, p| OpTemplate::new("w", json!([p, rng.gen_range(0..10)])));
        let mut chosen = std::collections::BTreeSet::new();
        for _ in 0..64 {
            let mut ctx = Context {
                now: Duration::ZERO,
                free: &[3, 5, 9],
                busy: 0,
                rng: &mut rng,
            };
            match g.next(&mut ctx) {
                Next::Invoke { process, op } => {
                    assert!([3, 5, 9].contains(&process), "{process} is not free");
                    assert_eq!(op.value[0], json!(process));
                    chosen.insert(process);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(chosen.into_iter().collect::<Vec<_>>(), vec![3, 5, 9]);
        let mut ctx = Context {
            now: Duration::ZERO,
            free: &[],
            busy: 2,
            rng: &mut rng,
        };
        assert_eq!(g.next(&mut ctx), Next::Pending);
    }

    #[test]
    fn a_lone_free_process_costs_no_random_draw() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut untouched = rng.clone();
        let mut ctx = Context {
            now: Duration::ZERO,
            free: &[4],
            busy: 0,
            rng: &mut rng,
        };
        assert_eq!(ctx.some_free_process(), Some(4));
        assert_eq!(rng.gen::<u64>(), untouched.gen::<u64>());
    }

    #[test]
    fn cycle_repeats_in_order() {
        let mut rng = StdRng::seed_from_u64(1);
        let a = OpTemplate::new("start", json!(null));
        let b = OpTemplate::new("stop", json!(null));
        let mut g = cycle(vec![a.clone(), b.clone()]);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let mut ctx = Context {
                now: Duration::ZERO,
                free: &[0],
                busy: 0,
                rng: &mut rng,
            };
            if let Next::Invoke { op, .. } = g.next(&mut ctx) {
                seen.push(op);
            }
        }
        assert_eq!(seen, vec![a.clone(), b.clone(), a, b]);
        let mut ctx = Context {
            now: Duration::ZERO,
            free: &[0],
            busy: 0,
            rng: &mut rng,
        };
        assert_eq!(cycle(vec![]).next(&mut ctx), Next::Done);
    }
}
