//! Node control for Fissure: fault injection and fault schedules (DESIGN.md §5).
//!
//! - [`control`]: [`control::ClusterControl`], the backend-neutral interface every fault goes
//!   through, with [`control::Grudge`] and [`control::LinkQuality`].
//! - [`link`]: the TCP link proxy through which every connection of a local cluster runs, so
//!   partitions, latency and loss are real at the TCP level.
//! - [`ssh_faults`]: faults done with a remote node's own kernel tools (iptables, tc netem,
//!   signals, libfaketime), each written to a ledger before it is applied.
//! - [`nemesis`]: fault kinds, grudges, targeting, seeded schedules, and the executor that applies
//!   them to a cluster and heals everything.
//! - [`remote`]: SSH to real nodes ([`remote::Remote`], [`remote::Fleet`]): commands and file
//!   copies over pooled sessions, retried on connection loss, host keys pinned on first use.

pub mod control;
pub mod link;
pub mod nemesis;
pub mod remote;
pub mod ssh_faults;
