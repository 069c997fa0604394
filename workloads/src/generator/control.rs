//! Combinators that bound or sequence generators: [`limit`], [`time_limit`], [`phases`],
//! [`each_process_once`].

use std::time::Duration;

use super::core::{Completion, Context, Generator, Next, Process};

/// At most `n` operations of the inner generator. See [`limit`].
pub struct Limit<G> {
    remaining: u64,
    inner: G,
}

/// At most `n` operations from `inner`, then `Done`.
pub fn limit<G: Generator>(n: u64, inner: G) -> Limit<G> {
    Limit {
        remaining: n,
        inner,
    }
}

impl<G: Generator> Generator for Limit<G> {
    fn next(&mut self, ctx: &mut Context<'_>) -> Next {
        if self.remaining == 0 {
            return Next::Done;
        }
        let next = self.inner.next(ctx);
        if matches!(next, Next::Invoke { .. }) {
            self.remaining -= 1;
        }
        next
    }

    fn observe(&mut self, completion: &Completion) {
        self.inner.observe(completion)
    }
}

/// The inner generator until a duration has passed. See [`time_limit`].
pub struct TimeLimit<G> {
    limit: Duration,
    deadline: Option<Duration>,
    inner: G,
}

/// `inner` until `d` has passed since this generator was first asked, then `Done`. Waits are
/// cut at the deadline, and `Pending` becomes a wait until the deadline, so the driver asks
/// again in time to hear `Done`.
pub fn time_limit<G: Generator>(d: Duration, inner: G) -> TimeLimit<G> {
    TimeLimit {
        limit: d,
        deadline: None,
        inner,
    }
}

impl<G: Generator> Generator for TimeLimit<G> {
    fn next(&mut self, ctx: &mut Context<'_>) -> Next {
        let deadline = *self.deadline.get_or_insert(ctx.now + self.limit);
        if ctx.now >= deadline {
            return Next::Done;
        }
        let left = deadline - ctx.now;
        match self.inner.next(ctx) {
            Next::Wait(d) => Next::Wait(d.min(left)),
            Next::Pending => Next::Wait(left),
            other => other,
        }
    }

    fn observe(&mut self, completion: &Completion) {
        self.inner.observe(completion)
    }
}

/// Generators run one after another. See [`phases`].
pub struct Phases {
    phases: Vec<Box<dyn Generator>>,
    at: usize,
    draining: bool,
}

/// Runs each generator to `Done`, then waits until no operation is in flight
/// (`Context::busy == 0`, i.e. every process is free) before starting the next: e.g. main
/// phase, heal phase, final reads. `Done` after the last.
pub fn phases(phases: Vec<Box<dyn Generator>>) -> Phases {
    Phases {
        phases,
        at: 0,
        draining: false,
    }
}

impl Generator for Phases {
    fn next(&mut self, ctx: &mut Context<'_>) -> Next {
        while let Some(phase) = self.phases.get_mut(self.at) {
            if self.draining {
                if ctx.busy > 0 {
                    return Next::Pending;
                }
                self.draining = false;
            }
            match phase.next(ctx) {
                Next::Done => {
                    self.at += 1;
                    self.draining = true;
                }
                other => return other,
            }
        }
        Next::Done
    }

    /// Forwarded to the current and earlier phases (an earlier phase's ops may still complete).
    fn observe(&mut self, completion: &Completion) {
        let end = (self.at + 1).min(self.phases.len());
        for phase in &mut self.phases[..end] {
            phase.observe(completion);
        }
    }
}

/// One operation per process. See [`each_process_once`].
pub struct EachProcessOnce<G> {
    remaining: Option<Vec<Process>>,
    inner: G,
}

/// One operation from `inner` on each process that is free when this generator is first asked,
/// then `Done`: final reads. Use it as a [`phases`] step, where every process is free at the
/// start. `Pending` while the processes still owed an operation are busy.
pub fn each_process_once<G: Generator>(inner: G) -> EachProcessOnce<G> {
    EachProcessOnce {
        remaining: None,
        inner,
    }
}

