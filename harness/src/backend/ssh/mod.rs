//! The ssh backend: hosts that exist already (a lab, cloud machines, Vagrant VMs), given by
//! the user and reached over SSH exactly as docker nodes are ([`crate::backend::remote`]).

pub mod hosts;
