//! One module per subcommand.

pub mod check;
mod check_output;
mod convert;
mod history_file;

use crate::cli::{Cli, Command};

/// Runs a command; `Ok` carries the exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Node { .. } => unreachable!("nodes are run by crate::main"),
    }
}
