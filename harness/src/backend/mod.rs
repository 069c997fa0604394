//! Cluster backends: where a test's nodes run and how faults reach them (DESIGN.md §6).
//! Each backend implements [`nuclei::control::ClusterControl`], so the nemesis is the same on all.

pub mod local;
