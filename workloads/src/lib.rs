//! Operation generators, clients and workload definitions (DESIGN.md §2).
//!
//! Empty until `fissure run` lands; the checkers it will feed already live in `checkers`.
