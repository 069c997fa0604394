//! Workloads for `fissure run` (DESIGN.md §2): what clients do, as pure generators, and the
//! clients that run it against a target.
//!
//! - [`generator`]: the [`Generator`](generator::Generator) trait, composable combinators
//!   (mix, limit, time limit, stagger/rate/delay, phases, per-key independent, each process
//!   once) and [`generator::sim`], a simulated driver with a fake clock.
//! - [`register`], [`bank`], [`set`] and [`txn`]: the operation sources of the workloads
//!   (`txn`: the transactional `append` and `wr`).
//! - [`workload`]: each workload as the runner drives it (main phase, final reads, checkers)
//!   and per target: which targets can run it and the [`client::Client`] that maps its
//!   operations onto the target's protocol.
//!
//! The driver loop over real time belongs to the runner (crate `harness`).

pub mod adapter;
pub mod bank;
pub mod client;
pub mod etcd;
pub mod generator;
pub mod postgres;
pub mod register;
pub mod set;
pub mod txn;
pub mod workload;
