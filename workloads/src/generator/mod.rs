//! Pure, seeded, composable operation generators (Jepsen-style).
//!
//! A [`Generator`] is asked for the [`Next`] thing to do given a [`Context`] (the time since
//! the test started, the free processes, the run's rng) and is told about every
//! [`Completion`]. No I/O, no async, no clocks: the driver (the runner, or [`sim`] in tests)
//! owns time, processes and randomness, so a seed and a sequence of contexts fix the result.
//!
//! Sources: [`from_fn`], [`cycle`]. Combinators: [`mix`], [`limit`], [`time_limit`],
//! [`stagger`], [`rate`], [`delay`], [`phases`], [`independent`], [`each_process_once`],
//! [`until_ok`].
//! The nemesis stream uses the same trait and [`OpTemplate`] (with no key), driven by its own
//! context with one process, e.g. `delay(10s, cycle(vec![start, stop]))`.

mod control;
mod core;
mod independent;
mod mix;
mod retry;
pub mod sim;
mod source;
mod timing;

pub use self::control::{each_process_once, limit, phases, time_limit};
pub use self::control::{EachProcessOnce, Limit, Phases, TimeLimit};
pub use self::core::{Completion, Context, Generator, Next, OpTemplate, Outcome, Process};
pub use self::independent::{independent, Independent};
pub use self::mix::{mix, Mix};
pub use self::retry::{until_ok, UntilOk};
pub use self::source::{cycle, from_fn, Cycle, FromFn};
pub use self::timing::{delay, rate, stagger, Stagger};
