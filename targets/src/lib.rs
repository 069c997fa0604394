//! The bundled systems under test (`fissure-node`: raft-kv, quorum, twopc) and their client library
//! (DESIGN.md §7). Empty until the targets issue lands.
