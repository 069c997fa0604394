//! Node control for Fissure: fault injection and fault schedules (DESIGN.md §5).
//!
//! - [`control`]: [`control::ClusterControl`], the backend-neutral interface every fault goes
//!   through, with [`control::Grudge`] and [`control::LinkQuality`].
//! - [`link`]: the TCP link proxy through which every connection of a local cluster runs, so
//!   partitions, latency and loss are real at the TCP level.
//! - [`nemesis`]: fault kinds, grudges, targeting, seeded schedules, and the executor that applies
//!   them to a cluster and heals everything.

pub mod control;
pub mod link;
pub mod nemesis;
