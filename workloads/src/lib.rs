//! Workloads for `fissure run` (DESIGN.md §2): what clients do, as pure generators.
//!
//! - [`generator`]: the [`Generator`](generator::Generator) trait, composable combinators
//!   (mix, limit, time limit, stagger/rate/delay, phases, per-key independent, each process
//!   once) and [`generator::sim`], a simulated driver with a fake clock.
//! - [`register`] and [`set`]: the operation sources of the `register` and `set` workloads.
//!
//! Clients (running an [`OpTemplate`](generator::OpTemplate) against a target) and the driver
//! loop over real time belong to the runner and are not here yet.

pub mod generator;
pub mod register;
pub mod set;
