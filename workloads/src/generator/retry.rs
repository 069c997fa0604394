//! Final reads that insist: [`until_ok`].

use std::time::Duration;

use super::core::{Completion, Context, Generator, Next, Outcome};

/// Operations from `inner` until enough succeed. See [`until_ok`].
pub struct UntilOk<G> {
    wanted: Option<usize>,
    oks: usize,
    in_flight: usize,
    attempts: u64,
    max_attempts_per_success: u64,
    retry_after: Duration,
    not_before: Duration,
    inner: G,
}

/// Invokes `inner`'s operations until as many have ended `ok` as there were free processes
/// when first asked (one good final read per process, as Jepsen's final reads), retrying a
/// failed or unknown one after `retry_after` (a lock or a partition may still be clearing),
/// and giving up after `max_attempts_per_success` attempts per wanted success. A single
/// failed final read would otherwise leave a checker with nothing to check.
pub fn until_ok<G: Generator>(
    max_attempts_per_success: u64,
    retry_after: Duration,
    inner: G,
) -> UntilOk<G> {
    UntilOk {
        wanted: None,
        oks: 0,
        in_flight: 0,
        attempts: 0,
        max_attempts_per_success: max_attempts_per_success.max(1),
        retry_after,
        not_before: Duration::ZERO,
        inner,
    }
}

impl<G: Generator> Generator for UntilOk<G> {
    fn next(&mut self, ctx: &mut Context<'_>) -> Next {
        let wanted = *self.wanted.get_or_insert(ctx.free.len().max(1));
        let budget = wanted as u64 * self.max_attempts_per_success;
        if self.oks >= wanted || self.attempts >= budget {
            return Next::Done;
        }
        // Never more in flight than successes still missing.
        if self.oks + self.in_flight >= wanted {
            return Next::Pending;
        }
        if ctx.now < self.not_before {
            return Next::Wait(self.not_before - ctx.now);
        }
        let next = self.inner.next(ctx);
        if matches!(next, Next::Invoke { .. }) {
            self.attempts += 1;
            self.in_flight += 1;
        }
        next
    }

    fn observe(&mut self, completion: &Completion) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if completion.outcome == Outcome::Ok {
            self.oks += 1;
        } else {
            self.not_before = completion.time + self.retry_after;
        }
        self.inner.observe(completion);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::from_fn;
    use crate::generator::sim::{invocations, simulate, SimConfig};
    use crate::generator::OpTemplate;
    use serde_json::json;

    fn run(concurrency: usize, fail_first: u64) -> Vec<(Duration, u64)> {
        let mut g = until_ok(
            3,
            Duration::from_millis(100),
            from_fn(|_, _| OpTemplate::new("read", json!(null))),
        );
        let cfg = SimConfig {
            concurrency,
            seed: 1,
            max_steps: 10_000,
        };
        let events = simulate(&mut g, &cfg, |n, _| {
            let outcome = if n < fail_first {
                Outcome::Fail
            } else {
                Outcome::Ok
            };
            (Duration::from_millis(10), outcome)
        })
        .unwrap();
        invocations(&events).map(|e| (e.time, e.process)).collect()
    }

    #[test]
    fn one_success_per_process_when_all_succeed() {
        let reads = run(4, 0);
        assert_eq!(reads.len(), 4);
        let mut procs: Vec<u64> = reads.iter().map(|r| r.1).collect();
        procs.sort_unstable();
        assert_eq!(procs, vec![0, 1, 2, 3]);
    }

    #[test]
    fn failures_are_retried_after_a_pause_and_bounded() {
        // Two processes; the first three reads fail: 3 + 2 attempts, retries 100 ms apart.
        let reads = run(2, 3);
        assert_eq!(reads.len(), 5);
        assert!(reads[2].0 >= Duration::from_millis(110), "{reads:?}");
        // Everything fails: 2 wanted × 3 attempts each, then done.
        assert_eq!(run(2, u64::MAX).len(), 6);
    }
}
