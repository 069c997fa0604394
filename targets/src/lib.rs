//! Fissure's bundled systems under test and their client library (DESIGN.md §7).
//!
//! One binary, `fissure-node`, runs one node of one of three real distributed systems over TCP:
//! `raft-kv` (a Raft-replicated key-value store), `quorum` (Dynamo-style replication with R and W)
//! and `twopc` (two-phase commit over bank accounts). Each has switchable planted bugs, so the
//! harness can prove it finds what it claims to find. A fourth mode, `echo`, is a trivial
//! single-node map: the baseline for the harness's own overhead. Clients speak [`protocol`], one
//! protocol for all modes, through [`client::Client`].

pub mod cli;
pub mod client;
pub mod clock;
pub mod echo;
pub mod node;
pub mod protocol;
pub mod quorum;
pub mod raft;
pub mod rpc;
pub mod storage;
pub mod twopc;
pub mod txn;
