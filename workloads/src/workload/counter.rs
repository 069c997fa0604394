//! The `counter` workload: adds of small positive increments and reads of one counter, then a
//! final read on every process (checked by the counter checker: every ok read lies between what
//! the adds certainly did and what they possibly did). The counter starts missing, read as 0.

use rand::Rng;
use serde_json::json;

use crate::generator::{from_fn, mix, Generator, Mix, OpTemplate};

/// Adds draw their increment from `1..=MAX_INCREMENT`.
pub const MAX_INCREMENT: i64 = 5;

/// `{"f":"add","value":n}`: add `n` to the counter.
pub fn counter_add(n: i64) -> OpTemplate {
    OpTemplate::new("add", json!(n))
}

/// `{"f":"read","value":null}`: the counter's value.
pub fn counter_read() -> OpTemplate {
    OpTemplate::new("read", json!(null))
}

/// An infinite source of adds, increments drawn from `1..=MAX_INCREMENT` (seeded).
pub fn counter_adds() -> impl Generator {
    from_fn(|rng, _| counter_add(rng.gen_range(1..=MAX_INCREMENT)))
}

/// Adds and reads, three to one: reads during the run are what catch a lost or doubled add
/// while it happens.
pub fn counter_ops() -> Mix {
    mix(vec![
        (3, counter_adds().boxed()),
        (1, from_fn(|_, _| counter_read()).boxed()),
    ])
}
