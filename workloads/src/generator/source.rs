//! Leaf generators: where operations come from.

use rand::rngs::StdRng;

use super::core::{Context, Generator, Next, OpTemplate, Process};

/// An infinite source: each call builds an operation with `f(rng, process)` for the lowest free
/// process. `Pending` when no process is free. See [`from_fn`].
pub struct FromFn<F> {
    f: F,
}

/// An infinite source of operations built by `f(rng, process)`, invoked on the lowest free
/// process. Bound it with [`limit`](super::limit) or [`time_limit`](super::time_limit).
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
        match ctx.free.first() {
            Some(&process) => Next::Invoke {
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
        match ctx.free.first() {
            Some(&process) => {
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
    fn from_fn_uses_lowest_free_process_and_rng() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut g = from_fn(|rng, p| OpTemplate::new("w", json!([p, rng.gen_range(0..10)])));
        let mut ctx = Context {
            now: Duration::ZERO,
            free: &[3, 5],
            busy: 0,
            rng: &mut rng,
        };
        match g.next(&mut ctx) {
            Next::Invoke { process, op } => {
                assert_eq!(process, 3);
                assert_eq!(op.value[0], json!(3));
            }
            other => panic!("{other:?}"),
        }
        let mut ctx = Context {
            now: Duration::ZERO,
            free: &[],
            busy: 2,
            rng: &mut rng,
        };
        assert_eq!(g.next(&mut ctx), Next::Pending);
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
