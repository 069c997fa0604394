//! Node control for Fissure: remote execution, fault injection and fault schedules (DESIGN.md §5).
//!
//! So far it holds the [`link::LinkProxy`], through which every connection of a local cluster runs
//! so that partitions are real at the TCP level.

pub mod link;
