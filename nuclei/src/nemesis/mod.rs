//! The nemesis (DESIGN.md §5), Jepsen-style: faults scheduled as start/stop pairs at an
//! interval, aimed at `one | minority | majority | all | primaries`, recorded in the history and
//! always healed.
//!
//! Two halves, so a schedule can be shown or replayed without a cluster:
//! - pure and seeded: [`FaultKind`], [`PartitionKind`] (grudges), [`Target`] (node choice),
//!   [`NemesisConfig`], and the [`Schedule`] of [`Planned`] [`FaultOp`]s;
//! - effectful: [`Nemesis`] applies ops through any [`crate::control::ClusterControl`] (local
//!   processes today, docker or SSH later) and reports each as an [`Applied`].

mod config;
mod executor;
mod grudge;
mod kinds;
mod schedule;
mod strobe;
mod suspend;
mod target;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

pub use config::{NemesisConfig, Strobe};
pub use executor::{Applied, Nemesis};
pub use grudge::Cut;
pub use kinds::{parse_list, parse_name, FaultKind, NameError, Named, PartitionKind, Target};
pub use schedule::{FaultOp, Planned, Schedule};
pub use target::Resolved;