impl<G: Generator> Generator for EachProcessOnce<G> {
    fn next(&mut self, ctx: &mut Context<'_>) -> Next {
        let remaining = self.remaining.get_or_insert_with(|| ctx.free.to_vec());
        if remaining.is_empty() {
            return Next::Done;
        }
        let Some(&p) = ctx.free.iter().find(|p| remaining.contains(p)) else {
            return Next::Pending;
        };
        let only = [p];
        let next = self.inner.next(&mut ctx.with_free(&only));
        if let Next::Invoke { process, .. } = &next {
            remaining.retain(|q| q != process);
        }
        next
    }

    fn observe(&mut self, completion: &Completion) {
        self.inner.observe(completion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::sim::{invocations, simulate, SimConfig};
    use crate::generator::{from_fn, OpTemplate, Outcome};
    use serde_json::json;

    const MS: Duration = Duration::from_millis(1);

    fn reads() -> impl Generator {
        from_fn(|_, _| OpTemplate::new("read", json!(null)))
    }

    fn writes() -> impl Generator {
        from_fn(|_, _| OpTemplate::new("write", json!(1)))
    }

    fn cfg(concurrency: usize) -> SimConfig {
        SimConfig {
            concurrency,
            seed: 1,
            max_steps: 100_000,
        }
    }

    #[test]
    fn limit_counts_invocations_only() {
        let mut g = limit(5, reads());
        let events = simulate(&mut g, &cfg(3), |_, _| (MS, Outcome::Ok)).unwrap();
        assert_eq!(invocations(&events).count(), 5);
        assert_eq!(events.len(), 10);
    }

    #[test]
    fn time_limit_stops_at_the_deadline() {
        // One op per 10ms with one process; 95ms allows invocations at 0, 10, ..., 90.
        let mut g = time_limit(95 * MS, reads());
        let events = simulate(&mut g, &cfg(1), |_, _| (10 * MS, Outcome::Ok)).unwrap();
        let times: Vec<_> = invocations(&events).map(|e| e.time).collect();
        assert_eq!(times.len(), 10);
        assert!(times.iter().all(|&t| t < 95 * MS));
    }

    #[test]
    fn time_limit_turns_pending_into_a_wait_for_the_deadline() {
        let mut rng = rand::SeedableRng::seed_from_u64(0);
        let mut g = time_limit(50 * MS, reads());
        let mut ctx = Context {
            now: 10 * MS,
            free: &[],
            busy: 1,
            rng: &mut rng,
        };
        assert_eq!(g.next(&mut ctx), Next::Wait(50 * MS));
        ctx.now = 60 * MS;
        assert_eq!(g.next(&mut ctx), Next::Done);
    }

    #[test]
    fn phases_wait_for_all_processes_to_be_free() {
        let mut g = phases(vec![limit(7, writes()).boxed(), limit(2, reads()).boxed()]);
        // Latency grows with n, so the last write ends well after the others.
        let events = simulate(&mut g, &cfg(3), |n, _| {
            (Duration::from_millis((n + 1) * 3), Outcome::Ok)
        })
        .unwrap();
        let last_write_done = events
            .iter()
            .filter(|e| e.outcome.is_some() && e.op.f == "write")
            .map(|e| e.time)
            .max()
            .unwrap();
        let first_read = invocations(&events).find(|e| e.op.f == "read").unwrap();
        assert_eq!(first_read.time, last_write_done);
        assert_eq!(invocations(&events).filter(|e| e.op.f == "read").count(), 2);
    }

    #[test]
    fn each_process_once_gives_one_op_to_every_process() {
        let mut g = phases(vec![
            limit(4, writes()).boxed(),
            each_process_once(reads()).boxed(),
        ]);
        // The second write ends `info`: process 1 is retired and replaced by 5.
        let events = simulate(&mut g, &cfg(5), |n, _| {
            let outcome = if n == 1 { Outcome::Info } else { Outcome::Ok };
            (Duration::from_millis(5 - n % 5), outcome)
        })
        .unwrap();
        let mut readers: Vec<_> = invocations(&events)
            .filter(|e| e.op.f == "read")
            .map(|e| e.process)
            .collect();
        readers.sort_unstable();
        assert_eq!(readers, vec![0, 2, 3, 4, 5]);
    }
}
