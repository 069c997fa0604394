//! Combinators that pace a generator: [`stagger`], [`rate`], [`delay`].

use std::time::Duration;

use rand::Rng;

use super::core::{Completion, Context, Generator, Next};

/// Spaces out the inner generator's operations. See [`stagger`] and [`delay`].
pub struct Stagger<G> {
    mean: Duration,
    jitter: bool,
    next_at: Option<Duration>,
    inner: G,
}

/// Spaces `inner`'s operations by independent random intervals, uniform in `[0, 2 * mean)`,
/// so the total rate is about `1 / mean` when processes are free to take them. The first
/// operation also waits one interval. The schedule never bursts to catch up: an operation
/// that could not start on time (no free process) pushes the following ones back.
pub fn stagger<G: Generator>(mean: Duration, inner: G) -> Stagger<G> {
    Stagger {
        mean,
        jitter: true,
        next_at: None,
        inner,
    }
}

/// [`stagger`] at `ops_per_sec` operations per second in total.
///
/// # Panics
/// If `ops_per_sec` is not finite and positive.
pub fn rate<G: Generator>(ops_per_sec: f64, inner: G) -> Stagger<G> {
    assert!(
        ops_per_sec.is_finite() && ops_per_sec > 0.0,
        "rate must be finite and positive, got {ops_per_sec}"
    );
    stagger(Duration::from_secs_f64(1.0 / ops_per_sec), inner)
}

/// Exactly `interval` between `inner`'s operations, and before the first: e.g. a nemesis
/// schedule, `delay(10s, cycle(vec![start, stop]))`.
pub fn delay<G: Generator>(interval: Duration, inner: G) -> Stagger<G> {
    Stagger {
        mean: interval,
        jitter: false,
        next_at: None,
        inner,
    }
}

impl<G> Stagger<G> {
    fn interval(&self, rng: &mut impl Rng) -> Duration {
        let nanos = self.mean.as_nanos().min(u64::MAX as u128 / 2) as u64;
        if !self.jitter {
            return Duration::from_nanos(nanos);
        }
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rng.gen_range(0..2 * nanos))
    }
}

impl<G: Generator> Generator for Stagger<G> {
    fn next(&mut self, ctx: &mut Context<'_>) -> Next {
        let next_at = match self.next_at {
            Some(t) => t,
            None => {
                let t = ctx.now + self.interval(ctx.rng);
                self.next_at = Some(t);
                t
            }
        };
        if ctx.now < next_at {
            return Next::Wait(next_at - ctx.now);
        }
        let next = self.inner.next(ctx);
        if matches!(next, Next::Invoke { .. }) {
            self.next_at = Some(next_at.max(ctx.now) + self.interval(ctx.rng));
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
    use crate::generator::{from_fn, limit, OpTemplate, Outcome};
    use serde_json::json;

    fn reads() -> impl Generator {
        from_fn(|_, _| OpTemplate::new("read", json!(null)))
    }

    fn cfg(seed: u64) -> SimConfig {
        SimConfig {
            concurrency: 10,
            seed,
            max_steps: 1_000_000,
        }
    }

    #[test]
    fn stagger_mean_interval_is_close_to_mean() {
        let mean = Duration::from_millis(10);
        for seed in 0..5 {
            let mut g = limit(2_000, stagger(mean, reads()));
            let events = simulate(&mut g, &cfg(seed), |_, _| {
                (Duration::from_millis(1), Outcome::Ok)
            })
            .unwrap();
            let times: Vec<Duration> = invocations(&events).map(|e| e.time).collect();
            assert_eq!(times.len(), 2_000);
            // 2000 uniform [0, 20ms) gaps: mean 10ms, sd of the mean ~0.13ms.
            let avg = times.last().unwrap().as_secs_f64() / 2_000.0;
            assert!(
                (0.0095..0.0105).contains(&avg),
                "seed {seed}: mean gap {avg}"
            );
            let max_gap = times.windows(2).map(|w| w[1] - w[0]).max().unwrap();
            assert!(max_gap < 2 * mean);
        }
    }

    #[test]
    fn rate_sets_the_mean_interval() {
        let mut g = time_limited_rate();
        let events = simulate(&mut g, &cfg(3), |_, _| {
            (Duration::from_millis(2), Outcome::Ok)
        })
        .unwrap();
        let n = invocations(&events).count();
        // 10 s at 200/s: 2000 expected.
        assert!((1_850..2_150).contains(&n), "{n} ops");
    }

    fn time_limited_rate() -> impl Generator {
        crate::generator::time_limit(Duration::from_secs(10), rate(200.0, reads()))
    }

    #[test]
    fn delay_is_exact_and_does_not_burst_after_a_stall() {
        let mut g = limit(4, delay(Duration::from_secs(1), reads()));
        // One process, each op takes 2.5 s: the schedule slips instead of bursting.
        let events = simulate(
            &mut g,
            &SimConfig {
                concurrency: 1,
                seed: 0,
                max_steps: 1_000,
            },
            |_, _| (Duration::from_millis(2_500), Outcome::Ok),
        )
        .unwrap();
        let times: Vec<u128> = invocations(&events).map(|e| e.time.as_millis()).collect();
        assert_eq!(times, vec![1_000, 3_500, 6_000, 8_500]);
    }

    #[test]
    #[should_panic(expected = "rate must be finite and positive")]
    fn zero_rate_is_rejected() {
        let _ = rate(0.0, reads());
    }
}
