//! The `register` workload: reads, writes and compare-and-set on registers (checked with the
//! `register` / `cas-register` models).

use rand::Rng;
use serde_json::json;

use crate::generator::{from_fn, independent, mix, Generator, Independent, Mix, OpTemplate};

/// Weights of each operation and the range of values written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterMix {
    pub read: u32,
    pub write: u32,
    pub cas: u32,
    /// Values are drawn from `0..values` (small, so CAS sometimes succeeds).
    pub values: u64,
}

impl Default for RegisterMix {
    /// Equal weights, values 0..5 (Jepsen's usual register workload).
    fn default() -> Self {
        Self {
            read: 1,
            write: 1,
            cas: 1,
            values: 5,
        }
    }
}

/// `{"f":"read","value":null}`.
pub fn read() -> OpTemplate {
    OpTemplate::new("read", json!(null))
}

/// An infinite, keyless mix of `read`, `write v` and `cas [a, b]`.
///
/// # Panics
/// If `weights.values` is 0.
pub fn register_ops(weights: RegisterMix) -> Mix {
    let n = weights.values;
    assert!(n > 0, "register values range is empty");
    mix(vec![
        (weights.read, from_fn(|_, _| read()).boxed()),
        (
            weights.write,
            from_fn(move |rng, _| OpTemplate::new("write", json!(rng.gen_range(0..n)))).boxed(),
        ),
        (
            weights.cas,
            from_fn(move |rng, _| {
                let (a, b) = (rng.gen_range(0..n), rng.gen_range(0..n));
                OpTemplate::new("cas", json!([a, b]))
            })
            .boxed(),
        ),
    ])
}

/// [`register_ops`] over independent keys: `keys_per_window` registers at a time, each seeing
/// at most `ops_per_key` operations (short per-key histories keep linearizability checks cheap).
pub fn register_independent(
    keys_per_window: usize,
    ops_per_key: u64,
    weights: RegisterMix,
) -> Independent {
    independent(keys_per_window, ops_per_key, move |_| {
        register_ops(weights).boxed()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::{Context, Next};
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::time::Duration;

    #[test]
    fn ops_have_the_register_shapes() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut g = register_ops(RegisterMix {
            read: 1,
            write: 2,
            cas: 1,
            values: 3,
        });
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for _ in 0..4_000 {
            let mut ctx = Context {
                now: Duration::ZERO,
                free: &[0],
                busy: 0,
                rng: &mut rng,
            };
            let Next::Invoke { op, .. } = g.next(&mut ctx) else {
                panic!("infinite source")
            };
            match op.f.as_str() {
                "read" => assert!(op.value.is_null()),
                "write" => assert!(op.value.as_u64().unwrap() < 3),
                "cas" => {
                    let ab = op.value.as_array().unwrap();
                    assert_eq!(ab.len(), 2);
                    assert!(ab.iter().all(|v| v.as_u64().unwrap() < 3));
                }
                other => panic!("unexpected f {other}"),
            }
            assert!(op.key.is_none());
            *seen.entry(op.f).or_default() += 1;
        }
        // Expected 1000 / 2000 / 1000.
        assert!((1_800..2_200).contains(&seen["write"]), "{seen:?}");
        assert!((850..1_150).contains(&seen["read"]), "{seen:?}");
    }
}
