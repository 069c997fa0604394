//! `fissure-node MODE --id n1 --listen ... --peer-listen ... --peers ... --data-dir ...`

use clap::Parser;
use std::process::ExitCode;
use targets::cli::{self, NodeCli};

fn main() -> ExitCode {
    let node = NodeCli::parse();
    cli::init_logging();
    cli::run(node)
}
