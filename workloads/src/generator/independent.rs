//! Per-key independent generation: [`independent`].

use std::time::Duration;

use super::control::{limit, Limit};
use super::core::{Completion, Context, Generator, Next};

type MakeKey = Box<dyn FnMut(u64) -> Box<dyn Generator> + Send>;

/// Bounded windows of keys, each with its own generator. See [`independent`].
pub struct Independent {
    window: usize,
    ops_per_key: u64,
    make: MakeKey,
    active: Vec<(u64, Limit<Box<dyn Generator>>)>,
    next_key: u64,
    cursor: usize,
}

/// Per-key independent operations (Jepsen's `independent`), for checkers that split a history
/// by key. Keys are the integers 0, 1, 2, ...; at most `keys_per_window` are active at once,
/// each driven by `make(key)` limited to `ops_per_key` operations. A key whose generator is
/// done is replaced by the next fresh key. Operations carry `key` (a JSON number); the active
/// keys are asked round robin. Infinite: bound it with [`limit`] or
/// [`time_limit`](super::time_limit).
///
/// # Panics
/// If `keys_per_window` or `ops_per_key` is 0.
pub fn independent<F>(keys_per_window: usize, ops_per_key: u64, make: F) -> Independent
where
    F: FnMut(u64) -> Box<dyn Generator> + Send + 'static,
{
    assert!(keys_per_window > 0 && ops_per_key > 0, "empty key window");
    Independent {
        window: keys_per_window,
        ops_per_key,
        make: Box::new(make),
        active: Vec::new(),
        next_key: 0,
        cursor: 0,
    }
}

impl Independent {
    fn fresh(&mut self) -> (u64, Limit<Box<dyn Generator>>) {
        let key = self.next_key;
        self.next_key += 1;
        (key, limit(self.ops_per_key, (self.make)(key)))
    }
}

impl Generator for Independent {
    fn next(&mut self, ctx: &mut Context<'_>) -> Next {
        while self.active.len() < self.window {
            let fresh = self.fresh();
            self.active.push(fresh);
        }
        let mut wait: Option<Duration> = None;
        let mut idx = self.cursor % self.window;
        // Each slot is visited once, plus once more after each key it retires.
        let mut budget = 2 * self.window;
        while budget > 0 {
            budget -= 1;
            let (key, gen) = &mut self.active[idx];
            match gen.next(ctx) {
                Next::Invoke { process, mut op } => {
                    op.key = Some((*key).into());
                    self.cursor = idx + 1;
                    return Next::Invoke { process, op };
                }
                Next::Done => {
                    self.active[idx] = self.fresh();
                    continue;
                }
                Next::Wait(d) => wait = Some(wait.map_or(d, |w| w.min(d))),
                Next::Pending => {}
            }
            idx = (idx + 1) % self.window;
        }
        wait.map_or(Next::Pending, Next::Wait)
    }

    /// Routed to the active generator of the completion's key, if any.
    fn observe(&mut self, completion: &Completion) {
        let Some(key) = completion.op.key.as_ref().and_then(|k| k.as_u64()) else {
            return;
        };
        if let Some((_, gen)) = self.active.iter_mut().find(|(k, _)| *k == key) {
            gen.observe(completion);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::sim::{invocations, simulate, SimConfig};
    use crate::generator::{from_fn, OpTemplate, Outcome};
    use serde_json::json;
    use std::collections::BTreeMap;

    #[test]
    fn keys_rotate_with_bounded_ops_and_window() {
        let mut g = limit(
            100,
            independent(3, 7, |k| {
                from_fn(move |_, _| OpTemplate::new("write", json!(k))).boxed()
            }),
        );
        let cfg = SimConfig {
            concurrency: 4,
            seed: 9,
            max_steps: 10_000,
        };
        let events = simulate(&mut g, &cfg, |n, _| {
            (Duration::from_millis(1 + n % 3), Outcome::Ok)
        })
        .unwrap();
        let mut per_key: BTreeMap<u64, usize> = BTreeMap::new();
        let mut order = Vec::new();
        for e in invocations(&events) {
            let k =
                e.op.key
                    .as_ref()
                    .and_then(|k| k.as_u64())
                    .expect("op has a key");
            assert_eq!(e.op.value, json!(k), "make(key) built the op");
            *per_key.entry(k).or_default() += 1;
            order.push(k);
        }
        assert_eq!(order.len(), 100);
        assert!(per_key.values().all(|&n| n <= 7));
        // 100 ops, 7 per key: 15 keys (14 full).
        assert_eq!(per_key.len(), 15);
        // At any point, at most 3 keys are between their first and last op.
        for (i, _) in order.iter().enumerate() {
            let live = per_key
                .keys()
                .filter(|&&k| {
                    let first = order.iter().position(|&x| x == k).unwrap();
                    let last = order.iter().rposition(|&x| x == k).unwrap();
                    first <= i && i <= last
                })
                .count();
            assert!(live <= 3, "{live} keys active at op {i}");
        }
    }
}
